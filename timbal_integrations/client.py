"""``TimbalClient`` and ``AsyncTimbalClient``: the runs API, typed, paginated and retried.

Both clients have the same surface::

    with TimbalClient() as client:                       # config from TIMBAL_* variables
        for run in client.list_runs(status="error", since="24h"):
            print(run.id, run.user.email, run.cost_usd)

    async with AsyncTimbalClient() as client:
        async for run in client.list_runs(since="7d", limit=100):
            ...

``list_runs`` pages lazily and makes no request beyond what ``limit`` needs;
``get_runs_page`` makes exactly one request; ``get_run`` accepts a run id or an
idempotency key. With ``parallel=N``, ``list_runs`` splits ``[since, until)`` into ``N``
windows fetched concurrently and still yields every run once, in the requested order
when sorting by ``created_at``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import ssl
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Self, TypeVar, overload
from urllib.parse import quote, urlencode

import certifi
import httpx
import orjson
from pydantic_core import ValidationError

from . import defaults
from ._pages import RawPage, parse_raw_page
from ._version import __version__
from .config import ClientConfig, Secret, resolve_config
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    PaginationLoopError,
    QueryError,
    ResponseValidationError,
    status_error,
)
from .limits import check_limit, check_parallel
from .query import RunQuery
from .retry import RETRYABLE_STATUS, RetryPolicy, is_testing, parse_retry_after

if TYPE_CHECKING:  # loaded when first needed: an export never builds these models
    import asyncio

    from .models import Run, RunDetail, RunsPage

__all__ = ["AsyncTimbalClient", "TimbalClient", "WindowPage"]

logger = logging.getLogger("timbal_integrations")

USER_AGENT: Final = f"timbal-integrations/{__version__} (python-httpx/{httpx.__version__})"
DEFAULT_TIMEOUT: Final = defaults.REQUEST_TIMEOUT


# Requests go straight to the transport the httpx client would pick for our host (an
# injected one, a proxy from HTTP(S)_PROXY/ALL_PROXY unless NO_PROXY says otherwise, or
# the default pool), with the client's headers and timeout. Client.get adds per request:
# merging URL, headers and cookies, auth and redirect generators, storing response
# cookies through urllib's cookie machinery, and an INFO log line with the full URL. We
# use none of them (auth is a header, redirects are reported, not followed) and together
# they cost ~0.2 ms a request: a sixth of a page's round trip against a local server.
# Every request goes to one host, so the transport is picked once.


@overload
def _transport_for(http: httpx.Client, base_url: str) -> httpx.BaseTransport: ...
@overload
def _transport_for(http: httpx.AsyncClient, base_url: str) -> httpx.AsyncBaseTransport: ...
def _transport_for(
    http: httpx.Client | httpx.AsyncClient, base_url: str
) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
    return http._transport_for_url(httpx.URL(base_url))  # private since httpx 0.18, stable


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one costs ~50 ms, per client."""
    return ssl.create_default_context(cafile=certifi.where())


def _build_query(query: RunQuery | None, filters: Mapping[str, Any]) -> RunQuery:
    if query is not None and not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    if not filters:
        return query if query is not None else RunQuery()
    if query is None:
        return RunQuery.from_filters(filters)
    return query.replace(**filters)


def _check_window_sort(q: RunQuery) -> None:
    """Windows cut ``created_at``: only a listing sorted by it can be split into them."""
    if q.sort_by not in (None, "created_at"):
        raise QueryError("parallel", "parallel listing needs sort_by=created_at (the default)")


def _check_page_token(token: object) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str):
        raise QueryError("page_token", f"a {type(token).__name__} is not a page token")
    if not token or len(token) > defaults.MAX_PAGE_TOKEN_CHARS:
        raise QueryError(
            "page_token",
            "expected the next_page_token of a previous page, unchanged (None for the first)",
        )
    return token  # opaque: sent percent-encoded, so any character is inert


def _check_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float("inf")
    ):
        raise ConfigError(f"{timeout!r} is not a number of seconds above 0", argument="timeout")
    return httpx.Timeout(timeout)


def _check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise QueryError("run_id", "expected a non-empty run id or idempotency key")
    if len(run_id) > defaults.MAX_RUN_ID_CHARS or any(ord(c) < 32 for c in run_id):
        raise QueryError("run_id", "expected a run id or idempotency key (no control characters)")
    if run_id.strip() in (".", ".."):
        # A dot segment survives percent-encoding and URL normalization would resolve it:
        # "." would reach the list endpoint and ".." the project itself.
        raise QueryError("run_id", f"{run_id.strip()!r} is not a run id or idempotency key")
    return run_id.strip()


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation of an error, on one line and bounded."""
    body = response.content
    text = ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "detail", "error", "error_description"):
            value = data.get(key)
            if isinstance(value, str) and value:
                text = value
                break
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                text = value["message"]
                break
    if not text and body:
        raw = body[:2000].decode("utf-8", "replace")
        lowered = raw.lower()
        if "<title>" in lowered:
            start = lowered.index("<title>") + 7
            end = lowered.find("</title>", start)
            text = raw[start : end if end > 0 else start + 200]
        elif "<html" not in lowered and "<!doctype" not in lowered:
            text = raw
        else:
            text = "an HTML error page"
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


class _Core:
    """What both clients share: configuration, request shaping and response handling."""

    def __init__(
        self,
        config: ClientConfig,
        timeout: float | httpx.Timeout,
        max_retries: int | None,
        retry_policy: RetryPolicy | None,
    ) -> None:
        if not isinstance(config, ClientConfig):
            raise ConfigError(f"a {type(config).__name__} is not a ClientConfig", argument="config")
        self.config = config
        if retry_policy is None:
            retry_policy = RetryPolicy() if max_retries is None else RetryPolicy(max_retries)
        elif max_retries is not None:
            retry_policy = RetryPolicy(
                max_retries,
                retry_policy.backoff_base,
                retry_policy.backoff_max,
                retry_policy.retry_after_max,
            )
        if not isinstance(retry_policy, RetryPolicy):
            raise ConfigError(
                f"a {type(retry_policy).__name__} is not a RetryPolicy", argument="retry_policy"
            )
        self.retry = retry_policy
        self.timeout = _check_timeout(timeout)
        self.timeouts = self.timeout.as_dict()  # the form each request carries
        self.requests_made = 0

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.api_key.get()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def request(self, http: httpx.Client | httpx.AsyncClient, url: httpx.URL) -> httpx.Request:
        """A GET request with the client's headers (ours plus httpx's defaults) and timeout."""
        return httpx.Request(
            "GET", url, headers=http.headers, extensions={"timeout": self.timeouts}
        )

    def url(self, path: str, params: Mapping[str, str] | None) -> httpx.URL:
        """The absolute request URL, parsed once.

        Handing httpx a relative path plus ``params`` makes it parse the URL three times
        (base merge, params merge, request); with long page tokens that was the largest
        Python cost of a request after validation.
        """
        query = "?" + urlencode(params, quote_via=quote) if params else ""
        return httpx.URL(self.config.base_url + path + query)

    def run_path(self, run_id: str) -> str:
        return f"{self.config.runs_path}/{quote(run_id, safe='')}"

    def decide(
        self, response: httpx.Response | None, error: Exception | None, attempt: int, path: str
    ) -> float | None:
        """Seconds to wait before retrying, or None to stop (raise or return)."""
        if attempt >= self.retry.max_retries:
            return None
        if response is not None:
            if response.status_code not in RETRYABLE_STATUS:
                return None
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = self.retry.delay(attempt, retry_after)
            logger.warning(
                "GET %s answered %d; retrying in %.2fs (retry %d of %d)",
                path,
                response.status_code,
                delay,
                attempt + 1,
                self.retry.max_retries,
            )
            return delay
        delay = self.retry.delay(attempt)
        logger.warning(
            "GET %s failed (%s); retrying in %.2fs (retry %d of %d)",
            path,
            type(error).__name__,
            delay,
            attempt + 1,
            self.retry.max_retries,
        )
        return delay

    def transport_error(self, error: Exception, path: str, attempts: int) -> APIConnectionError:
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        secret = self.config.api_key.get()
        detail = str(error).replace(secret, "***") or type(error).__name__
        if isinstance(error, httpx.TimeoutException):
            return APITimeoutError(
                f"GET {path} timed out {tries} ({type(error).__name__}; the timeout is "
                f"{self.timeout.read}s): is {self.config.base_url} reachable?",
                path=path,
            )
        return APIConnectionError(
            f"GET {path} could not complete {tries}: {detail} "
            f"(is {self.config.base_url} reachable?)",
            path=path,
        )

    def handle(
        self, response: httpx.Response, path: str, run_id: str | None = None
    ) -> httpx.Response:
        """The response itself when successful, else the right exception."""
        if response.status_code >= 300:
            location = response.headers.get("location")  # redirects are not followed
            redirect = response.status_code < 400 and bool(location)
            raise status_error(
                response.status_code,
                method="GET",
                path=path,
                server_message="" if redirect else _server_message(response),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                secret=self.config.api_key.get(),
                location=location if redirect else None,
                run_id=run_id,
            )
        return response

    @staticmethod
    def invalid(
        response: httpx.Response, path: str, error: ValidationError
    ) -> ResponseValidationError:
        first = error.errors()[0]
        if first["type"] == "json_invalid":
            kind = response.headers.get("content-type", "no content type")
            size = len(response.content)
            what = "an empty body" if size == 0 else f"{size} bytes of {kind}"
            return ResponseValidationError(
                f"GET {path} answered {response.status_code} with {what}, not JSON"
            )
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return ResponseValidationError(
            f"GET {path} returned a body that does not match the API schema: "
            f"{where}: {first['msg']} ({error.error_count()} problem(s))"
        )

    def page(self, response: httpx.Response, path: str) -> RunsPage:
        # Validating straight from bytes (pydantic-core's parser) is the fast path: about
        # 40% cheaper per run than json.loads followed by model_validate.
        from .models import RunsPage

        try:
            return RunsPage.model_validate_json(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None

    def raw_page(self, response: httpx.Response, path: str) -> RawPage:
        try:
            return parse_raw_page(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None

    def detail(self, response: httpx.Response, path: str) -> RunDetail:
        from .models import RunDetail

        try:
            return RunDetail.model_validate_json(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None

    def check_token(self, sent: str | None, received: str | None, seen: set[str]) -> None:
        if received is None:
            return
        if received == sent or received in seen:
            raise PaginationLoopError(
                f"GET {self.config.runs_path} returned a page token it had already returned; "
                "stopping instead of looping forever (the server's pagination is broken)"
            )
        seen.add(received)

    def __repr__(self) -> str:
        c = self.config
        return f"base_url={c.base_url!r}, org_id={c.org_id!r}, project_id={c.project_id!r}"


PageT = TypeVar("PageT", "RunsPage", "RawPage")


@dataclass(frozen=True)
class WindowPage(Generic[PageT]):
    """One page of a windowed listing: which window it belongs to and how it was fetched.

    ``page_token`` is the token that fetched the page (None for a window's first page), so
    a consumer that has handled this page can resume at window ``window`` with
    ``page.next_page_token`` (or at ``window + 1`` when that is None). ``page`` is a
    :class:`RunsPage`, or a :class:`RawPage` when the listing was asked for raw pages.
    """

    window: int
    page: PageT
    page_token: str | None


def _earliest_query(query: RunQuery) -> RunQuery:
    return query.replace(sort_by="created_at", sort_order="asc")


def _latest_query(query: RunQuery) -> RunQuery:
    return query.replace(sort_by="created_at", sort_order="desc")


def _windows_for(
    query: RunQuery, first: Run | None, last: Run | None, parallel: int
) -> list[RunQuery]:
    """The windows of a parallel listing, in the order their runs must be yielded.

    A missing ``since`` starts at the earliest matching run (``first``); a missing
    ``until`` ends just after the latest one (``last``), so no window is spent on a
    stretch of time that holds nothing.
    """
    _check_window_sort(query)
    since = query.since
    until = query.until
    if since is None:
        if first is None:
            return []
        since = first.created_at
    if until is None:
        if last is None:
            return []
        until = last.created_at + timedelta(milliseconds=1)
    if since >= until:
        return []
    windows = query.replace(since=since, until=until).split(parallel)
    if query.effective_sort_order == "desc":
        windows.reverse()
    return windows


class TimbalClient:
    """Synchronous client of Timbal's runs API.

    Arguments left out come from ``TIMBAL_API_KEY``, ``TIMBAL_API_HOST``,
    ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``. ``transport`` injects an httpx
    transport (``httpx.MockTransport`` in tests). Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        api_key: str | Secret | None = None,
        *,
        host: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        config = resolve_config(api_key, host=host, org_id=org_id, project_id=project_id, env=env)
        self._core = _Core(config, timeout, max_retries, retry_policy)
        self._transport = transport
        self._http = httpx.Client(
            base_url=self._core.config.base_url,
            headers=self._core.headers(),
            timeout=self._core.timeout,
            transport=transport,
            verify=_ssl_context(),
        )
        self._wire = _transport_for(self._http, self._core.config.base_url)

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> TimbalClient:
        """A client of an already resolved configuration."""
        return cls(
            config.api_key,
            host=config.base_url,
            org_id=config.org_id,
            project_id=config.project_id,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            transport=transport,
            env={},
        )

    def _send(self, request: httpx.Request) -> httpx.Response:
        """Send through the chosen transport (see ``_transport_for``) and read the body."""
        if self._http.is_closed:
            raise RuntimeError("this TimbalClient is closed")
        response = self._wire.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        response.request = request
        logger.debug("GET %s answered %d", request.url.path, response.status_code)
        return response

    @property
    def config(self) -> ClientConfig:
        """The resolved configuration (its API key is a :class:`Secret`)."""
        return self._core.config

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._core.requests_made

    def __repr__(self) -> str:
        return f"TimbalClient({self._core!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def _get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> httpx.Response:
        core = self._core
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            core.requests_made += 1
            try:
                response = self._send(core.request(self._http, core.url(path, params)))
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                error = exc
            delay = core.decide(response, error, attempt, path)
            if delay is None:
                if error is not None:
                    raise core.transport_error(error, path, attempt + 1) from None
                assert response is not None
                return core.handle(response, path, run_id)
            if not is_testing():
                time.sleep(delay)
            attempt += 1

    def get_runs_page(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> RunsPage:
        """Fetch one page of runs (exactly one request, plus retries)."""
        q = _build_query(query, filters)
        params = q.to_params()
        token = _check_page_token(page_token)
        if token is not None:
            params["page_token"] = token
        path = self._core.config.runs_path
        return self._core.page(self._get(path, params), path)

    def iter_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> Iterator[RunsPage]:
        """Iterate over pages lazily, starting at ``page_token`` (the first page if None)."""
        token = _check_page_token(page_token)
        return self._pages(_build_query(query, filters), token, self._core.page)

    def iter_raw_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> Iterator[RawPage]:
        """Like :meth:`iter_pages`, but each run stays the dict the server sent (checked
        against the schema): the fast path of exports."""
        token = _check_page_token(page_token)
        return self._pages(_build_query(query, filters), token, self._core.raw_page)

    def _pages(
        self,
        q: RunQuery,
        page_token: str | None,
        parse: Callable[[httpx.Response, str], PageT],
    ) -> Iterator[PageT]:
        core = self._core
        path = core.config.runs_path
        base = q.to_params()
        seen: set[str] = set()
        token = page_token
        while True:
            params = {**base, "page_token": token} if token is not None else base
            page = parse(self._get(path, params), path)
            core.check_token(token, page.next_page_token, seen)
            yield page
            if page.next_page_token is None:
                return
            token = page.next_page_token

    def list_runs(
        self,
        query: RunQuery | None = None,
        *,
        limit: int | None = None,
        parallel: int | None = None,
        **filters: Any,
    ) -> Iterator[Run]:
        """Every matching run across pages, lazily; at most ``limit`` runs.

        ``parallel=N`` fetches N time windows concurrently (sort by created_at only).
        Filters are validated here, before the first run is asked for.
        """
        q = _build_query(query, filters)
        check_limit(limit)
        n = check_parallel(parallel)
        if n > 1:
            _check_window_sort(q)
            return self._list_parallel(q, limit, n)
        return self._list_sequential(q, limit)

    def _list_sequential(self, q: RunQuery, limit: int | None) -> Iterator[Run]:
        if limit == 0:
            return
        count = 0
        for page in self.iter_pages(q):
            for run in page.runs:
                yield run
                count += 1
                if limit is not None and count >= limit:
                    return

    def _list_parallel(self, q: RunQuery, limit: int | None, parallel: int) -> Iterator[Run]:
        if limit == 0:
            return
        count = 0
        for item in self.iter_window_pages(self.resolve_windows(q, parallel)):
            for run in item.page.runs:
                yield run
                count += 1
                if limit is not None and count >= limit:
                    return

    def resolve_windows(self, query: RunQuery | None = None, parallel: int = 1) -> list[RunQuery]:
        """Cut the query's ``[since, until)`` into ``parallel`` windows, in yield order.

        A missing ``since`` is found with one ascending request for the earliest matching
        run, a missing ``until`` with one descending request for the latest. Newest window
        first when sorting descending. An empty list means nothing can match.
        """
        q = query if query is not None else RunQuery()
        n = check_parallel(parallel)
        _check_window_sort(q)
        first = self.earliest_run(q) if q.since is None else None
        last = None
        if q.until is None:
            runs = self.get_runs_page(_latest_query(q)).runs
            last = runs[0] if runs else None
        return _windows_for(q, first, last, n)

    @overload
    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = ...,
        start_token: str | None = ...,
        raw: Literal[False] = ...,
    ) -> Iterator[WindowPage[RunsPage]]: ...

    @overload
    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = ...,
        start_token: str | None = ...,
        raw: Literal[True],
    ) -> Iterator[WindowPage[RawPage]]: ...

    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = 0,
        start_token: str | None = None,
        raw: bool = False,
    ) -> Iterator[WindowPage[Any]]:
        """Pages of each window, windows one after another, fetched concurrently.

        Starts at window ``start_window`` with ``start_token`` (to resume). The windows are
        paged concurrently on a private event loop in a helper thread; at most a few pages
        per window are buffered. ``raw=True`` gives :class:`RawPage` pages.
        """
        if len(windows) - start_window <= 1 or self._sync_only:
            starts: dict[int, str | None] = dict.fromkeys(range(start_window, len(windows)))
            if start_window < len(windows):
                starts[start_window] = start_token
            yield from self._pages_in_turn(windows, starts, raw)
            return
        yield from self._bridge(
            lambda client: client._window_pages(windows, start_window, start_token, raw),
            len(windows) * 2,
        )

    def iter_window_pages_as_fetched(
        self,
        windows: Sequence[RunQuery],
        *,
        positions: Mapping[int, str | None] | None = None,
        raw: bool = False,
        concurrency: int | None = None,
    ) -> Iterator[WindowPage[Any]]:
        """Pages of all windows fetched concurrently, each yielded as soon as it arrives.

        Pages of one window come in their order; pages of different windows interleave.
        ``positions`` maps the windows to fetch to the page token to start from (None for
        a window's first page); by default every window from its start. This is what an
        export that spools each window to its own file needs: full concurrency, nothing
        held back in memory waiting for an earlier window. ``concurrency`` bounds how many
        windows are fetched at once (default: all); more windows than fetchers balances
        windows that hold more runs than others.
        """
        todo = dict(positions) if positions is not None else dict.fromkeys(range(len(windows)))
        if len(todo) <= 1 or self._sync_only:
            yield from self._pages_in_turn(windows, todo, raw)
            return
        yield from self._bridge(
            lambda client: client._pages_as_fetched(windows, todo, raw, concurrency),
            len(todo) * 2,
        )

    @property
    def _sync_only(self) -> bool:
        """True when the injected transport cannot serve the async machinery."""
        return self._transport is not None and not isinstance(
            self._transport, httpx.AsyncBaseTransport
        )

    def _pages_in_turn(
        self, windows: Sequence[RunQuery], starts: Mapping[int, str | None], raw: bool
    ) -> Iterator[WindowPage[Any]]:
        """Page the windows of ``starts`` one after another, in this thread.

        For one window, or a transport that only speaks sync; ``starts`` maps each window
        to the page token it starts from.
        """
        parse: Callable[[httpx.Response, str], Any] = (
            self._core.raw_page if raw else self._core.page
        )
        for index, token in sorted(starts.items()):
            for page in self._pages(windows[index], token, parse):
                yield WindowPage(index, page, token)
                token = page.next_page_token

    def _bridge(
        self,
        make: Callable[[AsyncTimbalClient], AsyncGenerator[WindowPage[Any], None]],
        buffer: int,
    ) -> Iterator[WindowPage[Any]]:
        """Run an async page generator on a private event loop in a helper thread."""
        import asyncio  # only parallel paging needs it (~40 ms to import)

        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=buffer)
        stop = threading.Event()
        config = self._core.config
        async_transport = (
            self._transport if isinstance(self._transport, httpx.AsyncBaseTransport) else None
        )

        async def produce() -> None:
            async with AsyncTimbalClient(
                config.api_key,
                host=config.base_url,
                org_id=config.org_id,
                project_id=config.project_id,
                timeout=self._core.timeout,
                retry_policy=self._core.retry,
                transport=async_transport,
            ) as client:
                try:
                    pages = make(client)
                    async for item in pages:
                        while not stop.is_set():
                            try:
                                out.put(("page", item), timeout=0.05)
                                break
                            except queue.Full:
                                await asyncio.sleep(0)
                        if stop.is_set():
                            await pages.aclose()
                            return
                finally:
                    self._core.requests_made += client.requests_made

        def worker() -> None:
            try:
                asyncio.run(produce())
            except BaseException as exc:  # handed to the consumer thread
                out.put(("error", exc))
            else:
                out.put(("done", None))

        thread = threading.Thread(target=worker, name="timbal-parallel", daemon=True)
        thread.start()
        try:
            while True:
                kind, payload = out.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise payload
                yield payload
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.05)
            thread.join()

    def get_run(self, run_id: str) -> RunDetail:
        """One run by id or idempotency key."""
        checked = _check_run_id(run_id)
        path = self._core.run_path(checked)
        return self._core.detail(self._get(path, run_id=checked), path)

    def earliest_run(self, query: RunQuery | None = None, **filters: Any) -> Run | None:
        """The oldest run matching the filters (one ascending request), or None."""
        page = self.get_runs_page(_earliest_query(_build_query(query, filters)))
        return page.runs[0] if page.runs else None


class AsyncTimbalClient:
    """Asynchronous client of Timbal's runs API, with the same surface as TimbalClient."""

    def __init__(
        self,
        api_key: str | Secret | None = None,
        *,
        host: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        max_connections: int = defaults.MAX_CONNECTIONS,
    ) -> None:
        config = resolve_config(api_key, host=host, org_id=org_id, project_id=project_id, env=env)
        self._core = _Core(config, timeout, max_retries, retry_policy)
        self._http = httpx.AsyncClient(
            base_url=self._core.config.base_url,
            headers=self._core.headers(),
            timeout=self._core.timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
            verify=_ssl_context(),
        )
        self._wire = _transport_for(self._http, self._core.config.base_url)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send through the chosen transport (see ``_transport_for``) and read the body."""
        if self._http.is_closed:
            raise RuntimeError("this AsyncTimbalClient is closed")
        response = await self._wire.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        response.request = request
        logger.debug("GET %s answered %d", request.url.path, response.status_code)
        return response

    @property
    def config(self) -> ClientConfig:
        """The resolved configuration (its API key is a :class:`Secret`)."""
        return self._core.config

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._core.requests_made

    def __repr__(self) -> str:
        return f"AsyncTimbalClient({self._core!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def _get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> httpx.Response:
        core = self._core
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            core.requests_made += 1
            try:
                response = await self._send(core.request(self._http, core.url(path, params)))
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                error = exc
            delay = core.decide(response, error, attempt, path)
            if delay is None:
                if error is not None:
                    raise core.transport_error(error, path, attempt + 1) from None
                assert response is not None
                return core.handle(response, path, run_id)
            if not is_testing():
                import asyncio

                await asyncio.sleep(delay)
            attempt += 1

    async def get_runs_page(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> RunsPage:
        """Fetch one page of runs (exactly one request, plus retries)."""
        q = _build_query(query, filters)
        params = q.to_params()
        token = _check_page_token(page_token)
        if token is not None:
            params["page_token"] = token
        path = self._core.config.runs_path
        return self._core.page(await self._get(path, params), path)

    def iter_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> AsyncIterator[RunsPage]:
        """Iterate over pages lazily, starting at ``page_token`` (the first page if None)."""
        token = _check_page_token(page_token)
        return self._pages(_build_query(query, filters), token, self._core.page)

    def iter_raw_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> AsyncIterator[RawPage]:
        """Like :meth:`iter_pages`, but each run stays the dict the server sent (checked
        against the schema): the fast path of exports."""
        token = _check_page_token(page_token)
        return self._pages(_build_query(query, filters), token, self._core.raw_page)

    async def _pages(
        self,
        q: RunQuery,
        page_token: str | None,
        parse: Callable[[httpx.Response, str], PageT],
    ) -> AsyncIterator[PageT]:
        core = self._core
        path = core.config.runs_path
        base = q.to_params()
        seen: set[str] = set()
        token = page_token
        while True:
            params = {**base, "page_token": token} if token is not None else base
            page = parse(await self._get(path, params), path)
            core.check_token(token, page.next_page_token, seen)
            yield page
            if page.next_page_token is None:
                return
            token = page.next_page_token

    def list_runs(
        self,
        query: RunQuery | None = None,
        *,
        limit: int | None = None,
        parallel: int | None = None,
        **filters: Any,
    ) -> AsyncIterator[Run]:
        """Every matching run across pages, lazily; at most ``limit`` runs.

        ``parallel=N`` fetches N time windows concurrently (sort by created_at only).
        Filters are validated here, before the first run is asked for.
        """
        q = _build_query(query, filters)
        check_limit(limit)
        n = check_parallel(parallel)
        if n > 1:
            _check_window_sort(q)
        return self._list(q, limit, n)

    async def _list(self, q: RunQuery, limit: int | None, parallel: int) -> AsyncIterator[Run]:
        if limit == 0:
            return
        count = 0
        windows = [q] if parallel == 1 else await self.resolve_windows(q, parallel)
        async for item in self.iter_window_pages(windows):
            for run in item.page.runs:
                yield run
                count += 1
                if limit is not None and count >= limit:
                    return

    async def resolve_windows(
        self, query: RunQuery | None = None, parallel: int = 1
    ) -> list[RunQuery]:
        """Cut the query's ``[since, until)`` into ``parallel`` windows, in yield order.

        A missing ``since`` is found with one ascending request for the earliest matching
        run, a missing ``until`` with one descending request for the latest. Newest window
        first when sorting descending. An empty list means nothing can match.
        """
        q = query if query is not None else RunQuery()
        n = check_parallel(parallel)
        _check_window_sort(q)
        first = await self.earliest_run(q) if q.since is None else None
        last = None
        if q.until is None:
            runs = (await self.get_runs_page(_latest_query(q))).runs
            last = runs[0] if runs else None
        return _windows_for(q, first, last, n)

    @overload
    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = ...,
        start_token: str | None = ...,
        raw: Literal[False] = ...,
    ) -> AsyncGenerator[WindowPage[RunsPage], None]: ...

    @overload
    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = ...,
        start_token: str | None = ...,
        raw: Literal[True],
    ) -> AsyncGenerator[WindowPage[RawPage], None]: ...

    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = 0,
        start_token: str | None = None,
        raw: bool = False,
    ) -> AsyncGenerator[WindowPage[Any], None]:
        """Pages of each window, windows one after another in the given order.

        Every window from ``start_window`` on is paged by its own task into a bounded
        buffer (so at most a few pages per window are held in memory); the first one
        starts at ``start_token``. Every run is yielded once, in window order.
        ``raw=True`` gives :class:`RawPage` pages.
        """
        return self._window_pages(windows, start_window, start_token, raw)

    async def _window_pages(
        self,
        windows: Sequence[RunQuery],
        start_window: int,
        start_token: str | None,
        raw: bool,
    ) -> AsyncGenerator[WindowPage[Any], None]:
        import asyncio

        parse: Callable[[httpx.Response, str], Any] = (
            self._core.raw_page if raw else self._core.page
        )
        todo = list(range(start_window, len(windows)))
        if not todo:
            return
        if len(todo) == 1:
            token = start_token
            async for page in self._pages(windows[todo[0]], token, parse):
                yield WindowPage(todo[0], page, token)
                token = page.next_page_token
            return
        buffers: dict[int, asyncio.Queue[WindowPage[Any] | BaseException | None]] = {
            index: asyncio.Queue(maxsize=defaults.PARALLEL_BUFFER_PAGES) for index in todo
        }

        tasks = [
            asyncio.create_task(
                self._fill(
                    windows[index],
                    index,
                    start_token if index == start_window else None,
                    parse,
                    buffers[index].put,
                )
            )
            for index in todo
        ]
        try:
            for index in todo:
                while True:
                    item = await buffers[index].get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fill(
        self,
        window: RunQuery,
        index: int,
        token: str | None,
        parse: Callable[[httpx.Response, str], Any],
        put: Callable[[WindowPage[Any] | BaseException | None], Awaitable[None]],
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        """Page one window from ``token``, handing each page to ``put`` as a WindowPage,
        then None; a failure is handed over instead of raised. With ``slots``, one is
        held while paging (not while reporting the end or a failure)."""
        import asyncio

        try:
            async with slots if slots is not None else contextlib.nullcontext():
                async for page in self._pages(window, token, parse):
                    await put(WindowPage(index, page, token))
                    token = page.next_page_token
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await put(exc)
            return
        await put(None)

    def iter_window_pages_as_fetched(
        self,
        windows: Sequence[RunQuery],
        *,
        positions: Mapping[int, str | None] | None = None,
        raw: bool = False,
        concurrency: int | None = None,
    ) -> AsyncGenerator[WindowPage[Any], None]:
        """Pages of all windows fetched concurrently, each yielded as soon as it arrives.

        See :meth:`TimbalClient.iter_window_pages_as_fetched`.
        """
        todo = dict(positions) if positions is not None else dict.fromkeys(range(len(windows)))
        return self._pages_as_fetched(windows, todo, raw, concurrency)

    async def _pages_as_fetched(
        self,
        windows: Sequence[RunQuery],
        todo: Mapping[int, str | None],
        raw: bool,
        concurrency: int | None = None,
    ) -> AsyncGenerator[WindowPage[Any], None]:
        import asyncio

        parse: Callable[[httpx.Response, str], Any] = (
            self._core.raw_page if raw else self._core.page
        )
        out: asyncio.Queue[WindowPage[Any] | BaseException | None] = asyncio.Queue(
            maxsize=max(2, len(todo) * 2)
        )

        slots = asyncio.Semaphore(concurrency or max(1, len(todo)))

        # Windows start in order, so with fewer fetchers than windows the earliest go first.
        tasks = [
            asyncio.create_task(self._fill(windows[index], index, token, parse, out.put, slots))
            for index, token in sorted(todo.items())
        ]
        remaining = len(tasks)
        try:
            while remaining:
                item = await out.get()
                if item is None:
                    remaining -= 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def get_run(self, run_id: str) -> RunDetail:
        """One run by id or idempotency key."""
        checked = _check_run_id(run_id)
        path = self._core.run_path(checked)
        return self._core.detail(await self._get(path, run_id=checked), path)

    async def earliest_run(self, query: RunQuery | None = None, **filters: Any) -> Run | None:
        """The oldest run matching the filters (one ascending request), or None."""
        page = await self.get_runs_page(_earliest_query(_build_query(query, filters)))
        return page.runs[0] if page.runs else None
