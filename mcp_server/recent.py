"""What the project's recent runs show: the statuses, sentiments, users and workforces
in use, cached briefly.

Three things need to know which values exist, and the API has no endpoint listing
them: argument completions (``completion/complete`` for ``user_id``, ``workforce_id``,
``status``...), resolving a workforce *name* to its id (``list_runs(workforce=...)``),
and telling a model that a filter value it used matches nothing known (``status:
"eror"``). :class:`RecentValues` reads the newest runs of the project (at most
``max_runs``, one listing, newest first) and keeps what it saw for ``ttl`` seconds
of an injectable monotonic ``clock``; concurrent callers share one scan.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from timbal_integrations import defaults

if TYPE_CHECKING:
    from timbal_integrations.client import AsyncTimbalClient
    from timbal_integrations.config import ClientConfig

__all__ = ["Named", "RecentValues", "Snapshot"]

_RUN_IDS_KEPT: Final = 200


@dataclass(frozen=True)
class Named:
    """A user or workforce seen in recent runs: its id, name, a detail (a user's email,
    a workforce's type) and how many of the scanned runs it has."""

    id: str
    name: str
    detail: str
    runs: int


@dataclass(frozen=True)
class Snapshot:
    """What ``scanned`` recent runs hold. ``complete`` is True when they are every run
    of the project (the scan reached the end before its bound)."""

    scanned: int
    complete: bool
    statuses: Counter[str] = field(default_factory=Counter)
    sentiments: Counter[str] = field(default_factory=Counter)
    users: dict[str, Named] = field(default_factory=dict)
    workforces: dict[str, Named] = field(default_factory=dict)
    run_ids: tuple[str, ...] = ()

    def workforces_named(self, name: str) -> list[Named]:
        """The workforces whose name is ``name``, compared case-insensitively (and with
        surrounding space ignored), most runs first."""
        wanted = name.strip().casefold()
        found = [w for w in self.workforces.values() if w.name.strip().casefold() == wanted]
        return sorted(found, key=lambda w: (-w.runs, w.id))


class RecentValues:
    """A cache of one :class:`Snapshot` (see the module docstring).

    ``clock`` is ``time.monotonic`` unless a test injects another. A snapshot is kept
    for ``ttl`` seconds and for one client configuration: a server whose settings
    change scans again.
    """

    def __init__(
        self,
        *,
        max_runs: int = defaults.MCP_RECENT_SCAN_RUNS,
        ttl: float = defaults.MCP_RECENT_TTL,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_runs = max_runs
        self.ttl = ttl
        self._clock = clock or time.monotonic
        self._snapshot: Snapshot | None = None
        self._taken_at = 0.0
        self._config: ClientConfig | None = None
        self._lock: asyncio.Lock | None = None
        self.scans = 0
        """Scans made so far (tests read it)."""

    def cached(self, config: ClientConfig) -> Snapshot | None:
        """The snapshot if it is fresh and of ``config``, else None (no request)."""
        if self._snapshot is None or self._config != config:
            return None
        if self._clock() - self._taken_at > self.ttl:
            return None
        return self._snapshot

    async def get(self, client: AsyncTimbalClient) -> Snapshot:
        """The fresh snapshot, scanning the newest runs through ``client`` if needed."""
        config = client.config
        fresh = self.cached(config)
        if fresh is not None:
            return fresh
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            fresh = self.cached(config)  # another caller may have scanned meanwhile
            if fresh is not None:
                return fresh
            snapshot = await self._scan(client)
            self._snapshot, self._config, self._taken_at = snapshot, config, self._clock()
            self.scans += 1
            return snapshot

    async def _scan(self, client: AsyncTimbalClient) -> Snapshot:
        statuses: Counter[str] = Counter()
        sentiments: Counter[str] = Counter()
        users: dict[str, tuple[str, str]] = {}
        user_runs: Counter[str] = Counter()
        forces: dict[str, tuple[str, str]] = {}
        force_runs: Counter[str] = Counter()
        run_ids: list[str] = []
        scanned = 0
        complete = True
        async for run in client.list_runs(limit=self.max_runs + 1):
            if scanned >= self.max_runs:
                complete = False
                break
            scanned += 1
            statuses[run.status] += 1
            if run.last_reaction_sentiment:
                sentiments[run.last_reaction_sentiment] += 1
            users.setdefault(run.user.id, (run.user.name, run.user.email))
            user_runs[run.user.id] += 1
            forces.setdefault(run.workforce.id, (run.workforce.name, run.workforce.type))
            force_runs[run.workforce.id] += 1
            if len(run_ids) < _RUN_IDS_KEPT:
                run_ids.append(run.id)
        return Snapshot(
            scanned=scanned,
            complete=complete,
            statuses=statuses,
            sentiments=sentiments,
            users={k: Named(k, n, e, user_runs[k]) for k, (n, e) in users.items()},
            workforces={k: Named(k, n, t, force_runs[k]) for k, (n, t) in forces.items()},
            run_ids=tuple(run_ids),
        )
