"""The clients' sans-I/O core: everything both clients do that is not I/O.

Request shaping (headers, one parse of each URL), argument checks, retry decisions,
response handling (status to exception, schema checks of pages and runs), page-token
loop checks and the cutting of time windows. Nothing here opens a socket or sleeps:
:class:`~timbal_integrations.client.AsyncTimbalClient` (``_async.py``) and the
generated :class:`~timbal_integrations.client.TimbalClient` (``_sync.py``) do the
sending and the waiting, and call this module for every decision.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Generic, TypeGuard, TypeVar, overload
from urllib.parse import quote, urlencode

import certifi
import httpx
import orjson
from pydantic_core import ValidationError

from .. import defaults
from .._pages import RawPage, parse_raw_page
from .._version import __version__
from ..config import ClientConfig
from ..errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    PaginationLimitError,
    PaginationLoopError,
    QueryError,
    ResponseValidationError,
    status_error,
)
from ..limits import Bounds
from ..pacing import Pacer, RateLimitInfo
from ..query import RunQuery, to_epoch_ms
from ..redact import redact
from ..retry import RETRYABLE_STATUS, OnRetry, RetryDetails, RetryPolicy, parse_retry_after
from ..sanitize import terminal_safe
from ._body import BodyReader, accept_encoding

if TYPE_CHECKING:  # loaded when first needed: an export never builds these models
    from ..models import ReactionsPage, Run, RunDetail, RunsPage

__all__ = [
    "DEFAULT_TIMEOUT",
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "Core",
    "PageGuard",
    "PageT",
    "Reply",
    "WindowPage",
    "build_query",
    "check_bounds",
    "check_page_token",
    "check_run_id",
    "check_timeout",
    "check_window_sort",
    "earliest_query",
    "latest_query",
    "rate_limit_info",
    "ssl_context",
    "transport_for",
    "window_bounds",
    "windows_for",
]

logger = logging.getLogger("timbal_integrations")

USER_AGENT: Final = f"timbal-integrations/{__version__} (python-httpx/{httpx.__version__})"
DEFAULT_TIMEOUT: Final = defaults.REQUEST_TIMEOUT

TRANSPORT_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Failures without an HTTP answer that are retried (then raised as APIConnectionError)."""


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


def build_query(query: RunQuery | None, filters: Mapping[str, Any]) -> RunQuery:
    """``query``, with ``filters`` (keyword arguments) applied on top."""
    if query is not None and not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    if not filters:
        return query if query is not None else RunQuery()
    if query is None:
        return RunQuery.from_filters(filters)
    return query.replace(**filters)


def check_window_sort(q: RunQuery) -> None:
    """Windows cut ``created_at``: only a listing sorted by it can be split into them."""
    if q.sort_by not in (None, "created_at"):
        raise QueryError("parallel", "parallel listing needs sort_by=created_at (the default)")


def token_chars(token: str) -> int:
    """The length of a page token as sent: percent-encoded."""
    return len(quote(token, safe=""))


def check_page_token(token: object) -> str | None:
    """A page token as given back by the caller (None for the first page)."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise QueryError("page_token", f"a {type(token).__name__} is not a page token")
    if not token or token_chars(token) > defaults.MAX_PAGE_TOKEN_CHARS:
        raise QueryError(
            "page_token",
            "expected the next_page_token of a previous page, unchanged (None for the first)",
        )
    return token  # opaque: sent percent-encoded, so any character is inert


def _seconds(value: object) -> TypeGuard[float]:
    """True for a number of seconds above 0, up to ``MAX_REQUEST_TIMEOUT``."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and 0 < value <= defaults.MAX_REQUEST_TIMEOUT
    )


def check_timeout(timeout: object) -> httpx.Timeout:
    """The timeout as httpx wants it: seconds above 0 (at most ``MAX_REQUEST_TIMEOUT``),
    None (none) or an httpx.Timeout whose phases are such seconds or None."""
    expected = f"is not a number of seconds above 0 and at most {defaults.MAX_REQUEST_TIMEOUT:g}"
    if isinstance(timeout, httpx.Timeout):
        for phase, value in timeout.as_dict().items():
            if value is not None and not _seconds(value):
                raise ConfigError(f"{phase} {value!r} {expected}", argument="timeout")
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    if not _seconds(timeout):
        raise ConfigError(f"{timeout!r} {expected}", argument="timeout")
    return httpx.Timeout(float(timeout))


def total_of(timeout: httpx.Timeout) -> float | None:
    """The total deadline of a request with ``timeout``: its longest phase (the whole of
    ``timeout=30`` is 30 s), or None when no phase is bounded."""
    phases = [value for value in timeout.as_dict().values() if value is not None]
    return max(phases) if phases else None


def check_bounds(bounds: object) -> Bounds:
    """``bounds``: None (the defaults) or a :class:`Bounds`."""
    if bounds is None:
        return Bounds()
    if not isinstance(bounds, Bounds):
        raise ConfigError(f"a {type(bounds).__name__} is not a Bounds", argument="bounds")
    return bounds


def check_run_id(run_id: object) -> str:
    """A run id or idempotency key, stripped; one that could escape its path is refused."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise QueryError("run_id", "expected a non-empty run id or idempotency key")
    if len(run_id) > defaults.MAX_RUN_ID_CHARS or any(ord(c) < 32 for c in run_id):
        raise QueryError("run_id", "expected a run id or idempotency key (no control characters)")
    if run_id.strip() in (".", ".."):
        # A dot segment survives percent-encoding and URL normalization would resolve it:
        # "." would reach the list endpoint and ".." the project itself.
        raise QueryError("run_id", f"{run_id.strip()!r} is not a run id or idempotency key")
    return run_id.strip()


@dataclass(frozen=True, slots=True)
class Reply:
    """A response, read: its status, headers and whole decoded body (within the cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes


_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
_EPOCH_SECONDS = 1e9  # a Reset this large is a point in time, not a number of seconds


def _header_number(response: Reply | httpx.Response, name: str) -> float | None:
    """The leading number of a header (``100`` in ``100, 100;w=60``), or None."""
    value = response.headers.get(name)
    match = _NUMBER.match(value) if value else None
    return float(match.group(1)) if match else None


def rate_limit_info(response: Reply | httpx.Response) -> RateLimitInfo | None:
    """What a response's ``RateLimit-Limit``/``-Remaining``/``-Reset`` headers say
    (None when it sent none of them)."""
    limit = _header_number(response, "ratelimit-limit")
    remaining = _header_number(response, "ratelimit-remaining")
    reset = _header_number(response, "ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    if reset is not None and reset > _EPOCH_SECONDS:
        reset = max(0.0, reset - time.time())
    return RateLimitInfo(
        None if limit is None else int(limit),
        None if remaining is None else int(remaining),
        reset,
    )


def server_message(response: Reply) -> str:
    """The server's own explanation of an error, on one line, bounded, and with no
    control character left to act on a terminal."""
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
    text = terminal_safe(" ".join(text.split()))
    return text[:300] + ("..." if len(text) > 300 else "")


class Core:
    """What both clients share: configuration, request shaping, retry decisions and
    response handling. One per client; ``requests_made`` counts its requests."""

    def __init__(
        self,
        config: ClientConfig,
        timeout: float | httpx.Timeout,
        max_retries: int | None,
        retry_policy: RetryPolicy | None,
        on_retry: OnRetry | None,
        bounds: Bounds | None = None,
    ) -> None:
        if not isinstance(config, ClientConfig):
            raise ConfigError(f"a {type(config).__name__} is not a ClientConfig", argument="config")
        if on_retry is not None and not callable(on_retry):
            raise ConfigError(f"a {type(on_retry).__name__} is not callable", argument="on_retry")
        self.config = config
        self.on_retry = on_retry
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
        self.timeout = check_timeout(timeout)
        self.total = total_of(self.timeout)
        """Seconds one request may take in all (None: unbounded)."""
        self.bounds = check_bounds(bounds)
        # The form each request carries; waiting for a pooled connection is part of the
        # total too, so it is never allowed longer.
        timeouts = self.timeout.as_dict()
        if self.total is not None:
            timeouts["pool"] = min(timeouts["pool"] or self.total, self.total)
        self.timeouts = timeouts
        self.requests_made = 0
        self.pacer = Pacer(max_pause=retry_policy.retry_after_max)

    def observe(self, response: Reply | None) -> None:
        """Tell the pacer what an answer said of the rate limit (None: no answer)."""
        if response is None:
            return
        retry_after = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        self.pacer.observe(response.status_code, rate_limit_info(response), retry_after)

    def headers(self) -> dict[str, str]:
        """The headers of every request (the key's only place)."""
        return {
            "Authorization": f"Bearer {self.config.api_key.get()}",
            "Accept": "application/json",
            "Accept-Encoding": accept_encoding(),
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
        url = self.config.base_url + path + query
        if len(url) > defaults.MAX_URL_CHARS:
            longest = max(params, key=lambda k: len(params[k])) if params else "run_id"
            raise QueryError(
                longest,
                f"makes the request URL {len(url):,} characters long, over the "
                f"{defaults.MAX_URL_CHARS:,} an HTTP request carries; use shorter values",
            )
        return httpx.URL(url)

    def ran_out(self, started: float) -> bool:
        """True when a request begun at ``started`` (``time.monotonic()``) has used up its
        total deadline."""
        return self.total is not None and time.monotonic() - started >= self.total

    def body(self, response: httpx.Response, path: str, deadline: float | None) -> BodyReader:
        """The reader of ``response``'s body: decoded within the size cap, before
        ``deadline`` (raises at once when ``Content-Length`` is over the cap)."""
        return BodyReader(
            response.headers,
            limit=self.bounds.max_response_bytes,
            path=path,
            status=response.status_code,
            deadline=deadline,
        )

    def run_path(self, run_id: str) -> str:
        """The path of one run (the id percent-encoded, slashes included)."""
        return f"{self.config.runs_path}/{quote(run_id, safe='')}"

    def reactions_path(self, run_id: str) -> str:
        """The path of one run's reactions."""
        return f"{self.run_path(run_id)}/reactions"

    def retry_delay(
        self, response: Reply | None, error: Exception | None, attempt: int, path: str
    ) -> float | None:
        """Seconds to wait before retrying, or None to stop (raise or return).

        A retry is logged as a warning and handed to ``on_retry`` as a
        :class:`~timbal_integrations.retry.RetryDetails` (an exception raised by the hook
        stops the retries and reaches the caller).
        """
        if attempt >= self.retry.max_retries:
            return None
        status: int | None = None
        retry_after: float | None = None
        if response is not None:
            status = response.status_code
            if status not in RETRYABLE_STATUS:
                return None
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        details = RetryDetails(
            attempt=attempt + 1,
            max_retries=self.retry.max_retries,
            delay=self.retry.delay(attempt, retry_after),
            status_code=status,
            error=None if error is None else type(error).__name__,
            path=path,
            retry_after=retry_after is not None,
        )
        logger.warning(
            "GET %s %s; retrying in %.2fs (retry %d of %d)",
            path,
            f"answered {status}" if status is not None else f"failed ({details.error})",
            details.delay,
            details.attempt,
            details.max_retries,
        )
        if self.on_retry is not None:
            self.on_retry(details)
        return details.delay

    def transport_error(
        self, error: Exception, path: str, attempts: int, deadline: bool = False
    ) -> APIConnectionError:
        """The error raised when no HTTP answer came (the key redacted from its text).

        ``deadline``: the last attempt ran out of its total deadline (rather than one
        phase timing out on its own).
        """
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        secret = self.config.api_key.get()
        detail = terminal_safe(redact(str(error), secret)) or type(error).__name__
        if isinstance(error, httpx.TimeoutException):
            if deadline and self.total is not None:
                return APITimeoutError(
                    f"GET {path} timed out {tries} (the timeout is {self.total:g}s per "
                    "request in all, its total deadline: connecting, sending and reading the "
                    "whole response; the last attempt ran out of it): is "
                    f"{self.config.base_url} reachable, and answering promptly?",
                    path=path,
                    seconds=self.total,
                    deadline=True,
                )
            seconds = self._phase_timeout(error)
            return APITimeoutError(
                f"GET {path} timed out {tries} ({type(error).__name__}; the timeout is "
                f"{seconds:g}s): is {self.config.base_url} reachable?",
                path=path,
                seconds=seconds,
            )
        return APIConnectionError(
            f"GET {path} could not complete {tries}: {detail} "
            f"(is {self.config.base_url} reachable?)",
            path=path,
        )

    def _phase_timeout(self, error: httpx.TimeoutException) -> float:
        """The timeout of the phase that ran out."""
        phase = {
            httpx.ConnectTimeout: self.timeout.connect,
            httpx.WriteTimeout: self.timeout.write,
            httpx.PoolTimeout: self.timeout.pool,
        }.get(type(error), self.timeout.read)
        return phase if phase is not None else (self.total or 0.0)

    def handle(self, response: Reply, path: str, run_id: str | None = None) -> Reply:
        """The response itself when successful, else the right exception."""
        if response.status_code >= 300:
            location = response.headers.get("location")  # redirects are not followed
            redirect = response.status_code < 400 and bool(location)
            raise status_error(
                response.status_code,
                method="GET",
                path=path,
                server_message="" if redirect else server_message(response),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                secret=self.config.api_key.get(),
                location=location if redirect else None,
                run_id=run_id,
            )
        return response

    @staticmethod
    def invalid(response: Reply, path: str, error: ValidationError) -> ResponseValidationError:
        """The error for a 2xx body that is not what the API promises."""
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

    def page(self, response: Reply, path: str) -> RunsPage:
        """A list page as models."""
        # Validating straight from bytes (pydantic-core's parser) is the fast path: about
        # 40% cheaper per run than json.loads followed by model_validate.
        from ..models import RunsPage

        try:
            page = RunsPage.model_validate_json(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None
        self.check_next_token(page.next_page_token, path)
        return page

    def raw_page(self, response: Reply, path: str) -> RawPage:
        """A list page as the server's dicts, checked against the schema."""
        try:
            page = parse_raw_page(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None
        self.check_next_token(page.next_page_token, path)
        return page

    def check_next_token(self, token: str | None, path: str) -> None:
        """Refuse a next page token longer than the bound: the server's, not the caller's,
        fault (and sending it back could not work)."""
        bound = self.bounds.max_page_token_chars
        if token is not None and token_chars(token) > bound:
            raise PaginationLimitError(
                f"GET {path} returned a next_page_token of {token_chars(token):,} characters "
                f"(percent-encoded), over the {bound:,} a page token may have "
                "(Bounds.max_page_token_chars); the server's pagination is broken",
                setting="max_page_token_chars",
                limit=bound,
            )

    def detail(self, response: Reply, path: str) -> RunDetail:
        """One run's detail as a model."""
        from ..models import RunDetail

        try:
            return RunDetail.model_validate_json(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None

    def reactions(self, response: Reply, path: str) -> ReactionsPage:
        """A page of a run's reactions as models (its next page token bounded like a
        list page's)."""
        from ..models import ReactionsPage

        try:
            page = ReactionsPage.model_validate_json(response.content)
        except ValidationError as error:
            raise self.invalid(response, path, error) from None
        self.check_next_token(page.next_page_token, path)
        return page

    def parser(self, raw: bool) -> Callable[[Reply, str], Any]:
        """How to read a list page: :meth:`raw_page` or :meth:`page`."""
        return self.raw_page if raw else self.page

    def page_guard(self, path: str | None = None) -> PageGuard:
        """The checks of one listing's pages (see :class:`PageGuard`): of the runs, or of
        the listing at ``path`` (a run's reactions)."""
        return PageGuard(path or self.config.runs_path, self.bounds)

    def __repr__(self) -> str:
        c = self.config
        return f"base_url={c.base_url!r}, org_id={c.org_id!r}, project_id={c.project_id!r}"


class PageGuard:
    """What one listing checks after each page, so that no server can keep it going
    forever: a page token it already handed out (a loop), more than
    ``Bounds.max_empty_pages`` empty pages in a row, more than ``Bounds.max_pages``
    pages in all.

    Tokens already seen are remembered by a 16-byte digest, the last
    :data:`SEEN_TOKENS` of them: memory stays bounded whatever the tokens' length or
    number (``max_pages`` bounds a loop longer than that).

    A parallel listing pages many pieces of time, each a listing of its own query: each
    piece has its guard (:meth:`piece`: its own tokens and empty pages in a row, kept
    while the piece passes from worker to worker), and every page of every piece counts
    toward the listing's ``max_pages``.
    """

    SEEN_TOKENS: Final = 10_000

    def __init__(self, path: str, bounds: Bounds, listing: PageGuard | None = None) -> None:
        self.path = path
        self.bounds = bounds
        self.pages = 0
        self.empty = 0
        self._seen: dict[bytes, None] = {}
        self._listing = listing

    def piece(self) -> PageGuard:
        """The guard of one piece of this (parallel) listing: its own loop and empty-page
        checks; its pages count toward this listing's ``max_pages`` too."""
        return PageGuard(self.path, self.bounds, self)

    @property
    def total(self) -> int:
        """Pages counted toward ``max_pages``: the listing's, every piece's included."""
        return self._listing.pages if self._listing is not None else self.pages

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def check(self, sent: str | None, received: str | None, runs: int) -> None:
        """After a page fetched with ``sent`` that held ``runs`` runs and handed out
        ``received``: raise when following it would loop or go past a bound."""
        self.pages += 1
        if self._listing is not None:
            self._listing.pages += 1
        if received is None:
            return
        bounds = self.bounds
        if self.total >= bounds.max_pages:
            raise PaginationLimitError(
                f"GET {self.path} handed out a next page after {self.total:,} pages, the most "
                "one listing follows (Bounds.max_pages); stopping. Is the server's "
                "pagination broken, or is this listing better split (a shorter "
                "since/until window)?",
                setting="max_pages",
                limit=bounds.max_pages,
            )
        self.empty = self.empty + 1 if runs == 0 else 0
        if self.empty >= bounds.max_empty_pages:
            raise PaginationLimitError(
                f"GET {self.path} returned {self.empty:,} empty pages in a row, each with "
                "a new page token (Bounds.max_empty_pages); stopping instead of following "
                "them forever (the server's pagination is broken)",
                setting="max_empty_pages",
                limit=bounds.max_empty_pages,
            )
        digest = self._digest(received)
        if received == sent or digest in self._seen:
            raise PaginationLoopError(
                f"GET {self.path} returned a page token it had already returned; "
                "stopping instead of looping forever (the server's pagination is broken)"
            )
        self._seen[digest] = None
        if len(self._seen) > self.SEEN_TOKENS:
            del self._seen[next(iter(self._seen))]


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


def earliest_query(query: RunQuery) -> RunQuery:
    """The query asking for the oldest run first."""
    return query.replace(sort_by="created_at", sort_order="asc")


def latest_query(query: RunQuery) -> RunQuery:
    """The query asking for the newest run first."""
    return query.replace(sort_by="created_at", sort_order="desc")


def windows_for(
    query: RunQuery, first: Run | None, last: Run | None, parallel: int
) -> list[RunQuery]:
    """The windows of a parallel listing, in the order their runs must be yielded.

    A missing ``since`` starts at the earliest matching run (``first``); a missing
    ``until`` ends just after the latest one (``last``), so no window is spent on a
    stretch of time that holds nothing.
    """
    check_window_sort(query)
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


def window_bounds(window: RunQuery) -> tuple[int, int]:
    """A window's ``[since, until)`` in epoch milliseconds."""
    if window.since is None or window.until is None:
        raise QueryError("since", "a window needs both since and until")
    return to_epoch_ms(window.since), to_epoch_ms(window.until)
