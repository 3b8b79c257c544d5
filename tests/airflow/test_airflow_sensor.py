"""``TimbalRunSensor`` in DAGs run for real (``dag.test()``), against the emulator.

Every outcome in every mode: poke, reschedule and deferrable (``dag.test`` runs the
trigger in-process, as Airflow's triggerer would). Runs change while the task waits: a
background thread flips the run's status in the emulator once the sensor has looked at
it (counted from the emulator's requests, never by sleeping).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.airflow.helpers_airflow import LiveRuns, RunDag, connection_json
from timbal_integrations.emulator import Emulator, generate_runs

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(120)]

# The key shares no 6 characters in a row with CONN: messages redact any such stretch.
KEY = "tk_sns_5c2e8a1f9d04"
START = datetime(2025, 12, 1, tzinfo=UTC)
CONN = "timbal_sensor"
MODES = ["poke", "reschedule", "deferrable"]


@pytest.fixture
def emu(airflow_db: Any, timbal_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """An emulator whose newest run is ``running``; ``timbal_sensor`` points at it."""
    records = generate_runs(8, seed=5)
    records[0].update(status="running", duration_ms=None, status_detail={"step": "llm"})
    emulator: Emulator = timbal_emulator_factory(runs=records, api_key=KEY)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_SENSOR", connection_json(emulator))
    return emulator


def _running(emu: Emulator) -> dict[str, Any]:
    (run,) = [r for r in emu.runs if r["status"] == "running"]
    return run


def _sensor_dag(dag_id: str, mode: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from airflow_provider.sensors.timbal import TimbalRunSensor

    arguments: dict[str, Any] = {
        "timbal_conn_id": CONN,
        "poke_interval": 0.2,
        "timeout": 60,
        "deferrable": mode == "deferrable",
        "mode": "reschedule" if mode == "reschedule" else "poke",
        **kwargs,
    }
    with DAG(dag_id=dag_id, schedule=None, start_date=START) as dag:
        TimbalRunSensor(task_id="wait", **arguments)
    return dag


def _output(capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return out + err


def _state(dag_run: Any) -> str:
    (ti,) = dag_run.get_task_instances()
    return str(ti.state)


@pytest.mark.parametrize("mode", MODES)
def test_a_run_that_finishes_while_the_task_waits(
    emu: Emulator, run_dag: RunDag, xcom: Any, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    run = _running(emu)
    live = LiveRuns(emu)
    flip = live.change_after_gets(2, run["id"], status="success", duration_ms=1234)
    with caplog.at_level(logging.INFO, logger="airflow.sdk.definitions.dag"):
        dag_run = run_dag(
            _sensor_dag(f"timbal_test_sensor_finishes_{mode}", mode, run_id=run["id"])
        )
    flip.join(10)
    # dag.test runs a deferred task's trigger in line, as the triggerer would.
    assert ("running trigger in line" in caplog.text) == (mode == "deferrable")
    assert _state(dag_run) == "success"
    summary = xcom(dag_run, "wait")
    assert summary["id"] == run["id"]
    assert summary["status"] == "success"
    assert summary["duration_ms"] == 1234
    assert live.gets() >= 3  # it saw the run running at least twice, then finished


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        (
            "error",
            {"error": {"type": "ToolError", "message": "the CRM tool timed out"}},
            "ended with status 'error': ToolError: the CRM tool timed out",
        ),
        ("cancelled", {"reason": "cancelled by user"}, "ended with status 'cancelled': cancelled"),
    ],
)
def test_a_run_that_ends_badly_fails_the_task_with_one_line(
    emu: Emulator,
    run_dag: RunDag,
    capfd: pytest.CaptureFixture[str],
    mode: str,
    status: str,
    detail: dict[str, Any],
    shown: str,
) -> None:
    run = _running(emu)
    key = run["idempotency_key"]
    LiveRuns(emu).change_after_gets(2, run["id"], status=status, status_detail=detail)
    capfd.readouterr()
    dag = _sensor_dag(f"timbal_test_sensor_{status}_{mode}", mode, idempotency_key=key, retries=2)
    dag_run = run_dag(dag)
    log = _output(capfd)
    assert _state(dag_run) == "failed"  # at once: not up_for_retry despite retries=2
    line = f"Timbal run {run['id']!r} (idempotency key {key!r}) {shown}"
    assert line in log
    assert KEY not in log


@pytest.mark.parametrize("mode", MODES)
def test_a_run_that_never_finishes_times_out(
    emu: Emulator, run_dag: RunDag, capfd: pytest.CaptureFixture[str], mode: str
) -> None:
    run = _running(emu)
    capfd.readouterr()
    dag = _sensor_dag(f"timbal_test_sensor_timeout_{mode}", mode, run_id=run["id"], timeout=1)
    dag_run = run_dag(dag)
    log = _output(capfd)
    assert _state(dag_run) == "failed"
    if mode == "deferrable":
        assert f"Timbal run {run['id']!r} was still not finished at the sensor's timeout" in log
    else:
        assert "Sensor has timed out" in log


@pytest.mark.parametrize("mode", MODES)
def test_soft_fail_skips_on_timeout_and_on_a_failed_run(
    emu: Emulator, run_dag: RunDag, mode: str
) -> None:
    run = _running(emu)
    timeout_dag = _sensor_dag(
        f"timbal_test_sensor_soft_timeout_{mode}", mode, run_id=run["id"], timeout=1, soft_fail=True
    )
    assert _state(run_dag(timeout_dag)) == "skipped"
    LiveRuns(emu).update_run(run["id"], status="error")
    failed_dag = _sensor_dag(
        f"timbal_test_sensor_soft_failed_{mode}", mode, run_id=run["id"], soft_fail=True
    )
    assert _state(run_dag(failed_dag)) == "skipped"


@pytest.mark.parametrize("mode", MODES)
def test_a_run_that_vanishes_fails_clearly(
    emu: Emulator, run_dag: RunDag, capfd: pytest.CaptureFixture[str], mode: str
) -> None:
    run = _running(emu)
    LiveRuns(emu).change_after_gets(2, run["id"], removed=True)
    capfd.readouterr()
    dag_run = run_dag(_sensor_dag(f"timbal_test_sensor_vanish_{mode}", mode, run_id=run["id"]))
    log = _output(capfd)
    assert _state(dag_run) == "failed"
    if mode == "deferrable":  # the trigger knows it saw the run before
        assert f"Timbal run {run['id']!r} vanished from project" in log
    else:  # the core's 404, in the connection's terms
        assert (
            f"Timbal run {run['id']!r} was not found: 404 Not Found from GET "
            f"/orgs/{emu.org_id}/projects/{emu.project_id}/runs/{run['id']}"
        ) in log
        assert (
            f"check the run id (or idempotency key), the org_id extra of connection {CONN!r} "
            f"and the project_id extra of connection {CONN!r})"
        ) in log
        assert not re.search(r"\bTIMBAL_(API|ORG|PROJECT)", log)


@pytest.mark.parametrize("mode", MODES)
def test_custom_success_statuses(emu: Emulator, run_dag: RunDag, xcom: Any, mode: str) -> None:
    run = _running(emu)
    LiveRuns(emu).change_after_gets(1, run["id"], status="cancelled")
    dag = _sensor_dag(
        f"timbal_test_sensor_custom_{mode}",
        mode,
        run_id=run["id"],
        success_statuses=["success", "cancelled"],
    )
    dag_run = run_dag(dag)
    assert _state(dag_run) == "success"
    assert xcom(dag_run, "wait")["status"] == "cancelled"


def test_a_finished_run_needs_no_deferral(
    emu: Emulator, run_dag: RunDag, caplog: pytest.LogCaptureFixture
) -> None:
    done = next(r for r in emu.runs if r["status"] == "success")
    with caplog.at_level(logging.INFO, logger="airflow.sdk.definitions.dag"):
        dag_run = run_dag(_sensor_dag("timbal_test_sensor_done", "deferrable", run_id=done["id"]))
    assert _state(dag_run) == "success"
    assert "[DAG TEST] end task" in caplog.text
    assert "running trigger in line" not in caplog.text


def test_templated_run_id_and_bad_arguments(
    emu: Emulator, run_dag: RunDag, xcom: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import DAG

    from airflow_provider.sensors.timbal import TimbalRunSensor
    from timbal_integrations import QueryError

    done = next(r for r in emu.runs if r["status"] == "success")
    with DAG(
        dag_id="timbal_test_sensor_templated",
        schedule=None,
        start_date=START,
        params={"run": done["id"]},
    ) as dag:
        TimbalRunSensor(
            task_id="wait", run_id="{{ params.run }}", timbal_conn_id=CONN, poke_interval=0.2
        )
        TimbalRunSensor(
            task_id="empty", run_id="{{ params.get('nothing', '') }}", timbal_conn_id=CONN
        )
    capfd.readouterr()
    dag_run = run_dag(dag)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {"wait": "success", "empty": "failed"}
    assert xcom(dag_run, "wait")["id"] == done["id"]
    assert "run_id: rendered empty; expected a Timbal run id or idempotency key" in _output(capfd)

    with pytest.raises(QueryError, match="give exactly one of run_id= and idempotency_key="):
        TimbalRunSensor(task_id="neither")
    with pytest.raises(QueryError, match="give exactly one"):
        TimbalRunSensor(task_id="both", run_id="a", idempotency_key="b")
    with pytest.raises(QueryError, match="'running' is what the sensor waits on"):
        TimbalRunSensor(task_id="running", run_id="a", success_statuses=["running"])
    with pytest.raises(QueryError, match="'error' is also a success status"):
        TimbalRunSensor(
            task_id="overlap", run_id="a", success_statuses=["error"], failure_statuses=["error"]
        )


def test_deferrable_defaults_to_airflows_setting(
    airflow_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import airflow_provider.sensors.timbal as module

    assert module.TimbalRunSensor(task_id="a", run_id="r").deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    try:
        fresh = importlib.reload(module)
        assert fresh.TimbalRunSensor(task_id="b", run_id="r").deferrable is True
        assert fresh.TimbalRunSensor(task_id="c", run_id="r", deferrable=False).deferrable is False
    finally:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        importlib.reload(module)
