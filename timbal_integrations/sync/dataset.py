"""The partitioned dataset: one file per UTC day of ``created_at``, and its manifest.

A partition holds the runs of one day, sorted by ``created_at`` then ``id``, in the
dataset's format, written by the export's writers from its one column table
(:mod:`timbal_integrations.export.records`):

- JSON Lines keeps each run as the server sent it, every field (read back as is);
- CSV and Parquet hold the flat record, read back with the same column table
  (:func:`~timbal_integrations.export.records.csv_values`,
  :func:`~timbal_integrations.export.records.record_from_row`), so a partition that is
  merged and rewritten keeps exactly its columns.

The same runs always make the same bytes, so a partition's SHA-256 says whether its
content changed. ``manifest.json`` lists every partition with its run count, runs per
status (``running`` ones included), size and SHA-256, and the dataset's totals.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic_core import ValidationError

from .._pages import RawPage, parse_raw_page
from .._version import __version__
from ..errors import SyncStateError
from ..export.records import (
    CREATED_AT,
    RECORD_FIELDS,
    csv_values,
    iso_us,
    micros,
    record_from_row,
    record_row,
)
from ..export.writers import CsvWriter, ParquetWriter, pyarrow_modules, raw_encoder

__all__ = [
    "Manifest",
    "Partition",
    "StoredRun",
    "decode_partition",
    "encode_partition",
    "parse_manifest",
    "view",
]


@dataclass(slots=True)
class StoredRun:
    """One run of a partition: its ``created_at`` (aware UTC) and its run dict.

    The dict is the server's (JSON Lines, or a run just fetched) or, read back from CSV
    or Parquet, the columns' fields only (``created_at`` spelt as CSV writes it).
    """

    created: datetime
    record: dict[str, Any]

    @property
    def id(self) -> str:
        """The run's id."""
        value: str = self.record["id"]
        return value

    @property
    def day(self) -> date:
        """The UTC day of its ``created_at``: its partition."""
        return self.created.date()

    def key(self) -> tuple[datetime, str]:
        """The order of a partition: ``created_at``, then ``id``."""
        return self.created, self.id


def view(run: StoredRun, fmt: str) -> Any:
    """What the format keeps of a run: the dict (JSON Lines) or the flat record. Two
    runs with equal views are written as the same bytes."""
    if fmt == "jsonl":
        return run.record
    return record_row(run.record, micros(run.created))


def encode_partition(runs: Sequence[StoredRun], fmt: str) -> bytes:
    """The bytes of a partition of ``runs`` (already in partition order)."""
    if fmt == "parquet":
        buffer = io.BytesIO()
        writer = ParquetWriter(buffer)
        writer.write_rows(record_row(run.record, micros(run.created)) for run in runs)
        writer.close()
        return buffer.getvalue()
    page = RawPage([run.record for run in runs], [run.created for run in runs], None)
    data = raw_encoder(fmt)(page, len(runs))
    return CsvWriter.header() + data if fmt == "csv" else data


def decode_partition(data: bytes, fmt: str, where: str) -> list[StoredRun]:
    """The runs of a partition's bytes; :class:`SyncStateError` when they are not a
    partition of this format."""
    try:
        if fmt == "jsonl":
            return _jsonl(data)
        if fmt == "csv":
            return _csv(data)
        return _parquet(data)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SyncStateError(
            f"the partition {where} cannot be read as {fmt}: {problem}", path=where
        ) from None


def _jsonl(data: bytes) -> list[StoredRun]:
    """Read back as the API's own list page: checked against the schema, every field."""
    lines = [line for line in data.split(b"\n") if line]
    body = b'{"runs":[' + b",".join(lines) + b'],"next_page_token":null}'
    try:
        page = parse_raw_page(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:])
        raise ValueError(f"line {where}: {first['msg']}") from None
    return [StoredRun(created, run) for run, created in zip(page.runs, page.created, strict=True)]


def _from_row(row: list[Any]) -> StoredRun:
    created = row[CREATED_AT].astimezone(UTC)
    record = record_from_row(row)
    record["created_at"] = iso_us(created)
    return StoredRun(created, record)


def _csv(data: bytes) -> list[StoredRun]:
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(rows, None)
    if header != list(RECORD_FIELDS):
        raise ValueError(f"its header is {header!r}, not the flat record's columns")
    runs = []
    for number, cells in enumerate(rows, start=2):
        try:
            runs.append(_from_row(csv_values(cells)))
        except ValueError as exc:
            raise ValueError(f"row {number}: {exc}") from None
    return runs


def _parquet(data: bytes) -> list[StoredRun]:
    pa, pq = pyarrow_modules()
    table = pq.read_table(pa.BufferReader(data))
    if table.schema.names != list(RECORD_FIELDS):
        raise ValueError(f"its columns are {table.schema.names!r}, not the flat record's")
    columns = [table.column(name).to_pylist() for name in RECORD_FIELDS]
    return [_from_row(list(row)) for row in zip(*columns, strict=True)]


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Partition:
    """One partition as the manifest describes it."""

    day: date
    name: str
    count: int
    status_counts: dict[str, int]
    bytes: int
    sha256: str

    @property
    def running_count(self) -> int:
        """Runs still ``running`` in it."""
        return self.status_counts.get("running", 0)

    @classmethod
    def of(cls, day: date, name: str, runs: Sequence[StoredRun], data: builtins.bytes) -> Partition:
        """The description of a partition of ``runs`` written as ``data``."""
        counts = Counter(run.record["status"] for run in runs)
        return cls(
            day=day,
            name=name,
            count=len(runs),
            status_counts={status: counts[status] for status in sorted(counts)},
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "path": self.name,
            "count": self.count,
            "running_count": self.running_count,
            "status_counts": self.status_counts,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


@dataclass
class Manifest:
    """``manifest.json``: the partitions, and what the dataset holds in total."""

    format: str
    partitions: dict[date, Partition] = field(default_factory=dict)

    def totals(self) -> tuple[int, dict[str, int]]:
        """Runs in the dataset, and runs per status."""
        counts: Counter[str] = Counter()
        for partition in self.partitions.values():
            counts.update(partition.status_counts)
        return sum(p.count for p in self.partitions.values()), dict(sorted(counts.items()))

    def document(self, about: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON form: ``about`` (filters, window, the last sync's report...), the
        totals and every partition, oldest first."""
        count, status_counts = self.totals()
        return {
            **about,
            "format": self.format,
            "count": count,
            "running_count": status_counts.get("running", 0),
            "status_counts": status_counts,
            "partitions": {
                day.isoformat(): self.partitions[day].to_json() for day in sorted(self.partitions)
            },
            "columns": list(RECORD_FIELDS) if self.format != "jsonl" else None,
            "tool": "timbal-integrations",
            "tool_version": __version__,
        }


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Read the partitions of ``manifest.json``; :class:`SyncStateError` names a bad one."""

    def bad(name: str, problem: str) -> SyncStateError:
        return SyncStateError(
            f"the manifest {where} is not valid: {name}: {problem}", path=where, field=name
        )

    try:
        top = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise SyncStateError(f"the manifest {where} is not valid JSON", path=where) from None
    if not isinstance(top, dict):
        raise bad("(the file)", "expected an object")
    fmt = top.get("format")
    partitions = top.get("partitions")
    if not isinstance(fmt, str):
        raise bad("format", "expected a string")
    if not isinstance(partitions, dict):
        raise bad("partitions", "expected an object")
    manifest = Manifest(fmt)
    for key, entry in partitions.items():
        at = f"partitions.{key}"
        try:
            day = date.fromisoformat(key)
        except ValueError:
            raise bad(at, "expected a day, YYYY-MM-DD") from None
        if not isinstance(entry, dict):
            raise bad(at, "expected an object")
        counts = entry.get("status_counts")
        values = [entry.get(k) for k in ("count", "bytes")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise bad(at, "count and bytes must be whole numbers")
        if not isinstance(counts, dict) or not all(isinstance(v, int) for v in counts.values()):
            raise bad(f"{at}.status_counts", "expected an object of whole numbers")
        if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("path"), str):
            raise bad(at, "path and sha256 must be strings")
        manifest.partitions[day] = Partition(
            day, entry["path"], entry["count"], dict(counts), entry["bytes"], entry["sha256"]
        )
    return manifest


def sorted_runs(runs: Iterable[StoredRun]) -> list[StoredRun]:
    """``runs`` in partition order (``created_at``, then ``id``)."""
    return sorted(runs, key=StoredRun.key)
