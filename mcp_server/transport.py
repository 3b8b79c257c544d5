"""Serving over streamable HTTP: a bearer-token gate, DNS-rebinding protection, uvicorn.

Layers of the HTTP app, outermost first::

    BearerTokenMiddleware     every request must carry "Authorization: Bearer <token>"
      |                       (when a token is configured; 401 otherwise)
      v
    the SDK's Starlette app   Host / Origin checks (421 / 403 for a foreign Host or
                              Origin), then the MCP endpoint at ``path`` (``/mcp``)

Binding to an address other than loopback requires a token: without one, anyone who
can reach the port could read the project's run history with the server's API key.
``uvicorn`` is imported only when a server starts.

The token is only read once a request's headers have arrived, so the connections
themselves are bounded too (:func:`serve_http`): a client has ``header_timeout`` seconds
(10 by default) from connecting, or from the first byte of its next request, to send the
request's headers; an idle keep-alive connection is closed after ``idle_timeout``
seconds (5); at most ``max_connections`` connections (100) are open at once, and one
more makes room by closing the connection that has waited longest for its headers (or,
when every connection is busy with a request, is closed at once); headers are limited to
16 KiB. So slow or idle connections, authenticated or not, cannot hold the server.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from timbal_integrations import defaults

from ._hosts import is_loopback

__all__ = [
    "HEADER_BYTES",
    "LOOPBACK_HOSTS",
    "BearerTokenMiddleware",
    "build_http_app",
    "is_loopback",
    "security_settings",
    "serve_http",
]

logger = logging.getLogger("mcp_server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
HEADER_BYTES: Final = 16 * 1024
"""The most bytes of request line and headers a request may have."""
_WILDCARDS: Final = ("0.0.0.0", "::", "")
_UNAUTHORIZED: Final = (
    b'{"error":"unauthorized","message":"missing or wrong bearer token: send '
    b"Authorization: Bearer <token> (the token timbal-mcp was started with, "
    b'--auth-token or TIMBAL_MCP_TOKEN)"}'
)


def _host_forms(host: str) -> list[str]:
    name = host.strip()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return [name, f"{name}:*"]


def security_settings(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host (and Origin) values requests may carry.

    Always the loopback names; the bind address itself when it is a specific one; and
    ``allowed_hosts`` (names clients use to reach a server bound to 0.0.0.0, say).
    """
    names: list[str] = list(LOOPBACK_HOSTS)
    if host.strip() not in _WILDCARDS and not is_loopback(host):
        names.append(host.strip())
    names.extend(h.strip() for h in allowed_hosts if h.strip())
    hosts: list[str] = []
    origins: list[str] = []
    for name in dict.fromkeys(names):
        for form in _host_forms(name):
            hosts.append(form)
            origins.extend([f"http://{form}", f"https://{form}"])
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerTokenMiddleware:
    """Refuse HTTP requests that do not carry ``Authorization: Bearer <token>``.

    The comparison takes constant time. Lifespan events pass through.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        """Guard ``app`` with ``token``."""
        if not token:
            raise ValueError("token: must not be empty")
        self.app = app
        self._token = token.encode()

    def __repr__(self) -> str:
        return "BearerTokenMiddleware(token='********')"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        supplied = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                scheme, _, rest = bytes(value).partition(b" ")
                if scheme.lower() == b"bearer":
                    supplied = rest.strip()
                break
        if supplied and hmac.compare_digest(supplied, self._token):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                    (b"www-authenticate", b'Bearer realm="timbal-mcp"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})


def build_http_app(
    server: MCPServer[Any],
    *,
    host: str,
    path: str = "/mcp",
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
) -> ASGIApp:
    """The ASGI app serving ``server`` over streamable HTTP at ``path``.

    Raises :class:`ValueError` when ``host`` is not loopback and there is no token.
    """
    if not token and not is_loopback(host):
        raise ValueError(
            f"--host {host} is not a loopback address: set --auth-token (or "
            "TIMBAL_MCP_TOKEN) so that only clients holding the token can connect"
        )
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=path,
        transport_security=security_settings(host, allowed_hosts),
        host=host,
    )
    if token:
        app = BearerTokenMiddleware(app, token)
    return app


def _guarded_protocol(header_timeout: float, max_connections: int) -> type[Any]:
    """uvicorn's h11 protocol, with a deadline for each request's headers and a cap on
    open connections (uvicorn has neither: a connection that sends nothing, or sends its
    headers a byte at a time, stays open as long as the client likes)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_since = 0.0
        _cycle: object = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_headers()
            if len(self.connections) > max_connections:
                self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_arrived()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self._header_timer is None:
                self._await_headers()  # the first bytes of the next request
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self.cycle is not self._cycle:
                self._cycle = self.cycle  # a request's headers are in: it is served
                self._headers_arrived()

        def _await_headers(self) -> None:
            self._waiting_since = self.loop.time()
            self._header_timer = self.loop.call_later(header_timeout, self._too_slow)

        def _headers_arrived(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            logger.debug("closing a connection that sent no complete request headers in time")
            self._drop()

        def _drop(self) -> None:
            self._headers_arrived()
            if not self.transport.is_closing():
                self.transport.close()

        def _make_room(self) -> None:
            waiting = [
                c
                for c in self.connections
                if isinstance(c, GuardedH11Protocol)
                and c is not self
                and c._header_timer is not None
            ]
            if waiting:
                oldest = min(waiting, key=lambda c: c._waiting_since)
                logger.debug("connection cap reached: closing the slowest to send headers")
                oldest._drop()
            else:
                logger.warning(
                    "refusing a connection: %d are open (--max-connections)", max_connections
                )
                self._drop()

    return GuardedH11Protocol


def serve_http(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    path: str = "/mcp",
    log_level: str = "warning",
    announce: Callable[[str], None] | None = None,
    header_timeout: float = defaults.MCP_HTTP_HEADER_TIMEOUT,
    idle_timeout: int = defaults.MCP_HTTP_IDLE_TIMEOUT,
    max_connections: int = defaults.MCP_HTTP_MAX_CONNECTIONS,
) -> None:
    """Serve ``app`` with uvicorn until interrupted (blocks).

    Once the socket listens, ``announce`` (default: a line on stderr) receives the
    server's URL, with the real port when ``port`` is 0. ``header_timeout``,
    ``idle_timeout`` and ``max_connections`` bound the connections (see the module).
    """
    import uvicorn

    def default_announce(url: str) -> None:
        print(f"timbal-mcp: serving streamable HTTP at {url}", file=sys.stderr, flush=True)

    tell = announce or default_announce

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                bound = self.servers[0].sockets[0].getsockname()
                shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
                tell(f"http://{shown}:{bound[1]}{path}")

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=log_level,
        access_log=False,
        server_header=False,
        lifespan="on",
        http=_guarded_protocol(header_timeout, max_connections),
        timeout_keep_alive=idle_timeout,
        h11_max_incomplete_event_size=HEADER_BYTES,
    )
    _Server(config).run()
