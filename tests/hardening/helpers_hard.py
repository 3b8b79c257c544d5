"""Helpers of the hardening tests: distinctive secrets, chaos settings, and tiny real
HTTP servers that misbehave on purpose.

``BrokenServer`` is a raw asyncio server on 127.0.0.1 (a real socket, in a thread) that
answers each request with whatever bytes a test's responder returns: malformed status
lines, HTML error pages, invalid JSON, truncated bodies, page-token loops, or nothing at
all (a server slower than the client's timeout). It counts the requests it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import orjson

from timbal_integrations import AsyncTimbalClient, RetryPolicy, TimbalClient, retry

__all__ = [
    "CHAOS",
    "MCP_TOKEN",
    "ORG",
    "PROJECT",
    "SECRET_KEY",
    "BrokenServer",
    "Request",
    "chaos_policy",
    "http_response",
    "json_response",
    "page_body",
    "real_sleeps",
    "serve_asgi",
]

#: The API key of every hardening test: distinctive, so that finding it anywhere is a leak.
SECRET_KEY: Final = "tk_hard_S3CR3T_5e9d1f7b3a_key"
#: The MCP HTTP transport's auth token in these tests.
MCP_TOKEN: Final = "mcp-hard-T0KEN-8c2e6a4f0b9d7e1c"
ORG: Final = "org_hard"
PROJECT: Final = "proj_hard"

#: A bad day: a quarter of the requests fail with every kind of transient fault.
CHAOS: Final[dict[str, Any]] = {
    "fault_rate": 0.25,
    "fault_kinds": ("429", "500", "502", "503", "drop"),
    "retry_after": 1,
}


def chaos_policy(max_retries: int = 30) -> RetryPolicy:
    """Many retries with real but tiny waits (Retry-After capped at 20 ms), so that a
    rate limit actually paces the client while the test stays fast."""
    return RetryPolicy(
        max_retries=max_retries, backoff_base=0.001, backoff_max=0.01, retry_after_max=0.02
    )


@contextlib.contextmanager
def real_sleeps() -> Iterator[None]:
    """Within the block retries really wait (the suite switches waiting off by default)."""
    with retry.testing(False):
        yield


def http_response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str | None = "application/json",
    headers: Mapping[str, str] | None = None,
    reason: str = "Whatever",
    content_length: int | None = None,
) -> bytes:
    """The raw bytes of an HTTP/1.1 response (``Connection: close``)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    length = len(body) if content_length is None else content_length
    lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_response(status: int, data: object, **kwargs: Any) -> bytes:
    """An HTTP response whose body is ``data`` as JSON."""
    return http_response(status, orjson.dumps(data), **kwargs)


@dataclass
class Request:
    """One request a :class:`BrokenServer` received."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


#: Given the request (and its 0-based number), the raw response bytes, or None to hang
#: until the server stops (a server slower than any client timeout).
Responder = Callable[[Request, int], bytes | None]


@dataclass
class BrokenServer:
    """A raw HTTP server on 127.0.0.1 answering with whatever ``responder`` returns."""

    responder: Responder
    requests: list[Request] = field(default_factory=list)
    base_url: str = ""

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.requests)

    def client(self, **kwargs: Any) -> TimbalClient:
        """A sync client of this server, with the hardening key."""
        return TimbalClient(
            SECRET_KEY, host=self.base_url, org_id=ORG, project_id=PROJECT, env={}, **kwargs
        )

    def async_client(self, **kwargs: Any) -> AsyncTimbalClient:
        """An async client of this server, with the hardening key."""
        return AsyncTimbalClient(
            SECRET_KEY, host=self.base_url, org_id=ORG, project_id=PROJECT, env={}, **kwargs
        )

    def env(self) -> dict[str, str]:
        """``TIMBAL_*`` variables pointing at this server."""
        return {
            "TIMBAL_API_KEY": SECRET_KEY,
            "TIMBAL_API_HOST": self.base_url,
            "TIMBAL_ORG_ID": ORG,
            "TIMBAL_PROJECT_ID": PROJECT,
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        request = Request(method, url.path, dict(parse_qsl(url.query)), headers)
        number = len(self.requests)
        self.requests.append(request)
        answer = self.responder(request, number)
        try:
            if answer is None:
                await asyncio.Event().wait()  # until the server stops (then cancelled)
            else:
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[BrokenServer]:
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
                await self._serve(reader, writer)
            finally:
                tasks.discard(task)

        async def start() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            holder["server"] = server
            port = server.sockets[0].getsockname()[1]
            self.base_url = f"http://127.0.0.1:{port}"
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

        thread = threading.Thread(target=target, name="broken-server", daemon=True)
        thread.start()
        try:
            if not ready.wait(10):
                raise RuntimeError("the broken server did not start")
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


def page_body(runs: list[dict[str, Any]], token: str | None) -> bytes:
    """A valid list page."""
    return json_response(200, {"runs": runs, "next_page_token": token})


@contextlib.contextmanager
def serve_asgi(app: Any, *, lifespan: str = "on") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port; yields its base URL."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan=lifespan
    )
    ready = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets=sockets)
            ready.set()

    server = Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the ASGI server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
