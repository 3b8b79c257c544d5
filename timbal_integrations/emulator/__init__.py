"""A local stand-in for Timbal's runs API, built from its OpenAPI spec.

Deterministic run history for a seed, every filter of the list endpoint, opaque cursor
pagination, reactions, realistic traces, bearer auth, rate-limit headers, and switches
for latency and faults (429 with ``Retry-After``, 500, 502, 503, dropped connections)::

    from timbal_integrations.emulator import run_emulator

    with run_emulator(runs=5000, seed=1) as emu:
        httpx.get(emu.runs_url, headers=emu.headers(), params={"status": "error"})

A live emulator follows a clock: runs appear, finish after their duration and gain
reactions as it moves, and test hooks change runs while it serves::

    clock = EmulatorClock(datetime(2026, 1, 1, tzinfo=UTC))
    with run_emulator(runs=2000, live=True, clock=clock) as emu:
        clock.advance(timedelta(days=1))
        emu.hold_running(emu.runs[0]["id"])

From a shell: ``python -m timbal_integrations.emulator --port 8000`` (or
``timbal-runs emulator ...``). Importing this package does not import uvicorn.
"""

from __future__ import annotations

from timbal_integrations.emulator.app import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_PROJECT_ID,
    FAULT_KINDS,
    EmulatorApp,
    EmulatorStats,
    create_app,
)
from timbal_integrations.emulator.cli import main
from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.data import (
    DEFAULT_FUTURE,
    DEFAULT_SPAN,
    DETAIL_FIELDS,
    EXTRA_FIELDS,
    FIXED_END,
    PREVIEW_FIELDS,
    generate_runs,
)
from timbal_integrations.emulator.server import Emulator, PublicBindWarning, run_emulator
from timbal_integrations.emulator.shapes import SHAPES
from timbal_integrations.emulator.sources import MAX_RUNS
from timbal_integrations.emulator.stats import LoggedRequest, RequestLog
from timbal_integrations.emulator.traces import make_trace

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_FUTURE",
    "DEFAULT_ORG_ID",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_SPAN",
    "DETAIL_FIELDS",
    "EXTRA_FIELDS",
    "FAULT_KINDS",
    "FIXED_END",
    "MAX_RUNS",
    "PREVIEW_FIELDS",
    "SHAPES",
    "Emulator",
    "EmulatorApp",
    "EmulatorClock",
    "EmulatorStats",
    "LoggedRequest",
    "PublicBindWarning",
    "RequestLog",
    "create_app",
    "generate_runs",
    "main",
    "make_trace",
    "run_emulator",
]
