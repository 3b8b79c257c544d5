"""``timbal-runs list``: matching runs as a table (on a terminal) or JSON Lines, JSON, CSV."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from ... import defaults
from ...export import CsvWriter, JsonlWriter
from ..failures import Context
from ..options import NON_NEGATIVE, Parents, add_parallel, client_for, query_from
from ..parsing import Subcommands, UsageError
from ..render import PROG, format_table, is_tty, write_json_array

if TYPE_CHECKING:
    from ...models import Run

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "list"
FORMATS: Final = ("table", "json", "jsonl", "csv")
TABLE_LIMIT: Final = defaults.CLI_TABLE_LIMIT


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``list`` and its flags."""
    p = parents.query_command(
        commands,
        NAME,
        help="list runs (a table on a terminal; json, jsonl or csv otherwise)",
        description="List matching runs, newest first by default.",
    )
    p.add_argument(
        "--limit",
        type=NON_NEGATIVE,
        metavar="N",
        help=f"at most N runs (default: {TABLE_LIMIT} for the table, all otherwise; 0 = all)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    p.add_argument(
        "--csv-safe",
        action="store_true",
        help="with --format csv: write text cells starting with = + - @ TAB or CR with a "
        "' before them, so a spreadsheet cannot read them as formulas",
    )
    add_parallel(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """List the runs."""
    query = query_from(args, datetime.now(UTC))
    fmt = args.format or ("table" if is_tty(sys.stdout) else "jsonl")
    if args.csv_safe and fmt != "csv":
        raise UsageError(f"--csv-safe only applies to --format csv (the output is {fmt})")
    limit = args.limit
    if limit is None and fmt == "table":
        limit = TABLE_LIMIT
    if limit == 0:
        limit = None
    with client_for(args) as client:
        fetch = None if limit is None else limit + (1 if fmt == "table" else 0)
        runs = client.list_runs(query, limit=fetch, parallel=args.parallel)
        out = sys.stdout.buffer
        if fmt == "table":
            shown = list(runs)
            more = limit is not None and len(shown) > limit
            shown = shown[:limit]
            if shown:
                sys.stdout.write(format_table(shown) + "\n")
            else:
                sys.stderr.write(f"{PROG}: no runs match\n")
            if more:
                sys.stdout.flush()
                sys.stderr.write(
                    f"{PROG}: showing the first {limit} runs; --limit N shows more "
                    "(0 for all), --format jsonl|csv|json for machine output\n"
                )
        elif fmt == "json":
            write_json_array(out, runs)
        else:
            csv_header = fmt == "csv"
            for page in _batched(runs, 50):
                if fmt == "jsonl":
                    out.write(JsonlWriter.encode(page))
                else:
                    data = CsvWriter.encode(page, csv_safe=args.csv_safe)
                    if csv_header:
                        data = CsvWriter.header() + data
                        csv_header = False
                    out.write(data)
            if csv_header:
                out.write(CsvWriter.header())
        sys.stdout.flush()
    return 0


def _batched(runs: Iterator[Run], size: int) -> Iterator[list[Run]]:
    batch: list[Run] = []
    for item in runs:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
