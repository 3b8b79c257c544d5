"""The transports the clients send through: connection pools small enough to stay
cheap with many requests in flight.

Requests go straight to the transport httpx would pick for the host
(:func:`transport_for`), over one verifying TLS context per process
(:func:`ssl_context`).

httpcore's pool assigns every request by scanning every connection, and checks every
idle one for expiry, each time a request starts or ends: the work per request grows with
the number of connections, so the work per round of a parallel listing grows with its
square. Measured in this project (40k runs, 40 ms per request, 2 cores): 16 requests in
flight cost the client 2.0 s of CPU for a listing, 32 cost 5.5 s, 60% of it in the
pool, and the listing got slower, not faster.

:class:`AsyncShards` is an ``httpx.AsyncBaseTransport`` made of several pools of at
most :data:`SHARD_CONNECTIONS` connections each; a request goes to the pool with the
fewest requests in flight (the earliest on a tie, so a quiet client reuses one pool's
warm connections). A response holds its pool's slot until it is closed. The synchronous
client sends one request at a time and keeps one pool (:func:`sync_wire`). A proxy from
the environment, and an injected transport, are used as they are.
"""

from __future__ import annotations

import functools
import math
import ssl
from collections.abc import AsyncIterator
from typing import Final, overload

import certifi
import httpx

__all__ = [
    "SHARD_CONNECTIONS",
    "AsyncShards",
    "async_wire",
    "ssl_context",
    "sync_wire",
    "transport_for",
]

SHARD_CONNECTIONS: Final = 8
"""The most connections one pool holds."""


# Requests go straight to the transport the httpx client would pick for our host (an
# injected one, a proxy from HTTP(S)_PROXY/ALL_PROXY unless NO_PROXY says otherwise, or
# the default pool), with the client's headers and timeout. Client.get adds per request:
# merging URL, headers and cookies, auth and redirect generators, storing response
# cookies through urllib's cookie machinery, and an INFO log line with the full URL. We
# use none of them (auth is a header, redirects are reported, not followed) and together
# they cost ~0.2 ms a request: a sixth of a page's round trip against a local server.
# Every request goes to one host, so the transport is picked once.


@overload
def transport_for(http: httpx.Client, base_url: str) -> httpx.BaseTransport: ...
@overload
def transport_for(http: httpx.AsyncClient, base_url: str) -> httpx.AsyncBaseTransport: ...
def transport_for(
    http: httpx.Client | httpx.AsyncClient, base_url: str
) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
    """The transport ``http`` would send a request for ``base_url`` through."""
    return http._transport_for_url(httpx.URL(base_url))  # private since httpx 0.18, stable


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one costs ~50 ms, per client."""
    return ssl.create_default_context(cafile=certifi.where())


class _Held(httpx.AsyncByteStream):
    """A response body that gives its pool's slot back when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, shards: AsyncShards, index: int) -> None:
        self._stream = stream
        self._shards = shards
        self._index = index
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._open:
                self._open = False
                self._shards.in_flight[self._index] -= 1


class AsyncShards(httpx.AsyncBaseTransport):
    """``max_connections`` spread over pools of at most :data:`SHARD_CONNECTIONS`."""

    def __init__(self, max_connections: int) -> None:
        count = max(1, math.ceil(max_connections / SHARD_CONNECTIONS))
        per = max(1, math.ceil(max_connections / count))
        self.pools = [
            httpx.AsyncHTTPTransport(verify=ssl_context(), limits=httpx.Limits(max_connections=per))
            for _ in range(count)
        ]
        self.in_flight = [0] * count
        """Requests each pool serves now (sent, and their responses not yet closed)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = self.in_flight.index(min(self.in_flight))
        self.in_flight[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
        except BaseException:
            self.in_flight[index] -= 1
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _Held(stream, self, index)
        return response

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def async_wire(
    http: httpx.AsyncClient,
    base_url: str,
    transport: httpx.AsyncBaseTransport | None,
    max_connections: int,
) -> tuple[httpx.AsyncBaseTransport, AsyncShards | None]:
    """The transport the asynchronous client sends through, and the shards it owns (to
    close with it; None when it uses httpx's own choice).

    An injected ``transport``, and a proxy httpx takes from the environment for
    ``base_url``, are used as they are; otherwise requests go through pools of at most
    :data:`SHARD_CONNECTIONS` connections (one pool when ``max_connections`` fits one)."""
    wire = transport_for(http, base_url)
    if transport is not None or wire is not http._transport:  # injected, or a proxy
        return wire, None
    if max_connections <= SHARD_CONNECTIONS:
        return wire, None
    shards = AsyncShards(max_connections)
    return shards, shards


def sync_wire(
    http: httpx.Client,
    base_url: str,
    transport: httpx.BaseTransport | None,
    max_connections: int,
) -> tuple[httpx.BaseTransport, None]:
    """The synchronous client's transport: httpx's own choice (it sends one request at
    a time, so one pool stays cheap)."""
    return transport_for(http, base_url), None
