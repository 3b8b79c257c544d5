"""Numbers for reading: the text content of the tools rounds what the structured content
keeps at full precision.

A model reading ``2.6868279999999998`` spends tokens on noise and may repeat it to a
user; ``2.6868`` says the same. :func:`readable_number` rounds a float to four
decimals, or to four significant digits below 0.01 (a run can cost ``0.000123``);
integers are unchanged. :func:`readable` applies it through any JSON-like value.
:func:`summary_text` renders a ``summarize_runs`` result: its figures as rounded
compact JSON, then its time series (if any) as a compact table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

__all__ = ["readable", "readable_json", "readable_number", "summary_text"]

_DECIMALS: Final = 4


def readable_number(value: float) -> float | int:
    """``value`` rounded for reading: 4 decimals, or 4 significant digits below 0.01;
    a float holding a whole number stays a float (``3.0``), a non-finite one as is."""
    if not math.isfinite(value) or value == 0:
        return value
    magnitude = abs(value)
    if magnitude >= 0.01:
        return round(value, _DECIMALS)
    digits = _DECIMALS - 1 - math.floor(math.log10(magnitude))
    return round(value, digits)


def readable(value: Any) -> Any:
    """``value`` with every float in it rounded by :func:`readable_number`."""
    if isinstance(value, float):
        return readable_number(value)
    if isinstance(value, Mapping):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [readable(v) for v in value]
    return value


def readable_json(value: Any) -> str:
    """Compact JSON of ``value`` with its numbers rounded for reading."""
    return orjson.dumps(readable(value)).decode()


def _series_rows(series: Sequence[Mapping[str, Any]], bucket: str) -> list[str]:
    """One line per bucket: start (an hour, a day, a week's Monday), runs, errors, error
    rate, cost, duration p50 and p95, and the count of each status."""
    cut = 13 if bucket == "hour" else 10  # 2026-01-05T14 / 2026-01-05
    lines = ["start|runs|errors|error_rate|cost_usd|p50_ms|p95_ms|by_status"]
    for item in series:
        duration = item.get("duration") or {}
        statuses = ",".join(f"{k}={v}" for k, v in (item.get("by_status") or {}).items())
        cells = (
            str(item["start"])[:cut] + ("*" if item.get("partial") else ""),
            item["total"],
            item["error_count"],
            readable(item["error_rate"]),
            readable(item["cost_usd"]),
            duration.get("p50_ms"),
            duration.get("p95_ms"),
            statuses,
        )
        lines.append("|".join("-" if c is None or c == "" else str(c) for c in cells))
    return lines


def summary_text(result: Mapping[str, Any]) -> str:
    """A ``summarize_runs`` result as text: rounded compact JSON of every figure but the
    series, then the series as a table (UTC; ``*`` marks a bucket the window covers
    only in part)."""
    figures = {k: v for k, v in result.items() if k != "series"}
    text = readable_json(figures)
    series = result.get("series")
    if series is None:
        return text
    bucket = str(result.get("bucket") or "day")
    week = "; weeks start on Monday" if bucket == "week" else ""
    head = f"series by {bucket} (UTC{week}; * = the window covers part of the bucket):"
    return "\n".join([text, head, *_series_rows(series, bucket)])
