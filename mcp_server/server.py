"""The ``timbal`` MCP server: :func:`create_server` with the tools ``list_runs``,
``get_run`` and ``summarize_runs``, the resource templates ``timbal://runs/{run_id}``
and ``timbal://runs/{run_id}/trace``, three prompts and argument completions.

A thin front end over the core, in one concern a module:

- :mod:`mcp_server.args`: the tools' argument types and descriptions (their schemas);
- :mod:`mcp_server.tools`: the tools themselves (:class:`TimbalTools`; a module a tool);
- :mod:`mcp_server.failures`: every failure worded for an assistant, the key redacted;
- :mod:`mcp_server.settings`: how the tools reach the API (:class:`ServerSettings`);
- :mod:`mcp_server._sdk`: the one place touching the SDK's internals (strict arguments);
- :mod:`mcp_server.shaping`, :mod:`mcp_server.trace_shaping` (get_run's bounded result),
  :mod:`mcp_server.readable`, :mod:`mcp_server.models`: results as a model reads them;
- :mod:`mcp_server.recent`, :mod:`mcp_server.known`: the values recent runs show
  (workforce names, unknown filter values);
- :mod:`mcp_server.resources`, :mod:`mcp_server.prompts`, :mod:`mcp_server.completions`;
- :mod:`mcp_server.transport`: streamable HTTP with a bearer token.

Every failure a model can act on becomes a tool error that names the argument or the
setting to fix, worded by the core (:func:`timbal_integrations.wording.describe`)::

    bad argument        -> "Invalid arguments for list_runs: `limit`: ... expected ..."
    bad filter value    -> "list_runs: invalid `since`: 'yesterday' is not an ISO 8601 ..."
    missing settings    -> "list_runs: the server is not configured: no API key: set ..."
    401 / 403 / 404     -> "list_runs: the API key was rejected — check ... (HTTP 401 ...)"
    429 / 5xx           -> "... even after retrying — ..."

The API key never appears in a result, an error or a log line: the client keeps it in
a :class:`~timbal_integrations.config.Secret`, and every message is scrubbed of it
before it leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from timbal_integrations._version import __version__

from ._sdk import TimbalTool, strict
from .args import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_EMAIL_SCAN,
    DEFAULT_MAX_RUNS,
    DEFAULT_SUMMARY_TOP_N,
    GET_RUN_DESCRIPTION,
    LIST_RUNS_DESCRIPTION,
    MAX_LIMIT,
    MAX_MAX_RUNS,
    SUMMARIZE_RUNS_DESCRIPTION,
)
from .completions import register_completions
from .prompts import PROMPT_NAMES, register_prompts
from .resources import RUN_TEMPLATE, TRACE_TEMPLATE, register_resources
from .settings import ServerSettings
from .tools import TimbalTools

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_EMAIL_SCAN",
    "DEFAULT_MAX_RUNS",
    "DEFAULT_SUMMARY_TOP_N",
    "INSTRUCTIONS",
    "MAX_LIMIT",
    "MAX_MAX_RUNS",
    "PROMPT_NAMES",
    "RESOURCE_TEMPLATES",
    "SERVER_NAME",
    "TOOL_NAMES",
    "ServerSettings",
    "TimbalTool",
    "TimbalTools",
    "create_server",
]

SERVER_NAME: Final = "timbal"
TOOL_NAMES: Final = ("list_runs", "get_run", "summarize_runs")
RESOURCE_TEMPLATES: Final = (RUN_TEMPLATE, TRACE_TEMPLATE)

INSTRUCTIONS: Final = (
    "Read-only access to the run history of one Timbal project (runs are executions of "
    "agents and workflows). Use list_runs to find runs (filters combine with AND; "
    "results are pages: pass next_cursor back with the same filters to continue), "
    "get_run for one run's details (why it failed: its span tree, errors, tokens and "
    "reactions), and summarize_runs for exact counts, error rates, costs and duration "
    "percentiles over every matching run, optionally per hour, day or week. Times accept "
    "ISO 8601 (no offset means UTC), epoch milliseconds, or spans back from now such as "
    "24h or 7d. The resources timbal://runs/{run_id} and timbal://runs/{run_id}/trace "
    "hold a run's full JSON."
)


def create_server(
    settings: ServerSettings | None = None,
    *,
    api_key: str | None = None,
    host: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    env: Mapping[str, str] | None = None,
    now: Callable[[], datetime] | None = None,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
) -> MCPServer[Any]:
    """Build the ``timbal`` MCP server: its three read-only tools, two resource templates,
    three prompts and argument completions.

    Pass a :class:`ServerSettings`, or its most common fields as keyword arguments
    (``api_key``, ``host``, ``org_id``, ``project_id`` override ``TIMBAL_API_KEY``,
    ``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``; ``now`` fixes the
    reference time of relative spans, for tests). Configuration is read when a tool
    runs, so a server with missing settings still starts and reports the problem as a
    tool error.
    """
    if settings is None:
        settings = ServerSettings(
            api_key=api_key, host=host, org_id=org_id, project_id=project_id, env=env, now=now
        )
    elif any(v is not None for v in (api_key, host, org_id, project_id, env, now)):
        raise TypeError("pass either settings or keyword arguments, not both")
    tools = TimbalTools(settings)
    annotations = {
        "read_only_hint": True,
        "idempotent_hint": True,
        "destructive_hint": False,
        "open_world_hint": False,
    }
    specs: list[tuple[Callable[..., Any], str, str, str]] = [
        (tools.list_runs, "list_runs", "List Timbal runs", LIST_RUNS_DESCRIPTION),
        (tools.get_run, "get_run", "Get a Timbal run", GET_RUN_DESCRIPTION),
        (
            tools.summarize_runs,
            "summarize_runs",
            "Summarize Timbal runs",
            SUMMARIZE_RUNS_DESCRIPTION,
        ),
    ]
    registered = [
        strict(
            TimbalTool.from_function(
                fn,
                name=name,
                title=title,
                description=description,
                annotations=ToolAnnotations(title=title, **annotations),
            )
        )
        for fn, name, title, description in specs
    ]
    server = MCPServer(
        SERVER_NAME,
        title="Timbal runs",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=registered,
        log_level=log_level,
        lifespan=tools.lifespan,
    )
    register_resources(server, tools)
    register_prompts(server, settings)
    register_completions(server, tools)
    return server
