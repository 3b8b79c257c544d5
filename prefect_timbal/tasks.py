"""Prefect tasks over a Timbal project's runs: list, export to a file, summarise.

::

    from prefect import flow
    from prefect_timbal import TimbalCredentials, list_runs, summarize_runs

    @flow
    def failures() -> None:
        credentials = TimbalCredentials.load("timbal")
        runs = list_runs(credentials, status="error", since="24h")
        summary = summarize_runs(credentials, since="7d")
        daily = summarize_runs(credentials, since="7d", bucket="day")  # daily.series

Filters have the same names as everywhere in timbal-integrations: ``status``,
``user_id``, ``sentiment``, ``group_id``, ``workforce_id``, ``rev``, ``since``, ``until``,
``metadata``, ``roots``, ``sort_by``, ``sort_order``; the core validates them (a bad one
fails the task with one line naming it). The tasks never cache their results: each call
asks the API again.

Errors are the core's, worded for a Prefect log in the block's terms (``... check
TimbalCredentials.api_key``). Given retries (``list_runs.with_options(retries=3)``), a
task retries only errors that a retry may fix: a bad filter, bad credentials or the
API's refusal of them (400, 401, 403, 404) fail it at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from timbal_integrations import Run, RunQuery, TimbalError
from timbal_integrations.errors import is_permanent
from timbal_integrations.export import ExportResult, infer_format
from timbal_integrations.export import export_runs as _export_runs
from timbal_integrations.summary import BucketSize, RunSummary, summarize

from .credentials import TimbalCredentials

__all__ = ["export_runs", "export_to_file", "list_runs", "retry_unless_permanent", "summarize_runs"]


def retry_unless_permanent(task: Any, task_run: Any, state: Any) -> bool:
    """The tasks' ``retry_condition_fn``: retry unless the error is one that a retry
    cannot fix (the core's :func:`~timbal_integrations.errors.is_permanent`)."""
    return not is_permanent(state.data)


@contextlib.contextmanager
def _block_terms(credentials: TimbalCredentials) -> Iterator[None]:
    """The core's errors raised inside, reworded in the block's terms (class and data
    kept)."""
    try:
        yield
    except TimbalError as error:
        raise credentials.restate(error) from None


@task(name="timbal-list-runs", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_permanent)
def list_runs(
    credentials: TimbalCredentials, *, limit: int | None = None, **filters: Any
) -> list[Run]:
    """Every run matching ``filters`` (at most ``limit``), newest first unless sorted."""
    query = RunQuery.from_filters(filters)
    with _block_terms(credentials), credentials.get_client() as client:
        runs = list(client.list_runs(query, limit=limit))
    get_run_logger().info("%d Timbal run(s) where %s", len(runs), query.as_dict() or "any")
    return runs


def export_to_file(
    credentials: TimbalCredentials,
    query: RunQuery,
    output_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    **options: Any,
) -> ExportResult:
    """The core's export of ``query`` to the local file ``output_path``, logged.

    The work of the :func:`export_runs` task and of ``export_runs_flow``'s asset.
    ``options`` are :func:`timbal_integrations.export.export_runs`'s (``parallel``,
    ``limit``, ``resume``, ``manifest``, ``csv_safe``), checked there.
    """
    path = Path(os.fspath(output_path)).expanduser()
    fmt = infer_format(path, format)
    logger = get_run_logger()
    with _block_terms(credentials), credentials.get_client() as client:
        result = _export_runs(client, query, path, format=fmt, **options)
    logger.info(
        "%d Timbal run(s) (%d errors, %d still running, cost_usd %.6f) -> %s (%s bytes, sha256 %s)",
        result.count,
        result.error_count,
        result.running_count,
        result.cost_usd,
        result.path,
        f"{result.bytes:,}",
        result.sha256,
    )
    return result


@task(name="timbal-export-runs", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_permanent)
def export_runs(
    credentials: TimbalCredentials,
    output_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    parallel: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    manifest: bool = True,
    csv_safe: bool = False,
    **filters: Any,
) -> ExportResult:
    """Write the runs matching ``filters`` to the local file ``output_path``.

    The core's export: JSON Lines, CSV or Parquet (``format``, else from the extension),
    streamed, written under a temporary name and renamed (a re-run replaces the file
    whole), with ``<output_path>.manifest.json`` beside it. ``resume=True`` continues an
    interrupted export. ``csv_safe=True`` (CSV only) writes text cells that start with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return with a ``'`` before them, so a
    spreadsheet cannot read them as formulas (it changes those cells; the manifest
    records ``"csv_safe": true``). Returns the
    :class:`~timbal_integrations.export.ExportResult`
    (``count``, ``sha256``, ``error_count``, ``running_count``, ``cost_usd``, ...).
    """
    return export_to_file(
        credentials,
        RunQuery.from_filters(filters),
        output_path,
        format=format,
        parallel=parallel,
        limit=limit,
        resume=resume,
        manifest=manifest,
        csv_safe=csv_safe,
    )


@task(
    name="timbal-summarize-runs", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_permanent
)
def summarize_runs(
    credentials: TimbalCredentials,
    *,
    max_runs: int | None = None,
    bucket: BucketSize | None = None,
    **filters: Any,
) -> RunSummary:
    """Exact rollups (by status, user, workforce, sentiment; costs; duration percentiles)
    of the runs matching ``filters``, reading at most ``max_runs`` of them.

    With ``bucket`` (``"hour"``, ``"day"`` or ``"week"``; UTC, weeks start on Monday),
    ``series`` holds the same numbers per bucket of ``[since, until)`` (an open end: the
    first or last matching run's bucket), empty buckets included; a series longer than
    the core allows fails the task before any request, naming ``bucket``."""
    query = RunQuery.from_filters(filters)
    with _block_terms(credentials), credentials.get_client() as client:
        runs = client.list_runs(query)
        summary = summarize(
            runs, max_runs=max_runs, bucket=bucket, since=query.since, until=query.until
        )
    get_run_logger().info(
        "%d Timbal run(s), %d errors, cost_usd %.6f%s",
        summary.total,
        summary.error_count,
        summary.cost_usd_total,
        "" if summary.complete else f" (stopped at max_runs={max_runs})",
    )
    return summary
