"""``get_run``: one run and its newest reactions, read at once, shaped within a budget.

The run and its reactions are requested together; reactions that cannot be read are
reported in the result (the run is shown even so). The shaping (the span tree, the
previews, the size budget) is :mod:`mcp_server.trace_shaping`'s; the result links the
run's resources, which hold it uncut.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mcp.types import CallToolResult, ResourceLink, TextContent

from timbal_integrations import defaults
from timbal_integrations.errors import TimbalError
from timbal_integrations.models import Reaction
from timbal_integrations.redact import redact, redact_data

from ..failures import explain
from ..trace_shaping import Detail, RunView, resource_uris, shape_run

if TYPE_CHECKING:
    from timbal_integrations.client import AsyncTimbalClient

    from ..settings import ServerSettings

__all__ = ["read_run", "run_result"]

_LINKS = (
    ("run", "run {}", "the run as JSON: every field, the whole trace, its reactions"),
    ("trace", "trace of run {}", "the run's trace as JSON, every span uncut"),
)


async def _reactions(
    client: AsyncTimbalClient, run_id: str, settings: ServerSettings
) -> tuple[list[Reaction], bool, str | None]:
    """The newest reactions, whether there are more, or why they could not be read
    (the run is shown even so)."""
    shown_at_most = defaults.MCP_MAX_REACTIONS
    try:
        got = [r async for r in client.list_reactions(run_id, limit=shown_at_most + 1)]
    except TimbalError as exc:
        return [], False, explain(exc, settings)
    return got[:shown_at_most], len(got) > shown_at_most, None


async def read_run(
    client: AsyncTimbalClient, run_id: str, detail: Detail, settings: ServerSettings
) -> tuple[str, RunView]:
    """The run's id and its shaped view at ``detail``."""
    # Both requests at once; each one finishes before the client may close.
    got_run, got_reactions = await asyncio.gather(
        client.get_run(run_id), _reactions(client, run_id, settings), return_exceptions=True
    )
    if isinstance(got_run, BaseException):
        raise got_run
    if isinstance(got_reactions, BaseException):
        raise got_reactions
    reactions, more, problem = got_reactions
    view = shape_run(
        got_run, reactions, level=detail, more_reactions=more, reactions_problem=problem
    )
    return got_run.id, view


def run_result(run_id: str, view: RunView, secret: str | None) -> CallToolResult:
    """The tool result: the view's text, links to the run's resources, the structured
    view; the API key redacted."""
    uris = resource_uris(run_id)
    links = [
        ResourceLink(
            type="resource_link",
            uri=uris[kind],
            name=redact(name.format(run_id), secret),
            description=description,
            mime_type="application/json",
        )
        for kind, name, description in _LINKS
    ]
    # Shaped first (bounded), then redacted: a mask is never longer than what it hides.
    structured: dict[str, Any] = redact_data(view.structured, secret)
    return CallToolResult(
        content=[TextContent(type="text", text=redact(view.text, secret)), *links],
        structured_content=structured,
    )
