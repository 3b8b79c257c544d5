"""What an emulator serves at a moment, and the test hooks that change it.

Everything served is a pure function of (source, hooks applied, now):

- **visible**: a live emulator serves a run once its ``created_at <= now``; a frozen one
  serves all of its runs (its "now" stands still at the end of its data);
- **running**: a live run created at ``t`` with duration ``d`` is ``running`` until
  ``t + d``, with ``duration_ms`` null, ``cost_usd``/``cost_credits`` 0 (the platform
  prices a run when it ends) and ``status_detail`` null; then it has its final status,
  duration, cost and ``status_detail``;
- **reactions**: a reaction counts once ``created_at <= now``, and a run's
  ``last_reaction_sentiment`` is the sentiment of its latest visible reaction;
- **hooks** (:class:`EmulatorState`'s methods) override that: fields set by
  :meth:`~EmulatorState.update_run` win over the clock from then on, a held run stays
  ``running`` whatever the clock says, an added run is served as given (once its
  ``created_at`` has come), a removed run is gone (404), and added reactions count like
  generated ones.

The state changes only at event times (a run created, finishing, or reacted to) and on
hooks, so a :class:`~.store.RunStore` is built per (hooks version, event) and shared by
every request until the next one. Page tokens are keyset positions, so they stay exact
across such changes.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, overload

import orjson

from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.data import PREVIEW_FIELDS, to_epoch_ms
from timbal_integrations.emulator.params import ListParams, parse_created_at
from timbal_integrations.emulator.reactions import Reaction, added_reaction, generate_reactions
from timbal_integrations.emulator.sources import Source
from timbal_integrations.emulator.store import Dataset, RunStore
from timbal_integrations.emulator.tokens import comes_after
from timbal_integrations.emulator.traces import build_trace

__all__ = ["DetailsView", "EmulatorState", "render_detail"]

_IDENTITY: Final = frozenset({"id", "idempotency_key", "created_at"})
_RUNNING: Final[dict[str, Any]] = {
    "status": "running",
    "duration_ms": None,
    "cost_usd": 0.0,
    "cost_credits": 0.0,
    "status_detail": None,
}
_SOURCE_LOCK: Final = threading.Lock()

Render = Callable[[Mapping[str, Any], int], tuple[dict[str, Any], bool]]


def render_detail(source: Source, live: bool) -> Render:
    """How a record becomes the ``RunDetail`` served: with its trace, built on demand.

    A record with a ``trace`` key is served as is. Otherwise the trace is generated (see
    :mod:`.traces`), cut at ``now`` while the run is running; such a detail of a live
    emulator changes with time, so it is not cacheable.
    """
    seed, ends = source.seed, source.ends

    def render(record: Mapping[str, Any], now_ms: int) -> tuple[dict[str, Any], bool]:
        if "trace" in record:
            return dict(record), True
        running = record.get("status") == "running"
        run_id = record["id"]
        planned = None
        if run_id in ends:
            planned = ends[run_id] - parse_created_at(record["created_at"])
        trace = build_trace(seed, record, planned_ms=planned, cut_ms=now_ms if running else None)
        detail: dict[str, Any] = {}
        for key, value in record.items():
            detail[key] = value
            if key == "status_detail":
                detail["trace"] = trace
        detail.setdefault("trace", trace)
        return detail, not (running and live)

    return render


class DetailsView(Sequence[dict[str, Any]]):
    """Every visible run as the get endpoint serves it, newest first, built on access.

    Indexing, slicing and iteration build each ``RunDetail`` (with its trace) when asked
    for, so a big emulator's details cost nothing until read.
    """

    def __init__(self, store: RunStore, now_ms: int) -> None:
        """The details of ``store``'s runs at ``now_ms``."""
        self._store = store
        self._now = now_ms

    def __len__(self) -> int:
        return len(self._store)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        n = len(self._store)
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(n))]
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("run index out of range")
        return self._store.detail_dict(n - 1 - index, self._now)[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for k in range(len(self)):
            yield self[k]


class EmulatorState:
    """An emulator's runs at any moment, plus the hooks tests use to change them.

    Thread-safe: hooks may be called while requests are being served.
    """

    def __init__(self, source: Source, clock: EmulatorClock | None) -> None:
        """Serve ``source``; a live source follows ``clock``."""
        if source.live and clock is None:
            raise ValueError("a live emulator needs a clock")
        self.source = source
        self.clock = clock if source.live else None
        self._lock = threading.RLock()
        self._dataset = source.dataset
        self._preview_cache = source.preview_cache
        self._render = render_detail(source, source.live)
        self._overrides: dict[str, dict[str, Any]] = {}
        self._held: set[str] = set()
        self._added: dict[str, list[Reaction]] = {}
        self._hook_events: list[int] = []
        self._static_ref: dict[str, int] = {}  # runs added by hand: when they were added
        self._static_reactions: dict[str, tuple[Reaction, ...]] = {}
        self._version = 0
        self._cached: tuple[tuple[int, ...], RunStore] | None = None
        if not source.live:
            self._cached = ((0,), self._shared_frozen_store())

    # -- what is served -----------------------------------------------------------------

    def now_ms(self) -> int:
        """The current time (epoch ms): the clock's, or a frozen emulator's fixed "now"."""
        return self.clock.now_ms() if self.clock is not None else self.source.nominal_ms

    def store_at(self, now_ms: int) -> RunStore:
        """The store of every run visible at ``now_ms``, in its state then."""
        source = self.source
        if source.live:
            key: tuple[int, ...] = (
                self._version,
                bisect_right(source.events, now_ms),
                bisect_right(self._hook_events, now_ms),
            )
        else:
            key = (self._version,)
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == key:
                return cached[1]
            store = self._build(now_ms)
            self._cached = (key, store)
            return store

    def store(self) -> RunStore:
        """The store at the current time."""
        return self.store_at(self.now_ms())

    def list_page(self, params: ListParams) -> bytes:
        """One page of the list endpoint at the current time.

        Raises:
            BadRequest: the page token is malformed or belongs to another query.
        """
        return self.store().list_page(params)

    def detail(self, run_id: str) -> bytes | None:
        """The ``RunDetail`` JSON of a visible run (id or idempotency key), or None."""
        now = self.now_ms()
        return self.store_at(now).detail(run_id, now)

    def previews(self) -> list[dict[str, Any]]:
        """Ground truth: every visible run's list item, newest first (shared, read-only)."""
        return self.store().previews()

    def details(self) -> DetailsView:
        """Ground truth: every visible run's ``RunDetail``, newest first."""
        now = self.now_ms()
        return DetailsView(self.store_at(now), now)

    def reactions(self, run_id: str) -> list[dict[str, Any]]:
        """Ground truth: a visible run's reactions visible now, newest first.

        Raises:
            KeyError: no such run is visible now.
        """
        now = self.now_ms()
        store = self.store_at(now)
        i = store.index_of(run_id)
        if i is None:
            raise KeyError(f"no run {run_id!r} is visible now")
        return [r.to_json() for r in reversed(self._visible_reactions(store.record(i), now))]

    def reactions_page(self, run_id: str, page_token: str | None) -> bytes | None:
        """One page of a run's reactions (newest first), or None if no such run is visible.

        Raises:
            BadRequest: the page token is malformed or belongs to another run.
        """
        now = self.now_ms()
        store = self.store_at(now)
        i = store.index_of(run_id)
        if i is None:
            return None
        record = store.record(i)
        newest_first = self._visible_reactions(record, now)[::-1]
        tokens = self.source.tokens
        qhash = tokens.query_hash(("reactions", record["id"]))
        start = 0
        if page_token:
            position = tokens.decode(page_token, qhash, "reactions")
            start = bisect_left(
                newest_first, True, key=lambda r: comes_after(r.at_ms, r.id, position, True)
            )
        stop = start + self.source.page_size
        page = newest_first[start:stop]
        token: str | None = None
        if stop < len(newest_first):
            token = tokens.encode(qhash, page[-1].at_ms, page[-1].id).decode()
        items = [r.to_json() for r in page]
        return orjson.dumps({"reactions": items, "next_page_token": token})

    # -- hooks --------------------------------------------------------------------------

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run (by id or idempotency key); they win over the clock from now on.

        Raises:
            KeyError: no such run.
            ValueError: a field is ``id``, ``idempotency_key`` or ``created_at``.
        """
        bad = sorted(_IDENTITY & set(fields))
        if bad:
            raise ValueError(
                f"update_run cannot change {', '.join(bad)}; remove_run and add_run instead"
            )
        with self._lock:
            rid = self._run_id(run_id)
            self._overrides.setdefault(rid, {}).update(fields)
            self._version += 1

    def hold_running(self, run_id: str, hold: bool = True) -> None:
        """Keep a run ``running`` whatever the clock says (``hold=False`` lets it go).

        Raises:
            KeyError: no such run.
        """
        with self._lock:
            rid = self._run_id(run_id)
            if hold:
                self._held.add(rid)
            else:
                self._held.discard(rid)
            self._version += 1

    def add_run(self, record: Mapping[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped mapping, served as given once created).

        Raises:
            ValueError: a preview field is missing, ``created_at`` is not RFC 3339 with
                an offset, or the id or idempotency key is taken.
        """
        missing = [f for f in PREVIEW_FIELDS if f not in record]
        if missing:
            raise ValueError(f"add_run: the run lacks {', '.join(missing)}")
        created = parse_created_at(record["created_at"])
        run = dict(record)
        with self._lock:
            dataset = self._dataset
            for key in (run["id"], run["idempotency_key"]):
                if key in dataset.lookup:
                    raise ValueError(f"add_run: run id or idempotency key {key!r} is taken")
            at = bisect_right(dataset.created_ms, created)
            while (
                at > 0 and dataset.created_ms[at - 1] == created and dataset.ids[at - 1] > run["id"]
            ):
                at -= 1
            records = list(dataset.records)
            records.insert(at, run)
            times = list(dataset.created_ms)
            times.insert(at, created)
            cache = list(self._preview_cache)
            cache.insert(at, None)
            self._dataset = Dataset.presorted(records, times)
            self._preview_cache = cache
            self._static_ref[run["id"]] = max(self.now_ms(), created)
            insort(self._hook_events, created)  # a live emulator shows it from then on
            self._version += 1

    def remove_run(self, run_id: str) -> None:
        """Remove a run: the list omits it and a get answers 404 ("a run that vanished").

        Raises:
            KeyError: no such run.
        """
        with self._lock:
            rid = self._run_id(run_id)
            dataset = self._dataset
            at = dataset.lookup[rid]
            records = list(dataset.records)
            del records[at]
            times = list(dataset.created_ms)
            del times[at]
            cache = list(self._preview_cache)
            del cache[at]
            self._dataset = Dataset.presorted(records, times)
            self._preview_cache = cache
            for table in (self._overrides, self._added, self._static_ref, self._static_reactions):
                table.pop(rid, None)
            self._held.discard(rid)
            self._version += 1

    def add_reaction(
        self,
        run_id: str,
        sentiment: str,
        feedback: str | None = None,
        user: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add a reaction to a run; returns it as the reactions endpoint will serve it.

        ``user`` is a ``UserRef`` mapping or a known user's id (default: the API key's
        owner, the first user); ``at`` defaults to now (a live reaction dated later counts
        from then on).

        Raises:
            KeyError: no such run, or an unknown user id.
            ValueError: ``sentiment`` is empty, or ``at`` is naive.
        """
        if not isinstance(sentiment, str) or not sentiment:
            raise ValueError("sentiment must be a non-empty string")
        if feedback is not None and not isinstance(feedback, str):
            raise ValueError("feedback must be a string or None")
        with self._lock:
            rid = self._run_id(run_id)
            ref = self._user(user)
            at_ms = to_epoch_ms(at) if at is not None else self.now_ms()
            added = self._added.setdefault(rid, [])
            seed = self.source.seed
            reaction = added_reaction(seed, rid, len(added), at_ms, sentiment, ref, feedback)
            added.append(reaction)
            insort(self._hook_events, at_ms)
            self._version += 1
        return reaction.to_json()

    # -- internals ----------------------------------------------------------------------

    def _run_id(self, run_id: str) -> str:
        i = self._dataset.lookup.get(run_id)
        if i is None:
            raise KeyError(f"no run {run_id!r}")
        return self._dataset.ids[i]

    def _user(self, user: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
        users = self.source.users
        if user is None:
            return users[0]
        if isinstance(user, str):
            for known in users:
                if known["id"] == user:
                    return known
            raise KeyError(f"no user {user!r}")
        return dict(user)

    def _shared_frozen_store(self) -> RunStore:
        source = self.source
        with _SOURCE_LOCK:
            if source.frozen_store is None:
                source.frozen_store = self._snapshot(source.dataset.records, ())
            return source.frozen_store

    def _snapshot(self, records: list[Mapping[str, Any]], changed: Sequence[int]) -> RunStore:
        source = self.source
        return RunStore.snapshot(
            self._dataset,
            records,
            page_size=source.page_size,
            fields=source.fields,
            tokens=source.tokens,
            preview_cache=self._preview_cache,
            changed=changed,
            render=self._render,
        )

    def _build(self, now_ms: int) -> RunStore:
        """The store at ``now_ms`` (called under the lock)."""
        source, dataset = self.source, self._dataset
        lookup = dataset.lookup
        n = bisect_right(dataset.created_ms, now_ms) if source.live else len(dataset)
        candidates: set[int] = set()
        if source.live:
            first = bisect_right(source.late_times, now_ms)
            for rid in source.late_ids[first:]:
                i = lookup.get(rid)
                if i is not None and i < n:
                    candidates.add(i)
        for table in (self._overrides, self._held, self._added):
            for rid in table:
                i = lookup.get(rid)
                if i is not None and i < n:
                    candidates.add(i)
        if not candidates and n == len(dataset) and dataset is source.dataset:
            return (
                self._shared_frozen_store()
                if not source.live
                else self._snapshot(dataset.records, ())
            )
        records = dataset.records[:n]
        changed: list[int] = []
        for i in candidates:
            record = self._record_at(dataset.records[i], now_ms)
            if record is not dataset.records[i]:
                records[i] = record
                changed.append(i)
        return self._snapshot(records, changed)

    def _record_at(self, base: Mapping[str, Any], now_ms: int) -> Mapping[str, Any]:
        """A run's record at ``now_ms`` (``base`` itself when nothing differs)."""
        rid = base["id"]
        source = self.source
        timeline = rid in source.ends and rid not in self._static_ref
        end = source.ends[rid] if timeline else None
        running = rid in self._held or (end is not None and now_ms < end)
        record: Mapping[str, Any] = {**base, **_RUNNING} if running else base
        generated = source.reactions.get(rid, ()) if timeline else ()
        if running or rid in self._added or (generated and generated[-1].at_ms > now_ms):
            visible = self._visible_reactions(base, now_ms)
            sentiment = visible[-1].sentiment if visible else None
            if sentiment != record.get("last_reaction_sentiment"):
                record = {**record, "last_reaction_sentiment": sentiment}
        overrides = self._overrides.get(rid)
        if overrides:
            record = {**record, **overrides}
        return record

    def _visible_reactions(self, record: Mapping[str, Any], now_ms: int) -> list[Reaction]:
        """A run's reactions that count at ``now_ms``, oldest first."""
        rid = record["id"]
        source = self.source
        live = source.live
        if rid in source.ends and rid not in self._static_ref:
            generated: Sequence[Reaction] = source.reactions.get(rid, ())
            if live:
                generated = generated[: bisect_right([r.at_ms for r in generated], now_ms)]
        else:
            generated = self._static(record)
        added = self._added.get(rid, ())
        if live:
            added = [r for r in added if r.at_ms <= now_ms]
        if not added:
            return list(generated)
        return sorted([*generated, *added], key=lambda r: (r.at_ms, r.id))

    def _static(self, record: Mapping[str, Any]) -> tuple[Reaction, ...]:
        """The reactions of a run that does not follow the clock, derived once."""
        rid = record["id"]
        cached = self._static_reactions.get(rid)
        if cached is None:
            base = self._dataset.records[self._dataset.lookup[rid]]
            created = parse_created_at(base["created_at"])
            duration = base.get("duration_ms")
            finished = created + (duration if isinstance(duration, int) else 0)
            latest = max(finished, self._static_ref.get(rid, self.source.nominal_ms))
            cached = generate_reactions(
                self.source.seed, base, finished, self.source.users, latest_ms=latest
            )
            self._static_reactions[rid] = cached
        return cached
