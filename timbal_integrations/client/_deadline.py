"""One total deadline per request: connecting, sending and every read, however the server
drips its bytes.

httpx's timeouts bound each phase on its own (``read`` is the gap between two reads), so
a server sending one byte a second keeps a request alive for as long as it likes. The
clients set a deadline for each request (:func:`deadline`, a context variable, so every
thread and every asyncio task has its own), and the network streams of their
connection pools clamp each operation's timeout to what is left of it: the read that
would outlive the deadline times out when it passes (:func:`install`). The body reader
also checks it between chunks, which bounds requests through an injected transport
whose network is not ours to clamp.

:func:`install` reaches one private attribute, the ``_network_backend`` of the httpcore
pool behind an ``httpx.HTTPTransport`` (a public httpcore parameter that httpx does not
expose), and wraps the backend: the one place this module leans on httpx's internals.

The sync wrappers (``_Stream``, ``_Backend``) and the async ones (``_AsyncStream``,
``_AsyncBackend``) look alike on purpose: httpcore's sync and async network interfaces
are separate abstract classes (plain methods and coroutines), so each needs its own
subclass; all they do is pass every timeout through :func:`_clamp`, which exists once.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import typing
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import httpcore

__all__ = ["deadline", "expired", "install"]

_DEADLINE: ContextVar[float | None] = ContextVar("timbal_request_deadline", default=None)

_SocketOption = httpcore.SOCKET_OPTION


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[float | None]:
    """Within the block, I/O of the current thread or task ends ``seconds`` from now
    (None: no deadline). Yields the deadline as a ``time.monotonic()`` value."""
    at = None if seconds is None else time.monotonic() + seconds
    token = _DEADLINE.set(at)
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


def expired(at: float | None) -> bool:
    """True when the deadline ``at`` (a ``time.monotonic()`` value) has passed."""
    return at is not None and time.monotonic() >= at


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout``, shortened to what is left of the current deadline."""
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return _Stream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _Stream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return _AsyncStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _AsyncStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _AsyncStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(transport: object) -> bool:
    """Make the connections of ``transport`` (an ``httpx.HTTPTransport`` or
    ``AsyncHTTPTransport``, proxies included, or the pools of an ``AsyncShards``) keep
    the current request's deadline.

    Returns False for a transport without an httpcore pool (``httpx.MockTransport``,
    a custom one): its requests are bounded between body chunks only.
    """
    pools = getattr(transport, "pools", None)  # client/_shards.AsyncShards
    if isinstance(pools, list):
        return all([install(pool) for pool in pools])
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, _Backend | _AsyncBackend):
        return True
    if isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = _AsyncBackend(backend)  # type: ignore[union-attr]
        return True
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
        return True
    return False
