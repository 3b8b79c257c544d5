"""The clients' checks of what a caller passes them (sans-I/O).

A query and its keyword filters, a page token given back, a timeout, page bounds, a run
id: each is checked here, before any request is made, and refused with a one-line error
naming the argument (:class:`~timbal_integrations.errors.QueryError` for what shapes a
request, :class:`~timbal_integrations.errors.ConfigError` for the client's settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard
from urllib.parse import quote

import httpx

from .. import defaults
from ..errors import ConfigError, QueryError
from ..limits import Bounds
from ..query import RunQuery

__all__ = [
    "build_query",
    "check_bounds",
    "check_page_token",
    "check_run_id",
    "check_timeout",
    "token_chars",
    "total_of",
    "with_token",
]


def build_query(query: RunQuery | None, filters: Mapping[str, Any]) -> RunQuery:
    """``query``, with ``filters`` (keyword arguments) applied on top."""
    if query is not None and not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    if not filters:
        return query if query is not None else RunQuery()
    if query is None:
        return RunQuery.from_filters(filters)
    return query.replace(**filters)


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


def with_token(params: Mapping[str, str] | None, token: str | None) -> Mapping[str, str] | None:
    """The query parameters of a page: ``params``, plus ``page_token`` unless None."""
    if token is None:
        return params
    return {**params, "page_token": token} if params else {"page_token": token}


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
