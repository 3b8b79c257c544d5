"""``timbal-runs sync``: keep a dataset of runs, partitioned by day, exact over time."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Final

from ...export import FORMATS
from ...limits import AUTO
from ..failures import Context
from ..options import Parents, add_parallel, check_format, client_for, query_from
from ..parsing import Subcommands
from ..render import PROG

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "sync"


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``sync`` and its flags."""
    p = parents.query_command(
        commands,
        NAME,
        help="keep a dataset of runs up to date (DIR/runs/dt=YYYY-MM-DD/runs.EXT)",
        description=(
            "Keep a local dataset of every matching run, one file per UTC day of "
            "created_at, exact over time: each sync lists the last --lookback (3d) again "
            "and re-checks by id every run that was still running, rewrites only the days "
            "that changed, and commits every change at once. The first sync fetches "
            "everything (from --since, if given). DIR/manifest.json describes the files, "
            "DIR/state.json is where the next sync starts."
        ),
    )
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the dataset's directory")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="partition format (default: the dataset's; jsonl for a new one)",
    )
    p.add_argument(
        "--lookback",
        metavar="SPAN",
        help="list this much before the last sync again, e.g. 3d, 36h "
        "(default: the dataset's; 3d for a new one)",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the dataset from nothing (needed to change its filters or format)",
    )
    add_parallel(p, default=AUTO)
    p.add_argument("--json", action="store_true", help="print the sync's report as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Sync the dataset."""
    from ...sync import sync_runs

    check_format(args.format)
    now = datetime.now(UTC)
    query = query_from(args, now)
    progress = ctx.progress_line("syncing", quiet=args.quiet)
    with client_for(args, on_retry=progress.count_retry) as client:
        report = sync_runs(
            client,
            query,
            args.out,
            format=args.format,
            lookback=args.lookback,
            full_refresh=args.full_refresh,
            parallel=args.parallel,
            now=now,
            progress=progress,
        )
    progress.clear()
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    if not args.quiet:
        sys.stderr.write(f"{PROG}: synced {report.path}: {report.summary_line()}\n")
    return 0
