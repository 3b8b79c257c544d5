"""What a sync reports: its progress while it runs, and :class:`SyncReport` at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from .. import defaults
from ..export.results import iso
from ..query import format_span

__all__ = ["CHANGE_KINDS", "IdList", "SyncProgress", "SyncReport", "SyncRequests"]

CHANGE_KINDS: Final = ("status", "sentiment", "cost", "duration", "other")
"""What a changed run may have changed: ``status``, ``sentiment``
(``last_reaction_sentiment``), ``cost`` (``cost_usd`` or ``cost_credits``),
``duration`` (``duration_ms``), or ``other`` fields only."""


@dataclass(frozen=True)
class SyncProgress:
    """Where a sync stands; handed to the ``progress`` callback as it goes.

    The same fields as an export's progress, so the same display shows both.
    """

    count: int
    """Runs fetched so far (listed, and re-checked by id)."""
    pages: int
    """List pages fetched so far."""
    bytes: int
    """Bytes of partitions written so far."""
    elapsed: float
    """Seconds since the sync started."""
    phase: str
    """``rechecking``, ``fetching``, ``writing`` or ``done``."""
    resumed_from: int = 0
    """Always 0 (a sync is not resumed: it starts over from its state)."""

    @property
    def rate(self) -> float:
        """Runs per second fetched."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


class IdList:
    """A count and the first few ids (at most :data:`defaults.SYNC_REPORT_IDS`)."""

    __slots__ = ("count", "ids")

    def __init__(self) -> None:
        self.count = 0
        self.ids: list[str] = []

    def add(self, run_id: str) -> None:
        """Count one more run."""
        self.count += 1
        if len(self.ids) < defaults.SYNC_REPORT_IDS:
            self.ids.append(run_id)


@dataclass
class SyncRequests:
    """The HTTP requests a sync made."""

    list_pages: int = 0
    """Pages of the runs listing (the window's)."""
    get_run: int = 0
    """Runs fetched by id: re-checks of runs that were still running."""
    retries: int = 0
    """Requests that were retried (429, 5xx, network)."""
    total: int = 0
    """Every request sent, retries and the listing's window probes included."""


@dataclass
class SyncReport:
    """What :func:`~timbal_integrations.sync.sync_runs` did.

    ``changed_fields`` counts, per :data:`CHANGE_KINDS`, the changed runs in which that
    kind of field moved (a run may count under several); each ``*_ids`` list holds the
    first :data:`~timbal_integrations.defaults.SYNC_REPORT_IDS` ids, the counts are
    whole. :meth:`to_dict` is JSON-ready.
    """

    path: str
    """The dataset's root (a directory, or an object store URI)."""
    format: str
    mode: str
    """``first`` (no state yet), ``incremental`` or ``full_refresh``."""
    since: datetime | None
    """The start of the window listed (None: from the first run)."""
    until: datetime
    """The end of the window listed: the new high-water mark."""
    lookback: timedelta
    runs: int
    """Runs in the dataset after the sync."""
    still_open: int
    """Runs in the dataset still ``running`` (re-checked by id at the next sync)."""
    added: int = 0
    changed: int = 0
    changed_fields: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGE_KINDS, 0))
    vanished: int = 0
    """Runs removed because the API no longer has them: a 404 when re-checked, or no
    longer listed in the window."""
    unmatched: int = 0
    """Runs removed because they no longer match a ``status`` or ``sentiment`` filter."""
    rechecked: int = 0
    """Runs fetched by id (still running at the last sync, older than the window)."""
    partitions: int = 0
    """Partitions in the dataset after the sync."""
    partitions_rewritten: int = 0
    """Partitions written because their content changed (new ones included)."""
    partitions_removed: int = 0
    """Partitions removed because no run is left in them."""
    partitions_unchanged: int = 0
    """Partitions not touched (their files, and modification times, are as they were)."""
    recovered: bool = False
    """An interrupted sync's committed changes were applied first."""
    requests: SyncRequests = field(default_factory=SyncRequests)
    seconds: float = 0.0
    added_ids: list[str] = field(default_factory=list)
    changed_ids: dict[str, list[str]] = field(default_factory=dict)
    vanished_ids: list[str] = field(default_factory=list)
    unmatched_ids: list[str] = field(default_factory=list)
    rewritten_days: list[str] = field(default_factory=list)
    """The days rewritten (or removed), oldest first, at most ``SYNC_REPORT_IDS``."""
    manifest_path: str = ""
    state_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC strings, the lookback as a span)."""
        out = asdict(self)
        out["since"] = iso(self.since)
        out["until"] = iso(self.until)
        out["lookback"] = format_span(self.lookback)
        return out

    def summary_line(self) -> str:
        """One line: what changed, what is still open, what was written, what it cost."""
        moved = ", ".join(f"{k} {n:,}" for k, n in self.changed_fields.items() if n)
        changed = f"{self.changed:,} changed" + (f" ({moved})" if moved else "")
        removed = f", {self.vanished:,} vanished" if self.vanished else ""
        if self.unmatched:
            removed += f", {self.unmatched:,} no longer matching"
        requests = self.requests
        retries = f", {requests.retries:,} retried" if requests.retries else ""
        return (
            f"{self.runs:,} runs: {self.added:,} added, {changed}{removed}, "
            f"{self.still_open:,} still open; {self.partitions_rewritten:,} of "
            f"{self.partitions:,} partitions rewritten"
            + (f", {self.partitions_removed:,} removed" if self.partitions_removed else "")
            + f"; {requests.total:,} requests ({requests.list_pages:,} pages, "
            f"{requests.get_run:,} by id{retries}) in {self.seconds:.1f}s"
        )
