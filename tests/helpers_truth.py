"""The emulator's truth for the orchestrator front ends' tests (Dagster, Prefect).

Both front ends are thin: what they write must be exactly what the emulator holds for
the same window and filters, run by run, with the same statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["created", "runs_between", "stats"]


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
