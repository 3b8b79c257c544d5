"""The ``timbal`` MCP server: Timbal run history for AI assistants.

Three read-only tools over the core library: ``list_runs`` (typed filters, compact rows,
an exact cursor), ``get_run`` (a run, its span tree and its reactions, bounded) and
``summarize_runs`` (the rollups of ``timbal-runs summary``, with a time series); the
resource templates ``timbal://runs/{run_id}`` and ``timbal://runs/{run_id}/trace``;
prompts for triage, cost reports and one user's activity; argument completions. Run it
with ``timbal-mcp`` or ``python -m mcp_server``; embed
it with :func:`create_server`::

    from mcp_server import create_server

    server = create_server()          # settings from TIMBAL_* variables, read per call
    server.run()                      # stdio

Importing this package is cheap: the MCP SDK is imported on first use of a name below
(so ``timbal-mcp --help`` answers at once), and Airflow and pyarrow are never imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import (
        PROMPT_NAMES,
        RESOURCE_TEMPLATES,
        SERVER_NAME,
        TOOL_NAMES,
        ServerSettings,
        create_server,
    )

__all__ = [
    "PROMPT_NAMES",
    "RESOURCE_TEMPLATES",
    "SERVER_NAME",
    "TOOL_NAMES",
    "ServerSettings",
    "create_server",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
