"""Exact rollups over every matching run: the numbers of ``timbal-runs summary`` and of the
MCP ``summarize_runs`` tool (one computation, two front ends).

Counts are exact; costs are exact running sums (equal to :func:`math.fsum` of every
cost); duration percentiles use the nearest-rank method over runs with a recorded
duration (running runs have none). :class:`SummaryBuilder` is the computation as a fold,
for sources that are not a plain iterable (an async listing): ``add`` each run, then
``result``; :func:`summarize` is a loop over it.

Time series: with ``bucket="hour"``, ``"day"`` or ``"week"`` the same fold also counts
each run in the UTC calendar bucket of its ``created_at`` (days start at 00:00 UTC, weeks
on Monday 00:00 UTC, ISO 8601 weeks), and :attr:`RunSummary.series` lists every bucket
from the window's first to its last, oldest first: buckets without a run are there with
zeros, so a chart has no gaps. Each holds counts by status, errors and error rate, exact
costs, and exact duration percentiles of its own runs. A series holds at most
:data:`~timbal_integrations.defaults.MAX_TIME_BUCKETS` buckets: a longer one is a
:class:`~timbal_integrations.errors.QueryError` on ``bucket`` (raised by
:func:`check_buckets` before any request when the window is known, or by
:meth:`SummaryBuilder.add` as soon as the runs reach past the bound), never a cut
series. The bucket arithmetic (which bucket a time is in, which buckets a window
spans, the bound) is :mod:`timbal_integrations.timebuckets`'; its public names are
importable from here too.

>>> summary = summarize(client.list_runs(since="7d"), bucket="day")  # doctest: +SKIP
>>> [(b.start.date(), b.total, b.error_rate) for b in summary.series]  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from ._exact import ExactSum
from .defaults import MAX_TIME_BUCKETS
from .models import Run
from .timebuckets import (
    BUCKETS,
    BucketSize,
    as_utc,
    bucket_index,
    bucket_start,
    check_buckets,
    check_size,
    choose_bucket,
    index_end,
    index_start,
    too_many_buckets,
    window_indexes,
)

__all__ = [
    "BUCKETS",
    "Bucket",
    "BucketSize",
    "DurationStats",
    "ExactSum",
    "RunSummary",
    "SummaryBuilder",
    "TimeBucket",
    "UserBucket",
    "WorkforceBucket",
    "bucket_start",
    "check_buckets",
    "choose_bucket",
    "percentile",
    "summarize",
]

_LAZY = ConfigDict(defer_build=True)  # built on first use, not when the CLI starts


class Bucket(BaseModel):
    """One value of a dimension: how many runs, their share of the total, their cost."""

    model_config = _LAZY

    key: str | None
    count: int
    share: float
    cost_usd: float


class UserBucket(Bucket):
    """Runs of one user (``key`` is the user id)."""

    name: str
    email: str


class WorkforceBucket(Bucket):
    """Runs of one workforce (``key`` is the workforce id)."""

    name: str
    type: str


class DurationStats(BaseModel):
    """Duration percentiles (nearest rank) over the runs that have a duration."""

    model_config = _LAZY

    count: int
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


class TimeBucket(BaseModel):
    """The runs created in one time bucket ``[start, end)`` (UTC).

    ``partial`` is True when the summary's window covers only part of the bucket (a
    ``since`` or ``until`` inside it: the current day so far, say). ``by_status`` counts
    runs per status (statuses without runs in the bucket are left out).
    """

    model_config = _LAZY

    start: datetime
    end: datetime
    partial: bool
    total: int
    by_status: dict[str, int]
    error_count: int
    error_rate: float
    cost_usd: float
    cost_credits: float
    duration: DurationStats


class RunSummary(BaseModel):
    """Exact rollups of a set of runs.

    ``complete`` is False when a ``max_runs`` bound stopped the scan early; the numbers then
    cover the first ``total`` runs only. ``bucket`` and ``series`` are set when the
    summary was asked for a time series (see the module docstring).
    """

    model_config = _LAZY

    total: int
    complete: bool
    by_status: list[Bucket]
    by_user: list[UserBucket]
    by_workforce: list[WorkforceBucket]
    by_sentiment: list[Bucket]
    error_count: int
    error_rate: float
    cost_usd_total: float
    cost_credits_total: float
    duration: DurationStats
    first_run_at: datetime | None
    last_run_at: datetime | None
    bucket: BucketSize | None = None
    series: list[TimeBucket] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 strings); ``bucket`` and ``series`` only
        when a time series was asked for."""
        data = self.model_dump(mode="json")
        if self.series is None:
            data.pop("bucket", None)
            data.pop("series", None)
        return data


def percentile(sorted_values: list[int], p: float) -> int | None:
    """Nearest-rank percentile ``p`` (0 < p <= 100) of an ascending list; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values) / 100))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


class _Tally:
    """Runs of one bucket: how many, and their exact cost."""

    __slots__ = ("cost", "count")

    def __init__(self) -> None:
        self.count = 0
        self.cost = ExactSum()

    def add(self, cost: float) -> None:
        self.count += 1
        self.cost.add(cost)


_B = TypeVar("_B", bound=Bucket)


def _buckets(
    tallies: dict[Any, _Tally],
    total: int,
    model: type[_B],
    extra: Callable[[Any], dict[str, str]] = lambda _key: {},
) -> list[_B]:
    """One bucket per key, largest first; ties by key so the order is stable."""
    order = sorted(tallies, key=lambda k: (-tallies[k].count, "" if k is None else str(k)))
    return [
        model(
            key=k,
            count=tallies[k].count,
            share=_share(tallies[k].count, total),
            cost_usd=tallies[k].cost.value(),
            **extra(k),
        )
        for k in order
    ]


class _Slot:
    """Runs of one time bucket: how many, per status, their costs and durations."""

    __slots__ = ("count", "credits", "durations", "statuses", "usd")

    def __init__(self) -> None:
        self.count = 0
        self.statuses: dict[str, int] = {}
        self.usd = ExactSum()
        self.credits = ExactSum()
        self.durations: list[int] = []

    def add(self, run: Run) -> None:
        self.count += 1
        self.statuses[run.status] = self.statuses.get(run.status, 0) + 1
        self.usd.add(run.cost_usd)
        self.credits.add(run.cost_credits)
        if run.duration_ms is not None:
            self.durations.append(run.duration_ms)


def _durations(values: list[int]) -> DurationStats:
    ordered = sorted(values)
    return DurationStats(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        max_ms=ordered[-1] if ordered else None,
    )


class SummaryBuilder:
    """The rollups of :func:`summarize` as a fold: ``add`` runs one at a time (from any
    source: a sync or an async listing), then ``result``.

    With ``bucket`` (``"hour"``, ``"day"`` or ``"week"``) the result also has a time
    series; ``since`` and ``until`` (the query's window, ``until`` exclusive) say which
    buckets it spans, so that buckets without runs appear too. An open end is taken from
    the runs (the first or last run's bucket). Front ends pass ``until=now`` for a
    window that reaches the present.

    Counts are exact; costs are exact running sums (:class:`ExactSum`, equal to
    :func:`math.fsum` over every cost); durations are kept (one int per run that has
    one) for exact nearest-rank percentiles. Nothing else is kept per run, so memory
    grows with the number of distinct users, workforces and durations, not with the
    runs' size.

    To add a breakdown, give it a dict of :class:`_Tally` keyed by the bucket, fill it
    in :meth:`add` and turn it into buckets in :meth:`result`: every breakdown is
    computed in the same single pass (the time series is one: :class:`_Slot` per bucket,
    its durations kept there instead of in one list).
    """

    def __init__(
        self,
        *,
        bucket: BucketSize | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.bucket: BucketSize | None = None if bucket is None else check_size(bucket)
        """The time series' bucket size (None: no series)."""
        self._since = None if since is None else as_utc(since)
        self._until = None if until is None else as_utc(until)
        self._slots: dict[int, _Slot] = {}
        self._span: tuple[int, int] | None = None
        if self.bucket is not None:
            check_buckets(self.bucket, since, until)
            ends = [end for end in window_indexes(self.bucket, since, until) if end is not None]
            if ends:
                self._span = (ends[0], ends[-1])
        self.total = 0
        """Runs added so far."""
        self._status: dict[str, _Tally] = {}
        self._user: dict[str, _Tally] = {}
        self._user_info: dict[str, tuple[str, str]] = {}
        self._workforce: dict[str, _Tally] = {}
        self._workforce_info: dict[str, tuple[str, str]] = {}
        self._sentiment: dict[str | None, _Tally] = {}
        self._usd = ExactSum()
        self._credits = ExactSum()
        self._durations: list[int] = []
        self._first: datetime | None = None
        self._last: datetime | None = None

    def add(self, run: Run) -> None:
        """Count one run."""
        self.total += 1
        cost = run.cost_usd
        self._usd.add(cost)
        self._credits.add(run.cost_credits)
        _tally(self._status, run.status).add(cost)
        user = run.user
        self._user_info[user.id] = (user.name, user.email)
        _tally(self._user, user.id).add(cost)
        force = run.workforce
        self._workforce_info[force.id] = (force.name, force.type)
        _tally(self._workforce, force.id).add(cost)
        _tally(self._sentiment, run.last_reaction_sentiment).add(cost)
        if self.bucket is not None:
            self._add_to_series(run)
        elif run.duration_ms is not None:
            self._durations.append(run.duration_ms)
        created = run.created_at
        if self._first is None or created < self._first:
            self._first = created
        if self._last is None or created > self._last:
            self._last = created

    def _add_to_series(self, run: Run) -> None:
        assert self.bucket is not None
        index = bucket_index(run.created_at, self.bucket)
        slot = self._slots.get(index)
        if slot is None:
            low, high = self._span or (index, index)
            low, high = min(low, index), max(high, index)
            if high - low + 1 > MAX_TIME_BUCKETS:
                raise too_many_buckets(self.bucket, high - low + 1, low, high)
            self._span = (low, high)
            slot = self._slots[index] = _Slot()
        slot.add(run)

    def _series(self) -> list[TimeBucket] | None:
        bucket = self.bucket
        if bucket is None:
            return None
        if self._span is None:
            return []
        low, high = self._span
        since, until = self._since, self._until
        series = []
        for index in range(low, high + 1):
            slot = self._slots.get(index) or _Slot()
            start, end = index_start(index, bucket), index_end(index, bucket)
            errors = slot.statuses.get("error", 0)
            series.append(
                TimeBucket(
                    start=start,
                    end=end,
                    partial=(since is not None and since > start)
                    or (until is not None and until < end),
                    total=slot.count,
                    by_status=dict(sorted(slot.statuses.items(), key=lambda kv: (-kv[1], kv[0]))),
                    error_count=errors,
                    error_rate=_share(errors, slot.count),
                    cost_usd=slot.usd.value(),
                    cost_credits=slot.credits.value(),
                    duration=_durations(slot.durations),
                )
            )
        return series

    def result(self, *, complete: bool = True) -> RunSummary:
        """The summary of the runs added so far; ``complete=False`` says more matched."""
        total = self.total
        if self.bucket is not None:  # the durations are kept per bucket only
            self._durations = list(
                itertools.chain.from_iterable(s.durations for s in self._slots.values())
            )
        errors = self._status["error"].count if "error" in self._status else 0
        users, forces = self._user_info, self._workforce_info
        return RunSummary(
            total=total,
            complete=complete,
            by_status=_buckets(self._status, total, Bucket),
            by_user=_buckets(
                self._user,
                total,
                UserBucket,
                lambda k: {"name": users[k][0], "email": users[k][1]},
            ),
            by_workforce=_buckets(
                self._workforce,
                total,
                WorkforceBucket,
                lambda k: {"name": forces[k][0], "type": forces[k][1]},
            ),
            by_sentiment=_buckets(self._sentiment, total, Bucket),
            error_count=errors,
            error_rate=_share(errors, total),
            cost_usd_total=self._usd.value(),
            cost_credits_total=self._credits.value(),
            duration=_durations(self._durations),
            first_run_at=self._first,
            last_run_at=self._last,
            bucket=self.bucket,
            series=self._series(),
        )


_K = TypeVar("_K")


def _tally(tallies: dict[_K, _Tally], key: _K) -> _Tally:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = _Tally()
    return tally


def summarize(
    runs: Iterable[Run],
    *,
    max_runs: int | None = None,
    bucket: BucketSize | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RunSummary:
    """Compute the rollups over ``runs`` (consumed once, streaming; see
    :class:`SummaryBuilder` for what is kept).

    With ``max_runs``, at most that many runs are read and ``complete`` says whether the
    input ended within the bound. With ``bucket`` (``"hour"``, ``"day"``, ``"week"``;
    UTC, weeks start on Monday), ``series`` holds one :class:`TimeBucket` per bucket of
    ``[since, until)`` (open ends: the first or last run's bucket), empty ones included.
    """
    if max_runs is not None and max_runs < 1:
        raise ValueError("max_runs: expected 1 or more")
    builder = SummaryBuilder(bucket=bucket, since=since, until=until)
    iterator = iter(runs)
    for run in iterator:
        if max_runs is not None and builder.total >= max_runs:
            return builder.result(complete=False)
        builder.add(run)
    return builder.result()
