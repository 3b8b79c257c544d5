"""The operators' progress lines in the task log: a fetch's pages, runs and rate; a sync's
phases. Every few pages or seconds, so a long task shows it is alive without flooding
the log."""

from __future__ import annotations

import time
from typing import Any, Final

from timbal_integrations.export import ExportProgress
from timbal_integrations.sync import SyncProgress

__all__ = ["Progress", "SyncProgressLog"]

_EVERY_S: Final = 10.0
_EVERY_PAGES: Final = 10


class Progress:
    """Logs pages, runs and the rate: the first page, then every few pages or seconds."""

    def __init__(self, log: Any, what: str) -> None:
        self._log = log
        self._what = what
        self._started = time.monotonic()
        self._last = self._started
        self.pages = 0
        self.runs = 0

    def rate(self) -> float:
        """Runs per second since the start."""
        elapsed = time.monotonic() - self._started
        return self.runs / elapsed if elapsed > 0 else 0.0

    def page(self, runs_so_far: int) -> None:
        """One more page fetched, ``runs_so_far`` runs in all."""
        self.pages += 1
        self.runs = runs_so_far
        now = time.monotonic()
        if self.pages == 1 or self.pages % _EVERY_PAGES == 0 or now - self._last >= _EVERY_S:
            self._last = now
            self._log.info(
                "%s: page %d, %d runs so far (%.0f runs/s)",
                self._what,
                self.pages,
                self.runs,
                self.rate(),
            )

    def export(self, status: ExportProgress) -> None:
        """The ``progress`` callback of :func:`export_runs` (called after every page)."""
        if status.phase == "fetching":
            self.page(status.count)
        elif status.phase == "converting":
            self._log.info("%s: converting %d runs", self._what, status.count)

    def done(self, suffix: str = "") -> None:
        """The last line: runs, pages, time and rate (and ``suffix``)."""
        elapsed = time.monotonic() - self._started
        self._log.info(
            "%s: done, %d runs in %d page(s) in %.2fs (%.0f runs/s)%s",
            self._what,
            self.runs,
            self.pages,
            elapsed,
            self.rate(),
            suffix,
        )


class SyncProgressLog:
    """Logs each phase of a sync, and where it stands every few seconds."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._phase = ""
        self._last = time.monotonic()

    def __call__(self, progress: SyncProgress) -> None:
        now = time.monotonic()
        if progress.phase == self._phase and now - self._last < _EVERY_S:
            return
        self._phase, self._last = progress.phase, now
        if progress.phase != "done":
            self._log.info(
                "Timbal sync: %s, %d runs and %d page(s) fetched, %d bytes written",
                progress.phase,
                progress.count,
                progress.pages,
                progress.bytes,
            )
