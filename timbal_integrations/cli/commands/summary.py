"""``timbal-runs summary``: exact rollups of every matching run, as tables or JSON, with a
time series (``--by hour|day|week``) drawn as a chart on a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from ...errors import QueryError
from ...limits import AUTO
from ...sanitize import terminal_safe
from ..draw import replace_unwritable, style_for
from ..failures import Context
from ..options import Parents, add_color, add_parallel, client_for, query_from
from ..parsing import Subcommands, flag
from ..render import format_summary, is_tty

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "summary"
FORMATS: Final = ("table", "json")
BUCKETS: Final = ("hour", "day", "week")  # the core's summary.BUCKETS (not imported at start-up)


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``summary`` and its flags."""
    p = parents.query_command(
        commands,
        NAME,
        help="exact rollups of every matching run",
        description=(
            "Exact rollups over every matching run: counts and shares by status, user, "
            "workforce and sentiment; error rate; costs; duration percentiles. With --by, "
            "the same numbers per hour, day or week (UTC; weeks start on Monday), drawn as "
            "a chart on a terminal; the series spans --since to --until (an open end: the "
            "first or last matching run), empty buckets included."
        ),
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, json otherwise)",
    )
    p.add_argument(
        "--by",
        choices=BUCKETS,
        metavar="BUCKET",
        help="a time series by hour, day or week (UTC; weeks start on Monday); on a "
        "terminal the table draws one chosen from the window even without --by",
    )
    add_color(p)
    add_parallel(p, default=AUTO)
    p.set_defaults(run=run)


@contextmanager
def _bucket_is_by() -> Iterator[None]:
    """The core calls the bucket ``bucket``; this command calls it ``--by``."""
    try:
        yield
    except QueryError as exc:
        if exc.field != "bucket":
            raise
        raise QueryError("by", exc.reason) from None


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Summarize the runs."""
    # The models load with the command that uses them.
    from ...summary import check_buckets, choose_bucket, summarize

    now = datetime.now(UTC)
    query = query_from(args, now)
    terminal = is_tty(sys.stdout)
    fmt = args.format or ("table" if terminal else "json")
    bucket = args.by
    if bucket is not None:
        with _bucket_is_by():
            check_buckets(bucket, query.since, query.until)  # before any request
    with client_for(args) as client, _bucket_is_by():
        if bucket is None and fmt == "table" and terminal:
            # A terminal gets a chart even without --by, its bucket chosen from the window.
            since = query.since
            if since is None:
                first = client.earliest_run(query)
                since = first.created_at if first is not None else None
            if since is not None:
                bucket = choose_bucket(since, query.until or now)
        runs = client.list_runs(query, parallel=args.parallel)
        summary = summarize(runs, bucket=bucket, since=query.since, until=query.until)
    if fmt == "json":
        import orjson

        sys.stdout.buffer.write(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.buffer.write(b"\n")
    else:
        filters = query.as_dict()
        if filters:
            shown = ", ".join(f"{flag(k)} {v}" for k, v in filters.items())
            sys.stdout.write(f"Filters          {terminal_safe(shown)}\n")
        style = style_for(sys.stdout, args.color)
        text = format_summary(summary, bullet=style.glyphs.bullet)
        if summary.series is not None:
            from ..charts import draw_series

            text += "\n" + draw_series(summary, style)
        replace_unwritable(sys.stdout)
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return 0
