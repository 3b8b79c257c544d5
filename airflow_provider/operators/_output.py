"""Where the operators write: a local path, or object storage through ``ObjectStoragePath``.

A local file is written in place by the core's export (under a temporary name, then
renamed). For object storage the export writes a local temporary file that is then
uploaded as one object (S3, GCS and Azure Blob make an object visible only once it is
complete), so readers see the old file or the new one, never a part. XCom then gets
:func:`manifest`, a small description of the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from timbal_integrations.export import ExportResult, export_runs
from timbal_integrations.query import RunQuery

from ._progress import Progress

if TYPE_CHECKING:
    from timbal_integrations import TimbalClient

__all__ = ["Written", "is_local", "local_path", "manifest", "write_runs"]

MANIFEST_SUFFIX: Final = ".manifest.json"


def is_local(path: str) -> bool:
    """A plain path or a ``file://`` URI (written in place, atomically by rename)."""
    scheme = urlsplit(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and path[1:2] == ":")  # C:\ on Windows


def local_path(path: str) -> Path:
    """The local file of a plain path or a ``file://`` URI."""
    if path.startswith("file://"):
        return Path(urlsplit(path).path)
    return Path(path).expanduser()


class Written(NamedTuple):
    """A file an operator wrote: the export's result, and where the file and its
    manifest are as the user named them (the URI, for object storage)."""

    result: ExportResult
    path: str
    manifest_path: str | None


def write_runs(
    client: TimbalClient,
    query: RunQuery,
    output_path: str,
    *,
    conn_id: str | None,
    progress: Progress,
    log: Any,
    **options: Any,
) -> Written:
    """Export ``query``'s runs to ``output_path`` (local, or uploaded whole to object
    storage through the Airflow connection ``conn_id``). ``options`` are the core's
    :func:`~timbal_integrations.export.export_runs` keywords (``format`` included)."""
    if is_local(output_path):
        path = local_path(output_path)
        result = export_runs(client, query, path, progress=progress.export, **options)
        progress.done(f", {result.bytes:,} bytes to {result.path}")
        return Written(result, result.path, result.manifest_path)
    target = ObjectStoragePath(output_path, conn_id=conn_id)
    with tempfile.TemporaryDirectory(prefix="timbal-export-") as scratch:
        local = Path(scratch) / (target.name or f"runs.{options['format']}")
        result = export_runs(client, query, local, progress=progress.export, **options)
        progress.done(f", {result.bytes:,} bytes")
        log.info("Uploading %s bytes to %s", f"{result.bytes:,}", output_path)
        target.fs.put_file(str(local), target.path)
        if result.manifest_path is None:
            return Written(result, output_path, None)
        beside = ObjectStoragePath(output_path + MANIFEST_SUFFIX, conn_id=conn_id)
        beside.fs.put_file(result.manifest_path, beside.path)
    return Written(result, output_path, output_path + MANIFEST_SUFFIX)


def manifest(written: Written) -> dict[str, Any]:
    """The small JSON-ready description of a written file that goes to XCom."""
    result = written.result
    described = result.to_dict()
    return {
        "path": written.path,
        "format": result.format,
        "count": result.count,
        "since": described["since"],
        "until": described["until"],
        "first_created_at": described["first_created_at"],
        "last_created_at": described["last_created_at"],
        "bytes": result.bytes,
        "sha256": result.sha256,
        "filters": described["filters"],
        "manifest_path": written.manifest_path,
    }
