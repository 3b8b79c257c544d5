"""The clients' sans-I/O core: the state both clients share and the decisions they ask.

:class:`Core` holds a client's settings (configuration, timeout and total deadline,
retry policy, page bounds, pacer) and decides what is not I/O: the shape of each
request (headers, one parse of each URL, paths), whether and how long to retry (a
:class:`~timbal_integrations.retry.RetryDetails` for ``on_retry`` and the log), and what
an answer becomes. The rest of the core is a module a job, each called from here or by
the clients: ``_checks`` (the caller's arguments), ``_body`` (bodies, bounded),
``_ratelimit`` (``RateLimit-*`` headers), ``_failures`` (error statuses, no answer),
``_parse`` (2xx bodies to models), ``_guard`` (a listing's page bounds) and ``_pieces``
(the time ranges of parallel listings). Nothing here opens a socket or sleeps:
:class:`~timbal_integrations.client.AsyncTimbalClient` (``_async.py``) and the
generated :class:`~timbal_integrations.client.TimbalClient` (``_sync.py``) do the
sending and the waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlencode

import httpx

from .. import defaults
from .._version import __version__
from ..config import ClientConfig
from ..errors import APIConnectionError, ConfigError, QueryError
from ..limits import Bounds
from ..pacing import Pacer
from ..retry import RETRYABLE_STATUS, OnRetry, RetryDetails, RetryPolicy, parse_retry_after
from . import _parse
from ._body import BodyReader, Reply, accept_encoding
from ._checks import check_bounds, check_timeout, total_of
from ._failures import status_failure, transport_failure
from ._guard import PageGuard
from ._ratelimit import rate_limit_info

if TYPE_CHECKING:  # loaded when first needed: an export never builds these models
    from .._pages import RawPage
    from ..models import ReactionsPage, RunDetail, RunsPage

__all__ = [
    "DEFAULT_TIMEOUT",
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "Core",
    "logger",
]

logger = logging.getLogger("timbal_integrations")

USER_AGENT: Final = f"timbal-integrations/{__version__} (python-httpx/{httpx.__version__})"
DEFAULT_TIMEOUT: Final = defaults.REQUEST_TIMEOUT

TRANSPORT_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Failures without an HTTP answer that are retried (then raised as APIConnectionError)."""


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
        """The error raised when no HTTP answer came (see
        :func:`~._failures.transport_failure`; ``deadline``: the last attempt ran out of
        its total deadline)."""
        return transport_failure(
            error,
            path,
            attempts,
            base_url=self.config.base_url,
            secret=self.config.api_key.get(),
            timeout=self.timeout,
            total=self.total,
            deadline=deadline,
        )

    def handle(self, response: Reply, path: str, run_id: str | None = None) -> Reply:
        """The response itself when successful, else the right exception."""
        if response.status_code >= 300:
            raise status_failure(response, path, self.config.api_key.get(), run_id)
        return response

    def page(self, response: Reply, path: str) -> RunsPage:
        """A list page as models."""
        return _parse.runs_page(response, path, self.bounds)

    def raw_page(self, response: Reply, path: str) -> RawPage:
        """A list page as the server's dicts, checked against the schema."""
        return _parse.raw_page(response, path, self.bounds)

    def detail(self, response: Reply, path: str) -> RunDetail:
        """One run's detail as a model."""
        return _parse.run_detail(response, path)

    def reactions(self, response: Reply, path: str) -> ReactionsPage:
        """A page of a run's reactions as models."""
        return _parse.reactions_page(response, path, self.bounds)

    def page_guard(self, path: str | None = None) -> PageGuard:
        """The checks of one listing's pages (see :class:`PageGuard`): of the runs, or of
        the listing at ``path`` (a run's reactions)."""
        return PageGuard(path or self.config.runs_path, self.bounds)

    def __repr__(self) -> str:
        c = self.config
        return f"base_url={c.base_url!r}, org_id={c.org_id!r}, project_id={c.project_id!r}"
