"""``TimbalSyncRunsOperator``: a dataset of runs, partitioned by day, that stays exact.

A daily export stores yesterday's runs as they were at midnight: some still
``running``, with no duration or cost, and none of the reactions that come the next
morning. This operator runs the core's sync instead
(:func:`timbal_integrations.sync.sync_runs`): every DAG run lists the last ``lookback``
days again (3 by default) and re-checks by id every run that was still running, so the
recent day partitions settle over the next runs, and only the partitions that changed
are rewritten::

    TimbalSyncRunsOperator(
        task_id="sync_runs",
        output_dir="s3://bucket/timbal",  # or a local directory
        format="parquet",
    )

The dataset is ``<output_dir>/runs/dt=YYYY-MM-DD/runs.<format>``, with
``manifest.json`` (counts per partition and in total, the runs still ``running``) and
``state.json`` beside it. Each DAG run syncs up to its ``data_interval_end`` (the wall
clock when the run has no data interval, such as a manual trigger), so re-running or
backfilling a day is harmless: a sync never moves its dataset back. XCom gets the
sync's report (what was added and changed, how many runs are still open, partitions
rewritten, requests made).

``output_dir`` is a local directory or an ``ObjectStoragePath`` URI (S3, GCS, Azure
Blob...). On object storage every file is one object upload, put in place by a
server-side copy, and committed through the same journal as locally; object stores have
no locks, so the task allows one running instance at a time (``max_active_tis_per_dag``
1 by default): do not point two DAGs at one dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from timbal_integrations.errors import SyncStateError
from timbal_integrations.query import RunQuery
from timbal_integrations.sync import FsspecStore, sync_runs

from .._failures import PERMANENT
from ._arguments import given, read_parallel
from ._base import TimbalRunsOperatorBase
from ._interval import interval_end
from ._output import is_local, local_path
from ._progress import SyncProgressLog

if TYPE_CHECKING:
    from datetime import datetime

    from airflow.sdk import Context

    from timbal_integrations.sync import DatasetStore

__all__ = ["TimbalSyncRunsOperator"]

# Retrying the task cannot fix these either: a dataset made with other settings, or one
# that must be rebuilt (the message says how).
_FAILS_FOR_GOOD: tuple[type[BaseException], ...] = (*PERMANENT, SyncStateError)


class TimbalSyncRunsOperator(TimbalRunsOperatorBase):
    """Keep a partitioned dataset of Timbal runs exact: one sync per task run.

    :param output_dir: the dataset (templated): a local directory or an
        ``ObjectStoragePath`` URI such as ``s3://bucket/timbal``. Required.
    :param format: ``jsonl``, ``csv`` or ``parquet`` (templated); default: the
        dataset's, ``jsonl`` for a new one. Changing it needs ``full_refresh``.
    :param lookback: how far before the last sync runs are listed again, a span such as
        ``3d`` or ``36h`` (templated); default: the dataset's, ``3d`` for a new one.
        Runs created within it settle (end, get their cost and reactions) as later DAG
        runs sync again.
    :param full_refresh: rebuild the dataset from nothing (needed to change its filters
        or format); partitions whose bytes come out the same are not rewritten.
    :param parallel: how many requests to keep in flight over pieces of the window that
        balance themselves (1 to 64), or ``"auto"`` (templated; useful for the first sync
        of a long history).
    :param output_conn_id: the Airflow connection of the object store, when the URI does
        not name one.

    Filters (templated, the same names as everywhere; a dataset keeps the filters of its
    first sync): ``status``, ``user_id``, ``sentiment``, ``group_id``, ``workforce_id``,
    ``rev``, ``metadata``, ``roots``; ``since`` is where a new dataset starts (default:
    the first run), ``until`` where it stops. ``status`` and ``sentiment`` are checked on
    each run, so a run that comes to match later is found.

    :param max_retries: retries of a request that failed with 429, 5xx or a network
        error (default: the core's).
    :param timbal_conn_id: the Timbal connection (default ``timbal_default``).
    :param org_id: overrides the connection's ``org_id`` (templated).
    :param project_id: overrides the connection's ``project_id`` (templated).

    Returns (to XCom) the sync's report as a dict (see
    :class:`~timbal_integrations.sync.SyncReport`): ``runs`` in the dataset,
    ``still_open`` (runs still ``running``), ``added``, ``changed`` and
    ``changed_fields``, ``vanished``, ``partitions_rewritten``, ``requests``...
    """

    template_fields: Sequence[str] = (
        "output_dir",
        "format",
        "lookback",
        *TimbalRunsOperatorBase.filter_fields,
        *TimbalRunsOperatorBase.shared_fields,
    )
    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        output_dir: str,
        format: str | None = None,
        lookback: str | None = None,
        full_refresh: bool = False,
        output_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_active_tis_per_dag", 1)  # one sync of the dataset at a time
        super().__init__(**kwargs)
        self.output_dir = output_dir
        self.format = format
        self.lookback = lookback
        self.full_refresh = full_refresh
        self.output_conn_id = output_conn_id

    def build_query(self) -> RunQuery:
        """The validated :class:`RunQuery` of the filters (after templating)."""
        return RunQuery.from_filters(self.filter_values())

    @staticmethod
    def sync_until(context: Context) -> datetime:
        """Where this run's sync ends: its data interval's end, else the wall clock."""
        return interval_end(context)

    def _store(self) -> tuple[str | DatasetStore, str]:
        """Where the dataset is: a local directory, or a store over the object storage."""
        output_dir = given(self.output_dir)
        if output_dir is None:
            raise AirflowFailException(
                "output_dir: empty; expected a local directory or an object storage URI "
                "such as 's3://bucket/timbal'"
            )
        where = str(output_dir).strip()
        if is_local(where):
            return str(local_path(where)), where
        path = ObjectStoragePath(where, conn_id=self.output_conn_id)
        return FsspecStore(path.fs, path.path, location=where), where

    def execute(self, context: Context) -> dict[str, Any]:
        """Sync the dataset; return the sync's report."""
        hook = self.make_hook()
        try:
            with self.failing_for_good(hook, _FAILS_FOR_GOOD):
                query = self.build_query()
                parallel = read_parallel(self.parallel)
                store, where = self._store()
                client = hook.get_conn()
                config = client.config
                self.log.info(
                    "Syncing Timbal runs into %s up to %s from %s (org %s, project %s)",
                    where,
                    self.sync_until(context).isoformat(),
                    config.base_url,
                    config.org_id,
                    config.project_id,
                )
                report = sync_runs(
                    client,
                    query,
                    store,
                    format=given(self.format),
                    lookback=given(self.lookback),
                    full_refresh=bool(self.full_refresh),
                    parallel=parallel,
                    now=self.sync_until(context),
                    progress=SyncProgressLog(self.log),
                )
        finally:
            hook.close()
        self.log.info("Timbal sync of %s: %s", where, report.summary_line())
        if report.still_open:
            self.log.info(
                "%d run(s) in the dataset are still running; later syncs re-check them by id",
                report.still_open,
            )
        return report.to_dict()
