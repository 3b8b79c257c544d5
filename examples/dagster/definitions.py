"""Timbal run history in Dagster: one file of runs per day, and a job for each new failure.

- ``timbal_runs``: a daily-partitioned asset; partition ``D`` is the JSON Lines file of
  every run created on UTC day ``D`` (``$TIMBAL_EXPORT_DIR/dt=D/runs.jsonl``).
- ``triage_timbal_errors``: a job run by the sensor ``timbal_new_errors`` for each batch
  of new failed runs (their ids are in the run's tags).

Run it::

    pip install 'timbal-integrations[dagster]' dagster-webserver
    export TIMBAL_API_KEY=... TIMBAL_ORG_ID=... TIMBAL_PROJECT_ID=...
    dagster dev -f examples/dagster/definitions.py
    dagster asset materialize -f examples/dagster/definitions.py \\
        --select timbal_runs --partition "$(date -u -d yesterday +%F)"

Offline, against the built-in emulator (it serves the last 30 days): run
``timbal-runs emulator --port 8000`` in another shell, and ``export
TIMBAL_API_HOST=http://127.0.0.1:8000 TIMBAL_API_KEY=demo-key TIMBAL_ORG_ID=demo-org
TIMBAL_PROJECT_ID=demo-project``.
"""

import os

from dagster import Definitions, EnvVar, OpExecutionContext, job, op

from dagster_timbal import TimbalResource, timbal_runs_asset, timbal_runs_sensor

# Where the files go: a directory, or a URI such as s3://bucket/timbal (with s3fs).
EXPORT_DIR = os.environ.get("TIMBAL_EXPORT_DIR", "timbal-runs")
# The first day to export (UTC).
START_DATE = os.environ.get("TIMBAL_START_DATE", "2025-12-01")

timbal_runs = timbal_runs_asset(output_dir=EXPORT_DIR, start_date=START_DATE)


@op
def triage(context: OpExecutionContext) -> None:
    """Look at the new failed runs (a real job would open tickets, page someone, ...)."""
    ids = context.run.tags["timbal/run_ids"].split(",")
    context.log.info(f"{len(ids)} new failed Timbal run(s): {', '.join(ids)}")


@job
def triage_timbal_errors() -> None:
    """Triage a batch of failed Timbal runs."""
    triage()


timbal_new_errors = timbal_runs_sensor(
    triage_timbal_errors, name="timbal_new_errors", status="error"
)

defs = Definitions(
    assets=[timbal_runs],
    jobs=[triage_timbal_errors],
    sensors=[timbal_new_errors],
    resources={
        # The key, org and project come from the environment; the host too, when set
        # (TIMBAL_API_HOST; https://api.timbal.ai otherwise).
        "timbal": TimbalResource(
            api_key=EnvVar("TIMBAL_API_KEY"),
            org_id=EnvVar("TIMBAL_ORG_ID"),
            project_id=EnvVar("TIMBAL_PROJECT_ID"),
        )
    },
)
