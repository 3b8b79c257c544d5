"""Reading a response body within a size cap and a deadline (sans-I/O), into a
:class:`Reply`.

The clients hand every raw chunk of a body, as it arrives, to a :class:`BodyReader`,
which decodes it here (not in httpx) so that decoding is bounded too: each decoder
produces at most :data:`STEP` bytes per call, the decoded bytes are counted as they are
produced, and the reader stops at the cap. So a 200 MB body, or 1 MB of gzip that would
expand to 1 GiB, fails with :class:`~timbal_integrations.errors.ResponseTooLargeError`
after at most the cap (plus a step) in memory. A ``Content-Length`` over the cap fails
before the body is read at all.

Encodings: ``gzip`` and ``deflate`` always; ``br`` when the ``brotli`` package (1.2 or
later, whose decompressor can bound its output) is installed. The clients ask only for
these (:func:`accept_encoding`); a body in another encoding is refused. The clients hand
the rest of the core a :class:`Reply`: the status, the headers and the decoded body.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx

from ..errors import ResponseTooLargeError, ResponseValidationError

__all__ = ["STEP", "BodyReader", "Reply", "accept_encoding", "human_size"]

STEP: Final = 1 << 20
"""Bytes a decoder produces at most per call (bounds the memory of one decoding step)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A response, read: its status, headers and whole decoded body (within the cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def human_size(size: int) -> str:
    """``64 MiB``, ``1.5 KiB``, ``300 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip, or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._obj: Any = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._started = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if not self._started and self._raw_fallback:
            self._started = True
            try:
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(data[:64], 1)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._started = True
        pending = data
        while pending:
            try:
                out = self._obj.decompress(pending, STEP)
            except zlib.error as exc:
                raise _Undecodable(str(exc)) from None
            pending = self._obj.unconsumed_tail
            if out:
                yield out
            elif pending:  # pragma: no cover - zlib always makes progress
                raise _Undecodable("no progress")
            if self._obj.eof:
                return

    def flush(self) -> Iterator[bytes]:
        try:
            out = self._obj.flush()
        except zlib.error as exc:  # pragma: no cover - flush after decompress rarely fails
            raise _Undecodable(str(exc)) from None
        if out:
            yield out


class _Brotli:
    """br, with the decompressor's output bounded (brotli 1.2 or later)."""

    def __init__(self) -> None:
        import brotli

        self._obj = brotli.Decompressor()
        self._error: type[Exception] = brotli.error

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._obj.process(data, output_buffer_limit=STEP)
            if out:
                yield out
            while not self._obj.can_accept_more_data() and not self._obj.is_finished():
                out = self._obj.process(b"", output_buffer_limit=STEP)
                if not out:  # pragma: no cover - brotli always makes progress
                    return
                yield out
        except self._error as exc:
            raise _Undecodable(str(exc) or "invalid brotli data") from None

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Undecodable(Exception):
    """A body that does not decode in its announced encoding."""


@functools.cache
def _brotli_bounded() -> bool:
    """True when ``brotli`` is installed and can bound its output (1.2 or later)."""
    try:
        import brotli
    except ImportError:
        return False
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return False
    except Exception:  # noqa: S110 - an empty input may be "incomplete": still supported
        pass
    return True


def accept_encoding() -> str:
    """The ``Accept-Encoding`` the clients send: the encodings they can decode within
    the cap."""
    return "gzip, deflate, br" if _brotli_bounded() else "gzip, deflate"


def _decoder(name: str) -> _Decoder | None:
    """The decoder of one content coding (None for identity), or _Undecodable."""
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if name == "br" and _brotli_bounded():
        return _Brotli()
    raise _Undecodable(f"Content-Encoding {name!r}, which was not asked for")


class BodyReader:
    """Collects one response body: raw chunks in (:meth:`feed`), decoded bytes out
    (:meth:`finish`), never more than ``limit`` decoded bytes and never past
    ``deadline`` (a ``time.monotonic()`` value)."""

    def __init__(
        self,
        headers: httpx.Headers,
        *,
        limit: int,
        path: str,
        status: int,
        deadline: float | None = None,
    ) -> None:
        self.limit = limit
        self.path = path
        self.status = status
        self.deadline = deadline
        self.size = 0
        self._pieces: list[bytes] = []
        names = [
            part.strip().lower()
            for part in headers.get("content-encoding", "").split(",")
            if part.strip()
        ]
        try:
            self._decoders = [d for d in map(_decoder, reversed(names)) if d is not None]
        except _Undecodable as exc:
            raise self._undecodable(str(exc)) from None
        length = headers.get("content-length", "")
        announced = int(length) if length.isascii() and length.isdigit() else 0
        if not self._decoders and announced > limit:
            raise self._too_large(f"announced {announced:,} bytes")

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"GET {self.path} answered {self.status} with a body over the "
            f"{human_size(self.limit)} cap ({what}); stopped reading it. A broken or "
            "hostile server? If its responses really are this big, raise "
            "Bounds(max_response_bytes=...)",
            path=self.path,
            limit=self.limit,
        )

    def _undecodable(self, problem: str) -> ResponseValidationError:
        return ResponseValidationError(
            f"GET {self.path} answered {self.status} with a body that cannot be decoded "
            f"({problem}; this client asks for {accept_encoding()})"
        )

    def _take(self, pieces: Iterator[bytes], stage: int) -> None:
        """Run decoded ``pieces`` through the decoders after ``stage``, keeping the output."""
        for piece in pieces:
            if stage + 1 < len(self._decoders):
                self._take(self._decoders[stage + 1].decode(piece), stage + 1)
                continue
            self.size += len(piece)
            if self.size > self.limit:
                self._pieces.clear()
                raise self._too_large(f"more than {self.size:,} bytes decoded")
            self._pieces.append(piece)

    def feed(self, raw: bytes) -> None:
        """One raw chunk as received; raises past the cap or the deadline."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._pieces.clear()
            raise httpx.ReadTimeout("the request's total deadline passed while reading the body")
        if not raw:
            return
        try:
            if self._decoders:
                self._take(self._decoders[0].decode(raw), 0)
            else:
                self._take(iter((raw,)), 0)
        except _Undecodable as exc:
            raise self._undecodable(str(exc)) from None

    def finish(self) -> bytes:
        """The whole decoded body (after the last chunk)."""
        try:
            for stage, decoder in enumerate(self._decoders):
                self._take(decoder.flush(), stage)
        except _Undecodable as exc:
            raise self._undecodable(str(exc)) from None
        pieces = self._pieces
        self._pieces = []
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)
