"""Keep a dataset of every Timbal run exact, one sync a day.

A daily export stores yesterday's runs as they stood at midnight: some still running,
with no duration or cost, and without the reactions that come later. This DAG syncs a
dataset instead: each run lists the last ``lookback`` days again (3 by default) and
re-checks every run that was still running, so yesterday's partition settles over the
next days, and only the partitions that changed are rewritten.

The dataset is ``<root>/runs/dt=<day>/runs.<format>`` with ``manifest.json`` (counts
per day, runs still running) and ``state.json``. The first run fetches the whole
history (from the ``since`` parameter, if set).

Set-up:

- the Airflow connection ``timbal_default`` (see the README);
- the Airflow Variable ``timbal_sync_root``: a local directory or any
  ``ObjectStoragePath`` URI, such as ``s3://my-bucket/timbal`` (set it in the UI, or as
  the environment variable ``AIRFLOW_VAR_TIMBAL_SYNC_ROOT``);
- optionally the run parameters ``format`` (``jsonl``, ``csv`` or ``parquet``; fixed
  by the first sync), ``lookback`` (``3d``) and ``since`` (where a new dataset starts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from airflow_provider.operators.sync import TimbalSyncRunsOperator

with DAG(
    dag_id="timbal_daily_sync",
    description="Every Timbal run, one file per day, kept exact by a daily sync",
    # Each run covers [midnight, next midnight) in UTC and syncs up to its end.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,  # each sync covers everything since the last one
    max_active_runs=1,
    params={
        "format": Param("jsonl", enum=["jsonl", "csv", "parquet"]),
        "lookback": Param("3d", type="string"),
        "since": Param("", type="string"),
    },
    tags=["timbal", "example"],
) as dag:
    sync = TimbalSyncRunsOperator(
        task_id="sync_runs",
        output_dir="{{ var.value.timbal_sync_root }}",
        format="{{ params.format }}",
        lookback="{{ params.lookback }}",
        since="{{ params.since }}",
    )

    @task
    def report_open_runs(report: dict[str, Any]) -> int:
        """Say what the sync did, and how many runs in the dataset have not ended yet."""
        print(
            f"{report['runs']} runs in {report['path']}: {report['added']} added, "
            f"{report['changed']} changed, {report['still_open']} still running "
            f"({report['partitions_rewritten']} of {report['partitions']} days rewritten)"
        )
        return int(report["still_open"])

    report_open_runs(sync.output)
