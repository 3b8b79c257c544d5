"""Helpers of the Airflow tests (no Airflow import here)."""

from __future__ import annotations

import json
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
