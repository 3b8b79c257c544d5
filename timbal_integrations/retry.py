"""Retry policy: which failures are retried, and how long to wait between attempts.

Retried: 429 (honouring ``Retry-After``, in seconds or as an HTTP date, capped), 5xx,
timeouts and dropped connections. Never retried: any other 4xx. Between attempts the
client waits ``Retry-After`` when the server gave one, else an exponential backoff with
full jitter, ``uniform(0, min(backoff_max, backoff_base * 2**attempt))``.

Before each wait the client calls its ``on_retry`` hook (if any) with a
:class:`RetryDetails`: the attempt, the delay, the status or error, the request path.
Front ends count or show retries from it (``timbal-runs`` does); the client also logs a
warning line for each, for people reading logs.

Tests switch sleeping off with :func:`testing` (or ``TIMBAL_RETRY_TESTING=1`` in the
environment of a subprocess): the policy still counts and computes every delay, it just
does not wait.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .defaults import BACKOFF_BASE, BACKOFF_MAX, MAX_RETRIES, RETRY_AFTER_MAX

__all__ = [
    "RETRYABLE_STATUS",
    "OnRetry",
    "RetryDetails",
    "RetryPolicy",
    "is_testing",
    "parse_retry_after",
    "set_testing",
    "testing",
]

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

_testing = False


def set_testing(enabled: bool) -> None:
    """Turn the no-sleep testing mode on or off for this process."""
    global _testing
    _testing = enabled


def is_testing() -> bool:
    """True when retries should not actually sleep."""
    return _testing or os.environ.get("TIMBAL_RETRY_TESTING", "") in ("1", "true")


@contextmanager
def testing(enabled: bool = True) -> Iterator[None]:
    """Within the block, retry delays are computed but not slept."""
    previous = _testing
    set_testing(enabled)
    try:
        yield
    finally:
        set_testing(previous)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry, and the bounds on waiting.

    ``max_retries`` counts retries after the first attempt (so ``max_retries=6`` means at
    most 7 requests). ``retry_after_max`` caps a server's ``Retry-After``.
    """

    max_retries: int = MAX_RETRIES
    backoff_base: float = BACKOFF_BASE
    backoff_max: float = BACKOFF_MAX
    retry_after_max: float = RETRY_AFTER_MAX

    def __post_init__(self) -> None:
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"max_retries: {retries!r} is not a whole number, 0 or more")
        for name in ("backoff_base", "backoff_max", "retry_after_max"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value < float("inf")
            ):
                raise ValueError(f"{name}: {value!r} is not a number of seconds, 0 or more")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """One retry about to happen: what failed, and how long the client waits first."""

    attempt: int
    """The retry's number: 1 for the first retry (the second request)."""
    max_retries: int
    """The most retries the policy allows."""
    delay: float
    """Seconds the client waits before the retry."""
    status_code: int | None
    """The HTTP status that failed (429, 5xx), or None for a transport error."""
    error: str | None
    """The transport error's class name (``ConnectTimeout``...), or None for a status."""
    path: str
    """The request path (no query string)."""
    retry_after: bool
    """True when the delay is the server's ``Retry-After`` (capped), not a backoff."""


OnRetry = Callable[[RetryDetails], None]
"""A client's ``on_retry`` hook: called with each retry's details before its wait."""
