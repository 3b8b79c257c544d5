"""Time series in the summary fold: UTC hour/day/week buckets (weeks start Monday), empty
buckets as zeros, exact per-bucket numbers, and a bound on the number of buckets."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.runs import make_run
from timbal_integrations import QueryError, Run, summarize
from timbal_integrations.defaults import MAX_TIME_BUCKETS
from timbal_integrations.emulator import FIXED_END, generate_runs
from timbal_integrations.summary import (
    SummaryBuilder,
    bucket_start,
    check_buckets,
    choose_bucket,
    percentile,
)


def runs_of(records: list[dict[str, Any]]) -> list[Run]:
    return [Run.model_validate(r) for r in records]


def floor(moment: datetime, bucket: str) -> datetime:
    """The bucket start, recomputed with calendar arithmetic (not the library's)."""
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    return day - timedelta(days=day.isoweekday() - 1)


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_every_bucket_is_exact_and_empty_ones_are_zeros(bucket: str) -> None:
    records = generate_runs(1500, seed=7)
    runs = runs_of(records)
    until = FIXED_END + timedelta(days=3)  # past the data: trailing empty buckets
    since = FIXED_END - timedelta(days=10 if bucket == "hour" else 40)
    inside = [r for r in runs if since <= r.created_at < until]
    summary = summarize(inside, bucket=bucket, since=since, until=until)  # type: ignore[arg-type]
    plain = summarize(inside)
    assert summary.bucket == bucket
    assert summary.model_dump(exclude={"bucket", "series"}) == plain.model_dump(
        exclude={"bucket", "series"}
    )
    series = summary.series
    assert series is not None
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
    assert series[0].start == floor(since, bucket)
    assert series[-1].end > until - timedelta(milliseconds=1) >= series[-1].start
    for before, after in itertools.pairwise(series):
        assert before.end == after.start
        assert after.start - before.start == step[bucket]
    groups: dict[datetime, list[Run]] = defaultdict(list)
    for run in inside:
        groups[floor(run.created_at, bucket)].append(run)
    assert sum(b.total for b in series) == len(inside)
    empties = 0
    for b in series:
        mine = groups.get(b.start, [])
        assert b.total == len(mine)
        empties += not mine
        counts: dict[str, int] = defaultdict(int)
        for run in mine:
            counts[run.status] += 1
        assert b.by_status == counts
        assert b.error_count == counts.get("error", 0)
        assert b.error_rate == (round(b.error_count / len(mine), 6) if mine else 0.0)
        assert b.cost_usd == math.fsum(r.cost_usd for r in mine)
        assert b.cost_credits == math.fsum(r.cost_credits for r in mine)
        durations = sorted(r.duration_ms for r in mine if r.duration_ms is not None)
        assert b.duration.count == len(durations)
        assert b.duration.p50_ms == percentile(durations, 50)
        assert b.duration.p95_ms == percentile(durations, 95)
        assert b.partial is (b.start < since or b.end > until)
        if bucket == "week":
            assert b.start.isoweekday() == 1  # Monday
        assert (b.start.hour, b.start.minute, b.start.tzinfo) == (0, 0, UTC) or bucket == "hour"
    assert empties >= (1 if bucket == "week" else 3)  # the days after the data
    data = summary.to_dict()
    assert data["series"][0]["start"].endswith("Z")
    assert "series" not in plain.to_dict()


def test_open_windows_take_their_ends_from_the_runs() -> None:
    runs = runs_of(
        [
            make_run(0, created_at="2026-03-04T10:30:00Z"),
            make_run(1, created_at="2026-03-06T01:00:00Z"),
        ]
    )
    summary = summarize(runs, bucket="day")
    assert summary.series is not None
    assert [b.start.day for b in summary.series] == [4, 5, 6]
    assert [b.total for b in summary.series] == [1, 0, 1]
    assert not any(b.partial for b in summary.series)
    assert summarize([], bucket="day").series == []
    only_until = summarize(runs, bucket="day", until=datetime(2026, 3, 8, tzinfo=UTC))
    assert only_until.series is not None
    assert [b.start.day for b in only_until.series] == [4, 5, 6, 7]


def test_weeks_start_on_monday_utc() -> None:
    sunday_night = datetime(2026, 3, 8, 23, 59, 59, tzinfo=UTC)
    monday = datetime(2026, 3, 9, tzinfo=UTC)
    assert bucket_start(sunday_night, "week") == datetime(2026, 3, 2, tzinfo=UTC)
    assert bucket_start(monday, "week") == monday
    # An offset time is bucketed by its UTC instant.
    paris = datetime.fromisoformat("2026-03-09T00:30:00+01:00")
    assert bucket_start(paris, "week") == datetime(2026, 3, 2, tzinfo=UTC)
    assert bucket_start(paris, "day") == datetime(2026, 3, 8, tzinfo=UTC)
    assert bucket_start(datetime(1969, 12, 31, 12), "week") == datetime(1969, 12, 29, tzinfo=UTC)


def test_the_number_of_buckets_is_bounded() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert check_buckets("hour", since, since + timedelta(hours=MAX_TIME_BUCKETS)) == 1000
    with pytest.raises(QueryError) as caught:
        check_buckets("hour", since, since + timedelta(hours=MAX_TIME_BUCKETS, milliseconds=1))
    assert caught.value.field == "bucket"
    assert "1,001 hour buckets" in caught.value.reason
    assert "day or week" in caught.value.reason
    with pytest.raises(QueryError, match="bucket"):
        SummaryBuilder(bucket="hour", since=since, until=since + timedelta(days=60))
    # An open window: the fold refuses as soon as the runs reach past the bound.
    builder = SummaryBuilder(bucket="hour")
    builder.add(Run.model_validate(make_run(0, created_at="2026-01-01T00:00:00Z")))
    with pytest.raises(QueryError, match="1,001 hour buckets"):
        builder.add(Run.model_validate(make_run(1, created_at="2026-02-11T16:00:00Z")))
    with pytest.raises(QueryError, match="'minute' is not one of hour, day, week"):
        summarize([], bucket="minute")  # type: ignore[arg-type]
    assert check_buckets("day", None, since) == 0


def test_choose_bucket() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert choose_bucket(start, start + timedelta(hours=30)) == "hour"
    assert choose_bucket(start, start + timedelta(days=30)) == "day"
    assert choose_bucket(start, start + timedelta(days=400)) == "week"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 90 * 24 * 3600 * 1000), min_size=1, max_size=40),
    st.sampled_from(["hour", "day", "week"]),
)
def test_each_run_falls_in_its_bucket(offsets: list[int], bucket: str) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        Run.model_validate(make_run(i, created_at=(base + timedelta(milliseconds=ms)).isoformat()))
        for i, ms in enumerate(offsets)
    ]
    if bucket == "hour" and max(offsets) - min(offsets) > (MAX_TIME_BUCKETS - 1) * 3_600_000:
        with pytest.raises(QueryError):
            summarize(runs, bucket="hour")
        return
    summary = summarize(runs, bucket=bucket)  # type: ignore[arg-type]
    assert summary.series is not None
    assert sum(b.total for b in summary.series) == len(runs)
    for run in runs:
        holders = [b for b in summary.series if b.start <= run.created_at < b.end]
        assert len(holders) == 1
        assert holders[0].total >= 1
