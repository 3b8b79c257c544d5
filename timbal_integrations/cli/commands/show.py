"""``timbal-runs show RUN_ID``: one run as a picture (its span tree with durations,
statuses, token usage and the error, then its reactions), or as JSON.

The picture is for a terminal: every server string in it is terminal-safe
(:func:`~timbal_integrations.cli.draw.terminal_text`), and the API key is redacted from
it (a run's error or a reaction may echo it), as from every message. ``--format json``
is data: the run as the server sent it, unchanged, like ``list --format json``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Final

from ...errors import APIStatusError
from ...redact import redact
from ...wording import describe
from ..draw import replace_unwritable, style_for
from ..failures import Context
from ..options import Parents, add_color, client_for, setting_names
from ..parsing import Subcommands

if TYPE_CHECKING:
    from ...models import Reaction, RunDetail

__all__ = ["NAME", "REACTIONS_SHOWN", "add_parser", "run"]

NAME: Final = "show"
FORMATS: Final = ("text", "json")
REACTIONS_SHOWN: Final = 20
"""Reactions the picture shows (the newest); ``--format json`` has them all."""


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """Add ``show`` and its flags."""
    p = commands.add_parser(
        NAME,
        parents=[parents.common],
        help="one run: its span tree, token usage, error and reactions",
        description=(
            "Show one run by id or idempotency key: status, timing, cost, user and "
            "workforce; its trace as a tree of calls with durations, statuses, token "
            "usage and errors; tokens by model; where it failed; and its reactions."
        ),
    )
    p.add_argument("run_id", metavar="RUN_ID", help="a run id or idempotency key")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default: a picture, coloured on a terminal) or json (for machines)",
    )
    add_color(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Show the run."""
    with client_for(args) as client:
        secret = client.config.api_key.get()
        detail = client.get_run(args.run_id)
        limit = None if args.format == "json" else REACTIONS_SHOWN + 1
        reactions: list[Reaction] = []
        problem: str | None = None
        try:
            reactions = list(client.list_reactions(detail.id, limit=limit))
        except APIStatusError as exc:  # the run itself is shown even so
            problem = describe(exc, "terminal", names=setting_names(args))
    if args.format == "json":
        import orjson

        document: dict[str, Any] = {
            "run": detail.to_json_dict(),
            "reactions": [r.to_json_dict() for r in reactions],
            "trace_summary": _trace_summary(detail),
        }
        if problem is not None:
            document["reactions_error"] = problem
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from ..runview import format_run

        style = style_for(sys.stdout, args.color)
        more = len(reactions) > REACTIONS_SHOWN
        text = format_run(
            detail,
            reactions[:REACTIONS_SHOWN],
            style,
            more_reactions=more,
            reactions_problem=problem,
        )
        replace_unwritable(sys.stdout)
        sys.stdout.write(redact(text, secret) + "\n")
    sys.stdout.flush()
    return 0


def _trace_summary(detail: RunDetail) -> dict[str, Any] | None:
    """What the picture derives from the trace, for machines: spans, duration, tokens by
    model, and the failing spans (deepest first)."""
    trace = detail.parsed_trace
    if trace is None:
        return None
    return {
        "spans": len(trace),
        "duration_ms": trace.duration_ms,
        "usage_by_model": trace.usage_by_model(),
        "failures": [
            {
                "call_id": span.call_id,
                "path": span.path,
                "status": span.status_code,
                "error": span.error.summary() if span.error is not None else None,
            }
            for span in trace.failures()
        ],
    }
