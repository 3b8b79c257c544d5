"""A daily export of Timbal run history with Prefect: one file per UTC day, as an asset.

``export_day`` writes the runs created on one UTC day (default: yesterday) to
``<output_dir>/dt=<day>/runs.jsonl`` through ``prefect_timbal.export_runs_flow``, which
records the file as a Prefect asset with its count, SHA-256 and window.

Run it once::

    pip install 'timbal-integrations[prefect]'
    export TIMBAL_API_KEY=... TIMBAL_ORG_ID=... TIMBAL_PROJECT_ID=...
    python examples/prefect/export_flow.py                 # yesterday
    python examples/prefect/export_flow.py 2026-01-05      # a given day

With a saved block instead of the environment: ``prefect block register -m
prefect_timbal``, create a "Timbal Credentials" block named ``timbal`` (UI or
``TimbalCredentials(...).save("timbal")``), and set ``TIMBAL_BLOCK=timbal``.
Every day at 01:00 UTC: ``export_day.serve(cron="0 1 * * *")``.

Offline, against the built-in emulator (it serves the last 30 days): run
``timbal-runs emulator --port 8000`` in another shell, and ``export
TIMBAL_API_HOST=http://127.0.0.1:8000 TIMBAL_API_KEY=demo-key TIMBAL_ORG_ID=demo-org
TIMBAL_PROJECT_ID=demo-project``.
"""

import os
import sys
from datetime import UTC, date, datetime, timedelta

from prefect import flow

from prefect_timbal import TimbalCredentials, export_runs_flow
from timbal_integrations import parse_time
from timbal_integrations.export import ExportResult


def credentials() -> TimbalCredentials:
    """The block named by TIMBAL_BLOCK, else one made from Timbal's variables."""
    block = os.environ.get("TIMBAL_BLOCK")
    if block:
        return TimbalCredentials.load(block)
    return TimbalCredentials(
        api_key=os.environ.get("TIMBAL_API_KEY", ""),
        org_id=os.environ.get("TIMBAL_ORG_ID", ""),
        project_id=os.environ.get("TIMBAL_PROJECT_ID", ""),
        host=os.environ.get("TIMBAL_API_HOST") or "https://api.timbal.ai",
    )


@flow(name="timbal-daily-export")
def export_day(day: date | None = None, output_dir: str = "timbal-runs") -> ExportResult:
    """Export the runs created on ``day`` (UTC; default yesterday) to one JSON Lines file."""
    if day is None:
        day = datetime.now(UTC).date() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return export_runs_flow(
        credentials(),
        since=start,
        until=start + timedelta(days=1),
        output_path=os.path.join(output_dir, f"dt={day.isoformat()}", "runs.jsonl"),
    )


if __name__ == "__main__":
    chosen = parse_time(sys.argv[1], field="day").date() if len(sys.argv) > 1 else None
    result = export_day(chosen, os.environ.get("TIMBAL_EXPORT_DIR", "timbal-runs"))
    print(f"{result.count} runs -> {result.path} (sha256 {result.sha256})")
