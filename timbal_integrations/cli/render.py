"""How ``timbal-runs`` shows runs and summaries: aligned tables, the summary, JSON.

The numbers are the core's, unchanged; only their layout is decided here. Every cell of
text that came from the server goes through the core's
:func:`~timbal_integrations.sanitize.terminal_safe` (a user name cannot recolour or
rewrite the terminal); JSON, JSON Lines and CSV output is written as the server sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final

from ..sanitize import terminal_safe
from .progress import human_bytes, human_duration

if TYPE_CHECKING:  # `export` needs no models: they load with the commands that use them
    from ..export import ExportResult
    from ..models import Run
    from ..summary import RunSummary

__all__ = [
    "PROG",
    "export_line",
    "format_summary",
    "format_table",
    "is_tty",
    "write_json_array",
]

PROG: Final = "timbal-runs"
MAX_CELL: Final = 28


def is_tty(stream: IO[Any]) -> bool:
    """True when ``stream`` is a terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _iso_seconds(value: datetime | None) -> str:
    """UTC ISO 8601 without fractions: ``2026-01-01T12:00:00Z``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: str, width: int = MAX_CELL) -> str:
    """A table cell: made terminal-safe, then cut to ``width``."""
    value = terminal_safe(value)
    return value if len(value) <= width else value[: width - 3] + "..."


def _render(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))

    def line(values: Sequence[str]) -> str:
        cells = [
            v.rjust(widths[i]) if i in right else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def format_table(runs: Iterable[Run]) -> str:
    """An aligned table of runs: id, created, status, duration, cost, user, workforce."""
    headers = ("ID", "CREATED (UTC)", "STATUS", "DURATION", "COST USD", "USER", "WORKFORCE")
    rows = [
        (
            terminal_safe(run.id),
            _iso_seconds(run.created_at),
            _cell(run.status, 12),
            human_duration(run.duration_ms),
            f"{run.cost_usd:.4f}",
            _cell(run.user.name or run.user.email),
            _cell(run.workforce.name),
        )
        for run in runs
    ]
    return _render(headers, rows, right={3, 4})


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def format_summary(summary: RunSummary, *, bullet: str = "·") -> str:
    """The summary as aligned text tables (the numbers are :func:`summarize`'s, unchanged);
    ``bullet`` separates figures on a line (``-`` where only ASCII can be written)."""
    s = summary
    b = bullet
    lines = [
        f"Runs             {s.total:,}" + ("" if s.complete else " (incomplete)"),
        f"First run        {_iso_seconds(s.first_run_at)}",
        f"Last run         {_iso_seconds(s.last_run_at)}",
        f"Errors           {s.error_count:,} ({_pct(s.error_rate)})",
        f"Cost             ${s.cost_usd_total:,.4f}  {b}  {s.cost_credits_total:,.4f} credits",
        f"Duration         p50 {human_duration(s.duration.p50_ms)}  {b}  "
        f"p95 {human_duration(s.duration.p95_ms)}  {b}  max {human_duration(s.duration.max_ms)}"
        f"  ({s.duration.count:,} runs with a duration)",
    ]

    counted = ("RUNS", "SHARE", "COST USD")

    def section(
        title: str,
        labels: Sequence[str],
        buckets: Sequence[Any],
        label_cells: Callable[[Any], tuple[str, ...]],
    ) -> None:
        """A table: the ``labels`` columns of each bucket, then its counted columns
        (right-aligned)."""
        rows = [
            (*label_cells(b), f"{b.count:,}", _pct(b.share), f"{b.cost_usd:.4f}") for b in buckets
        ]
        headers = (*labels, *counted)
        lines.append("")
        lines.append(title)
        table = _render(headers, rows, set(range(len(labels), len(headers)))) if rows else "(none)"
        lines.extend("  " + row for row in table.split("\n"))

    section("By status", ("STATUS",), s.by_status, lambda b: (_cell(b.key or "-"),))
    section("By user", ("NAME", "EMAIL"), s.by_user, lambda b: (_cell(b.name), _cell(b.email, 40)))
    section(
        "By workforce",
        ("NAME", "TYPE"),
        s.by_workforce,
        lambda b: (_cell(b.name), _cell(b.type, 12)),
    )
    section("By sentiment", ("SENTIMENT",), s.by_sentiment, lambda b: (_cell(b.key or "(none)"),))
    return "\n".join(lines)


def write_json_array(out: IO[bytes], runs: Iterator[Run]) -> None:
    """One JSON array, written once every page has arrived: an array cut short by a failed
    page would not parse, so a failure leaves stdout empty (jsonl and csv stream instead)."""
    from ..export import JsonlWriter

    items = [JsonlWriter.encode([run])[:-1] for run in runs]
    out.write(b"[\n" + b",\n".join(items) + b"\n]\n" if items else b"[]\n")


def export_line(result: ExportResult, seconds: float) -> str:
    """The line ``timbal-runs export`` ends with: what was written where."""
    manifest = f"; manifest {result.manifest_path}" if result.manifest_path else ""
    resumed = " (resumed)" if result.resumed else ""
    return (
        f"{PROG}: wrote {result.count:,} runs to {result.path} "
        f"({result.format}, {human_bytes(result.bytes)}) in {seconds:.1f}s{resumed}{manifest}"
    )
