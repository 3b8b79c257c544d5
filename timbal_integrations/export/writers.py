"""Writers of runs in each export format: JSON Lines, CSV and Parquet.

JSON Lines keeps every field the server sent, unknown ones included (and only those).
CSV and Parquet write the flat record (:mod:`timbal_integrations.export.records`): a
stable column order and types; in CSV ``created_at`` is always
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and an empty cell is a null; in Parquet ``created_at`` is
``timestamp[us, tz=UTC]``, ``duration_ms`` ``int64``, costs ``float64``, the rest
strings. Parquet needs the optional ``parquet`` extra (pyarrow).

Two inputs: run models (:class:`RunWriter`'s ``write_runs``, the CLI's ``list``) and the
export hot path's :class:`~timbal_integrations.models.RawPage` (the server's own dicts,
encoded by :func:`raw_encoder` without building a model).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

import orjson

from .. import defaults
from .._pages import RawPage
from ..errors import ExportError, QueryError
from .records import RECORD_FIELDS, SOURCE_KEYS, arrow_schema, csv_row, micros, record_row

if TYPE_CHECKING:  # an export from the API never builds models; writers of Runs import it
    from ..models import Run

__all__ = [
    "FORMATS",
    "PARQUET_INSTALL_HINT",
    "CsvWriter",
    "JsonlWriter",
    "ParquetWriter",
    "RawEncoder",
    "RunWriter",
    "check_csv_safe",
    "infer_format",
    "open_writer",
    "parquet_available",
    "parquet_schema",
    "pyarrow_modules",
    "raw_encoder",
]

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


def check_csv_safe(csv_safe: object, format: str) -> bool:
    """``csv_safe`` for an export in ``format``: True or False, and True only for CSV.

    Raises :class:`QueryError` naming ``csv_safe`` otherwise.
    """
    if not isinstance(csv_safe, bool):
        raise QueryError("csv_safe", f"{csv_safe!r} is not true or false")
    if csv_safe and format != "csv":
        raise QueryError("csv_safe", f"only applies to CSV; this export writes {format}")
    return csv_safe


def parquet_available() -> bool:
    """True when pyarrow can be imported (Parquet export is possible)."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def pyarrow_modules() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or an :class:`ExportError` saying how to get them."""
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
    pa, _ = pyarrow_modules()
    return arrow_schema(pa)


# --------------------------------------------------------------------------- encoding


def _model_row(run: Run) -> list[Any]:
    """The flat record of a run model as Parquet takes it (``created_at`` in epoch µs)."""
    return record_row(run.model_dump(include=SOURCE_KEYS), micros(run.created_at))


def _encode_jsonl(runs: Sequence[Run]) -> bytes:
    """One JSON object per line with every field the server sent (and only those)."""
    from ..models import Run

    to_json = Run.__pydantic_serializer__.to_json
    return b"".join([to_json(run, exclude_unset=True) + b"\n" for run in runs])


def _csv_bytes(rows: Iterable[Sequence[Any]], header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(RECORD_FIELDS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _encode_csv(runs: Sequence[Run], header: bool = False, safe: bool = False) -> bytes:
    rows = (csv_row(run.model_dump(include=SOURCE_KEYS), run.created_at, safe=safe) for run in runs)
    return _csv_bytes(rows, header)


RawEncoder = Callable[[RawPage, int], bytes]
"""Encodes the first ``count`` runs of a raw page."""


def _raw_jsonl(page: RawPage, count: int) -> bytes:
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    runs = page.runs if count >= len(page.runs) else page.runs[:count]
    return b"".join([dumps(run, option=newline) for run in runs])


def _raw_csv(page: RawPage, count: int) -> bytes:
    pairs = zip(page.runs[:count], page.created, strict=False)
    return _csv_bytes(csv_row(run, created) for run, created in pairs)


def _raw_csv_safe(page: RawPage, count: int) -> bytes:
    pairs = zip(page.runs[:count], page.created, strict=False)
    return _csv_bytes(csv_row(run, created, safe=True) for run, created in pairs)


def _raw_spool(page: RawPage, count: int) -> bytes:
    """The Parquet spool: one compact JSON array per run, in column order, ``created_at``
    in epoch microseconds (what :meth:`ParquetWriter.write_rows` takes back)."""
    dumps = orjson.dumps
    pairs = zip(page.runs[:count], page.created, strict=False)
    return b"".join([dumps(record_row(run, micros(created))) + b"\n" for run, created in pairs])


_RAW_ENCODERS: Final[dict[str, RawEncoder]] = {
    "jsonl": _raw_jsonl,
    "csv": _raw_csv,
    "parquet": _raw_spool,
}


def raw_encoder(format: str, *, csv_safe: bool = False) -> RawEncoder:
    """How an export writes raw pages in ``format`` (Parquet: to its spool); ``csv_safe``
    makes CSV text cells inert in spreadsheets (see :func:`csv_safe_cell`)."""
    if csv_safe and format == "csv":
        return _raw_csv_safe
    return _RAW_ENCODERS[format]


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
    """CSV (RFC 4180, UTF-8) of the flat record form, with a header row by default.

    ``csv_safe`` (off by default) makes text cells inert in spreadsheets: one starting
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a ``'``
    before it (:func:`~timbal_integrations.export.records.csv_safe_cell`).
    """

    format = "csv"

    def __init__(self, file: IO[bytes], *, header: bool = True, csv_safe: bool = False) -> None:
        self._file = file
        self._header = header
        self._safe = csv_safe

    @staticmethod
    def header() -> bytes:
        """The header row."""
        return _csv_bytes((), header=True)

    @staticmethod
    def encode(runs: Sequence[Run], *, csv_safe: bool = False) -> bytes:
        """The bytes of ``runs`` as CSV rows (no header)."""
        return _encode_csv(runs, safe=csv_safe)

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Write ``runs`` (after the header, the first time); returns the bytes written."""
        data = _encode_csv(runs, header=self._header, safe=self._safe)
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

    def __init__(
        self, file: IO[bytes] | str, *, row_group_size: int = defaults.PARQUET_ROW_GROUP_ROWS
    ) -> None:
        pa, pq = pyarrow_modules()
        self._pa = pa
        self._schema = arrow_schema(pa)
        self._writer = pq.ParquetWriter(file, self._schema)
        self._row_group_size = max(1, row_group_size)
        self._batch_size = min(defaults.ARROW_BATCH_ROWS, self._row_group_size)
        self._rows: list[Sequence[Any]] = []
        self._batches: list[Any] = []
        self._pending = 0
        self.rows = 0
        """Rows written out so far."""

    def write_runs(self, runs: Sequence[Run]) -> int:
        """Buffer ``runs``; a full row group is written out. Returns 0 (bytes are not known)."""
        self.write_rows([_model_row(run) for run in runs])
        return 0

    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Buffer flat rows (column order, ``created_at`` in epoch microseconds)."""
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
