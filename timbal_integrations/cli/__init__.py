"""``timbal-runs``: list, export, summarize and emulate Timbal run history from a shell.

The package, one concern a module: ``parsing`` (argparse scaffolding and value types,
shared with the emulator's command line), ``options`` (connection and filter flags, and
turning them into the core's query and client), ``render`` (tables, the summary),
``progress`` (the export's progress line), ``logs`` (library log lines on stderr),
``failures`` (exit codes and error lines, worded by the core's ``describe``),
``commands`` (one module a command) and ``app`` (the parser and ``main``).

Importing the package imports none of them; each name below loads its module on first
use. The console script is ``timbal_integrations._startup:timbal_runs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
    from .app import build_parser, main
    from .render import format_summary, format_table

__all__ = ["build_parser", "format_summary", "format_table", "main"]

_HOME = {
    "build_parser": "app",
    "main": "app",
    "format_summary": "render",
    "format_table": "render",
}


__getattr__, __dir__ = _lazy_names(__name__, _HOME, __all__)
