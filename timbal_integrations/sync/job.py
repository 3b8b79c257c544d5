"""The sync: :func:`sync_runs`, one pass that brings a partitioned dataset up to date.

A pass, under the dataset's lock:

1. **recover**: apply the journal an interrupted sync committed, or discard what one
   that did not commit staged (:mod:`~timbal_integrations.sync.journal`);
2. **load** ``state.json`` and ``manifest.json`` and refuse a sync whose settings differ
   from the dataset's (:mod:`~timbal_integrations.sync.load`);
3. **re-check** by id every run that was still ``running`` at the last sync and is
   older than this sync's window, however old, concurrently
   (:mod:`~timbal_integrations.sync.fetch`);
4. **list** the window ``[high-water mark - lookback, now)`` by ``created_at``
   ascending, and as each day's runs are complete, **merge** the day and stage it if
   its bytes changed (:mod:`~timbal_integrations.sync.merge`);
5. **commit** the staged partitions, the new manifest and the new state in one journal,
   and apply it.

This module runs those steps in order, counts requests and reports progress, commits
(now and then during a long first sync, so a killed one continues), and builds the
:class:`~timbal_integrations.sync.report.SyncReport` and the next state.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..errors import ExportError, QueryError
from ..export.results import iso
from ..export.writers import infer_format
from ..limits import Parallel, check_parallel
from ..query import CHANGING_FILTERS, RunQuery, format_span, parse_span
from .dataset import StoredRun
from .fetch import RetryCounter, list_window, recheck
from .journal import commit, recover
from .load import Opened, open_dataset
from .merge import DayMerger
from .report import SyncProgress, SyncReport, SyncRequests
from .state import OpenRun, SyncState
from .store import MANIFEST, STATE, DatasetStore, LocalStore

if TYPE_CHECKING:
    from ..client import TimbalClient

__all__ = ["sync_runs"]


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
        self.requests = SyncRequests()
        self.fetched = 0
        # Filled by the steps below.
        self.opened: Opened | None = None
        self.details: dict[str, dict[str, Any] | None] = {}
        self.rechecked_open: dict[date, list[OpenRun]] = defaultdict(list)
        self.merger: DayMerger | None = None
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
                    bytes=0 if self.merger is None else self.merger.written_bytes,
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
            opened = self.opened = open_dataset(
                store,
                self.query,
                self.client.config,
                format=self.requested_format,
                lookback=self.requested_lookback,
                full_refresh=self.full_refresh,
                now=self.now,
            )
            counter = RetryCounter(self.client.on_retry)
            self.client.on_retry = counter
            before = self.client.requests_made
            try:
                recheck_requests = self._recheck(opened, counter)
                merger = self.merger = DayMerger(
                    query=self.query,
                    changing=self.changing,
                    store=store,
                    manifest=opened.manifest,
                    format=opened.format,
                    window=opened.window,
                    incremental=opened.state is not None,
                    full_refresh=self.full_refresh,
                    details=self.details,
                    rechecked_open=self.rechecked_open,
                )
                self._walk(opened, merger)
            finally:
                self.client.on_retry = counter.then
            self.requests.retries = counter.count
            self.requests.total = self.client.requests_made - before + recheck_requests
            report = self._report(opened, merger, recovered, opened.window.until)
            self._commit(opened, merger, report, opened.window.until)
        report.seconds = time.monotonic() - self.started
        return report

    def _commit(
        self, opened: Opened, merger: DayMerger, report: SyncReport, mark: datetime
    ) -> None:
        """Commit the staged partitions, the manifest and the state of a dataset that is
        complete up to ``mark`` (its new high-water mark)."""
        document = opened.manifest.document(self._about(opened, report, mark))
        state = self._new_state(opened, merger, mark)
        commit(self.store, merger.journal, document, state.to_json())
        merger.journal = {}
        self.last_commit = time.monotonic()

    def _checkpoint(self, opened: Opened, merger: DayMerger, upto: date) -> None:
        """Commit a first sync's progress now and then: every day before ``upto`` is
        complete, so the dataset is a valid one up to that day, and a first sync that is
        killed later continues from there (listing its lookback again) instead of
        starting over. Every :data:`~timbal_integrations.defaults.SYNC_COMMIT_SECONDS`."""
        if opened.state is not None or self.full_refresh or not merger.journal:
            return
        if time.monotonic() - self.last_commit < defaults.SYNC_COMMIT_SECONDS:
            return
        mark = datetime(upto.year, upto.month, upto.day, tzinfo=UTC)
        self._commit(opened, merger, self._report(opened, merger, self.recovered, mark), mark)

    @property
    def mode(self) -> str:
        """``first``, ``incremental`` or ``full_refresh``."""
        if self.full_refresh:
            return "full_refresh"
        opened = self.opened
        return "incremental" if opened is not None and opened.state is not None else "first"

    def _recheck(self, opened: Opened, counter: RetryCounter) -> int:
        """Fetch by id every open run the window does not list; returns the requests."""
        state = opened.state
        if state is None:
            return 0
        due = [run for run in state.open if not opened.window.contains(run.created_at)]
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

    def _walk(self, opened: Opened, merger: DayMerger) -> None:
        """List the window and merge each day as soon as its runs are complete."""
        window = opened.window
        if not window.empty:
            self.report_progress("fetching")
            for page in list_window(self.client, window.listing(self.query), self.parallel):
                self.requests.list_pages += 1
                self.fetched += len(page.runs)
                for run, created in zip(page.runs, page.created, strict=True):
                    if merger.add(StoredRun(created, run)):
                        self._checkpoint(opened, merger, created.date())
                self.report_progress("fetching")
        merger.finish()
        self.report_progress("writing")

    # -- the results

    def _new_state(self, opened: Opened, merger: DayMerger, mark: datetime) -> SyncState:
        state = opened.state
        seen: dict[str, OpenRun] = {}
        for run in merger.open:
            if run.created_at < mark:
                seen[run.id] = run
        return SyncState(
            identity=opened.identity,
            since=state.since if state is not None else self.query.since,
            high_water_mark=mark,
            lookback=opened.lookback,
            open=sorted(seen.values(), key=lambda run: (run.created_at, run.id)),
            synced_at=self.now.astimezone(UTC),
            syncs=state.syncs + 1 if state is not None else 1,
        )

    def _report(
        self, opened: Opened, merger: DayMerger, recovered: bool, until: datetime
    ) -> SyncReport:
        changes = merger.changes
        count, counts = opened.manifest.totals()
        rewritten = sorted(merger.rewritten)
        written = len(rewritten) - merger.removed
        partitions = len(opened.manifest.partitions)
        return SyncReport(
            path=self.store.location,
            format=opened.format,
            mode=self.mode,
            since=opened.window.since,
            until=until,
            lookback=opened.lookback,
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
            partitions_removed=merger.removed,
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

    def _about(self, opened: Opened, report: SyncReport, mark: datetime) -> dict[str, Any]:
        state = opened.state
        since = state.since if state is not None else self.query.since
        return {
            "dataset": "timbal-runs",
            "filters": opened.identity.filters,
            "since": iso(since),
            "high_water_mark": iso(mark),
            "lookback": format_span(opened.lookback),
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
