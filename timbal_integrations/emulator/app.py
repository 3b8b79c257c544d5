"""The emulator's ASGI application: Timbal's runs endpoints plus switches for bad days.

Layers, outermost first::

    EmulatorApp        counts and logs requests, adds latency, enforces the rate limit
      |                (token bucket -> 429 + Retry-After; RateLimit-* headers on every
      |                response of the runs endpoints while a limit is set), injects
      |                faults (429 / 500 / 502 / 503 / dropped connection)
      v
    Starlette router   auth (401 / 403), parameter validation (400 / 422), the list, get
                       and reactions endpoints over an EmulatorState, JSON 404 / 405
                       for anything else

Only the runs endpoints (``/orgs/{org_id}/projects/{project_id}/runs[/{run_id}[/reactions]]``)
are rate limited and faulted. Faults are drawn from a ``random.Random`` seeded from the
data seed, so a sequential client sees the same faults on every run. A fault replaces the
whole response: it never changes data, so a retried request gets the right page.

A ``drop`` fault starts a 200 response that promises a longer body than it sends, then
aborts the connection (uvicorn closes the transport when the app raises after the
response has started); clients see a protocol error mid-response, such as httpx's
``RemoteProtocolError``. The traceback uvicorn would log for it is filtered out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.data import DEFAULT_FUTURE, DEFAULT_SPAN, FIXED_END
from timbal_integrations.emulator.params import BadRequest, parse_list_params
from timbal_integrations.emulator.sources import source_for
from timbal_integrations.emulator.state import DetailsView, EmulatorState
from timbal_integrations.emulator.stats import EmulatorStats, Headers, LoggedRequest, RequestLog
from timbal_integrations.emulator.store import RunStore
from timbal_integrations.emulator.switches import FAULT_KINDS, Switches, Unset

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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON: Final = (b"content-type", b"application/json")
_BAD_GATEWAY_HTML: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_NOMINAL_LIMIT: Final = 100  # RateLimit-Limit on injected 429s when no rate limit is set
_MAX_BODY: Final = 64 * 1024  # the largest reaction body accepted
_RUNS_PATH: Final = "/orgs/{org_id}/projects/{project_id}/runs"


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


def _classify(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) >= 5 and parts[0] == "orgs" and parts[2] == "projects" and parts[4] == "runs":
        if len(parts) == 5:
            return "list"
        if len(parts) == 6:
            return "get"
        if len(parts) == 7 and parts[6] == "reactions":
            return "reactions"
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


class EmulatorApp:
    """The emulator's ASGI application (see the module docstring); made by :func:`create_app`.

    Attributes:
        state: the runs served and the hooks that change them.
        stats: live request counters.
        request_log: every request received, in order.
        api_key, org_id, project_id: what the API accepts.
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        api_key: str,
        org_id: str,
        project_id: str,
        seed: int,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] = FAULT_KINDS,
        retry_after: int = 0,
        rate_limit: float | None = None,
        rate_limit_burst: float | None = None,
    ) -> None:
        """Serve ``state`` with auth and the control switches; see :func:`create_app`."""
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.state = state
        self.stats = EmulatorStats()
        self.request_log = RequestLog()
        self.api_key = api_key
        self.org_id = org_id
        self.project_id = project_id
        self._switches = Switches(seed)
        self.configure(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            retry_after=retry_after,
            rate_limit=rate_limit,
            rate_limit_burst=rate_limit_burst,
        )
        self._api = Starlette(
            routes=[
                Route(_RUNS_PATH, self._list_runs),
                Route(_RUNS_PATH + "/{run_id}", self._get_run),
                Route(_RUNS_PATH + "/{run_id}/reactions", self._reactions, methods=["GET", "POST"]),
            ],
            exception_handlers={HTTPException: self._http_error},
        )
        _install_drop_filter()

    # -- data and hooks (see EmulatorState) ---------------------------------------------

    @property
    def clock(self) -> EmulatorClock | None:
        """The clock a live emulator follows (None when frozen)."""
        return self.state.clock

    @property
    def store(self) -> RunStore:
        """The runs visible now, in their current state, and their query engine."""
        return self.state.store()

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Ground truth now: every visible run as a list item, newest first (read-only)."""
        return self.state.previews()

    @property
    def details(self) -> DetailsView:
        """Ground truth now: every visible run's ``RunDetail``, newest first."""
        return self.state.details()

    def reactions(self, run_id: str) -> list[dict[str, Any]]:
        """Ground truth now: a visible run's reactions, newest first (KeyError if none)."""
        return self.state.reactions(run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run; they win over the clock from now on (see EmulatorState)."""
        self.state.update_run(run_id, **fields)

    def add_run(self, record: Mapping[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped mapping), served once its ``created_at`` comes."""
        self.state.add_run(record)

    def remove_run(self, run_id: str) -> None:
        """Remove a run: the list omits it and a get answers 404."""
        self.state.remove_run(run_id)

    def add_reaction(
        self,
        run_id: str,
        sentiment: str,
        feedback: str | None = None,
        user: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add a reaction to a run (see :meth:`EmulatorState.add_reaction`)."""
        return self.state.add_reaction(run_id, sentiment, feedback, user=user, at=at)

    def hold_running(self, run_id: str, hold: bool = True) -> None:
        """Keep a run ``running`` whatever the clock says (``hold=False`` lets it go)."""
        self.state.hold_running(run_id, hold)

    # -- switches -----------------------------------------------------------------------

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
        """Change switches while serving; arguments left out keep their value.

        ``rate_limit=None`` turns the rate limit off; setting it (or its burst) refills
        the bucket.

        Raises:
            ValueError: a value is out of range.
        """
        self._switches.configure(
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            retry_after=retry_after,
            rate_limit=rate_limit,
            rate_limit_burst=rate_limit_burst,
        )

    @property
    def settings(self) -> dict[str, Any]:
        """The current switches."""
        return self._switches.settings

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self._api(scope, receive, send)
            return
        endpoint = _classify(scope["path"])
        self.stats._count_request(endpoint)
        runs_endpoint = endpoint != "other"
        latency_ms, fault, retry_after, bucket = self._switches.draw(runs_endpoint)
        status = 0
        try:
            if latency_ms > 0:
                await asyncio.sleep(latency_ms / 1000)

            limit_headers: Headers = []
            if bucket is not None and runs_endpoint:
                allowed, wait, limit_headers = self._switches.take(bucket)
                if not allowed:
                    status = 429
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
                status = 200 if fault == "drop" else int(fault)
                await self._send_fault(fault, send, retry_after, bucket, limit_headers)
                return

            async def send_with_headers(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    self.stats._count_response(status)
                    if limit_headers:
                        headers = [*message.get("headers", ()), *limit_headers]
                        message = {**message, "headers": headers}
                await send(message)

            await self._api(scope, receive, send_with_headers)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            entry = LoggedRequest(scope["method"], scope["path"], query, status, endpoint, fault)
            self.request_log._append(entry)

    async def _send_fault(
        self,
        kind: str,
        send: Send,
        retry_after: int,
        bucket: Any,
        limit_headers: Headers,
    ) -> None:
        if kind == "drop":
            start = [_JSON, (b"content-length", b"65536"), *limit_headers]
            await send({"type": "http.response.start", "status": 200, "headers": start})
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
            headers = [(b"content-type", b"text/html"), *limit_headers]
            await _send_response(send, 502, _BAD_GATEWAY_HTML, headers)
        else:
            message = "Internal server error" if status == 500 else "Service unavailable"
            body = orjson.dumps({"message": message})
            await _send_response(send, status, body, [_JSON, *limit_headers])

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
            body = self.state.list_page(parse_list_params(request.query_params))
        except BadRequest as exc:
            return _json_error(400, exc.message)
        return Response(body, media_type="application/json")

    async def _get_run(self, request: Request) -> Response:
        denied = self._check_access(request)
        if denied is not None:
            return denied
        run_id = request.path_params["run_id"]
        body = self.state.detail(run_id)
        if body is None:
            return _json_error(404, f"Run {run_id!r} not found")
        return Response(body, media_type="application/json")

    async def _reactions(self, request: Request) -> Response:
        denied = self._check_access(request)
        if denied is not None:
            return denied
        run_id = request.path_params["run_id"]
        if request.method == "POST":
            return await self._post_reaction(request, run_id)
        try:
            body = self.state.reactions_page(run_id, request.query_params.get("page_token"))
        except BadRequest as exc:
            return _json_error(400, exc.message)
        if body is None:
            return _json_error(404, f"Run {run_id!r} not found")
        return Response(body, media_type="application/json")

    async def _post_reaction(self, request: Request, run_id: str) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > _MAX_BODY:
            return _json_error(413, f"Request body too large: at most {_MAX_BODY} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > _MAX_BODY:
                return _json_error(413, f"Request body too large: at most {_MAX_BODY} bytes")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _json_error(400, "invalid body: expected a JSON object")
        if not isinstance(body, dict):
            return _json_error(400, "invalid body: expected a JSON object")
        sentiment, feedback = body.get("sentiment"), body.get("feedback")
        if not isinstance(sentiment, str) or not sentiment.strip():
            return _json_error(422, "invalid 'sentiment': expected a non-empty string")
        if feedback is not None and not isinstance(feedback, str):
            return _json_error(422, "invalid 'feedback': expected a string or null")
        if self.state.store().index_of(run_id) is None:
            return _json_error(404, f"Run {run_id!r} not found")
        try:
            self.state.add_reaction(run_id, sentiment, feedback)
        except KeyError:  # removed meanwhile
            return _json_error(404, f"Run {run_id!r} not found")
        return Response(status_code=204)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _json_error(exc.status_code, exc.detail, exc.headers)


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
    rate_limit_burst: float | None = None,
    extra_fields: bool = False,
    live: bool = False,
    clock: EmulatorClock | None = None,
    shape: str = "even",
    future: timedelta = DEFAULT_FUTURE,
) -> EmulatorApp:
    """Build the emulator's ASGI app.

    Args:
        runs: how many runs to generate (with ``seed``, ``end``, ``span`` and ``shape``;
            see :func:`generate_runs`; at most :data:`MAX_RUNS`), or the runs themselves as
            ``RunDetail``-shaped dicts.
        seed: data seed; also seeds the fault injector, the traces and the reactions.
        end: the generated runs are created in ``[end - span, end)``; a live emulator's
            clock starts there by default.
        span: how far back the generated runs reach.
        page_size: runs (and reactions) per page; the API picks it, clients cannot.
        api_key: the bearer token accepted.
        org_id: the organization served; any other gets 403.
        project_id: the project served; any other gets 403.
        latency_ms: delay added to every request.
        fault_rate: share of runs-endpoint requests answered with a fault, in [0, 1].
        fault_kinds: the faults to choose from (see :data:`FAULT_KINDS`).
        retry_after: the ``Retry-After`` seconds of injected 429s.
        rate_limit: requests per second allowed (token bucket), or None for no limit.
        rate_limit_burst: the bucket's size (default ``max(1, rate_limit)``).
        extra_fields: add fields the spec does not list (``rev``, ``metadata``) to list
            items, to check that clients keep unknown fields.
        live: serve a live service: runs appear, finish and gain reactions as ``clock``
            moves (see :mod:`.state`); runs keep arriving for ``future`` past ``end``.
        clock: the live emulator's clock (default: real time from ``end``).
        shape: when the generated runs are created: ``even``, ``growing`` or ``bursty``.
        future: how long past ``end`` a live emulator's runs keep arriving.

    Raises:
        ValueError: an argument is out of range (the message names it).
    """
    if clock is not None and not live:
        raise ValueError("clock: a clock drives a live emulator; pass live=True too")
    source = source_for(
        runs,
        live=live,
        seed=seed,
        end=end,
        span=span,
        future=future,
        shape=shape,
        page_size=page_size,
        extra_fields=extra_fields,
    )
    if live and clock is None:
        clock = EmulatorClock.wall(end)
    return EmulatorApp(
        EmulatorState(source, clock),
        api_key=api_key,
        org_id=org_id,
        project_id=project_id,
        seed=seed,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        fault_kinds=fault_kinds,
        retry_after=retry_after,
        rate_limit=rate_limit,
        rate_limit_burst=rate_limit_burst,
    )
