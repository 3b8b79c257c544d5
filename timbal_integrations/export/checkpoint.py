"""The checkpoint of an export (``PATH.part.json``): what it holds, typed and versioned.

A checkpoint says which export it belongs to (:class:`Identity`: format, filters,
parallelism, limit, CSV-safe mode, API host, org and project), the time window it froze,
how far the listing got (a window and a page token, or one :class:`SpoolState` per piece
of a parallel export: pieces split while they are fetched, and each split adds one, its
spool starting empty), how many runs and bytes of ``PATH.part`` that covers and the
SHA-256 of those bytes (and the same for each spool: its bytes, runs and SHA-256), the
statistics of the runs written (:class:`ExportStats`), and, once the file is complete,
its size and SHA-256 (:class:`Finished`).

This module owns that model and its JSON form (version :data:`CHECKPOINT_VERSION`,
replaced atomically by :meth:`Checkpoint.save`, sealed by the SHA-256 of all its other
entries, statistics included: ``integrity``). Reading one back, every entry checked, is
:mod:`~timbal_integrations.export.checkpoint_load`; the seal and the checks of the
partial files (:meth:`Checkpoint.verify_part`, :meth:`Checkpoint.verify_spool`: their
SHA-256 and number of runs must be what the checkpoint says, so a truncated or altered
``PATH.part`` or spool is refused rather than finished and published) are
:mod:`~timbal_integrations.export.integrity`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

from .._exact import ExactSum
from .._version import __version__
from .files import ExportPaths, replace_json
from .integrity import EMPTY_SHA256, seal, verify_prefix
from .records import micros

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "ExportStats",
    "Finished",
    "Identity",
    "SpoolState",
]

CHECKPOINT_VERSION: Final = 2
"""The version of the checkpoint format this module reads and writes (2: the statistics
of what was written; a parallel export's spools are pieces with their own time ranges,
and ``parallel`` may be ``"auto"``; the SHA-256 of the bytes covered, per file; a
CSV-safe flag in the identity; a seal)."""


@dataclass(frozen=True)
class Identity:
    """What makes two exports the same one: only a checkpoint of the same identity can be
    resumed."""

    format: str
    filters: dict[str, Any]
    parallel: int | str
    limit: int | None
    base_url: str
    org_id: str
    project_id: str
    csv_safe: bool = False

    _LABELS = (
        ("format", "format"),
        ("filters", "filters"),
        ("parallel", "parallel setting"),
        ("limit", "limit"),
        ("csv_safe", "CSV-safe setting"),
        ("base_url", "API host"),
        ("org_id", "org"),
        ("project_id", "project"),
    )

    def difference(self, new: Identity) -> str:
        """How ``new`` differs from this identity, in words (for an error)."""
        for key, label in self._LABELS:
            if getattr(self, key) != getattr(new, key):
                return f"its {label} was {getattr(self, key)!r}, now {getattr(new, key)!r}"
        return "it was written by a different version"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {key: getattr(self, key) for key, _ in self._LABELS}


@dataclass
class SpoolState:
    """Where one piece of a parallel export stands, in its spool file ``PATH.part.w<id>``.

    The piece holds the runs created in ``[since_ms, until_ms)`` and is paged with the
    query of ``[window_since_ms, window_until_ms)`` (see
    :class:`~timbal_integrations.client.Piece`). A piece split off another starts with
    an empty spool (``offset`` 0, ``sha256`` of nothing); the piece it came from keeps
    its spool, whose covered bytes stay checked."""

    token: str | None = None
    """The page token to continue from (None: the piece's first page, or done)."""
    offset: int = 0
    """Bytes of the spool the checkpoint covers."""
    count: int = 0
    """Runs in those bytes."""
    done: bool = False
    """True once the piece's last page is in the spool."""
    id: int = 0
    since_ms: int = 0
    until_ms: int = 0
    window_since_ms: int = 0
    window_until_ms: int = 0
    sha256: str = EMPTY_SHA256
    """The SHA-256 of the ``offset`` bytes covered."""


_STATUS: Final = itemgetter("status")
_COST_USD: Final = itemgetter("cost_usd")
_COST_CREDITS: Final = itemgetter("cost_credits")


@dataclass
class ExportStats:
    """Exact statistics of the runs written so far: how many per status, and the total
    costs (:class:`~timbal_integrations._exact.ExactSum`, so a total is the correctly
    rounded sum of every run's cost, across a resume too)."""

    status_counts: dict[str, int] = field(default_factory=dict)
    cost_usd: ExactSum = field(default_factory=ExactSum)
    cost_credits: ExactSum = field(default_factory=ExactSum)

    def tally(self, runs: Sequence[Mapping[str, Any]]) -> None:
        """Count runs (the server's dicts) that were just written."""
        counts = self.status_counts
        for status, n in Counter(map(_STATUS, runs)).items():
            counts[status] = counts.get(status, 0) + n
        self.cost_usd.add_all(map(_COST_USD, runs))
        self.cost_credits.add_all(map(_COST_CREDITS, runs))

    def sorted_counts(self) -> dict[str, int]:
        """Runs per status, statuses sorted by name."""
        return {status: self.status_counts[status] for status in sorted(self.status_counts)}

    def to_json(self) -> dict[str, Any]:
        """The JSON form: counts, and each total's exact partials as ``float.hex``."""
        return {
            "status_counts": self.sorted_counts(),
            "cost_usd": [x.hex() for x in self.cost_usd.partials],
            "cost_credits": [x.hex() for x in self.cost_credits.partials],
        }


@dataclass(frozen=True)
class Finished:
    """The finished file, before it is renamed into place."""

    bytes: int
    sha256: str


@dataclass
class Checkpoint:
    """The state of one export, as saved in ``PATH.part.json``."""

    identity: Identity
    started_at: datetime
    """The 'now' of the first attempt; relative spans such as ``24h`` resolve against it."""
    tool_version: str = __version__
    windows: list[tuple[int | None, int | None]] = field(default_factory=list)
    """The frozen time windows, as epoch milliseconds ``[since, until)``."""
    since_ms: int | None = None
    until_ms: int | None = None
    window: int = 0
    """Sequential export: the window being fetched..."""
    token: str | None = None
    """...and the page token to continue it from."""
    fetched_all: bool = False
    count: int = 0
    """Runs in ``PATH.part`` (those of earlier attempts included)."""
    offset: int = 0
    """Bytes of ``PATH.part`` the checkpoint covers."""
    sha256: str = EMPTY_SHA256
    """The SHA-256 of those bytes."""
    first_us: int | None = None
    """The earliest ``created_at`` exported, in epoch microseconds."""
    last_us: int | None = None
    spools: list[SpoolState] | None = None
    """Parallel export: one state per piece (None until the pieces are fetched)."""
    next_piece: int = 0
    """Parallel export: the id the next piece split off gets."""
    base_offset: int = 0
    """Parallel export: the bytes of ``PATH.part`` before the spools are appended."""
    concatenated: bool = False
    """Parallel export: the spools are appended to ``PATH.part``."""
    finished: Finished | None = None
    stats: ExportStats = field(default_factory=ExportStats)
    """The statistics of the ``count`` runs written."""

    def widen_span(self, created: Sequence[datetime]) -> None:
        """Widen the first/last ``created_at`` the manifest reports to cover ``created``."""
        low, high = micros(min(created)), micros(max(created))
        self.first_us = low if self.first_us is None else min(self.first_us, low)
        self.last_us = high if self.last_us is None else max(self.last_us, high)

    def save(self, paths: ExportPaths) -> None:
        """Replace ``PATH.part.json`` with this state, atomically."""
        replace_json(paths.checkpoint, self.to_json())

    def part_runs(self) -> int:
        """Runs in the bytes of ``PATH.part`` the checkpoint covers (a parallel export's
        spools hold the others until they are concatenated)."""
        if self.spools is None or self.concatenated:
            return self.count
        return self.count - sum(spool.count for spool in self.spools)

    def verify_part(self, paths: ExportPaths) -> Any:
        """Check that ``PATH.part`` starts with the bytes this checkpoint covers: their
        SHA-256 and number of runs. Returns the SHA-256 (a ``hashlib`` object, to
        continue); :class:`ExportError` naming what differs otherwise."""
        header = 1 if self.identity.format == "csv" else 0
        return verify_prefix(
            paths.part,
            self.offset,
            self.sha256,
            self.part_runs() + header,
            csv=self.identity.format == "csv",
            what="its checkpoint",
        )

    def verify_spool(self, paths: ExportPaths, position: int) -> Any:
        """Check the spool of ``spools[position]`` (the file of its piece's id) like
        :meth:`verify_part`."""
        assert self.spools is not None
        spool = self.spools[position]
        return verify_prefix(
            paths.window(spool.id),
            spool.offset,
            spool.sha256,
            spool.count,
            csv=self.identity.format == "csv",
            what=f"its checkpoint (spools[{position}])",
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form (version :data:`CHECKPOINT_VERSION`), sealed."""
        data = self._entries()
        data["integrity"] = seal(data)
        return data

    def _entries(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "tool_version": self.tool_version,
            "identity": self.identity.to_json(),
            "started_at": self.started_at.isoformat(),
            "windows": [list(window) for window in self.windows],
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "window": self.window,
            "token": self.token,
            "fetched_all": self.fetched_all,
            "count": self.count,
            "offset": self.offset,
            "sha256": self.sha256,
            "first_us": self.first_us,
            "last_us": self.last_us,
            "spools": None
            if self.spools is None
            else [
                {
                    "token": s.token,
                    "offset": s.offset,
                    "count": s.count,
                    "done": s.done,
                    "id": s.id,
                    "since_ms": s.since_ms,
                    "until_ms": s.until_ms,
                    "window_since_ms": s.window_since_ms,
                    "window_until_ms": s.window_until_ms,
                    "sha256": s.sha256,
                }
                for s in self.spools
            ],
            "next_piece": self.next_piece,
            "base_offset": self.base_offset,
            "concatenated": self.concatenated,
            "finished": None
            if self.finished is None
            else {"bytes": self.finished.bytes, "sha256": self.finished.sha256},
            "stats": self.stats.to_json(),
        }
