"""``summarize_runs``: exact rollups of up to ``max_runs`` matching runs, optionally a
time series.

The runs stream into the core's :class:`~timbal_integrations.summary.SummaryBuilder`
(a fold with exact running sums) with ``async for`` on the tool's own task. A series
longer than an assistant should read is refused before the scan; long breakdowns keep
their largest buckets (:func:`mcp_server.shaping.cap_breakdowns`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from timbal_integrations import defaults
from timbal_integrations.errors import QueryError
from timbal_integrations.limits import AUTO, Parallel
from timbal_integrations.redact import redact_data
from timbal_integrations.summary import BucketSize, RunSummary, SummaryBuilder, check_buckets

from ..shaping import cap_breakdowns
from .scope import Scope

if TYPE_CHECKING:
    from timbal_integrations.client import AsyncTimbalClient

    from ..settings import ServerSettings

__all__ = ["read_summary", "summary_result"]


async def read_summary(
    client: AsyncTimbalClient, scope: Scope, bucket: BucketSize | None, max_runs: int
) -> tuple[RunSummary, int]:
    """The summary of up to ``max_runs`` runs of ``scope`` (per ``bucket`` when given),
    and how many runs were read."""
    query = scope.query
    builder = SummaryBuilder(bucket=bucket, since=query.since, until=query.until)
    if scope.matches_nothing:
        return builder.result(), 0
    if bucket is not None:
        await _check_series(client, scope, bucket)
    return await _summarize(client, scope, max_runs, builder)


async def _check_series(client: AsyncTimbalClient, scope: Scope, bucket: str) -> None:
    """Refuse, before the scan, a series longer than an assistant should read: the
    window is since (or the earliest matching run) to until (or now)."""
    query = scope.query
    since = query.since
    if since is None:
        first = await client.earliest_run(query)
        if first is None:
            return
        since = first.created_at
    until = query.until or max(scope.now, since + timedelta(milliseconds=1))
    count = check_buckets(bucket, since, until)
    bound = defaults.MCP_MAX_TIME_BUCKETS
    if count > bound:
        coarser = {"hour": 'bucket "day" or "week"', "day": 'bucket "week"'}.get(bucket)
        raise QueryError(
            "bucket",
            f"the window holds {count:,} {bucket} buckets, more than the {bound} a "
            f"summary lists; use {coarser + ' or ' if coarser else ''}a shorter "
            "since/until window",
        )


async def _summarize(
    client: AsyncTimbalClient, scope: Scope, max_runs: int, builder: SummaryBuilder
) -> tuple[RunSummary, int]:
    """Stream up to ``max_runs`` matching runs into ``builder``.

    Runs are read with ``async for`` on the tool's own task: when the call is cancelled,
    the requests in flight are cancelled with it and no other is made. Sorted by
    ``created_at`` (the default), they are fetched with ``parallel="auto"``, as fast as
    an export: as many requests in flight as throughput and the rate limit allow.
    """
    query = scope.query
    email = scope.email
    scanned = 0
    more = False
    parallel: Parallel = AUTO if query.effective_sort_by == "created_at" else 1
    listing = client.list_runs(query, limit=max_runs + 1, parallel=parallel)
    async with contextlib.aclosing(listing) as runs:
        async for run in runs:
            if scanned >= max_runs:
                more = True
                break
            scanned += 1
            if email is None or run.user.email.lower() == email:
                builder.add(run)
    return builder.result(complete=not more), scanned


def summary_result(
    summary: RunSummary,
    scanned: int,
    max_runs: int,
    scope: Scope,
    unknown: Sequence[dict[str, Any]],
    settings: ServerSettings,
) -> dict[str, Any]:
    """The structured result: the capped summary, what was read, the filters as
    applied, and how to get exact totals when it is incomplete; the API key redacted."""
    query = scope.query
    capped, others = cap_breakdowns(summary.to_dict(), settings.summary_top_n)
    result: dict[str, Any] = {
        **capped,
        "max_runs": max_runs,
        "scanned": scanned,
        "applied_filters": scope.applied(),
    }
    if others:
        result["others"] = others
    if not summary.complete:
        result["hint"] = (
            f"Only the first {max_runs:,} runs (in {query.effective_sort_by} "
            f"{query.effective_sort_order} order) were read; more match. Narrow the "
            "filters (e.g. a shorter since/until window) or raise max_runs for exact "
            "totals."
        )
    scope.annotate(result, unknown)
    redacted: dict[str, Any] = redact_data(result, settings.secret())
    return redacted
