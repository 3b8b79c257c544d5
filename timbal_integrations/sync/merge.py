"""Merging a sync's runs into the dataset, a day at a time, and staging what changed.

A :class:`DayMerger` takes the window's listed runs in ``created_at`` order
(:meth:`DayMerger.add`); as soon as a day's runs are complete, it merges the day: the
runs listed replace the day's runs inside the window (a run no longer listed is gone),
the runs re-checked by id are updated from their detail, and the rest stay as they are.
A day whose new bytes differ from the manifest's SHA-256 is **staged** in the store and
entered in the journal; one left without runs is marked for removal; every other day is
not touched. It tallies what changed for the report (:class:`Changes`) and keeps the
runs still ``running`` (:attr:`DayMerger.open`) for the next state. Committing the
journal is :mod:`~timbal_integrations.sync.journal`'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..errors import ResponseValidationError, SyncStateError
from ..query import RunQuery
from .dataset import (
    Manifest,
    Partition,
    StoredRun,
    decode_partition,
    encode_partition,
    sorted_runs,
    view,
)
from .journal import crash_point
from .plan import Window, apply_detail, change_kinds
from .report import CHANGE_KINDS, IdList
from .state import OpenRun
from .store import DatasetStore, partition_name

__all__ = ["Changes", "DayMerger"]


class Changes:
    """The report's tallies of what a sync changed."""

    def __init__(self) -> None:
        self.added = IdList()
        self.changed = IdList()
        self.kinds = {kind: IdList() for kind in CHANGE_KINDS}
        self.vanished = IdList()
        self.unmatched = IdList()


@dataclass(eq=False)
class DayMerger:
    """Merges the days of one sync; see the module's description.

    ``details`` are the runs re-checked by id (None: the API no longer has it), and
    ``rechecked_open`` the open runs they were, by day. ``incremental`` is False for a
    first sync and a full refresh (no partition is read back then).
    """

    query: RunQuery
    changing: tuple[str, ...]
    """The filters on fields that change, checked on each run (:meth:`RunQuery.matches`)."""
    store: DatasetStore
    manifest: Manifest
    format: str
    window: Window
    incremental: bool
    full_refresh: bool
    details: dict[str, dict[str, Any] | None]
    rechecked_open: dict[date, list[OpenRun]]
    changes: Changes = field(init=False, default_factory=Changes)
    open: list[OpenRun] = field(init=False, default_factory=list)
    """Runs still ``running``, in the dataset or not (for the next state)."""
    journal: dict[str, dict[str, Any] | None] = field(init=False, default_factory=dict)
    """What is staged and not committed yet: partition name → its SHA-256 and size, or
    None for a removal."""
    rewritten: list[str] = field(init=False, default_factory=list)
    removed: int = field(init=False, default=0)
    written_bytes: int = field(init=False, default=0)
    _pending: list[date] = field(init=False, default_factory=list)
    _current: date | None = field(init=False, default=None)
    _listed: dict[str, StoredRun] = field(init=False, default_factory=dict)
    _unmatched: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        days: set[date] = set(self.rechecked_open)
        if self.incremental:
            days.update(day for day in self.manifest.partitions if self.window.overlaps(day))
        self._pending = sorted(days)

    def add(self, run: StoredRun) -> bool:
        """Take the next listed run; True when it starts a new day, the days before it
        merged (the dataset is then complete up to that day)."""
        day = run.created.date()
        current = self._current
        if current is not None and day < current:
            raise ResponseValidationError(
                "the API listed runs out of created_at order (a run of "
                f"{day} after runs of {current}); the sync cannot place them"
            )
        completed = False
        if day != current:
            if current is not None:
                self._merge_until(current)
                completed = True
            self._current = day
        self._take(run)
        return completed

    def finish(self) -> None:
        """Merge the last listed day and every day still pending; on a full refresh,
        mark for removal every partition in the store the sync did not produce."""
        if self._current is not None:
            self._merge_until(self._current)
            self._current = None
        for day in self._pending:
            self._merge(day, {}, set())
        self._pending = []
        if self.full_refresh:
            produced = {p.name for p in self.manifest.partitions.values()}
            for name in self.store.partition_names():
                if name not in produced:
                    self.journal[name] = None
                    self.removed += 1
                    self.rewritten.append(name)

    def _take(self, run: StoredRun) -> None:
        """A listed run: into its day if it matches the query, else noted (and, while it
        is running, tracked so a later sync sees it finish)."""
        if self.query.matches(run.record, only=self.changing):
            self._listed[run.id] = run
            return
        self._unmatched.add(run.id)
        self._listed.pop(run.id, None)
        self._track(run)

    def _merge_until(self, day: date) -> None:
        """Merge the pending days before ``day``, then ``day`` with its listed runs."""
        for earlier in [d for d in self._pending if d < day]:
            self._merge(earlier, {}, set())
        self._merge(day, self._listed, self._unmatched)
        self._pending = [d for d in self._pending if d > day]
        self._listed, self._unmatched = {}, set()

    def _old_runs(self, day: date) -> list[StoredRun]:
        """The runs of a day's partition, checked against the manifest."""
        if not self.incremental:
            return []
        partition = self.manifest.partitions.get(day)
        if partition is None:
            return []
        where = self.store.where(partition.name)
        data = self.store.read(partition.name)
        if data is None or hashlib.sha256(data).hexdigest() != partition.sha256:
            what = "is missing" if data is None else "does not match the manifest"
            raise SyncStateError(
                f"the partition {where} {what} (changed outside a sync?)", path=where
            )
        return decode_partition(data, self.format, where)

    def _merge(self, day: date, listed: dict[str, StoredRun], unmatched: set[str]) -> None:
        """Build a day's new content, report what changed, and stage it if it differs.

        The old partition is read only when its content may have changed: a day the
        window lists whole is read only when its new bytes differ from the manifest's (to
        report what changed); a day outside the window only when a run re-checked by id
        changed as the dataset keeps it (or left or joined the dataset).
        """
        window, changes, details = self.window, self.changes, self.details
        rechecked = self.rechecked_open.get(day, [])
        if not window.overlaps(day) and not any(map(self._moved, rechecked)):
            for open_run in rechecked:  # the partition stays as it is; the running stay open
                detail = details.get(open_run.id)
                if detail is not None:
                    record = apply_detail(open_run.record, detail)
                    self._track(StoredRun(open_run.created_at, record))
            return
        encoded: bytes | None = None
        if window.covers(day):
            whole = sorted_runs(listed.values())
            before = self.manifest.partitions.get(day)
            encoded = encode_partition(whole, self.format) if whole else None
            if (
                encoded is not None
                and before is not None
                and not self.full_refresh
                and hashlib.sha256(encoded).hexdigest() == before.sha256
            ):
                for run in whole:  # the same bytes: the same runs, nothing to report
                    self._track(run)
                return
        old = self._old_runs(day)
        new: list[StoredRun] = []
        gone: dict[str, IdList] = {}
        for run in old:
            if window.contains(run.created):
                if run.id not in listed:
                    gone[run.id] = changes.unmatched if run.id in unmatched else changes.vanished
                continue
            if run.id not in details:
                new.append(run)
                continue
            detail = details[run.id]
            if detail is None:
                gone[run.id] = changes.vanished
                continue
            kept = self._track(StoredRun(run.created, apply_detail(run.record, detail)))
            if kept is None:
                gone[run.id] = changes.unmatched
            else:
                new.append(kept)
        stored = {run.id for run in old}
        for open_run in rechecked:
            detail = details.get(open_run.id)
            if open_run.id in stored or open_run.in_dataset or detail is None:
                continue
            joined = StoredRun(open_run.created_at, apply_detail(open_run.record, detail))
            kept = self._track(joined)
            if kept is not None:
                new.append(kept)
        for run in listed.values():
            self._track(run)
        new.extend(listed.values())
        new = sorted_runs(new)
        self._tally(old, new, gone)
        self._write(day, new, encoded)

    def _moved(self, run: OpenRun) -> bool:
        """Whether a re-checked run changes its partition: it vanished from or left the
        dataset, joined it, or changed as the dataset keeps it."""
        detail = self.details.get(run.id)
        if detail is None:
            return run.in_dataset
        updated = StoredRun(run.created_at, apply_detail(run.record, detail))
        matches = self.query.matches(updated.record, only=self.changing)
        if not run.in_dataset:
            return matches
        before = StoredRun(run.created_at, run.record)
        return not matches or view(updated, self.format) != view(before, self.format)

    def _track(self, run: StoredRun) -> StoredRun | None:
        """A run as it is now: returned when it belongs in the dataset (it matches the
        query), else None; kept open (in the dataset or not) while it is running."""
        matches = self.query.matches(run.record, only=self.changing)
        if run.record["status"] == "running":
            self.open.append(OpenRun(run.id, run.created, run.record, in_dataset=matches))
        return run if matches else None

    def _tally(self, old: list[StoredRun], new: list[StoredRun], gone: dict[str, IdList]) -> None:
        changes = self.changes
        before = {run.id: run for run in old}
        for run in new:
            previous = before.get(run.id)
            if previous is None:
                changes.added.add(run.id)
                continue
            kinds = change_kinds(previous, run, self.format)
            if kinds:
                changes.changed.add(run.id)
                for kind in kinds:
                    changes.kinds[kind].add(run.id)
        for run_id, tally in gone.items():
            tally.add(run_id)

    def _write(self, day: date, runs: list[StoredRun], encoded: bytes | None = None) -> None:
        """Stage a day's partition if its bytes changed (or mark it for removal);
        ``encoded`` is the bytes of ``runs``, when already made."""
        name = partition_name(day, self.format)
        before = self.manifest.partitions.get(day)
        if not runs:
            if before is not None or (self.full_refresh and self.store.read(name) is not None):
                self.manifest.partitions.pop(day, None)
                self.journal[name] = None
                self.removed += 1
                self.rewritten.append(name)
            return
        data = encode_partition(runs, self.format) if encoded is None else encoded
        partition = Partition.of(day, name, runs, data)
        self.manifest.partitions[day] = partition
        if partition.sha256 == self._sha256_in_place(name, before):
            return
        self.store.stage(name, data)
        crash_point("staged")
        self.journal[name] = {"sha256": partition.sha256, "bytes": partition.bytes}
        self.rewritten.append(name)
        self.written_bytes += partition.bytes

    def _sha256_in_place(self, name: str, before: Partition | None) -> str | None:
        """The SHA-256 of the partition file in place now (None: there is none): the
        manifest's, which matches the file (checked when the file is read, and kept
        true by the journal); a full refresh trusts no manifest and reads the file."""
        if not self.full_refresh:
            return before.sha256 if before is not None else None
        data = self.store.read(name)
        return None if data is None else hashlib.sha256(data).hexdigest()
