"""File exports of run history: JSON Lines, CSV and Parquet, streamed, atomic and resumable.

::

    from timbal_integrations import RunQuery, TimbalClient
    from timbal_integrations.export import export_runs

    with TimbalClient() as client:
        result = export_runs(client, RunQuery(since="7d"), "runs.parquet")
        print(result.count, result.sha256)

Guarantees of :func:`export_runs`:

- **Streaming.** Runs are written page by page; memory stays flat whatever the number of
  runs (Parquet is written in row groups).
- **Atomic.** Data goes to ``PATH.part`` beside the target, which is renamed to ``PATH``
  only once complete and synced. ``PATH`` never holds a partial export.
- **Resumable.** ``PATH.part.json`` is a checkpoint (the query, its frozen time window,
  the position in the listing, the run count and the byte offset of ``PATH.part`` it
  covers), replaced atomically as pages are written. After an interruption (Ctrl-C, a
  crash, ``kill -9``, an API failure after retries), ``resume=True`` cuts ``PATH.part``
  back to the checkpoint and continues from that position: the finished file holds every
  run exactly once. Parquet cannot be appended to after a crash, so it is spooled to
  ``PATH.part`` (one compact JSON array per run) and converted in row groups at the end.
- **Described.** ``PATH.manifest.json`` records the filters, the resolved window, the run
  count, the first and last ``created_at``, the byte size, the SHA-256, the format, the tool
  version, and exact statistics of what was written: runs per status, how many were still
  ``running`` (the file is then a snapshot of runs that have not ended), how many ended in
  ``error``, and the total cost (``math.fsum``-exact). They are tallied from the pages as
  they are written and kept in the checkpoint, so a resumed export reports the same numbers.

JSON Lines keeps every field the server sent, unknown ones included (and only those).
CSV and Parquet use the flat record form (:data:`~timbal_integrations.models.RECORD_FIELDS`)
with a stable column order and types: in CSV, ``created_at`` is always
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and an empty cell is a null; in Parquet, ``created_at``
is ``timestamp[us, tz=UTC]``, ``duration_ms`` ``int64``, costs ``float64``, the rest
strings. Parquet needs the optional ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

import orjson

from ._pages import RECORD_FIELDS, RawPage
from ._version import __version__
from .client import TimbalClient, _check_limit, _check_parallel
from .errors import ExportError, QueryError
from .query import RunQuery, to_epoch_ms

if TYPE_CHECKING:  # an export from the API never builds models; writers of Runs import it
    from .models import Run

__all__ = [
    "FORMATS",
    "PARQUET_INSTALL_HINT",
    "CsvWriter",
    "ExportProgress",
    "ExportResult",
    "JsonlWriter",
    "ParquetWriter",
    "PendingExport",
    "RunWriter",
    "export_runs",
    "infer_format",
    "manifest_path",
    "open_writer",
    "parquet_available",
    "parquet_schema",
    "pending_export",
]

logger = logging.getLogger("timbal_integrations.export")

FORMATS: Final = ("jsonl", "csv", "parquet")
"""The export formats."""

PARQUET_INSTALL_HINT: Final = "pip install 'timbal-integrations[parquet]'"
"""How to get Parquet support (pyarrow)."""

_EXTENSIONS: Final = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_CHECKPOINT_VERSION: Final = 2  # 2: the statistics of what was written
_CHECKPOINT_EVERY: Final = 0.2  # seconds between checkpoints while fetching
_ROW_GROUP_SIZE: Final = 16_384  # rows; bounds the memory of a Parquet export (RESULTS.md)
_ARROW_BATCH: Final = 4096
_SPOOL_READ: Final = 1 << 20
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


# --------------------------------------------------------------------------- formats


def infer_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The export format: ``format`` when given, else from the file extension.

    ``.jsonl``/``.ndjson`` → jsonl, ``.csv`` → csv, ``.parquet``/``.pq`` → parquet.
    Raises :class:`QueryError` naming ``format`` when neither says a known format.
    """
    if format is not None:
        name = format.strip().lower() if isinstance(format, str) else format
        if name not in FORMATS:
            raise QueryError("format", f"{format!r} is not one of {', '.join(FORMATS)}")
        return str(name)
    suffix = Path(os.fspath(path)).suffix.lower()
    known = _EXTENSIONS.get(suffix)
    if known is None:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise QueryError(
            "format",
            f"cannot tell the format of {os.fspath(path)!r} ({shown}); name it "
            f"(one of {', '.join(FORMATS)}) or use a .jsonl, .csv or .parquet file name",
        )
    return known


def parquet_available() -> bool:
    """True when pyarrow can be imported (Parquet export is possible)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(
            f"Parquet export needs pyarrow, which is not installed: {PARQUET_INSTALL_HINT}"
        ) from None
    return pa, pq


def parquet_schema() -> Any:
    """The Parquet schema of the flat record form (a ``pyarrow.Schema``)."""
    pa, _ = _pyarrow()
    string, required = pa.string(), {"id", "idempotency_key", "created_at", "status"}
    types = {
        "created_at": pa.timestamp("us", tz="UTC"),
        "duration_ms": pa.int64(),
        "cost_usd": pa.float64(),
        "cost_credits": pa.float64(),
    }
    return pa.schema(
        [
            pa.field(name, types.get(name, string), nullable=name not in required)
            for name in RECORD_FIELDS
        ]
    )


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_US


def _iso_us(value: datetime) -> str:
    """The stable CSV spelling of a time: microseconds, UTC, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _iso(value: datetime | None) -> str | None:
    """A readable ISO 8601 UTC time (milliseconds, or microseconds when they matter)."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    if utc.microsecond % 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def _raw_row(run: dict[str, Any], created: datetime) -> list[Any]:
    """The flat record of a run dict as a list in RECORD_FIELDS order (created_at in µs)."""
    get = run.get
    user = run["user"]
    force = run["workforce"]
    return [
        run["id"],
        run["idempotency_key"],
        _micros(created),
        run["status"],
        get("duration_ms"),
        run["cost_usd"],
        run["cost_credits"],
        user["id"],
        user["name"],
        user["email"],
        force["id"],
        force["name"],
        force["type"],
        get("group_id"),
        get("parent_id"),
        get("last_reaction_sentiment"),
    ]


def _record_row(run: Run) -> list[Any]:
    """The flat record of a run model (same layout as :func:`_raw_row`)."""
    return _raw_row(run.model_dump(include=_ROW_SOURCE), run.created_at)


_ROW_SOURCE: Final = {
    "id",
    "idempotency_key",
    "status",
    "duration_ms",
    "cost_usd",
    "cost_credits",
    "group_id",
    "parent_id",
    "last_reaction_sentiment",
    "user",
    "workforce",
}


_CREATED_AT = RECORD_FIELDS.index("created_at")


def _encode_jsonl(runs: Sequence[Run]) -> bytes:
    """One JSON object per line with every field the server sent (and only those)."""
    from .models import Run

    to_json = Run.__pydantic_serializer__.to_json
    return b"".join([to_json(run, exclude_unset=True) + b"\n" for run in runs])


def _encode_csv(runs: Sequence[Run], header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(RECORD_FIELDS)
    for run in runs:
        row = _record_row(run)
        row[_CREATED_AT] = _iso_us(run.created_at)
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


def _encode_spool(runs: Sequence[Run]) -> bytes:
    """The Parquet spool: one compact JSON array per run, in RECORD_FIELDS order."""
    return b"".join([orjson.dumps(_record_row(run)) + b"\n" for run in runs])


# The export hot path: pages whose runs are the server's dicts (see RawPage). JSON Lines
# re-encodes each dict with orjson (every field the server sent, its own spelling of
# created_at); CSV and the Parquet spool use created_at as parsed by parse_raw_page.


def _raw_jsonl(page: RawPage, count: int) -> bytes:
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    runs = page.runs if count >= len(page.runs) else page.runs[:count]
    return b"".join([dumps(run, option=newline) for run in runs])


def _raw_csv(page: RawPage, count: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for run, created in zip(page.runs[:count], page.created, strict=False):
        row = _raw_row(run, created)
        row[_CREATED_AT] = _iso_us(created)
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


def _raw_spool(page: RawPage, count: int) -> bytes:
    dumps = orjson.dumps
    return b"".join(
        [
            dumps(_raw_row(run, created)) + b"\n"
            for run, created in zip(page.runs[:count], page.created, strict=False)
        ]
    )


# --------------------------------------------------------------------------- writers


class RunWriter(Protocol):
    """Writes runs to a binary file in one format. ``close`` finishes the format, not the file."""

    format: str

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Write (or buffer) runs; returns the bytes written to the file by this call."""
        ...

    def close(self) -> None:
        """Write what is buffered and any trailer; the file itself stays open."""
        ...


class JsonlWriter:
    """JSON Lines: one object per run, every field the server sent, unknown ones included."""

    format = "jsonl"

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    @staticmethod
    def encode(runs: Sequence[Run]) -> bytes:
        """The bytes of ``runs`` as JSON Lines."""
        return _encode_jsonl(runs)

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Write ``runs``; returns the bytes written."""
        data = _encode_jsonl(runs)
        self._file.write(data)
        return len(data)

    def close(self) -> None:
        """Flush the file (it stays open)."""
        self._file.flush()


class CsvWriter:
    """CSV (RFC 4180, UTF-8) of the flat record form, with a header row by default."""

    format = "csv"

    def __init__(self, file: IO[bytes], *, header: bool = True) -> None:
        self._file = file
        self._header = header

    @staticmethod
    def header() -> bytes:
        """The header row."""
        return _encode_csv((), header=True)

    @staticmethod
    def encode(runs: Sequence[Run]) -> bytes:
        """The bytes of ``runs`` as CSV rows (no header)."""
        return _encode_csv(runs)

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Write ``runs`` (after the header, the first time); returns the bytes written."""
        data = _encode_csv(runs, header=self._header)
        self._header = False
        self._file.write(data)
        return len(data)

    def close(self) -> None:
        """Write the header if nothing was written, then flush (the file stays open)."""
        if self._header:
            self.write_runs(())
        self._file.flush()


class ParquetWriter:
    """Parquet of the flat record form, written in row groups of ``row_group_size`` runs.

    Rows are turned into Arrow record batches a few thousand at a time, so memory holds
    at most one row group in Arrow's compact form.
    """

    format = "parquet"

    def __init__(self, file: IO[bytes] | str, *, row_group_size: int = _ROW_GROUP_SIZE) -> None:
        pa, pq = _pyarrow()
        self._pa = pa
        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(file, self._schema)
        self._row_group_size = max(1, row_group_size)
        self._batch_size = min(_ARROW_BATCH, self._row_group_size)
        self._rows: list[Sequence[Any]] = []
        self._batches: list[Any] = []
        self._pending = 0
        self.rows = 0
        """Rows written out so far."""

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Buffer ``runs``; a full row group is written out. Returns 0 (bytes are not known)."""
        self.write_rows([_record_row(run) for run in runs])
        return 0

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Buffer flat rows (RECORD_FIELDS order, ``created_at`` in epoch microseconds)."""
        buffer = self._rows
        buffer.extend(rows)
        size = self._batch_size
        if len(buffer) >= size:
            start = 0
            while len(buffer) - start >= size:
                self._to_batch(buffer[start : start + size])
                start += size
            del buffer[:start]

    def _to_batch(self, rows: Sequence[Sequence[Any]]) -> None:
        pa = self._pa
        columns = list(zip(*rows, strict=True))
        arrays = [
            pa.array(values, type=schema_field.type)
            for values, schema_field in zip(columns, self._schema, strict=True)
        ]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._pending += len(rows)
        if self._pending >= self._row_group_size:
            self._write_group()

    def _write_group(self) -> None:
        if not self._pending:
            return
        table = self._pa.Table.from_batches(self._batches, schema=self._schema)
        self._writer.write_table(table, row_group_size=self._row_group_size)
        self.rows += self._pending
        self._batches = []
        self._pending = 0

    def close(self) -> None:
        """Write the last row group and the footer."""
        if self._rows:
            self._to_batch(self._rows)
            self._rows = []
        self._write_group()
        self._writer.close()


def open_writer(format: str, file: IO[bytes]) -> RunWriter:
    """A writer of ``format`` (one of :data:`FORMATS`) over an open binary file."""
    name = infer_format("", format)
    if name == "jsonl":
        return JsonlWriter(file)
    if name == "csv":
        return CsvWriter(file)
    return ParquetWriter(file)


# --------------------------------------------------------------------------- results


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
    """Runs still ``running`` when exported: the file is a snapshot of unfinished runs."""
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
            out[key] = _iso(out[key])
        return out


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


def manifest_path(path: str | os.PathLike[str]) -> str:
    """Where the manifest of an export to ``path`` goes: ``PATH.manifest.json``."""
    return os.fspath(path) + ".manifest.json"


class _Paths:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = os.path.abspath(os.fspath(path))
        self.part = self.target + ".part"
        self.checkpoint = self.part + ".json"
        self.convert = self.part + ".convert"
        self.manifest = manifest_path(self.target)

    def window(self, index: int) -> str:
        """The spool of one window of a parallel export, concatenated at the end."""
        return f"{self.part}.w{index}"


def _read_checkpoint(paths: _Paths) -> dict[str, Any] | None:
    try:
        with open(paths.checkpoint, "rb") as fh:
            data = orjson.loads(fh.read())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("version") != _CHECKPOINT_VERSION:
        return None
    return data


def pending_export(path: str | os.PathLike[str]) -> PendingExport | None:
    """The interrupted export of ``path`` that ``resume=True`` would continue, if any."""
    paths = _Paths(path)
    state = _read_checkpoint(paths)
    if state is None:
        return None
    try:
        return PendingExport(
            path=paths.target,
            format=str(state["identity"]["format"]),
            count=int(state["count"]),
            started_at=datetime.fromisoformat(state["started_at"]),
            filters=dict(state["identity"]["filters"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the export


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _replace_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _lock(fd: int, paths: _Paths) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ExportError(
            f"another export is writing {paths.target} right now ({paths.part} is locked)"
        ) from None


def _sha256_file(path: str, limit: int | None = None) -> tuple[Any, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while limit is None or size < limit:
            want = _SPOOL_READ if limit is None else min(_SPOOL_READ, limit - size)
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest, size


# The statistics of what was written are tallied page by page. A cost total must be the
# correctly rounded sum of every run's cost (math.fsum) even across a resume, so the running
# total is kept exactly: as a few non-overlapping floats whose exact sum is the sum so far
# (each the rounded remainder of the previous ones), written to the checkpoint as hex.

_STATUS: Final = itemgetter("status")
_COST_USD: Final = itemgetter("cost_usd")
_COST_CREDITS: Final = itemgetter("cost_credits")


def _exact_add(partials: Sequence[float], values: Iterable[float]) -> list[float]:
    """Floats whose exact sum is that of ``partials`` and ``values`` (largest first).

    ``math.fsum`` rounds correctly, so each step peels off the rounded remainder; a
    nonzero exact sum of floats never rounds to zero, so this ends, after a few steps.
    """
    terms = [*partials, *values]
    out: list[float] = []
    try:
        total = math.fsum(terms)
        while total != 0.0:
            out.append(total)
            if not math.isfinite(total):  # an infinite or NaN cost: the total is just that
                return [total]
            terms.append(-total)
            total = math.fsum(terms)
    except (OverflowError, ValueError):  # beyond float range, or inf + -inf: inf or NaN
        return [sum(terms)]
    return out


def _fresh_stats() -> dict[str, Any]:
    return {"status_counts": {}, "cost_usd": [], "cost_credits": []}


def _tally(stats: dict[str, Any], runs: Sequence[dict[str, Any]]) -> None:
    """Add a page's runs (the server's dicts) to the statistics kept in the checkpoint."""
    counts: dict[str, int] = stats["status_counts"]
    for status, n in Counter(map(_STATUS, runs)).items():
        counts[status] = counts.get(status, 0) + n
    for key, getter in (("cost_usd", _COST_USD), ("cost_credits", _COST_CREDITS)):
        partials = [float.fromhex(x) for x in stats[key]]
        stats[key] = [x.hex() for x in _exact_add(partials, map(getter, runs))]


def _total(hex_partials: Sequence[str]) -> float:
    return math.fsum(float.fromhex(x) for x in hex_partials)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else to_epoch_ms(value)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(milliseconds=value)


class _Export:
    """One attempt at an export (fresh or resumed)."""

    def __init__(
        self,
        client: TimbalClient,
        query: RunQuery,
        paths: _Paths,
        fmt: str,
        *,
        resume: bool,
        parallel: int,
        limit: int | None,
        manifest: bool,
        progress: Callable[[ExportProgress], None] | None,
        now: datetime,
    ) -> None:
        self.client = client
        self.query = query
        self.paths = paths
        self.format = fmt
        self.resume = resume
        self.parallel = parallel
        self.limit = limit
        self.manifest = manifest
        self.progress = progress
        self.now = now
        config = client.config
        self.identity: dict[str, Any] = {
            "format": fmt,
            "filters": query.as_dict(),
            "parallel": parallel,
            "limit": limit,
            "base_url": config.base_url,
            "org_id": config.org_id,
            "project_id": config.project_id,
        }
        self.state: dict[str, Any] = {}
        self.resumed = False
        self.resumed_from = 0
        self.started = time.monotonic()
        self.pages = 0
        self.digest: Any = hashlib.sha256()

    # -- state

    def _fresh_state(self) -> dict[str, Any]:
        return {
            "version": _CHECKPOINT_VERSION,
            "tool_version": __version__,
            "identity": self.identity,
            "started_at": self.now.isoformat(),
            "windows": [],
            "since_ms": None,
            "until_ms": None,
            "window": 0,
            "token": None,
            "fetched_all": False,
            "count": 0,
            "offset": 0,
            "first_us": None,
            "last_us": None,
            "spools": None,
            "finished": None,
            "stats": _fresh_stats(),
        }

    def _save(self) -> None:
        _replace_json(self.paths.checkpoint, self.state)

    def _mismatch(self, old: dict[str, Any]) -> str:
        theirs = old.get("identity") or {}
        for key, label in (
            ("format", "format"),
            ("filters", "filters"),
            ("parallel", "parallel setting"),
            ("limit", "limit"),
            ("base_url", "API host"),
            ("org_id", "org"),
            ("project_id", "project"),
        ):
            if theirs.get(key) != self.identity[key]:
                return f"its {label} was {theirs.get(key)!r}, now {self.identity[key]!r}"
        return "it was written by a different version"

    def _notice(self, message: str) -> None:
        logger.warning(message)

    # -- the steps

    def run(self) -> ExportResult:
        paths = self.paths
        os.makedirs(os.path.dirname(paths.target), exist_ok=True)
        if os.path.isdir(paths.target):
            raise ExportError(f"{paths.target} is a directory; expected a file path")
        old = _read_checkpoint(paths)
        if old is not None and old.get("identity") == self.identity and self.resume:
            if old.get("finished"):
                done = self._recover_finished(old)
                if done is not None:
                    return done
        elif old is not None and self.resume:
            raise QueryError(
                "resume",
                f"the interrupted export of {paths.target} was a different export "
                f"({self._mismatch(old)}); run without resume to start over",
            )
        created = not os.path.exists(paths.part)
        fd = os.open(paths.part, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd, paths)
            try:
                self._open(fd, old)
            except BaseException:
                if created and not os.path.exists(paths.checkpoint):
                    _remove(paths.part)  # nothing was started: leave nothing behind
                raise
            try:
                self._fetch(fd)
            except BaseException as exc:
                self._save_after_failure(exc)
                raise
            if self.format == "parquet":
                os.fsync(fd)
                self._convert()
            else:
                self._finish_stream(fd)
            return self._publish()
        finally:
            os.close(fd)

    def _open(self, fd: int, old: dict[str, Any] | None) -> None:
        """Start fresh, or resume from the checkpoint ``old`` (truncating past it)."""
        paths = self.paths
        size = os.fstat(fd).st_size
        if self.resume and old is not None and not old.get("finished"):
            offset = int(old["offset"])
            if size < offset:
                raise ExportError(
                    f"{paths.part} is shorter than its checkpoint says ({size} < {offset} "
                    "bytes); run without resume to start over"
                )
            os.ftruncate(fd, offset)
            if self.format != "parquet":
                self.digest, _ = _sha256_file(paths.part, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            self.state = old
            self.resumed = True
            self.resumed_from = int(old["count"])
            self.now = datetime.fromisoformat(old["started_at"])
            return
        if old is not None or size:
            saved = f" ({old['count']:,} runs)" if old is not None else ""
            self._notice(
                f"discarding the partial export {paths.part}{saved} left by an interrupted "
                "export (resume=True, or timbal-runs export --resume, continues one instead)"
            )
        _remove(paths.checkpoint)  # it describes data about to be dropped
        for index in range(len((old or {}).get("windows") or [])):
            _remove(paths.window(index))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        _remove(paths.convert)
        self.state = self._fresh_state()
        if self.format == "csv":
            header = CsvWriter.header()
            _write_all(fd, header)
            self.digest.update(header)
            self.state["offset"] = len(header)
        self._resolve_windows()
        self._save()

    def _resolve_windows(self) -> None:
        """Freeze the window: ``until`` defaults to now, and parallel windows are cut once."""
        query = self.query
        if query.until is None:
            now = self.now.astimezone(UTC)
            until = now.replace(microsecond=now.microsecond // 1000 * 1000)
            query = query.replace(until=until + timedelta(milliseconds=1))
        if self.parallel == 1:
            windows = [query]
        else:
            # One window per fetcher: measured best on evenly spread history (more, smaller
            # windows end in more partial pages; see benchmarks/RESULTS.md).
            windows = self.client.resolve_windows(query, self.parallel)
        self.state["windows"] = [[_ms(w.since), _ms(w.until)] for w in windows]
        starts = [w.since for w in windows]
        since = query.since if not windows or None in starts else min(filter(None, starts))
        self.state["since_ms"] = _ms(since)
        self.state["until_ms"] = _ms(query.until)

    def _windows(self) -> list[RunQuery]:
        return [
            self.query.replace(since=_from_ms(lo), until=_from_ms(hi))
            for lo, hi in self.state["windows"]
        ]

    def _report(self, phase: str) -> None:
        if self.progress is not None:
            self.progress(
                ExportProgress(
                    count=self.state["count"],
                    pages=self.pages,
                    bytes=self.state["offset"],
                    elapsed=time.monotonic() - self.started,
                    resumed_from=self.resumed_from,
                    phase=phase,
                )
            )

    def _widen_span(self, created: Sequence[datetime]) -> None:
        """Widen the first/last ``created_at`` the manifest reports to cover ``created``."""
        state = self.state
        low, high = _micros(min(created)), _micros(max(created))
        first, last = state["first_us"], state["last_us"]
        state["first_us"] = low if first is None else min(first, low)
        state["last_us"] = high if last is None else max(last, high)

    def _progress(self, last_save: float) -> float:
        """After a page: checkpoint when one is due, report; returns the last save time."""
        now = time.monotonic()
        if now - last_save >= _CHECKPOINT_EVERY:
            self._save()
            last_save = now
        self._report("fetching")
        return last_save

    def _fetch(self, fd: int) -> None:
        state = self.state
        limit = self.limit
        windows = self._windows()
        if state.get("spools") is not None or (len(windows) > 1 and limit is None):
            self._fetch_parallel(fd, windows)
            return
        if state["fetched_all"]:
            return
        if limit is not None and state["count"] >= limit:
            state["fetched_all"] = True
            self._save()
            return
        encode = {"jsonl": _raw_jsonl, "csv": _raw_csv, "parquet": _raw_spool}[self.format]
        hashing = self.format != "parquet"
        pages = self.client.iter_window_pages(
            windows, start_window=state["window"], start_token=state["token"], raw=True
        )
        last_save = time.monotonic()
        try:
            for item in pages:
                page = item.page
                count = len(page.runs)
                if limit is not None:
                    count = min(count, limit - state["count"])
                if count > 0:
                    data = encode(page, count)
                    _write_all(fd, data)
                    if hashing:
                        self.digest.update(data)
                    created = page.created[:count] if count < len(page.created) else page.created
                    self._widen_span(created)
                    _tally(
                        state["stats"], page.runs[:count] if count < len(page.runs) else page.runs
                    )
                    state["offset"] += len(data)
                    state["count"] += count
                if item.page.next_page_token is None:
                    state["window"], state["token"] = item.window + 1, None
                else:
                    state["window"], state["token"] = item.window, item.page.next_page_token
                self.pages += 1
                if limit is not None and state["count"] >= limit:
                    break
                last_save = self._progress(last_save)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        state["fetched_all"] = True
        self._save()

    def _fetch_parallel(self, fd: int, windows: list[RunQuery]) -> None:
        """Fetch every window at once, each into its own spool file, then concatenate.

        Pages are written as they arrive, whatever their window, so no window waits for
        an earlier one and memory stays flat. Each spool has its own position in the
        checkpoint (page token, byte offset, runs), so a resume truncates each spool to
        its offset and continues every unfinished window where it stopped. The spools
        are appended to ``PATH.part`` in window order (the order of a sequential export)
        once all are complete; an interrupted concatenation is redone from the spools.
        """
        state = self.state
        paths = self.paths
        if state["spools"] is None:
            state["spools"] = [
                {"token": None, "offset": 0, "count": 0, "done": False} for _ in windows
            ]
            state["base_offset"] = state["offset"]
            self._save()
        spools: list[dict[str, Any]] = state["spools"]
        encode = {"jsonl": _raw_jsonl, "csv": _raw_csv, "parquet": _raw_spool}[self.format]
        fds: dict[int, int] = {}
        try:
            for index, spool in enumerate(spools):
                if spool["done"] and state.get("concatenated"):
                    continue
                spool_fd = os.open(paths.window(index), os.O_RDWR | os.O_CREAT, 0o644)
                fds[index] = spool_fd
                if os.fstat(spool_fd).st_size < spool["offset"]:
                    raise ExportError(
                        f"{paths.window(index)} is shorter than its checkpoint says; "
                        "run without resume to start over"
                    )
                os.ftruncate(spool_fd, spool["offset"])
                os.lseek(spool_fd, spool["offset"], os.SEEK_SET)
            positions = {i: spool["token"] for i, spool in enumerate(spools) if not spool["done"]}
            last_save = time.monotonic()
            if positions:
                pages = self.client.iter_window_pages_as_fetched(
                    windows, positions=positions, raw=True, concurrency=self.parallel
                )
                try:
                    for item in pages:
                        page = item.page
                        spool = spools[item.window]
                        if page.runs:
                            data = encode(page, len(page.runs))
                            _write_all(fds[item.window], data)
                            self._widen_span(page.created)
                            _tally(state["stats"], page.runs)
                            spool["offset"] += len(data)
                            spool["count"] += len(page.runs)
                            state["count"] += len(page.runs)
                        spool["token"] = page.next_page_token
                        spool["done"] = page.next_page_token is None
                        self.pages += 1
                        last_save = self._progress(last_save)
                finally:
                    close = getattr(pages, "close", None)
                    if close is not None:
                        close()
            state["fetched_all"] = True
            self._save()
            self._concatenate(fd, fds)
        finally:
            for spool_fd in fds.values():
                os.close(spool_fd)
        for index in range(len(spools)):
            _remove(paths.window(index))

    def _concatenate(self, fd: int, fds: dict[int, int]) -> None:
        """Append the window spools to ``PATH.part`` in window order (redone if cut)."""
        state = self.state
        if state.get("concatenated"):
            return
        base = int(state["base_offset"])
        os.ftruncate(fd, base)
        os.lseek(fd, base, os.SEEK_SET)
        hashing = self.format != "parquet"
        if hashing:
            self.digest, _ = _sha256_file(self.paths.part, base)
        offset = base
        for index in sorted(fds):
            spool_fd = fds[index]
            os.lseek(spool_fd, 0, os.SEEK_SET)
            while True:
                chunk = os.read(spool_fd, _SPOOL_READ)
                if not chunk:
                    break
                _write_all(fd, chunk)
                if hashing:
                    self.digest.update(chunk)
                offset += len(chunk)
        os.fsync(fd)
        state["offset"] = offset
        state["concatenated"] = True
        self._save()

    def _save_after_failure(self, exc: BaseException) -> None:
        """Keep the progress made for a later resume, and say so on the exception."""
        with contextlib.suppress(Exception):
            self._save()
        with contextlib.suppress(Exception):
            exc.add_note(
                f"{self.state.get('count', 0):,} runs are saved in {self.paths.part}; "
                "export again with resume=True (timbal-runs export --resume) to continue"
            )

    def _finish_stream(self, fd: int) -> None:
        os.fsync(fd)
        self.state["finished"] = {
            "bytes": self.state["offset"],
            "sha256": self.digest.hexdigest(),
        }
        self._save()

    def _convert(self) -> None:
        """Turn the spool into Parquet, streaming, in row groups; then hash the result."""
        paths = self.paths
        self._report("converting")
        _remove(paths.convert)
        writer = ParquetWriter(paths.convert)
        try:
            remaining = int(self.state["offset"])
            with open(paths.part, "rb") as spool:
                tail = b""
                while remaining > 0:
                    chunk = spool.read(min(_SPOOL_READ, remaining))
                    if not chunk:
                        raise ExportError(f"{paths.part} ended before its checkpoint")
                    remaining -= len(chunk)
                    lines = (tail + chunk).split(b"\n")
                    tail = lines.pop()
                    writer.write_rows(orjson.loads(line) for line in lines if line)
                if tail:
                    writer.write_rows([orjson.loads(tail)])
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            _remove(paths.convert)
            raise
        writer.close()
        if writer.rows != self.state["count"]:
            _remove(paths.convert)
            raise ExportError(
                f"{paths.part} holds {writer.rows} runs but its checkpoint says "
                f"{self.state['count']}; run without resume to start over"
            )
        fd = os.open(paths.convert, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        digest, size = _sha256_file(paths.convert)
        self.state["finished"] = {"bytes": size, "sha256": digest.hexdigest()}
        self._save()
        os.replace(paths.convert, paths.part)

    def _publish(self) -> ExportResult:
        """Rename the finished file into place, write the manifest, drop the checkpoint."""
        paths = self.paths
        _remove(paths.manifest)
        os.replace(paths.part, paths.target)
        _fsync_dir(paths.target)
        return self._complete()

    def _complete(self) -> ExportResult:
        paths = self.paths
        state = self.state
        finished = state["finished"]
        stats = state["stats"]
        counts = {
            status: int(stats["status_counts"][status]) for status in sorted(stats["status_counts"])
        }
        result = ExportResult(
            path=paths.target,
            format=self.format,
            count=int(state["count"]),
            since=_from_ms(state["since_ms"]),
            until=_from_ms(state["until_ms"]),
            first_created_at=_from_micros(state["first_us"]),
            last_created_at=_from_micros(state["last_us"]),
            bytes=int(finished["bytes"]),
            sha256=str(finished["sha256"]),
            filters=dict(self.identity["filters"]),
            manifest_path=paths.manifest if self.manifest else None,
            resumed=self.resumed,
            status_counts=counts,
            running_count=counts.get("running", 0),
            error_count=counts.get("error", 0),
            cost_usd=_total(stats["cost_usd"]),
            cost_credits=_total(stats["cost_credits"]),
        )
        if self.manifest:
            document = {
                "file": os.path.basename(paths.target),
                "format": result.format,
                "count": result.count,
                "bytes": result.bytes,
                "sha256": result.sha256,
                "filters": result.filters,
                "window": {"since": _iso(result.since), "until": _iso(result.until)},
                "first_created_at": _iso(result.first_created_at),
                "last_created_at": _iso(result.last_created_at),
                "status_counts": result.status_counts,
                "running_count": result.running_count,
                "error_count": result.error_count,
                "cost_usd": result.cost_usd,
                "cost_credits": result.cost_credits,
                "parallel": self.parallel,
                "limit": self.limit,
                "resumed": result.resumed,
                "started_at": _iso(datetime.fromisoformat(state["started_at"])),
                "finished_at": _iso(datetime.now(UTC)),
                "columns": list(RECORD_FIELDS) if result.format != "jsonl" else None,
                "tool": "timbal-integrations",
                "tool_version": __version__,
            }
            _replace_json(paths.manifest, document)
        for leftover in (paths.checkpoint, paths.convert, paths.checkpoint + ".tmp"):
            _remove(leftover)
        return result

    def _recover_finished(self, old: dict[str, Any]) -> ExportResult | None:
        """The last attempt died after finishing the file: publish it if it is intact."""
        paths = self.paths
        finished = old["finished"]

        def intact(path: str) -> bool:
            if not os.path.isfile(path):
                return False
            digest, size = _sha256_file(path)
            return bool(size == finished["bytes"] and digest.hexdigest() == finished["sha256"])

        self.state = old
        self.resumed = True
        if intact(paths.convert):  # died between converting and renaming the Parquet file
            os.replace(paths.convert, paths.part)
        if intact(paths.part):
            return self._publish()
        if not os.path.exists(paths.part) and intact(paths.target):
            return self._complete()  # died after the rename: only the manifest was missing
        self.state = {}
        self.resumed = False
        return None


def export_runs(
    client: TimbalClient,
    query: RunQuery,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    resume: bool = False,
    parallel: int | None = None,
    limit: int | None = None,
    manifest: bool = True,
    progress: Callable[[ExportProgress], None] | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export every run matching ``query`` to the local file ``path``, atomically.

    ``format`` is one of :data:`FORMATS` (default: from the extension). ``resume``
    continues an interrupted export of the same query and format from its checkpoint
    (without it, a stale partial export is discarded, with a warning on the
    ``timbal_integrations.export`` logger). ``parallel=N`` fetches N time windows
    concurrently (sort by created_at only; a missing ``since`` is found with one request).
    ``limit`` caps the number of runs. ``progress`` is called after every page. ``now``
    (default: the current time) is what a missing ``until`` is frozen to.

    Raises :class:`QueryError` for a bad argument (naming it), :class:`ExportError` when
    the file cannot be written or resumed, and the client's errors for API failures;
    after a failure the progress made is kept for ``resume=True``.
    """
    fmt = infer_format(path, format)
    n = _check_parallel(parallel)
    _check_limit(limit)
    if not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    if fmt == "parquet":
        _pyarrow()
    reference = (now or datetime.now(UTC)).astimezone(UTC)
    job = _Export(
        client,
        query,
        _Paths(path),
        fmt,
        resume=resume,
        parallel=n,
        limit=limit,
        manifest=manifest,
        progress=progress,
        now=reference,
    )
    try:
        result = job.run()
    except OSError as exc:
        error = ExportError(f"cannot write {job.paths.target}: {exc.strerror or exc}")
        for note in getattr(exc, "__notes__", ()):
            error.add_note(note)
        raise error from exc
    job._report("done")
    return result
