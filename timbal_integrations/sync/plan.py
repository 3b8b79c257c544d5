"""Planning a sync: its window, which runs to re-check, and how a run is updated.

Pure functions of the state, the query and the clock; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from ..query import RunQuery
from .dataset import StoredRun, view
from .state import SyncState

__all__ = ["Window", "apply_detail", "change_kinds", "plan_window"]

_MS: Final = timedelta(milliseconds=1)
_DAY: Final = timedelta(days=1)
_IDENTITY: Final = frozenset({"id", "idempotency_key", "created_at"})


def _floor_ms(value: datetime) -> datetime:
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Window:
    """The runs a sync lists: ``since <= created_at < until`` (millisecond bounds, as
    the API compares them; ``since`` None: from the first run)."""

    since: datetime | None
    until: datetime

    @property
    def empty(self) -> bool:
        """True when nothing can be created inside it."""
        return self.since is not None and self.since >= self.until

    def contains(self, created: datetime) -> bool:
        """Whether a run created at ``created`` is listed by this window."""
        if self.empty:
            return False
        return (self.since is None or created >= self.since) and created < self.until

    def overlaps(self, day: date) -> bool:
        """Whether some instant of the UTC ``day`` is inside the window."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if self.empty:
            return False
        return (self.since is None or start + _DAY > self.since) and start < self.until

    def covers(self, day: date) -> bool:
        """Whether the window lists every run of the UTC ``day`` that can exist: the day
        starts inside it (runs after ``until`` are not created yet, or are past a
        query's ``until``)."""
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return not self.empty and (self.since is None or start >= self.since) and start < self.until

    def listing(self, query: RunQuery) -> RunQuery:
        """The listing of this window: ``query``'s filters on fields a run keeps for
        life (``status`` and ``sentiment`` are checked on each run instead, see
        :meth:`RunQuery.matches`), sorted by ``created_at`` ascending."""
        return query.replace(
            since=self.since,
            until=self.until,
            status=None,
            sentiment=None,
            sort_by="created_at",
            sort_order="asc",
        )


def plan_window(
    state: SyncState | None, query: RunQuery, now: datetime, lookback: timedelta
) -> Window:
    """The window of a sync at ``now``.

    It ends at ``now`` (to the millisecond, inclusive), never before the previous high-
    water mark, never after the query's ``until``. The first sync (no state) starts at
    the query's ``since`` (None: the first run); a later one ``lookback`` before the
    high-water mark, never before the dataset's start.
    """
    until = _floor_ms(now) + _MS
    if state is not None:
        until = max(until, state.high_water_mark)
    if query.until is not None:
        until = min(until, query.until)
    if state is None:
        return Window(query.since, until)
    since = _floor_ms(state.high_water_mark - lookback)
    if state.since is not None:
        since = max(since, state.since)
    return Window(since, until)


def apply_detail(record: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` (a run as the list sends it) updated from ``detail`` (the same run from
    ``get_run``): each field the record has takes the detail's value, nested objects
    field by field; fields the detail lacks keep their value, and fields only the
    detail has (``trace``, ``status_detail``...) are not added. ``id``,
    ``idempotency_key`` and ``created_at`` never change (the detail may spell the time
    otherwise)."""
    updated: dict[str, Any] = {}
    for key, value in record.items():
        if key in _IDENTITY or key not in detail:
            updated[key] = value
            continue
        new = detail[key]
        if isinstance(value, Mapping) and isinstance(new, Mapping):
            updated[key] = {k: new.get(k, v) for k, v in value.items()}
        else:
            updated[key] = new
    return updated


_KINDS: Final = (
    ("status", ("status",)),
    ("sentiment", ("last_reaction_sentiment",)),
    ("cost", ("cost_usd", "cost_credits")),
    ("duration", ("duration_ms",)),
)


def change_kinds(old: StoredRun, new: StoredRun, fmt: str) -> list[str]:
    """What moved between two versions of a run, as the format keeps it: kinds of
    :data:`~timbal_integrations.sync.report.CHANGE_KINDS` (empty when nothing did)."""
    if view(old, fmt) == view(new, fmt):
        return []
    kinds = [
        kind
        for kind, keys in _KINDS
        if any(old.record.get(key) != new.record.get(key) for key in keys)
    ]
    return kinds or ["other"]
