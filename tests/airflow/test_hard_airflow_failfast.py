"""Found in a real deployment (issue 16, item 11): a connection id that does not exist is
not a network fault (fail at once, never retry), and a host that does not answer costs a
try seconds, not a minute of client retries (Airflow's task retries do the waiting)."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.airflow.helpers_airflow import RunDag, connection_json
from timbal_integrations.emulator import Emulator

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(120)]

START = datetime(2025, 12, 1, tzinfo=UTC)


def _output(capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return out + err


def _closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unknown_connection_fails_the_task_at_once(
    airflow_env: Any, run_dag: RunDag, task_states: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow.sdk import DAG

    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from airflow_provider.sensors.timbal import TimbalRunSensor

    with DAG(dag_id="timbal_test_unknown_conn", schedule=None, start_date=START) as dag:
        TimbalListRunsOperator(
            task_id="export",
            timbal_conn_id="timbal_typo",
            since="2025-12-14",
            until="2025-12-15",
            retries=3,
            retry_delay=timedelta(0),
        )
        for deferrable in (False, True):
            TimbalRunSensor(
                task_id=f"wait_{'deferrable' if deferrable else 'poke'}",
                run_id="r",
                timbal_conn_id="timbal_typo",
                deferrable=deferrable,
                retries=3,
                retry_delay=timedelta(0),
            )
    capfd.readouterr()
    dag_run = run_dag(dag, logical_date=None)
    log = _output(capfd)
    # failed at the first try: retrying cannot create the connection
    assert set(task_states(dag_run).values()) == {"failed"}
    assert {ti.task_id: ti.try_number for ti in dag_run.get_task_instances()} == {
        "export": 1,
        "wait_poke": 1,
        "wait_deferrable": 1,
    }
    assert (
        "the Airflow connection 'timbal_typo' is not defined: create it with type 'timbal' "
        "(host = API host, password = API key, extra org_id and project_id), e.g. "
        "AIRFLOW_CONN_TIMBAL_TYPO="
    ) in log


def test_an_unreachable_host_fails_a_try_within_the_documented_bound(
    airflow_db: Any,
    timbal_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow_provider.hooks.timbal import AIRFLOW_RETRY_POLICY
    from airflow_provider.operators.timbal import TimbalListRunsOperator
    from timbal_integrations import APIConnectionError

    emu: Emulator = timbal_emulator_factory(runs=5)
    unreachable = connection_json(emu).replace(emu.base_url, f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_DOWN", unreachable)
    operator = TimbalListRunsOperator(
        task_id="export", timbal_conn_id="timbal_down", since="2025-12-14", until="2025-12-15"
    )
    with (
        caplog.at_level(logging.WARNING, logger="timbal_integrations"),
        pytest.raises(APIConnectionError) as info,  # a try fails; Airflow may retry it
    ):
        operator.execute({})  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert "after 5 attempts" in message
    assert "is http://127.0.0.1:" in message
    assert "reachable?" in message

    # Every wait between attempts is under its ceiling, and the ceilings add up to the
    # README's bound: 0.5 + 1 + 2 + 4 = 7.5 s of backoff per try, 4 retries.
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == AIRFLOW_RETRY_POLICY.max_retries == 4
    ceilings = [
        min(AIRFLOW_RETRY_POLICY.backoff_max, AIRFLOW_RETRY_POLICY.backoff_base * 2**n)
        for n in range(AIRFLOW_RETRY_POLICY.max_retries)
    ]
    assert sum(ceilings) == 7.5
    for record, ceiling in zip(retries, ceilings, strict=True):
        assert isinstance(record.args, tuple)
        assert float(record.args[2]) <= ceiling
