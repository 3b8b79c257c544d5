"""Helpers of the hardening tests: distinctive secrets, chaos settings, and tiny real
HTTP servers that misbehave on purpose.

``BrokenServer`` is a raw asyncio server on 127.0.0.1 (a real socket, in a thread: a
``tests.support.hostile.HostileServer``) that answers each request with whatever bytes
a test's responder returns: malformed status
lines, HTML error pages, invalid JSON, truncated bodies, page-token loops, or nothing at
all (a server slower than the client's timeout). It counts the requests it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import orjson

from tests.support.hostile import HostileServer, Request
from timbal_integrations import RetryPolicy, retry

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


#: Given the request (and its 0-based number), the raw response bytes, or None to hang
#: until the server stops (a server slower than any client timeout).
Responder = Callable[[Request, int], bytes | None]


class BrokenServer(HostileServer):
    """A raw HTTP server on 127.0.0.1 answering with whatever ``responder`` returns, one
    request per connection; its clients and :meth:`env` use :data:`SECRET_KEY`.

    A :class:`~tests.support.hostile.HostileServer` (the same real socket, thread and
    request parsing) whose handler writes the responder's bytes, or hangs.
    """

    def __init__(self, responder: Responder) -> None:
        async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
            answer = responder(request, request.number)
            if answer is None:
                await asyncio.Event().wait()  # until the server stops (then cancelled)
                return
            writer.write(answer)
            await writer.drain()
            writer.close()  # its answers say Connection: close

        super().__init__(handler, key=SECRET_KEY, org=ORG, project=PROJECT)


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
