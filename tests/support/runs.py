"""The one run factory of the test suite: runs as the API sends them (JSON dicts)."""

from __future__ import annotations

from typing import Any

__all__ = ["make_run", "make_runs"]


def make_run(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid RunPreview dict (API JSON); ``i`` makes the id and time distinct."""
    run: dict[str, Any] = {
        "id": f"run_{i:05d}",
        "idempotency_key": f"key-{i:05d}",
        "status": "success",
        "created_at": f"2025-12-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
        "duration_ms": 1000 + i,
        "cost_usd": 0.01,
        "cost_credits": 1.0,
        "group_id": f"run_{i:05d}",
        "parent_id": None,
        "last_reaction_sentiment": None,
        "user": {"id": "usr_1", "name": "Ada", "email": "ada@example.test"},
        "workforce": {"id": "wf_1", "name": "support", "type": "agent"},
    }
    run.update(overrides)
    return run


def make_runs(n: int) -> list[dict[str, Any]]:
    """``n`` distinct runs."""
    return [make_run(i) for i in range(n)]
