"""History shapes: even (the default), growing and bursty; deterministic per seed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from timbal_integrations.emulator import FIXED_END, SHAPES, EmulatorClock, create_app, generate_runs

# Issue 15's measured history: 8,000 runs over 30 days in 8 equal-time windows.
GROWING = (8, 71, 226, 489, 876, 1397, 2060, 2873)
START = FIXED_END - timedelta(days=30)


def windows(runs: list[dict[str, Any]], count: int = 8) -> list[int]:
    width = timedelta(days=30) / count
    got = Counter((datetime.fromisoformat(r["created_at"]) - START) // width for r in runs)
    return [got[k] for k in range(count)]


def hours(runs: list[dict[str, Any]]) -> Counter[int]:
    return Counter(datetime.fromisoformat(r["created_at"]).hour for r in runs)


def test_shapes() -> None:
    assert SHAPES == ("even", "growing", "bursty")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_growing_matches_the_measured_history(seed: int) -> None:
    got = windows(generate_runs(8000, seed=seed, shape="growing"))
    assert sum(got) == 8000
    assert got == sorted(got)  # every window busier than the one before
    assert got[0] <= 20
    for have, want in zip(got[1:], GROWING[1:], strict=True):
        assert abs(have - want) <= max(25, want * 0.15), (got, GROWING)


def test_even_is_even_and_growing_is_not() -> None:
    even = windows(generate_runs(8000, seed=1))
    assert max(even) < 1.2 * min(even)
    assert windows(generate_runs(8000, seed=1, shape="growing"))[-1] > 2.5 * max(even)


def test_bursty_has_a_few_short_bursts_holding_a_large_share() -> None:
    runs = generate_runs(8000, seed=1, shape="bursty")
    per_hour = Counter(
        (datetime.fromisoformat(r["created_at"]) - START) // timedelta(hours=1) for r in runs
    )
    busiest = [hour for hour, _ in per_hour.most_common(8)]  # 8 of 720 hours
    in_bursts = sum(per_hour[h] for h in busiest)
    assert in_bursts > 0.35 * len(runs)
    quiet = sorted(per_hour.values())[len(per_hour) // 2]  # the median hour
    assert per_hour[busiest[0]] > 50 * quiet
    # A bad deploy: runs in a burst fail far more often than the rest.
    burst_runs = [
        r
        for r in runs
        if (datetime.fromisoformat(r["created_at"]) - START) // timedelta(hours=1) in busiest
    ]
    rest = [r for r in runs if r not in burst_runs]

    def error_rate(group: list[dict[str, Any]]) -> float:
        finished = [r for r in group if r["status"] != "running"]
        return sum(r["status"] == "error" for r in finished) / len(finished)

    assert error_rate(burst_runs) > 2.5 * error_rate(rest)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_keep_working_hours_and_are_deterministic(shape: str) -> None:
    runs = generate_runs(6000, seed=4, shape=shape)
    assert runs == generate_runs(6000, seed=4, shape=shape)
    assert runs != generate_runs(6000, seed=5, shape=shape)
    if shape != "bursty":  # bursts come when they come
        by_hour = hours(runs)
        assert sum(by_hour[h] for h in (10, 11, 13, 14)) > 2.5 * sum(
            by_hour[h] for h in (1, 2, 3, 4)
        )
    times = [r["created_at"] for r in runs]
    assert len(set(times)) == len(times)
    assert all(START <= datetime.fromisoformat(t) < FIXED_END for t in times)


def test_shape_reaches_create_app_and_a_live_future() -> None:
    growing = create_app(runs=3000, shape="growing")
    assert windows(growing.runs) == windows(generate_runs(3000, shape="growing"))
    clock = EmulatorClock(FIXED_END)
    even = create_app(runs=3000, live=True, clock=EmulatorClock(FIXED_END))
    live = create_app(runs=3000, live=True, clock=clock, shape="growing")
    clock.advance(timedelta(days=1))
    even.clock.advance(timedelta(days=1))  # type: ignore[union-attr]
    # The future goes on at the rate the history ends with: 10/3 of the mean for growing.
    assert len(live.runs) - 3000 > 2.5 * (len(even.runs) - 3000)
    with pytest.raises(ValueError, match="shape"):
        create_app(runs=10, shape="lumpy")
