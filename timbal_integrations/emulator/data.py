"""Deterministic, realistic run history for the emulator.

:func:`generate_runs` builds ``n`` runs spread over a time span that ends at ``end``.
Everything is drawn from one ``random.Random(seed)``: the same arguments always give
the same runs, byte for byte, and neither the wall clock nor the global random state
is consulted.

Each run is a dict shaped like the API's ``RunDetail`` (a superset of ``RunPreview``):

- ``id``: a ULID (26 Crockford base32 characters whose prefix is the creation time in
  milliseconds), so ids sort in creation order and ``sort_by=id`` is meaningful;
- ``idempotency_key``: a UUID4;
- ``status``: ``success`` (~80%), ``error`` (~10%), ``cancelled`` (~4%) or ``running``
  (~6%, only in the newest part of the span; ``duration_ms`` is null while running);
- ``created_at``: an RFC 3339 UTC timestamp, spelt in a few ways (``Z`` or ``+00:00``,
  with or without milliseconds or microseconds); all creation times are distinct;
- ``duration_ms``, ``cost_usd``, ``cost_credits`` (``cost_usd * 100`` rounded to
  4 decimals);
- ``group_id`` / ``parent_id``: conversation threads; a root has ``group_id == id`` and
  ``parent_id`` null, a reply points at the previous run of its thread, shares the
  thread's ``group_id``, user and workforce, and starts after its parent finished;
- ``last_reaction_sentiment``: mostly null, sometimes ``positive`` / ``negative``;
- ``user`` (one of 12) and ``workforce`` (one of 8, agents and workflows, one of them
  soft-deleted with ``deleted_at`` in epoch milliseconds);
- detail-only fields: ``status_detail`` (``{code, reason, message}`` as in Timbal's
  ``RunStatus``; null while running), ``metadata`` (a flat dict such as
  ``{"env": "prod", "customer": "acme", "tier": "enterprise"}``) and ``rev`` (``main``,
  ``dev``, ``feature/x``, or null for about 20% of runs).

A run's ``trace`` is left out: the emulator builds it when the run is fetched (see
:mod:`.traces`), so that 100,000 runs do not hold 100,000 traces. A record that carries a
``trace`` key (even null) is served with that trace instead.

``shape`` chooses when runs are created (see :mod:`.shapes`): ``even`` (the default),
``growing`` or ``bursty``; in a bursty history, runs inside a burst fail far more often.

The list returned is sorted newest first, like the list endpoint's default order.
Nested ``user`` / ``workforce`` / ``metadata`` / ``status_detail`` dicts are shared
between runs: treat the result as read-only.

For a live emulator, :func:`generate_timeline` generates the same kind of history plus
its future, each run in its final state with the time it ends (see :mod:`.state`).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from timbal_integrations.emulator.catalog import (
    USER_WEIGHTS,
    WORKFORCES,
    status_detail,
    user_refs,
    workforce_refs,
)
from timbal_integrations.emulator.shapes import HOUR_MS, HistoryShape, future_times

__all__ = [
    "DEFAULT_FUTURE",
    "DEFAULT_SPAN",
    "DETAIL_FIELDS",
    "EXTRA_FIELDS",
    "FIXED_END",
    "PREVIEW_FIELDS",
    "RUN_STATUSES",
    "Timeline",
    "generate_runs",
    "generate_timeline",
    "to_epoch_ms",
    "ulid",
]

FIXED_END: Final[datetime] = datetime(2026, 1, 1, tzinfo=UTC)
"""The default end of the generated span (2026-01-01T00:00:00Z), for reproducible data."""

DEFAULT_SPAN: Final[timedelta] = timedelta(days=30)
"""How far back from ``end`` the generated runs reach by default."""

DEFAULT_FUTURE: Final[timedelta] = timedelta(days=7)
"""How far past ``end`` a live emulator's runs keep arriving by default."""

RUN_STATUSES: Final[tuple[str, ...]] = ("success", "error", "cancelled", "running")
"""The status values the generator uses."""

PREVIEW_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "idempotency_key",
    "status",
    "created_at",
    "duration_ms",
    "cost_usd",
    "cost_credits",
    "group_id",
    "parent_id",
    "last_reaction_sentiment",
    "user",
    "workforce",
)
"""The fields of the spec's ``RunPreview``, as served by the list endpoint."""

EXTRA_FIELDS: Final[tuple[str, ...]] = ("rev", "metadata")
"""Fields the list endpoint adds to each run when ``extra_fields`` is on."""

DETAIL_FIELDS: Final[tuple[str, ...]] = (
    *PREVIEW_FIELDS,
    "status_detail",
    "trace",
    "metadata",
    "rev",
)
"""The fields of a ``RunDetail`` as served by the get-run endpoint."""

_DELETED_WORKFORCE: Final = len(WORKFORCES) - 1
_DELETED_BEFORE_END: Final = 0.35  # fraction of the span before `end` it was deleted

_CUSTOMERS: Final[tuple[tuple[str, str], ...]] = (
    ("acme", "enterprise"),
    ("globex", "pro"),
    ("initech", "free"),
    ("umbrella", "enterprise"),
    ("hooli", "pro"),
)
_CUSTOMER_WEIGHTS: Final[tuple[float, ...]] = (35, 25, 15, 15, 10)
_CHANNELS: Final[tuple[str, ...]] = ("web", "slack", "api")
_REVS: Final[tuple[str | None, ...]] = ("main", "dev", "feature/x", None)
_REV_WEIGHTS: Final[tuple[float, ...]] = (55, 15, 10, 20)
# How many status_detail variants the original generator drew from, per status: the
# draws are kept so that every other field stays what it always was for a seed.
_DETAIL_CHOICES: Final[dict[str, int]] = {"error": 4, "cancelled": 2, "running": 4}
_TRACE_CHOICES: Final = 63  # the original generator's trace pool size (draw kept)

# Running runs only appear in the newest part of the span: P(running) falls linearly from
# 1 at `end` to 0 at this fraction of the span, which gives ~6% running overall.
_RUNNING_WINDOW: Final = 0.12
# Among finished runs: success 80, error 10, cancelled 4 (out of 94).
_P_SUCCESS: Final = 80 / 94
_P_ERROR: Final = 90 / 94
# Inside a bursty history's bursts (bad deploys): success 55%, error 40%, cancelled 5%.
_BURST_P_SUCCESS: Final = 0.55
_BURST_P_ERROR: Final = 0.95
_STATUS_FACTOR: Final[dict[str, float]] = {"success": 1.0, "error": 0.45, "cancelled": 0.7}
_P_REPLY: Final = 0.4  # chance a run continues a recent thread instead of starting one
_MAX_OPEN_THREADS: Final = 24
_THREAD_IDLE_MS: Final = 6 * HOUR_MS
# Live histories: a few runs take hours, some days (waiting on people, stuck jobs).
_P_LONG: Final = 0.01
_LONG_HOURS: Final = (1.0, 20.0)
_LONG_DAYS: Final = (3.5, 8.0)

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS: Final[tuple[str, ...]] = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def to_epoch_ms(value: datetime) -> int:
    """Return an aware datetime as integer epoch milliseconds."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ulid(ms: int, rand80: int) -> str:
    """A ULID: 48-bit millisecond time then 80 random bits, Crockford base32."""
    v = (ms << 80) | rand80  # 128 bits, read as 13 chunks of 10 bits (2 chars each)
    p = _PAIRS
    return "".join(
        (
            p[(v >> 120) & 1023], p[(v >> 110) & 1023], p[(v >> 100) & 1023],
            p[(v >> 90) & 1023], p[(v >> 80) & 1023], p[(v >> 70) & 1023],
            p[(v >> 60) & 1023], p[(v >> 50) & 1023], p[(v >> 40) & 1023],
            p[(v >> 30) & 1023], p[(v >> 20) & 1023], p[(v >> 10) & 1023],
            p[v & 1023],
        )
    )  # fmt: skip


def _uuid4(bits: int) -> str:
    """A UUID4 string from 128 random bits (version and variant bits forced)."""
    bits = (bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _format_created_at(ms: int, style: int, days: dict[int, str]) -> str:
    """Spell a UTC timestamp in one of the RFC 3339 forms the API may use."""
    day, ms_of_day = divmod(ms, 86_400_000)
    date = days.get(day)
    if date is None:
        date = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, sec = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    base = f"{date}{hour:02d}:{minute:02d}:{sec:02d}"
    if millis == 0 and style < 2:
        return base + ("Z" if style == 0 else "+00:00")
    if style == 0:
        return f"{base}.{millis:03d}Z"
    if style == 1:
        return f"{base}.{millis:03d}+00:00"
    if style == 2:
        return f"{base}.{millis:03d}000Z"
    return f"{base}.{millis:03d}000+00:00"


class _Thread:
    __slots__ = ("finished_ms", "group_id", "last_id", "remaining", "user", "workforce")

    def __init__(self, group_id: str, user: int, workforce: int, remaining: int) -> None:
        self.group_id = group_id
        self.last_id = group_id
        self.user = user
        self.workforce = workforce
        self.remaining = remaining
        self.finished_ms = 0


@dataclass(frozen=True, slots=True)
class Timeline:
    """Runs oldest first, with their creation times and, when live, when each ends.

    In a live timeline ``records[i]`` is run ``i`` once finished (``status`` is never
    ``running``); it is ``running`` from ``created_ms[i]`` until ``ends[i]``.
    """

    records: list[dict[str, Any]]
    created_ms: list[int]
    ends: list[int]


def generate_runs(
    n: int,
    *,
    seed: int = 1,
    end: datetime = FIXED_END,
    span: timedelta = DEFAULT_SPAN,
    shape: str = "even",
) -> list[dict[str, Any]]:
    """Generate ``n`` realistic runs created in ``[end - span, end)``, newest first.

    Deterministic for ``(n, seed, end, span, shape)``. Each item is a ``RunDetail``-shaped
    dict without ``trace`` (see the module docstring); project it onto
    :data:`PREVIEW_FIELDS` for the list endpoint's shape.

    Raises:
        ValueError: ``n`` is negative, ``end`` is naive, ``span`` is too short to hold
            ``n`` distinct millisecond timestamps, or ``shape`` is unknown.
    """
    records, _created, _ends = _generate(n, seed=seed, end=end, span=span, shape=shape)
    records.reverse()
    return records


def generate_timeline(
    n: int,
    *,
    seed: int = 1,
    end: datetime = FIXED_END,
    span: timedelta = DEFAULT_SPAN,
    future: timedelta | None = DEFAULT_FUTURE,
    shape: str = "even",
) -> Timeline:
    """A live history: ``n`` runs created in ``[end - span, end)`` plus those of the future.

    Runs keep arriving in ``[end, end + future)`` at the rate the history ends with. No
    run is ``running`` for good: each has a final status and a duration (seconds to
    minutes; about 1% take hours, half of those days). Deterministic for the arguments.

    With ``future=None``, the frozen history :func:`generate_runs` returns instead
    (oldest first, ``ends`` empty).

    Raises:
        ValueError: as :func:`generate_runs`, or ``future`` is negative.
    """
    if future is not None and future < timedelta(0):
        raise ValueError("future must be >= 0")
    records, created, ends = _generate(n, seed=seed, end=end, span=span, shape=shape, future=future)
    return Timeline(records, created, ends)


def _generate(
    n: int,
    *,
    seed: int,
    end: datetime,
    span: timedelta,
    shape: str,
    future: timedelta | None = None,
) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Runs oldest first, their creation times and (live only) end times."""
    if n < 0:
        raise ValueError("n must be >= 0")
    end_ms = to_epoch_ms(end)
    span_ms = int(span.total_seconds() * 1000)
    if span_ms <= 0 or n > span_ms // 4:
        raise ValueError("span must be positive and hold n distinct millisecond timestamps")
    start_ms = end_ms - span_ms
    rng = random.Random(seed)
    rand = rng.random

    history = HistoryShape(shape, rng, start_ms, span_ms)
    times = history.times(rng, n)
    live = future is not None
    if future is not None:
        future_ms = int(future.total_seconds() * 1000)
        count = min(round(history.end_rate(n) * future_ms), future_ms // 4)
        times += future_times(rng, count, end_ms, future_ms)
    deleted_at_ms = end_ms - int(span_ms * _DELETED_BEFORE_END)
    users = user_refs()
    workforces = workforce_refs(deleted_at_ms)
    user_cum = _cumulative(USER_WEIGHTS)
    wf_cum = _cumulative(tuple(w[6] for w in WORKFORCES))
    live_wf_cum = _cumulative(
        tuple(0.0 if i == _DELETED_WORKFORCE else w[6] for i, w in enumerate(WORKFORCES))
    )
    rev_cum = _cumulative(_REV_WEIGHTS)
    customer_cum = _cumulative(_CUSTOMER_WEIGHTS)
    metadata_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
    days: dict[int, str] = {}
    running_window_ms = span_ms * _RUNNING_WINDOW
    bursty = bool(history.bursts)

    open_threads: list[_Thread] = []
    seen_keys: set[str] = set()
    runs: list[dict[str, Any]] = []
    ends: list[int] = []
    for t in times:
        run_id = ulid(t, rng.getrandbits(80))

        # Continue a recent thread, or start a new one.
        thread: _Thread | None = None
        if open_threads and rand() < _P_REPLY:
            candidate = open_threads[int(rand() * len(open_threads))]
            if (
                candidate.finished_ms < t
                and t - candidate.finished_ms < _THREAD_IDLE_MS
                and not (candidate.workforce == _DELETED_WORKFORCE and t >= deleted_at_ms)
            ):
                thread = candidate
            else:
                open_threads.remove(candidate)
        if thread is None:
            user_i = _pick(user_cum, rand())
            wf_i = _pick(wf_cum if t < deleted_at_ms else live_wf_cum, rand())
            parent_id: str | None = None
            thread = _Thread(run_id, user_i, wf_i, remaining=int(rand() * 6))
            open_threads.append(thread)
            if len(open_threads) > _MAX_OPEN_THREADS:
                open_threads.pop(0)
        else:
            parent_id = thread.last_id
            thread.last_id = run_id
            thread.remaining -= 1
        if thread.remaining <= 0 and thread in open_threads:
            open_threads.remove(thread)

        wf_spec = WORKFORCES[thread.workforce]
        p_success, p_error = _P_SUCCESS, _P_ERROR
        if bursty and history.in_burst(t):
            p_success, p_error = _BURST_P_SUCCESS, _BURST_P_ERROR
        long_ms = 0
        if live:
            if rand() < _P_LONG:
                hours = rand() < 0.5
                low, high = _LONG_HOURS if hours else _LONG_DAYS
                unit = HOUR_MS if hours else 24 * HOUR_MS
                long_ms = int(unit * low * math.exp(rand() * math.log(high / low)))
            u = rand()
            status = "success" if u < p_success else "error" if u < p_error else "cancelled"
        else:
            age_ms = end_ms - t
            u = rand()
            if u < 1.0 - age_ms / running_window_ms:
                status = "running"
            else:
                u = rand()
                status = "success" if u < p_success else "error" if u < p_error else "cancelled"

        base_ms, base_cost = wf_spec[7], wf_spec[8]
        duration_ms: int | None
        if status == "running":
            duration_ms = None
            cost_usd = round(base_cost * rng.lognormvariate(-1.0, 0.8), 6)
            sentiment = None
            if thread in open_threads:
                open_threads.remove(thread)  # nobody replies to an unfinished run
        else:
            factor = _STATUS_FACTOR[status]
            duration_ms = max(5, int(base_ms * factor * rng.lognormvariate(0.0, 0.75)))
            if long_ms:
                duration_ms = long_ms
            if status == "cancelled" and rand() < 0.3:
                cost_usd = 0.0
            else:
                cost_usd = round(base_cost * factor * rng.lognormvariate(0.0, 0.9), 6)
            thread.finished_ms = t + duration_ms
            u = rand()
            if status == "success":
                sentiment = "positive" if u < 0.09 else "negative" if u < 0.12 else None
            elif status == "error":
                sentiment = "positive" if u < 0.01 else "negative" if u < 0.15 else None
            else:
                sentiment = None
        if live:
            ends.append(t + (duration_ms or 0))

        key = _uuid4(rng.getrandbits(128))
        while key in seen_keys:  # pragma: no cover - astronomically unlikely
            key = _uuid4(rng.getrandbits(128))
        seen_keys.add(key)

        created_at = _format_created_at(t, int(rand() * 4), days)
        choices = _DETAIL_CHOICES.get(status, 0)
        detail_index = int(rand() * choices) if choices else 0
        if not live:
            rand()  # the original generator drew a trace here
        workforce = workforces[thread.workforce]
        runs.append(
            {
                "id": run_id,
                "idempotency_key": key,
                "status": status,
                "created_at": created_at,
                "duration_ms": duration_ms,
                "cost_usd": cost_usd,
                "cost_credits": round(cost_usd * 100, 4),
                "group_id": thread.group_id,
                "parent_id": parent_id,
                "last_reaction_sentiment": sentiment,
                "user": users[thread.user],
                "workforce": workforce,
                "status_detail": status_detail(status, workforce, detail_index),
                "metadata": _metadata(rng, customer_cum, metadata_cache),
                "rev": _REVS[_pick(rev_cum, rand())],
            }
        )
    return runs, times, ends


def _metadata(
    rng: random.Random,
    customer_cum: list[float],
    cache: dict[tuple[Any, ...], dict[str, Any]],
) -> dict[str, Any]:
    """A flat metadata dict; identical dicts are shared to keep memory low."""
    rand = rng.random
    if rand() < 0.08:
        signature: tuple[Any, ...] = ()
    else:
        customer, tier = _CUSTOMERS[_pick(customer_cum, rand())]
        env = "prod" if rand() < 0.75 else "staging"
        channel = _CHANNELS[int(rand() * len(_CHANNELS))] if rand() < 0.5 else None
        attempt = 2 if rand() < 0.05 else None
        signature = (env, customer, tier, channel, attempt)
    cached = cache.get(signature)
    if cached is None:
        cached = {}
        if signature:
            env, customer, tier, channel, attempt = signature
            cached = {"env": env, "customer": customer, "tier": tier}
            if channel is not None:
                cached["channel"] = channel
            if attempt is not None:
                cached["attempt"] = attempt
        cache[signature] = cached
    return cached


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    total = sum(weights)
    acc = 0.0
    out: list[float] = []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def _pick(cumulative: list[float], u: float) -> int:
    """Index of the weighted choice for ``u`` in [0, 1) (the last bound is exactly 1.0)."""
    return bisect_right(cumulative, u)
