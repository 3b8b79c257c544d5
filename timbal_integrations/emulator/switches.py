"""The emulator's switches for bad days: latency, injected faults, and a rate limit.

Thread-safe; changed while serving with :meth:`Switches.configure`.
"""

from __future__ import annotations

import enum
import math
import random
import threading
from collections.abc import Iterable
from typing import Any, Final

from timbal_integrations.emulator.stats import Headers, TokenBucket

__all__ = ["FAULT_KINDS", "Switches", "Unset"]

FAULT_KINDS: Final[tuple[str, ...]] = ("429", "500", "502", "503", "drop")
"""Every fault the emulator can inject."""


class Unset(enum.Enum):
    """Marks an argument left out (where None means "off")."""

    UNSET = enum.auto()


def _positive_or_none(name: str, value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int | float) and math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be > 0 {what}, or None")
    return float(value)


class Switches:
    """Latency, fault injection and rate limit of one emulator."""

    def __init__(self, seed: int) -> None:
        """All off; faults are drawn from a generator seeded from the data ``seed``."""
        self._lock = threading.Lock()
        self._fault_rng = random.Random(f"timbal-emulator-faults:{seed}")
        self.latency_ms = 0.0
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = FAULT_KINDS
        self.retry_after = 0
        self.rate_limit: float | None = None
        self.rate_limit_burst: float | None = None
        self.bucket: TokenBucket | None = None

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        fault_rate: float | None = None,
        fault_kinds: Iterable[str] | None = None,
        retry_after: int | None = None,
        rate_limit: float | Unset | None = Unset.UNSET,
        rate_limit_burst: float | Unset | None = Unset.UNSET,
    ) -> None:
        """Change switches; arguments left out keep their value.

        ``rate_limit=None`` turns the rate limit off; setting it or its burst refills the
        bucket.

        Raises:
            ValueError: a value is out of range (nothing is changed then).
        """
        with self._lock:
            kinds = self.fault_kinds if fault_kinds is None else fault_kinds
            kinds = tuple(dict.fromkeys(str(k) for k in kinds))
            unknown = [k for k in kinds if k not in FAULT_KINDS]
            if unknown:
                raise ValueError(
                    f"fault_kinds: unknown {unknown}; choose from {', '.join(FAULT_KINDS)}"
                )
            latency = self.latency_ms if latency_ms is None else latency_ms
            if not (isinstance(latency, int | float) and latency >= 0):
                raise ValueError("latency_ms must be >= 0")
            rate = self.fault_rate if fault_rate is None else fault_rate
            if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
                raise ValueError("fault_rate must be between 0 and 1")
            if rate > 0 and not kinds:
                raise ValueError("fault_kinds must not be empty when fault_rate > 0")
            retry = self.retry_after if retry_after is None else retry_after
            if not (isinstance(retry, int) and retry >= 0):
                raise ValueError("retry_after must be an integer >= 0")
            limit = self.rate_limit if isinstance(rate_limit, Unset) else rate_limit
            limit = _positive_or_none("rate_limit", limit, "requests per second")
            burst = (
                self.rate_limit_burst if isinstance(rate_limit_burst, Unset) else rate_limit_burst
            )
            burst = _positive_or_none("rate_limit_burst", burst, "requests")
            if burst is not None and burst < 1:
                raise ValueError("rate_limit_burst must be >= 1 request, or None")

            self.latency_ms, self.fault_rate, self.fault_kinds = float(latency), float(rate), kinds
            self.retry_after = retry
            if not (isinstance(rate_limit, Unset) and isinstance(rate_limit_burst, Unset)):
                self.rate_limit, self.rate_limit_burst = limit, burst
                self.bucket = TokenBucket(limit, burst) if limit is not None else None

    @property
    def settings(self) -> dict[str, Any]:
        """The current switches."""
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "fault_rate": self.fault_rate,
                "fault_kinds": self.fault_kinds,
                "retry_after": self.retry_after,
                "rate_limit": self.rate_limit,
                "rate_limit_burst": self.rate_limit_burst,
            }

    def draw(self, faultable: bool) -> tuple[float, str | None, int, TokenBucket | None]:
        """For one request: its latency (ms), its fault (or None), Retry-After, the bucket."""
        with self._lock:
            fault: str | None = None
            if faultable and self.fault_rate > 0 and self._fault_rng.random() < self.fault_rate:
                kinds = self.fault_kinds
                fault = kinds[int(self._fault_rng.random() * len(kinds))]
            return self.latency_ms, fault, self.retry_after, self.bucket

    def take(self, bucket: TokenBucket) -> tuple[bool, float, Headers]:
        """Spend a token of ``bucket`` atomically (see :meth:`TokenBucket.take`)."""
        with self._lock:
            return bucket.take()
