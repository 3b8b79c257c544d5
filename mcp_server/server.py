"""The ``timbal`` MCP server: ``list_runs``, ``get_run`` and ``summarize_runs``.

A thin front end over the core. Each tool turns its arguments into a
:class:`~timbal_integrations.query.RunQuery`, calls the core's client, and shapes the
result for a model to read (see :mod:`mcp_server.shaping`). Nothing here speaks HTTP,
parses a date, or re-implements a filter.

Every failure a model can act on becomes a tool error with a message that names the
argument or the setting to fix::

    bad argument        -> "Invalid arguments for list_runs: `limit`: ... expected ..."
    bad filter value    -> "list_runs: invalid `since`: 'yesterday' is not an ISO 8601 ..."
    missing settings    -> "list_runs: the server is not configured: no API key: set ..."
    401 / 403 / 404     -> "list_runs: the API key was rejected (HTTP 401) — check ..."
    429 / 5xx           -> "... even after retrying — ..."

The API key never appears in a result, an error or a log line: the client keeps it in
a :class:`~timbal_integrations.config.Secret`, and every message is scrubbed of it
before it leaves.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, cast

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from timbal_integrations import defaults
from timbal_integrations._version import __version__
from timbal_integrations.config import ClientConfig, resolve_config
from timbal_integrations.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PaginationLoopError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    TimbalError,
)
from timbal_integrations.models import KNOWN_STATUSES, Run
from timbal_integrations.query import (
    SORT_FIELDS,
    RunQuery,
    parse_time,
    to_epoch_ms,
)
from timbal_integrations.retry import RetryPolicy
from timbal_integrations.summary import RunSummary, summarize

from .models import ListRunsResult, RunDetailResult, SummarizeRunsResult
from .shaping import (
    Cursor,
    cap_breakdowns,
    compact_json,
    detail_dict,
    filters_fingerprint,
    render_runs_text,
    run_row,
)

if TYPE_CHECKING:  # the client (and httpx) load with the first tool call, not at start-up
    from timbal_integrations.client import AsyncTimbalClient, TimbalClient

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_EMAIL_SCAN",
    "DEFAULT_MAX_RUNS",
    "MAX_LIMIT",
    "MAX_MAX_RUNS",
    "SERVER_NAME",
    "TOOL_NAMES",
    "ServerSettings",
    "create_server",
]

logger = logging.getLogger("mcp_server")

SERVER_NAME: Final = "timbal"
TOOL_NAMES: Final = ("list_runs", "get_run", "summarize_runs")
DEFAULT_LIMIT: Final = defaults.MCP_DEFAULT_LIMIT
MAX_LIMIT: Final = defaults.MCP_MAX_LIMIT
DEFAULT_MAX_RUNS: Final = defaults.MCP_DEFAULT_MAX_RUNS
MAX_MAX_RUNS: Final = defaults.MCP_MAX_MAX_RUNS
DEFAULT_MAX_EMAIL_SCAN: Final = defaults.MCP_MAX_EMAIL_SCAN
DEFAULT_SUMMARY_TOP_N: Final = defaults.MCP_SUMMARY_TOP_N
_MAX_PAGES_PER_CALL: Final = defaults.MCP_MAX_PAGES_PER_CALL
_DEFAULT_RETRY: Final = RetryPolicy(
    max_retries=defaults.MCP_MAX_RETRIES,
    backoff_base=defaults.MCP_BACKOFF_BASE,
    backoff_max=defaults.MCP_BACKOFF_MAX,
)

INSTRUCTIONS: Final = (
    "Read-only access to the run history of one Timbal project (runs are executions of "
    "agents and workflows). Use list_runs to find runs (filters combine with AND; "
    "results are pages: pass next_cursor back with the same filters to continue), "
    "get_run for one run's details, and summarize_runs for exact counts, error rates, "
    "costs and duration percentiles over every matching run. Times accept ISO 8601 "
    "(no offset means UTC), epoch milliseconds, or spans back from now such as 24h or 7d."
)

# ---------------------------------------------------------------------------------------
# Arguments: their types (and so the input schemas) and descriptions.


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

_DESCRIPTIONS: Final[dict[str, str]] = {
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
}

_EXPECTED: Final[dict[str, str]] = {
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
}


def _text(name: str) -> Any:
    return Field(description=_DESCRIPTIONS[name])


StatusArg = Annotated[str | None, _text("status"), Field(examples=["error"])]
UserIdArg = Annotated[str | None, _text("user_id")]
UserEmailArg = Annotated[str | None, _text("user_email")]
SentimentArg = Annotated[str | None, _text("sentiment")]
WorkforceIdArg = Annotated[str | None, _text("workforce_id")]
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

ListRunsOutput = Annotated[CallToolResult, ListRunsResult]
GetRunOutput = Annotated[CallToolResult, RunDetailResult]
SummarizeRunsOutput = Annotated[CallToolResult, SummarizeRunsResult]

_LIST_RUNS_DESCRIPTION = f"""\
List runs (executions of Timbal agents and workflows) matching filters, newest first by \
default. Returns compact rows (id, created_at, status, duration_ms, cost_usd, user, \
workforce, sentiment, group_id, parent_id), the filters as applied (relative times \
resolved to UTC), and next_cursor when more runs may match: call list_runs again with \
the same filters and cursor=next_cursor to continue. Every filter is optional; filters \
combine with AND. At most {MAX_LIMIT} runs per call. For counts, rates and costs over \
many runs use summarize_runs instead.
Examples: failed runs in the last 24 hours: {{"status": "error", "since": "24h"}}. \
One user's most expensive runs this week: {{"user_email": "ada@example.com", "since": \
"7d", "sort_by": "cost_usd"}}."""

_GET_RUN_DESCRIPTION = """\
Get one run by its id or idempotency key, with its detail fields: status, timing, cost, \
user, workforce, sentiment, thread (group_id, parent_id), status_detail (why it failed) \
and trace. Example: {"run_id": "01KDS4AE2TYV0G4QK2F6M5N8RW"}."""

_SUMMARIZE_RUNS_DESCRIPTION = f"""\
Exact rollups over every run matching the filters (the same numbers as the \
`timbal-runs summary` command): total, counts and cost by status, user, workforce and \
sentiment, error count and rate, total cost in USD and credits, duration p50/p95/max, \
and the first and last run times. Filters are those of list_runs. Reads at most \
max_runs runs (default {DEFAULT_MAX_RUNS:,}); complete is false when more matched. \
Long breakdowns keep their largest buckets and report the rest under others.
Examples: error rate this week: {{"since": "7d"}}. Cost of one agent in January: \
{{"workforce_id": "wf_support", "since": "2026-01-01", "until": "2026-02-01"}}."""

# ---------------------------------------------------------------------------------------
# Settings and clients.


@dataclass(frozen=True)
class ServerSettings:
    """How the tools reach the API. Arguments left as None come from ``env`` at call time.

    ``env`` defaults to ``os.environ``; ``now`` (for relative times such as ``24h``)
    defaults to the wall clock.
    """

    api_key: str | None = field(default=None, repr=False)
    host: str | None = None
    org_id: str | None = None
    project_id: str | None = None
    env: Mapping[str, str] | None = field(default=None, repr=False)
    now: Callable[[], datetime] | None = None
    retry_policy: RetryPolicy = _DEFAULT_RETRY
    timeout: float = defaults.REQUEST_TIMEOUT
    max_email_scan: int = DEFAULT_MAX_EMAIL_SCAN
    summary_top_n: int = DEFAULT_SUMMARY_TOP_N

    def resolve(self) -> ClientConfig:
        """The client configuration; :class:`ConfigError` names what is missing."""
        return resolve_config(
            self.api_key,
            host=self.host,
            org_id=self.org_id,
            project_id=self.project_id,
            env=self.env,
        )

    def secret(self) -> str | None:
        """The API key if one is set, even when other settings are missing (to scrub it)."""
        environ = os.environ if self.env is None else self.env
        value = self.api_key if self.api_key is not None else environ.get("TIMBAL_API_KEY")
        return value.strip() or None if value else None

    def current_time(self) -> datetime:
        """The reference time of relative spans."""
        return self.now() if self.now is not None else datetime.now(UTC)

    def async_client(self) -> AsyncTimbalClient:
        """A new asynchronous client (raises :class:`ConfigError` when unconfigured)."""
        from timbal_integrations.client import AsyncTimbalClient

        config = self.resolve()
        return AsyncTimbalClient(
            config.api_key,
            host=config.base_url,
            org_id=config.org_id,
            project_id=config.project_id,
            timeout=self.timeout,
            retry_policy=self.retry_policy,
        )

    def sync_client(self) -> TimbalClient:
        """A new synchronous client (for the summary, which streams in a worker thread)."""
        from timbal_integrations.client import TimbalClient

        config = self.resolve()
        return TimbalClient(
            config.api_key,
            host=config.base_url,
            org_id=config.org_id,
            project_id=config.project_id,
            timeout=self.timeout,
            retry_policy=self.retry_policy,
        )


# ---------------------------------------------------------------------------------------
# Errors.


class _Failure(ToolError):
    """A failure explained for the model; its message is shown as is."""


def _scrub(message: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        message = message.replace(secret, "***")
    return message


def _status(exc: APIStatusError) -> str:
    """`` (HTTP 401; the API said: ...)`` — the status and the server's own words."""
    said = f"; the API said: {exc.server_message}" if exc.server_message else ""
    return f" (HTTP {exc.status_code}{said})"


_LIBRARY_ARGUMENTS: Final = {
    "api_key=...": "--api-key",
    "org_id=...": "--org-id",
    "project_id=...": "--project-id",
}


def config_problem(exc: ConfigError, *, flags: bool = False) -> str:
    """A configuration error in the server's terms (flags, not library arguments)."""
    text = str(exc)
    for argument, flag in _LIBRARY_ARGUMENTS.items():
        text = text.replace(f" (or pass {argument})", f" (or {flag})" if flags else "")
    return text


def explain(tool: str, exc: BaseException, *, run_id: str | None = None) -> str:
    """The message a model reads for a failure of ``tool`` (not yet scrubbed)."""
    if isinstance(exc, QueryError):
        detail = str(exc)
        prefix = f"{exc.field}: "
        if detail.startswith(prefix):
            detail = detail[len(prefix) :]
        return f"{tool}: invalid `{exc.field}`: {detail}"
    if isinstance(exc, ConfigError):
        return (
            f"{tool}: the server is not configured: {config_problem(exc)}. Set it in the env "
            "section of this MCP server's configuration and restart the server."
        )
    if isinstance(exc, AuthenticationError):
        return f"{tool}: the API key was rejected — check TIMBAL_API_KEY{_status(exc)}."
    if isinstance(exc, PermissionDeniedError):
        return (
            f"{tool}: the API key may not read this organisation or project — check "
            f"TIMBAL_ORG_ID and TIMBAL_PROJECT_ID{_status(exc)}."
        )
    if isinstance(exc, NotFoundError):
        if run_id is not None:
            return (
                f"{tool}: no run with id or idempotency key {run_id!r} in this project — "
                "check the id (list_runs shows run ids), TIMBAL_ORG_ID and "
                f"TIMBAL_PROJECT_ID{_status(exc)}."
            )
        return (
            f"{tool}: not found — check TIMBAL_ORG_ID, TIMBAL_PROJECT_ID and "
            f"TIMBAL_API_HOST{_status(exc)}."
        )
    if isinstance(exc, RateLimitError):
        wait = f"wait {exc.retry_after:g}s and " if exc.retry_after else "wait a little and "
        return (
            f"{tool}: rate limited by the Timbal API even after retrying — {wait}try again, "
            f"or narrow the query (a shorter since/until window){_status(exc)}."
        )
    if isinstance(exc, ServerError):
        return f"{tool}: the Timbal API failed even after retrying — try again later{_status(exc)}."
    if isinstance(exc, BadRequestError):
        return f"{tool}: the Timbal API rejected the query — check the filter values{_status(exc)}."
    if isinstance(exc, APIStatusError):
        return f"{tool}: the Timbal API answered with an error{_status(exc)}."
    if isinstance(exc, APIConnectionError):
        return f"{tool}: could not reach the Timbal API: {exc}"
    if isinstance(exc, PaginationLoopError | ResponseValidationError):
        return f"{tool}: the Timbal API sent an unexpected response: {exc}"
    if isinstance(exc, TimbalError):
        return f"{tool}: {exc}"
    return (
        f"{tool}: internal error ({type(exc).__name__}); this is a bug in timbal-mcp, "
        "and the server's log has the details."
    )


def _expected(name: str) -> str:
    return _EXPECTED.get(name, "a valid value")


def _short(value: object) -> str:
    try:
        text = compact_json(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _argument_problem(tool: str, error: ValidationError, known: list[str]) -> str:
    """One line naming each bad argument and what it expects."""
    by_name: dict[str, list[Any]] = {}
    for item in error.errors():
        loc = item.get("loc") or ("arguments",)
        by_name.setdefault(str(loc[0]), []).append(item)
    problems = []
    for name, items in by_name.items():
        first = items[0]
        if first["type"] == "extra_forbidden":
            problems.append(f"unknown argument `{name}` (accepted: {', '.join(known)})")
        elif first["type"] == "missing":
            problems.append(f"`{name}` is required: expected {_expected(name)}")
        else:
            got = _short(first.get("input"))
            reason = first["msg"] if len(items) == 1 else "not accepted"
            reason = reason.removeprefix("Value error, ")
            problems.append(f"`{name}`: {reason} (got {got}); expected {_expected(name)}")
    return f"Invalid arguments for {tool}: " + "; ".join(problems)


class TimbalTool(Tool):
    """A tool whose arguments are checked strictly, with messages a model can act on.

    Unknown arguments are refused (the input schema says ``additionalProperties:
    false``), and a failure is reported with the tool's own message rather than the
    SDK's generic one.
    """

    async def run(
        self,
        arguments: dict[str, Any],
        context: Context[Any, Any],
        convert_result: bool = False,
    ) -> Any:
        """Check the arguments, run the tool, and report failures plainly."""
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            known = list(self.parameters.get("properties", {}))
            raise ToolError(_argument_problem(self.name, exc, known)) from None
        try:
            return await super().run(arguments, context, convert_result)
        except UnexpectedToolError as exc:
            logger.error("%s produced a result that does not fit its schema", self.name)
            raise ToolError(
                f"{self.name}: internal error (the result did not fit the tool's output "
                "schema); this is a bug in timbal-mcp, and the server's log has the details."
            ) from exc
        except ToolError as exc:
            if isinstance(exc.__cause__, _Failure):
                raise ToolError(str(exc.__cause__)) from None
            raise


def _strict(tool: Tool) -> Tool:
    """Refuse unknown arguments, and publish a schema that says so (without titles)."""
    base = tool.fn_metadata.arg_model
    strict = cast(
        type[ArgModelBase],
        type(
            base.__name__,
            (base,),
            {"model_config": ConfigDict(extra="forbid"), "__module__": __name__},
        ),
    )
    tool.fn_metadata.arg_model = strict
    # The SDK has just generated the input schema from the same fields; forbidding extra
    # fields adds only additionalProperties (set below), so reuse it rather than pay
    # for pydantic's schema generation again at start-up (tests/mcp pins the result).
    schema = tool.parameters
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema["additionalProperties"] = False
    tool.parameters = schema
    return tool


# ---------------------------------------------------------------------------------------
# The tools.


def _check_email(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    if (
        not text
        or len(text) > 320
        or "@" not in text
        or any(c.isspace() or ord(c) < 32 for c in text)
    ):
        expected = _expected("user_email")
        raise QueryError("user_email", f"{_short(value)} is not {expected}")
    return text


def _is_relative(value: str | int, name: str, now: datetime) -> bool:
    """True when ``value`` depends on "now" (a span such as 24h, or "now")."""
    earlier = now - timedelta(days=1)
    return parse_time(value, field=name, now=now) != parse_time(value, field=name, now=earlier)


def _ms_to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@dataclass
class _Page:
    runs: list[Run]
    next_position: tuple[str | None, int] | None
    scanned: int
    bound_hit: bool


class TimbalTools:
    """The tool implementations, bound to one :class:`ServerSettings`."""

    def __init__(self, settings: ServerSettings) -> None:
        """Tools that reach the API as ``settings`` says."""
        self.settings = settings
        self._users = 0
        self._client: AsyncTimbalClient | None = None
        self._client_config: ClientConfig | None = None
        self._retired: list[AsyncTimbalClient] = []

    @contextlib.asynccontextmanager
    async def lifespan(self, _server: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
        """While the server runs, calls share one API client (one connection pool).

        Entered once per stdio or in-memory connection, once for the HTTP transport;
        the shared client is closed when the last one ends.
        """
        self._users += 1
        try:
            yield {}
        finally:
            self._users -= 1
            if self._users == 0:
                clients = [*self._retired, *([self._client] if self._client else [])]
                self._client = None
                self._client_config = None
                self._retired = []
                for client in clients:
                    await client.aclose()

    @contextlib.asynccontextmanager
    async def _api(self) -> AsyncIterator[AsyncTimbalClient]:
        """The shared client (a fresh one outside a running server, or after a change)."""
        if self._users == 0:
            async with self.settings.async_client() as temporary:
                yield temporary
            return
        config = self.settings.resolve()
        if self._client is None or self._client_config != config:
            if self._client is not None:
                self._retired.append(self._client)
            self._client = self.settings.async_client()
            self._client_config = config
        yield self._client

    def _fail(self, tool: str, exc: BaseException, *, run_id: str | None = None) -> _Failure:
        """The tool error for ``exc``; an unexpected one is logged with its traceback."""
        secret = self.settings.secret()
        if not isinstance(exc, TimbalError):
            details = "".join(traceback.format_exception(exc))
            logger.error("%s failed unexpectedly:\n%s", tool, _scrub(details, secret))
        return _Failure(_scrub(explain(tool, exc, run_id=run_id), secret))

    def _query(self, filters: dict[str, Any], now: datetime) -> RunQuery:
        return RunQuery(now=now, **{k: v for k, v in filters.items() if v is not None})

    @staticmethod
    def _applied(query: RunQuery, email: str | None) -> dict[str, Any]:
        applied = {k: v for k, v in query.as_dict().items() if k not in ("sort_by", "sort_order")}
        if email is not None:
            applied["user_email"] = email
        applied["sort_by"] = query.effective_sort_by
        applied["sort_order"] = query.effective_sort_order
        return applied

    @staticmethod
    def _fingerprint(query: RunQuery, email: str | None) -> str:
        return filters_fingerprint(
            {
                "status": query.status,
                "user_id": query.user_id,
                "user_email": email,
                "sentiment": query.sentiment,
                "workforce_id": query.workforce_id,
                "group_id": query.group_id,
                "rev": query.rev,
                "roots": bool(query.roots),
                "sort_by": query.effective_sort_by,
                "sort_order": query.effective_sort_order,
                "since": query.since is not None,
                "until": query.until is not None,
            }
        )

    def _resume(
        self,
        cursor: Cursor,
        query: RunQuery,
        email: str | None,
        raw: Mapping[str, str | int | None],
        now: datetime,
    ) -> RunQuery:
        """The query pinned to the cursor's window, or a QueryError naming ``cursor``."""
        mismatch = QueryError(
            "cursor",
            "was returned for different filters; call list_runs with the same filters as "
            "the call that returned it, or leave cursor out to start over",
        )
        if cursor.fingerprint != self._fingerprint(query, email):
            raise mismatch
        pinned: dict[str, datetime | None] = {}
        for name, ms in (("since", cursor.since_ms), ("until", cursor.until_ms)):
            value = raw[name]
            if value is None or ms is None:
                pinned[name] = None
                continue
            if not _is_relative(value, name, now):
                resolved = getattr(query, name)
                if resolved is None or to_epoch_ms(resolved) != ms:
                    raise mismatch
            try:
                pinned[name] = _ms_to_datetime(ms)
            except OverflowError:  # a tampered cursor: beyond what a datetime holds
                raise QueryError("cursor", "is not a cursor returned by list_runs") from None
        return query.replace(**pinned)

    async def _collect(
        self,
        client: AsyncTimbalClient,
        query: RunQuery,
        start: tuple[str | None, int],
        limit: int,
        email: str | None,
    ) -> _Page:
        """Up to ``limit`` matching runs from ``start``, and where the next one is."""
        token, offset = start
        runs: list[Run] = []
        scanned = 0
        seen: set[str] = set()
        max_scan = self.settings.max_email_scan
        for _ in range(_MAX_PAGES_PER_CALL):
            page = await client.get_runs_page(query, page_token=token)
            following = page.next_page_token
            if following is not None and (following == token or following in seen):
                raise PaginationLoopError(
                    "the API returned a page token it had already returned; stopping "
                    "instead of looping"
                )
            index = offset
            while index < len(page.runs):
                run = page.runs[index]
                index += 1
                if email is not None:
                    scanned += 1
                    if run.user.email.lower() == email:
                        runs.append(run)
                else:
                    runs.append(run)
                full = len(runs) >= limit
                bound = email is not None and scanned >= max_scan
                if full or bound:
                    if index < len(page.runs):
                        position: tuple[str | None, int] | None = (token, index)
                    elif following is not None:
                        position = (following, 0)
                    else:
                        position = None
                    return _Page(runs, position, scanned, bound and not full)
            if following is None:
                return _Page(runs, None, scanned, False)
            seen.add(following)
            token, offset = following, 0
        return _Page(runs, (token, offset), scanned, True)

    async def list_runs(
        self,
        status: StatusArg = None,
        user_id: UserIdArg = None,
        user_email: UserEmailArg = None,
        sentiment: SentimentArg = None,
        workforce_id: WorkforceIdArg = None,
        group_id: GroupIdArg = None,
        rev: RevArg = None,
        since: SinceArg = None,
        until: UntilArg = None,
        roots: RootsArg = None,
        sort_by: SortByArg = None,
        sort_order: SortOrderArg = None,
        limit: LimitArg = DEFAULT_LIMIT,
        cursor: CursorArg = None,
    ) -> ListRunsOutput:
        """List runs matching filters, one page at a time (see the tool description)."""
        try:
            now = self.settings.current_time()
            email = _check_email(user_email)
            query = self._query(
                {
                    "status": status,
                    "user_id": user_id,
                    "sentiment": sentiment,
                    "workforce_id": workforce_id,
                    "group_id": group_id,
                    "rev": rev,
                    "since": since,
                    "until": until,
                    "roots": roots,
                    "sort_by": sort_by,
                    "sort_order": sort_order,
                },
                now,
            )
            start: tuple[str | None, int] = (None, 0)
            if cursor is not None:
                decoded = Cursor.decode(cursor)
                query = self._resume(decoded, query, email, {"since": since, "until": until}, now)
                start = (decoded.page_token, decoded.offset)
            async with self._api() as client:
                page = await self._collect(client, query, start, limit, email)
            return self._list_result(query, email, page)
        except Exception as exc:
            raise self._fail("list_runs", exc) from None

    def _list_result(self, query: RunQuery, email: str | None, page: _Page) -> CallToolResult:
        result: dict[str, Any] = {
            "runs": [run_row(run) for run in page.runs],
            "returned": len(page.runs),
        }
        if page.next_position is not None:
            token, offset = page.next_position
            result["next_cursor"] = Cursor(
                token,
                offset,
                self._fingerprint(query, email),
                None if query.since is None else to_epoch_ms(query.since),
                None if query.until is None else to_epoch_ms(query.until),
            ).encode()
        result["applied_filters"] = self._applied(query, email)
        if email is not None:
            result["scanned"] = page.scanned
            result["scan_bound_hit"] = page.bound_hit
        if page.next_position is not None:
            if page.bound_hit and email is not None:
                hint = (
                    f"The user_email scan stopped after {page.scanned} runs. To continue, "
                    "call list_runs again with the same filters and cursor=next_cursor; "
                    "a narrower since/until window or user_id makes the scan shorter."
                )
            else:
                hint = (
                    "More runs may match: call list_runs again with the same filters and "
                    "cursor=next_cursor for the next ones (summarize_runs gives totals)."
                )
            result["hint"] = hint
        return CallToolResult(
            content=[TextContent(type="text", text=render_runs_text(result))],
            structured_content=result,
        )

    async def get_run(self, run_id: RunIdArg) -> GetRunOutput:
        """One run by id or idempotency key (see the tool description)."""
        try:
            async with self._api() as client:
                detail = await client.get_run(run_id)
            data = detail_dict(detail)
        except Exception as exc:
            raise self._fail("get_run", exc, run_id=run_id.strip()) from None
        return CallToolResult(
            content=[TextContent(type="text", text=compact_json(data))],
            structured_content=data,
        )

    async def summarize_runs(
        self,
        status: StatusArg = None,
        user_id: UserIdArg = None,
        user_email: UserEmailArg = None,
        sentiment: SentimentArg = None,
        workforce_id: WorkforceIdArg = None,
        group_id: GroupIdArg = None,
        rev: RevArg = None,
        since: SinceArg = None,
        until: UntilArg = None,
        roots: RootsArg = None,
        sort_by: SortByArg = None,
        sort_order: SortOrderArg = None,
        max_runs: MaxRunsArg = DEFAULT_MAX_RUNS,
    ) -> SummarizeRunsOutput:
        """Exact rollups over every matching run (see the tool description)."""
        stop = threading.Event()
        try:
            now = self.settings.current_time()
            email = _check_email(user_email)
            query = self._query(
                {
                    "status": status,
                    "user_id": user_id,
                    "sentiment": sentiment,
                    "workforce_id": workforce_id,
                    "group_id": group_id,
                    "rev": rev,
                    "since": since,
                    "until": until,
                    "roots": roots,
                    "sort_by": sort_by,
                    "sort_order": sort_order,
                },
                now,
            )
            try:
                work = functools.partial(_summarize, self.settings, query, email, max_runs, stop)
                summary, scanned = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            finally:
                stop.set()
            result = self._summary_result(summary, scanned, max_runs, query, email)
        except Exception as exc:
            raise self._fail("summarize_runs", exc) from None
        return CallToolResult(
            content=[TextContent(type="text", text=compact_json(result))],
            structured_content=result,
        )

    def _summary_result(
        self, summary: RunSummary, scanned: int, max_runs: int, query: RunQuery, email: str | None
    ) -> dict[str, Any]:
        capped, others = cap_breakdowns(summary.to_dict(), self.settings.summary_top_n)
        result: dict[str, Any] = {
            **capped,
            "max_runs": max_runs,
            "scanned": scanned,
            "applied_filters": self._applied(query, email),
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
        return result


class _Stopped(Exception):
    """The caller went away; the summary's worker thread stops reading."""


def _summarize(
    settings: ServerSettings,
    query: RunQuery,
    email: str | None,
    max_runs: int,
    stop: threading.Event,
) -> tuple[RunSummary, int]:
    """Stream runs into the core's :func:`summarize` (runs in a worker thread)."""
    scanned = 0
    more = False

    def stream(client: TimbalClient) -> Iterator[Run]:
        nonlocal scanned, more
        for run in client.list_runs(query):
            if stop.is_set():
                raise _Stopped
            if scanned >= max_runs:
                more = True
                return
            scanned += 1
            if email is None or run.user.email.lower() == email:
                yield run

    with settings.sync_client() as client:
        summary = summarize(stream(client))
    if more:
        summary = summary.model_copy(update={"complete": False})
    return summary, scanned


# ---------------------------------------------------------------------------------------
# The server.


def create_server(
    settings: ServerSettings | None = None,
    *,
    api_key: str | None = None,
    host: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    env: Mapping[str, str] | None = None,
    now: Callable[[], datetime] | None = None,
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING",
) -> MCPServer[Any]:
    """Build the ``timbal`` MCP server with its three read-only tools.

    Pass a :class:`ServerSettings`, or its most common fields as keyword arguments
    (``api_key``, ``host``, ``org_id``, ``project_id`` override ``TIMBAL_API_KEY``,
    ``TIMBAL_API_HOST``, ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID``; ``now`` fixes the
    reference time of relative spans, for tests). Configuration is read when a tool
    runs, so a server with missing settings still starts and reports the problem as a
    tool error.
    """
    if settings is None:
        settings = ServerSettings(
            api_key=api_key, host=host, org_id=org_id, project_id=project_id, env=env, now=now
        )
    elif any(v is not None for v in (api_key, host, org_id, project_id, env, now)):
        raise TypeError("pass either settings or keyword arguments, not both")
    tools = TimbalTools(settings)
    annotations = {
        "read_only_hint": True,
        "idempotent_hint": True,
        "destructive_hint": False,
        "open_world_hint": False,
    }
    specs: list[tuple[Callable[..., Any], str, str, str]] = [
        (tools.list_runs, "list_runs", "List Timbal runs", _LIST_RUNS_DESCRIPTION),
        (tools.get_run, "get_run", "Get a Timbal run", _GET_RUN_DESCRIPTION),
        (
            tools.summarize_runs,
            "summarize_runs",
            "Summarize Timbal runs",
            _SUMMARIZE_RUNS_DESCRIPTION,
        ),
    ]
    registered = [
        _strict(
            TimbalTool.from_function(
                fn,
                name=name,
                title=title,
                description=description,
                annotations=ToolAnnotations(title=title, **annotations),
            )
        )
        for fn, name, title, description in specs
    ]
    return MCPServer(
        SERVER_NAME,
        title="Timbal runs",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=registered,
        log_level=log_level,
        lifespan=tools.lifespan,
    )
