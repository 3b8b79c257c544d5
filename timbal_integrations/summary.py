"""Exact rollups over every matching run: the numbers of ``timbal-runs summary`` and of the
MCP ``summarize_runs`` tool (one computation, two front ends).

Counts are exact; costs are exact running sums (equal to :func:`math.fsum` of every
cost); duration percentiles use the nearest-rank method over runs with a recorded
duration (running runs have none). :class:`SummaryBuilder` is the computation as a fold,
for sources that are not a plain iterable (an async listing): ``add`` each run, then
``result``; :func:`summarize` is a loop over it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from ._exact import ExactSum
from .models import Run

__all__ = [
    "Bucket",
    "DurationStats",
    "ExactSum",
    "RunSummary",
    "SummaryBuilder",
    "UserBucket",
    "WorkforceBucket",
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


class RunSummary(BaseModel):
    """Exact rollups of a set of runs.

    ``complete`` is False when a ``max_runs`` bound stopped the scan early; the numbers then
    cover the first ``total`` runs only.
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 strings)."""
        return self.model_dump(mode="json")


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


class SummaryBuilder:
    """The rollups of :func:`summarize` as a fold: ``add`` runs one at a time (from any
    source: a sync or an async listing), then ``result``.

    Counts are exact; costs are exact running sums (:class:`ExactSum`, equal to
    :func:`math.fsum` over every cost); durations are kept (one int per run that has
    one) for exact nearest-rank percentiles. Nothing else is kept per run, so memory
    grows with the number of distinct users, workforces and durations, not with the
    runs' size.

    To add a breakdown (say by day of ``created_at``), give it a dict of
    :class:`_Tally` keyed by the bucket, fill it in :meth:`add` and turn it into buckets
    in :meth:`result`: every breakdown is computed in the same single pass.
    """

    def __init__(self) -> None:
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
        if run.duration_ms is not None:
            self._durations.append(run.duration_ms)
        created = run.created_at
        if self._first is None or created < self._first:
            self._first = created
        if self._last is None or created > self._last:
            self._last = created

    def result(self, *, complete: bool = True) -> RunSummary:
        """The summary of the runs added so far; ``complete=False`` says more matched."""
        total = self.total
        durations = sorted(self._durations)
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
            duration=DurationStats(
                count=len(durations),
                p50_ms=percentile(durations, 50),
                p95_ms=percentile(durations, 95),
                max_ms=durations[-1] if durations else None,
            ),
            first_run_at=self._first,
            last_run_at=self._last,
        )


_K = TypeVar("_K")


def _tally(tallies: dict[_K, _Tally], key: _K) -> _Tally:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = _Tally()
    return tally


def summarize(runs: Iterable[Run], *, max_runs: int | None = None) -> RunSummary:
    """Compute the rollups over ``runs`` (consumed once, streaming; see
    :class:`SummaryBuilder` for what is kept).

    With ``max_runs``, at most that many runs are read and ``complete`` says whether the
    input ended within the bound.
    """
    if max_runs is not None and max_runs < 1:
        raise ValueError("max_runs: expected 1 or more")
    builder = SummaryBuilder()
    iterator = iter(runs)
    for run in iterator:
        if max_runs is not None and builder.total >= max_runs:
            return builder.result(complete=False)
        builder.add(run)
    return builder.result()
