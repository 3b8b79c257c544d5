"""Hostile and mistaken operator arguments: each fails the task at once with a one-line
message naming the argument, before any request reaches the API (and without burning
Airflow retries: the failure is an ``AirflowFailException``)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.helpers_airflow import connection_json
from timbal_integrations import QueryError
from timbal_integrations.emulator import Emulator, run_emulator

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(60)]

KEY = "tk_hard_airflow_input_9b3e5d7f1a"
END = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = {"data_interval_start": END - timedelta(days=1), "data_interval_end": END}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


# (id, operator arguments, the context's data interval, the field the message names)
AT_RUN_TIME: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("since-words", {"since": "yesterday"}, INTERVAL, "since"),
    ("since-after-until", {"since": "2026-01-02", "until": "2026-01-01"}, INTERVAL, "since"),
    ("since-absurd", {"since": 10**20}, INTERVAL, "since"),
    ("since-year-1", {"since": "0001-01-01"}, INTERVAL, "since"),
    ("until-bad-date", {"until": "9999-99-99"}, INTERVAL, "until"),
    ("sort-by-injection", {"sort_by": "id; DROP TABLE runs"}, INTERVAL, "sort_by"),
    ("sort-order", {"sort_order": "up"}, INTERVAL, "sort_order"),
    ("roots-maybe", {"roots": "maybe"}, INTERVAL, "roots"),
    ("metadata-broken", {"metadata": '{"env": '}, INTERVAL, "metadata"),
    ("metadata-array", {"metadata": "[1, 2]"}, INTERVAL, "metadata"),
    ("limit-negative", {"limit": "-5"}, INTERVAL, "limit"),
    ("limit-words", {"limit": "lots"}, INTERVAL, "limit"),
    ("limit-fraction", {"limit": 2.5}, INTERVAL, "limit"),
    ("format-unknown", {"format": "xml"}, INTERVAL, "format"),
    ("path-unknown-extension", {"output_path": "/tmp/timbal-x/runs.xml"}, INTERVAL, "format"),
    ("status-header-injection", {"status": "error\r\nX-Injected: 1"}, INTERVAL, "status"),
    ("user-id-huge", {"user_id": "u" * 10_000}, INTERVAL, "user_id"),
    ("org-id-traversal", {"org_id": "../admin"}, INTERVAL, "org_id"),
    ("project-id-dot-dot", {"project_id": ".."}, INTERVAL, "project_id"),
    # issue 16: each escaped as a traceback (a retryable failure) or went to the server
    ("metadata-5000-deep", {"metadata": '{"a":' * 5000 + "1" + "}" * 5000}, INTERVAL, "metadata"),
    ("metadata-120KB", {"metadata": json.dumps({"note": "x" * 120_000})}, INTERVAL, "metadata"),
    ("metadata-nan", {"metadata": '{"score": NaN}'}, INTERVAL, "metadata"),
    ("csv-safe-to-xcom", {"csv_safe": True}, INTERVAL, "csv_safe"),
    (
        "csv-safe-jsonl",
        {"csv_safe": True, "output_path": "/tmp/timbal-x/r.jsonl"},
        INTERVAL,
        "csv_safe",
    ),
    ("no-data-interval", {}, {}, "since"),
    ("empty-data-interval", {}, {"data_interval_start": END, "data_interval_end": END}, "since"),
]

AT_CONSTRUCTION: list[tuple[str, dict[str, Any], str]] = [
    ("max-xcom-runs-zero", {"max_xcom_runs": 0}, "max_xcom_runs"),
    ("max-xcom-runs-string", {"max_xcom_runs": "10"}, "max_xcom_runs"),
    ("max-retries-negative", {"max_retries": -1}, "max_retries"),
    ("max-retries-string", {"max_retries": "3"}, "max_retries"),
    ("max-retries-absurd", {"max_retries": 10**6}, "max_retries"),
    ("csv-safe-string", {"csv_safe": "yes"}, "csv_safe"),
    ("metadata-deep-dict", {"metadata": _nested(5000)}, "metadata"),
    ("metadata-dict-nan", {"metadata": {"score": float("nan")}}, "metadata"),
    ("metadata-dict-120KB", {"metadata": {"note": "x" * 120_000}}, "metadata"),
]


@pytest.fixture(scope="module")
def emu() -> Any:
    with run_emulator(runs=100, seed=9, span=timedelta(days=1), api_key=KEY) as emulator:
        yield emulator


def one_clear_line(message: str, field: str) -> None:
    assert field in message.lower(), message
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert len(message) < 600, message
    assert "Traceback" not in message
    assert KEY not in message


@pytest.mark.parametrize(
    ("arguments", "context", "field"), [pytest.param(*row[1:], id=row[0]) for row in AT_RUN_TIME]
)
def test_bad_arguments_fail_the_task_at_once_before_any_request(
    airflow_db: Any,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    arguments: dict[str, Any],
    context: dict[str, Any],
    field: str,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider.operators.timbal import TimbalListRunsOperator

    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_HARD_INPUT", connection_json(emu))
    operator = TimbalListRunsOperator(
        task_id="bad_input", timbal_conn_id="timbal_hard_input", **arguments
    )
    before = emu.stats.requests_total
    with pytest.raises(AirflowFailException) as info:
        operator.execute(context)  # type: ignore[arg-type]
    assert emu.stats.requests_total == before, "a request reached the API"
    one_clear_line(str(info.value), field)


@pytest.mark.parametrize(
    ("arguments", "field"), [pytest.param(*row[1:], id=row[0]) for row in AT_CONSTRUCTION]
)
def test_bad_arguments_fail_when_the_dag_is_parsed(
    airflow_db: Any, arguments: dict[str, Any], field: str
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    with pytest.raises(QueryError) as info:
        TimbalListRunsOperator(task_id="bad_argument", **arguments)
    assert info.value.field == field
    one_clear_line(str(info.value), field)


# --------------------------------------------------------------------------- issue 16


def _hostile_connection(server: Any, conn_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.hostile import KEY as HOSTILE_KEY
    from tests.support.hostile import ORG, PROJECT

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "timbal",
                "host": server.base_url,
                "password": HOSTILE_KEY,
                "extra": {"org_id": ORG, "project_id": PROJECT},
            }
        ),
    )


def test_a_server_echoing_the_key_fails_the_task_in_the_connections_terms(
    airflow_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from tests.support.hostile import HostileServer, echoed_key_forms, error

    forms = echoed_key_forms()
    said = " | ".join(forms.values())
    with HostileServer(error(401, json.dumps({"message": said}).encode())).running() as server:
        _hostile_connection(server, "timbal_echo", monkeypatch)
        operator = TimbalListRunsOperator(task_id="echo", timbal_conn_id="timbal_echo")
        with pytest.raises(AirflowFailException) as info:
            operator.execute(INTERVAL)  # type: ignore[arg-type]
        assert server.count == 1  # a 401 is not retried
    message = str(info.value)
    assert "the API key was rejected — check the password of connection 'timbal_echo'" in message
    assert "TIMBAL_API_KEY" not in message
    for form in forms.values():
        assert form.strip(".").rstrip("=")[-12:] not in message


def test_csv_safe_file_output(
    airflow_db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from tests.support.hostile import HostileServer, pages
    from tests.support.runs import make_run

    names = ["=1+1", "@cmd", "Ada"]

    def page(request: Any) -> dict[str, Any]:
        runs = [
            make_run(
                i, created_at="2025-12-31T12:00:00Z", user={"id": "u", "name": n, "email": "e"}
            )
            for i, n in enumerate(names)
        ]
        return {"runs": runs, "next_page_token": None}

    target = tmp_path / "runs.csv"
    with HostileServer(pages(page)).running() as server:
        _hostile_connection(server, "timbal_formulas", monkeypatch)
        operator = TimbalListRunsOperator(
            task_id="csv", timbal_conn_id="timbal_formulas", output_path=str(target), csv_safe=True
        )
        manifest = operator.execute(INTERVAL)  # type: ignore[arg-type]
    with target.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["user_name"] for row in rows] == ["'=1+1", "'@cmd", "Ada"]
    assert json.loads(Path(manifest["manifest_path"]).read_text())["csv_safe"] is True


# A 401 inside a DAG (issue 11's part done by the refactor, verified here): the failure
# names the connection's password and the real connection id, not TIMBAL_API_KEY, both
# from the operator and from the hook used in a TaskFlow task.
def test_a_401_inside_a_dag_names_the_connection_not_the_variable(
    airflow_db: Any,
    run_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.sdk import DAG, CronDataIntervalTimetable, task

    from airflow_provider.hooks.timbal import TimbalHook
    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from tests.support.hostile import HostileServer, error

    body = json.dumps({"message": "invalid API key"}).encode()
    with HostileServer(error(401, body)).running() as server:
        _hostile_connection(server, "timbal_rejected", monkeypatch)

        @task(task_id="hook_in_a_task")
        def hook_in_a_task() -> int:
            with TimbalHook("timbal_rejected") as hook:
                return len(list(hook.list_runs(limit=1)))

        with DAG(
            dag_id="timbal_test_401_names",
            schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
            start_date=END - timedelta(days=3),
            catchup=False,
            default_args={"retries": 0},
        ) as dag:
            TimbalListRunsOperator(task_id="operator", timbal_conn_id="timbal_rejected")
            hook_in_a_task()
        capfd.readouterr()
        dag_run = run_dag(dag, logical_date=END)
    out, err = capfd.readouterr()
    log = out + err
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {"operator": "failed", "hook_in_a_task": "failed"}
    hint = "the API key was rejected — check the password of connection 'timbal_rejected'"
    assert log.count(hint) >= 2, log[-3000:]
    assert "TIMBAL_API_KEY" not in log
