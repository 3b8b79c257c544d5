"""How ``timbal-runs`` ends: exit codes, and one line on stderr for every failure.

Exit status: 0 on success, 2 on bad usage or a bad filter (the message names the flag),
1 on an API or I/O failure, 130 when interrupted. The message is the core's, worded for
a terminal by :func:`timbal_integrations.wording.describe` in this command line's names
(``--user-id``, ``--api-key``; a ``TIMBAL_*`` variable given by a flag is called by the
flag). ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from typing import Final

from ..errors import ConfigError, QueryError, TimbalError
from ..sanitize import terminal_safe
from ..wording import describe
from .logs import StderrHandler
from .options import setting_names
from .parsing import UsageError
from .progress import ProgressLine
from .render import PROG, is_tty

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "Command",
    "Context",
    "one_line",
    "run_command",
]

EXIT_USAGE: Final = 2
EXIT_FAILURE: Final = 1
EXIT_INTERRUPTED: Final = 130


class Context:
    """What the error handler needs to know about the command that is running."""

    def __init__(self, *, debug: bool = False, handler: StderrHandler | None = None) -> None:
        self.debug = debug
        self.handler = handler
        self.progress: ProgressLine | None = None
        self.export_path: str | None = None

    def progress_line(self, label: str, *, quiet: bool = False) -> ProgressLine:
        """The progress line of a command that fetches runs (``label``: ``exporting``,
        ``syncing``), on stderr when it is a terminal and not ``quiet``. Log lines clear
        it before they print (none at all when ``quiet``), and so does a failure."""
        progress = ProgressLine(sys.stderr, enabled=not quiet and is_tty(sys.stderr), label=label)
        self.progress = progress
        if self.handler is not None:
            self.handler.progress = progress
            self.handler.quiet = quiet
        return progress

    def saved_note(self) -> str:
        """For an interrupted export: how much is saved and how to continue."""
        if self.export_path is None:
            return ""
        from ..export import pending_export

        pending = pending_export(self.export_path)
        if pending is None:
            return ""
        return (
            f"; {pending.count:,} runs are saved in {pending.path}.part — run the same "
            "command with --resume to continue"
        )

    def clear_progress(self) -> None:
        """Erase the progress line, if one is showing."""
        if self.progress is not None:
            self.progress.clear()


Command = Callable[[argparse.Namespace, Context], int]
"""A command's ``run(args, ctx)``: returns the exit code."""


def one_line(text: str) -> str:
    """``text`` on one line (white space folded), with no control character left to act
    on the terminal (see :func:`~timbal_integrations.sanitize.terminal_safe`)."""
    return terminal_safe(" ".join(str(text).split()))


def _error(ctx: Context, message: str) -> None:
    ctx.clear_progress()
    sys.stderr.write(f"{PROG}: error: {one_line(message)}\n")
    sys.stderr.flush()


def _traceback(ctx: Context) -> None:
    if ctx.debug:
        ctx.clear_progress()
        traceback.print_exc()


def run_command(run: Command, args: argparse.Namespace, ctx: Context) -> int:
    """Run a command; every failure becomes one line on stderr and an exit code."""
    try:
        return run(args, ctx)
    except KeyboardInterrupt:
        ctx.clear_progress()
        sys.stderr.write(f"{PROG}: interrupted{ctx.saved_note()}\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (say `| head`): stop quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except UsageError as exc:
        _traceback(ctx)
        _error(ctx, str(exc))
        return EXIT_USAGE
    except (QueryError, ConfigError) as exc:
        _traceback(ctx)
        _error(ctx, describe(exc, "terminal", names=setting_names(args)))
        return EXIT_USAGE
    except (TimbalError, OSError) as exc:
        _traceback(ctx)
        message = describe(exc, "terminal", names=setting_names(args))
        _error(ctx, message + ctx.saved_note())
        return EXIT_FAILURE
