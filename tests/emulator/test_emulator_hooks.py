"""Test hooks (update, add, remove, react, hold) and the request log, live and frozen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import FIXED_END, Emulator, EmulatorClock, generate_runs


@pytest.fixture(params=["frozen", "live"])
def emu_api(
    request: pytest.FixtureRequest,
    timbal_emulator_factory: Any,
    make_api: Callable[..., Any],
) -> tuple[Emulator, Any]:
    kwargs: dict[str, Any] = {"runs": 600, "seed": 3}
    if request.param == "live":
        kwargs.update(live=True, clock=EmulatorClock(FIXED_END))
    emu = timbal_emulator_factory(**kwargs)
    return emu, make_api(emu)


def served(api: Any, run_id: str) -> dict[str, Any]:
    listed = [run for run in api.all() if run["id"] == run_id]
    assert len(listed) == 1
    detail = api.get(run_id).json()
    assert {key: detail[key] for key in listed[0]} == listed[0]
    return detail


def test_update_run_changes_what_is_served(emu_api: tuple[Emulator, Any]) -> None:
    emu, api = emu_api
    run = emu.runs[10]
    detail = {"code": "error", "reason": "ToolError", "message": "it broke"}
    emu.update_run(
        run["id"],
        status="error",
        duration_ms=1234,
        cost_usd=0.5,
        cost_credits=50.0,
        last_reaction_sentiment="negative",
        status_detail=detail,
    )
    got = served(api, run["id"])
    assert (got["status"], got["duration_ms"], got["cost_usd"], got["cost_credits"]) == (
        "error",
        1234,
        0.5,
        50.0,
    )
    assert got["last_reaction_sentiment"] == "negative"
    assert got["status_detail"] == detail
    assert run["id"] in {r["id"] for r in api.all(status="error", sentiment="negative")}
    assert emu.runs[10]["status"] == "error"
    assert emu.details[10]["status_detail"] == detail
    if emu.clock is not None:  # fields set by a test win over the clock
        emu.clock.advance(timedelta(days=9))
        assert served(api, run["id"])["duration_ms"] == 1234
    with pytest.raises(ValueError, match="created_at"):
        emu.update_run(run["id"], created_at="2020-01-01T00:00:00Z")
    with pytest.raises(KeyError):
        emu.update_run("01NOSUCHRUN", status="error")


def test_hold_running_keeps_a_run_running(emu_api: tuple[Emulator, Any]) -> None:
    emu, api = emu_api
    run = next(r for r in emu.runs if r["status"] == "success")
    emu.hold_running(run["idempotency_key"])  # by id or idempotency key
    got = served(api, run["id"])
    assert (got["status"], got["duration_ms"], got["cost_usd"], got["status_detail"]) == (
        "running",
        None,
        0.0,
        None,
    )
    spans = got["trace"] if isinstance(got["trace"], list) else list(got["trace"].values())
    assert any(span["t1"] is None for span in spans)
    if emu.clock is not None:
        emu.clock.advance(timedelta(days=20))
        assert served(api, run["id"])["status"] == "running"
    emu.hold_running(run["id"], hold=False)
    got = served(api, run["id"])
    assert (got["status"], got["duration_ms"]) == ("success", run["duration_ms"])


def _record(run_id: str, created_at: str) -> dict[str, Any]:
    base = dict(generate_runs(1, seed=99)[0])
    base.update(id=run_id, idempotency_key=f"key-{run_id}", created_at=created_at)
    base.update(group_id=run_id, parent_id=None, status="success", duration_ms=800)
    return base


def test_add_run_is_served_once_created(emu_api: tuple[Emulator, Any]) -> None:
    emu, api = emu_api
    trace = [{"path": "x", "call_id": "c1", "parent_call_id": None, "t0": 1, "t1": 2}]
    future = (FIXED_END + timedelta(hours=1)).isoformat()
    emu.add_run({**_record("run-added", future), "trace": trace})
    with pytest.raises(ValueError, match="taken"):
        emu.add_run(_record("run-added", future))
    with pytest.raises(ValueError, match="lacks"):
        emu.add_run({"id": "x"})
    if emu.clock is not None:  # not yet created
        assert "run-added" not in {r["id"] for r in api.all()}
        assert api.get("run-added").status_code == 404
        emu.clock.advance(timedelta(hours=2))
    got = served(api, "run-added")
    assert got["trace"] == trace
    assert got["status"] == "success"
    assert got["duration_ms"] == 800
    assert api.get("key-run-added").json()["id"] == "run-added"


def test_remove_run_makes_it_vanish_and_tokens_still_work(
    emu_api: tuple[Emulator, Any],
) -> None:
    emu, api = emu_api
    first = api.page()
    last_served = first["runs"][-1]["id"]  # the token's keyset position
    emu.remove_run(last_served)
    gone = emu.runs[0]["id"]
    emu.remove_run(gone)
    assert api.get(last_served).status_code == 404
    assert httpx.get(f"{emu.runs_url}/{gone}/reactions", headers=emu.headers()).status_code == 404
    rest = []
    body = api.page(page_token=first["next_page_token"])
    while True:
        rest.extend(r["id"] for r in body["runs"])
        if body["next_page_token"] is None:
            break
        body = api.page(page_token=body["next_page_token"])
    expected = [r["id"] for r in emu.runs if r["id"] not in {x["id"] for x in first["runs"]}]
    assert rest == expected
    assert gone not in {r["id"] for r in api.all()}
    with pytest.raises(KeyError):
        emu.remove_run(gone)
    with pytest.raises(KeyError):
        emu.reactions(gone)


def test_add_reaction_updates_the_sentiment(emu_api: tuple[Emulator, Any]) -> None:
    emu, api = emu_api
    run = next(
        r for r in emu.runs if r["last_reaction_sentiment"] is None and r["status"] != "running"
    )
    before = len(emu.reactions(run["id"]))
    added = emu.add_reaction(run["id"], "negative", "Wrong order number.", user="usr_grace")
    assert added["user"]["id"] == "usr_grace"
    assert added["feedback"] == "Wrong order number."
    assert served(api, run["id"])["last_reaction_sentiment"] == "negative"
    assert emu.reactions(run["id"])[0] == added
    assert len(emu.reactions(run["id"])) == before + 1
    emu.add_reaction(run["id"], "positive")  # later wins
    assert served(api, run["id"])["last_reaction_sentiment"] == "positive"
    if emu.clock is not None:  # a reaction dated later counts from then on
        later = emu.clock.now() + timedelta(hours=5)
        emu.add_reaction(run["id"], "negative", at=later)
        assert served(api, run["id"])["last_reaction_sentiment"] == "positive"
        emu.clock.advance(timedelta(hours=5))
        assert served(api, run["id"])["last_reaction_sentiment"] == "negative"
    with pytest.raises(KeyError):
        emu.add_reaction(run["id"], "positive", user="usr_nobody")
    with pytest.raises(ValueError, match="sentiment"):
        emu.add_reaction(run["id"], "")
    with pytest.raises(ValueError, match="aware"):
        emu.add_reaction(run["id"], "positive", at=datetime(2026, 1, 1))


def test_hooks_are_safe_while_serving(timbal_emulator_factory: Any, make_api: Any) -> None:
    clock = EmulatorClock(FIXED_END)
    emu = timbal_emulator_factory(runs=1500, live=True, clock=clock, page_size=40)
    api = make_api(emu)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            with httpx.Client(headers=emu.headers()) as client:
                while not stop.is_set():
                    token = None
                    seen: set[str] = set()
                    while True:
                        params = {"page_token": token} if token else {}
                        body = client.get(emu.runs_url, params=params).raise_for_status().json()
                        ids = [run["id"] for run in body["runs"]]
                        assert not seen & set(ids)
                        seen.update(ids)
                        token = body["next_page_token"]
                        if token is None:
                            break
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        runs = emu.runs
        for k in range(60):
            run = runs[(k * 37) % len(runs)]
            emu.update_run(run["id"], cost_usd=float(k))
            emu.add_reaction(run["id"], "positive" if k % 2 else "negative")
            emu.hold_running(runs[k]["id"], hold=k % 3 != 0)
            if k % 10 == 0:
                emu.remove_run(runs[-1 - k]["id"])
            clock.advance(timedelta(minutes=13))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors[0]
    assert api.all() == emu.runs


def test_request_log_records_every_request(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=120, page_size=50)
    log = emu.request_log
    log.clear()
    run_id = emu.runs[3]["id"]
    with httpx.Client(headers=emu.headers()) as client:
        token = client.get(emu.runs_url, params={"status": "success"}).json()["next_page_token"]
        client.get(emu.runs_url, params={"status": "success", "page_token": token})
        client.get(f"{emu.runs_url}/{run_id}")
        client.get(f"{emu.runs_url}/01NOSUCHRUN")
        mark = log.total
        client.get(f"{emu.runs_url}/{run_id}/reactions")
        client.post(f"{emu.runs_url}/{run_id}/reactions", json={"sentiment": "positive"})
        httpx.get(f"{emu.base_url}/elsewhere")
    entries = list(log)
    assert [(e.method, e.endpoint, e.status) for e in entries] == [
        ("GET", "list", 200),
        ("GET", "list", 200),
        ("GET", "get", 200),
        ("GET", "get", 404),
        ("GET", "reactions", 200),
        ("POST", "reactions", 204),
        ("GET", "other", 404),
    ]
    assert entries[0].params == {"status": "success"}
    assert entries[1].params == {"status": "success", "page_token": token}
    assert entries[2].path == f"/orgs/{emu.org_id}/projects/{emu.project_id}/runs/{run_id}"
    assert entries[2].run_id == entries[4].run_id == run_id
    assert entries[0].run_id is None
    assert [e.endpoint for e in log.since(mark)] == ["reactions", "reactions", "other"]
    assert len(log) == 7
    assert log[-1].path == "/elsewhere"
    log.clear()
    assert len(log) == 0
    assert log.total >= 7
    emu.configure(fault_rate=1.0, fault_kinds=["503"])
    httpx.get(emu.runs_url, headers=emu.headers())
    assert [(e.status, e.fault) for e in log] == [(503, "503")]
