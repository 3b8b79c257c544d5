"""What an export reports: its progress, its result, its manifest, an interrupted one."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .._version import __version__
from ..errors import ExportError
from .checkpoint import Checkpoint
from .checkpoint_load import read_checkpoint
from .files import ExportPaths
from .records import RECORD_FIELDS

__all__ = [
    "ExportProgress",
    "ExportResult",
    "PendingExport",
    "iso",
    "manifest_document",
    "pending_export",
    "result_of",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """A readable ISO 8601 UTC time (milliseconds, or microseconds when they matter)."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    if utc.microsecond % 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(milliseconds=value)


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True)
class ExportProgress:
    """Where an export stands; handed to the ``progress`` callback after every page."""

    count: int
    """Runs in the file so far (those of an interrupted attempt included)."""
    pages: int
    """Pages fetched by this attempt."""
    bytes: int
    """Bytes written to the partial file so far."""
    elapsed: float
    """Seconds since this attempt started."""
    resumed_from: int
    """Runs that an interrupted attempt had already written (0 for a fresh export)."""
    phase: str
    """``fetching``, ``converting`` (Parquet) or ``done``."""

    @property
    def rate(self) -> float:
        """Runs per second fetched by this attempt."""
        fetched = self.count - self.resumed_from
        return fetched / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class ExportResult:
    """What :func:`export_runs` wrote."""

    path: str
    format: str
    count: int
    since: datetime | None
    """The resolved window's start (None: from the first run)."""
    until: datetime | None
    """The resolved window's end, frozen when the export first started."""
    first_created_at: datetime | None
    last_created_at: datetime | None
    bytes: int
    sha256: str
    filters: dict[str, Any] = field(default_factory=dict)
    manifest_path: str | None = None
    resumed: bool = False
    status_counts: dict[str, int] = field(default_factory=dict)
    """Runs written per status (statuses sorted by name)."""
    running_count: int = 0
    """Runs still ``running`` when exported: the file is a snapshot of runs not yet ended."""
    error_count: int = 0
    """Runs that ended in ``error``."""
    cost_usd: float = 0.0
    """The total ``cost_usd`` of the runs written, exactly rounded (``math.fsum``)."""
    cost_credits: float = 0.0
    """The total ``cost_credits`` of the runs written, exactly rounded (``math.fsum``)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC strings)."""
        out = asdict(self)
        for key in ("since", "until", "first_created_at", "last_created_at"):
            out[key] = iso(out[key])
        return out


def result_of(
    state: Checkpoint, paths: ExportPaths, *, manifest: bool, resumed: bool
) -> ExportResult:
    """The result of the finished export whose final checkpoint is ``state``."""
    finished = state.finished
    if finished is None:  # pragma: no cover - only finished exports are reported
        raise ExportError(f"the export of {paths.target} is not finished", path=paths.target)
    counts = state.stats.sorted_counts()
    return ExportResult(
        path=paths.target,
        format=state.identity.format,
        count=state.count,
        since=_from_ms(state.since_ms),
        until=_from_ms(state.until_ms),
        first_created_at=_from_micros(state.first_us),
        last_created_at=_from_micros(state.last_us),
        bytes=finished.bytes,
        sha256=finished.sha256,
        filters=dict(state.identity.filters),
        manifest_path=paths.manifest if manifest else None,
        resumed=resumed,
        status_counts=counts,
        running_count=counts.get("running", 0),
        error_count=counts.get("error", 0),
        cost_usd=state.stats.cost_usd.value(),
        cost_credits=state.stats.cost_credits.value(),
    )


def manifest_document(result: ExportResult, state: Checkpoint) -> dict[str, Any]:
    """``PATH.manifest.json``: what the file holds and how it was made."""
    return {
        "file": os.path.basename(result.path),
        "format": result.format,
        "count": result.count,
        "bytes": result.bytes,
        "sha256": result.sha256,
        "filters": result.filters,
        "window": {"since": iso(result.since), "until": iso(result.until)},
        "first_created_at": iso(result.first_created_at),
        "last_created_at": iso(result.last_created_at),
        "status_counts": result.status_counts,
        "running_count": result.running_count,
        "error_count": result.error_count,
        "cost_usd": result.cost_usd,
        "cost_credits": result.cost_credits,
        "parallel": state.identity.parallel,
        "limit": state.identity.limit,
        "csv_safe": state.identity.csv_safe,
        "resumed": result.resumed,
        "started_at": iso(state.started_at),
        "finished_at": iso(datetime.now(UTC)),
        "columns": list(RECORD_FIELDS) if result.format != "jsonl" else None,
        "tool": "timbal-integrations",
        "tool_version": __version__,
    }


@dataclass(frozen=True)
class PendingExport:
    """An interrupted export found beside a target (see :func:`pending_export`)."""

    path: str
    format: str
    count: int
    """Runs already saved."""
    started_at: datetime
    """The 'now' of the first attempt; relative spans such as ``24h`` resolve against it."""
    filters: dict[str, Any]


def pending_export(path: str | os.PathLike[str]) -> PendingExport | None:
    """The interrupted export of ``path`` that ``resume=True`` would continue, if any.

    None when there is none, or when its checkpoint cannot be read (``resume=True``
    then says why).
    """
    paths = ExportPaths(path)
    try:
        state = read_checkpoint(paths)
    except ExportError:
        return None
    if state is None:
        return None
    return PendingExport(
        path=paths.target,
        format=state.identity.format,
        count=state.count,
        started_at=state.started_at,
        filters=dict(state.identity.filters),
    )
