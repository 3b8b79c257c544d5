"""Where a synced dataset lives: a local directory, or any fsspec file system.

A dataset is a handful of named files, named relative to its root with ``/``:

- ``runs/dt=YYYY-MM-DD/runs.<ext>``: one partition per UTC day of ``created_at``;
- ``manifest.json`` (what the partitions hold) and ``state.json`` (where the next sync
  starts);
- ``.sync-journal.json``: a sync that is committed but not yet fully applied;
- ``.sync-staging/<name>``: partitions written in full, waiting to be put in place;
- ``.sync.lock`` (local directories only): held while a sync runs.

A :class:`DatasetStore` offers the few operations a sync needs, each of which a reader
sees happen whole: a file is replaced by another complete file, never rewritten in
place. :class:`LocalStore` does it with temporary files and ``rename``, under the
export's file-safety rules (:mod:`timbal_integrations.export.files`): every file it
writes is opened by ``open_temp`` (never through a symbolic link, created exclusively),
every file it reads by ``open_read`` (a regular file, never a link), and the state,
manifest and journal by ``read_small``, bounded like an export's checkpoint; what is not
a regular file is refused with a :class:`~timbal_integrations.errors.SyncStateError`;
:class:`FsspecStore` with one-object uploads and server-side copies, which object
stores (S3, GCS, Azure Blob) make visible only once complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from datetime import date
from typing import Any, Final, Protocol

from .. import defaults
from ..errors import ExportError, SyncStateError
from ..export.files import (
    file_kind,
    fsync_dir,
    open_read,
    open_temp,
    read_small,
    remove,
    replace_bytes,
    try_lock,
    write_all,
)

__all__ = [
    "JOURNAL",
    "MANIFEST",
    "STAGING",
    "STATE",
    "DatasetStore",
    "FsspecStore",
    "LocalStore",
    "partition_day",
    "partition_name",
]

STATE: Final = "state.json"
MANIFEST: Final = "manifest.json"
JOURNAL: Final = ".sync-journal.json"
STAGING: Final = ".sync-staging"
LOCK: Final = ".sync.lock"

_PARTITION: Final = re.compile(r"^runs/dt=(\d{4}-\d\d-\d\d)/runs\.(jsonl|csv|parquet)$")


def partition_name(day: date, fmt: str) -> str:
    """The name of a day's partition: ``runs/dt=YYYY-MM-DD/runs.<fmt>``."""
    return f"runs/dt={day.isoformat()}/runs.{fmt}"


def partition_day(name: str) -> date | None:
    """The day of a partition's name (None when ``name`` is not a partition's)."""
    match = _PARTITION.match(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


class DatasetStore(Protocol):
    """The files of one dataset, by name (see the module's docstring)."""

    location: str
    """The dataset's root, as a path or URI (for messages)."""

    def where(self, name: str) -> str:
        """The path or URI of ``name``."""
        ...

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None when it does not exist."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data`` (readers see the old file or the new one)."""
        ...

    def stage(self, name: str, data: bytes) -> None:
        """Write ``data`` as the staged version of ``name`` (not visible as ``name``)."""
        ...

    def read_staged(self, name: str) -> bytes | None:
        """The staged version of ``name``, or None."""
        ...

    def promote(self, name: str) -> None:
        """Replace ``name`` with its staged version, which then is gone."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        ...

    def partition_names(self) -> list[str]:
        """The names of every partition file present, sorted."""
        ...

    def clear_staging(self) -> None:
        """Remove every staged file."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while a sync runs; refuses a second sync of the same dataset where the
        store can tell (raises :class:`~timbal_integrations.errors.SyncStateError`)."""
        ...


class LocalStore:
    """A dataset in a local directory (created when missing)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.location = self.root

    def __repr__(self) -> str:
        return f"LocalStore({self.root!r})"

    def where(self, name: str) -> str:
        """The path of ``name``."""
        return os.path.join(self.root, *name.split("/"))

    def _staged(self, name: str) -> str:
        return os.path.join(self.root, STAGING, *name.split("/"))

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None (the state, manifest and journal bounded by
        :data:`~timbal_integrations.defaults.SYNC_MAX_STATE_BYTES`)."""
        return _read(self.where(name), _SMALL.get(name))

    def write(self, name: str, data: bytes) -> None:
        """Replace ``name`` atomically (a temporary file, synced, then renamed)."""
        path = self.where(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with _refusals(path + ".tmp"):
            replace_bytes(path, data, durable=True)

    def stage(self, name: str, data: bytes) -> None:
        """Write the staged version of ``name`` under ``.sync-staging/`` (synced)."""
        path = self._staged(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with _refusals(path):
            fd = open_temp(path, truncate=True)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_staged(self, name: str) -> bytes | None:
        """The staged version of ``name``, or None."""
        return _read(self._staged(name), _SMALL.get(name))

    def promote(self, name: str) -> None:
        """Rename the staged version of ``name`` into place."""
        final = self.where(name)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(self._staged(name), final)
        fsync_dir(final)

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists, and its ``dt=`` folder once empty."""
        path = self.where(name)
        remove(path)
        if partition_day(name) is not None:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))

    def partition_names(self) -> list[str]:
        """Every ``runs/dt=*/runs.*`` file present."""
        runs = os.path.join(self.root, "runs")
        try:
            folders = os.listdir(runs)
        except FileNotFoundError:
            return []
        names: list[str] = []
        for folder in folders:
            try:
                files = os.listdir(os.path.join(runs, folder))
            except (NotADirectoryError, FileNotFoundError):
                continue
            names.extend(f"runs/{folder}/{file}" for file in files)
        return sorted(name for name in names if partition_day(name) is not None)

    def clear_staging(self) -> None:
        """Remove ``.sync-staging/`` and what it holds."""
        shutil.rmtree(os.path.join(self.root, STAGING), ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``.sync.lock``: a second sync of this directory fails at once."""
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, LOCK)
        with _refusals(path):
            fd = open_temp(path)
        try:
            if not try_lock(fd):
                raise SyncStateError(
                    f"another sync is writing {self.root} right now ({path} is locked)",
                    path=path,
                    rebuild=False,
                )
            yield
        finally:
            os.close(fd)


_SMALL: Final = dict.fromkeys((STATE, MANIFEST, JOURNAL), defaults.SYNC_MAX_STATE_BYTES)
"""The files read whole with a bound, by name: a sync's own JSON documents."""


def _refused(path: str) -> SyncStateError:
    return SyncStateError(
        f"{path} is {file_kind(path)}, not a file a sync wrote; refusing to read or write "
        "through it (remove it, or sync to another directory)",
        path=path,
        rebuild=False,
    )


@contextlib.contextmanager
def _refusals(path: str) -> Iterator[None]:
    """The export's file-safety refusals (a link, a FIFO, a device...), in a sync's words."""
    try:
        yield
    except SyncStateError:
        raise
    except ExportError:
        raise _refused(path) from None


def _read(path: str, limit: int | None = None) -> bytes | None:
    """The bytes of ``path`` (None when missing), never through a symbolic link; at most
    ``limit`` bytes (a larger file is refused)."""
    try:
        if limit is not None:
            return read_small(path, limit)
        fd = open_read(path)
    except FileNotFoundError:
        return None
    except ExportError:
        if limit is not None and file_kind(path) == "a regular file":
            raise SyncStateError(
                f"{path} is larger than {limit:,} bytes: not a file a sync wrote",
                path=path,
            ) from None
        raise _refused(path) from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


class FsspecStore:
    """A dataset under ``root`` of an fsspec file system ``fs`` (an object store, say).

    Files are written as single-object uploads (``pipe_file``) and put in place by a
    server-side ``copy``, so readers see whole files only. Object stores have no locks:
    run one sync of a dataset at a time (an orchestrator's task concurrency of 1).
    """

    def __init__(self, fs: Any, root: str, *, location: str | None = None) -> None:
        """The dataset under ``root`` (a path of ``fs``); ``location`` is how messages and
        reports name it (default: ``PROTOCOL://root``)."""
        self.fs = fs
        self.root = root.rstrip("/")
        if location is None:
            protocol = getattr(fs, "protocol", "")
            scheme = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
            location = f"{scheme}://{self.root.lstrip('/')}" if scheme else self.root
        self.location = location.rstrip("/")

    def __repr__(self) -> str:
        return f"FsspecStore({self.location!r})"

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def where(self, name: str) -> str:
        """The URI of ``name``."""
        return f"{self.location}/{name}"

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None."""
        return self._cat(self._path(name))

    def _cat(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data

    def write(self, name: str, data: bytes) -> None:
        """Upload ``name`` as one object."""
        self.fs.pipe_file(self._path(name), data)

    def stage(self, name: str, data: bytes) -> None:
        """Upload the staged version of ``name`` as one object."""
        self.fs.pipe_file(self._path(f"{STAGING}/{name}"), data)

    def read_staged(self, name: str) -> bytes | None:
        """The staged version of ``name``, or None."""
        return self._cat(self._path(f"{STAGING}/{name}"))

    def promote(self, name: str) -> None:
        """Copy the staged object into place (server-side), then remove it."""
        staged = self._path(f"{STAGING}/{name}")
        self.fs.copy(staged, self._path(name))
        self.fs.rm_file(staged)

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        path = self._path(name)
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def partition_names(self) -> list[str]:
        """Every ``runs/dt=*/runs.*`` object present."""
        prefix = self.root.lstrip("/") + "/"  # file systems differ on a leading "/"
        found = [str(path).lstrip("/") for path in self.fs.glob(self._path("runs/dt=*/runs.*"))]
        names = [path[len(prefix) :] for path in found if path.startswith(prefix)]
        return sorted(name for name in names if partition_day(name) is not None)

    def clear_staging(self) -> None:
        """Remove every staged object."""
        staging = self._path(STAGING)
        if self.fs.exists(staging):
            self.fs.rm(staging, recursive=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """No lock: object stores have none (see the class docstring)."""
        yield
