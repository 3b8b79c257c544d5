"""A test-only DAG (bundle ``timbal-test-dags``): run by the real task supervisor, whose
log files must show the API key masked even when user code logs it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from airflow.sdk import DAG, BaseHook, CronDataIntervalTimetable, task

from airflow_provider.hooks.timbal import TimbalHook
from airflow_provider.operators.timbal import TimbalListRunsOperator

OVERRIDE_KEY = "tk-live-override-8814-do-not-log"

log = logging.getLogger(__name__)

with DAG(
    dag_id="timbal_test_masking",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
):
    TimbalListRunsOperator(task_id="runs", timbal_conn_id="timbal_secret", status="error")

    @task
    def careless() -> None:
        """Logs the keys, as user code sometimes does by mistake."""
        conn = BaseHook.get_connection("timbal_secret")
        TimbalHook("timbal_secret", api_key=OVERRIDE_KEY)  # registers the override for masking
        log.info("logged keys: %s %s", conn.password, OVERRIDE_KEY)

    careless()
