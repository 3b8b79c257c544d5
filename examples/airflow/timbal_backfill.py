"""Backfill a long range of Timbal runs, one mapped task per window.

Trigger it by hand with the range to fetch::

    airflow dags trigger timbal_backfill \\
        --conf '{"start": "2025-12-01", "end": "2026-01-01", "window_days": 1}'

``plan_windows`` cuts ``[start, end)`` into day-aligned windows, and dynamic task
mapping (``.partial(...).expand_kwargs(...)``) makes each window its own task
instance, shown in the UI by its first day (``map_index_template``) rather than 0, 1, 2.
Airflow spreads them over its workers, so this is how a very long history is fetched
when one machine is not enough; ``max_active_tis_per_dagrun`` caps how many windows hit
the API at once. Each window writes ``<root>/runs/dt=<day>/runs.<format>``, the same
layout as ``timbal_daily_export`` with one-day windows, and a re-run replaces its files
instead of appending to them. Clearing one failed window re-runs only it. Each file
written is an asset event through the alias ``timbal_runs``, one per window.

``start`` and ``end`` must be midnights (UTC), as in ``2025-12-01`` or
``2025-12-01T00:00:00Z``: every window writes a whole-day partition, so a start at 06:00
would replace each day's file with the runs of two half days. Anything else is refused
with one line before any window runs: nothing is shifted or rounded silently.

Set-up: the connection ``timbal_default`` and the Variable ``timbal_export_root``, as
for ``timbal_daily_export``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, Variable, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider.operators.timbal import TimbalListRunsOperator
from timbal_integrations import parse_time
from timbal_integrations.errors import QueryError
from timbal_integrations.query import format_time

MAX_WINDOWS = 1000  # below Airflow's default max_map_length (1024)


def _day_range(start_text: Any, end_text: Any) -> tuple[datetime, datetime]:
    """``[start, end)`` from the conf: two midnights (UTC), start first."""
    if not start_text or not end_text:
        raise QueryError("start", "pass the range as conf: {'start': ..., 'end': ...}")
    start = parse_time(start_text, field="start")
    end = parse_time(end_text, field="end")
    for name, value in (("start", start), ("end", end)):
        if value != value.replace(hour=0, minute=0, second=0, microsecond=0):
            raise QueryError(
                name,
                f"{format_time(value)} is not a midnight (UTC); each window writes a "
                "whole-day partition, which a shifted window would overwrite with parts of "
                f"two days: give a day, such as {value:%Y-%m-%d}",
            )
    if start >= end:
        raise QueryError("start", f"{format_time(start)} is not before end")
    return start, end


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
        try:
            start, end = _day_range(params.get("start"), params.get("end"))
        except QueryError as error:  # one line, and no retry: the conf must change
            raise AirflowFailException(str(error)) from None
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
        # The UI shows each mapped task by its window's first day, not by 0, 1, 2...
        map_index_template="{{ task.since[:10] }}",
        # One asset event per window written (the same alias as timbal_daily_export).
        outlets=[AssetAlias("timbal_runs")],
    ).expand_kwargs(plan_windows())
