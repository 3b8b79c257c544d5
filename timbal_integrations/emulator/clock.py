"""The emulator's clock: what "now" is for a live emulator.

A live emulator serves a pure function of (seed, data, now): runs appear once created,
finish after their duration, and gain reactions as the clock passes their times.
:class:`EmulatorClock` is that "now", in two modes:

- **manual** (``EmulatorClock(start)``): time stands still until a test moves it with
  :meth:`~EmulatorClock.advance` or :meth:`~EmulatorClock.set`;
- **wall** (``EmulatorClock.wall(start, speed=60)``): time follows the machine's
  monotonic clock from ``start``, ``speed`` times faster; ``advance`` and ``set`` still
  jump it.

Time has millisecond resolution (the API's resolution). Every method is thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["EmulatorClock"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _to_ms(value: datetime, name: str) -> int:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    return (value - _EPOCH) // timedelta(milliseconds=1)


class EmulatorClock:
    """A thread-safe clock for a live emulator; manual unless made with :meth:`wall`.

    Example::

        clock = EmulatorClock(datetime(2026, 1, 1, tzinfo=UTC))
        with run_emulator(runs=2000, live=True, clock=clock) as emu:
            ...
            clock.advance(timedelta(hours=6))  # runs finish, reactions arrive
    """

    def __init__(self, start: datetime) -> None:
        """A manual clock that reads ``start`` until moved.

        Raises:
            TypeError: ``start`` is not a datetime.
            ValueError: ``start`` is naive.
        """
        self._lock = threading.Lock()
        self._base_ms = _to_ms(start, "start")
        self._speed = 0.0
        self._monotonic: Callable[[], float] = time.monotonic
        self._ref = 0.0

    @classmethod
    def wall(
        cls,
        start: datetime | None = None,
        *,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> EmulatorClock:
        """A clock that follows real time from ``start`` (default: now), ``speed`` times faster.

        ``monotonic`` is the time source (seconds); tests may pass their own.

        Raises:
            ValueError: ``speed`` is not a finite number > 0, or ``start`` is naive.
        """
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a finite number > 0, got {speed!r}")
        clock = cls(datetime.now(UTC) if start is None else start)
        clock._speed = float(speed)
        clock._monotonic = monotonic
        clock._ref = monotonic()
        return clock

    @property
    def speed(self) -> float:
        """How many seconds of emulator time pass per real second (0 for a manual clock)."""
        return self._speed

    def now_ms(self) -> int:
        """The current time as epoch milliseconds."""
        with self._lock:
            return self._now_ms_locked()

    def now(self) -> datetime:
        """The current time, an aware UTC datetime (millisecond resolution)."""
        return _EPOCH + timedelta(milliseconds=self.now_ms())

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock by ``delta`` (negative moves it back); returns the new time.

        Raises:
            TypeError: ``delta`` is not a timedelta.
        """
        if not isinstance(delta, timedelta):
            raise TypeError(f"delta must be a timedelta, got {type(delta).__name__}")
        with self._lock:
            now = self._now_ms_locked() + delta // timedelta(milliseconds=1)
            self._rebase(now)
        return _EPOCH + timedelta(milliseconds=now)

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (forwards or backwards).

        Raises:
            TypeError: ``value`` is not a datetime.
            ValueError: ``value`` is naive.
        """
        ms = _to_ms(value, "value")
        with self._lock:
            self._rebase(ms)

    def __repr__(self) -> str:
        mode = "manual" if self._speed == 0 else f"wall x{self._speed:g}"
        return f"EmulatorClock({self.now().isoformat()}, {mode})"

    def _now_ms_locked(self) -> int:
        if self._speed == 0:
            return self._base_ms
        elapsed = (self._monotonic() - self._ref) * self._speed
        return self._base_ms + math.floor(elapsed * 1000)

    def _rebase(self, now_ms: int) -> None:
        self._base_ms = now_ms
        if self._speed:
            self._ref = self._monotonic()
