"""The triggers, run directly on an event loop against the emulator (as the triggerer runs
them, minus the triggerer): serialisation, backoff, errors, timeouts, cancellation, and
the event trigger's "once per new batch, never twice" across restarts."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import pytest

from tests.airflow.helpers_airflow import LiveRuns, answered, connection_json, copy_run
from timbal_integrations.emulator import Emulator, generate_runs

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(120)]

# The key shares no 6 characters in a row with CONN: messages redact any such stretch.
KEY = "tk_trg_3f8a6c1e7b20"
CONN = "timbal_triggers"


@pytest.fixture
def emu(airflow_db: Any, timbal_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Runs created in the last 30 minutes (the event trigger looks back from now)."""
    now = datetime.now(UTC).replace(microsecond=0)
    records = generate_runs(40, seed=11, end=now, span=timedelta(minutes=30))
    records[0].update(status="running", duration_ms=None, status_detail={"step": "llm"})
    emulator: Emulator = timbal_emulator_factory(runs=records, api_key=KEY)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_TRIGGERS", connection_json(emulator))
    return emulator


def _open_connections(emu: Emulator) -> int:
    """This process's established TCP connections to the emulator."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == emu.port and c.status == psutil.CONN_ESTABLISHED
    )


async def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _first(events: AsyncIterator[Any]) -> Any:
    async for event in events:
        return event
    return None


def _run_trigger(emu: Emulator, **kwargs: Any) -> Any:
    from airflow_provider.triggers.timbal import TimbalRunTrigger

    trigger = TimbalRunTrigger(timbal_conn_id=CONN, poke_interval=0.1, **kwargs)
    return asyncio.run(_first(trigger.run()))


# -- TimbalRunTrigger --------------------------------------------------------------------


def test_run_trigger_serialises_and_round_trips_without_the_key(emu: Emulator) -> None:
    from airflow.models.trigger import Trigger
    from airflow.sdk._shared.module_loading import import_string

    from airflow_provider.triggers.timbal import TimbalRunTrigger

    trigger = TimbalRunTrigger(
        run_id="run-1",
        timbal_conn_id=CONN,
        poke_interval=30,
        deadline=1_800_000_000.5,
        success_statuses=["success", "cancelled"],
        org_id="org-x",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider.triggers.timbal.TimbalRunTrigger"
    assert kwargs == {
        "run_id": "run-1",
        "timbal_conn_id": CONN,
        "poke_interval": 30.0,
        "deadline": 1_800_000_000.5,
        "success_statuses": ["success", "cancelled"],
        "failure_statuses": ["error"],
        "org_id": "org-x",
        "project_id": None,
    }
    # As Airflow stores and revives it: the row in the metadata DB, then the class again.
    row = Trigger.from_object(trigger)
    assert row.classpath == classpath
    revived = import_string(row.classpath)(**row.kwargs)
    assert revived.serialize() == (classpath, kwargs)
    assert KEY not in json.dumps(kwargs)
    assert KEY not in repr(trigger)


def test_run_trigger_fires_for_each_end(emu: Emulator) -> None:
    run = next(r for r in emu.runs if r["status"] == "running")
    done = next(r for r in emu.runs if r["status"] == "success")
    event = _run_trigger(emu, run_id=done["idempotency_key"])
    assert event.payload["status"] == "success"
    assert event.payload["run"]["id"] == done["id"]

    LiveRuns(emu).update_run(run["id"], status="cancelled", status_detail={"reason": "by user"})
    event = _run_trigger(emu, run_id=run["id"])
    assert event.payload == {
        "status": "failed",
        "run_id": run["id"],
        "message": f"Timbal run {run['id']!r} ended with status 'cancelled': by user",
        "run_status": "cancelled",
    }
    event = _run_trigger(emu, run_id="no-such-run")
    assert event.payload["status"] == "not_found"
    assert event.payload["message"] == (
        "Timbal run 'no-such-run' was not found: 404 Not Found from GET "
        f"/orgs/{emu.org_id}/projects/{emu.project_id}/runs/no-such-run: Run 'no-such-run' "
        "not found (not found — check the run id (or idempotency key), the org_id extra of "
        f"connection {CONN!r} and the project_id extra of connection {CONN!r})"
    )


def test_run_trigger_times_out_with_a_clear_event_and_leaves_nothing_open(
    emu: Emulator,
) -> None:
    import time

    run = next(r for r in emu.runs if r["status"] == "running")
    before = emu.stats.requests_total
    event = _run_trigger(emu, run_id=run["id"], deadline=time.time() + 1.0)
    assert event.payload["status"] == "timeout"
    assert event.payload["message"].startswith(
        f"Timbal run {run['id']!r} was still not finished at the sensor's timeout ("
    )
    assert 1 <= emu.stats.requests_total - before <= 12  # every ~0.1 s for 1 s, no more
    assert _open_connections(emu) == 0


def test_run_trigger_backs_off_on_api_failures_and_never_spins(emu: Emulator) -> None:
    import time

    run = next(r for r in emu.runs if r["status"] == "running")
    emu.configure(fault_rate=1.0, fault_kinds=["503"])
    try:
        before = emu.stats.requests_total
        event = _run_trigger(emu, run_id=run["id"], deadline=time.time() + 2.0)
    finally:
        emu.configure(fault_rate=0.0)
    assert event.payload["status"] == "timeout"
    assert "the last check failed: 503 Service Unavailable" in event.payload["message"]
    # Waits of 0.2, 0.4, 0.8, 1.6 s (2 requests each: one client retry) fit in 2 s: at
    # most 5 checks, where polling every 0.1 s would have made 20.
    assert emu.stats.requests_total - before <= 10


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (
            "bad-key",
            # the core's wording, naming the connection's field (not TIMBAL_API_KEY)
            (
                "401 Unauthorized from GET /orgs/demo-org/projects/demo-project/runs/",
                "(the API key was rejected — check the password of connection 'timbal_bad')",
            ),
        ),
        (
            "missing",
            ("the Airflow connection 'timbal_missing' is not defined: create it with type",),
        ),
        (
            # read on the async path (aresolve_config), worded as on the sync one
            "no-org",
            ("no organisation: set the org_id extra of connection 'timbal_no_org'",),
        ),
    ],
)
def test_run_trigger_ends_with_an_error_event_on_permanent_failures(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, connection: str, expected: tuple[str, ...]
) -> None:
    from airflow_provider.triggers.timbal import TimbalRunTrigger

    run = next(r for r in emu.runs if r["status"] == "running")
    if connection == "bad-key":
        wrong = "tk_wrong_key_for_triggers_0123"
        monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_BAD", connection_json(emu, api_key=wrong))
        conn_id = "timbal_bad"
    elif connection == "no-org":
        conn = json.loads(connection_json(emu))
        del conn["extra"]["org_id"]
        monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_NO_ORG", json.dumps(conn))
        conn_id = "timbal_no_org"
    else:
        conn_id = "timbal_missing"
    before = emu.stats.requests_total
    trigger = TimbalRunTrigger(run_id=run["id"], timbal_conn_id=conn_id, poke_interval=0.1)
    event = asyncio.run(_first(trigger.run()))
    assert event.payload["status"] == "error"
    for part in expected:
        assert part in event.payload["message"]
    # the hook never reads the TIMBAL_* variables, so no hint names them
    assert not re.search(r"\bTIMBAL_(API|ORG|PROJECT)", event.payload["message"])
    assert emu.stats.requests_total - before <= 1  # no retry of what retrying cannot fix


def test_run_trigger_closes_its_client_when_cancelled(emu: Emulator) -> None:
    from airflow_provider.triggers.timbal import TimbalRunTrigger

    run = next(r for r in emu.runs if r["status"] == "running")
    trigger = TimbalRunTrigger(run_id=run["id"], timbal_conn_id=CONN, poke_interval=0.1)

    async def scenario() -> None:
        before = emu.stats.requests_total
        task = asyncio.create_task(_first(trigger.run()))
        await _until(lambda: emu.stats.requests_total >= before + 2, "two checks")
        assert _open_connections(emu) == 1  # the client keeps its connection alive
        task.cancel()  # as the triggerer does on Airflow's deferral timeout
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _open_connections(emu) == 0
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(scenario())


# -- TimbalNewRunsTrigger ----------------------------------------------------------------


class MemoryStateStore:
    """Stands in for Airflow's per-asset state store (``aget``/``aset``), which the
    triggerer injects into event triggers; it outlives trigger instances as the real one
    outlives triggerer restarts."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)  # JSON, as the database stores it


class Watcher:
    """A ``TimbalNewRunsTrigger`` running on the current loop, its events collected."""

    def __init__(self, emu: Emulator, store: MemoryStateStore, **kwargs: Any) -> None:
        from airflow_provider.triggers.timbal import TimbalNewRunsTrigger

        self.emu = emu
        self.trigger = TimbalNewRunsTrigger(timbal_conn_id=CONN, poke_interval=0.1, **kwargs)
        self.trigger.asset_state_store = store  # type: ignore[assignment]
        self.events: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    def lists(self) -> int:
        return answered(self.emu, "list")

    async def start(self) -> None:
        async def collect() -> None:
            async for event in self.trigger.run():
                self.events.append(event.payload)

        first = self.lists()
        self.task = asyncio.create_task(collect())
        await _until(lambda: self.lists() > first, "the first listing")

    async def polls(self, n: int) -> None:
        """Wait until ``n`` more listings have completed."""
        target = self.lists() + n
        await _until(lambda: self.lists() >= target, f"{n} listings")
        await asyncio.sleep(0)  # let the last listing's event, if any, be collected

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def _error_run(emu: Emulator, minutes_ago: float, **fields: Any) -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    fields.setdefault("status", "error")
    return copy_run(
        emu.runs[-1],
        created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **fields,
    )


def test_event_trigger_serialises_and_rejects_bad_filters(airflow_db: Any) -> None:
    from airflow.triggers.base import BaseEventTrigger

    from airflow_provider.triggers.timbal import TimbalNewRunsTrigger
    from timbal_integrations import QueryError

    trigger = TimbalNewRunsTrigger(
        status="error", sentiment="negative", metadata={"env": "prod"}, poke_interval=30
    )
    assert isinstance(trigger, BaseEventTrigger)
    classpath, kwargs = trigger.serialize()
    revived = TimbalNewRunsTrigger(**kwargs)
    assert revived.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*revived.serialize())
    assert revived.state_key == trigger.state_key
    assert TimbalNewRunsTrigger(status="cancelled").state_key != trigger.state_key
    with pytest.raises(QueryError, match="metadata"):
        TimbalNewRunsTrigger(status="error", metadata="[1, 2]")
    with pytest.raises(QueryError, match="roots"):
        TimbalNewRunsTrigger(roots="maybe")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="max_run_ids"):
        TimbalNewRunsTrigger(max_run_ids=0)


def test_event_trigger_fires_once_per_new_batch_never_twice(emu: Emulator) -> None:
    live = LiveRuns(emu)
    store = MemoryStateStore()
    existing_errors = [r["id"] for r in emu.runs if r["status"] == "error"]
    assert existing_errors  # the baseline holds failures that must not be reported

    async def scenario() -> None:
        watcher = Watcher(emu, store, status="error", max_run_ids=2)
        await watcher.start()
        await watcher.polls(3)
        assert watcher.events == []  # the baseline is not reported

        batch = [_error_run(emu, 1), _error_run(emu, 2), _error_run(emu, 3)]
        for run in [*batch, _error_run(emu, 1, status="success")]:
            live.add_run(run)
        await _until(lambda: len(watcher.events) == 1, "the first batch")
        await watcher.polls(3)
        (event,) = watcher.events
        assert event["count"] == 3
        assert event["run_ids"] == [batch[0]["id"], batch[1]["id"]]  # newest first, bounded
        assert event["run_ids_truncated"] is True
        assert event["by_status"] == {"error": 3}
        assert event["filters"] == {"status": "error"}

        late = _error_run(emu, 40)  # created 40 minutes ago, seen only now: within lookback
        live.add_run(late)
        too_late = _error_run(emu, 120)  # older than the lookback (1 h): not reported
        live.add_run(too_late)
        await _until(lambda: len(watcher.events) == 2, "the late run")
        await watcher.polls(3)
        assert [e["run_ids"] for e in watcher.events[1:]] == [[late["id"]]]

        # The triggerer stops; runs fail meanwhile; a new triggerer starts the watcher.
        await watcher.stop()
        while_down = [_error_run(emu, 0.5), _error_run(emu, 0.2)]
        for run in while_down:
            live.add_run(run)
        restarted = Watcher(emu, store, status="error", max_run_ids=2)
        await restarted.start()
        await _until(lambda: len(restarted.events) == 1, "the runs missed while down")
        await restarted.polls(3)
        (event,) = restarted.events
        assert event["count"] == 2
        assert set(event["run_ids"]) == {r["id"] for r in while_down}
        await restarted.stop()

        reported = [i for e in [*watcher.events, *restarted.events] for i in e["run_ids"]]
        assert len(reported) == len(set(reported))  # never twice
        assert not set(reported) & set(existing_errors)

    asyncio.run(scenario())
    assert _open_connections(emu) == 0


def test_event_trigger_other_filters_keep_their_own_state(emu: Emulator) -> None:
    live = LiveRuns(emu)
    store = MemoryStateStore()

    async def scenario() -> None:
        failures = Watcher(emu, store, status="error")
        negative = Watcher(emu, store, sentiment="negative")
        await failures.start()
        await negative.start()
        await failures.polls(2)
        live.add_run(_error_run(emu, 1, status="success", last_reaction_sentiment="negative"))
        await _until(lambda: len(negative.events) == 1, "the negative run")
        await failures.polls(3)
        assert failures.events == []
        assert negative.events[0]["count"] == 1
        await failures.stop()
        await negative.stop()

    asyncio.run(scenario())
    assert len(store.values) == 2


def test_event_trigger_shared_by_two_assets_keeps_working_in_memory(
    emu: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    live = LiveRuns(emu)
    # What the triggerer injects when identical watchers on two assets share a trigger.
    shared = AssetStateStoreAccessors(inlets=[Asset("timbal_a"), Asset("timbal_b")])

    async def scenario() -> None:
        watcher = Watcher(emu, MemoryStateStore(), status="error")
        watcher.trigger.asset_state_store = shared
        await watcher.start()
        await watcher.polls(2)
        new = _error_run(emu, 1)
        live.add_run(new)
        await _until(lambda: len(watcher.events) == 1, "the new run")
        await watcher.polls(3)
        assert [e["run_ids"] for e in watcher.events] == [[new["id"]]]
        await watcher.stop()

    asyncio.run(scenario())
    out, err = capfd.readouterr()
    assert "This watcher serves several assets" in out + err  # the trigger's own log
