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
  count, the first and last ``created_at``, the byte size, the SHA-256, the format, the
  tool version, and exact statistics of what was written: runs per status, how many were
  still ``running`` (the file is then a snapshot of runs that had not ended), how many
  ended in ``error``, and the total costs (``math.fsum``-exact). They are tallied from
  the pages as they are written and kept in the checkpoint, so a resumed export reports
  the same numbers.

JSON Lines keeps every field the server sent, unknown ones included (and only those).
CSV and Parquet use the flat record form (:data:`~timbal_integrations.RECORD_FIELDS`)
with a stable column order and types (see :mod:`~timbal_integrations.export.writers`).

The package, one concern a module: ``records`` (the flat record's column table),
``writers`` (the formats), ``checkpoint`` (the typed, versioned checkpoint and its JSON
form), ``checkpoint_load`` (reading one back, every entry checked), ``integrity`` (its
seal, and the checks of the partial files it covers), ``files`` (file names, temporary
files, atomic replacement, locks, hashing), ``fetch`` (pages into ``PATH.part``, in
order or spooled per window), ``results`` (progress, result, manifest, interrupted
exports) and ``job`` (:func:`export_runs`). Importing the package imports none of them:
each name loads its module on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
    from .files import manifest_path
    from .job import export_runs
    from .results import ExportProgress, ExportResult, PendingExport, pending_export
    from .writers import (
        FORMATS,
        PARQUET_INSTALL_HINT,
        CsvWriter,
        JsonlWriter,
        ParquetWriter,
        RunWriter,
        check_csv_safe,
        infer_format,
        open_writer,
        parquet_available,
        parquet_schema,
    )

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
    "check_csv_safe",
    "export_runs",
    "infer_format",
    "manifest_path",
    "open_writer",
    "parquet_available",
    "parquet_schema",
    "pending_export",
]

_HOME: dict[str, str] = {
    "FORMATS": "writers",
    "PARQUET_INSTALL_HINT": "writers",
    "CsvWriter": "writers",
    "ExportProgress": "results",
    "ExportResult": "results",
    "JsonlWriter": "writers",
    "ParquetWriter": "writers",
    "PendingExport": "results",
    "RunWriter": "writers",
    "check_csv_safe": "writers",
    "export_runs": "job",
    "infer_format": "writers",
    "manifest_path": "files",
    "open_writer": "writers",
    "parquet_available": "writers",
    "parquet_schema": "writers",
    "pending_export": "results",
}


__getattr__, __dir__ = _lazy_names(__name__, _HOME, __all__)
