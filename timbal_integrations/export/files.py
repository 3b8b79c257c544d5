"""File-system safety of exports: where each file goes, temporary files, atomic
replacement, syncing, locking and hashing.

An export to ``PATH`` writes only these files beside it (:class:`ExportPaths`):
``PATH.part`` (the data until it is complete), ``PATH.part.json`` (the checkpoint),
``PATH.part.w<N>`` (one spool per piece of a parallel export), ``PATH.part.convert``
(Parquet being converted) and, at the end, ``PATH`` and ``PATH.manifest.json``.

Every file an export creates is opened by :func:`open_temp`, never through a symbolic
link: a file started anew is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``,
after removing whatever was at its name: a link itself, never what it points to), and
one reopened to resume must be a regular file of our own (``O_NOFOLLOW``; a symbolic
link, a FIFO, a device or a file with other hard links is refused). The target itself
must be a regular file or absent (:func:`check_target`). Files read back (the
checkpoint, the partial file) are opened the same way (:func:`open_read`, and
:func:`read_small` for a small JSON file). A sync's local dataset
(:class:`~timbal_integrations.sync.LocalStore`) writes its files through
:func:`open_temp` and :func:`replace_bytes`, and reads its state and manifest with
:func:`read_small`, under the same rules.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from typing import Any, Final

import orjson

from .. import defaults
from ..errors import ExportError

__all__ = [
    "ExportPaths",
    "check_target",
    "file_kind",
    "fsync_dir",
    "fsync_path",
    "lock",
    "manifest_path",
    "open_read",
    "open_temp",
    "read_small",
    "remove",
    "replace_bytes",
    "replace_json",
    "scan",
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
        """The spool of piece ``index`` of a parallel export, concatenated at the end."""
        return f"{self.part}.w{index}"

    def leftovers(self) -> tuple[str, ...]:
        """Files that only an unfinished export leaves (not the window spools)."""
        return (self.checkpoint, self.convert, self.checkpoint + ".tmp")


_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def file_kind(path: str) -> str:
    """What is at ``path``, in words, for a message (``a symbolic link``, ``a FIFO (named
    pipe)``...; ``a regular file``, or ``nothing`` when there is nothing there)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "nothing"
    return "a regular file" if stat.S_ISREG(mode) else _kind(mode)


def _refuse(path: str, what: str) -> ExportError:
    return ExportError(
        f"{path} is {what}, not a file this export wrote; refusing to write through it "
        "(remove it, or export to another path)",
        path=path,
    )


def _checked(fd: int, path: str) -> int:
    """``fd`` when it is a regular file with one link; else closed, and refused."""
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = _kind(info.st_mode)
    elif info.st_nlink > 1:
        problem = f"a file with {info.st_nlink} hard links"
    if problem is not None:
        os.close(fd)
        raise _refuse(path, problem)
    return fd


def open_temp(path: str, *, truncate: bool = False) -> int:
    """Open a file an export writes before renaming it into place (``PATH.part``, a
    window spool, the Parquet conversion, a JSON file's temporary); never through a
    symbolic link. Returns a read-write file descriptor.

    ``truncate``: start the file anew. Whatever is at ``path`` is removed first (a link
    itself, never its target) and the file is created exclusively. Otherwise an existing
    file is reopened as it is (to resume it) with ``O_NOFOLLOW``, or a missing one is
    created exclusively. Raises :class:`ExportError` when ``path`` is a symbolic link, a
    FIFO, a device, a directory or a file with other hard links.
    """
    base = os.O_RDWR | _NOFOLLOW | _CLOEXEC
    if truncate:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(info.st_mode):
                raise _refuse(path, "a directory")
            os.remove(path)
    try:
        fd = os.open(path, base | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if truncate:  # something was put back at the name since we removed it
            raise _refuse(path, "a file that appeared while it was being replaced") from None
        try:
            fd = os.open(path, base | os.O_NONBLOCK)
        except OSError as exc:
            raise _refuse(path, _kind(os.lstat(path).st_mode)) from exc
        os.set_blocking(fd, True)
    return _checked(fd, path)


def open_read(path: str) -> int:
    """Open a file an export wrote, to read it back: never through a symbolic link, and
    only a regular file (:class:`ExportError` otherwise). Raises ``FileNotFoundError``
    when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise exc from None
        raise _refuse(path, _kind(mode)) from exc
    os.set_blocking(fd, True)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _refuse(path, _kind(info.st_mode))
    return fd


def read_small(path: str, limit: int) -> bytes:
    """The whole of the small file ``path`` (a checkpoint, a sync's state or manifest),
    read with :func:`open_read`; :class:`ExportError` when it is larger than ``limit``
    bytes."""
    fd = open_read(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ExportError(f"{path} is larger than {limit:,} bytes", path=path)
    return data


def check_target(path: str) -> None:
    """Refuse an export target that is not a regular file (or absent): a directory, a
    FIFO, a device, a socket, or a symbolic link (the finished file is renamed into
    place, which would replace the link itself rather than write where it points)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode):
        return
    if stat.S_ISLNK(info.st_mode):
        raise ExportError(
            f"{path} is a symbolic link; an export replaces its target by renaming a "
            "finished file over it, which would replace the link itself: export to the "
            f"path it points to ({os.path.realpath(path)})",
            path=path,
        )
    raise ExportError(
        f"{path} is {_kind(info.st_mode)}, not a regular file; an export writes a "
        "regular file: give a file path",
        path=path,
    )


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
    """Write ``data`` to ``path`` atomically (``PATH.tmp``, opened by :func:`open_temp`,
    then renamed over ``path``); ``durable`` also syncs the data before the rename and the
    directory after it."""
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
    ``limit`` bytes (all of it by default), read with :func:`open_read`."""
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(open_read(path), "rb") as fh:
        while limit is None or size < limit:
            chunk_size = defaults.SPOOL_READ_BYTES
            want = chunk_size if limit is None else min(chunk_size, limit - size)
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest, size


def _csv_line_ends(chunk: bytes, quoted: bool) -> tuple[int, bool]:
    """Newlines of ``chunk`` outside quoted CSV fields, and whether it ends inside one
    (``quoted``: whether it starts inside one). A doubled quote toggles twice."""
    pieces = chunk.split(b'"')
    ends = 0
    for index, piece in enumerate(pieces):
        if not quoted:
            ends += piece.count(b"\n")
        if index < len(pieces) - 1:
            quoted = not quoted
    return ends, quoted


def scan(path: str, limit: int, *, csv: bool = False) -> tuple[Any, int, int]:
    """The SHA-256 (a ``hashlib`` object, to continue), size and number of lines of
    ``path``'s first ``limit`` bytes, in one pass. With ``csv``, a newline inside a
    quoted field does not end a line (so lines are CSV records)."""
    digest = hashlib.sha256()
    size = 0
    lines = 0
    quoted = False
    with os.fdopen(open_read(path), "rb") as fh:
        while size < limit:
            chunk = fh.read(min(defaults.SPOOL_READ_BYTES, limit - size))
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            if csv:
                ends, quoted = _csv_line_ends(chunk, quoted)
                lines += ends
            else:
                lines += chunk.count(b"\n")
    return digest, size, lines
