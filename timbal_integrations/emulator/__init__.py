"""A local stand-in for Timbal's runs API, built from its OpenAPI spec.

Deterministic run history for a seed, every filter of the list endpoint, opaque cursor
pagination, bearer auth, rate-limit headers, and switches for latency and faults (429
with ``Retry-After``, 500, 502, 503, dropped connections)::

    from timbal_integrations.emulator import run_emulator

    with run_emulator(runs=5000, seed=1) as emu:
        httpx.get(emu.runs_url, headers=emu.headers(), params={"status": "error"})

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
from timbal_integrations.emulator.data import (
    DEFAULT_SPAN,
    DETAIL_FIELDS,
    EXTRA_FIELDS,
    FIXED_END,
    PREVIEW_FIELDS,
    generate_runs,
)
from timbal_integrations.emulator.server import Emulator, run_emulator

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_ORG_ID",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_SPAN",
    "DETAIL_FIELDS",
    "EXTRA_FIELDS",
    "FAULT_KINDS",
    "FIXED_END",
    "PREVIEW_FIELDS",
    "Emulator",
    "EmulatorApp",
    "EmulatorStats",
    "create_app",
    "generate_runs",
    "main",
    "run_emulator",
]
