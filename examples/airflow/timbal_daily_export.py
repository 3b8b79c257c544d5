"""Export each day's Timbal runs to a file partition, one DAG run per day.

Every DAG run fetches exactly its data interval, ``[midnight, next midnight)`` in UTC,
and writes it to ``<root>/runs/dt=<day>/runs.<format>``. Re-running a day (a clear,
a retry, a backfill) replaces that day's file atomically: never duplicates.

Set-up:

- the Airflow connection ``timbal_default`` (see the README);
- the Airflow Variable ``timbal_export_root``: a local directory or any
  ``ObjectStoragePath`` URI, such as ``s3://my-bucket/timbal`` (set it in the UI, or
  as the environment variable ``AIRFLOW_VAR_TIMBAL_EXPORT_ROOT``);
- optionally the run parameter ``format``: ``jsonl`` (default), ``csv`` or ``parquet``.

To fill in past days: ``airflow backfill create --dag-id timbal_daily_export
--from-date 2025-12-01 --to-date 2025-12-31``, or the ``timbal_backfill`` DAG.

To run one day by hand, trigger it with a logical date: ``airflow dags trigger
timbal_daily_export --logical-date 2025-12-15T00:00:00+00:00`` exports 2025-12-14 (the
day that ends then). A run triggered without one has no data interval, so no day: its
task fails at once with one line saying so (no retries, no file written).

Each file written is an asset event (URI ``file:///...`` or the object-storage URI, with
``count``, ``sha256``, ``bytes``, ``format``, ``since`` and ``until`` in its extra) through
the asset alias ``timbal_runs``, so another DAG can run whenever a day lands::

    @dag(schedule=AssetAlias("timbal_runs"))
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, Param

from airflow_provider.operators.timbal import TimbalListRunsOperator

with DAG(
    dag_id="timbal_daily_export",
    description="Each day's Timbal runs, as one file per day",
    # A data-interval timetable: each run covers [midnight, next midnight) in UTC and
    # starts once that day is over. Airflow 3's schedule="@daily" would give
    # zero-width intervals (start == end), which fetch nothing: see the README.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    # Only the latest day is scheduled; fill in the past with a backfill (above).
    catchup=False,
    max_active_runs=4,
    params={"format": Param("jsonl", enum=["jsonl", "csv", "parquet"])},
    tags=["timbal", "example"],
) as dag:
    TimbalListRunsOperator(
        task_id="export_runs",
        output_path=(
            "{{ var.value.timbal_export_root }}/runs/dt={{ data_interval_start | ds }}"
            "/runs.{{ params.format }}"
        ),
        # Each file written gets an asset event through this alias (see the docstring).
        outlets=[AssetAlias("timbal_runs")],
    )
