"""Hardening the operator: a task killed with ``kill -9`` again and again, or failing
mid-export on a broken API, is re-run into an exact file; the output path never holds a
partial file (a watcher thread looks at it the whole time).

The killed attempts run the operator in a process of their own (the way a worker runs
a task); the re-runs are real task runs of ``dag.test()``, Airflow's retry included.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.airflow.helpers_airflow import RunDag, connection_json
from tests.support.files import TargetWatcher, part_size
from tests.support.processes import wait_until
from timbal_integrations import retry
from timbal_integrations.emulator import FIXED_END, Emulator

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(240)]

KEY = "tk_hard_airflow_crash_7c1d9e3b5a"
SINCE = "2025-12-31T00:00:00Z"
UNTIL = "2026-01-01T00:00:00Z"  # FIXED_END: the emulator's runs fill this one day

# The task, as a worker process would run it: the connection comes from the environment.
TASK = """
import sys
from airflow_provider.operators.timbal import TimbalListRunsOperator

TimbalListRunsOperator(
    task_id="export", timbal_conn_id="timbal_hard_crash", since=sys.argv[2], until=sys.argv[3],
    output_path=sys.argv[1],
).execute({})
"""


def exported(target: Path) -> list[dict[str, Any]]:
    with target.open("rb") as fh:
        return [orjson.loads(line) for line in fh]


def daily_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG, CronDataIntervalTimetable

    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2025, 12, 1, tzinfo=UTC),
        catchup=False,
        **kwargs,
    )


def test_a_task_killed_again_and_again_is_rerun_into_an_exact_file(
    timbal_emulator_factory: Any,
    run_dag: RunDag,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    emu: Emulator = timbal_emulator_factory(
        runs=8_000, span=timedelta(days=1), page_size=50, latency_ms=2, api_key=KEY
    )
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_HARD_CRASH", connection_json(emu))
    target = tmp_path / "out" / "runs.jsonl"
    env = {**os.environ, "TIMBAL_RETRY_TESTING": "1"}
    estimate = sum(len(orjson.dumps(run)) + 1 for run in emu.runs)
    points = sorted(int(random.Random(7).uniform(0.02, 0.6) * estimate) for _ in range(3))
    with TargetWatcher(target) as watcher:
        for point in points:
            process = subprocess.Popen(
                [sys.executable, "-c", TASK, str(target), SINCE, UNTIL],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:

                def reached(point: int = point, process: subprocess.Popen[bytes] = process) -> bool:
                    assert process.poll() is None, "the task ended before its kill point"
                    return part_size(target) >= point

                wait_until(reached, timeout=120, what=f"{point} bytes written")
            finally:
                process.kill()
                process.wait(30)
            assert process.returncode == -signal.SIGKILL
            assert not target.exists()
        assert watcher.sightings == []
        assert part_size(target) > 0  # a stale partial export is there...

        with daily_dag("timbal_hard_killed_rerun") as dag:
            TimbalListRunsOperator(
                task_id="export",
                timbal_conn_id="timbal_hard_crash",
                since=SINCE,
                until=UNTIL,
                output_path=str(target),
            )
        dag_run = run_dag(dag, logical_date=FIXED_END)
    assert dag_run.state == "success"
    assert exported(target) == emu.runs  # ...and the re-run replaced it: every run, once
    assert set(watcher.sightings) == {target.stat().st_size}
    assert sorted(os.listdir(target.parent)) == ["runs.jsonl", "runs.jsonl.manifest.json"]
    manifest = json.loads(Path(f"{target}.manifest.json").read_text())
    assert manifest["count"] == len(emu.runs) == 8_000


def test_a_task_failing_midway_is_retried_by_airflow_into_an_exact_file(
    timbal_emulator_factory: Any,
    run_dag: RunDag,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from airflow_provider.hooks.timbal import AIRFLOW_RETRY_POLICY
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    emu: Emulator = timbal_emulator_factory(
        runs=4_000, span=timedelta(days=1), page_size=50, api_key=KEY
    )
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_HARD_CRASH", connection_json(emu))
    target = tmp_path / "runs.csv"
    attempts = 1 + AIRFLOW_RETRY_POLICY.max_retries  # the hook's default policy in Airflow

    def break_the_api_midway() -> None:
        """The API fails (500) once a third of the runs are written, until the first
        attempt has given up; then it heals for Airflow's retry."""
        wait_until(lambda: part_size(target) > 150_000, timeout=120, what="progress")
        emu.configure(fault_rate=1.0, fault_kinds=["500"])
        wait_until(lambda: emu.stats.faults_total >= attempts, timeout=120, what="a failure")
        emu.configure(fault_rate=0.0)

    saboteur = threading.Thread(target=break_the_api_midway, daemon=True)
    with daily_dag(
        "timbal_hard_failed_retry", default_args={"retries": 1, "retry_delay": timedelta(0)}
    ) as dag:
        TimbalListRunsOperator(
            task_id="export",
            timbal_conn_id="timbal_hard_crash",
            since=SINCE,
            until=UNTIL,
            output_path=str(target),
        )
    with TargetWatcher(target) as watcher:
        saboteur.start()
        with retry.testing(True):
            dag_run = run_dag(dag, logical_date=FIXED_END)
        saboteur.join(30)
    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 2  # the first attempt failed, Airflow's retry succeeded
    assert emu.stats.faults_total == attempts
    with target.open() as fh:
        ids = [line.split(",", 1)[0] for line in fh.read().splitlines()[1:]]
    assert ids == [run["id"] for run in emu.runs]
    assert set(watcher.sightings) == {target.stat().st_size}
    assert sorted(os.listdir(tmp_path)) == ["runs.csv", "runs.csv.manifest.json"]
