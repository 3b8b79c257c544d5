"""Backfill a long range of Timbal runs, one mapped task per window.

Trigger it by hand with the range to fetch::

    airflow dags trigger timbal_backfill \\
        --conf '{"start": "2025-12-01", "end": "2026-01-01", "window_days": 1}'

``plan_windows`` cuts ``[start, end)`` into day-aligned windows, and dynamic task
mapping (``.partial(...).expand_kwargs(...)``) makes each window its own task
instance. Airflow spreads them over its workers, so this is how a very long history is
fetched when one machine is not enough; ``max_active_tis_per_dagrun`` caps how many
windows hit the API at once. Each window writes ``<root>/runs/dt=<day>/runs.<format>``,
the same layout as ``timbal_daily_export`` with one-day windows, and a re-run replaces
its files instead of appending to them. Clearing one failed window re-runs only it.

Set-up: the connection ``timbal_default`` and the Variable ``timbal_export_root``, as
for ``timbal_daily_export``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, Variable, task

from airflow_provider.operators.timbal import TimbalListRunsOperator
from timbal_integrations import parse_time
from timbal_integrations.errors import QueryError
from timbal_integrations.query import format_time

MAX_WINDOWS = 1000  # below Airflow's default max_map_length (1024)

with DAG(
    dag_id="timbal_backfill",
    description="A long range of Timbal runs, fetched as parallel mapped windows",
    schedule=None,
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
    params={
        "start": Param(None, type=["null", "string"], description="first day (inclusive)"),
        "end": Param(None, type=["null", "string"], description="last day (exclusive)"),
        "window_days": Param(1, type="integer", minimum=1, description="days per task"),
        "format": Param("jsonl", enum=["jsonl", "csv", "parquet"]),
    },
    tags=["timbal", "example"],
) as dag:

    @task
    def plan_windows(params: Any = None) -> list[dict[str, str]]:
        """The windows of ``[start, end)`` as keyword arguments of the export task."""
        assert params is not None
        if not params.get("start") or not params.get("end"):
            raise QueryError("start", "pass the range as conf: {'start': ..., 'end': ...}")
        start = parse_time(params["start"], field="start")
        end = parse_time(params["end"], field="end")
        if start >= end:
            raise QueryError("start", f"{format_time(start)} is not before end")
        step = timedelta(days=int(params["window_days"]))
        root = Variable.get("timbal_export_root").rstrip("/")
        windows = []
        since = start
        while since < end:
            until = min(since + step, end)
            windows.append(
                {
                    "since": format_time(since),
                    "until": format_time(until),
                    "output_path": (f"{root}/runs/dt={since:%Y-%m-%d}/runs.{params['format']}"),
                }
            )
            since = until
        if len(windows) > MAX_WINDOWS:
            raise QueryError(
                "window_days", f"{len(windows)} windows is too many; use longer windows"
            )
        return windows

    TimbalListRunsOperator.partial(
        task_id="export_window",
        max_active_tis_per_dagrun=8,
    ).expand_kwargs(plan_windows())
