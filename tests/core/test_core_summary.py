"""summarize(): the numbers equal a straightforward recomputation, written here."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.runs import make_run
from timbal_integrations import Run, TimbalClient
from timbal_integrations.emulator import Emulator
from timbal_integrations.summary import ExactSum, SummaryBuilder, percentile, summarize

# --- percentile ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([5], 50, 5),
        ([5], 95, 5),
        ([5], 100, 5),
        ([1, 2], 50, 1),
        ([1, 2], 51, 2),
        ([1, 2, 3, 4], 50, 2),
        ([1, 2, 3, 4], 75, 3),
        ([1, 2, 3, 4], 76, 4),
        (list(range(1, 21)), 95, 19),
        (list(range(1, 101)), 95, 95),
        (list(range(1, 101)), 7, 7),  # 7/100*100 is 7.000000000000001 in floating point
        (list(range(1, 101)), 100, 100),
        (list(range(1, 101)), 0.001, 1),
        ([3, 3, 3, 9], 50, 3),
    ],
)
def test_percentile_nearest_rank(values: list[int], p: float, expected: int | None) -> None:
    assert percentile(values, p) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(n=st.integers(min_value=1, max_value=5000), p=st.integers(min_value=1, max_value=100))
def test_percentile_matches_exact_integer_rank(n: int, p: int) -> None:
    values = list(range(10, 10 + n))
    rank = -(-p * n // 100)  # ceil(p * n / 100), in exact integer arithmetic
    assert percentile(values, p) == values[rank - 1]


# --- an independent recomputation ------------------------------------------------------


def _ordered(counts: Mapping[Any, int]) -> list[Any]:
    return sorted(counts, key=lambda k: (-counts[k], "" if k is None else str(k)))


def recompute(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary of API-JSON runs, computed from scratch with plain Python."""
    total = len(records)

    def buckets(key_of: Any, extra: Any = None) -> list[dict[str, Any]]:
        counts: dict[Any, int] = {}
        costs: dict[Any, list[float]] = {}
        for r in records:
            k = key_of(r)
            counts[k] = counts.get(k, 0) + 1
            costs.setdefault(k, []).append(r["cost_usd"])
        out = []
        for k in _ordered(counts):
            item = {
                "key": k,
                "count": counts[k],
                "share": round(counts[k] / total, 6),
                "cost_usd": math.fsum(costs[k]),
            }
            if extra is not None:
                item.update(extra(k))
            out.append(item)
        return out

    users = {r["user"]["id"]: r["user"] for r in records}
    forces = {r["workforce"]["id"]: r["workforce"] for r in records}
    durations = sorted(r["duration_ms"] for r in records if r["duration_ms"] is not None)

    def nearest_rank(p: int) -> int | None:
        if not durations:
            return None
        value: int = durations[-(-p * len(durations) // 100) - 1]
        return value

    times = [datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) for r in records]
    errors = sum(1 for r in records if r["status"] == "error")
    return {
        "total": total,
        "by_status": buckets(lambda r: r["status"]),
        "by_user": buckets(
            lambda r: r["user"]["id"],
            lambda k: {"name": users[k]["name"], "email": users[k]["email"]},
        ),
        "by_workforce": buckets(
            lambda r: r["workforce"]["id"],
            lambda k: {"name": forces[k]["name"], "type": forces[k]["type"]},
        ),
        "by_sentiment": buckets(lambda r: r["last_reaction_sentiment"]),
        "error_count": errors,
        "error_rate": round(errors / total, 6) if total else 0.0,
        "cost_usd_total": math.fsum(r["cost_usd"] for r in records),
        "cost_credits_total": math.fsum(r["cost_credits"] for r in records),
        "duration": {
            "count": len(durations),
            "p50_ms": nearest_rank(50),
            "p95_ms": nearest_rank(95),
            "max_ms": durations[-1] if durations else None,
        },
        "first_run_at": min(times) if times else None,
        "last_run_at": max(times) if times else None,
    }


def check(summary_dict: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if name in ("first_run_at", "last_run_at"):
            continue
        assert summary_dict[name] == value, name


# --- small hand-made data ----------------------------------------------------------------


def _runs(records: list[dict[str, Any]]) -> list[Run]:
    return [Run.model_validate(r) for r in records]


SMALL = [
    make_run(0, status="success", duration_ms=100, cost_usd=0.1, cost_credits=10.0),
    make_run(1, status="error", duration_ms=300, cost_usd=0.2, cost_credits=20.0),
    make_run(2, status="error", duration_ms=200, cost_usd=0.3, cost_credits=30.0,
             last_reaction_sentiment="negative",
             user={"id": "usr_2", "name": "Bob", "email": "bob@example.test"}),
    make_run(3, status="running", duration_ms=None, cost_usd=0.0, cost_credits=0.0,
             workforce={"id": "wf_2", "name": "triage", "type": "workflow"}),
]  # fmt: skip


def test_small_summary_by_hand() -> None:
    s = summarize(_runs(SMALL))
    assert s.total == 4
    assert s.complete
    assert [(b.key, b.count) for b in s.by_status] == [("error", 2), ("running", 1), ("success", 1)]
    assert s.by_status[0].share == 0.5
    assert s.by_status[0].cost_usd == pytest.approx(0.5)
    assert [(b.key, b.count, b.name) for b in s.by_user] == [
        ("usr_1", 3, "Ada"),
        ("usr_2", 1, "Bob"),
    ]
    assert [(b.key, b.type) for b in s.by_workforce] == [("wf_1", "agent"), ("wf_2", "workflow")]
    assert [(b.key, b.count) for b in s.by_sentiment] == [(None, 3), ("negative", 1)]
    assert s.error_count == 2
    assert s.error_rate == 0.5
    assert s.cost_usd_total == pytest.approx(0.6)
    assert s.cost_credits_total == 60.0
    assert s.duration.count == 3
    assert s.duration.p50_ms == 200
    assert s.duration.p95_ms == 300
    assert s.duration.max_ms == 300
    assert s.first_run_at == datetime(2025, 12, 1, 0, 0, 0, tzinfo=UTC)
    assert s.last_run_at == datetime(2025, 12, 1, 0, 0, 3, tzinfo=UTC)
    check(s.to_dict(), recompute(SMALL))


def test_empty_summary() -> None:
    s = summarize([])
    assert s.total == 0
    assert s.complete
    assert s.by_status == []
    assert s.error_rate == 0.0
    assert s.cost_usd_total == 0.0
    assert s.duration.count == 0
    assert s.duration.p50_ms is None
    assert s.duration.max_ms is None
    assert s.first_run_at is None
    assert s.last_run_at is None


def test_to_dict_is_json_ready() -> None:
    d = summarize(_runs(SMALL)).to_dict()
    assert d["first_run_at"] == "2025-12-01T00:00:00Z"
    assert isinstance(d["by_status"][0], dict)


class Counting:
    """An iterator over runs that counts how many were taken."""

    def __init__(self, runs: list[Run]) -> None:
        self._runs = runs
        self.taken = 0

    def __iter__(self) -> Iterator[Run]:
        for run in self._runs:
            self.taken += 1
            yield run


@pytest.mark.parametrize(
    ("max_runs", "total", "complete"), [(1, 1, False), (3, 3, False), (4, 4, True), (9, 4, True)]
)
def test_max_runs(max_runs: int, total: int, complete: bool) -> None:
    source = Counting(_runs(SMALL))
    s = summarize(source, max_runs=max_runs)
    assert s.total == total
    assert s.complete is complete
    assert source.taken <= max_runs + 1  # at most one look-ahead
    check(s.to_dict(), recompute(SMALL[:total]))


@pytest.mark.parametrize("bad", [0, -1])
def test_max_runs_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_runs"):
        summarize([], max_runs=bad)


# --- on the emulator's data ---------------------------------------------------------------


def test_summary_of_everything_equals_recomputation(timbal_emulator: Emulator) -> None:
    with TimbalClient(env=timbal_emulator.env()) as client:
        s = summarize(client.list_runs())
    expected = recompute(timbal_emulator.runs)
    check(s.to_dict(), expected)
    assert s.total == 3000
    assert s.complete
    assert s.first_run_at == expected["first_run_at"]
    assert s.last_run_at == expected["last_run_at"]
    assert sum(b.count for b in s.by_status) == 3000
    running = sum(1 for r in timbal_emulator.runs if r["status"] == "running")
    assert s.duration.count == 3000 - running > 0


def test_summary_of_a_filter_equals_recomputation(timbal_emulator: Emulator) -> None:
    with TimbalClient(env=timbal_emulator.env()) as client:
        s = summarize(client.list_runs(workforce_id="wf_research", roots=True))
    records = [
        r
        for r in timbal_emulator.runs
        if r["workforce"]["id"] == "wf_research" and r["parent_id"] is None
    ]
    check(s.to_dict(), recompute(records))
    assert s.total == len(records) > 0


def test_summary_bound_stops_paging(timbal_emulator: Emulator) -> None:
    with TimbalClient(env=timbal_emulator.env()) as client:
        s = summarize(client.list_runs(), max_runs=100)
        requests = client.requests_made
    assert s.total == 100
    assert not s.complete
    assert requests == 3  # 100 runs and one look-ahead, 50 per page
    check(s.to_dict(), recompute(timbal_emulator.runs[:100]))


# --- the fold ------------------------------------------------------------------------------

_COSTS = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
_RUN = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["success", "error", "cancelled", "running"]),
        "cost_usd": _COSTS,
        "cost_credits": _COSTS,
        "duration_ms": st.none() | st.integers(min_value=0, max_value=10**9),
        "user": st.sampled_from(["usr_1", "usr_2", "usr_3"]),
        "sentiment": st.none() | st.sampled_from(["positive", "negative"]),
        "second": st.integers(min_value=0, max_value=86_399),
    }
)


def _run_of(i: int, spec: dict[str, Any]) -> Run:
    second = spec["second"]
    clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return Run.model_validate(
        make_run(
            i,
            status=spec["status"],
            cost_usd=spec["cost_usd"],
            cost_credits=spec["cost_credits"],
            duration_ms=spec["duration_ms"],
            last_reaction_sentiment=spec["sentiment"],
            created_at=f"2025-12-01T{clock}Z",
            user={"id": spec["user"], "name": spec["user"], "email": f"{spec['user']}@x.test"},
        )
    )


@settings(max_examples=60, deadline=None)
@given(specs=st.lists(_RUN, max_size=60), cut=st.integers(min_value=1, max_value=70))
def test_the_builder_is_summarize(specs: list[dict[str, Any]], cut: int) -> None:
    runs = [_run_of(i, spec) for i, spec in enumerate(specs)]
    builder = SummaryBuilder()
    for run in runs:
        builder.add(run)
    assert builder.total == len(runs)
    assert builder.result() == summarize(runs)
    # summarize(max_runs=) is the builder stopped early
    partial = SummaryBuilder()
    for run in runs[:cut]:
        partial.add(run)
    assert partial.result(complete=len(runs) <= cut) == summarize(runs, max_runs=cut)
    # exact sums: the same as math.fsum over every cost, in whatever order
    assert builder.result().cost_usd_total == math.fsum(r.cost_usd for r in runs)
    assert summarize(list(reversed(runs))).cost_usd_total == math.fsum(r.cost_usd for r in runs)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)))
def test_exact_sum_is_fsum(values: list[float]) -> None:
    total = ExactSum()
    for value in values:
        total.add(value)
    assert total.value() == math.fsum(values)


def test_exact_sum_where_a_plain_sum_drifts() -> None:
    total = ExactSum()
    for value in [0.1] * 10 + [1e16, 1.0, -1e16]:
        total.add(value)
    assert total.value() == math.fsum([0.1] * 10 + [1e16, 1.0, -1e16]) == 2.0
    assert sum([0.1] * 10 + [1e16, 1.0, -1e16]) != 2.0
