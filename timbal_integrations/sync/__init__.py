"""Incremental sync: a local dataset of run history that stays exact over time.

::

    from timbal_integrations import RunQuery, TimbalClient
    from timbal_integrations.sync import sync_runs

    with TimbalClient() as client:
        report = sync_runs(client, RunQuery(), "timbal-runs/", format="parquet")
        print(report.summary_line())

A run is not frozen when it is created: a ``running`` run ends later with its final
status, duration and cost, and ``last_reaction_sentiment`` follows reactions that arrive
days later. An export is a snapshot; a sync keeps a dataset, partitioned by the UTC day
of ``created_at`` (``DIR/runs/dt=YYYY-MM-DD/runs.<ext>``), in which every matching run
appears once, in its latest state as of the sync, except for what a sync cannot see
(below). Each sync:

- lists the window ``[high-water mark - lookback, now)`` again (default lookback: 3
  days), which holds every new run and every run young enough to still change;
- re-checks by id (``get_run``, concurrently) every run that was still ``running`` at
  the last sync and is older than the window, however old;
- rewrites only the day partitions whose bytes changed, and commits every change at once
  (a journal; ``kill -9`` at any point, then a sync, ends in the dataset a clean sync
  gives);
- records its state (``state.json``: filters, format, high-water mark, lookback, the
  runs still open) and a manifest (``manifest.json``: every partition's count, runs per
  status, size and SHA-256, and the last sync's :class:`SyncReport`).

**What a sync cannot see**: a change to a run that had already ended when it was older
than the lookback, such as a reaction arriving a week after a run finished (with the
default lookback), and a run that appears in the API more than the lookback after its
``created_at``. A longer lookback sees more, at the cost of listing more; a
``full_refresh`` sees everything.

**Filters on fields that change** (``status``, ``sentiment``) are checked on each run
(:meth:`RunQuery.matches`), not by the API: the window is listed with the other filters,
and runs still running are tracked whether or not they match yet, so a run that ends
with the wanted status is found however old it is, and a run that no longer matches
leaves the dataset. Such a filter therefore does not reduce what a sync fetches.

The package, one concern a module: ``state`` (the typed, versioned state), ``store``
(a local directory, or any fsspec file system), ``dataset`` (partitions and the
manifest), ``load`` (opening a dataset: its state and manifest read and checked, the
settings settled), ``plan`` (the window and run updates), ``fetch`` (the listing and the
re-checks), ``merge`` (each day's runs merged, and staged when its bytes changed),
``journal`` (committing), ``report`` and ``job`` (:func:`sync_runs`: the steps in order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
    from .job import sync_runs
    from .load import DEFAULT_LOOKBACK
    from .report import CHANGE_KINDS, SyncProgress, SyncReport, SyncRequests
    from .store import DatasetStore, FsspecStore, LocalStore

__all__ = [
    "CHANGE_KINDS",
    "DEFAULT_LOOKBACK",
    "DatasetStore",
    "FsspecStore",
    "LocalStore",
    "SyncProgress",
    "SyncReport",
    "SyncRequests",
    "sync_runs",
]

_HOME: dict[str, str] = {
    "CHANGE_KINDS": "report",
    "DEFAULT_LOOKBACK": "load",
    "DatasetStore": "store",
    "FsspecStore": "store",
    "LocalStore": "store",
    "SyncProgress": "report",
    "SyncReport": "report",
    "SyncRequests": "report",
    "sync_runs": "job",
}

__getattr__, __dir__ = _lazy_names(__name__, _HOME, __all__)
