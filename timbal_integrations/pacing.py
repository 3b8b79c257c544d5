"""Pacing requests within the API's rate limit, and choosing how many to keep in flight.

Sans-I/O: nothing here sends, sleeps or reads a header. The clients parse each
response's ``RateLimit-Limit``/``-Remaining``/``-Reset`` into a :class:`RateLimitInfo`
(``client/_core.py``, the one place that reads HTTP), hand it to their :class:`Pacer`,
and sleep for as long as :meth:`Pacer.reserve` says before each request. A parallel
listing asks its :class:`Concurrency` how many requests to keep in flight. Both take a
``clock`` (seconds, monotonic), so tests drive them with a fake one.

- :class:`Pacer` (one per client): spaces requests so that the budget the server reports
  lasts until its reset (``Reset / Remaining`` seconds apart), and holds every request
  back until the reset when the budget is spent (``Remaining: 0``, or a 429 that says so).
  It counts what it saw, for :class:`Concurrency` and for tests.
- :class:`Concurrency`: a fixed number, or ``auto``: start with a few requests in flight,
  double while throughput grows with them (slow start), then add one at a time while it
  still grows (additive increase); halve on a 429, and before one, when the budget the
  server reports runs low (multiplicative decrease); hold while the pacer, not the
  number in flight, is what limits the rate.

Waiting for the pacer is not a retry's backoff: :func:`timbal_integrations.retry.testing`
skips backoffs, never the server's budget, so a test against a rate limit is paced as a
real client would be instead of burning its retries in microseconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from . import defaults

__all__ = ["LOW_BUDGET_SHARE", "Concurrency", "Pacer", "PacerCounts", "RateLimitInfo"]

Clock = Callable[[], float]

_PACED_SHARE: Final = 0.85  # an epoch this close to the pacer's rate is limited by it
_DOUBLING_GAIN: Final = 1.5  # slow start doubles again while a doubling buys this much

LOW_BUDGET_SHARE: Final = 0.1
"""A response whose ``RateLimit-Remaining`` is below this share of ``RateLimit-Limit``
means the budget runs low: an ``auto`` listing halves its requests in flight."""


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What one response said of the rate limit (None where a header was absent or bad)."""

    limit: int | None
    """``RateLimit-Limit``: requests the budget holds."""
    remaining: int | None
    """``RateLimit-Remaining``: requests left in it now."""
    reset: float | None
    """``RateLimit-Reset``: seconds until it is whole again."""


@dataclass(frozen=True, slots=True)
class PacerCounts:
    """A snapshot of what a :class:`Pacer` has seen (all counts since it was made)."""

    responses: int
    """Responses observed (any status)."""
    throttled: int
    """429 answers."""
    low_budget: int
    """Responses reporting less than :data:`LOW_BUDGET_SHARE` of the budget left."""
    waits: int
    """Requests held back to keep within the budget."""
    interval: float = 0.0
    """Seconds between request starts the budget allows now (0: no pacing)."""


class Pacer:
    """Spaces a client's requests by what the server says of its rate limit.

    :meth:`reserve` before each request (it books the request's slot and returns the
    seconds to wait for it); :meth:`observe` with each answer. Without ``RateLimit-*``
    headers it never holds anything back: retries (with ``Retry-After``) are the
    client's retry policy's business. Pauses are capped at ``max_pause`` seconds (the
    retry policy's ``retry_after_max``).
    """

    def __init__(self, *, max_pause: float = defaults.RETRY_AFTER_MAX, clock: Clock | None = None):
        self.max_pause = max_pause
        self._clock: Clock = clock or time.monotonic
        self._next = 0.0  # the earliest time the next request may start
        self._interval = 0.0  # seconds between request starts the budget allows
        self._paused_until = 0.0
        self._responses = 0
        self._throttled = 0
        self._low = 0
        self._waits = 0
        self.last: RateLimitInfo | None = None
        """The latest rate-limit headers seen (None before any)."""

    @property
    def interval(self) -> float:
        """Seconds between request starts the last reported budget allows (0: no pacing)."""
        return self._interval

    @property
    def paused_until(self) -> float:
        """Until when (on the pacer's clock) every request is held back (past: none)."""
        return self._paused_until

    def counts(self) -> PacerCounts:
        """What the pacer has seen so far."""
        return PacerCounts(self._responses, self._throttled, self._low, self._waits, self._interval)

    def reserve(self) -> float:
        """Book the next request's start; the seconds to wait before sending it (0: now)."""
        now = self._clock()
        start = max(now, self._next, self._paused_until)
        self._next = start + self._interval
        if start > now:
            self._waits += 1
        return start - now

    def observe(
        self, status: int | None, info: RateLimitInfo | None, retry_after: float | None = None
    ) -> None:
        """Take in one answer: its status (None: no answer), its rate-limit headers, and
        its ``Retry-After`` in seconds."""
        if status is None:
            return
        self._responses += 1
        if status == 429:
            self._throttled += 1
        if info is None or info.remaining is None:
            return
        self.last = info
        now = self._clock()
        full = max(info.reset or 0.0, 0.0)
        reset = min(full, self.max_pause)
        remaining = max(info.remaining, 0)
        if info.limit is not None and remaining < LOW_BUDGET_SHARE * info.limit:
            self._low += 1
        if remaining == 0 or status == 429:
            # The budget is spent: nothing until it is whole again.
            wait = max(reset, min(retry_after or 0.0, self.max_pause))
            self._paused_until = max(self._paused_until, now + wait)
            self._interval = 0.0
            return
        # Spread what is left over the time until the reset. Slots already booked stay
        # booked: moving them earlier would send more than the budget allows.
        self._interval = min(full / remaining, self.max_pause)


class Concurrency:
    """How many requests a parallel listing keeps in flight: ``fixed``, or AIMD ("auto").

    The listing calls :meth:`page_done` after each page with its pacer's counts and
    whether every slot was busy; :attr:`target` is the number to keep in flight. A
    fixed concurrency never changes. ``auto`` starts at ``initial`` and works in epochs:
    about one round of requests while it doubles (``target / 2`` pages), two once it
    adds one at a time (``2 * target`` pages). It doubles the target while an epoch's
    throughput is at least 1.5x the one before, then adds one while it still grows; any
    429 in an epoch halves it, and so does a low budget (before a 429); an epoch that
    ran at (nearly) the rate the pacer allows, or in which not every slot was busy,
    holds it. When the listing says when each page was asked for (``sent``), only pages
    asked for within the epoch count, and throughput is ``target`` over their median
    time from asking to having (Little's law), so a new epoch is not credited with the
    answers to requests sent before it.
    """

    def __init__(
        self,
        fixed: int | None = None,
        *,
        initial: int = defaults.AUTO_PARALLEL_INITIAL,
        maximum: int = defaults.AUTO_PARALLEL_MAX,
        minimum: int = 1,
        clock: Clock | None = None,
    ) -> None:
        self.auto = fixed is None
        self.minimum = minimum
        self.maximum = fixed if fixed is not None else maximum
        self.target = fixed if fixed is not None else max(minimum, min(initial, maximum))
        self._clock: Clock = clock or time.monotonic
        self._slow_start = True
        self._epoch_start = self._clock()
        self._epoch_pages = 0
        self._epoch_busy = True
        self._epoch_counts: PacerCounts | None = None
        self._cycles: list[float] = []  # seconds from asking for a page to having it
        self._last_rate: float | None = None
        self._cooldown = 0
        self._grown_from = 0  # the target before the last growth (0: it did not grow)
        self.history: list[tuple[float, int]] = [(0.0, self.target)]
        """(seconds since start, target) at every change: for logs and benchmarks."""
        self._started = self._epoch_start

    @property
    def peak(self) -> int:
        """The highest target reached."""
        return max(target for _, target in self.history)

    def now(self) -> float:
        """The controller's clock: a listing reads it when it asks for a page, and hands
        the reading back to :meth:`page_done` as ``sent``."""
        return self._clock()

    def page_done(self, counts: PacerCounts, *, busy: bool, sent: float | None = None) -> int:
        """One more page arrived; ``counts`` is the pacer's, ``busy`` whether all
        ``target`` slots were in use, ``sent`` when (on :meth:`now`) the worker asked for
        it. Returns the (possibly new) target."""
        if not self.auto:
            return self.target
        start = self._epoch_counts
        if start is None:
            start = self._epoch_counts = counts
        if self._cooldown > 0:
            self._cooldown -= 1  # answers to requests sent before the last decrease
        elif counts.throttled > start.throttled or counts.low_budget > start.low_budget:
            # The server says too many (429), or soon will (its budget runs low).
            self._slow_start = False
            self._cooldown = self.target
            self._set(max(self.minimum, self.target // 2), counts)
            return self.target
        now = self._clock()
        if sent is not None:
            if sent < self._epoch_start:
                return self.target  # asked for before this epoch: it says nothing of it
            self._cycles.append(now - sent)
        self._epoch_pages += 1
        self._epoch_busy = self._epoch_busy and busy
        if self._epoch_pages < (max(2, self.target // 2) if self._slow_start else 2 * self.target):
            return self.target
        if self._cycles:
            # Little's law: with every slot busy, pages arrive at target / (the time a
            # worker takes from asking for a page to asking for the next). Counting
            # arrivals instead would credit a new epoch with the pages of requests sent
            # before it, and make every doubling look like one.
            rate = self.target / max(statistics.median(self._cycles), 1e-6)
        else:
            rate = self._epoch_pages / max(now - self._epoch_start, 1e-6)
        previous = self._last_rate
        if counts.interval > 0 and rate * counts.interval >= _PACED_SHARE:
            # The budget, not the number in flight, limits the rate: more would only wait.
            self._slow_start = False
            self._new_epoch(counts)
        elif not self._epoch_busy:
            self._new_epoch(counts)  # not enough work for every slot: nothing learned
        elif previous is None or (self._slow_start and rate >= _DOUBLING_GAIN * previous):
            self._last_rate = rate
            self._grow(counts)
        elif self._slow_start:
            self._slow_start = False
            if rate < 1.1 * previous and self._grown_from:  # the last doubling bought ~nothing
                self._set(self._grown_from, counts)
            else:
                self._last_rate = rate
                self._new_epoch(counts)
        elif rate > previous * (1 + 0.5 / self.target):
            self._last_rate = rate
            self._grow(counts)
        else:
            self._new_epoch(counts)
        return self.target

    def _grow(self, counts: PacerCounts) -> None:
        step = self.target if self._slow_start else 1
        grown = min(self.maximum, self.target + step)
        self._grown_from = self.target if grown > self.target else 0
        self._set(grown, counts)

    def _set(self, target: int, counts: PacerCounts) -> None:
        if target < self.target:
            self._grown_from = 0
        if target != self.target:
            self.target = target
            self.history.append((self._clock() - self._started, target))
        self._new_epoch(counts)

    def _new_epoch(self, counts: PacerCounts) -> None:
        self._epoch_start = self._clock()
        self._epoch_pages = 0
        self._epoch_busy = True
        self._epoch_counts = counts
        self._cycles.clear()
