"""A one-line progress display on stderr for ``timbal-runs export`` and ``sync``
(terminals only), and the short human forms of durations and sizes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, Protocol, TextIO

if TYPE_CHECKING:
    from ..retry import RetryDetails

__all__ = ["Progress", "ProgressLine", "human_bytes", "human_duration"]


class Progress(Protocol):
    """What the line shows: an export's ``ExportProgress`` or a sync's ``SyncProgress``."""

    @property
    def count(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def resumed_from(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def rate(self) -> float: ...


_MIN_INTERVAL: Final = 0.1  # seconds between redraws
_CLEAR: Final = "\r\x1b[K"


def human_duration(ms: float | None) -> str:
    """A short readable duration: ``850ms``, ``1.2s``, ``3m04s``, ``2h05m``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def human_bytes(size: int) -> str:
    """``512 B``, ``1.5 KB``, ``12.3 MB``, ``1.1 GB`` (powers of 1024)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


class ProgressLine:
    """Redraws one status line (at most ten times a second) when ``enabled``.

    Call it with each :class:`Progress`; :meth:`clear` erases the line (before printing
    anything else, and at the end).
    """

    def __init__(self, stream: TextIO, *, enabled: bool, label: str = "exporting") -> None:
        self.stream = stream
        self.enabled = enabled
        self.label = label
        self.retries = 0
        self._last = 0.0
        self._shown = False

    def count_retry(self, details: RetryDetails) -> None:
        """A client's ``on_retry`` hook: the line shows how many retries happened."""
        self.retries += 1

    def __call__(self, progress: Progress) -> None:
        """Show ``progress`` (an export's or a sync's ``progress`` callback)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if progress.phase == "fetching" and now - self._last < _MIN_INTERVAL:
            return
        self._last = now
        if progress.phase == "done":
            self.clear()
            return
        if progress.phase == "converting":
            text = f"{self.label}: writing Parquet from {progress.count:,} runs..."
        else:
            text = (
                f"{self.label}: {progress.count:,} runs · {progress.rate:,.0f} runs/s · "
                f"{human_duration(progress.elapsed * 1000)} · {human_bytes(progress.bytes)}"
            )
            if progress.resumed_from:
                text += f" · resumed after {progress.resumed_from:,}"
            if self.retries:
                text += f" · {self.retries} retr{'y' if self.retries == 1 else 'ies'}"
        self.stream.write(_CLEAR + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line if it is showing."""
        if self._shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._shown = False
