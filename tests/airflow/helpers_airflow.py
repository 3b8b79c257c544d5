"""Helpers of the Airflow tests (no Airflow import here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.processes import wait_until
from timbal_integrations import Run
from timbal_integrations.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "examples" / "airflow"
TEST_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"

RunDag = Callable[..., Any]
"""``run_dag(dag, **dag_test_kwargs)`` (the fixture of that name)."""


@dataclass
class AirflowEnv:
    """What the Airflow tests share: the emulator behind ``timbal_default``, and AIRFLOW_HOME."""

    emu: Emulator
    home: Path


def connection_json(emu: Emulator, *, api_key: str | None = None) -> str:
    """``AIRFLOW_CONN_...`` in JSON form for an emulator."""
    return json.dumps(
        {
            "conn_type": "timbal",
            "host": emu.base_url,
            "password": emu.api_key if api_key is None else api_key,
            "extra": {"org_id": emu.org_id, "project_id": emu.project_id},
        }
    )


def runs_between(emu: Emulator, since: datetime, until: datetime, **equal: str) -> list[Run]:
    """Ground truth: the emulator's runs in ``[since, until)`` matching ``equal``, newest first."""
    out = []
    for raw in emu.runs:
        run = Run.model_validate(raw)
        if since <= run.created_at < until and all(
            raw.get(key) == value for key, value in equal.items()
        ):
            out.append(run)
    return out


def answered(emu: Emulator, endpoint: str) -> int:
    """How many requests to ``endpoint`` (``get``, ``list``) the emulator has answered:
    its request log gets an entry once the response is sent, so a change made after this
    count moves cannot race with the response it counts."""
    return sum(1 for entry in emu.request_log.entries() if entry.endpoint == endpoint)


class LiveRuns:
    """Change an emulator's runs while a task waits on them, through the emulator's live
    state API (``update_run``, ``add_run``, ``remove_run``), at the right moment."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def gets(self) -> int:
        """How many get-run requests the emulator has answered so far."""
        return answered(self.emu, "get")

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change fields of a run (``status="success"``, ``status_detail=...``)."""
        self.emu.update_run(run_id, **fields)

    def add_run(self, record: dict[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped dict)."""
        self.emu.add_run(record)

    def remove_run(self, run_id: str) -> None:
        """Delete a run: from now on it answers 404."""
        self.emu.remove_run(run_id)

    def change_after_gets(self, polls: int, run_id: str, **fields: Any) -> threading.Thread:
        """In the background: once ``polls`` more get-run requests have arrived (the
        sensor has seen the run as it is), apply ``update_run(run_id, **fields)``, or
        ``remove_run(run_id)`` when ``fields`` is ``{"removed": True}``."""
        target = self.gets() + polls

        def change() -> None:
            wait_until(lambda: self.gets() >= target, timeout=60, what=f"{polls} polls")
            if fields == {"removed": True}:
                self.remove_run(run_id)
            else:
                self.update_run(run_id, **fields)

        thread = threading.Thread(target=change, daemon=True)
        thread.start()
        return thread


def copy_run(template: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of ``template`` (one of the emulator's own records, so its user and
    workforce are the emulator's) under a new id and idempotency key, with ``fields``.
    For runs made from nothing, use :func:`tests.support.runs.make_run`."""
    import uuid

    record = dict(template)
    record["id"] = fields.pop("id", None) or "run_" + uuid.uuid4().hex[:20]
    record["idempotency_key"] = fields.pop("idempotency_key", None) or "key-" + uuid.uuid4().hex
    record.update(fields)
    return record
