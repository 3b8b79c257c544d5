"""The example DAGs of examples/airflow, run for real with ``dag.test()`` against the emulator.

Each run's XCom values and files are checked against the emulator's own data.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.helpers_airflow import AirflowEnv, RunDag, runs_between
from timbal_integrations import Run

pytestmark = pytest.mark.airflow

DAY = datetime(2025, 12, 15, tzinfo=UTC)  # logical date; its interval is the day before


def _jsonl_runs(path: Path) -> list[Run]:
    return [Run.model_validate_json(line) for line in path.read_text().splitlines()]


def _parts(root: Path) -> list[str]:
    """Every file under ``root`` (relative), to spot leftovers such as ``.part`` files."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_example_dags_parse_with_data_interval_timetables(example_dags: dict[str, Any]) -> None:
    assert set(example_dags) >= {
        "timbal_daily_export",
        "timbal_backfill",
        "timbal_failed_runs_report",
        "timbal_on_new_failures",
    }
    from airflow.sdk import CronDataIntervalTimetable

    for dag_id in ("timbal_daily_export", "timbal_failed_runs_report"):
        assert isinstance(example_dags[dag_id].timetable, CronDataIntervalTimetable)


def test_daily_export_writes_exactly_its_interval(
    airflow_env: AirflowEnv,
    example_dags: dict[str, Any],
    run_dag: RunDag,
    xcom: Any,
    export_root: Path,
) -> None:
    dag_run = run_dag(example_dags["timbal_daily_export"], logical_date=DAY)
    assert dag_run.state == "success"
    start, end = DAY - timedelta(days=1), DAY
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (start, end)

    expected = runs_between(airflow_env.emu, start, end)
    assert 50 < len(expected) < 200  # more than one page of the emulator's 50
    path = export_root / "runs" / "dt=2025-12-14" / "runs.jsonl"
    assert _jsonl_runs(path) == expected  # every field, newest first, nothing else

    manifest = xcom(dag_run, "export_runs")
    assert manifest["path"] == str(path)
    assert manifest["count"] == len(expected)
    assert manifest["format"] == "jsonl"
    assert manifest["since"] == "2025-12-14T00:00:00.000Z"
    assert manifest["until"] == "2025-12-15T00:00:00.000Z"
    assert manifest["first_created_at"].startswith(
        min(r.created_at for r in expected).strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert manifest["last_created_at"].startswith(
        max(r.created_at for r in expected).strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["bytes"] == path.stat().st_size
    sidecar = json.loads(Path(manifest["manifest_path"]).read_text())
    assert sidecar["count"] == len(expected)
    assert sidecar["sha256"] == manifest["sha256"]


def test_rerunning_an_interval_overwrites_its_partition(
    example_dags: dict[str, Any], run_dag: RunDag, xcom: Any, export_root: Path
) -> None:
    dag = example_dags["timbal_daily_export"]
    first = xcom(run_dag(dag, logical_date=DAY), "export_runs")
    path = Path(first["path"])
    before = path.read_bytes()
    path.write_bytes(before + before)  # a stale, wrong partition: the re-run must replace it

    again = run_dag(dag, logical_date=DAY)
    assert again.state == "success"
    second = xcom(again, "export_runs")
    assert path.read_bytes() == before
    assert second["count"] == first["count"]
    assert second["sha256"] == first["sha256"]
    assert _parts(export_root) == [
        "runs/dt=2025-12-14/runs.jsonl",
        "runs/dt=2025-12-14/runs.jsonl.manifest.json",
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_daily_export_in_other_formats(
    airflow_env: AirflowEnv,
    example_dags: dict[str, Any],
    run_dag: RunDag,
    xcom: Any,
    export_root: Path,
    fmt: str,
) -> None:
    dag_run = run_dag(
        example_dags["timbal_daily_export"], logical_date=DAY, run_conf={"format": fmt}
    )
    assert dag_run.state == "success"
    expected = [r.id for r in runs_between(airflow_env.emu, DAY - timedelta(days=1), DAY)]
    path = export_root / "runs" / "dt=2025-12-14" / f"runs.{fmt}"
    if fmt == "csv":
        with path.open(newline="") as handle:
            ids = [row["id"] for row in csv.DictReader(handle)]
    else:
        import pyarrow.parquet as pq

        ids = pq.read_table(path).column("id").to_pylist()
    assert ids == expected
    assert xcom(dag_run, "export_runs")["format"] == fmt


def test_backfill_maps_one_task_per_window(
    airflow_env: AirflowEnv,
    example_dags: dict[str, Any],
    run_dag: RunDag,
    xcom: Any,
    task_states: Any,
    export_root: Path,
) -> None:
    dag_run = run_dag(
        example_dags["timbal_backfill"],
        logical_date=None,
        run_conf={"start": "2025-12-10", "end": "2025-12-13", "window_days": 1},
    )
    assert dag_run.state == "success"
    states = task_states(dag_run)
    mapped = sorted(index for (task, index) in states if task == "export_window")
    assert mapped == [0, 1, 2]
    assert all(state == "success" for state in states.values())

    days = [datetime(2025, 12, 10, tzinfo=UTC) + timedelta(days=i) for i in range(4)]
    total = 0
    for index in mapped:
        since, until = days[index], days[index + 1]
        manifest = xcom(dag_run, "export_window", index)
        expected = runs_between(airflow_env.emu, since, until)
        path = export_root / "runs" / f"dt={since:%Y-%m-%d}" / "runs.jsonl"
        assert manifest["path"] == str(path)
        assert manifest["count"] == len(expected)
        assert _jsonl_runs(path) == expected
        total += len(expected)
    assert total == len(runs_between(airflow_env.emu, days[0], days[-1]))

    # The UI names each mapped task by its day, not by 0, 1, 2.
    labels = {
        ti.map_index: ti.rendered_map_index
        for ti in dag_run.get_task_instances()
        if ti.task_id == "export_window"
    }
    assert labels == {0: "2025-12-10", 1: "2025-12-11", 2: "2025-12-12"}

    # One asset event per window, read back from Airflow's metadata DB.
    events = _asset_events(dag_run)
    assert sorted(event["map_index"] for event in events) == [0, 1, 2]
    for event in events:
        manifest = xcom(dag_run, "export_window", event["map_index"])
        assert event["uri"] == f"file://{manifest['path']}"
        assert event["aliases"] == ["timbal_runs"]
        assert event["extra"] == {
            key: manifest[key] for key in ("count", "sha256", "bytes", "format", "since", "until")
        }


def _asset_events(dag_run: Any) -> list[dict[str, Any]]:
    """The asset events a DAG run's tasks emitted, from Airflow's metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .where(AssetEvent.source_dag_id == dag_run.dag_id)
            .where(AssetEvent.source_run_id == dag_run.run_id)
            .options(selectinload(AssetEvent.source_aliases))
        ).all()
        uris = {
            asset.id: asset.uri
            for asset in session.scalars(
                select(AssetModel).where(AssetModel.id.in_([r.asset_id for r in rows]))
            )
        }
        return [
            {
                "uri": uris[row.asset_id],
                "extra": row.extra,
                "map_index": row.source_map_index,
                "task_id": row.source_task_id,
                "aliases": [alias.name for alias in row.source_aliases],
            }
            for row in rows
        ]


def test_daily_export_emits_an_asset_event_for_its_file(
    example_dags: dict[str, Any], run_dag: RunDag, xcom: Any, export_root: Path
) -> None:
    dag_run = run_dag(example_dags["timbal_daily_export"], logical_date=DAY)
    manifest = xcom(dag_run, "export_runs")
    (event,) = _asset_events(dag_run)
    path = export_root / "runs" / "dt=2025-12-14" / "runs.jsonl"
    assert event["uri"] == f"file://{path}"
    assert event["task_id"] == "export_runs"
    assert event["extra"]["count"] == manifest["count"] > 0
    assert event["extra"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert event["extra"]["since"] == "2025-12-14T00:00:00.000Z"
    assert event["extra"]["until"] == "2025-12-15T00:00:00.000Z"


def test_backfill_refuses_a_start_that_is_not_midnight(
    example_dags: dict[str, Any],
    run_dag: RunDag,
    task_states: Any,
    export_root: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    daily = run_dag(example_dags["timbal_daily_export"], logical_date=DAY)
    partition = export_root / "runs" / "dt=2025-12-14" / "runs.jsonl"
    before = partition.read_bytes()
    capfd.readouterr()
    dag_run = run_dag(
        example_dags["timbal_backfill"],
        logical_date=None,
        run_conf={"start": "2025-12-13T06:00:00Z", "end": "2025-12-15"},
    )
    out, err = capfd.readouterr()
    assert daily.state == "success"
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("plan_windows", -1)] == "failed"  # at once, no retry
    line = (
        "start: 2025-12-13T06:00:00.000Z is not a midnight (UTC); each window writes a "
        "whole-day partition"
    )
    assert line in out + err
    assert partition.read_bytes() == before  # the day's partition was not overwritten
    assert _parts(export_root) == [
        "runs/dt=2025-12-14/runs.jsonl",
        "runs/dt=2025-12-14/runs.jsonl.manifest.json",
    ]


def test_daily_export_without_a_logical_date_fails_with_one_line(
    example_dags: dict[str, Any],
    run_dag: RunDag,
    task_states: Any,
    export_root: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    capfd.readouterr()
    dag_run = run_dag(example_dags["timbal_daily_export"], logical_date=None)
    out, err = capfd.readouterr()
    assert task_states(dag_run)[("export_runs", -1)] == "failed"
    assert "UndefinedError" not in out + err
    assert (
        "output_path: its template needs the data interval, which this DAG run does not "
        "have (it was triggered without a logical date): trigger it with a logical date "
        "(e.g. `airflow dags trigger timbal_daily_export --logical-date "
        "2025-12-15T00:00:00+00:00`"
    ) in out + err
    assert not export_root.exists()


def test_report_without_a_logical_date_does_not_advise_its_own_timetable(
    example_dags: dict[str, Any],
    run_dag: RunDag,
    task_states: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    capfd.readouterr()
    dag_run = run_dag(example_dags["timbal_failed_runs_report"], logical_date=None)
    out, err = capfd.readouterr()
    assert task_states(dag_run)[("failed_runs", -1)] == "failed"
    assert (
        "since: this DAG run has no data interval to take since and until from (it was "
        "triggered without a logical date): trigger it with a logical date"
    ) in out + err
    assert "CronDataIntervalTimetable" not in out + err  # the DAG already uses one


def test_backfill_and_daily_export_write_the_same_partition(
    example_dags: dict[str, Any], run_dag: RunDag, xcom: Any, export_root: Path
) -> None:
    daily = xcom(run_dag(example_dags["timbal_daily_export"], logical_date=DAY), "export_runs")
    backfill = run_dag(
        example_dags["timbal_backfill"],
        logical_date=None,
        run_conf={"start": "2025-12-14", "end": "2025-12-15"},
    )
    window = xcom(backfill, "export_window", 0)
    assert window["path"] == daily["path"]
    assert window["sha256"] == daily["sha256"]


def test_failed_runs_report_from_xcom(
    airflow_env: AirflowEnv, example_dags: dict[str, Any], run_dag: RunDag, xcom: Any
) -> None:
    dag_run = run_dag(example_dags["timbal_failed_runs_report"], logical_date=DAY)
    assert dag_run.state == "success"
    since = DAY - timedelta(days=1)
    failed = runs_between(airflow_env.emu, since, DAY, status="error")
    assert failed, "the emulator's day should hold failed runs"

    runs = xcom(dag_run, "failed_runs")
    assert [Run.model_validate(r) for r in runs] == sorted(failed, key=lambda r: r.created_at)
    json.dumps(runs)  # JSON-ready as they are

    report = xcom(dag_run, "report")
    assert report["day"] == "2025-12-14"
    assert report["failed"] == len(failed)
    assert sorted(r["id"] for r in report["runs"]) == sorted(r.id for r in failed)
    by_workforce: dict[str, int] = {}
    for run in failed:
        by_workforce[run.workforce.name] = by_workforce.get(run.workforce.name, 0) + 1
    assert report["by_workforce"] == by_workforce
