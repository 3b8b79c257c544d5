"""The structured results of the MCP tools: their published output schemas.

Every field a model reads is declared here, so the output schema each tool advertises
is exact (clients validate results against it). Optional fields are left out of a
result when they are null, which keeps results small; the schemas mark them optional.
``summarize_runs`` reuses the core's :class:`~timbal_integrations.summary.RunSummary`,
so its numbers are those of ``timbal-runs summary`` field for field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from timbal_integrations.summary import RunSummary

__all__ = [
    "AppliedFilters",
    "ListRunsResult",
    "OtherBuckets",
    "RunDetailResult",
    "RunRow",
    "RunUser",
    "RunWorkforce",
    "SummarizeRunsResult",
]


class RunUser(BaseModel):
    """Who started the run."""

    id: str
    name: str | None = None
    email: str | None = None


class RunWorkforce(BaseModel):
    """The agent or workflow that ran."""

    id: str
    name: str | None = None


class RunRow(BaseModel):
    """One run, compact: what a model needs to answer questions about it."""

    id: str
    created_at: str = Field(description="ISO 8601 UTC, millisecond precision")
    status: str
    duration_ms: int | None = Field(default=None, description="null while the run is running")
    cost_usd: float
    user: RunUser
    workforce: RunWorkforce
    sentiment: str | None = Field(default=None, description="the last reaction's sentiment")
    group_id: str | None = Field(default=None, description="the conversation (thread) id")
    parent_id: str | None = Field(default=None, description="the previous run of the thread")


class AppliedFilters(BaseModel):
    """The filters as the server applied them; times resolved to ISO 8601 UTC."""

    status: str | None = None
    user_id: str | None = None
    user_email: str | None = Field(default=None, description="lower-cased")
    sentiment: str | None = None
    workforce_id: str | None = None
    group_id: str | None = None
    rev: str | None = None
    since: str | None = Field(default=None, description="resolved, inclusive, ISO 8601 UTC")
    until: str | None = Field(default=None, description="resolved, exclusive, ISO 8601 UTC")
    roots: bool | None = None
    sort_by: str = Field(description="the effective sort field")
    sort_order: str = Field(description="the effective sort direction")


class ListRunsResult(BaseModel):
    """One page of matching runs."""

    runs: list[RunRow]
    returned: int = Field(description="how many runs are in this result")
    next_cursor: str | None = Field(
        default=None,
        description="absent at the end; otherwise pass it back as `cursor` with the same "
        "filters to get the next runs",
    )
    applied_filters: AppliedFilters
    scanned: int | None = Field(
        default=None, description="with user_email: runs examined to find these matches"
    )
    scan_bound_hit: bool | None = Field(
        default=None,
        description="with user_email: true when the scan stopped at its bound before "
        "`limit` matches were found (continue with next_cursor)",
    )
    hint: str | None = Field(default=None, description="how to get more, when there is more")


class RunDetailResult(BaseModel):
    """One run with its detail fields; fields the API adds later are kept as they come."""

    model_config = ConfigDict(extra="allow")

    id: str
    idempotency_key: str | None = None
    created_at: str = Field(description="ISO 8601 UTC, millisecond precision")
    status: str
    duration_ms: int | None = None
    cost_usd: float | None = None
    cost_credits: float | None = None
    user: dict[str, Any] | None = None
    workforce: dict[str, Any] | None = None
    sentiment: str | None = Field(default=None, description="the last reaction's sentiment")
    group_id: str | None = None
    parent_id: str | None = None
    status_detail: Any = None
    trace: Any = None
    truncated: list[str] | None = Field(
        default=None, description="fields shortened to keep the result small"
    )


class OtherBuckets(BaseModel):
    """What a capped breakdown left out: how many buckets, runs and dollars."""

    buckets: int
    count: int
    cost_usd: float


class SummarizeRunsResult(RunSummary):
    """The rollups of ``timbal-runs summary`` over every matching run (up to ``max_runs``).

    Breakdowns with many values keep the largest buckets; ``others`` says what was left
    out of each capped breakdown.
    """

    max_runs: int = Field(description="the scan bound used")
    scanned: int = Field(description="runs read from the API")
    applied_filters: AppliedFilters
    others: dict[str, OtherBuckets] | None = Field(
        default=None, description="per capped breakdown (by_user, ...), what was left out"
    )
    hint: str | None = None
