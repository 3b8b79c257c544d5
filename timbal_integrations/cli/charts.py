"""``timbal-runs summary``'s time series as a picture: sparklines of runs, errors and
cost, and a bar per bucket (its errors marked) with the bucket's numbers beside it.

The numbers are the core's (:class:`~timbal_integrations.summary.TimeBucket`),
unchanged; only their layout is decided here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from .draw import Role, Style, bar, sparkline
from .progress import human_duration

if TYPE_CHECKING:
    from ..summary import RunSummary, TimeBucket

__all__ = ["MAX_BAR_ROWS", "draw_series"]

MAX_BAR_ROWS: Final = 60
"""Buckets drawn as one bar each at most; a longer series is drawn as sparklines only."""

_BAR_WIDTH: Final = 30
_LABEL: Final = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d"}
_TITLE: Final = {
    "hour": "By hour (UTC)",
    "day": "By day (UTC)",
    "week": "By week (UTC, weeks start on Monday)",
}


def _merged(series: Sequence[TimeBucket], width: int) -> tuple[list[list[TimeBucket]], int]:
    """The buckets in consecutive groups, so that one mark per group fits ``width``."""
    per = max(1, math.ceil(len(series) / max(1, width)))
    return [list(series[i : i + per]) for i in range(0, len(series), per)], per


def _sparklines(summary: RunSummary, style: Style) -> list[str]:
    series = summary.series or []
    room = (style.width or 100) - 30
    groups, per = _merged(series, room)
    runs = [sum(b.total for b in g) for g in groups]
    errors = [sum(b.error_count for b in g) for g in groups]
    cost = [math.fsum(b.cost_usd for b in g) for g in groups]
    glyphs = style.glyphs
    rows: tuple[tuple[str, list[int] | list[float], Role, str], ...] = (
        ("runs", runs, "accent", f"{max(runs, default=0):,}"),
        ("errors", errors, "error", f"{max(errors, default=0):,}"),
        ("cost", cost, "ok", f"${max(cost, default=0):,.4f}"),
    )
    lines = [
        f"  {name.ljust(6)}  {style.paint(sparkline(values, glyphs), role)}  peak {peak}"
        for name, values, role, peak in rows
    ]
    if per > 1:
        lines.append(f"  (each mark is {per} {summary.bucket}s)")
    return lines


def _bars(summary: RunSummary, style: Style) -> list[str]:
    series = summary.series or []
    glyphs = style.glyphs
    fmt = _LABEL[summary.bucket or "day"]
    labels = [b.start.strftime(fmt) + ("*" if b.partial else "") for b in series]
    label_width = max(len(label) for label in labels)
    peak = max((b.total for b in series), default=0)
    counts = [f"{b.total:,}" for b in series]
    count_width = max(len(c) for c in counts)
    head = (
        f"  {'START'.ljust(label_width)}  {'RUNS'.ljust(_BAR_WIDTH + 1 + count_width)}"
        f"  {'ERRORS':>6}  {'ERR %':>6}  {'COST USD':>10}  {'P50':>7}  {'P95':>7}"
    )
    lines = [style.paint(head, "dim")]
    for b, label, count in zip(series, labels, counts, strict=True):
        total_bar = bar(b.total, peak, _BAR_WIDTH, glyphs)
        error_cells = 0
        if b.error_count:
            error_cells = min(len(total_bar), max(1, round(b.error_count / peak * _BAR_WIDTH)))
        drawn = style.paint(glyphs.error_block * error_cells, "error") + style.paint(
            total_bar[error_cells:], "accent"
        )
        pad = " " * (_BAR_WIDTH + 1 - len(total_bar))
        rate = f"{b.error_rate * 100:.1f}%" if b.total else "-"
        lines.append(
            f"  {label.ljust(label_width)}  {drawn}{pad}{count.rjust(count_width)}"
            f"  {b.error_count:>6,}  {rate:>6}  {b.cost_usd:>10,.4f}"
            f"  {human_duration(b.duration.p50_ms):>7}  {human_duration(b.duration.p95_ms):>7}"
        )
    legend = f"  {glyphs.full} runs, {glyphs.error_block} errors"
    if any(b.partial for b in series):
        legend += "; * the window covers part of the bucket"
    lines.append(style.paint(legend, "dim"))
    return lines


def draw_series(summary: RunSummary, style: Style) -> str:
    """The time series of ``summary`` (it must have one): a title, sparklines of runs,
    errors and cost, and one bar per bucket when there are at most
    :data:`MAX_BAR_ROWS` buckets."""
    series = summary.series or []
    title = _TITLE.get(summary.bucket or "", "Over time")
    lines = ["", style.paint(f"{title} {style.glyphs.bullet} {len(series)} buckets", "bold")]
    if not series:
        lines.append("  (no runs)")
        return "\n".join(lines)
    lines += _sparklines(summary, style)
    if len(series) <= MAX_BAR_ROWS:
        lines.append("")
        lines += _bars(summary, style)
    else:
        lines.append(
            f"  ({len(series)} buckets: too many for one bar each; --format json has every "
            "bucket's numbers)"
        )
    return "\n".join(style.fit(line) for line in lines)
