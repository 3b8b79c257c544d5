"""The emulator's ASGI application: Timbal's runs endpoints plus switches for bad days.

Layers, outermost first::

    EmulatorApp        counts requests, adds latency, enforces the rate limit
      |                (token bucket -> 429 + Retry-After + RateLimit-* headers),
      |                injects faults (429 / 500 / 502 / 503 / dropped connection)
      v
    Starlette router   auth (401 / 403), parameter validation (400), the list and get
                       endpoints over a RunStore, JSON 404 / 405 for anything else

Only the runs endpoints (``/orgs/{org_id}/projects/{project_id}/runs[/{run_id}]``) are
rate limited and faulted. Faults are drawn from a ``random.Random`` seeded from the data
seed, so a sequential client sees the same faults on every run. A fault replaces the
whole response: it never changes data, so a retried request gets the right page.

A ``drop`` fault starts a 200 response that promises a longer body than it sends, then
aborts the connection (uvicorn closes the transport when the app raises after the
response has started); clients see a protocol error mid-response, such as httpx's
``RemoteProtocolError``. The traceback uvicorn would log for it is filtered out.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from timbal_integrations.emulator.data import DEFAULT_SPAN, FIXED_END, generate_runs
from timbal_integrations.emulator.store import BadRequest, RunStore, parse_list_params

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_ORG_ID",
    "DEFAULT_PROJECT_ID",
    "FAULT_KINDS",
    "EmulatorApp",
    "EmulatorStats",
    "create_app",
]

DEFAULT_API_KEY: Final = "demo-key"
"""The API key the emulator accepts unless told otherwise."""
DEFAULT_ORG_ID: Final = "demo-org"
"""The only organization id the emulator serves unless told otherwise."""
DEFAULT_PROJECT_ID: Final = "demo-project"
"""The only project id the emulator serves unless told otherwise."""
FAULT_KINDS: Final[tuple[str, ...]] = ("429", "500", "502", "503", "drop")
"""Every fault the emulator can inject."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_JSON: Final = (b"content-type", b"application/json")
_BAD_GATEWAY_HTML: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_NOMINAL_LIMIT: Final = 100  # RateLimit-Limit on injected 429s when no rate limit is set


class _Unset(enum.Enum):
    UNSET = enum.auto()


class _DroppedConnection(Exception):
    """Raised after a response has started, to make uvicorn abort the connection."""


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DroppedConnection))


_DROP_FILTER: Final = _HideDroppedConnections()


def _install_drop_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _DROP_FILTER not in logger.filters:
        logger.addFilter(_DROP_FILTER)


class EmulatorStats:
    """Thread-safe request counters of one emulator; read them from any thread."""

    def __init__(self) -> None:
        """Start with every counter at zero."""
        self._lock = threading.Lock()
        self._requests_total = 0
        self._by_endpoint: dict[str, int] = {}
        self._faults: dict[str, int] = {}
        self._rate_limited = 0
        self._served_ok = 0
        self._by_status: dict[int, int] = {}

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._requests_total = 0
            self._by_endpoint = {}
            self._faults = {}
            self._rate_limited = 0
            self._served_ok = 0
            self._by_status = {}

    @property
    def requests_total(self) -> int:
        """Every HTTP request received."""
        return self._requests_total

    @property
    def requests_by_endpoint(self) -> dict[str, int]:
        """Requests per endpoint: ``list``, ``get`` or ``other`` (a copy)."""
        with self._lock:
            return dict(self._by_endpoint)

    @property
    def faults_by_kind(self) -> dict[str, int]:
        """Injected faults per kind (``429``, ``500``, ``502``, ``503``, ``drop``; a copy)."""
        with self._lock:
            return dict(self._faults)

    @property
    def faults_total(self) -> int:
        """All injected faults."""
        with self._lock:
            return sum(self._faults.values())

    @property
    def rate_limited(self) -> int:
        """Requests refused with 429 by the rate limit (injected 429s not included)."""
        return self._rate_limited

    @property
    def served_ok(self) -> int:
        """Responses with a 2xx status."""
        return self._served_ok

    @property
    def responses_by_status(self) -> dict[int, int]:
        """Responses sent per HTTP status, faults included, drops excluded (a copy)."""
        with self._lock:
            return dict(self._by_status)

    def snapshot(self) -> dict[str, Any]:
        """All counters as one plain dict."""
        with self._lock:
            return {
                "requests_total": self._requests_total,
                "requests_by_endpoint": dict(self._by_endpoint),
                "faults_by_kind": dict(self._faults),
                "faults_total": sum(self._faults.values()),
                "rate_limited": self._rate_limited,
                "served_ok": self._served_ok,
                "responses_by_status": dict(self._by_status),
            }

    def __repr__(self) -> str:
        return f"EmulatorStats({self.snapshot()!r})"

    def _count_request(self, endpoint: str) -> None:
        with self._lock:
            self._requests_total += 1
            self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1

    def _count_rate_limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def _count_response(self, status: int) -> None:
        with self._lock:
            self._by_status[status] = self._by_status.get(status, 0) + 1
            if 200 <= status < 300:
                self._served_ok += 1


class _TokenBucket:
    """``rate`` requests per second, bursts up to ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> tuple[bool, float, Headers]:
        """Try to spend a token; returns (allowed, seconds until one is free, headers)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        wait = 0.0 if allowed else (1.0 - self.tokens) / self.rate
        return allowed, wait, self.headers()

    def headers(self) -> Headers:
        reset = math.ceil((self.capacity - self.tokens) / self.rate)
        return [
            (b"ratelimit-limit", str(math.floor(self.capacity)).encode()),
            (b"ratelimit-remaining", str(math.floor(self.tokens)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]


def _classify(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) >= 5 and parts[0] == "orgs" and parts[2] == "projects" and parts[4] == "runs":
        if len(parts) == 5:
            return "list"
        if len(parts) == 6:
            return "get"
    return "other"


def _json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps({"message": message}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _validated_settings(
    *,
    latency_ms: float,
    fault_rate: float,
    fault_kinds: Iterable[str],
    retry_after: int,
    rate_limit: float | None,
) -> tuple[float, float, tuple[str, ...], int, float | None]:
    kinds = tuple(dict.fromkeys(str(k) for k in fault_kinds))
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"fault_kinds: unknown {unknown}; choose from {', '.join(FAULT_KINDS)}")
    if not (isinstance(latency_ms, int | float) and latency_ms >= 0):
        raise ValueError("latency_ms must be >= 0")
    if not (isinstance(fault_rate, int | float) and 0.0 <= fault_rate <= 1.0):
        raise ValueError("fault_rate must be between 0 and 1")
    if fault_rate > 0 and not kinds:
        raise ValueError("fault_kinds must not be empty when fault_rate > 0")
    if not (isinstance(retry_after, int) and retry_after >= 0):
        raise ValueError("retry_after must be an integer >= 0")
    if rate_limit is not None and not (isinstance(rate_limit, int | float) and rate_limit > 0):
        raise ValueError("rate_limit must be > 0 requests per second, or None")
    return float(latency_ms), float(fault_rate), kinds, retry_after, rate_limit


class EmulatorApp:
    """The emulator's ASGI application (see the module docstring); made by :func:`create_app`.

    Attributes:
        store: the run data and query engine.
        stats: live request counters.
        api_key, org_id, project_id: what the API accepts.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        api_key: str,
        org_id: str,
        project_id: str,
        seed: int,
        latency_ms: float,
        fault_rate: float,
        fault_kinds: Iterable[str],
        retry_after: int,
        rate_limit: float | None,
    ) -> None:
        """Wrap ``store`` with auth and the control switches; see :func:`create_app`."""
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.store = store
        self.stats = EmulatorStats()
        self.api_key = api_key
        self.org_id = org_id
        self.project_id = project_id
        self._lock = threading.Lock()
        self._fault_rng = random.Random(f"timbal-emulator-faults:{seed}")
        self._bucket: _TokenBucket | None = None
        self._latency_ms = 0.0
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = FAULT_KINDS
        self._retry_after = 0
        self._rate_limit: float | None = None
        self.configure(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            retry_after=retry_after,
            rate_limit=rate_limit,
        )
        self._api = Starlette(
            routes=[
                Route("/orgs/{org_id}/projects/{project_id}/runs", self._list_runs),
                Route("/orgs/{org_id}/projects/{project_id}/runs/{run_id}", self._get_run),
            ],
            exception_handlers={HTTPException: self._http_error},
        )
        _install_drop_filter()

    # -- switches -----------------------------------------------------------------------

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        fault_rate: float | None = None,
        fault_kinds: Iterable[str] | None = None,
        retry_after: int | None = None,
        rate_limit: float | _Unset | None = _Unset.UNSET,
    ) -> None:
        """Change switches while serving; arguments left out keep their value.

        ``rate_limit=None`` turns the rate limit off; setting it refills the bucket.

        Raises:
            ValueError: a value is out of range.
        """
        with self._lock:
            new_rate = self._rate_limit if isinstance(rate_limit, _Unset) else rate_limit
            latency, rate, kinds, retry, limit = _validated_settings(
                latency_ms=self._latency_ms if latency_ms is None else latency_ms,
                fault_rate=self._fault_rate if fault_rate is None else fault_rate,
                fault_kinds=self._fault_kinds if fault_kinds is None else fault_kinds,
                retry_after=self._retry_after if retry_after is None else retry_after,
                rate_limit=new_rate,
            )
            self._latency_ms, self._fault_rate, self._fault_kinds = latency, rate, kinds
            self._retry_after = retry
            if not isinstance(rate_limit, _Unset):
                self._rate_limit = limit
                self._bucket = _TokenBucket(limit) if limit is not None else None

    @property
    def settings(self) -> dict[str, Any]:
        """The current switches."""
        with self._lock:
            return {
                "latency_ms": self._latency_ms,
                "fault_rate": self._fault_rate,
                "fault_kinds": self._fault_kinds,
                "retry_after": self._retry_after,
                "rate_limit": self._rate_limit,
            }

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self._api(scope, receive, send)
            return
        endpoint = _classify(scope["path"])
        self.stats._count_request(endpoint)
        with self._lock:
            latency_ms, fault_rate = self._latency_ms, self._fault_rate
            fault: str | None = None
            if endpoint != "other" and fault_rate > 0 and self._fault_rng.random() < fault_rate:
                kinds = self._fault_kinds
                fault = kinds[int(self._fault_rng.random() * len(kinds))]
            retry_after, bucket = self._retry_after, self._bucket
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)

        limit_headers: Headers = []
        if bucket is not None and endpoint != "other":
            with self._lock:
                allowed, wait, limit_headers = bucket.take()
            if not allowed:
                self.stats._count_rate_limited()
                self.stats._count_response(429)
                seconds = math.ceil(wait)
                body = orjson.dumps(
                    {"message": f"Rate limit exceeded; retry after {seconds} second(s)"}
                )
                headers = [_JSON, (b"retry-after", str(seconds).encode()), *limit_headers]
                await _send_response(send, 429, body, headers)
                return

        if fault is not None:
            self.stats._count_fault(fault)
            await self._send_fault(fault, send, retry_after, bucket)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats._count_response(message["status"])
                if limit_headers:
                    message = {**message, "headers": [*message.get("headers", ()), *limit_headers]}
            await send(message)

        await self._api(scope, receive, send_with_headers)

    async def _send_fault(
        self, kind: str, send: Send, retry_after: int, bucket: _TokenBucket | None
    ) -> None:
        if kind == "drop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [_JSON, (b"content-length", b"65536")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"runs":[', "more_body": True})
            raise _DroppedConnection("injected fault: connection dropped mid-response")
        status = int(kind)
        self.stats._count_response(status)
        if status == 429:
            limit = math.floor(bucket.capacity) if bucket is not None else _NOMINAL_LIMIT
            headers: Headers = [
                _JSON,
                (b"retry-after", str(retry_after).encode()),
                (b"ratelimit-limit", str(limit).encode()),
                (b"ratelimit-remaining", b"0"),
                (b"ratelimit-reset", str(retry_after).encode()),
            ]
            message = f"Too many requests; retry after {retry_after} second(s)"
            await _send_response(send, 429, orjson.dumps({"message": message}), headers)
        elif status == 502:
            headers = [(b"content-type", b"text/html")]
            await _send_response(send, 502, _BAD_GATEWAY_HTML, headers)
        else:
            message = "Internal server error" if status == 500 else "Service unavailable"
            await _send_response(send, status, orjson.dumps({"message": message}), [_JSON])

    # -- endpoints ----------------------------------------------------------------------

    def _check_access(self, request: Request) -> Response | None:
        authorization = request.headers.get("authorization")
        if not authorization:
            return _json_error(
                401,
                "Missing API key: send an 'Authorization: Bearer <API key>' header",
                {"www-authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            return _json_error(401, "Invalid API key", {"www-authenticate": "Bearer"})
        org_id = request.path_params["org_id"]
        project_id = request.path_params["project_id"]
        if org_id != self.org_id or project_id != self.project_id:
            return _json_error(
                403,
                f"Insufficient permissions: this API key has no access to org {org_id!r} "
                f"project {project_id!r}",
            )
        return None

    async def _list_runs(self, request: Request) -> Response:
        denied = self._check_access(request)
        if denied is not None:
            return denied
        try:
            body = self.store.list_page(parse_list_params(request.query_params))
        except BadRequest as exc:
            return _json_error(400, exc.message)
        return Response(body, media_type="application/json")

    async def _get_run(self, request: Request) -> Response:
        denied = self._check_access(request)
        if denied is not None:
            return denied
        run_id = request.path_params["run_id"]
        body = self.store.detail(run_id)
        if body is None:
            return _json_error(404, f"Run {run_id!r} not found")
        return Response(body, media_type="application/json")

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _json_error(exc.status_code, exc.detail, exc.headers)


@lru_cache(maxsize=2)
def _generated_store(
    n: int, seed: int, end: datetime, span: timedelta, page_size: int, extra_fields: bool
) -> RunStore:
    """Generated stores are immutable and costly for big ``n``: share them per process."""
    return RunStore(
        generate_runs(n, seed=seed, end=end, span=span),
        page_size=page_size,
        extra_fields=extra_fields,
    )


def create_app(
    runs: int | Sequence[Mapping[str, Any]] = 5000,
    *,
    seed: int = 1,
    end: datetime = FIXED_END,
    span: timedelta = DEFAULT_SPAN,
    page_size: int = 50,
    api_key: str = DEFAULT_API_KEY,
    org_id: str = DEFAULT_ORG_ID,
    project_id: str = DEFAULT_PROJECT_ID,
    latency_ms: float = 0,
    fault_rate: float = 0.0,
    fault_kinds: Iterable[str] = FAULT_KINDS,
    retry_after: int = 0,
    rate_limit: float | None = None,
    extra_fields: bool = False,
) -> EmulatorApp:
    """Build the emulator's ASGI app.

    Args:
        runs: how many runs to generate (with ``seed``, ``end`` and ``span``; see
            :func:`generate_runs`), or the runs themselves as ``RunDetail``-shaped dicts.
        seed: data seed; also seeds the fault injector.
        end: the generated runs are created in ``[end - span, end)``.
        span: how far back the generated runs reach.
        page_size: runs per page (the API picks the page size; clients cannot).
        api_key: the bearer token accepted.
        org_id: the organization served; any other gets 403.
        project_id: the project served; any other gets 403.
        latency_ms: delay added to every request.
        fault_rate: share of runs-endpoint requests answered with a fault, in [0, 1].
        fault_kinds: the faults to choose from (see :data:`FAULT_KINDS`).
        retry_after: the ``Retry-After`` seconds of injected 429s.
        rate_limit: requests per second allowed (token bucket), or None for no limit.
        extra_fields: add fields the spec does not list (``rev``, ``metadata``) to list
            items, to check that clients keep unknown fields.

    Raises:
        ValueError: an argument is out of range.
    """
    if isinstance(runs, int):
        if runs < 0:
            raise ValueError("runs must be >= 0")
        store = _generated_store(runs, seed, end, span, page_size, extra_fields)
    else:
        store = RunStore(runs, page_size=page_size, extra_fields=extra_fields)
    return EmulatorApp(
        store,
        api_key=api_key,
        org_id=org_id,
        project_id=project_id,
        seed=seed,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        fault_kinds=fault_kinds,
        retry_after=retry_after,
        rate_limit=rate_limit,
    )
