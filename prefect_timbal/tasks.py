"""Prefect tasks over a Timbal project's runs: list, export to a file, summarise.

::

    from prefect import flow
    from prefect_timbal import TimbalCredentials, list_runs, summarize_runs

    @flow
    def failures() -> None:
        credentials = TimbalCredentials.load("timbal")
        runs = list_runs(credentials, status="error", since="24h")
        summary = summarize_runs(credentials, since="7d")

Filters have the same names as everywhere in timbal-integrations: ``status``,
``user_id``, ``sentiment``, ``group_id``, ``workforce_id``, ``rev``, ``since``, ``until``,
``metadata``, ``roots``, ``sort_by``, ``sort_order``; the core validates them (a bad one
fails the task with one line naming it). The tasks never cache their results: each call
asks the API again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from timbal_integrations import Run, RunQuery
from timbal_integrations.export import ExportResult, infer_format
from timbal_integrations.export import export_runs as _export_runs
from timbal_integrations.summary import RunSummary, summarize

from .credentials import TimbalCredentials

__all__ = ["export_runs", "export_to_file", "list_runs", "summarize_runs"]


@task(name="timbal-list-runs", cache_policy=NO_CACHE)
def list_runs(
    credentials: TimbalCredentials, *, limit: int | None = None, **filters: Any
) -> list[Run]:
    """Every run matching ``filters`` (at most ``limit``), newest first unless sorted."""
    query = RunQuery.from_filters(filters)
    with credentials.get_client() as client:
        runs = list(client.list_runs(query, limit=limit))
    get_run_logger().info("%d Timbal run(s) where %s", len(runs), query.as_dict() or "any")
    return runs


def export_to_file(
    credentials: TimbalCredentials,
    query: RunQuery,
    output_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    parallel: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    manifest: bool = True,
) -> ExportResult:
    """The core's export of ``query`` to the local file ``output_path``, logged.

    The work of the :func:`export_runs` task and of ``export_runs_flow``'s asset.
    """
    path = Path(os.fspath(output_path)).expanduser()
    fmt = infer_format(path, format)
    logger = get_run_logger()
    with credentials.get_client() as client:
        result = _export_runs(
            client,
            query,
            path,
            format=fmt,
            parallel=parallel,
            limit=limit,
            resume=resume,
            manifest=manifest,
        )
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


@task(name="timbal-export-runs", cache_policy=NO_CACHE)
def export_runs(
    credentials: TimbalCredentials,
    output_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    parallel: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    manifest: bool = True,
    **filters: Any,
) -> ExportResult:
    """Write the runs matching ``filters`` to the local file ``output_path``.

    The core's export: JSON Lines, CSV or Parquet (``format``, else from the extension),
    streamed, written under a temporary name and renamed (a re-run replaces the file
    whole), with ``<output_path>.manifest.json`` beside it. ``resume=True`` continues an
    interrupted export. Returns the :class:`~timbal_integrations.export.ExportResult`
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
    )


@task(name="timbal-summarize-runs", cache_policy=NO_CACHE)
def summarize_runs(
    credentials: TimbalCredentials, *, max_runs: int | None = None, **filters: Any
) -> RunSummary:
    """Exact rollups (by status, user, workforce, sentiment; costs; duration percentiles)
    of the runs matching ``filters``, reading at most ``max_runs`` of them."""
    query = RunQuery.from_filters(filters)
    with credentials.get_client() as client:
        summary = summarize(client.list_runs(query), max_runs=max_runs)
    get_run_logger().info(
        "%d Timbal run(s), %d errors, cost_usd %.6f%s",
        summary.total,
        summary.error_count,
        summary.cost_usd_total,
        "" if summary.complete else f" (stopped at max_runs={max_runs})",
    )
    return summary
