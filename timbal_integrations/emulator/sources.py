"""An emulator's data before any test hook: frozen or live, shared between emulators.

A :class:`Source` is immutable and costly to build for big histories, so generated ones
are cached per process (emulators built with the same arguments share one):

- a **frozen** source is a fixed set of runs, all visible, in the state they were
  generated (or given) in; its "now" is ``end`` (or, for runs given by hand, the newest
  ``created_at``);
- a **live** source is a :class:`~.data.Timeline`: every run's final state, when it ends,
  its reactions, and the sorted times at which anything changes, from which
  :class:`~.state.EmulatorState` derives the state at any moment.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from timbal_integrations.emulator.catalog import user_refs
from timbal_integrations.emulator.data import (
    EXTRA_FIELDS,
    PREVIEW_FIELDS,
    generate_timeline,
    to_epoch_ms,
)
from timbal_integrations.emulator.reactions import Reaction, generate_reactions
from timbal_integrations.emulator.store import Dataset, RunStore
from timbal_integrations.emulator.tokens import TokenCodec

__all__ = ["MAX_RUNS", "Source", "check_runs", "frozen_source", "live_source", "source_for"]

MAX_RUNS: Final = 1_000_000
"""The most runs an emulator generates (history and, when live, future together).

Measured: a frozen emulator holds about 1.1 KB per run once generated and about 1.9 KB
once every page has been served; a live one about 2.3 KB (see the README). A million
runs stays under 2 GB either way.
"""


@dataclass(eq=False)
class Source:
    """The runs an emulator starts with, and what never changes about them.

    Shared between emulators: only ``frozen_store`` is ever set after construction.
    """

    dataset: Dataset
    fields: tuple[str, ...]
    seed: int
    nominal_ms: int  # "now" for a frozen source; where a live clock starts by default
    page_size: int
    tokens: TokenCodec
    preview_cache: list[bytes | None]
    live: bool = False
    ends: Mapping[str, int] = field(default_factory=dict)  # live: when each run ends
    reactions: Mapping[str, tuple[Reaction, ...]] = field(default_factory=dict)
    events: Sequence[int] = ()  # live: every time at which some run changes, sorted
    late_times: Sequence[int] = ()  # live: the last change of each run, sorted...
    late_ids: Sequence[str] = ()  # ...and the runs they belong to
    users: tuple[Mapping[str, Any], ...] = ()
    frozen_store: RunStore | None = None  # frozen: the store served until a hook changes it


def _fields(extra_fields: bool) -> tuple[str, ...]:
    return PREVIEW_FIELDS + EXTRA_FIELDS if extra_fields else PREVIEW_FIELDS


def check_runs(n: int, name: str = "runs") -> None:
    """Refuse a run count the emulator cannot hold, before generating anything.

    Raises:
        ValueError: ``n`` is negative or above :data:`MAX_RUNS`.
    """
    if n < 0:
        raise ValueError(f"{name} must be >= 0")
    if n > MAX_RUNS:
        raise ValueError(f"{name}: at most {MAX_RUNS:,} runs (about 2 GB of memory), got {n:,}")


def frozen_source(
    runs: int | Sequence[Mapping[str, Any]],
    *,
    seed: int,
    end: datetime,
    span: timedelta,
    shape: str,
    page_size: int,
    extra_fields: bool,
) -> Source:
    """A frozen source of ``runs`` generated runs (cached), or of the runs given."""
    if isinstance(runs, int):
        check_runs(runs)
        return _generated_frozen(runs, seed, end, span, shape, page_size, extra_fields)
    dataset = Dataset(runs)
    nominal = dataset.created_ms[-1] + 1 if len(dataset) else to_epoch_ms(end)
    return _frozen(dataset, seed, nominal, page_size, extra_fields)


@lru_cache(maxsize=2)
def _generated_frozen(
    n: int,
    seed: int,
    end: datetime,
    span: timedelta,
    shape: str,
    page_size: int,
    extra_fields: bool,
) -> Source:
    history = generate_timeline(n, seed=seed, end=end, span=span, shape=shape, future=None)
    dataset = Dataset.presorted(history.records, history.created_ms)
    return _frozen(dataset, seed, to_epoch_ms(end), page_size, extra_fields)


def _frozen(
    dataset: Dataset, seed: int, nominal_ms: int, page_size: int, extra_fields: bool
) -> Source:
    fields = _fields(extra_fields)
    return Source(
        dataset=dataset,
        fields=fields,
        seed=seed,
        nominal_ms=nominal_ms,
        page_size=page_size,
        tokens=TokenCodec(f"frozen:{dataset.fingerprint}:{fields!r}"),
        preview_cache=[None] * len(dataset),
        users=tuple(user_refs()),
    )


def live_source(
    runs: int | Sequence[Mapping[str, Any]],
    *,
    seed: int,
    end: datetime,
    span: timedelta,
    future: timedelta,
    shape: str,
    page_size: int,
    extra_fields: bool,
) -> Source:
    """A live source: a generated timeline (cached), or runs given by hand (static)."""
    if isinstance(runs, int):
        check_runs(runs)
        return _generated_live(runs, seed, end, span, future, shape, page_size, extra_fields)
    dataset = Dataset(runs)
    return _live(dataset, {}, {}, seed, to_epoch_ms(end), page_size, extra_fields)


@lru_cache(maxsize=2)
def _generated_live(
    n: int,
    seed: int,
    end: datetime,
    span: timedelta,
    future: timedelta,
    shape: str,
    page_size: int,
    extra_fields: bool,
) -> Source:
    timeline = generate_timeline(n, seed=seed, end=end, span=span, future=future, shape=shape)
    check_runs(len(timeline.records), "runs (with the live future)")
    dataset = Dataset.presorted(timeline.records, timeline.created_ms)
    users = user_refs()
    ends: dict[str, int] = {}
    reactions: dict[str, tuple[Reaction, ...]] = {}
    for record, finished in zip(timeline.records, timeline.ends, strict=True):
        ends[record["id"]] = finished
        if record["last_reaction_sentiment"] is not None:
            reactions[record["id"]] = generate_reactions(seed, record, finished, users)
    return _live(dataset, ends, reactions, seed, to_epoch_ms(end), page_size, extra_fields)


def _live(
    dataset: Dataset,
    ends: dict[str, int],
    reactions: dict[str, tuple[Reaction, ...]],
    seed: int,
    nominal_ms: int,
    page_size: int,
    extra_fields: bool,
) -> Source:
    fields = _fields(extra_fields)
    events = array("q", dataset.created_ms)
    late: list[tuple[int, str]] = []
    for run_id, finished in ends.items():
        events.append(finished)
        last = finished
        for reaction in reactions.get(run_id, ()):
            events.append(reaction.at_ms)
            last = max(last, reaction.at_ms)
        late.append((last, run_id))
    late.sort()
    return Source(
        dataset=dataset,
        fields=fields,
        seed=seed,
        nominal_ms=nominal_ms,
        page_size=page_size,
        tokens=TokenCodec(f"live:{dataset.fingerprint}:{fields!r}"),
        preview_cache=[None] * len(dataset),
        live=True,
        ends=ends,
        reactions=reactions,
        events=array("q", sorted(events)),
        late_times=array("q", [t for t, _ in late]),
        late_ids=[run_id for _, run_id in late],
        users=tuple(user_refs()),
    )


def source_for(
    runs: int | Sequence[Mapping[str, Any]],
    *,
    live: bool,
    seed: int,
    end: datetime,
    span: timedelta,
    future: timedelta,
    shape: str,
    page_size: int,
    extra_fields: bool,
) -> Source:
    """The source an emulator with these arguments starts from.

    Raises:
        ValueError: an argument is out of range.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    if live:
        return live_source(
            runs,
            seed=seed,
            end=end,
            span=span,
            future=future,
            shape=shape,
            page_size=page_size,
            extra_fields=extra_fields,
        )
    return frozen_source(
        runs,
        seed=seed,
        end=end,
        span=span,
        shape=shape,
        page_size=page_size,
        extra_fields=extra_fields,
    )
