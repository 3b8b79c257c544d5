"""The MCP tools' arguments: their types (and so the published input schemas), their
descriptions, and what each expects (for error messages), plus the tools' descriptions.

Every argument is a type alias (``SinceArg``, ``LimitArg``...) carrying its description
and bounds, so the schema a model reads and the checks the server makes come from one
declaration. Defaults and bounds are :mod:`timbal_integrations.defaults`'. The filters
``list_runs`` and ``summarize_runs`` share are declared once, as :class:`RunFilters`;
:func:`takes_filters` publishes them as each tool's leading arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypedDict, TypeVar, get_type_hints

from mcp.types import CallToolResult
from pydantic import BeforeValidator, Field

from timbal_integrations import defaults
from timbal_integrations.models import KNOWN_STATUSES
from timbal_integrations.query import SORT_FIELDS

from .models import ListRunsResult, RunDetailResult, SummarizeRunsResult
from .shaping import DEFAULT_FIELDS, RUN_FIELDS, RunField, compact_json

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_EMAIL_SCAN",
    "DEFAULT_MAX_RUNS",
    "DEFAULT_SUMMARY_TOP_N",
    "DESCRIPTIONS",
    "EXPECTED",
    "GET_RUN_DESCRIPTION",
    "LIST_RUNS_DESCRIPTION",
    "MAX_LIMIT",
    "MAX_MAX_RUNS",
    "SUMMARIZE_RUNS_DESCRIPTION",
    "BucketArg",
    "CursorArg",
    "DetailArg",
    "FieldsArg",
    "GetRunOutput",
    "GroupIdArg",
    "LimitArg",
    "ListRunsOutput",
    "MaxRunsArg",
    "MetadataArg",
    "RevArg",
    "RootsArg",
    "RunFilters",
    "RunIdArg",
    "SentimentArg",
    "SinceArg",
    "SortByArg",
    "SortOrderArg",
    "StatusArg",
    "SummarizeRunsOutput",
    "UntilArg",
    "UserEmailArg",
    "UserIdArg",
    "WorkforceArg",
    "WorkforceIdArg",
    "expected",
    "shown",
    "takes_filters",
]

DEFAULT_LIMIT: Final = defaults.MCP_DEFAULT_LIMIT
MAX_LIMIT: Final = defaults.MCP_MAX_LIMIT
DEFAULT_MAX_RUNS: Final = defaults.MCP_DEFAULT_MAX_RUNS
MAX_MAX_RUNS: Final = defaults.MCP_MAX_MAX_RUNS
DEFAULT_MAX_EMAIL_SCAN: Final = defaults.MCP_MAX_EMAIL_SCAN
DEFAULT_SUMMARY_TOP_N: Final = defaults.MCP_SUMMARY_TOP_N


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a boolean is not allowed here")
    return value


_NotBool = BeforeValidator(_no_bool)

_TIME_FORMS = (
    'ISO 8601 such as "2026-01-31T09:00:00+01:00" or "2026-01-31" (no offset means UTC), '
    "epoch milliseconds such as 1767225600000, or a span back from now: "
    '"90m", "24h", "7d", "2w"'
)

DESCRIPTIONS: Final[dict[str, str]] = {
    "status": (
        "Only runs with this status. Known values: "
        + ", ".join(KNOWN_STATUSES)
        + ' (other values are passed to the API as given). Example: "error".'
    ),
    "user_id": 'Only runs started by this user id (ids appear in results), e.g. "usr_ada".',
    "user_email": (
        "Only runs started by the user with this email, matched case-insensitively, e.g. "
        '"ada@example.com". The API filters by id only, so the server scans runs page by '
        "page to match it (a bounded number per call; the result reports how many were "
        "scanned). Prefer user_id when you know it."
    ),
    "sentiment": (
        'Only runs whose last reaction has this sentiment, e.g. "negative" or "positive".'
    ),
    "workforce_id": 'Only runs of this agent or workflow (workforce id), e.g. "wf_support".',
    "workforce": (
        'Only runs of the agent or workflow with this name, e.g. "support-agent", matched '
        "exactly but case-insensitively. The API filters by id only, so the server finds "
        f"the id among the workforces of the {defaults.MCP_RECENT_SCAN_RUNS:,} most recent "
        "runs (the result reports it); a name two workforces share is refused, naming "
        "both. Prefer workforce_id when you know it."
    ),
    "metadata": (
        'Only runs whose metadata contains this JSON object, e.g. {"env": "prod"} '
        "(every key must match)."
    ),
    "group_id": (
        "Only runs of this conversation thread. A thread's first run has group_id equal "
        "to its own id."
    ),
    "rev": (
        'Only runs executed against this git branch, e.g. "main". Runs with no recorded '
        "branch are always included."
    ),
    "since": f"Start of the window on created_at, inclusive: {_TIME_FORMS}.",
    "until": 'End of the window on created_at, exclusive; same forms as since, e.g. "2026-02-01".',
    "roots": (
        "true: only runs that start a conversation (no parent). false or left out: all runs."
    ),
    "sort_by": "Sort field: created_at (the default), id, duration_ms, cost_usd or cost_credits.",
    "sort_order": "desc (the default: newest or largest first) or asc.",
    "limit": f"How many runs to return at most: 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
    "cursor": (
        "The next_cursor of a previous list_runs result, to continue where it stopped. "
        "Pass the same filters as that call. Leave out to start from the first run."
    ),
    "max_runs": (
        f"How many runs to read at most (default {DEFAULT_MAX_RUNS:,}, up to "
        f"{MAX_MAX_RUNS:,}). When more match, the summary covers the first max_runs runs "
        "in the sort order and complete is false."
    ),
    "run_id": "The run's id (as in list_runs results) or its idempotency key.",
    "fields": (
        "The columns of each run to return (id is always included): "
        + ", ".join(RUN_FIELDS)
        + ". Default: "
        + ", ".join(DEFAULT_FIELDS)
        + '. Fewer columns, smaller results: e.g. ["id", "status", "cost_usd"].'
    ),
    "detail": (
        '"summary" (the default): the run, where it failed, tokens by model, the span '
        "tree with durations and statuses, the root's input and output as previews, and "
        'the reactions. "full": every span with its input, output, metadata and error '
        "traceback (long values cut). Both are bounded in size and say what was cut."
    ),
    "bucket": (
        'Add a time series: the same numbers per "hour", "day" or "week" (UTC; weeks start '
        "on Monday), every bucket of the since/until window listed, empty ones as zeros. "
        f"At most {defaults.MCP_MAX_TIME_BUCKETS} buckets: use a coarser bucket or a "
        "shorter window beyond that."
    ),
}

EXPECTED: Final[dict[str, str]] = {
    "status": "a status string such as " + ", ".join(KNOWN_STATUSES),
    "user_id": "a user id string",
    "user_email": "an email address such as ada@example.com",
    "sentiment": "a sentiment string such as positive or negative",
    "workforce_id": "a workforce id string",
    "group_id": "a group (thread) id string",
    "rev": "a git branch name such as main",
    "since": _TIME_FORMS,
    "until": _TIME_FORMS,
    "roots": "true or false",
    "sort_by": "one of " + ", ".join(SORT_FIELDS),
    "sort_order": "asc or desc",
    "limit": f"an integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "cursor": "the next_cursor string of a previous list_runs result",
    "max_runs": f"an integer from 1 to {MAX_MAX_RUNS}",
    "run_id": "a run id or idempotency key string",
    "workforce": "a workforce name such as support-agent",
    "metadata": 'a JSON object such as {"env": "prod"}',
    "fields": "a list of column names from " + ", ".join(RUN_FIELDS),
    "detail": "summary or full",
    "bucket": "hour, day or week",
}


def _text(name: str) -> Any:
    return Field(description=DESCRIPTIONS[name])


StatusArg = Annotated[str | None, _text("status"), Field(examples=["error"])]
UserIdArg = Annotated[str | None, _text("user_id")]
UserEmailArg = Annotated[str | None, _text("user_email")]
SentimentArg = Annotated[str | None, _text("sentiment")]
WorkforceIdArg = Annotated[str | None, _text("workforce_id")]
WorkforceArg = Annotated[str | None, _text("workforce")]
MetadataArg = Annotated[dict[str, Any] | str | None, _text("metadata")]
FieldsArg = Annotated[list[RunField] | None, Field(min_length=1), _text("fields")]
DetailArg = Annotated[Literal["summary", "full"], _text("detail")]
BucketArg = Annotated[Literal["hour", "day", "week"] | None, _text("bucket")]
GroupIdArg = Annotated[str | None, _text("group_id")]
RevArg = Annotated[str | None, _text("rev")]
TimeArg = Annotated[str | int | None, _NotBool]
SinceArg = Annotated[TimeArg, _text("since"), Field(examples=["24h", "2026-01-31T00:00:00Z"])]
UntilArg = Annotated[TimeArg, _text("until")]
RootsArg = Annotated[bool | None, _text("roots")]
SortBy = Literal["id", "created_at", "duration_ms", "cost_usd", "cost_credits"]
SortByArg = Annotated[SortBy | None, _text("sort_by")]
SortOrderArg = Annotated[Literal["asc", "desc"] | None, _text("sort_order")]
LimitArg = Annotated[int, Field(ge=1, le=MAX_LIMIT), _NotBool, _text("limit")]
CursorArg = Annotated[str | None, _text("cursor")]
MaxRunsArg = Annotated[int, Field(ge=1, le=MAX_MAX_RUNS), _NotBool, _text("max_runs")]
RunIdArg = Annotated[str, Field(min_length=1, max_length=512), _text("run_id")]


class RunFilters(TypedDict, total=False):
    """The filters ``list_runs`` and ``summarize_runs`` share, in the order their schemas
    list them (each optional, ``None`` when left out)."""

    status: StatusArg
    user_id: UserIdArg
    user_email: UserEmailArg
    sentiment: SentimentArg
    workforce_id: WorkforceIdArg
    workforce: WorkforceArg
    group_id: GroupIdArg
    rev: RevArg
    since: SinceArg
    until: UntilArg
    metadata: MetadataArg
    roots: RootsArg
    sort_by: SortByArg
    sort_order: SortOrderArg


_Tool = TypeVar("_Tool", bound=Callable[..., Any])


def takes_filters(tool: _Tool) -> _Tool:
    """Publish :class:`RunFilters` as ``tool``'s leading arguments.

    ``tool`` is a method ``(self, *, <its own arguments>, **filters: Unpack[RunFilters])``;
    its signature, as the SDK reads it (``inspect.signature``) to build the input
    schema and call it by keyword, becomes ``(self, <each filter> = None, <its own
    arguments>)``, so every filter arrives in ``filters``.
    """
    own = inspect.signature(tool, eval_str=True)
    params = list(own.parameters.values())
    keyword = inspect.Parameter.KEYWORD_ONLY
    filters = [
        inspect.Parameter(name, keyword, default=None, annotation=hint)
        for name, hint in get_type_hints(RunFilters, include_extras=True).items()
    ]
    rest = [p for p in params[1:] if p.kind is not inspect.Parameter.VAR_KEYWORD]
    tool.__signature__ = own.replace(parameters=[params[0], *filters, *rest])  # type: ignore[attr-defined]
    return tool


ListRunsOutput = Annotated[CallToolResult, ListRunsResult]
GetRunOutput = Annotated[CallToolResult, RunDetailResult]
SummarizeRunsOutput = Annotated[CallToolResult, SummarizeRunsResult]

LIST_RUNS_DESCRIPTION = f"""\
List runs (executions of Timbal agents and workflows) matching filters, newest first by \
default. Returns compact rows (by default id, created_at, status, duration_ms, cost_usd, \
user, workforce, sentiment, group_id, parent_id; choose others with fields), the \
filters as applied (relative times resolved to UTC), and next_cursor when more runs may \
match: call list_runs again with the same filters and cursor=next_cursor to continue. \
Every filter is optional; filters combine with AND. A filter value that matches nothing \
known is reported with the known values. At most {MAX_LIMIT} runs per call. For \
counts, rates and costs over many runs use summarize_runs; for one run's trace, get_run.
Examples: failed runs in the last 24 hours: {{"status": "error", "since": "24h"}}. \
One user's most expensive runs this week: {{"user_email": "ada@example.com", "since": \
"7d", "sort_by": "cost_usd", "fields": ["id", "created_at", "cost_usd", "workforce"]}}. \
One agent's production runs: {{"workforce": "support-agent", "metadata": \
{{"env": "prod"}}}}."""

GET_RUN_DESCRIPTION = f"""\
Get one run by its id or idempotency key: status, timing, cost, user, workforce, \
sentiment, thread (group_id, parent_id), status_detail (why it failed), where it failed \
(the deepest failing span first, with its error), tokens by model, its trace as a span \
tree (durations, statuses, token usage, errors), and its reactions with their feedback. \
Bounded in size (detail="summary": about {defaults.MCP_GET_RUN_SUMMARY_CHARS // 4:,} \
tokens at most); what was cut is named, and the result links the resources \
timbal://runs/{{run_id}} and timbal://runs/{{run_id}}/trace (the full JSON). \
Example: {{"run_id": "01KDS4AE2TYV0G4QK2F6M5N8RW"}}; every span's input and output: \
{{"run_id": "...", "detail": "full"}}."""

SUMMARIZE_RUNS_DESCRIPTION = f"""\
Exact rollups over every run matching the filters (the same numbers as the \
`timbal-runs summary` command): total, counts and cost by status, user, workforce and \
sentiment, error count and rate, total cost in USD and credits, duration p50/p95/max, \
and the first and last run times; with bucket, the same per hour, day or week (a time \
series, UTC). Filters are those of list_runs. Reads at most max_runs runs (default \
{DEFAULT_MAX_RUNS:,}); complete is false when more matched. Long breakdowns keep their \
largest buckets and report the rest under others.
Examples: error rate this week, day by day: {{"since": "7d", "bucket": "day"}}. Cost of \
one agent in January: {{"workforce_id": "wf_support", "since": "2026-01-01", \
"until": "2026-02-01"}}."""


def expected(name: str) -> str:
    """What argument ``name`` expects, in words."""
    return EXPECTED.get(name, "a valid value")


def shown(value: object) -> str:
    """A short rendering of an argument's value, for an error message."""
    try:
        text = compact_json(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
