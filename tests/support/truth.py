"""The emulator's truth: what a front end or an export must have written, and its statistics.

The orchestrator front ends (Dagster, Prefect) are thin: what they write must be exactly
what the emulator holds for the same window and filters, run by run, with the same
statistics (:func:`stats`, also the export tests' truth). Their emulators (:func:`serve`)
use :data:`SECRET_KEY`, which the leak guard watches for.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from timbal_integrations.emulator import FIXED_END, Emulator, run_emulator

__all__ = ["SECRET_KEY", "created", "runs_between", "serve", "settings_for", "stats"]

SECRET_KEY = "tk-orchestrators-SECRET-5f1a9c"
"""The key of the orchestrator tests' emulators (not the public demo key)."""


@contextlib.contextmanager
def serve(runs: int | Sequence[Mapping[str, Any]] = 3000, **kwargs: Any) -> Iterator[Emulator]:
    """An emulator with :data:`SECRET_KEY`: 3,000 runs ending at FIXED_END (2026-01-01),
    50 per page, unless told otherwise."""
    options: dict[str, Any] = {"seed": 1, "end": FIXED_END, "page_size": 50, **kwargs}
    with run_emulator(runs=runs, api_key=SECRET_KEY, **options) as emulator:
        yield emulator


def settings_for(emu: Emulator, **overrides: Any) -> dict[str, Any]:
    """The four settings of a front end's resource or block for ``emu`` (overridable)."""
    fields: dict[str, Any] = {
        "api_key": emu.api_key,
        "host": emu.base_url,
        "org_id": emu.org_id,
        "project_id": emu.project_id,
    }
    fields.update(overrides)
    return fields


def created(run: Mapping[str, Any]) -> datetime:
    """A run's ``created_at`` as an aware datetime."""
    return datetime.fromisoformat(run["created_at"])


def runs_between(
    runs: Iterable[Mapping[str, Any]], since: datetime, until: datetime, **equal: Any
) -> list[Mapping[str, Any]]:
    """The runs created in ``[since, until)`` whose top-level fields equal ``equal``,
    in the order given (the emulator's: newest first)."""
    return [
        run
        for run in runs
        if since <= created(run) < until and all(run.get(k) == v for k, v in equal.items())
    ]


def stats(runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count, per-status counts, errors, still running and fsum-exact costs."""
    runs = list(runs)
    counts = Counter(run["status"] for run in runs)
    return {
        "count": len(runs),
        "status_counts": dict(sorted(counts.items())),
        "error_count": counts["error"],
        "running_count": counts["running"],
        "cost_usd": math.fsum(run["cost_usd"] for run in runs),
        "cost_credits": math.fsum(run["cost_credits"] for run in runs),
    }
