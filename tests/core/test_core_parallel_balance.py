"""Work that balances itself: pieces split while they are fetched, and every run still
comes once, in order, for both clients, on even, growing and bursty histories, on runs
sharing milliseconds, through faults, and when the consumer stops early.

The split arithmetic is pinned sans-I/O first; the rest runs against the emulator.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.core.helpers_core import KINDS, Driver
from tests.support.runs import make_run
from timbal_integrations import AsyncTimbalClient, RetryPolicy, RunQuery
from timbal_integrations.client import Piece, PieceSplit, WindowPage
from timbal_integrations.client._pieces import cut_at, kept, split_point, take_page
from timbal_integrations.emulator import FIXED_END, Emulator
from timbal_integrations.errors import APIStatusError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_MS = (FIXED_END - EPOCH) // timedelta(milliseconds=1)
PATIENT = RetryPolicy(max_retries=25)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def driver(kind: str, emu: Emulator, **kwargs: Any) -> Driver:
    return Driver(kind, env=emu.env(), **kwargs)


def ids_in(emu: Emulator, order: str) -> list[str]:
    expected = [run["id"] for run in emu.runs]  # newest first
    return expected if order == "desc" else expected[::-1]


# --- the boundaries, sans-I/O ----------------------------------------------------------------


def test_a_split_point_lies_strictly_inside_the_unfetched_range() -> None:
    assert split_point(10, 11, descending=False) is None  # one millisecond: cannot split
    assert split_point(10, 12, descending=False) == 11
    assert split_point(10, 12, descending=True) == 11
    for lo, hi in [(0, 2), (0, 3), (5, 100), (7, 8_000_000)]:
        for descending in (False, True):
            at = split_point(lo, hi, descending)
            assert at is not None
            assert lo < at < hi


def test_the_owner_stops_before_the_split_point_and_the_thief_starts_at_it() -> None:
    times = [5, 7, 7, 7, 9]  # three runs share 7 ms
    assert kept(times, 7, descending=False) == 1  # ascending: runs at 7 belong to the thief
    assert kept(times, 8, descending=False) == 4
    assert kept(times[::-1], 7, descending=True) == 4  # descending: 7 stays, 5 goes
    assert kept(times[::-1], 8, descending=True) == 1


def test_a_page_cut_at_the_stop_ends_its_piece() -> None:
    from timbal_integrations._pages import parse_raw_page

    runs = [make_run(i, created_at=f"2025-12-01T00:00:0{i}Z") for i in range(4)]
    import orjson

    page = parse_raw_page(orjson.dumps({"runs": runs, "next_page_token": "t"}))
    stop = (datetime(2025, 12, 1, 0, 0, 2, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
    cut, times = take_page(page, stop, descending=False)
    assert [r["id"] for r in cut.runs] == ["run_00000", "run_00001"]
    assert cut.next_page_token is None
    assert len(times) == 2
    whole, _ = take_page(page, stop + 10_000, descending=False)
    assert whole is page
    assert cut_at(page, 0).runs == []


# --- exactness against the emulator ------------------------------------------------------------


@pytest.mark.parametrize("shape", ["even", "growing", "bursty"])
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("parallel", [3, "auto"])
def test_balanced_listing_is_exact_on_every_shape(
    timbal_emulator_factory: Any, kind: str, shape: str, order: str, parallel: int | str
) -> None:
    emu = timbal_emulator_factory(runs=2500, seed=3, page_size=20, shape=shape)
    got = driver(kind, emu).list_runs(parallel=parallel, until=FIXED_END, sort_order=order)
    assert [run.id for run in got] == ids_in(emu, order)


def shared_millisecond_runs() -> list[dict[str, Any]]:
    """1,200 runs in 60 distinct milliseconds (20 each), spread over a day."""
    runs = []
    start = datetime(2025, 12, 31, tzinfo=UTC)
    for i in range(1200):
        moment = start + timedelta(minutes=24 * (i // 20), microseconds=0)
        created = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        runs.append(make_run(i, id=f"run_{(i * 7919) % 100_000:05d}", created_at=created))
    return runs


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("parallel", [8, "auto"])
def test_runs_sharing_milliseconds_are_never_lost_or_doubled_by_a_split(
    timbal_emulator_factory: Any, kind: str, order: str, parallel: int | str
) -> None:
    emu = timbal_emulator_factory(runs=shared_millisecond_runs(), page_size=7)
    got = driver(kind, emu).list_runs(parallel=parallel, until=FIXED_END, sort_order=order)
    assert [run.id for run in got] == ids_in(emu, order)


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_every_split_is_announced_and_pieces_partition_the_range(
    timbal_emulator_factory: Any, order: str
) -> None:
    emu = timbal_emulator_factory(runs=shared_millisecond_runs(), page_size=7)
    query = RunQuery(until=FIXED_END, sort_order=order)

    async def go() -> tuple[list[Piece], list[PieceSplit], dict[int, list[str]]]:
        async with AsyncTimbalClient(env=emu.env()) as client:
            # One piece for four workers: three start idle and must split it, whatever
            # the timing (four even pieces may all end together, with nothing to split).
            pieces = await client.resolve_pieces(query, 1)
            splits: list[PieceSplit] = []
            runs: dict[int, list[str]] = {}
            async for item in client.iter_pieces(query, pieces, parallel=4):
                if isinstance(item, PieceSplit):
                    assert item.new.id not in runs  # announced before its first page
                    splits.append(item)
                else:
                    runs.setdefault(item.window, []).extend(r.id for r in item.page.runs)
            return pieces, splits, runs

    pieces, splits, runs = asyncio.run(go())
    assert splits, "nothing was split"
    ranges = {p.id: (p.since_ms, p.until_ms) for p in pieces}
    for split in splits:
        lo, hi = ranges[split.piece]
        assert lo < split.at_ms < hi
        ranges[split.piece] = (split.at_ms, hi) if order == "desc" else (lo, split.at_ms)
        ranges[split.new.id] = (split.new.since_ms, split.new.until_ms)
    bounds = sorted(ranges.values())
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # no gap, no overlap
    by_time = sorted(ranges, key=lambda i: ranges[i][0], reverse=order == "desc")
    assert [run for i in by_time for run in runs.get(i, [])] == ids_in(emu, order)


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_faults_mid_split_keep_the_listing_exact(
    timbal_emulator_factory: Any, kind: str, order: str
) -> None:
    emu = timbal_emulator_factory(
        runs=3000,
        seed=5,
        page_size=20,
        shape="growing",
        fault_rate=0.2,
        fault_kinds=("429", "500", "503", "drop"),
        retry_after=0,
    )
    got = driver(kind, emu, retry_policy=PATIENT).list_runs(
        parallel=8, until=FIXED_END, sort_order=order
    )
    assert [run.id for run in got] == ids_in(emu, order)
    assert emu.stats.faults_total > 10


@pytest.mark.parametrize("parallel", [8, "auto"])
def test_a_consumer_that_stops_early_gets_a_prefix_and_stops_the_requests(
    timbal_emulator_factory: Any, kind: str, parallel: int | str
) -> None:
    emu = timbal_emulator_factory(runs=4000, seed=2, page_size=20, shape="bursty")
    d = driver(kind, emu)
    got = d.list_runs(parallel=parallel, until=FIXED_END, take=333)
    assert [run.id for run in got] == ids_in(emu, "desc")[:333]
    # Closing stopped every worker: what the server saw is what the client sent (a
    # request cancelled before it left is counted by the client only), and no more.
    assert emu.request_log.total <= d.requests < 4000 // 20


def test_a_failing_worker_fails_the_listing_once(timbal_emulator_factory: Any, kind: str) -> None:
    emu = timbal_emulator_factory(
        runs=3000, seed=2, page_size=20, fault_rate=0.3, fault_kinds=("500",)
    )
    d = driver(kind, emu, retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(APIStatusError) as info:
        d.list_runs(parallel=8, until=FIXED_END)
    assert info.value.status_code == 500
    assert emu.request_log.total <= d.requests  # the other workers were stopped


def test_auto_within_a_rate_limit_sends_no_stream_of_429s(
    timbal_emulator_factory: Any, kind: str
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=4, page_size=20, rate_limit=40, latency_ms=5)
    attempts: list[int] = []
    d = driver(
        kind,
        emu,
        retry_policy=RetryPolicy(max_retries=3),
        on_retry=lambda details: attempts.append(details.attempt),
    )
    got = d.list_runs(parallel="auto", until=FIXED_END)
    assert [run.id for run in got] == ids_in(emu, "desc")
    assert emu.stats.rate_limited <= 3  # a handful at most, never a stream
    assert max(attempts, default=0) <= 1  # no request needed a second retry


def test_pieces_resume_from_their_tokens(timbal_emulator_factory: Any) -> None:
    """A piece given with a token and a narrowed range continues exactly there."""
    emu = timbal_emulator_factory(runs=600, seed=6, page_size=20)
    query = RunQuery(until=FIXED_END, sort_order="asc")

    async def go() -> list[str]:
        async with AsyncTimbalClient(env=emu.env()) as client:
            (whole,) = await client.resolve_pieces(query, 1)
            first = await client.get_runs_page(
                query.replace(
                    since=EPOCH + timedelta(milliseconds=whole.window_since_ms),
                    until=EPOCH + timedelta(milliseconds=whole.window_until_ms),
                )
            )
            middle = whole.since_ms + (whole.until_ms - whole.since_ms) // 2
            resumed = Piece(1, whole.since_ms, middle, *_window(whole), first.next_page_token)
            rest = Piece(2, middle, whole.until_ms, middle, whole.until_ms)
            got = [r.id for r in first.runs]
            async for item in client.iter_pieces(query, [resumed, rest], parallel=2, ordered=True):
                assert isinstance(item, WindowPage)
                got.extend(r.id for r in item.page.runs)
            return got

    assert asyncio.run(go()) == ids_in(emu, "asc")


def _window(piece: Piece) -> tuple[int, int]:
    return piece.window_since_ms, piece.window_until_ms
