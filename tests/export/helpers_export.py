"""Helpers of the export tests: readers of exported files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["NOW", "jsonl_ids", "jsonl_rows", "parse_time"]

NOW = datetime(2026, 2, 1, tzinfo=UTC)
"""A frozen 'now', after every run of the emulator's default data (which ends 2026-01-01)."""


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, decoded."""
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh]


def jsonl_ids(path: Path) -> list[str]:
    """The run ids of a JSON Lines export, in file order."""
    return [row["id"] for row in jsonl_rows(path)]


def parse_time(text: str) -> datetime:
    """An API/CSV time string as an aware datetime."""
    return datetime.fromisoformat(text)
