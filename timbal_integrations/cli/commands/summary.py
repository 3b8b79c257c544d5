"""``timbal-runs summary``: exact rollups of every matching run, as tables or JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Final

from ...sanitize import terminal_safe
from ..failures import Context
from ..options import Parents, add_parallel, client_for, query_from
from ..parsing import Subcommands, flag
from ..render import format_summary, is_tty

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "summary"
FORMATS: Final = ("table", "json")


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``summary`` and its flags."""
    p = parents.query_command(
        commands,
        NAME,
        help="exact rollups of every matching run",
        description=(
            "Exact rollups over every matching run: counts and shares by status, user, "
            "workforce and sentiment; error rate; costs; duration percentiles."
        ),
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, json otherwise)",
    )
    add_parallel(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Summarize the runs."""
    from ...summary import summarize  # the models load with the command that uses them

    query = query_from(args, datetime.now(UTC))
    fmt = args.format or ("table" if is_tty(sys.stdout) else "json")
    with client_for(args) as client:
        summary = summarize(client.list_runs(query, parallel=args.parallel))
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        filters = query.as_dict()
        if filters:
            shown = ", ".join(f"{flag(k)} {v}" for k, v in filters.items())
            sys.stdout.write(f"Filters          {terminal_safe(shown)}\n")
        sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.flush()
    return 0
