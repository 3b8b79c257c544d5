"""What an emulator saw: request counters, a request log, and its rate limiter.

- :class:`EmulatorStats`: thread-safe counters (per endpoint, per status, faults, 429s);
- :class:`RequestLog`: every request's method, path, query and status, in order, so a test
  can assert exactly which requests a client made;
- :class:`TokenBucket`: the rate limit, ``rate`` requests per second with bursts up to
  ``burst``, and the ``RateLimit-*`` headers that describe it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import parse_qsl

__all__ = ["EmulatorStats", "LoggedRequest", "RequestLog", "TokenBucket"]

Headers = list[tuple[bytes, bytes]]


class EmulatorStats:
    """Thread-safe request counters of one emulator; read them from any thread."""

    def __init__(self) -> None:
        """Start with every counter at zero."""
        self._lock = threading.Lock()
        self._requests_total = 0
        self._by_endpoint: dict[str, int] = {}
        self._faults: dict[str, int] = {}
        self._rate_limited = 0
        self._served_ok = 0
        self._by_status: dict[int, int] = {}

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._requests_total = 0
            self._by_endpoint = {}
            self._faults = {}
            self._rate_limited = 0
            self._served_ok = 0
            self._by_status = {}

    @property
    def requests_total(self) -> int:
        """Every HTTP request received."""
        return self._requests_total

    @property
    def requests_by_endpoint(self) -> dict[str, int]:
        """Requests per endpoint: ``list``, ``get``, ``reactions`` or ``other`` (a copy)."""
        with self._lock:
            return dict(self._by_endpoint)

    @property
    def faults_by_kind(self) -> dict[str, int]:
        """Injected faults per kind (``429``, ``500``, ``502``, ``503``, ``drop``; a copy)."""
        with self._lock:
            return dict(self._faults)

    @property
    def faults_total(self) -> int:
        """All injected faults."""
        with self._lock:
            return sum(self._faults.values())

    @property
    def rate_limited(self) -> int:
        """Requests refused with 429 by the rate limit (injected 429s not included)."""
        return self._rate_limited

    @property
    def served_ok(self) -> int:
        """Responses with a 2xx status."""
        return self._served_ok

    @property
    def responses_by_status(self) -> dict[int, int]:
        """Responses sent per HTTP status, faults included, drops excluded (a copy)."""
        with self._lock:
            return dict(self._by_status)

    def snapshot(self) -> dict[str, Any]:
        """All counters as one plain dict."""
        with self._lock:
            return {
                "requests_total": self._requests_total,
                "requests_by_endpoint": dict(self._by_endpoint),
                "faults_by_kind": dict(self._faults),
                "faults_total": sum(self._faults.values()),
                "rate_limited": self._rate_limited,
                "served_ok": self._served_ok,
                "responses_by_status": dict(self._by_status),
            }

    def __repr__(self) -> str:
        return f"EmulatorStats({self.snapshot()!r})"

    def _count_request(self, endpoint: str) -> None:
        with self._lock:
            self._requests_total += 1
            self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1

    def _count_rate_limited(self) -> None:
        with self._lock:
            self._rate_limited += 1

    def _count_response(self, status: int) -> None:
        with self._lock:
            self._by_status[status] = self._by_status.get(status, 0) + 1
            if 200 <= status < 300:
                self._served_ok += 1


class TokenBucket:
    """``rate`` requests per second, in bursts of up to ``burst`` (default ``max(1, rate)``).

    Not locked itself: the app calls :meth:`take` under its own lock, which makes the
    bucket exact under concurrent requests (one event loop or several server threads).
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """A full bucket; ``monotonic`` is the time source (seconds)."""
        self.rate = rate
        self.capacity = max(1.0, rate) if burst is None else float(burst)
        self.tokens = self.capacity
        self._monotonic = monotonic
        self.updated = monotonic()

    def take(self) -> tuple[bool, float, Headers]:
        """Try to spend a token; returns (allowed, seconds until one is free, headers)."""
        now = self._monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        wait = 0.0 if allowed else (1.0 - self.tokens) / self.rate
        return allowed, wait, self.headers()

    def headers(self) -> Headers:
        """``RateLimit-Limit`` (the burst), ``-Remaining`` (whole tokens left) and ``-Reset``
        (seconds until the bucket is full again, rounded up)."""
        reset = math.ceil((self.capacity - self.tokens) / self.rate)
        return [
            (b"ratelimit-limit", str(math.floor(self.capacity)).encode()),
            (b"ratelimit-remaining", str(math.floor(self.tokens)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the emulator saw it.

    Attributes:
        method: ``GET``, ``POST``, ...
        path: the URL path, e.g. ``/orgs/demo-org/projects/demo-project/runs``.
        query_string: the raw query string.
        status: the status sent (200 for a connection dropped mid-response; 0 if none).
        endpoint: ``list``, ``get``, ``reactions`` or ``other``.
        fault: the injected fault (``429``, ``500``, ``502``, ``503``, ``drop``), or None.
    """

    method: str
    path: str
    query_string: str
    status: int
    endpoint: str
    fault: str | None = None

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query parameters, in order (repeats kept)."""
        return parse_qsl(self.query_string, keep_blank_values=True)

    @property
    def params(self) -> dict[str, str]:
        """The query parameters as a dict (the last of a repeated name wins)."""
        return dict(self.query)

    @property
    def run_id(self) -> str | None:
        """The run a ``get`` or ``reactions`` request was about, else None."""
        parts = self.path.strip("/").split("/")
        return parts[5] if self.endpoint in ("get", "reactions") and len(parts) > 5 else None


class RequestLog(Sequence[LoggedRequest]):
    """Every request an emulator received, oldest first (the latest ``maxlen`` are kept).

    Thread-safe. Reading it (``len``, indexing, iteration) sees a snapshot; use
    :meth:`clear` between steps of a test, or :attr:`total` and :meth:`since` to look at
    what came after a point::

        mark = emu.request_log.total
        ...  # the client does its work
        paths = [r.path for r in emu.request_log.since(mark)]
    """

    def __init__(self, maxlen: int = 100_000) -> None:
        """An empty log keeping at most ``maxlen`` entries."""
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=maxlen)
        self._total = 0

    @property
    def total(self) -> int:
        """How many requests were ever logged (also those no longer kept)."""
        return self._total

    def since(self, mark: int) -> list[LoggedRequest]:
        """The requests logged after :attr:`total` read ``mark`` (those still kept)."""
        with self._lock:
            start = max(0, mark - (self._total - len(self._entries)))
            return list(self._entries)[start:]

    def clear(self) -> None:
        """Forget every entry (``total`` keeps counting)."""
        with self._lock:
            self._entries.clear()

    def entries(self) -> list[LoggedRequest]:
        """A copy of the kept entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> LoggedRequest: ...

    @overload
    def __getitem__(self, index: slice) -> list[LoggedRequest]: ...

    def __getitem__(self, index: int | slice) -> LoggedRequest | list[LoggedRequest]:
        return self.entries()[index]

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.entries())

    def __repr__(self) -> str:
        return f"RequestLog({len(self)} kept, {self._total} in all)"

    def _append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            self._total += 1
