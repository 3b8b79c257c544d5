"""Argument completions (``completion/complete``) for the prompts' arguments and the
resource templates' ``run_id``.

MCP completes the arguments of prompts and resource templates (not of tools). What is
offered, for a partial value typed so far:

=================  ==========================================================
``status``         Timbal's statuses, and any other status of the recent runs
``sort_by``        ``id, created_at, duration_ms, cost_usd, cost_credits``
``sort_order``     ``desc, asc``
``bucket``         ``hour, day, week``
``since/until``    spans such as ``24h``, ``7d``, ``30d`` (``now`` for until)
``workforce_id``   the recent runs' workforces (matched by id or name)
``workforce``      their names
``user_id``        the recent runs' users (matched by id, email or name)
``user_email``     their emails
``sentiment``      ``positive, negative`` and those of the recent runs
``run_id``         the ids of the most recent runs
=================  ==========================================================

"Recent runs" are those :class:`~mcp_server.recent.RecentValues` scanned (the newest
``MCP_RECENT_SCAN_RUNS``, cached ``MCP_RECENT_TTL`` seconds). A completion never fails:
without a configured or reachable API, it offers the fixed values only. A value from
the server is offered only when an argument could take it (at most 512 characters) and
it holds no form of the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, CompletionArgument, CompletionContext

from timbal_integrations import defaults
from timbal_integrations.errors import TimbalError
from timbal_integrations.models import KNOWN_STATUSES
from timbal_integrations.query import SORT_FIELDS
from timbal_integrations.redact import redact
from timbal_integrations.summary import BUCKETS

from .known import KNOWN_SENTIMENTS
from .recent import Snapshot

if TYPE_CHECKING:
    from .tools import TimbalTools

__all__ = ["COMPLETED_ARGUMENTS", "Completions", "register_completions"]

logger = logging.getLogger("mcp_server")

_MAX_VALUES: Final = 100  # the protocol's bound
_FIXED: Final[dict[str, tuple[str, ...]]] = {
    "sort_by": SORT_FIELDS,
    "sort_order": ("desc", "asc"),
    "bucket": BUCKETS,
    "detail": ("summary", "full"),
    "since": ("1h", "24h", "7d", "14d", "30d", "90d"),
    "until": ("now", "1h", "24h", "7d", "30d"),
}
_RECENT: Final = (
    "status",
    "sentiment",
    "workforce_id",
    "workforce",
    "user_id",
    "user_email",
    "run_id",
)
COMPLETED_ARGUMENTS: Final = tuple(sorted({*_FIXED, *_RECENT}))
"""The argument names completions are offered for."""


def _candidates(name: str, snapshot: Snapshot | None) -> list[tuple[str, str]]:
    """(value, what a partial value is matched against), most useful first."""
    if name in _FIXED:
        return [(v, v) for v in _FIXED[name]]
    if name == "status":
        seen = list(snapshot.statuses) if snapshot else []
        return [(v, v) for v in dict.fromkeys([*KNOWN_STATUSES, *seen])]
    if name == "sentiment":
        seen = list(snapshot.sentiments) if snapshot else []
        return [(v, v) for v in dict.fromkeys([*KNOWN_SENTIMENTS, *seen])]
    if snapshot is None:
        return []
    if name in ("workforce_id", "workforce"):
        forces = sorted(snapshot.workforces.values(), key=lambda w: (-w.runs, w.id))
        if name == "workforce":
            return [(w.name, w.name) for w in forces if w.name]
        return [(w.id, f"{w.id} {w.name}") for w in forces]
    if name in ("user_id", "user_email"):
        users = sorted(snapshot.users.values(), key=lambda u: (-u.runs, u.id))
        if name == "user_email":
            return [(u.detail, f"{u.detail} {u.name}") for u in users if u.detail]
        return [(u.id, f"{u.id} {u.detail} {u.name}") for u in users]
    if name == "run_id":
        return [(v, v) for v in snapshot.run_ids]
    return []


def _matching(typed: str, candidates: Iterable[tuple[str, str]]) -> list[str]:
    """Values whose value starts with ``typed``, then those whose text contains it
    (case-insensitively), each once."""
    needle = typed.strip().casefold()
    pairs = list(candidates)
    first = [v for v, _ in pairs if v.casefold().startswith(needle)]
    then = [v for v, text in pairs if needle in text.casefold()]
    return list(dict.fromkeys([*first, *then]))


def _offerable(value: str, secret: str | None) -> bool:
    """Whether a value the server sent can be offered: no longer than an argument may be
    (``MAX_FILTER_CHARS``, ``MAX_RUN_ID_CHARS``), and holding no form of the API key (a
    masked value would be useless, so it is left out rather than redacted)."""
    bound = min(defaults.MAX_FILTER_CHARS, defaults.MAX_RUN_ID_CHARS)
    return len(value) <= bound and redact(value, secret) == value


class Completions:
    """The ``completion/complete`` handler, reading recent values through the tools'
    API client and cache."""

    def __init__(self, tools: TimbalTools) -> None:
        self.tools = tools

    async def _snapshot(self) -> Snapshot | None:
        try:
            async with self.tools.api() as client:
                return await self.tools.recent.get(client)
        except TimbalError as exc:  # unconfigured, unreachable: offer the fixed values
            logger.debug("completions without recent runs: %s", type(exc).__name__)
            return None

    async def complete(
        self, ref: Any, argument: CompletionArgument, context: CompletionContext | None
    ) -> Completion:
        """Values for ``argument`` (see the module docstring)."""
        name = argument.name
        if name not in COMPLETED_ARGUMENTS:
            return Completion(values=[], total=0, has_more=False)
        snapshot = None if name in _FIXED else await self._snapshot()
        values = _matching(argument.value or "", _candidates(name, snapshot))
        if snapshot is not None:  # values a server sent: only those an argument can take
            secret = self.tools.settings.secret()
            values = [v for v in values if _offerable(v, secret)]
        return Completion(
            values=values[:_MAX_VALUES], total=len(values), has_more=len(values) > _MAX_VALUES
        )


def register_completions(server: MCPServer[Any], tools: TimbalTools) -> Completions:
    """Serve ``completion/complete`` on ``server``."""
    completions = Completions(tools)
    # The SDK's completion() decorator is untyped; it registers the handler as given.
    server.completion()(completions.complete)  # type: ignore[no-untyped-call]
    return completions
