"""Exact rollups over every matching run: the numbers of ``timbal-runs summary`` and of the
MCP ``summarize_runs`` tool (one computation, two front ends).

Counts are exact; costs are summed with :func:`math.fsum`; duration percentiles use the
nearest-rank method over runs with a recorded duration (running runs have none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from .models import Run

__all__ = [
    "Bucket",
    "DurationStats",
    "RunSummary",
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


_B = TypeVar("_B", bound=Bucket)


def _buckets(
    costs: dict[Any, list[float]],
    total: int,
    model: type[_B],
    extra: Callable[[Any], dict[str, str]] = lambda _key: {},
) -> list[_B]:
    """One bucket per key of ``costs`` (the cost of each run, so its length is the count),
    largest first; ties by key so the order is stable."""
    order = sorted(costs, key=lambda k: (-len(costs[k]), "" if k is None else str(k)))
    return [
        model(
            key=k,
            count=len(costs[k]),
            share=_share(len(costs[k]), total),
            cost_usd=math.fsum(costs[k]),
            **extra(k),
        )
        for k in order
    ]


def summarize(runs: Iterable[Run], *, max_runs: int | None = None) -> RunSummary:
    """Compute the rollups over ``runs`` (consumed once, streaming; only durations are kept).

    With ``max_runs``, at most that many runs are read and ``complete`` says whether the
    input ended within the bound.
    """
    if max_runs is not None and max_runs < 1:
        raise ValueError("max_runs: expected 1 or more")
    total = 0
    complete = True
    status_cost: dict[str, list[float]] = {}
    user_info: dict[str, tuple[str, str]] = {}
    user_cost: dict[str, list[float]] = {}
    force_info: dict[str, tuple[str, str]] = {}
    force_cost: dict[str, list[float]] = {}
    sentiment_cost: dict[str | None, list[float]] = {}
    usd: list[float] = []
    credits: list[float] = []
    durations: list[int] = []
    first: datetime | None = None
    last: datetime | None = None
    iterator = iter(runs)
    while True:
        if max_runs is not None and total >= max_runs:
            complete = next(iterator, None) is None
            break
        run = next(iterator, None)
        if run is None:
            break
        total += 1
        cost = run.cost_usd
        usd.append(cost)
        credits.append(run.cost_credits)
        status_cost.setdefault(run.status, []).append(cost)
        uid = run.user.id
        user_info[uid] = (run.user.name, run.user.email)
        user_cost.setdefault(uid, []).append(cost)
        wid = run.workforce.id
        force_info[wid] = (run.workforce.name, run.workforce.type)
        force_cost.setdefault(wid, []).append(cost)
        mood = run.last_reaction_sentiment
        sentiment_cost.setdefault(mood, []).append(cost)
        if run.duration_ms is not None:
            durations.append(run.duration_ms)
        created = run.created_at
        if first is None or created < first:
            first = created
        if last is None or created > last:
            last = created
    durations.sort()
    errors = len(status_cost.get("error", ()))
    return RunSummary(
        total=total,
        complete=complete,
        by_status=_buckets(status_cost, total, Bucket),
        by_user=_buckets(
            user_cost,
            total,
            UserBucket,
            lambda k: {"name": user_info[k][0], "email": user_info[k][1]},
        ),
        by_workforce=_buckets(
            force_cost,
            total,
            WorkforceBucket,
            lambda k: {"name": force_info[k][0], "type": force_info[k][1]},
        ),
        by_sentiment=_buckets(sentiment_cost, total, Bucket),
        error_count=errors,
        error_rate=_share(errors, total),
        cost_usd_total=math.fsum(usd),
        cost_credits_total=math.fsum(credits),
        duration=DurationStats(
            count=len(durations),
            p50_ms=percentile(durations, 50),
            p95_ms=percentile(durations, 95),
            max_ms=durations[-1] if durations else None,
        ),
        first_run_at=first,
        last_run_at=last,
    )
