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

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
