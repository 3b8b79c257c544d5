"""The library's log records on a terminal: ``timbal-runs: message`` lines on stderr.

Without ``--debug`` only the export's own notices are shown (say, a partial export being
discarded); with it, every record, retries and each request included. Nothing here reads
a record's text: retries are counted by the client's ``on_retry`` hook.
"""

from __future__ import annotations

import logging
import sys

from ..sanitize import terminal_safe
from .progress import ProgressLine
from .render import PROG

__all__ = ["StderrHandler"]


class StderrHandler(logging.Handler):
    """Library log records as ``timbal-runs: message`` lines (clearing the progress line
    first)."""

    def __init__(self, verbose: bool, quiet: bool = False) -> None:
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self.verbose = verbose
        self.quiet = quiet
        self.progress: ProgressLine | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` on stderr, if this level of detail shows it."""
        try:
            if self.quiet:
                return
            if not self.verbose and not record.name.startswith("timbal_integrations.export"):
                return
            if self.progress is not None:
                self.progress.clear()
            sys.stderr.write(f"{PROG}: {terminal_safe(record.getMessage())}\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - never let logging break a command
            self.handleError(record)
