"""Prompts for the questions assistants are asked most about a project's runs.

- ``triage_failures``: what failed recently, how often, where in the trace and why, who
  was affected and what they said;
- ``cost_report``: what a period cost, day by day, by workforce and user, and which
  runs cost most (with their tokens by model);
- ``user_activity``: one user's runs over a period, their outcomes, cost and feedback.

Each renders one user message that tells the assistant which tool calls answer the
question, with the arguments filled in. Arguments are checked by the core (a ``since``
of ``"yesterdayish"`` is refused with the same one-line reason a tool would give).
Their values can be completed (``completion/complete``, see
:mod:`mcp_server.completions`): ``status``, ``sort_by``, ``workforce_id``,
``user_id``, ``since``, ``until``, ``bucket``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import Field

from timbal_integrations.errors import QueryError
from timbal_integrations.query import SORT_FIELDS, RunQuery

from ._sdk import TimbalPrompt
from .failures import explain
from .settings import ServerSettings

__all__ = ["PROMPT_NAMES", "register_prompts"]

PROMPT_NAMES: Final = ("triage_failures", "cost_report", "user_activity")

_Since = Annotated[
    str,
    Field(description='Start of the period: a span back from now ("24h", "7d") or ISO 8601'),
]
_Until = Annotated[str | None, Field(description="End of the period (exclusive); left out: now")]
_WorkforceId = Annotated[
    str | None, Field(description="Only this agent or workflow (workforce id); optional")
]
_Status = Annotated[
    str, Field(description="Which failures: error (the default), cancelled, or another status")
]
_SortBy = Annotated[
    str,
    Field(description="What makes a run expensive: " + ", ".join(SORT_FIELDS[2:])),
]
_UserId = Annotated[str, Field(description="The user's id (list_runs results show ids)")]


def _args(**values: Any) -> str:
    """Tool arguments as JSON-like text, leaving out those not given."""
    import orjson

    return orjson.dumps({k: v for k, v in values.items() if v is not None}).decode()


class _Prompts:
    """The prompt functions, bound to the server's settings (for "now")."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings

    def _check(self, **filters: Any) -> RunQuery:
        try:
            return RunQuery(now=self.settings.current_time(), **filters)
        except QueryError as exc:  # an invalid-params error naming the argument
            # Redacted as the tools' errors are: an argument may hold the key by mistake.
            message = explain(exc, self.settings)
            raise MCPError(code=INVALID_PARAMS, message=message) from None

    def triage_failures(
        self, since: _Since = "24h", workforce_id: _WorkforceId = None, status: _Status = "error"
    ) -> str:
        """Triage recent failures: how many, since when, where they fail and why, who
        was affected, what users said."""
        query = self._check(since=since, workforce_id=workforce_id, status=status)
        bucket = "hour" if since.strip().endswith(("h", "m")) else "day"
        over_time = _args(since=since, workforce_id=workforce_id, bucket=bucket)
        scope = _args(status=status, since=since, workforce_id=workforce_id)
        columns = ["id", "created_at", "workforce", "user", "sentiment"]
        listing = _args(
            status=status, since=since, workforce_id=workforce_id, limit=20, fields=columns
        )
        return f"""Triage the Timbal runs with status {status!r} since \
{query.as_dict()["since"]} (the project's run history, through the timbal tools).

1. Call summarize_runs with {over_time} to see the error rate over time (series) and by \
workforce; then with {scope} for who and which workforces are affected.
2. Call list_runs with {listing}.
3. For the most recent failures of each workforce (at most 5 in all), call get_run: read \
"failed at" (the deepest failing span and its error), status_detail, and the reactions' \
feedback.

Report: how many runs failed and the error rate, whether it is getting worse (the \
series), the distinct causes (group by failing span and error type, with counts and an \
example run id each), who was affected, what users said, and a suggested next step for \
each cause. Say which numbers are exact (summarize_runs) and which come from samples."""

    def cost_report(
        self,
        since: _Since = "7d",
        until: _Until = None,
        workforce_id: _WorkforceId = None,
        sort_by: _SortBy = "cost_usd",
    ) -> str:
        """A cost report for a period: the total, day by day, by workforce and user,
        and the most expensive runs with their tokens by model."""
        query = self._check(since=since, until=until, workforce_id=workforce_id, sort_by=sort_by)
        applied = query.as_dict()
        window = ", ".join(f"{k} {applied[k]}" for k in ("since", "until") if k in applied)
        scope = f", workforce {workforce_id}" if workforce_id else ""
        bucket = "week" if since.strip().endswith("w") else "day"
        totals = _args(since=since, until=until, workforce_id=workforce_id, bucket=bucket)
        columns = ["id", "created_at", "cost_usd", "duration_ms", "workforce", "user"]
        priciest = _args(
            since=since,
            until=until,
            workforce_id=workforce_id,
            sort_by=sort_by,
            limit=10,
            fields=columns,
        )
        return f"""Write a cost report of the Timbal runs ({window}{scope}).

1. Call summarize_runs with {totals}: the exact total (cost_usd_total, \
cost_credits_total), cost per {bucket} (series), and by workforce and user.
2. Call list_runs with {priciest} for the most expensive runs.
3. Call get_run on the top 3 and read "tokens by model" to say which models the money \
went to.

Report the total, the trend (rising, flat, falling; the costliest {bucket}), the split by \
workforce and by user (largest first, with shares), the most expensive runs and why \
(tokens by model, duration), and anything unusual. Round dollars to cents, except \
amounts under a cent."""

    def user_activity(self, user_id: _UserId, since: _Since = "7d") -> str:
        """One user's activity: their runs over a period, outcomes, cost and feedback."""
        self._check(user_id=user_id, since=since)
        totals = _args(user_id=user_id, since=since, bucket="day")
        columns = ["id", "created_at", "status", "workforce", "cost_usd", "sentiment"]
        listing = _args(user_id=user_id, since=since, limit=50, fields=columns)
        return f"""Describe the activity of Timbal user {user_id!r} since {since}.

1. Call summarize_runs with {totals}: how many runs, by status, workforce and sentiment, \
their cost, and runs per day.
2. Call list_runs with {listing}.
3. For their failed runs and the runs they reacted to negatively (at most 5), call \
get_run and read the failure and the reactions' feedback.

Report what they used (workforces), how often and when, how it went (successes, failures \
and why), what it cost, and what they said (feedback, sentiment). If the user has no \
runs, say so and check the user_id against list_runs results."""


def register_prompts(server: MCPServer[Any], settings: ServerSettings) -> None:
    """Add the three prompts to ``server``."""
    prompts = _Prompts(settings)
    titles = {
        "triage_failures": "Triage recent failures",
        "cost_report": "Cost report for a period",
        "user_activity": "One user's activity",
    }
    for name in PROMPT_NAMES:
        fn = getattr(prompts, name)
        server.add_prompt(TimbalPrompt.from_function(fn, name=name, title=titles[name]))
