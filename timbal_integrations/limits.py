"""Checks of the numbers that bound a listing: ``limit``, ``parallel``, ``max_retries``;
and :class:`Bounds`, what a client accepts from a server.

The clients, the export and the front ends that take these numbers as arguments (the
Airflow operator) check them here, so every one of them accepts the same values and
names the same bounds. Each check raises :class:`~timbal_integrations.errors.QueryError`
naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, Literal

from .defaults import (
    MAX_EMPTY_PAGES,
    MAX_PAGE_TOKEN_CHARS,
    MAX_PAGES,
    MAX_PARALLEL,
    MAX_RESPONSE_BYTES,
    MAX_RETRIES_LIMIT,
)
from .errors import ConfigError, QueryError

__all__ = ["AUTO", "Bounds", "Parallel", "check_limit", "check_max_retries", "check_parallel"]

AUTO: Final = "auto"
"""``parallel="auto"``: the listing picks its own concurrency within the rate limit."""

Parallel = int | Literal["auto"]
"""A parallel setting: a number of requests in flight, or ``"auto"``."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a client accepts from a server before it calls the server broken.

    - ``max_response_bytes``: bytes of one response body, counted as they are decoded
      (gzip, deflate, br); reading stops past it (:class:`ResponseTooLargeError
      <timbal_integrations.errors.ResponseTooLargeError>`). Default 64 MiB.
    - ``max_page_token_chars``: the longest page token, in characters as sent
      (percent-encoded). Default 16,384.
    - ``max_empty_pages``: empty pages in a row (each with a next token) followed at
      most, in one listing (in a parallel listing, in one piece of time). Default 1,000.
    - ``max_pages``: pages one listing follows at most; a parallel listing counts every
      page of every piece. Default 1,000,000.

    The last three raise :class:`PaginationLimitError
    <timbal_integrations.errors.PaginationLimitError>` naming the setting. Each is a
    whole number, 1 or more (a bad one is a ``ConfigError`` naming it)::

        TimbalClient(bounds=Bounds(max_response_bytes=256 * 1024 * 1024))
    """

    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_page_token_chars: int = MAX_PAGE_TOKEN_CHARS
    max_empty_pages: int = MAX_EMPTY_PAGES
    max_pages: int = MAX_PAGES

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if _whole(value) is None or value < 1:
                raise ConfigError(f"{value!r} is not a whole number, 1 or more", argument=item.name)


def _whole(value: object) -> int | None:
    """``value`` when it is a whole number (a bool is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_limit(limit: object) -> int | None:
    """``limit``: None (no limit) or a whole number of runs, 0 or more."""
    if limit is None:
        return None
    value = _whole(limit)
    if value is None or value < 0:
        raise QueryError("limit", f"{limit!r} is not a whole number of runs (0 or more)")
    return value


def check_parallel(parallel: object) -> Parallel:
    """``parallel``: how many requests are in flight at once (None means 1), or
    ``"auto"`` (any case): as many as throughput and the rate limit allow."""
    if parallel is None:
        return 1
    if isinstance(parallel, str) and parallel.strip().lower() == AUTO:
        return AUTO
    value = _whole(parallel)
    if value is None or not 1 <= value <= MAX_PARALLEL:
        raise QueryError(
            "parallel",
            f"{parallel!r} is not a number of windows from 1 to {MAX_PARALLEL}, or 'auto'",
        )
    return value


def check_max_retries(max_retries: object) -> int | None:
    """``max_retries``: None (the policy's own) or a whole number of retries."""
    if max_retries is None:
        return None
    value = _whole(max_retries)
    if value is None or not 0 <= value <= MAX_RETRIES_LIMIT:
        raise QueryError(
            "max_retries", f"{max_retries!r} is not a whole number from 0 to {MAX_RETRIES_LIMIT}"
        )
    return value
