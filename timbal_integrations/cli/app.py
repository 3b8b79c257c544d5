"""``timbal-runs``: the parser and ``main``.

::

    timbal-runs list --status error --since 24h
    timbal-runs export --out runs.parquet --since 7d --parallel 8
    timbal-runs sync --out timbal-runs/ --format parquet
    timbal-runs summary --since 30d
    timbal-runs emulator --port 8000
    timbal-runs demo

Filters are the same names everywhere: ``--status --user-id --sentiment --group-id
--workforce-id --rev --since --until --metadata --roots --sort-by --sort-order``. The
flags ``--api-key --host --org-id --project-id`` override ``TIMBAL_API_KEY``,
``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``.

Exit status: 0 on success, 2 on bad usage or a bad filter (the message names the flag),
1 on an API or I/O failure, 130 when interrupted; errors are one line on stderr
(``--debug`` adds the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from .commands import COMMANDS
from .failures import EXIT_USAGE, Context, one_line, run_command
from .logs import StderrHandler
from .options import parents
from .parsing import OneLineParser, UsageError
from .render import PROG

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``timbal-runs`` argument parser (``emulator`` is handed over before parsing)."""
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Timbal run history from a shell: list, export to files, sync a dataset, summarize."
        ),
        epilog="Run 'timbal-runs demo' to try everything against a built-in emulator.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and every retry")
    shared = parents()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands, shared)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``timbal-runs`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, a in enumerate(arguments) if not a.startswith("-")), None)
    if command is not None and arguments[command] == "emulator":
        from ..emulator import main as emulator_main

        return emulator_main(arguments[command + 1 :])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {one_line(str(exc))}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    handler = StderrHandler(verbose=bool(args.debug))
    ctx = Context(debug=bool(args.debug), handler=handler)
    library_logger = logging.getLogger("timbal_integrations")
    previous_level = library_logger.level
    library_logger.addHandler(handler)
    library_logger.setLevel(logging.DEBUG if ctx.debug else logging.WARNING)
    try:
        return run_command(args.run, args, ctx)
    finally:
        library_logger.removeHandler(handler)
        library_logger.setLevel(previous_level)
