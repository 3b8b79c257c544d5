"""Hostile HTTP servers for the hardening tests: small asyncio servers on 127.0.0.1 that
drip, bomb, page forever, echo the key, or send control characters.

:class:`HostileServer` runs in a thread of its own, accepts real connections on a free
port, and answers each request with an async ``handler(request, writer)``. Every
connection is bounded in time (``max_seconds``, 30 by default): past it the handler is
cancelled and the connection closed, and everything stops when the ``with`` block ends,
so no test can hang on a server, even against code that does not bound it.

Handlers for the cases of issue 16 are built by the functions below (:func:`drip`,
:func:`drip_headers`, :func:`body`, :func:`pages`, :func:`error`). The hardening tests'
``BrokenServer`` (``tests.hardening.helpers_hard``) is a ``HostileServer`` too, with a
handler made of raw response bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

from tests.support.runs import make_run
from timbal_integrations import AsyncTimbalClient, TimbalClient

__all__ = [
    "FORMULA_USER",
    "KEY",
    "ORG",
    "PROJECT",
    "HostileServer",
    "Request",
    "assert_worded_safely",
    "body",
    "drip",
    "drip_headers",
    "echo_key",
    "echoed_key_forms",
    "error",
    "formula_runs",
    "gzip_bomb",
    "head",
    "pages",
]

#: The API key of these tests: distinctive, so that finding it (or a form of it) is a leak.
KEY: Final = "tk-hostile/9f4c2e7a+1b6d=K3Y"
ORG: Final = "org_hostile"
PROJECT: Final = "proj_hostile"


@dataclass
class Request:
    """One request a :class:`HostileServer` received (its number counts from 0)."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    number: int


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]
"""Writes the answer to ``request`` (or never does); the server closes the connection."""


@dataclass
class HostileServer:
    """A real HTTP server on 127.0.0.1 whose answers ``handler`` writes."""

    handler: Handler
    max_seconds: float = 30.0
    requests: list[Request] = field(default_factory=list)
    base_url: str = ""
    port: int = 0
    key: str = KEY
    """The API key its clients and :meth:`env` use."""
    org: str = ORG
    project: str = PROJECT

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.requests)

    def settings(self) -> dict[str, Any]:
        """Client keyword arguments pointing at this server (no environment read)."""
        return {"host": self.base_url, "org_id": self.org, "project_id": self.project, "env": {}}

    def client(self, **kwargs: Any) -> TimbalClient:
        """A sync client of this server with its key (:data:`KEY` by default)."""
        return TimbalClient(self.key, **{**self.settings(), **kwargs})

    def async_client(self, **kwargs: Any) -> AsyncTimbalClient:
        """An async client of this server with its key (:data:`KEY` by default)."""
        return AsyncTimbalClient(self.key, **{**self.settings(), **kwargs})

    def env(self) -> dict[str, str]:
        """``TIMBAL_*`` variables pointing at this server."""
        return {
            "TIMBAL_API_KEY": self.key,
            "TIMBAL_API_HOST": self.base_url,
            "TIMBAL_ORG_ID": self.org,
            "TIMBAL_PROJECT_ID": self.project,
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another
                try:
                    head_bytes = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head_bytes.decode("latin-1").split("\r\n")
                method, target, _ = [*lines[0].split(" "), "", ""][:3]
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                url = urlsplit(target)
                request = Request(
                    method, url.path, dict(parse_qsl(url.query)), headers, len(self.requests)
                )
                self.requests.append(request)
                await self.handler(request, writer)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[HostileServer]:
        """Serve on a free port for the block; ``base_url`` is set once it listens."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        tasks: set[asyncio.Task[None]] = set()
        holder: dict[str, asyncio.Server] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                async with asyncio.timeout(self.max_seconds):
                    await self._serve(reader, writer)
            except TimeoutError:
                writer.close()
            finally:
                tasks.discard(task)

        async def start() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
            holder["server"] = server
            self.port = server.sockets[0].getsockname()[1]
            self.base_url = f"http://127.0.0.1:{self.port}"
            ready.set()

        async def stop() -> None:
            holder["server"].close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await holder["server"].wait_closed()

        def target() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            loop.run_forever()
            loop.run_until_complete(stop())
            loop.close()

        thread = threading.Thread(target=target, name="hostile-server", daemon=True)
        thread.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("the hostile server did not start")
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)


# --------------------------------------------------------------------------- answers


def head(
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    length: int | None = None,
    chunked: bool = False,
) -> bytes:
    """A status line and headers (JSON content type unless ``headers`` say otherwise)."""
    fields = {"Content-Type": "application/json", **(headers or {})}
    if chunked:
        fields["Transfer-Encoding"] = "chunked"
    elif length is not None:
        fields["Content-Length"] = str(length)
    lines = [f"HTTP/1.1 {status} Whatever", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def drip(interval: float = 0.05, status: int = 200) -> Handler:
    """Headers at once, then a body one byte every ``interval`` seconds, never ending (a
    valid-looking JSON prefix padded with spaces)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, chunked=True))
        await writer.drain()
        prefix = b'{"runs": ['
        index = 0
        while True:
            byte = prefix[index : index + 1] if index < len(prefix) else b" "
            writer.write(_chunk(byte))
            await writer.drain()
            index += 1
            await asyncio.sleep(interval)

    return handler


def drip_headers(interval: float = 0.05) -> Handler:
    """The status line and headers one byte every ``interval`` seconds, never ending."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        data = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        index = 0
        while True:
            writer.write(data[index : index + 1] if index < len(data) else b"X")
            await writer.drain()
            index += 1
            if index == len(data):
                data += b"X-Drip: "
            await asyncio.sleep(interval)

    return handler


def body(
    payload: Callable[[], Iterator[bytes]],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    length: int | None = None,
) -> Handler:
    """``payload()``'s chunks as the body: with ``length``, as a Content-Length body,
    otherwise chunked (the client cannot know the size before reading)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, headers, length=length, chunked=length is None))
        for piece in payload():
            writer.write(piece if length is not None else _chunk(piece))
            await writer.drain()
        if length is None:
            writer.write(b"0\r\n\r\n")

    return handler


@functools.cache
def gzip_bomb(total: int = 1 << 30) -> bytes:
    """About 1 MB of gzip that expands to ``total`` bytes of zeros (a valid gzip member).

    One deflate block of 1 MiB of zeros, ended by a full flush (which resets the
    compressor, so the block can be repeated), repeated; then the final block and the
    gzip trailer. Built once per session (about a second).
    """
    unit = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(unit)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    crc = 0
    zeros = bytes(unit)
    for _ in range(total // unit):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, total & 0xFFFFFFFF)
    return header + block * (total // unit) + end + trailer


def pages(page: Callable[[Request], dict[str, Any]], *, delay: float = 0.0) -> Handler:
    """List pages: ``page(request)`` is each page's JSON (after ``delay`` seconds)."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if delay:
            await asyncio.sleep(delay)
        data = orjson.dumps(page(request))
        writer.write(head(200, length=len(data)) + data)

    return handler


def error(status: int, data: bytes, headers: Mapping[str, str] | None = None) -> Handler:
    """An error answer with ``data`` as its body."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(status, headers, length=len(data)) + data)

    return handler


def echoed_key_forms(key: str = KEY) -> dict[str, str]:
    """How servers echo a key back, by name: its last characters, base64 of the
    Authorization header and of the key, the key URL-encoded."""
    return {
        "last characters": f"...{key[-10:]}",
        "base64 of the header": base64.b64encode(f"Bearer {key}".encode()).decode(),
        "base64 of the key": base64.b64encode(key.encode()).decode(),
        "url-encoded": quote(key, safe=""),
        "basic auth": base64.b64encode(f"api:{key}".encode()).decode(),
    }


def echo_key(status: int = 401, *, before: str = "", after: str = "") -> Handler:
    """An error answer whose message echoes the key in every form of
    :func:`echoed_key_forms` (``bad key (last characters: ... | ...)``), with ``before``
    and ``after`` around it (control characters, say)."""
    said = " | ".join(f"{name}: {form}" for name, form in echoed_key_forms().items())
    message = f"{before}bad key ({said}){after}"
    return error(status, orjson.dumps({"message": message}))


FORMULA_USER: Final = {
    "id": "=cmd|' /C calc'!A0",
    "name": '=HYPERLINK("http://x")',
    "email": "+1@x",
}
"""A user whose every text field a spreadsheet would read as a formula."""


def formula_runs(request: Request) -> dict[str, Any]:
    """A page of one run (``make_run(7)``'s, on 2025-12-01) of :data:`FORMULA_USER`."""
    return {"runs": [make_run(7, user=dict(FORMULA_USER))], "next_page_token": None}


def assert_worded_safely(settings: Any) -> None:
    """Check an orchestrator's settings object (a Dagster resource, a Prefect block) made
    with :data:`KEY`: its ``describe`` and ``restate`` redact the key from any error's
    text, not only the core's, and leave no control character to act on a terminal."""
    from timbal_integrations import ResponseValidationError

    text = settings.describe(ResponseValidationError(f"\x1b]0;title\x07body echoed {KEY}"))
    assert KEY not in text
    assert "***" in text
    assert "\x1b" not in text
    assert "\\x1b]0;title\\x07" in text  # shown, escaped
    restated = settings.restate(ResponseValidationError(f"echoed ...{KEY[-10:]}"))
    assert isinstance(restated, ResponseValidationError)
    assert KEY[-10:] not in str(restated)
