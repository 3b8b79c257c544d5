"""Run a DAG whenever new Timbal runs fail: event-driven scheduling with ``AssetWatcher``.

Airflow's triggerer runs :class:`~airflow_provider.triggers.timbal.TimbalNewRunsTrigger`,
which lists the project's failed runs every minute and fires an event for each batch
of new ones. The event updates the asset ``timbal_new_failures`` (its extra's
``payload`` holds the runs' ``count``, their ``run_ids``, ``by_status`` and
``by_workforce``), and that asset event starts this DAG. No schedule, no polling task,
no worker slot while nothing fails.

Each failed run is reported once: the watcher remembers what it reported in the asset's
state store, across triggerer restarts (see ``TimbalNewRunsTrigger`` for the exact
semantics). The first time it starts, the failures that already exist are its baseline.

Set-up: the connection ``timbal_default`` (see the README) and a running triggerer
(``airflow triggerer``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider.hooks.timbal import TimbalHook
from airflow_provider.triggers.timbal import TimbalNewRunsTrigger

log = logging.getLogger(__name__)

new_failures = Asset(
    "timbal_new_failures",
    watchers=[
        AssetWatcher(
            name="timbal_new_failures_watcher",
            trigger=TimbalNewRunsTrigger(status="error", poke_interval=60),
        )
    ],
)

with DAG(
    dag_id="timbal_on_new_failures",
    description="Triage each batch of newly failed Timbal runs",
    schedule=[new_failures],
    start_date=datetime(2025, 12, 1, tzinfo=UTC),
    catchup=False,
    tags=["timbal", "example"],
) as dag:

    @task
    def triage(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """Look up each new failure (at most 20 per batch) and log why it failed."""
        assert triggering_asset_events is not None
        run_ids: list[str] = []
        for event in triggering_asset_events[new_failures]:
            payload = event.extra["payload"]
            log.info("%d new failed run(s): %s", payload["count"], payload["by_workforce"])
            run_ids.extend(payload["run_ids"])
        report = []
        with TimbalHook() as hook:
            for run_id in run_ids[:20]:
                run = hook.get_run(run_id)
                report.append({"id": run.id, "status_detail": run.status_detail})
                log.info("%s failed: %s", run.id, run.status_detail)
        return report

    triage()
