"""``TimbalSyncRunsOperator`` and the ``timbal_daily_sync`` example, run for real with
``dag.test()`` against a live emulator whose clock follows the DAG runs' data intervals:
each day's sync leaves the whole dataset equal to the emulator's truth, and XCom and the
manifest say how many runs are still open."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.airflow.helpers_airflow import RunDag, connection_json
from tests.sync.helpers_sync import START, old_final_runs, read_dataset, read_json, truth
from timbal_integrations.emulator import Emulator, EmulatorClock
from timbal_integrations.sync.dataset import decode_partition, view

pytestmark = pytest.mark.airflow

# Covers every change the emulator makes to a run (see tests/sync/test_sync_live.py).
SEES_EVERYTHING = "19d"


@pytest.fixture
def live(
    airflow_env: Any, timbal_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """A live emulator behind ``timbal_default`` for this test, its clock at START."""
    emu: Emulator = timbal_emulator_factory(
        runs=1500, seed=5, page_size=100, live=True, clock=EmulatorClock(START), end=START
    )
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_DEFAULT", connection_json(emu))
    return emu


@pytest.fixture
def sync_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sync"
    monkeypatch.setenv("AIRFLOW_VAR_TIMBAL_SYNC_ROOT", str(root))
    return root


def _daily_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG, CronDataIntervalTimetable

    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=START - timedelta(days=60),
        catchup=False,
        **kwargs,
    )


def test_the_daily_sync_example_settles_every_day(
    live: Emulator,
    sync_root: Path,
    example_dags: dict[str, Any],
    run_dag: RunDag,
    xcom: Any,
) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    dag = example_dags["timbal_daily_sync"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert live.clock is not None
    held = old_final_runs(live, timedelta(days=25))[0]
    live.hold_running(held)  # a run still open, far older than the lookback
    for day in range(4):
        logical = START + timedelta(days=day)  # its data interval ends then
        live.clock.set(logical)
        if day == 2:
            live.hold_running(held, False)
        dag_run = run_dag(dag, logical_date=logical, run_conf={"lookback": SEES_EVERYTHING})
        assert dag_run.state == "success"
        assert dag_run.data_interval_end == logical
        report = xcom(dag_run, "sync_runs")
        assert report["mode"] == ("first" if day == 0 else "incremental")
        assert report["until"].startswith(logical.strftime("%Y-%m-%dT%H:%M:%S"))
        assert read_dataset(sync_root, "jsonl") == truth(live, "jsonl")
        running = sum(run["status"] == "running" for run in live.runs)
        assert report["still_open"] == running == xcom(dag_run, "report_open_runs")
        assert read_json(sync_root / "manifest.json")["running_count"] == running
        if day == 2:
            assert held in report["changed_ids"]["status"]
        if day:
            assert report["added"] > 0
            assert report["partitions_rewritten"] < report["partitions"]


def test_object_storage_is_synced_object_by_object(
    live: Emulator, run_dag: RunDag, xcom: Any
) -> None:
    import fsspec
    from airflow.sdk.io import attach

    from airflow_provider.operators import TimbalSyncRunsOperator

    memory = fsspec.filesystem("memory")
    attach("memory", fs=memory)
    uri = "memory://timbal-sync-bucket/runs-dataset"
    with _daily_dag("timbal_test_sync_object_storage") as dag:
        TimbalSyncRunsOperator(
            task_id="sync", output_dir=uri, format="csv", lookback=SEES_EVERYTHING
        )
    assert live.clock is not None
    for day in range(2):
        logical = START + timedelta(days=day)
        live.clock.set(logical)
        live.add_reaction(live.runs[20 + day]["id"], "negative", "Off by one.")
        dag_run = run_dag(dag, logical_date=logical)
        assert dag_run.state == "success"
        report = xcom(dag_run, "sync")
        assert report["path"] == uri
        manifest = orjson.loads(memory.cat("/timbal-sync-bucket/runs-dataset/manifest.json"))
        found: dict[str, Any] = {}
        for entry in manifest["partitions"].values():
            data = memory.cat(f"/timbal-sync-bucket/runs-dataset/{entry['path']}")
            found.update((run.id, view(run, "csv")) for run in decode_partition(data, "csv", "p"))
        assert found == truth(live, "csv")
        assert manifest["count"] == report["runs"] == len(found)
        leftovers = [p for p in memory.find("/timbal-sync-bucket") if ".sync-" in p]
        assert leftovers == []


def test_a_dataset_of_other_filters_fails_the_task_once_saying_how_to_start_over(
    live: Emulator,
    run_dag: RunDag,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider.operators.sync import TimbalSyncRunsOperator

    out = str(tmp_path / "data")
    with _daily_dag("timbal_test_sync_errors", params={"status": "error"}) as dag:
        TimbalSyncRunsOperator(
            task_id="sync", output_dir=out, status="{{ params.status }}", retries=3
        )
    assert run_dag(dag, logical_date=START).state == "success"
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=START, run_conf={"status": "success"})
    assert dag_run.state == "failed"
    out_err = "".join(capfd.readouterr())
    assert (
        f"status: the dataset in {out} was synced with 'error', not 'success'; sync with "
        "the same status, or with full_refresh=True to start over"
    ) in out_err
    assert out_err.count("Traceback") <= 1


def test_operator_arguments(airflow_db: Any) -> None:
    from airflow_provider import get_provider_info
    from airflow_provider.operators import TimbalListRunsOperator, TimbalSyncRunsOperator
    from airflow_provider.operators.timbal import TimbalListRunsOperator as Listed

    assert TimbalListRunsOperator is Listed
    assert (
        "airflow_provider.operators.sync" in get_provider_info()["operators"][0]["python-modules"]
    )
    with _daily_dag("timbal_test_sync_arguments"):
        op = TimbalSyncRunsOperator(task_id="sync", output_dir="/tmp/x", roots=True)
    assert op.max_active_tis_per_dag == 1
    assert op.roots_only is True
    assert {"output_dir", "format", "lookback", "status", "since"} <= set(op.template_fields)
    assert op.build_query().as_dict() == {"roots": True}
