"""The package surface, import cost, custom data sets, and the query engine's speed."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import timbal_integrations.emulator as emulator
from timbal_integrations.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_PROJECT_ID,
    FIXED_END,
    create_app,
    generate_runs,
)
from timbal_integrations.emulator.store import RunStore, parse_list_params

REPO = Path(__file__).resolve().parents[2]


def test_public_names() -> None:
    assert set(emulator.__all__) >= {
        "create_app",
        "generate_runs",
        "run_emulator",
        "Emulator",
        "EmulatorStats",
        "DEFAULT_API_KEY",
        "DEFAULT_ORG_ID",
        "DEFAULT_PROJECT_ID",
        "FIXED_END",
        "main",
        # The live emulator's contract (issues 14, 15, 17, 20).
        "EmulatorClock",
        "SHAPES",
        "MAX_RUNS",
        "make_trace",
        "RequestLog",
        "LoggedRequest",
        "PublicBindWarning",
    }
    hooks = ("update_run", "add_run", "remove_run", "add_reaction", "hold_running", "reactions")
    for name in (*hooks, "clock", "runs", "details"):
        assert hasattr(emulator.Emulator, name)
        assert hasattr(emulator.EmulatorApp, name)
    assert hasattr(create_app(runs=1), "request_log")
    assert hasattr(emulator.Emulator, "request_log")
    for function in (emulator.create_app, emulator.run_emulator):
        params = inspect.signature(function).parameters
        defaults = tuple(params[name].default for name in ("live", "clock", "shape"))
        assert defaults == (False, None, "even")
    for name in emulator.__all__:
        assert getattr(emulator, name) is not None
    assert (DEFAULT_API_KEY, DEFAULT_ORG_ID, DEFAULT_PROJECT_ID) == (
        "demo-key",
        "demo-org",
        "demo-project",
    )
    assert datetime(2026, 1, 1, tzinfo=UTC) == FIXED_END
    assert FIXED_END.utcoffset() is not None


def test_import_is_cheap() -> None:
    code = (
        "import sys, timbal_integrations.emulator;"
        "print([m for m in ('uvicorn', 'airflow', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    ).stdout
    assert out.strip() == "[]"


def test_spec_copy_is_untouched_and_parses() -> None:
    spec = json.loads((Path(emulator.__file__).parent / "openapi-runs.json").read_text())
    assert "/orgs/{org_id}/projects/{project_id}/runs" in spec["paths"]


def test_create_app_is_an_asgi_app_with_stats() -> None:
    app = create_app(runs=10)
    assert callable(app)
    assert app.stats.requests_total == 0
    with pytest.raises(ValueError, match="runs"):
        create_app(runs=-1)
    with pytest.raises(ValueError, match="page_size"):
        create_app(runs=[], page_size=0)


def _run(i: int, created_at: str, cost: float, parent: str | None = None) -> dict[str, Any]:
    run_id = f"run-{i:02d}"
    return {
        "id": run_id,
        "idempotency_key": f"key-{i:02d}",
        "status": "success",
        "created_at": created_at,
        "duration_ms": None if i % 4 == 0 else 100 * (i % 3),
        "cost_usd": cost,
        "cost_credits": cost * 100,
        "group_id": parent or run_id,
        "parent_id": parent,
        "last_reaction_sentiment": None,
        "user": {"id": "u", "name": "U", "email": "u@example.test"},
        "workforce": {"id": "w", "name": "W", "type": "agent"},
        "metadata": {},
        "rev": None,
    }


def test_custom_runs_with_ties_paginate_exactly(
    timbal_emulator_factory: Any, make_api: Any
) -> None:
    # Equal created_at and equal costs: keyset pagination must break ties on id.
    runs = [
        _run(i, "2025-05-01T00:00:00Z" if i < 6 else f"2025-05-01T00:00:0{i % 10}.5Z", i % 2)
        for i in range(14)
    ]
    emu = timbal_emulator_factory(runs=runs, page_size=3)
    api = make_api(emu)
    assert len(emu.runs) == 14
    for sort_by in ("id", "created_at", "duration_ms", "cost_usd", "cost_credits"):
        for order in ("asc", "desc"):
            got = [run["id"] for run in api.all(sort_by=sort_by, sort_order=order)]
            assert sorted(got) == sorted(run["id"] for run in runs), (sort_by, order)
    got = [run["id"] for run in api.all(sort_by="cost_usd", sort_order="asc")]
    assert got == [f"run-{i:02d}" for i in range(0, 14, 2)] + [
        f"run-{i:02d}" for i in range(1, 14, 2)
    ]
    response = httpx.get(f"{emu.runs_url}/key-03", headers=emu.headers())
    assert response.json()["id"] == "run-03"


def test_duplicate_ids_are_rejected() -> None:
    run = _run(1, "2025-05-01T00:00:00Z", 1.0)
    with pytest.raises(ValueError, match="duplicate"):
        RunStore([run, dict(run, idempotency_key="other")])
    with pytest.raises(ValueError, match="lacks"):
        RunStore([{k: v for k, v in run.items() if k != "user"}])


def test_pages_are_cheap() -> None:
    store = RunStore(generate_runs(20_000, seed=3))
    for query in ({}, {"sort_by": "cost_usd"}, {"status": "success", "roots": "true"}):
        tokens: list[str | None] = [None]
        for _ in range(100):  # warm up: build indexes, serialize items, collect tokens
            params = {**query, **({"page_token": tokens[-1]} if tokens[-1] else {})}
            tokens.append(json.loads(store.list_page(parse_list_params(params)))["next_page_token"])
        parsed = [
            parse_list_params({**query, **({"page_token": t} if t else {})}) for t in tokens[:-1]
        ]
        start = time.process_time()
        for _ in range(5):
            for params in parsed:
                store.list_page(params)
        per_page = (time.process_time() - start) / (5 * len(parsed))
        assert per_page < 0.001, (query, per_page)
