"""A live emulator: runs appear, finish and gain reactions as its clock moves.

Everything is checked over real sockets against the emulator's ground truth at the
current clock (``emu.runs``, ``emu.details``, ``emu.reactions``), and every list body is
validated against the spec by the ``Any`` helper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from timbal_integrations.emulator import FIXED_END, Emulator, EmulatorClock, create_app

LOOKBACK = timedelta(days=3)


def created(run: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(run["created_at"])


@pytest.fixture
def live(timbal_emulator_factory: Any, make_api: Callable[..., Any]) -> Any:
    """Start a live emulator on a manual clock at FIXED_END; returns (emu, clock, api)."""

    def start(**kwargs: Any) -> tuple[Emulator, EmulatorClock, Any]:
        clock = EmulatorClock(FIXED_END)
        kwargs.setdefault("runs", 2000)
        emu = timbal_emulator_factory(live=True, clock=clock, **kwargs)
        return emu, clock, make_api(emu)

    return start


def test_history_at_start_then_new_runs_arrive(live: Any) -> None:
    emu, clock, api = live(runs=2000)
    assert emu.clock is clock
    assert len(emu.runs) == 2000  # the history: every run created before FIXED_END
    assert api.all() == emu.runs
    assert all(created(run) < FIXED_END for run in emu.runs)
    clock.advance(timedelta(days=1))
    now = clock.now()
    runs = emu.runs
    assert 2000 + 30 < len(runs) < 2000 + 150  # the history's rate goes on
    assert all(created(run) <= now for run in runs)
    assert api.all() == runs
    clock.advance(timedelta(days=-1))  # back in time: the future is gone again
    assert len(emu.runs) == 2000


def test_no_run_appears_before_its_created_at(live: Any) -> None:
    emu, clock, api = live(runs=500)
    seen = {run["id"] for run in emu.runs}
    for _ in range(12):
        clock.advance(timedelta(hours=2))
        now = clock.now()
        served = api.all(sort_order="asc")
        assert all(created(run) <= now for run in served)
        ids = {run["id"] for run in served}
        assert seen <= ids  # nothing vanishes by itself
        seen = ids


def _find(
    emu: Emulator, clock: EmulatorClock, step: timedelta, limit: int, test: Callable[..., bool]
) -> dict[str, Any]:
    for _ in range(limit):
        for run in emu.runs:
            if test(run, clock.now()):
                return run
        clock.advance(step)
    pytest.fail("no such run within the search")


def _until_finished(
    emu: Emulator, clock: EmulatorClock, api: Any, run_id: str, step: timedelta
) -> dict[str, Any]:
    """Advance by ``step`` until the run is final; checks each state as served."""
    for _ in range(200):
        before = clock.now()
        clock.advance(step)
        run = next(r for r in emu.runs if r["id"] == run_id)
        assert api.get(run_id).json()["status"] == run["status"]
        if run["status"] != "running":
            # It ended in the last step: its duration says when.
            end = created(run) + timedelta(milliseconds=run["duration_ms"])
            assert before < end <= clock.now()
            return run
        assert run["duration_ms"] is None
        assert run["cost_usd"] == run["cost_credits"] == 0
    pytest.fail("the run never finished")


def test_a_running_run_finishes_after_its_duration(live: Any) -> None:
    emu, clock, api = live(runs=3000)
    run = _find(emu, clock, timedelta(minutes=7), 400, lambda r, now: r["status"] == "running")
    detail = api.get(run["id"]).json()
    assert detail["status_detail"] is None
    assert detail["duration_ms"] is None
    trace = detail["trace"]
    spans = trace if isinstance(trace, list) else list(trace.values())
    assert next(s for s in spans if s["parent_call_id"] is None)["t1"] is None  # still open
    final = _until_finished(emu, clock, api, run["id"], timedelta(minutes=5))
    assert final["status"] in ("success", "error", "cancelled")
    detail = api.get(run["id"]).json()
    assert detail["status_detail"]["code"] == final["status"]
    assert final["cost_usd"] >= 0
    assert final["cost_credits"] == round(final["cost_usd"] * 100, 4)


def test_an_old_run_still_running_finishes_outside_the_lookback(live: Any) -> None:
    # Some runs take days: one created more than the lookback ago is still running, and
    # its end (status, duration, cost) happens when it is long out of any lookback.
    emu, clock, api = live(runs=3000)
    old = _find(
        emu,
        clock,
        timedelta(hours=6),
        40,
        lambda r, now: r["status"] == "running" and now - created(r) > LOOKBACK,
    )
    assert old in api.all(status="running")
    final = _until_finished(emu, clock, api, old["id"], timedelta(hours=3))
    assert clock.now() - created(final) > LOOKBACK
    assert final["duration_ms"] > LOOKBACK.total_seconds() * 1000
    assert final not in api.all(status="running")
    assert final in api.all(**{"to": int(created(final).timestamp() * 1000) + 1})


def test_reactions_arrive_after_the_run_some_days_later(live: Any) -> None:
    emu, clock, _api = live(runs=3000)
    finished = {run["id"]: run for run in emu.runs if run["status"] != "running"}
    without = {rid for rid, run in finished.items() if run["last_reaction_sentiment"] is None}
    late: list[str] = []
    for _ in range(12):  # 12 days, a day at a time
        clock.advance(timedelta(days=1))
        now = clock.now()
        for run in emu.runs:
            if run["id"] in without and run["last_reaction_sentiment"] is not None:
                without.discard(run["id"])
                end = created(run) + timedelta(milliseconds=run["duration_ms"])
                first = min(r["created_at"] for r in emu.reactions(run["id"]))
                assert end.timestamp() * 1000 <= first <= now.timestamp() * 1000
                if first - end.timestamp() * 1000 > LOOKBACK.total_seconds() * 1000:
                    late.append(run["id"])
    assert late, "some reactions come later than a 3-day lookback"
    assert len(without) < len(finished)  # most runs never get a reaction, some do


def test_sentiment_is_the_latest_visible_reaction(live: Any) -> None:
    emu, clock, _api = live(runs=1500)
    for step in (timedelta(0), timedelta(hours=20), timedelta(days=4)):
        clock.advance(step)
        with_sentiment = 0
        for run in emu.runs:
            reactions = emu.reactions(run["id"])
            expected = reactions[0]["sentiment"] if reactions else None
            assert run["last_reaction_sentiment"] == expected
            with_sentiment += expected is not None
            assert [r["created_at"] for r in reactions] == sorted(
                (r["created_at"] for r in reactions), reverse=True
            )
        assert with_sentiment > 50


def _served_bytes(emu: Emulator) -> str:
    digest = hashlib.sha256()
    with httpx.Client(headers=emu.headers()) as client:
        for params in ({}, {"sort_by": "cost_usd"}, {"status": "running"}):
            token = None
            for _ in range(6):
                query = {**params, **({"page_token": token} if token else {})}
                response = client.get(emu.runs_url, params=query)
                digest.update(response.content)
                token = response.json()["next_page_token"]
                if token is None:
                    break
        for run in emu.runs[:40]:
            digest.update(client.get(f"{emu.runs_url}/{run['id']}").content)
            digest.update(client.get(f"{emu.runs_url}/{run['id']}/reactions").content)
    return digest.hexdigest()


def test_same_seed_and_same_now_give_the_same_bytes(live: Any) -> None:
    first, clock1, _ = live(runs=1200, seed=5)
    second, clock2, _ = live(runs=1200, seed=5)
    other, clock3, _ = live(runs=1200, seed=6)
    assert _served_bytes(first) == _served_bytes(second) != _served_bytes(other)
    for clock in (clock1, clock2, clock3):
        clock.advance(timedelta(hours=30, milliseconds=17))
    assert _served_bytes(first) == _served_bytes(second) != _served_bytes(other)
    # A third emulator built later, jumped straight to the same moment: same bytes.
    third, clock4, _ = live(runs=1200, seed=5)
    clock4.set(clock1.now())
    assert _served_bytes(third) == _served_bytes(first)


def test_page_tokens_stay_exact_while_the_clock_moves(live: Any) -> None:
    emu, clock, api = live(runs=2000)
    clock.advance(timedelta(hours=1))
    at_start = [run["id"] for run in emu.runs]
    got: list[str] = []
    body = api.page()
    while True:
        got.extend(run["id"] for run in body["runs"])
        token = body["next_page_token"]
        if token is None:
            break
        clock.advance(timedelta(minutes=20))  # runs finish, react, appear between pages
        body = api.page(page_token=token)
    assert got == at_start  # newest first: new runs land before the cursor

    # Oldest first, new runs land after the cursor and are served once each.
    start = {run["id"] for run in emu.runs}
    got = []
    body = api.page(sort_order="asc")
    while True:
        got.extend(run["id"] for run in body["runs"])
        token = body["next_page_token"]
        if token is None:
            break
        clock.advance(timedelta(minutes=20))
        body = api.page(sort_order="asc", page_token=token)
    assert len(got) == len(set(got))
    assert start <= set(got) == {run["id"] for run in emu.runs}

    # Sorts on values that change stay valid too (a run may move past the cursor).
    for sort_by in ("duration_ms", "cost_usd"):
        body = api.page(sort_by=sort_by)
        while body["next_page_token"]:
            clock.advance(timedelta(minutes=30))
            body = api.page(sort_by=sort_by, page_token=body["next_page_token"])


def test_the_frozen_default_is_unchanged() -> None:
    # The data every other test and the benchmarks rely on, pinned byte for byte.
    app = create_app(runs=3000, seed=1)
    digest = hashlib.sha256(orjson.dumps(app.runs)).hexdigest()
    assert digest == "36ceffd19e73261cab5ed4bf07e2f974d2da2004811d5a35cc1ee965ed00cf29"
    assert app.clock is None
    app = create_app(runs=2000, seed=7, extra_fields=True)
    digest = hashlib.sha256(orjson.dumps(app.runs)).hexdigest()
    assert digest == "1545a6b8779ae70fed2f9e98aa6e24558de1adda44636ed25a357ba6d01dfc38"


def test_live_needs_no_clock_and_a_clock_needs_live() -> None:
    app = create_app(runs=10, live=True)  # a wall clock from `end`
    assert app.clock is not None
    assert app.clock.speed == 1.0
    with pytest.raises(ValueError, match="clock"):
        create_app(runs=10, clock=EmulatorClock(FIXED_END))
