"""The resource templates ``timbal://runs/{run_id}`` and ``timbal://runs/{run_id}/trace``:
a run's full JSON, for clients that attach resources instead of calling a tool.

- ``timbal://runs/{run_id}``: ``{"run": <the RunDetail: every field the API sent, trace
  included; times in ISO 8601 UTC>, "reactions": [<up to 100, newest first>],
  "reactions_more": bool, "resources": {...}}``;
- ``timbal://runs/{run_id}/trace``: ``{"run_id", "spans", "form", "trace": <the trace
  as the API sent it>}``.

Both are JSON (``application/json``) and bounded: a document longer than
``MCP_RESOURCE_CHARS`` (1,000,000 characters) has its longest strings cut (to 20,000
characters, then 5,000, 1,000, 200, until it fits; the reactions' too), and says so
under ``cut``; a run document that still does not fit leaves its trace to the trace
resource, and a trace that does not fit even then (countless short values) is left out
with its size said under ``cut``. The API key is redacted from every string, as in the
tools' results; a failure is worded and redacted as the tools' are. ``run_id`` is a run
id or an idempotency key; an unknown run is "resource not found".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from timbal_integrations import defaults
from timbal_integrations.errors import NotFoundError
from timbal_integrations.redact import redact_data

from .failures import explain, log_unexpected
from .trace_shaping import cut_strings, resource_uris

if TYPE_CHECKING:
    from .tools import TimbalTools

__all__ = ["RUN_TEMPLATE", "TRACE_TEMPLATE", "RunResources", "register_resources"]

RUN_TEMPLATE: Final = "timbal://runs/{run_id}"
TRACE_TEMPLATE: Final = "timbal://runs/{run_id}/trace"
_REACTIONS: Final = 100
_STEPS: Final = (20_000, 5_000, 1_000, 200)
_MIME: Final = "application/json"


def _dump(document: dict[str, Any]) -> str:
    return orjson.dumps(document).decode()


def _bounded(
    document: dict[str, Any], keys: tuple[str, ...], limit: int, *, last_resort: bool = True
) -> dict[str, Any]:
    """``document`` with the strings under ``keys`` cut until it fits ``limit``; if even
    that does not fit (a trace of countless short values), and ``last_resort``, the
    first key's value is replaced by a note of its size, so the document always fits."""
    size = len(_dump(document))
    if size <= limit:
        return document
    candidate = document
    for longest in _STEPS:
        candidate = dict(document)
        count = 0
        for key in keys:
            candidate[key], n = cut_strings(document[key], longest)
            count += n
        candidate["cut"] = (
            f"{count} string(s) longer than {longest:,} characters were cut to keep this "
            f"resource under {limit:,} characters"
        )
        if len(_dump(candidate)) <= limit:
            return candidate
    if not last_resort:
        return candidate
    key = keys[0]
    return {
        **{k: v for k, v in document.items() if k not in keys},
        **{k: [] for k in keys[1:]},
        key: None,
        "cut": (
            f"{key} omitted: {size:,} characters of JSON, more than this resource's "
            f"{limit:,} even with every string cut to {_STEPS[-1]} characters "
            '(get_run with detail="full" shows its spans, bounded)'
        ),
    }


class RunResources:
    """Reads the two resources through the tools' shared API client."""

    def __init__(self, tools: TimbalTools, limit: int = defaults.MCP_RESOURCE_CHARS) -> None:
        self.tools = tools
        self.limit = limit

    def _failure(self, exc: Exception, uri: str) -> ResourceError:
        """The resource error for ``exc``, worded and redacted as the tools' errors are
        (an unexpected one is logged with its traceback, the key redacted)."""
        settings = self.tools.settings
        log_unexpected(f"reading {uri}", exc, settings)
        message = explain(exc, settings)
        if isinstance(exc, NotFoundError):
            return ResourceNotFoundError(f"{uri}: {message}")
        return ResourceError(f"{uri}: {message}")

    def _document(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` with the API key redacted from every string (before it is bounded:
        a mask is never longer than what it hides)."""
        redacted: dict[str, Any] = redact_data(document, self.tools.settings.secret())
        return redacted

    async def run(self, run_id: str) -> str:
        """The run's document (see the module docstring)."""
        uri = RUN_TEMPLATE.format(run_id=run_id)
        try:
            async with self.tools.api() as client:
                detail = await client.get_run(run_id)
                reactions = [
                    r async for r in client.list_reactions(detail.id, limit=_REACTIONS + 1)
                ]
        except Exception as exc:
            raise self._failure(exc, uri) from None
        document: dict[str, Any] = {
            "run": detail.model_dump(mode="json", exclude_unset=True),
            "reactions": [
                r.model_dump(mode="json", exclude_unset=True) for r in reactions[:_REACTIONS]
            ],
            "reactions_more": len(reactions) > _REACTIONS,
            "resources": resource_uris(detail.id),
        }
        document = self._document(document)
        keys = ("run", "reactions")
        bounded = _bounded(document, keys, self.limit, last_resort=False)
        if len(_dump(bounded)) > self.limit:
            run = dict(document["run"])
            run["trace"] = f"omitted here: read {resource_uris(detail.id)['trace']}"
            bounded = _bounded({**document, "run": run}, keys, self.limit)
        return _dump(bounded)

    async def trace(self, run_id: str) -> str:
        """The run's trace document (see the module docstring)."""
        uri = TRACE_TEMPLATE.format(run_id=run_id)
        try:
            async with self.tools.api() as client:
                detail = await client.get_run(run_id)
            parsed = detail.parsed_trace
        except Exception as exc:
            raise self._failure(exc, uri) from None
        document: dict[str, Any] = {
            "run_id": detail.id,
            "spans": len(parsed) if parsed is not None else None,
            "form": parsed.form if parsed is not None else None,
            "trace": detail.trace,
        }
        return _dump(_bounded(self._document(document), ("trace",), self.limit))


def register_resources(server: MCPServer[Any], tools: TimbalTools) -> RunResources:
    """Add the two resource templates to ``server``."""
    resources = RunResources(tools)
    templates: list[tuple[str, str, str, Callable[[str], Any]]] = [
        (
            RUN_TEMPLATE,
            "run",
            "A Timbal run as JSON: every field the API returns (status_detail and the "
            "whole trace included) and its reactions. Bounded to "
            f"{defaults.MCP_RESOURCE_CHARS:,} characters (longest strings cut beyond).",
            resources.run,
        ),
        (
            TRACE_TEMPLATE,
            "run_trace",
            "A Timbal run's trace as JSON, as the API returns it: every span with its "
            "input, output, usage, status and error. Bounded to "
            f"{defaults.MCP_RESOURCE_CHARS:,} characters (longest strings cut beyond).",
            resources.trace,
        ),
    ]
    for uri, name, description, read in templates:
        server.resource(uri, name=name, description=description, mime_type=_MIME)(_handler(read))
    return resources


def _handler(read: Callable[[str], Any]) -> Callable[[str], Any]:
    """A template function taking exactly the URI's variable (the SDK checks)."""

    async def handler(run_id: str) -> str:
        result: str = await read(run_id)
        return result

    return handler
