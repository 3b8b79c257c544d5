"""Helpers of the Airflow tests (no Airflow import here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> None:
    """Wait (polling briefly) until ``condition()`` is true; fail after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class LiveRuns:
    """Change an emulator's runs while it serves: a run finishes, appears or vanishes.

    Uses the emulator's own live-state API (``update_run``, ``add_run``, ``remove_run``)
    when it has one; otherwise swaps in a new ``RunStore`` built from the changed records
    (the store is immutable; a swap is atomic for requests in flight).
    """

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._native = all(hasattr(emu, name) for name in ("update_run", "add_run", "remove_run"))

    def _swap(self, records: list[dict[str, Any]]) -> None:
        from timbal_integrations.emulator.store import RunStore

        old = self.emu.app.store
        self.emu.app.store = RunStore(
            records, page_size=old.page_size, extra_fields=old.extra_fields
        )

    def _records(self) -> list[dict[str, Any]]:
        return [dict(record) for record in self.emu.app.store.records()]

    def gets(self) -> int:
        """How many get-run requests the emulator has answered so far."""
        return self.emu.stats.requests_by_endpoint.get("get", 0)

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

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change fields of a run (``status="success"``, ``status_detail=...``)."""
        if self._native:
            self.emu.update_run(run_id, **fields)  # type: ignore[attr-defined]
            return
        records = self._records()
        for record in records:
            if run_id in (record["id"], record["idempotency_key"]):
                record.update(fields)
                break
        else:
            raise KeyError(run_id)
        self._swap(records)

    def add_run(self, record: dict[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped dict)."""
        if self._native:
            self.emu.add_run(record)  # type: ignore[attr-defined]
            return
        self._swap([*self._records(), record])

    def remove_run(self, run_id: str) -> None:
        """Delete a run: from now on it answers 404."""
        if self._native:
            self.emu.remove_run(run_id)  # type: ignore[attr-defined]
            return
        records = [r for r in self._records() if run_id not in (r["id"], r["idempotency_key"])]
        self._swap(records)


def make_run(template: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A new run record shaped like ``template`` (an emulator record), with ``fields``."""
    import uuid

    record = dict(template)
    record["id"] = fields.pop("id", None) or "run_" + uuid.uuid4().hex[:20]
    record["idempotency_key"] = fields.pop("idempotency_key", None) or "key-" + uuid.uuid4().hex
    record.update(fields)
    return record
