"""Report the failed Timbal runs of each day, through XCom.

``TimbalListRunsOperator`` without ``output_path`` returns the runs of the DAG run's
data interval as JSON-ready dicts (at most ``max_xcom_runs``, 1,000 by default; a day
with more fails the task and asks for ``output_path``). A downstream ``@task`` turns
them into a report: how many runs failed, which agents and workflows failed most, and
the failed runs themselves. Its return value (the report) is in XCom too.

Set-up: the Airflow connection ``timbal_default`` (see the README), for example
``AIRFLOW_CONN_TIMBAL_DEFAULT='{"conn_type": "timbal", "host": "api.timbal.ai",
"password": "<key>", "extra": {"org_id": "<org>", "project_id": "<project>"}}'``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, task

from airflow_provider.operators.timbal import TimbalListRunsOperator
from timbal_integrations import Run
from timbal_integrations.summary import summarize

log = logging.getLogger(__name__)

with DAG(
    dag_id="timbal_failed_runs_report",
    description="The failed Timbal runs of each day, reported from XCom",
    # A data-interval timetable: each run covers [midnight, next midnight) in UTC.
    # (Airflow 3's schedule="@daily" gives zero-width intervals; see the README.)
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    tags=["timbal", "example"],
) as dag:
    failed_runs = TimbalListRunsOperator(
        task_id="failed_runs",
        status="error",
        sort_order="asc",
    )

    @task
    def report(runs: list[dict[str, Any]], data_interval_start: Any = None) -> dict[str, Any]:
        """Summarise the interval's failed runs; the report is this task's XCom value."""
        parsed = [Run.model_validate(run) for run in runs]
        summary = summarize(parsed)
        day = data_interval_start.strftime("%Y-%m-%d") if data_interval_start else "?"
        log.info("%d failed run(s) on %s", summary.total, day)
        for bucket in summary.by_workforce:
            log.info("  %s (%s): %d failed", bucket.name, bucket.type, bucket.count)
        return {
            "day": day,
            "failed": summary.total,
            "cost_usd": summary.cost_usd_total,
            "by_workforce": {bucket.name: bucket.count for bucket in summary.by_workforce},
            "runs": [
                {
                    "id": run.id,
                    "created_at": run.created_at.isoformat(),
                    "workforce": run.workforce.name,
                    "user": run.user.email,
                }
                for run in parsed
            ],
        }

    report(failed_runs.output)
