"""``timbal-runs export``: every matching run to a JSONL, CSV or Parquet file (atomic,
resumable), with a progress line on a terminal."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Final

from ...export import FORMATS, export_runs, infer_format, pending_export
from ...limits import AUTO
from ..failures import Context
from ..options import NON_NEGATIVE, Parents, add_parallel, check_format, client_for, query_from
from ..parsing import Subcommands, UsageError
from ..render import export_line

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "export"


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``export`` and its flags."""
    p = parents.query_command(
        commands,
        NAME,
        help="export runs to a jsonl, csv or parquet file (atomic, resumable)",
        description=(
            "Export every matching run to a local file, streaming. The file appears only "
            "when complete (written to PATH.part, then renamed); PATH.manifest.json "
            "describes it. An interrupted export continues with --resume."
        ),
    )
    p.add_argument("--out", "-o", required=True, metavar="PATH", help="the file to write")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from the extension: .jsonl, .csv, .parquet)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted export of the same query into PATH",
    )
    add_parallel(
        p,
        "keep N requests in flight over pieces of [--since, --until) that balance "
        "themselves, or auto (the default): as many as throughput and the rate limit "
        "allow; 1 for one request at a time",
        default=AUTO,
    )
    p.add_argument("--limit", type=NON_NEGATIVE, metavar="N", help="at most N runs")
    p.add_argument(
        "--csv-safe",
        action="store_true",
        help="CSV only: write text cells starting with = + - @ TAB or CR with a ' before "
        "them, so a spreadsheet cannot read them as formulas (changes those cells; "
        "recorded in the manifest)",
    )
    p.add_argument("--no-manifest", action="store_true", help="do not write PATH.manifest.json")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or messages")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Export the runs."""
    fmt = infer_format(args.out, args.format)
    if args.csv_safe and fmt != "csv":
        raise UsageError(f"--csv-safe only applies to CSV; this export writes {fmt}")
    check_format(fmt)
    now = datetime.now(UTC)
    if args.resume:
        pending = pending_export(args.out)
        if pending is not None:
            now = pending.started_at  # relative spans (--since 24h) mean what they meant then
    query = query_from(args, now)
    progress = ctx.progress_line("exporting", quiet=args.quiet)
    ctx.export_path = args.out
    started = time.monotonic()
    with client_for(args, on_retry=progress.count_retry) as client:
        result = export_runs(
            client,
            query,
            args.out,
            format=fmt,
            resume=args.resume,
            parallel=args.parallel,
            limit=args.limit,
            manifest=not args.no_manifest,
            progress=progress,
            now=now,
            csv_safe=args.csv_safe,
        )
    progress.clear()
    ctx.export_path = None
    if not args.quiet:
        sys.stderr.write(export_line(result, time.monotonic() - started) + "\n")
    return 0
