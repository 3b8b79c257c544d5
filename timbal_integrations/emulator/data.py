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
- detail-only fields: ``status_detail``, ``trace`` (a small dict), ``metadata`` (a flat
  dict such as ``{"env": "prod", "customer": "acme", "tier": "enterprise"}``) and
  ``rev`` (``main``, ``dev``, ``feature/x``, or null for about 20% of runs).

The list returned is sorted newest first, like the list endpoint's default order.
Nested ``user`` / ``workforce`` / ``metadata`` dicts are shared between runs: treat the
result as read-only.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = [
    "DEFAULT_SPAN",
    "DETAIL_FIELDS",
    "EXTRA_FIELDS",
    "FIXED_END",
    "PREVIEW_FIELDS",
    "RUN_STATUSES",
    "generate_runs",
    "to_epoch_ms",
]

FIXED_END: Final[datetime] = datetime(2026, 1, 1, tzinfo=UTC)
"""The default end of the generated span (2026-01-01T00:00:00Z), for reproducible data."""

DEFAULT_SPAN: Final[timedelta] = timedelta(days=30)
"""How far back from ``end`` the generated runs reach by default."""

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

_HOUR_MS: Final = 3_600_000

# Relative activity per UTC hour: busy working hours, quiet nights.
_HOURLY_WEIGHT: Final[tuple[float, ...]] = (
    0.30, 0.25, 0.25, 0.25, 0.30, 0.40, 0.55, 0.75, 0.90, 1.00, 1.00, 1.00,
    0.95, 1.00, 1.00, 1.00, 0.95, 0.85, 0.70, 0.60, 0.50, 0.45, 0.40, 0.35,
)  # fmt: skip

_USERS: Final[tuple[tuple[str, str, str, str | None], ...]] = (
    # id, name, email, photo_url (None: the key is omitted)
    ("usr_ada", "Ada Lovelace", "ada@acme.test", "https://avatars.example.test/ada.png"),
    ("usr_grace", "Grace Hopper", "grace@globex.test", "https://avatars.example.test/grace.png"),
    ("usr_alan", "Alan Turing", "alan@initech.test", None),
    ("usr_katherine", "Katherine Johnson", "katherine@acme.test", None),
    (
        "usr_linus",
        "Linus Torvalds",
        "linus@umbrella.test",
        "https://avatars.example.test/linus.png",
    ),
    ("usr_margaret", "Margaret Hamilton", "margaret@hooli.test", None),
    ("usr_dennis", "Dennis Ritchie", "dennis@globex.test", None),
    ("usr_barbara", "Barbara Liskov", "barbara@initech.test", "https://avatars.example.test/b.png"),
    ("usr_edsger", "Edsger Dijkstra", "edsger@acme.test", None),
    ("usr_frances", "Frances Allen", "frances@umbrella.test", None),
    ("usr_ken", "Ken Thompson", "ken@hooli.test", "https://avatars.example.test/ken.png"),
    ("usr_radia", "Radia Perlman", "radia@acme.test", None),
)
# Activity weights (a few power users, a long tail).
_USER_WEIGHTS: Final[tuple[float, ...]] = (20, 16, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1)

# id, name, type, uid, url, description, weight, base duration (ms), base cost (USD)
_WORKFORCES: Final[
    tuple[tuple[str, str, str, str | None, bool, str | None, float, float, float], ...]
] = (
    ("wf_support", "support-agent", "agent", "support-agent", True,
     "Answers customer support questions.", 30, 4_000, 0.012),
    ("wf_triage", "ticket-triage", "workflow", "ticket-triage", True,
     "Classifies and routes incoming tickets.", 18, 1_500, 0.003),
    ("wf_sales", "sales-assistant", "agent", "sales-assistant", False, None, 14, 6_000, 0.020),
    ("wf_report", "nightly-report", "workflow", None, False,
     "Builds the daily usage report.", 6, 45_000, 0.090),
    ("wf_research", "research-agent", "agent", "research-agent", True,
     "Searches the web and summarises findings.", 12, 20_000, 0.060),
    ("wf_summarizer", "doc-summarizer", "workflow", "doc-summarizer", False, None,
     10, 3_000, 0.008),
    ("wf_onboarding", "onboarding-bot", "agent", None, False, None, 6, 2_500, 0.006),
    ("wf_legacy_faq", "legacy-faq-bot", "agent", "faq-bot", False,
     "Superseded by support-agent.", 4, 2_000, 0.004),
)  # fmt: skip
_DELETED_WORKFORCE: Final = len(_WORKFORCES) - 1
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
_ERRORS: Final[tuple[tuple[str, str], ...]] = (
    ("ToolError", "tool 'search' failed: upstream returned 502"),
    ("TimeoutError", "step timed out after 60s"),
    ("RateLimitError", "model provider rate limit exceeded"),
    ("ValidationError", "output did not match the expected schema"),
)
_STEPS: Final[tuple[str, ...]] = ("llm", "tool:search", "tool:crm", "llm", "tool:email", "llm")

# Running runs only appear in the newest part of the span: P(running) falls linearly from
# 1 at `end` to 0 at this fraction of the span, which gives ~6% running overall.
_RUNNING_WINDOW: Final = 0.12
# Among finished runs: success 80, error 10, cancelled 4 (out of 94).
_P_SUCCESS: Final = 80 / 94
_P_ERROR: Final = 90 / 94
_STATUS_FACTOR: Final[dict[str, float]] = {"success": 1.0, "error": 0.45, "cancelled": 0.7}
_P_REPLY: Final = 0.4  # chance a run continues a recent thread instead of starting one
_MAX_OPEN_THREADS: Final = 24
_THREAD_IDLE_MS: Final = 6 * _HOUR_MS
_P_WHOLE_SECOND: Final = 0.25  # share of runs created on a whole second

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS: Final[tuple[str, ...]] = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
# Detail-only values are drawn from small pools of shared dicts: realistic enough, cheap.
_TRACES: Final[tuple[dict[str, Any], ...]] = tuple(
    {"span_count": spans, "steps": list(_STEPS[:steps])}
    for steps in range(1, len(_STEPS) + 1)
    for spans in (steps, steps * 2 + 1, steps * 3 + 2)
)
_STATUS_DETAILS: Final[dict[str, tuple[dict[str, Any], ...]]] = {
    "error": tuple({"error": {"type": kind, "message": message}} for kind, message in _ERRORS),
    "cancelled": ({"reason": "cancelled by user"}, {"reason": "cancelled: timeout"}),
    "running": tuple({"step": step} for step in dict.fromkeys(_STEPS)),
}


def to_epoch_ms(value: datetime) -> int:
    """Return an aware datetime as integer epoch milliseconds."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _ulid(ms: int, rand80: int) -> str:
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


def _creation_times(rng: random.Random, n: int, start_ms: int, span_ms: int) -> list[int]:
    """``n`` distinct epoch-ms times in ``[start_ms, start_ms + span_ms)``, ascending."""
    times: set[int] = set()
    span_s = span_ms // 1000
    while len(times) < n:
        if span_s > 0 and rng.random() < _P_WHOLE_SECOND:
            t = start_ms + rng.randrange(span_s) * 1000
        else:
            t = start_ms + rng.randrange(span_ms)
        if rng.random() <= _HOURLY_WEIGHT[(t // _HOUR_MS) % 24]:
            times.add(t)
    return sorted(times)


def _users() -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    for i, (uid, name, email, photo) in enumerate(_USERS):
        user: dict[str, Any] = {"id": uid, "name": name, "email": email}
        if photo is not None:
            user["photo_url"] = photo
        elif i % 3 == 0:
            user["photo_url"] = None  # the spec allows an explicit null too
        users.append(user)
    return users


def _workforces(deleted_at_ms: int) -> list[dict[str, Any]]:
    workforces: list[dict[str, Any]] = []
    for i, (wid, name, kind, uid, has_url, description, *_rest) in enumerate(_WORKFORCES):
        wf: dict[str, Any] = {"id": wid, "name": name, "type": kind}
        if uid is not None:
            wf["uid"] = uid
        if has_url:
            wf["url"] = f"https://api.timbal.ai/apps/{name}/run"
        if description is not None:
            wf["description"] = description
        if i == _DELETED_WORKFORCE:
            wf["deleted_at"] = deleted_at_ms
        workforces.append(wf)
    return workforces


class _Thread:
    __slots__ = ("finished_ms", "group_id", "last_id", "remaining", "user", "workforce")

    def __init__(self, group_id: str, user: int, workforce: int, remaining: int) -> None:
        self.group_id = group_id
        self.last_id = group_id
        self.user = user
        self.workforce = workforce
        self.remaining = remaining
        self.finished_ms = 0


def generate_runs(
    n: int,
    *,
    seed: int = 1,
    end: datetime = FIXED_END,
    span: timedelta = DEFAULT_SPAN,
) -> list[dict[str, Any]]:
    """Generate ``n`` realistic runs created in ``[end - span, end)``, newest first.

    Deterministic for ``(n, seed, end, span)``. Each item is a ``RunDetail``-shaped dict
    (see the module docstring); project it onto :data:`PREVIEW_FIELDS` for the list
    endpoint's shape.

    Raises:
        ValueError: ``n`` is negative, ``end`` is naive, or ``span`` is too short to hold
            ``n`` distinct millisecond timestamps.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    end_ms = to_epoch_ms(end)
    span_ms = int(span.total_seconds() * 1000)
    if span_ms <= 0 or n > span_ms // 4:
        raise ValueError("span must be positive and hold n distinct millisecond timestamps")
    start_ms = end_ms - span_ms
    rng = random.Random(seed)
    rand = rng.random

    times = _creation_times(rng, n, start_ms, span_ms)
    deleted_at_ms = end_ms - int(span_ms * _DELETED_BEFORE_END)
    users = _users()
    workforces = _workforces(deleted_at_ms)
    user_cum = _cumulative(_USER_WEIGHTS)
    wf_cum = _cumulative(tuple(w[6] for w in _WORKFORCES))
    live_wf_cum = _cumulative(
        tuple(0.0 if i == _DELETED_WORKFORCE else w[6] for i, w in enumerate(_WORKFORCES))
    )
    rev_cum = _cumulative(_REV_WEIGHTS)
    customer_cum = _cumulative(_CUSTOMER_WEIGHTS)
    metadata_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
    days: dict[int, str] = {}
    running_window_ms = span_ms * _RUNNING_WINDOW

    open_threads: list[_Thread] = []
    seen_keys: set[str] = set()
    runs: list[dict[str, Any]] = []
    for t in times:
        run_id = _ulid(t, rng.getrandbits(80))

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

        wf_spec = _WORKFORCES[thread.workforce]
        age_ms = end_ms - t
        u = rand()
        if u < 1.0 - age_ms / running_window_ms:
            status = "running"
        else:
            u = rand()
            status = "success" if u < _P_SUCCESS else "error" if u < _P_ERROR else "cancelled"

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

        key = _uuid4(rng.getrandbits(128))
        while key in seen_keys:  # pragma: no cover - astronomically unlikely
            key = _uuid4(rng.getrandbits(128))
        seen_keys.add(key)

        runs.append(
            {
                "id": run_id,
                "idempotency_key": key,
                "status": status,
                "created_at": _format_created_at(t, int(rand() * 4), days),
                "duration_ms": duration_ms,
                "cost_usd": cost_usd,
                "cost_credits": round(cost_usd * 100, 4),
                "group_id": thread.group_id,
                "parent_id": parent_id,
                "last_reaction_sentiment": sentiment,
                "user": users[thread.user],
                "workforce": workforces[thread.workforce],
                "status_detail": _status_detail(rng, status),
                "trace": _TRACES[int(rand() * len(_TRACES))],
                "metadata": _metadata(rng, customer_cum, metadata_cache),
                "rev": _REVS[_pick(rev_cum, rand())],
            }
        )
    runs.reverse()
    return runs


def _status_detail(rng: random.Random, status: str) -> dict[str, Any] | None:
    """A shared status_detail dict for ``status`` (None for success)."""
    choices = _STATUS_DETAILS.get(status)
    if choices is None:
        return None
    return choices[int(rng.random() * len(choices))]


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
