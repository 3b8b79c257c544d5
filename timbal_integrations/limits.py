"""Checks of the numbers that bound a listing: ``limit``, ``parallel``, ``max_retries``.

The clients, the export and the front ends that take these numbers as arguments (the
Airflow operator) check them here, so every one of them accepts the same values and
names the same bounds. Each check raises :class:`~timbal_integrations.errors.QueryError`
naming the argument.
"""

from __future__ import annotations

from typing import Final, Literal

from .defaults import MAX_PARALLEL, MAX_RETRIES_LIMIT
from .errors import QueryError

__all__ = ["AUTO", "Parallel", "check_limit", "check_max_retries", "check_parallel"]

AUTO: Final = "auto"
"""``parallel="auto"``: the listing picks its own concurrency within the rate limit."""

Parallel = int | Literal["auto"]
"""A parallel setting: a number of requests in flight, or ``"auto"``."""


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
