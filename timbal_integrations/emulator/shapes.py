"""When runs are created: the shape of a generated history.

Every shape is weighted by the hour of the day (busy working hours, quiet nights) and is
drawn from the generator's ``random.Random``, so it is deterministic for a seed:

- ``even``: the same density all along the span (the default, and the emulator's
  original data);
- ``growing``: a product that grows over the span: the creation times follow the
  cumulative distribution ``x ** (10/3)`` of the span's fraction ``x``, so 8,000 runs over
  30 days put about 8, 71, 226, 489, 876, 1,397, 2,060 and 2,873 runs in the 8 equal
  windows (the history measured in issue 15);
- ``bursty``: a quiet background holding 55% of the runs plus a few short bursts (30 to
  120 minutes, starting in working hours) holding the other 45%, like bad deploys; runs
  inside a burst fail more often (see :meth:`HistoryShape.in_burst`).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from typing import Final

__all__ = ["HOURLY_WEIGHT", "HOUR_MS", "SHAPES", "HistoryShape", "future_times"]

SHAPES: Final[tuple[str, ...]] = ("even", "growing", "bursty")
"""The accepted ``shape`` values."""

HOUR_MS: Final = 3_600_000
_MINUTE_MS: Final = 60_000

# Relative activity per UTC hour: busy working hours, quiet nights.
HOURLY_WEIGHT: Final[tuple[float, ...]] = (
    0.30, 0.25, 0.25, 0.25, 0.30, 0.40, 0.55, 0.75, 0.90, 1.00, 1.00, 1.00,
    0.95, 1.00, 1.00, 1.00, 0.95, 0.85, 0.70, 0.60, 0.50, 0.45, 0.40, 0.35,
)  # fmt: skip
_P_WHOLE_SECOND: Final = 0.25  # share of runs created on a whole second
_GROWTH_POWER: Final = 10 / 3  # the growing shape's CDF is x ** _GROWTH_POWER
_BACKGROUND_SHARE: Final = 0.55  # the bursty shape's share of runs outside bursts


class HistoryShape:
    """A shape of creation times over ``[start_ms, start_ms + span_ms)``."""

    def __init__(self, name: str, rng: random.Random, start_ms: int, span_ms: int) -> None:
        """Prepare ``name`` over the span; a bursty shape draws its bursts from ``rng``.

        Raises:
            ValueError: ``name`` is not one of :data:`SHAPES`.
        """
        if name not in SHAPES:
            raise ValueError(f"shape: expected one of {', '.join(SHAPES)}, got {name!r}")
        self.name = name
        self.start_ms = start_ms
        self.span_ms = span_ms
        self.bursts: list[tuple[int, int]] = []  # [start, end) of each burst, ascending
        self._burst_cum: list[float] = []
        if name == "bursty":
            self._draw_bursts(rng)

    def _draw_bursts(self, rng: random.Random) -> None:
        count = 2 + int(rng.random() * 3)  # 2 to 4 bad deploys
        usable = int(self.span_ms * 0.93)
        weights: list[float] = []
        while len(self.bursts) < count:
            begin = self.start_ms + int(self.span_ms * 0.05) + int(rng.random() * usable)
            if rng.random() > HOURLY_WEIGHT[(begin // HOUR_MS) % 24]:
                continue  # deploys happen in working hours
            width = (30 + int(rng.random() * 90)) * _MINUTE_MS
            end = min(begin + width, self.start_ms + self.span_ms)
            if any(b < end and begin < e for b, e in self.bursts) or end - begin < _MINUTE_MS:
                continue
            self.bursts.append((begin, end))
            weights.append(0.5 + rng.random())
        order = sorted(range(count), key=lambda i: self.bursts[i])
        self.bursts = [self.bursts[i] for i in order]
        total = sum(weights)
        acc = _BACKGROUND_SHARE
        for i in order:
            acc += (1 - _BACKGROUND_SHARE) * weights[i] / total
            self._burst_cum.append(acc)
        self._burst_cum[-1] = 1.0
        self._burst_starts = [b for b, _ in self.bursts]

    def in_burst(self, t: int) -> bool:
        """Whether ``t`` falls inside one of a bursty shape's bursts."""
        if not self.bursts:
            return False
        i = bisect_right(self._burst_starts, t) - 1
        return i >= 0 and t < self.bursts[i][1]

    def times(self, rng: random.Random, n: int) -> list[int]:
        """``n`` distinct epoch-ms creation times in the span, ascending."""
        if self.name == "even":
            return _even_times(rng, n, self.start_ms, self.span_ms)
        times: set[int] = set()
        start, span = self.start_ms, self.span_ms
        rand = rng.random
        while len(times) < n:
            burst = -1
            if self.name == "growing":
                t = start + int(rand() ** (1 / _GROWTH_POWER) * span)
            else:
                u = rand()
                if u < _BACKGROUND_SHARE:
                    t = start + int(rand() * span)
                else:
                    burst = bisect_right(self._burst_cum, u)
                    lo, hi = self.bursts[min(burst, len(self.bursts) - 1)]
                    t = lo + int((rand() + rand()) / 2 * (hi - lo))  # a peak mid-burst
            if rand() < _P_WHOLE_SECOND:
                t -= (t - start) % 1000
            if burst >= 0 or rand() <= HOURLY_WEIGHT[(t // HOUR_MS) % 24]:
                times.add(min(t, start + span - 1))
        return sorted(times)

    def end_rate(self, n: int) -> float:
        """Runs per millisecond at the end of the span, to continue the history past it."""
        per_ms = n / self.span_ms
        if self.name == "growing":
            return per_ms * _GROWTH_POWER  # the density of x ** p at x = 1
        if self.name == "bursty":
            return per_ms * _BACKGROUND_SHARE
        return per_ms


def _even_times(rng: random.Random, n: int, start_ms: int, span_ms: int) -> list[int]:
    """``n`` distinct times spread evenly (hour-weighted), ascending: the original data."""
    times: set[int] = set()
    span_s = span_ms // 1000
    while len(times) < n:
        if span_s > 0 and rng.random() < _P_WHOLE_SECOND:
            t = start_ms + rng.randrange(span_s) * 1000
        else:
            t = start_ms + rng.randrange(span_ms)
        if rng.random() <= HOURLY_WEIGHT[(t // HOUR_MS) % 24]:
            times.add(t)
    return sorted(times)


def future_times(rng: random.Random, count: int, start_ms: int, span_ms: int) -> list[int]:
    """``count`` distinct hour-weighted times in ``[start_ms, start_ms + span_ms)``."""
    return _even_times(rng, count, start_ms, span_ms)
