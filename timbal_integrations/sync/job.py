"""The sync: :func:`sync_runs`, one pass that brings a partitioned dataset up to date.

A pass, under the dataset's lock:

1. **recover**: apply the journal an interrupted sync committed, or discard what one
   that did not commit staged (:mod:`~timbal_integrations.sync.journal`);
2. **load** ``state.json`` and ``manifest.json`` and refuse a sync whose settings differ
   from the dataset's;
3. **re-check** by id every run that was still ``running`` at the last sync and is
   older than this sync's window, however old, concurrently;
4. **list** the window ``[high-water mark - lookback, now)`` by ``created_at``
   ascending, and as each day's runs are complete, **merge** the day: the runs listed
   replace the day's runs inside the window (a run no longer listed is gone), the
   re-checked runs are updated from their detail, and the rest stay as they are; a day
   whose new bytes differ from the manifest's SHA-256 is **staged**, one that is left
   without runs is marked for removal, and every other day is not touched;
5. **commit** the staged partitions, the new manifest and the new state in one journal,
   and apply it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..errors import ExportError, QueryError, ResponseValidationError, SyncStateError
from ..export.results import iso
from ..export.writers import infer_format, pyarrow_modules
from ..limits import Parallel, check_parallel
from ..query import CHANGING_FILTERS, RunQuery, format_span, parse_span
from .dataset import (
    Manifest,
    Partition,
    StoredRun,
    decode_partition,
    encode_partition,
    parse_manifest,
    sorted_runs,
    view,
)
from .fetch import RetryCounter, list_window, recheck
from .journal import commit, crash_point, recover
from .plan import Window, apply_detail, change_kinds, plan_window
from .report import CHANGE_KINDS, IdList, SyncProgress, SyncReport, SyncRequests
from .state import DatasetIdentity, OpenRun, SyncState, parse_state
from .store import MANIFEST, STATE, DatasetStore, LocalStore, partition_name

if TYPE_CHECKING:
    from ..client import TimbalClient

__all__ = ["DEFAULT_LOOKBACK", "sync_runs"]

DEFAULT_LOOKBACK = timedelta(seconds=defaults.SYNC_LOOKBACK_SECONDS)
"""How far back of the high-water mark a sync lists runs again, unless told (3 days)."""

_TIME_FILTERS = ("since", "until", "sort_by", "sort_order")


class _Changes:
    """The report's tallies of what a sync changed."""

    def __init__(self) -> None:
        self.added = IdList()
        self.changed = IdList()
        self.kinds = {kind: IdList() for kind in CHANGE_KINDS}
        self.vanished = IdList()
        self.unmatched = IdList()


class SyncJob:
    """One sync of a dataset; :func:`sync_runs` runs it."""

    def __init__(
        self,
        client: TimbalClient,
        query: RunQuery,
        store: DatasetStore,
        *,
        format: str | None,
        lookback: timedelta | None,
        full_refresh: bool,
        parallel: Parallel,
        now: datetime,
        progress: Callable[[SyncProgress], None] | None,
    ) -> None:
        self.client = client
        self.query = query
        self.store = store
        self.requested_format = format
        self.requested_lookback = lookback
        self.full_refresh = full_refresh
        self.parallel = parallel
        self.now = now
        self.progress = progress
        self.started = time.monotonic()
        self.changing = tuple(name for name in CHANGING_FILTERS if getattr(query, name))
        self.changes = _Changes()
        self.requests = SyncRequests()
        self.fetched = 0
        self.written_bytes = 0
        # Filled by the steps below.
        self.state: SyncState | None = None
        self.manifest = Manifest("jsonl")
        self.format = "jsonl"
        self.lookback = DEFAULT_LOOKBACK
        self.window = Window(None, now)
        self.details: dict[str, dict[str, Any] | None] = {}
        self.rechecked_open: dict[date, list[OpenRun]] = defaultdict(list)
        self.open: list[OpenRun] = []
        self.journal: dict[str, dict[str, Any] | None] = {}
        self.rewritten: list[str] = []
        self.removed = 0
        self.recovered = False
        self.last_commit = time.monotonic()

    # -- reporting

    def report_progress(self, phase: str) -> None:
        """Hand the progress to the ``progress`` callback, if any."""
        if self.progress is not None:
            self.progress(
                SyncProgress(
                    count=self.fetched,
                    pages=self.requests.list_pages,
                    bytes=self.written_bytes,
                    elapsed=time.monotonic() - self.started,
                    phase=phase,
                )
            )

    # -- the pass

    def run(self) -> SyncReport:
        """Sync the dataset; returns what was done."""
        store = self.store
        with store.lock():
            recovered = self.recovered = recover(store, discard=self.full_refresh)
            self._load()
            counter = RetryCounter(self.client.on_retry)
            self.client.on_retry = counter
            before = self.client.requests_made
            try:
                recheck_requests = self._recheck(counter)
                self._walk()
            finally:
                self.client.on_retry = counter.then
            self.requests.retries = counter.count
            self.requests.total = self.client.requests_made - before + recheck_requests
            report = self._report(recovered, self.window.until)
            self._commit(report, self.window.until)
        report.seconds = time.monotonic() - self.started
        return report

    def _commit(self, report: SyncReport, mark: datetime) -> None:
        """Commit the staged partitions, the manifest and the state of a dataset that is
        complete up to ``mark`` (its new high-water mark)."""
        document = self.manifest.document(self._about(report, mark))
        commit(self.store, self.journal, document, self._new_state(mark).to_json())
        self.journal = {}
        self.last_commit = time.monotonic()

    def _checkpoint(self, upto: date) -> None:
        """Commit a first sync's progress now and then: every day before ``upto`` is
        complete, so the dataset is a valid one up to that day, and a first sync that is
        killed later continues from there (listing its lookback again) instead of
        starting over. Every :data:`~timbal_integrations.defaults.SYNC_COMMIT_SECONDS`."""
        if self.state is not None or self.full_refresh or not self.journal:
            return
        if time.monotonic() - self.last_commit < defaults.SYNC_COMMIT_SECONDS:
            return
        mark = datetime(upto.year, upto.month, upto.day, tzinfo=UTC)
        self._commit(self._report(self.recovered, mark), mark)

    def _load(self) -> None:
        """Read the state and the manifest; settle the format, lookback and window."""
        store = self.store
        state_data = store.read(STATE)
        manifest_data = store.read(MANIFEST)
        previous: SyncState | None = None
        if self.full_refresh:
            # Rebuilt from nothing: the old state only says the format and lookback to
            # keep when none is given (a damaged one says nothing).
            try:
                previous = None if state_data is None else parse_state(state_data, "")
            except SyncStateError:
                previous = None
        elif state_data is not None:
            previous = self.state = parse_state(state_data, store.where(STATE))
            if manifest_data is None:
                raise SyncStateError(
                    f"the dataset in {store.location} has a {STATE} but no {MANIFEST}",
                    path=store.where(MANIFEST),
                )
            self.manifest = parse_manifest(manifest_data, store.where(MANIFEST))
        elif manifest_data is not None or store.partition_names():
            raise SyncStateError(
                f"{store.location} holds partitions or a {MANIFEST} but no {STATE}: it was "
                "not made by a sync, or its state was removed",
                path=store.where(STATE),
            )
        if self.requested_format is not None:
            self.format = self.requested_format
        elif previous is not None:
            self.format = previous.identity.format
        if self.format == "parquet":
            pyarrow_modules()
        if self.requested_lookback is not None:
            self.lookback = self.requested_lookback
        elif previous is not None:
            self.lookback = previous.lookback
        config = self.client.config
        self.identity = DatasetIdentity(
            format=self.format,
            filters={k: v for k, v in self.query.as_dict().items() if k not in _TIME_FILTERS},
            base_url=config.base_url,
            org_id=config.org_id,
            project_id=config.project_id,
        )
        state = self.state
        if state is not None:
            state.check(self.identity, self.query.since, self.query.until, store.location)
            if self.manifest.format != self.format:
                raise SyncStateError(
                    f"the manifest {store.where(MANIFEST)} describes {self.manifest.format} "
                    f"partitions, but the state says {self.format}",
                    path=store.where(MANIFEST),
                )
        else:
            self.manifest = Manifest(self.format)
        self.window = plan_window(state, self.query, self.now, self.lookback)

    @property
    def mode(self) -> str:
        """``first``, ``incremental`` or ``full_refresh``."""
        if self.full_refresh:
            return "full_refresh"
        return "incremental" if self.state is not None else "first"

    def _recheck(self, counter: RetryCounter) -> int:
        """Fetch by id every open run the window does not list; returns the requests."""
        state = self.state
        if state is None:
            return 0
        due = [run for run in state.open if not self.window.contains(run.created_at)]
        for run in due:
            self.rechecked_open[run.created_at.date()].append(run)
        if not due:
            return 0
        self.report_progress("rechecking")
        self.details, made = recheck(
            self.client,
            [run.id for run in due],
            on_retry=counter,
            transport=getattr(self.client, "_transport", None),
        )
        self.requests.get_run = len(due)
        self.fetched += len(due)
        return made

    # -- listing and merging, a day at a time

    def _walk(self) -> None:
        """List the window and merge each day as soon as its runs are complete."""
        window = self.window
        days: set[date] = set(self.rechecked_open)
        if self.state is not None:
            days.update(day for day in self.manifest.partitions if window.overlaps(day))
        pending = sorted(days)
        current: date | None = None
        listed: dict[str, StoredRun] = {}
        unmatched: set[str] = set()
        if not window.empty:
            self.report_progress("fetching")
            for page in list_window(self.client, window.listing(self.query), self.parallel):
                self.requests.list_pages += 1
                self.fetched += len(page.runs)
                for run, created in zip(page.runs, page.created, strict=True):
                    day = created.date()
                    if current is not None and day < current:
                        raise ResponseValidationError(
                            "the API listed runs out of created_at order (a run of "
                            f"{day} after runs of {current}); the sync cannot place them"
                        )
                    if day != current:
                        if current is not None:
                            pending = self._merge_until(pending, current, listed, unmatched)
                            listed, unmatched = {}, set()
                            self._checkpoint(day)
                        current = day
                    self._take(StoredRun(created, run), listed, unmatched)
                self.report_progress("fetching")
        if current is not None:
            pending = self._merge_until(pending, current, listed, unmatched)
        for day in pending:
            self._merge(day, {}, set())
        if self.full_refresh:
            produced = {p.name for p in self.manifest.partitions.values()}
            for name in self.store.partition_names():
                if name not in produced:
                    self.journal[name] = None
                    self.removed += 1
                    self.rewritten.append(name)
        self.report_progress("writing")

    def _take(self, run: StoredRun, listed: dict[str, StoredRun], unmatched: set[str]) -> None:
        """A listed run: into its day if it matches the query, else noted (and, while it
        is running, tracked so a later sync sees it finish)."""
        if self.query.matches(run.record, only=self.changing):
            listed[run.id] = run
            return
        unmatched.add(run.id)
        listed.pop(run.id, None)
        self._track(run)

    def _merge_until(
        self, pending: list[date], day: date, listed: dict[str, StoredRun], unmatched: set[str]
    ) -> list[date]:
        """Merge the days of ``pending`` before ``day``, then ``day`` with its listed
        runs; returns the days still pending."""
        for earlier in [d for d in pending if d < day]:
            self._merge(earlier, {}, set())
        self._merge(day, listed, unmatched)
        return [d for d in pending if d > day]

    def _old_runs(self, day: date) -> list[StoredRun]:
        """The runs of a day's partition, checked against the manifest."""
        if self.state is None:
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

    # -- the results

    def _new_state(self, mark: datetime) -> SyncState:
        state = self.state
        seen: dict[str, OpenRun] = {}
        for run in self.open:
            if run.created_at < mark:
                seen[run.id] = run
        return SyncState(
            identity=self.identity,
            since=state.since if state is not None else self.query.since,
            high_water_mark=mark,
            lookback=self.lookback,
            open=sorted(seen.values(), key=lambda run: (run.created_at, run.id)),
            synced_at=self.now.astimezone(UTC),
            syncs=state.syncs + 1 if state is not None else 1,
        )

    def _report(self, recovered: bool, until: datetime) -> SyncReport:
        changes = self.changes
        count, counts = self.manifest.totals()
        rewritten = sorted(self.rewritten)
        written = len(rewritten) - self.removed
        partitions = len(self.manifest.partitions)
        return SyncReport(
            path=self.store.location,
            format=self.format,
            mode=self.mode,
            since=self.window.since,
            until=until,
            lookback=self.lookback,
            runs=count,
            still_open=counts.get("running", 0),
            added=changes.added.count,
            changed=changes.changed.count,
            changed_fields={kind: ids.count for kind, ids in changes.kinds.items()},
            vanished=changes.vanished.count,
            unmatched=changes.unmatched.count,
            rechecked=self.requests.get_run,
            partitions=partitions,
            partitions_rewritten=written,
            partitions_removed=self.removed,
            partitions_unchanged=partitions - written,
            recovered=recovered,
            requests=self.requests,
            added_ids=changes.added.ids,
            changed_ids={kind: ids.ids for kind, ids in changes.kinds.items() if ids.ids},
            vanished_ids=changes.vanished.ids,
            unmatched_ids=changes.unmatched.ids,
            rewritten_days=[n.split("/")[1][3:] for n in rewritten][: defaults.SYNC_REPORT_IDS],
            manifest_path=self.store.where(MANIFEST),
            state_path=self.store.where(STATE),
        )

    def _about(self, report: SyncReport, mark: datetime) -> dict[str, Any]:
        state = self.state
        since = state.since if state is not None else self.query.since
        return {
            "dataset": "timbal-runs",
            "filters": self.identity.filters,
            "since": iso(since),
            "high_water_mark": iso(mark),
            "lookback": format_span(self.lookback),
            "synced_at": iso(self.now),
            "last_sync": report.to_dict(),
        }


def _store_of(out: str | os.PathLike[str] | DatasetStore) -> DatasetStore:
    if isinstance(out, (str, os.PathLike)):
        path = os.fspath(out)
        if os.path.exists(path) and not os.path.isdir(path):
            raise ExportError(f"{path} is a file; expected a directory", path=path)
        return LocalStore(path)
    return out


def sync_runs(
    client: TimbalClient,
    query: RunQuery,
    out: str | os.PathLike[str] | DatasetStore,
    *,
    format: str | None = None,
    lookback: timedelta | str | None = None,
    full_refresh: bool = False,
    parallel: Parallel | None = None,
    now: datetime | None = None,
    progress: Callable[[SyncProgress], None] | None = None,
) -> SyncReport:
    """Bring the dataset in ``out`` (a directory, or a :class:`DatasetStore`) up to date
    with the runs matching ``query``; returns a :class:`SyncReport`.

    ``format`` is ``jsonl`` (the first sync's default), ``csv`` or ``parquet``; later
    syncs keep the dataset's. ``lookback`` (a ``timedelta`` or a span such as ``3d``;
    default 3 days, later syncs keep the dataset's) is how far before the last sync's
    high-water mark runs are listed again. ``full_refresh`` rebuilds the dataset from
    nothing (partitions whose bytes come out the same are not rewritten).
    ``parallel=N`` (or ``"auto"``) lists pieces of the window concurrently. ``now``
    (default: the current time) is where the window ends. ``progress`` is called as the sync goes.

    Raises :class:`QueryError` for a bad argument and
    :class:`~timbal_integrations.errors.SyncMismatchError` (a ``QueryError``) for a
    setting that differs from the dataset's, each naming it;
    :class:`~timbal_integrations.errors.SyncStateError` when the dataset cannot be
    continued as it is; :class:`ExportError` when a file cannot be written; the
    client's errors for API failures. A failed sync changes nothing, or, once it has
    committed, is finished by the next one.
    """
    if not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    for name in ("sort_by", "sort_order"):
        if getattr(query, name) is not None:
            raise QueryError(
                name, "a sync orders each partition by created_at then id; leave it out"
            )
    fmt = None if format is None else infer_format("", format)
    span = None if lookback is None else parse_span(lookback, field="lookback")
    n = check_parallel(parallel)
    if not isinstance(full_refresh, bool):
        raise QueryError("full_refresh", f"{full_refresh!r} is not true or false")
    store = _store_of(out)
    job = SyncJob(
        client,
        query,
        store,
        format=fmt,
        lookback=span,
        full_refresh=full_refresh,
        parallel=n,
        now=(now or datetime.now(UTC)).astimezone(UTC),
        progress=progress,
    )
    try:
        report = job.run()
    except OSError as exc:
        where = exc.filename or store.location
        raise ExportError(f"cannot write {where}: {exc.strerror or exc}", path=str(where)) from exc
    job.report_progress("done")
    return report
