"""``TimbalListRunsOperator`` in DAGs run for real: windows, the XCom bound, object storage,
fail-fast errors, and the API key kept out of task logs.

Each test defines its own small DAG (a unique ``dag_id``: the metadata DB is shared by
the session) and runs it with ``dag.test()``; task logs are read from the captured output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.airflow.helpers_airflow import AirflowEnv, RunDag, connection_json, runs_between
from timbal_integrations import Run
from timbal_integrations.query import FILTER_NAMES

pytestmark = pytest.mark.airflow

DAY = datetime(2025, 12, 15, tzinfo=UTC)  # logical date; its interval is the day before
START = datetime(2025, 12, 1, tzinfo=UTC)


def _daily_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG, CronDataIntervalTimetable

    return DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=START,
        catchup=False,
        **kwargs,
    )


def _output(capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return out + err


def test_operator_arguments_and_template_fields(airflow_db: Any) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from timbal_integrations import QueryError

    templated = set(TimbalListRunsOperator.template_fields)
    assert templated >= (set(FILTER_NAMES) - {"roots"}) | {"roots_only"}
    assert templated >= {"output_path", "format", "limit", "parallel", "org_id", "project_id"}

    with _daily_dag("timbal_test_arguments"):
        op = TimbalListRunsOperator(task_id="runs", roots=True, status="error")
    assert op.roots_only is True  # BaseOperator.roots (the DAG's root tasks) is untouched
    assert op.max_xcom_runs == 1000
    assert op.timbal_conn_id == "timbal_default"
    with pytest.raises(QueryError, match="max_xcom_runs"):
        TimbalListRunsOperator(task_id="bad", max_xcom_runs=0)

    from airflow_provider.operators._arguments import read_limit

    assert read_limit(" 12 ") == 12  # templates render strings
    with pytest.raises(QueryError, match="limit"):
        read_limit("²")  # "²".isdigit() is True, int("²") fails


def test_filters_are_templated_and_sent(
    airflow_env: AirflowEnv, run_dag: RunDag, xcom: Any
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    emu = airflow_env.emu
    some = Run.model_validate(emu.runs[100])
    with _daily_dag(
        "timbal_test_filters",
        params={"status": some.status, "workforce": some.workforce.id, "n": "1000"},
    ) as dag:
        TimbalListRunsOperator(
            task_id="runs",
            status="{{ params.status }}",
            workforce_id="{{ params.workforce }}",
            roots="{{ 'true' }}",
            sort_order="asc",
            user_id="",  # a template that renders empty means "no filter"
            limit="{{ params.n }}",
            since="{{ data_interval_start.subtract(days=6) }}",
        )
    dag_run = run_dag(dag, logical_date=DAY)
    assert dag_run.state == "success"
    expected = [
        run
        for run in runs_between(emu, DAY - timedelta(days=7), DAY)
        if run.status == some.status and run.workforce.id == some.workforce.id and run.is_root
    ]
    assert expected
    got = [Run.model_validate(r) for r in xcom(dag_run, "runs")]
    assert got == sorted(expected, key=lambda r: r.created_at)


def test_more_runs_than_max_xcom_runs_is_an_error_not_a_truncation(
    airflow_env: AirflowEnv,
    run_dag: RunDag,
    xcom: Any,
    task_states: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    count = len(runs_between(airflow_env.emu, DAY - timedelta(days=1), DAY))
    with _daily_dag("timbal_test_xcom_bound") as dag:
        TimbalListRunsOperator(task_id="too_many", max_xcom_runs=count - 1)
        TimbalListRunsOperator(task_id="just_enough", max_xcom_runs=count)
        TimbalListRunsOperator(task_id="limited", max_xcom_runs=count - 1, limit=5)
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=DAY)
    log = _output(capfd)
    states = task_states(dag_run)
    assert states[("too_many", -1)] == "failed"
    assert f"holds more than {count - 1} runs" in log
    assert "set output_path= to write them to a file" in log
    assert states[("just_enough", -1)] == "success"
    assert len(xcom(dag_run, "just_enough")) == count
    assert states[("limited", -1)] == "success"
    newest = runs_between(airflow_env.emu, DAY - timedelta(days=1), DAY)[:5]
    assert [Run.model_validate(r) for r in xcom(dag_run, "limited")] == newest


def test_a_manual_run_needs_an_explicit_window(
    airflow_env: AirflowEnv,
    run_dag: RunDag,
    xcom: Any,
    task_states: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.sdk import DAG

    from airflow_provider.operators.timbal import TimbalListRunsOperator

    with DAG(dag_id="timbal_test_manual", schedule=None, start_date=START) as dag:
        TimbalListRunsOperator(task_id="no_window")
        TimbalListRunsOperator(task_id="half_window", since="2025-12-14")
        TimbalListRunsOperator(
            task_id="explicit_window", since="2025-12-14", until="2025-12-14T06:00:00Z"
        )
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=None)
    log = _output(capfd)
    states = task_states(dag_run)
    assert states[("no_window", -1)] == "failed"
    assert "this DAG run has no data interval to take since and until from (it was" in log
    # schedule=None: the advice is an explicit window, or a data-interval timetable
    assert "pass since= and until=" in log
    assert "CronDataIntervalTimetable" in log
    assert states[("half_window", -1)] == "failed"
    assert "to take until from" in log
    assert states[("explicit_window", -1)] == "success"
    expected = runs_between(
        airflow_env.emu,
        datetime(2025, 12, 14, tzinfo=UTC),
        datetime(2025, 12, 14, 6, tzinfo=UTC),
    )
    assert [Run.model_validate(r) for r in xcom(dag_run, "explicit_window")] == expected


def test_a_zero_width_interval_is_explained(
    airflow_env: AirflowEnv, run_dag: RunDag, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import DAG

    from airflow_provider.operators.timbal import TimbalListRunsOperator

    with DAG(dag_id="timbal_test_at_daily", schedule="@daily", start_date=START) as dag:
        TimbalListRunsOperator(task_id="runs")
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=DAY)
    assert dag_run.state == "failed"
    log = _output(capfd)
    assert "data interval is empty" in log
    assert "CronDataIntervalTimetable" in log


def test_object_storage_output_is_uploaded_and_replaced(
    airflow_env: AirflowEnv, run_dag: RunDag, xcom: Any
) -> None:
    import fsspec
    from airflow.sdk.io import attach

    from airflow_provider.operators.timbal import TimbalListRunsOperator

    memory = fsspec.filesystem("memory")
    attach("memory", fs=memory)  # what the amazon/google providers do for s3:// and gs://
    uri = "memory://timbal-bucket/exports/dt={{ data_interval_start | ds }}/runs.jsonl"
    with _daily_dag("timbal_test_object_storage") as dag:
        # parallel from a template, as a string: the file is the sequential one all the same
        TimbalListRunsOperator(
            task_id="runs", output_path=uri, status="success", parallel="{{ 'auto' }}"
        )
    key = "/timbal-bucket/exports/dt=2025-12-14/runs.jsonl"
    memory.pipe(key, b'{"stale": true}\n' * 1000)  # a previous, wrong upload

    manifests = []
    for _ in range(2):
        dag_run = run_dag(dag, logical_date=DAY)
        assert dag_run.state == "success"
        manifests.append(xcom(dag_run, "runs"))
        lines = memory.cat(key).decode().splitlines()
        expected = runs_between(airflow_env.emu, DAY - timedelta(days=1), DAY, status="success")
        assert [Run.model_validate_json(line) for line in lines] == expected

    manifest = manifests[-1]
    assert manifest["path"] == "memory://timbal-bucket/exports/dt=2025-12-14/runs.jsonl"
    assert manifest["manifest_path"] == manifest["path"] + ".manifest.json"
    assert manifest["count"] == len(expected)
    assert manifest["filters"]["status"] == "success"
    assert manifests[0]["sha256"] == manifest["sha256"]
    sidecar = json.loads(memory.cat(key + ".manifest.json"))
    assert sidecar["sha256"] == manifest["sha256"]
    assert sorted(memory.ls("/timbal-bucket/exports/dt=2025-12-14", detail=False)) == [
        key,
        key + ".manifest.json",
    ]


def test_permanent_errors_fail_at_once_without_retries(
    timbal_emulator_factory: Any,
    airflow_db: Any,
    run_dag: RunDag,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    emu = timbal_emulator_factory(runs=50)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_WRONG", connection_json(emu, api_key="tk-wrong-000000"))
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_RIGHT", connection_json(emu))
    with _daily_dag(
        "timbal_test_fail_fast",
        default_args={"retries": 3, "retry_delay": timedelta(0)},
    ) as dag:
        TimbalListRunsOperator(task_id="bad_key", timbal_conn_id="timbal_wrong")
        TimbalListRunsOperator(task_id="bad_filter", timbal_conn_id="timbal_right", sort_by="x")
        TimbalListRunsOperator(task_id="bad_format", timbal_conn_id="timbal_right", format="xml")
        TimbalListRunsOperator(
            task_id="bad_parallel", timbal_conn_id="timbal_right", parallel="lots"
        )
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=DAY)
    log = _output(capfd)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    for task_id in ("bad_key", "bad_filter", "bad_format", "bad_parallel"):
        assert str(tis[task_id].state) == "failed"
        assert tis[task_id].try_number == 1, f"{task_id} was retried"
    assert "401 Unauthorized from GET" in log
    # the hint names the connection's field, not a variable the provider never reads
    assert "the API key was rejected — check the password of connection 'timbal_wrong'" in log
    assert "sort_by: 'x' is not one of id, created_at" in log
    assert "format: 'xml' is not one of jsonl, csv, parquet" in log
    assert "parallel: 'lots' is not a number of windows from 1 to 64, or 'auto'" in log
    assert "tk-wrong-000000" not in log


# Airflow's supervisor leaves one of its socketpair ends (AF_UNIX) to the garbage collector.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <socket\.socket fd=\d+, family=1,"
    ":pytest.PytestUnraisableExceptionWarning"
)
def test_task_logs_show_progress_and_mask_the_key(
    timbal_emulator_factory: Any,
    run_supervised: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run by the real supervisor (tests/airflow/dags/timbal_test_masking.py): log files."""
    secret = "tk-live-7f3a9c-do-not-log-5521"
    override = "tk-live-override-8814-do-not-log"  # OVERRIDE_KEY of the test DAG
    emu = timbal_emulator_factory(runs=400, span=timedelta(days=1), api_key=secret, page_size=5)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_SECRET", connection_json(emu))
    day = datetime(2026, 1, 1, tzinfo=UTC)  # FIXED_END: its interval holds all 400 runs
    failed = runs_between(emu, day - timedelta(days=1), day, status="error")
    assert len(failed) > 10  # several pages of 5

    fetch = run_supervised("timbal_test_masking", "runs", day)
    assert fetch.state == "success", fetch.log[-3000:]
    lines = [json.loads(line) for line in fetch.log.splitlines()]
    events = [line["event"] for line in lines]
    assert "Timbal runs to XCom: page 1, 5 runs so far (" in "\n".join(events)
    done = [e for e in events if e.startswith("Timbal runs to XCom: done")]
    assert len(done) == 1
    assert done[0].startswith(f"Timbal runs to XCom: done, {len(failed)} runs in ")
    assert done[0].endswith("runs/s)")
    assert secret not in fetch.log

    careless = run_supervised("timbal_test_masking", "careless", day)
    assert careless.state == "success", careless.log[-3000:]
    assert "logged keys: *** ***" in careless.log
    assert secret not in careless.log
    assert override not in careless.log


def test_the_operator_never_prints_the_key(
    timbal_emulator_factory: Any,
    airflow_db: Any,
    run_dag: RunDag,
    xcom: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    """In-process runs print task logs unmasked: the key must not be in them at all."""
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    secret = "tk-live-0b5e1d-never-printed-3141"
    emu = timbal_emulator_factory(runs=60, span=timedelta(days=1), api_key=secret)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_QUIET", connection_json(emu))
    with _daily_dag("timbal_test_quiet") as dag:
        TimbalListRunsOperator(task_id="to_xcom", timbal_conn_id="timbal_quiet")
        TimbalListRunsOperator(
            task_id="to_file",
            timbal_conn_id="timbal_quiet",
            output_path=str(tmp_path / "runs.csv"),
        )
        TimbalListRunsOperator(
            task_id="failing", timbal_conn_id="timbal_quiet", project_id="not-mine"
        )
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=datetime(2026, 1, 1, tzinfo=UTC))
    log = _output(capfd)
    assert len(xcom(dag_run, "to_xcom")) == 60
    assert xcom(dag_run, "to_file")["count"] == 60
    assert "403 Forbidden from GET /orgs/demo-org/projects/not-mine/runs" in log
    assert secret not in log
    assert secret not in (tmp_path / "runs.csv").read_text()
    assert secret not in (tmp_path / "runs.csv.manifest.json").read_text()
