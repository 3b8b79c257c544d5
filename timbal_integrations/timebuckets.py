"""Time buckets: the UTC calendar arithmetic of a summary's time series.

A bucket is an hour, a UTC day (from 00:00 UTC) or an ISO week (from Monday 00:00 UTC),
numbered from the epoch (:func:`bucket_index`, :func:`index_start`). This module says
which bucket a time falls in, which buckets a ``[since, until)`` window spans, and
refuses a series longer than :data:`~timbal_integrations.defaults.MAX_TIME_BUCKETS`
(:func:`check_buckets`, a :class:`~timbal_integrations.errors.QueryError` on
``bucket``); :func:`choose_bucket` picks a size that draws a window well. What is
counted in each bucket is :mod:`timbal_integrations.summary`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from .defaults import MAX_TIME_BUCKETS
from .errors import QueryError

__all__ = [
    "BUCKETS",
    "BucketSize",
    "as_utc",
    "bucket_index",
    "bucket_start",
    "check_buckets",
    "check_size",
    "choose_bucket",
    "index_end",
    "index_start",
    "too_many_buckets",
    "window_indexes",
]

BucketSize = Literal["hour", "day", "week"]
"""The size of a time bucket: an hour, a UTC day, or an ISO week (Monday to Sunday, UTC)."""

BUCKETS: Final[tuple[BucketSize, ...]] = ("hour", "day", "week")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS
_MONDAY_SHIFT: Final = 3  # 1970-01-01 was a Thursday: day -3 (1969-12-29) is a Monday


def check_size(bucket: object) -> BucketSize:
    """``bucket`` when it is ``hour``, ``day`` or ``week``; else a :class:`QueryError`."""
    if bucket not in BUCKETS:
        raise QueryError("bucket", f"{bucket!r} is not one of {', '.join(BUCKETS)}")
    return bucket


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bucket_index(moment: datetime, bucket: BucketSize) -> int:
    """The number of the bucket holding ``moment`` (buckets counted from the epoch)."""
    delta = as_utc(moment) - _EPOCH
    ms = delta.days * _DAY_MS + delta.seconds * 1000 + delta.microseconds // 1000
    if bucket == "hour":
        return ms // _HOUR_MS
    if bucket == "day":
        return ms // _DAY_MS
    return (ms // _DAY_MS + _MONDAY_SHIFT) // 7


def index_start(index: int, bucket: BucketSize) -> datetime:
    """The start of bucket number ``index`` (see :func:`bucket_index`)."""
    if bucket == "hour":
        return _EPOCH + timedelta(hours=index)
    if bucket == "day":
        return _EPOCH + timedelta(days=index)
    return _EPOCH + timedelta(days=index * 7 - _MONDAY_SHIFT)


def index_end(index: int, bucket: BucketSize) -> datetime:
    """The end (exclusive) of bucket number ``index``: the next one's start."""
    return index_start(index + 1, bucket)


def bucket_start(moment: datetime, bucket: BucketSize) -> datetime:
    """The start of the ``bucket`` holding ``moment``: the hour, the UTC day, or the
    Monday 00:00 UTC of its week (a naive ``moment`` is taken as UTC)."""
    return index_start(bucket_index(moment, check_size(bucket)), bucket)


def window_indexes(
    bucket: BucketSize, since: datetime | None, until: datetime | None
) -> tuple[int | None, int | None]:
    """The indexes of the window's first and last buckets (``until`` is exclusive)."""
    first = bucket_index(since, bucket) if since is not None else None
    last = None
    if until is not None:
        last = bucket_index(as_utc(until) - timedelta(milliseconds=1), bucket)
        if first is not None and last < first:
            last = first
    return first, last


def too_many_buckets(bucket: BucketSize, count: int, first: int, last: int) -> QueryError:
    """The error for a series of ``count`` buckets (``first`` to ``last``) that is longer
    than ``MAX_TIME_BUCKETS``, with the advice to use coarser buckets or a shorter window."""
    coarser = BUCKETS[BUCKETS.index(bucket) + 1 :]
    advice = f"use {' or '.join(coarser)} buckets, or " if coarser else ""
    return QueryError(
        "bucket",
        f"{count:,} {bucket} buckets from {index_start(first, bucket):%Y-%m-%d %H:%M} to "
        f"{index_end(last, bucket):%Y-%m-%d %H:%M} UTC is more than {MAX_TIME_BUCKETS:,} "
        f"(the most a series holds); {advice}a shorter since/until window",
    )


def check_buckets(bucket: str, since: datetime | None, until: datetime | None) -> int:
    """How many ``bucket`` buckets the window ``[since, until)`` spans (0 when either end
    is open); a :class:`QueryError` on ``bucket`` when it is not ``hour``, ``day`` or
    ``week`` or the window spans more than ``MAX_TIME_BUCKETS`` buckets.

    Front ends call it before any request, once they know the window.
    """
    size = check_size(bucket)
    first, last = window_indexes(size, since, until)
    if first is None or last is None:
        return 0
    count = last - first + 1
    if count > MAX_TIME_BUCKETS:
        raise too_many_buckets(size, count, first, last)
    return count


def choose_bucket(since: datetime, until: datetime) -> BucketSize:
    """A bucket that draws ``[since, until)`` in about 10 to 100 bars: hours up to two
    days, days up to about 15 weeks, weeks beyond."""
    span = as_utc(until) - as_utc(since)
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=105):
        return "day"
    return "week"
