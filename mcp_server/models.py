"""The structured results of the MCP tools: their published output schemas.

Every field a model reads is declared here, so the output schema each tool advertises
is exact (clients validate results against it). Optional fields are left out of a
result when they are null, which keeps results small; the schemas mark them optional.
``summarize_runs`` reuses the core's :class:`~timbal_integrations.summary.RunSummary`,
so its numbers are those of ``timbal-runs summary`` field for field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from timbal_integrations.summary import RunSummary

__all__ = [
    "AppliedFilters",
    "FailureRow",
    "ListRunsResult",
    "OtherBuckets",
    "ReactionRow",
    "RunDetailResult",
    "RunLinks",
    "RunRow",
    "RunUser",
    "RunWorkforce",
    "SummarizeRunsResult",
    "TraceView",
    "UnknownValue",
    "WorkforceResolution",
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
    """One run, compact: what a model needs to answer questions about it. Which fields
    appear is chosen with ``fields`` (``id`` always does)."""

    id: str
    idempotency_key: str | None = None
    created_at: str | None = Field(default=None, description="ISO 8601 UTC, millisecond precision")
    status: str | None = None
    duration_ms: int | None = Field(default=None, description="null while the run is running")
    cost_usd: float | None = None
    cost_credits: float | None = None
    user: RunUser | None = None
    workforce: RunWorkforce | None = None
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
    workforce: str | None = Field(default=None, description="the workforce name as given")
    since: str | None = Field(default=None, description="resolved, inclusive, ISO 8601 UTC")
    until: str | None = Field(default=None, description="resolved, exclusive, ISO 8601 UTC")
    metadata: dict[str, Any] | None = None
    roots: bool | None = None
    sort_by: str = Field(description="the effective sort field")
    sort_order: str = Field(description="the effective sort direction")


class UnknownValue(BaseModel):
    """A filter value that matched no run and is not a known value."""

    filter: str
    value: str
    known: list[str] = Field(description="known values (ids with their names)")
    known_more: int | None = Field(default=None, description="known values not listed")
    did_you_mean: str | None = None
    scanned: int = Field(description="recent runs the known values come from")


class WorkforceResolution(BaseModel):
    """How a workforce name was resolved to its id, among the most recent runs."""

    name: str
    workforce_id: str | None = Field(default=None, description="absent when no match")
    scanned: int = Field(description="recent runs searched")
    known: list[str] | None = Field(default=None, description="known names, when no match")
    did_you_mean: str | None = None


class ListRunsResult(BaseModel):
    """One page of matching runs."""

    runs: list[RunRow]
    returned: int = Field(description="how many runs are in this result")
    fields: list[str] | None = Field(
        default=None, description="the columns returned, when not the default ones"
    )
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
    workforce_resolution: WorkforceResolution | None = None
    unknown_values: list[UnknownValue] | None = Field(
        default=None, description="with no run found: filter values that match nothing known"
    )


class FailureRow(BaseModel):
    """A span that failed (error or timeout)."""

    call_id: str
    path: str
    status: str | None = None
    error: str | None = Field(default=None, description="Type: message")
    input: Any = Field(default=None, description="a preview (detail=summary)")


class TraceView(BaseModel):
    """A run's trace, compact: the span tree depth first, failures, tokens by model."""

    model_config = ConfigDict(extra="allow")

    spans: int = Field(description="spans in the trace")
    shown: int = Field(description="spans in tree")
    elided: int | None = Field(default=None, description="spans left out to fit the budget")
    duration_ms: int | None = None
    form: str = Field(description="list, or dict keyed by call_id, as the API sent it")
    skipped_entries: int | None = None
    usage_by_model: dict[str, dict[str, int]] = Field(
        description='"<provider>/<model>" -> counter -> count, over the whole run'
    )
    failures: list[FailureRow] | None = Field(
        default=None, description="failing spans, the deepest (where it started) first"
    )
    tree: list[dict[str, Any]] = Field(
        description="one entry per span, depth first: path, depth, status, duration_ms, "
        "model and tokens of LLM calls, error where a failure started (detail=full: every "
        "field of the span)"
    )
    root_input: Any = None
    root_output: Any = None


class ReactionRow(BaseModel):
    """A user's reaction to the run."""

    created_at: str
    sentiment: str
    user: dict[str, Any]
    feedback: str | None = None


class RunLinks(BaseModel):
    """The resources holding the run's full JSON."""

    run: str
    trace: str


class RunDetailResult(BaseModel):
    """One run: its fields, its trace as a compact tree, and its reactions; fields the
    API adds later are kept as they come."""

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
    status_detail: Any = Field(default=None, description="{code, reason, message}")
    detail: Literal["summary", "full"]
    trace: TraceView | None = None
    reactions: list[ReactionRow] = Field(description="newest first")
    reactions_more: bool | None = Field(default=None, description="more reactions exist")
    reactions_error: str | None = None
    resources: RunLinks
    truncated: list[str] | None = Field(
        default=None, description="what was shortened to keep the result small"
    )
    hint: str | None = None


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
    workforce_resolution: WorkforceResolution | None = None
    unknown_values: list[UnknownValue] | None = Field(
        default=None, description="with no run found: filter values that match nothing known"
    )
