"""Why a checkpoint can be trusted: its seal, and the prefixes of the files it covers.

A checkpoint is sealed by the SHA-256 of all its other entries (:func:`seal`), so an
edited one is refused on load. It also records, for ``PATH.part`` and for each spool of
a parallel export, how many bytes it covers, their SHA-256 and how many runs they hold;
:func:`verify_prefix` checks a file against those before a resume continues it, so a
truncated or altered partial file is refused rather than finished and published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

from ..errors import ExportError
from .files import scan

__all__ = ["EMPTY_SHA256", "START_OVER", "seal", "verify_prefix"]

EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
"""The SHA-256 of no bytes: what a file that holds nothing yet hashes to."""

START_OVER: Final = "export without resume to start over"
"""How every refusal of a checkpoint or of its files ends: what the user can do."""


def seal(data: Mapping[str, Any]) -> str:
    """The SHA-256 of a checkpoint's entries (all but ``integrity``), canonically encoded."""
    body = {key: value for key, value in data.items() if key != "integrity"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def verify_prefix(path: str, offset: int, sha256: str, lines: int, *, csv: bool, what: str) -> Any:
    """Check the first ``offset`` bytes of ``path``: their SHA-256 and their lines
    (CSV records with ``csv``). Returns the SHA-256 (a ``hashlib`` object, to continue);
    :class:`ExportError` naming what differs otherwise (``what`` is the checkpoint's
    description, as in "its checkpoint (spools[2])")."""
    try:
        digest, size, found = scan(path, offset, csv=csv)
    except FileNotFoundError:
        if offset == 0:
            return hashlib.sha256()
        raise ExportError(f"{path} is missing; {START_OVER}", path=path) from None
    if size < offset:
        raise ExportError(
            f"{path} is shorter than {what} says ({size:,} < {offset:,} bytes): it was "
            f"truncated; {START_OVER}",
            path=path,
        )
    if digest.hexdigest() != sha256:
        raise ExportError(
            f"the first {offset:,} bytes of {path} are not the ones {what} covers (their "
            f"SHA-256 differs): the file was altered; {START_OVER}",
            path=path,
        )
    if found != lines:
        raise ExportError(
            f"{path} holds {found:,} lines where {what} says {lines:,}; {START_OVER}",
            path=path,
        )
    return digest
