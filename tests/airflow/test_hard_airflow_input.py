"""Hostile and mistaken operator arguments: each fails the task at once with a one-line
message naming the argument, before any request reaches the API (and without burning
Airflow retries: the failure is an ``AirflowFailException``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.airflow.helpers_airflow import connection_json
from timbal_integrations import QueryError
from timbal_integrations.emulator import Emulator, run_emulator

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(60)]

KEY = "tk_hard_airflow_input_9b3e5d7f1a"
END = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = {"data_interval_start": END - timedelta(days=1), "data_interval_end": END}

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
    ("no-data-interval", {}, {}, "since"),
    ("empty-data-interval", {}, {"data_interval_start": END, "data_interval_end": END}, "since"),
]

AT_CONSTRUCTION: list[tuple[str, dict[str, Any], str]] = [
    ("max-xcom-runs-zero", {"max_xcom_runs": 0}, "max_xcom_runs"),
    ("max-xcom-runs-string", {"max_xcom_runs": "10"}, "max_xcom_runs"),
    ("max-retries-negative", {"max_retries": -1}, "max_retries"),
    ("max-retries-string", {"max_retries": "3"}, "max_retries"),
    ("max-retries-absurd", {"max_retries": 10**6}, "max_retries"),
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
