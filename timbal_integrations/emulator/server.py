"""Serving the emulator: uvicorn in a background thread, as a context manager.

``uvicorn`` is imported only here, and only when a server starts.

The emulator accepts a public demo key and has no defences of a real service: bound to
an address other machines can reach (``0.0.0.0``, a LAN address), it serves its data to
anyone there. :func:`serve_app` then warns with :class:`PublicBindWarning`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from timbal_integrations.emulator.app import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_PROJECT_ID,
    FAULT_KINDS,
    EmulatorApp,
    EmulatorStats,
    create_app,
)
from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.data import DEFAULT_FUTURE, DEFAULT_SPAN, FIXED_END
from timbal_integrations.emulator.state import DetailsView
from timbal_integrations.emulator.stats import RequestLog
from timbal_integrations.emulator.switches import Unset

__all__ = [
    "Emulator",
    "PublicBindWarning",
    "exposure_warning",
    "is_loopback",
    "run_emulator",
    "serve_app",
]

_START_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 15.0


class PublicBindWarning(UserWarning):
    """The emulator listens on an address other machines may reach."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is reachable from this machine only."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def exposure_warning(host: str, port: int, api_key: str) -> str:
    """The warning for an emulator bound to ``host``, a non-loopback address."""
    name = host.strip("[]")
    try:
        everywhere = ipaddress.ip_address(name).is_unspecified
    except ValueError:
        everywhere = False
    where = f"{host} (every network interface)" if everywhere else host
    key = (
        f"the public demo API key {api_key!r}"
        if api_key == DEFAULT_API_KEY
        else "its API key (this is a test server, not hardened)"
    )
    return (
        f"the emulator listens on {where}, port {port}: anyone who can reach it from another "
        f"machine can read and post its runs' data with {key}. Use --host 127.0.0.1 "
        "(the default) unless you mean to share it."
    )


class Emulator:
    """A running emulator, as yielded by :func:`run_emulator`.

    Attributes:
        app: the ASGI application being served.
        host: the interface it listens on.
        port: the TCP port it listens on.
        base_url: ``http://HOST:PORT``; what ``TIMBAL_API_HOST`` should be set to (a
            wildcard address becomes this machine's loopback address).
        listen_url: ``http://HOST:PORT`` with the address really bound (``0.0.0.0``...).
        api_key: the bearer token it accepts (never shown by ``repr``).
        org_id: the organization it serves.
        project_id: the project it serves.
    """

    def __init__(
        self,
        app: EmulatorApp,
        host: str,
        port: int,
        thread: threading.Thread | None = None,
    ) -> None:
        """Describe ``app`` served at ``host:port`` by ``thread`` (managed elsewhere)."""
        self.app = app
        self.host = host
        self.port = port
        self._thread = thread
        url_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # wildcard -> loopback
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        self.base_url = f"http://{url_host}:{port}"
        bound = f"[{host}]" if ":" in host else host
        self.listen_url = f"http://{bound}:{port}"
        self.api_key = app.api_key
        self.org_id = app.org_id
        self.project_id = app.project_id

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r}, runs={len(self.app.store)})"

    def is_running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> EmulatorStats:
        """Live request counters."""
        return self.app.stats

    @property
    def clock(self) -> EmulatorClock | None:
        """The clock a live emulator follows (None when frozen)."""
        return self.app.clock

    @property
    def request_log(self) -> RequestLog:
        """Every request received, in order: method, path, query, status, endpoint."""
        return self.app.request_log

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Ground truth now: every visible run as the list endpoint serves it, newest first.

        In its current state at the clock's time. Shared between calls: treat as read-only.
        """
        return self.app.runs

    @property
    def details(self) -> DetailsView:
        """Ground truth now: every visible run as the get endpoint serves it (``RunDetail``,
        trace included, built when read), newest first."""
        return self.app.details

    def reactions(self, run_id: str) -> list[dict[str, Any]]:
        """Ground truth now: a visible run's reactions, newest first.

        Raises:
            KeyError: no such run is visible now.
        """
        return self.app.reactions(run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run (``status``, ``duration_ms``, ``cost_usd``, ``cost_credits``,
        ``last_reaction_sentiment``, ``status_detail``, ``trace``, ...); they win over the
        clock from now on.

        Raises:
            KeyError: no such run.
            ValueError: a field is ``id``, ``idempotency_key`` or ``created_at``.
        """
        self.app.update_run(run_id, **fields)

    def add_run(self, record: Mapping[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped mapping; a ``trace`` key is served as given).

        Served as given once its ``created_at`` has come (at once when frozen).

        Raises:
            ValueError: a preview field is missing, or the id or idempotency key is taken.
        """
        self.app.add_run(record)

    def remove_run(self, run_id: str) -> None:
        """Remove a run: the list omits it and a get answers 404.

        Raises:
            KeyError: no such run.
        """
        self.app.remove_run(run_id)

    def add_reaction(
        self,
        run_id: str,
        sentiment: str,
        feedback: str | None = None,
        user: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add a reaction; the run's ``last_reaction_sentiment`` follows once it counts.

        ``user``: a ``UserRef`` or a known user's id (default: the first user); ``at``:
        its time (default: now; a frozen emulator's now is its ``end``).

        Raises:
            KeyError: no such run, or an unknown user id.
            ValueError: ``sentiment`` is empty, or ``at`` is naive.
        """
        return self.app.add_reaction(run_id, sentiment, feedback, user=user, at=at)

    def hold_running(self, run_id: str, hold: bool = True) -> None:
        """Keep a run ``running`` whatever the clock says (``hold=False`` lets it go).

        Raises:
            KeyError: no such run.
        """
        self.app.hold_running(run_id, hold)

    @property
    def runs_url(self) -> str:
        """The list endpoint's URL for the served org and project."""
        return f"{self.base_url}/orgs/{self.org_id}/projects/{self.project_id}/runs"

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header to send."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def env(self) -> dict[str, str]:
        """``TIMBAL_API_KEY``, ``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID``, ``TIMBAL_PROJECT_ID``."""
        return {
            "TIMBAL_API_KEY": self.api_key,
            "TIMBAL_API_HOST": self.base_url,
            "TIMBAL_ORG_ID": self.org_id,
            "TIMBAL_PROJECT_ID": self.project_id,
        }

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        fault_rate: float | None = None,
        fault_kinds: Iterable[str] | None = None,
        retry_after: int | None = None,
        rate_limit: float | Unset | None = Unset.UNSET,
        rate_limit_burst: float | Unset | None = Unset.UNSET,
    ) -> None:
        """Change switches while serving; see :meth:`EmulatorApp.configure`."""
        self.app.configure(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            retry_after=retry_after,
            rate_limit=rate_limit,
            rate_limit_burst=rate_limit_burst,
        )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, a response sent as two writes
        # (headers, then body) waits for the client's delayed ACK, ~40 ms per request on
        # asyncio's default loop (uvloop sets it by itself).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def serve_app(
    app: EmulatorApp, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
) -> Iterator[Emulator]:
    """Serve ``app`` with uvicorn in a background thread until the block exits.

    Returns once the server accepts connections. ``port=0`` picks a free port. Warns with
    :class:`PublicBindWarning` when ``host`` is not a loopback address.

    Raises:
        OSError: the address cannot be bound.
        RuntimeError: the server failed to start or to stop in time.
    """
    import uvicorn

    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    if not is_loopback(host):
        warnings.warn(
            exposure_warning(host, bound_port, app.api_key), PublicBindWarning, stacklevel=3
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        lifespan="off",
        ws="none",
        log_config=None,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    ready = threading.Event()
    failure: list[BaseException] = []

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            ready.set()

    server = _Server(config)

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller, not to threading.excepthook
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=target, name=f"timbal-emulator:{bound_port}", daemon=True)
    try:
        thread.start()
        if not ready.wait(_START_TIMEOUT) or not server.started:
            server.should_exit = True
            raise RuntimeError("the emulator failed to start") from (
                failure[0] if failure else None
            )
        yield Emulator(app, host, bound_port, thread)
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT)
        sock.close()
        if thread.is_alive():  # pragma: no cover - uvicorn did not stop in time
            server.force_exit = True
            thread.join(_STOP_TIMEOUT)
            raise RuntimeError("the emulator did not stop in time")


@contextlib.contextmanager
def run_emulator(
    runs: int | Sequence[Mapping[str, Any]] = 5000,
    *,
    seed: int = 1,
    page_size: int = 50,
    api_key: str = DEFAULT_API_KEY,
    org_id: str = DEFAULT_ORG_ID,
    project_id: str = DEFAULT_PROJECT_ID,
    end: datetime = FIXED_END,
    span: timedelta = DEFAULT_SPAN,
    latency_ms: float = 0,
    fault_rate: float = 0.0,
    fault_kinds: Iterable[str] = FAULT_KINDS,
    retry_after: int = 0,
    rate_limit: float | None = None,
    rate_limit_burst: float | None = None,
    extra_fields: bool = False,
    live: bool = False,
    clock: EmulatorClock | None = None,
    shape: str = "even",
    future: timedelta = DEFAULT_FUTURE,
    host: str = "127.0.0.1",
    port: int = 0,
    access_log: bool = False,
) -> Iterator[Emulator]:
    """Run an emulator on ``host:port`` (a free port by default) for the ``with`` block.

    The arguments before ``host`` are those of :func:`create_app` (``live=True`` with a
    ``clock`` for a live service). Yields an :class:`Emulator` once the server accepts
    connections; stops the server on exit. Warns with :class:`PublicBindWarning` when
    ``host`` is not a loopback address.

    Raises:
        ValueError: an argument is out of range.
        OSError: the address cannot be bound.
    """
    app = create_app(
        runs,
        seed=seed,
        end=end,
        span=span,
        page_size=page_size,
        api_key=api_key,
        org_id=org_id,
        project_id=project_id,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        fault_kinds=fault_kinds,
        retry_after=retry_after,
        rate_limit=rate_limit,
        rate_limit_burst=rate_limit_burst,
        extra_fields=extra_fields,
        live=live,
        clock=clock,
        shape=shape,
        future=future,
    )
    with serve_app(app, host=host, port=port, access_log=access_log) as emulator:
        yield emulator
