"""File-system safety of exports: where each file goes, temporary files, atomic
replacement, syncing, locking and hashing.

An export to ``PATH`` writes only these files beside it (:class:`ExportPaths`):
``PATH.part`` (the data until it is complete), ``PATH.part.json`` (the checkpoint),
``PATH.part.w<N>`` (one spool per window of a parallel export), ``PATH.part.convert``
(Parquet being converted) and, at the end, ``PATH`` and ``PATH.manifest.json``.

Every file an export creates is opened by :func:`open_temp`: the one place to tighten
how (say, refusing symbolic links or existing files). A sync's local dataset
(:class:`~timbal_integrations.sync.LocalStore`) writes its files through it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

import orjson

from .. import defaults
from ..errors import ExportError

__all__ = [
    "ExportPaths",
    "fsync_dir",
    "fsync_path",
    "lock",
    "manifest_path",
    "open_temp",
    "remove",
    "replace_bytes",
    "replace_json",
    "sha256_file",
    "try_lock",
    "write_all",
]


def manifest_path(path: str | os.PathLike[str]) -> str:
    """Where the manifest of an export to ``path`` goes: ``PATH.manifest.json``."""
    return os.fspath(path) + ".manifest.json"


class ExportPaths:
    """The files of one export to ``path`` (absolute)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.target = os.path.abspath(os.fspath(path))
        self.part = self.target + ".part"
        self.checkpoint = self.part + ".json"
        self.convert = self.part + ".convert"
        self.manifest = manifest_path(self.target)

    def window(self, index: int) -> str:
        """The spool of one window of a parallel export, concatenated at the end."""
        return f"{self.part}.w{index}"

    def leftovers(self) -> tuple[str, ...]:
        """Files that only an unfinished export leaves (not the window spools)."""
        return (self.checkpoint, self.convert, self.checkpoint + ".tmp")


def open_temp(path: str, *, truncate: bool = False) -> int:
    """Open (creating if needed) a file an export writes before renaming it into place:
    ``PATH.part``, a window spool, the Parquet conversion, a JSON file's temporary.
    Returns a read-write file descriptor; ``truncate`` empties the file."""
    flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if truncate else 0)
    return os.open(path, flags, 0o644)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replace_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file, then rename)."""
    replace_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def replace_bytes(path: str, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (``PATH.tmp``, then rename); ``durable``
    also syncs the data before the rename and the directory after it."""
    tmp = path + ".tmp"
    fd = open_temp(tmp, truncate=True)
    try:
        write_all(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path)


def fsync_path(path: str) -> None:
    """Flush a closed file's data (or a directory's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Flush the directory entry of ``path`` (after a rename), where the system allows."""
    with contextlib.suppress(OSError):
        fsync_path(os.path.dirname(path) or ".")


def remove(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting; False when another
    process holds it (always True where the system has no ``flock``). The lock goes
    with the descriptor: closing it, or the process ending, releases it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def lock(fd: int, paths: ExportPaths) -> None:
    """Hold an exclusive lock on ``PATH.part``: two exports of one file cannot mix."""
    if not try_lock(fd):
        raise ExportError(
            f"another export is writing {paths.target} right now ({paths.part} is locked)",
            path=paths.part,
        ) from None


def sha256_file(path: str, limit: int | None = None) -> tuple[Any, int]:
    """The SHA-256 (a ``hashlib`` object, to continue) and size of ``path``'s first
    ``limit`` bytes (all of it by default)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while limit is None or size < limit:
            chunk_size = defaults.SPOOL_READ_BYTES
            want = chunk_size if limit is None else min(chunk_size, limit - size)
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest, size
