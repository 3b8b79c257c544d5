"""The tools of the ``timbal`` MCP server: ``list_runs``, ``get_run``, ``summarize_runs``.

Each tool turns its arguments into a :class:`~timbal_integrations.query.RunQuery`, calls
the core's asynchronous client, and shapes the result for a model to read (see
:mod:`mcp_server.shaping`, :mod:`mcp_server.trace_shaping`, :mod:`mcp_server.readable`).
Workforce names and unknown filter values are checked against the recent runs
(:mod:`mcp_server.known`, :mod:`mcp_server.recent`). Nothing here speaks HTTP, parses a
date, or re-implements a filter. Every failure becomes a tool error worded by the core
for an assistant (:func:`timbal_integrations.wording.describe`), in this server's names
of its settings. Every result and every error (the resources' and prompts' too) is
redacted of the API key by the core's :func:`~timbal_integrations.redact.redact` (a
server that echoes the key, or part of it, in a run's fields, a trace, a reaction or an
error cannot make the server repeat it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ResourceLink, TextContent

from timbal_integrations import defaults
from timbal_integrations.config import ClientConfig
from timbal_integrations.errors import PaginationLoopError, QueryError, TimbalError
from timbal_integrations.limits import AUTO, Parallel
from timbal_integrations.models import Reaction, Run
from timbal_integrations.query import FILTER_NAMES, RunQuery, parse_time, to_epoch_ms
from timbal_integrations.redact import redact, redact_data
from timbal_integrations.summary import RunSummary, SummaryBuilder, check_buckets
from timbal_integrations.wording import describe

from ._sdk import ToolFailure
from .args import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_RUNS,
    BucketArg,
    CursorArg,
    DetailArg,
    FieldsArg,
    GetRunOutput,
    GroupIdArg,
    LimitArg,
    ListRunsOutput,
    MaxRunsArg,
    MetadataArg,
    RevArg,
    RootsArg,
    RunIdArg,
    SentimentArg,
    SinceArg,
    SortByArg,
    SortOrderArg,
    StatusArg,
    SummarizeRunsOutput,
    UntilArg,
    UserEmailArg,
    UserIdArg,
    WorkforceArg,
    WorkforceIdArg,
    expected,
    shown,
)
from .known import Resolution, check_workforce_name, resolve_workforce, unknown_values
from .readable import summary_text
from .recent import RecentValues, Snapshot
from .settings import ServerSettings
from .shaping import (
    DEFAULT_FIELDS,
    Cursor,
    cap_breakdowns,
    filters_fingerprint,
    render_runs_text,
    run_row,
)
from .trace_shaping import resource_uris, shape_run

if TYPE_CHECKING:  # the client (and httpx) load with the first tool call, not at start-up
    from timbal_integrations.client import AsyncTimbalClient

__all__ = ["TimbalTools", "is_relative", "scrub"]

logger = logging.getLogger("mcp_server")


def scrub(message: str, secret: str | None) -> str:
    """``message`` with the API key (if any), in every form a server may echo it, replaced
    by ``***`` (the core's :func:`~timbal_integrations.redact.redact`)."""
    return redact(message, secret)


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
        raise QueryError("user_email", f"{shown(value)} is not {expected('user_email')}")
    return text


def is_relative(value: str | int, name: str, now: datetime) -> bool:
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
        self.recent = RecentValues(
            max_runs=settings.recent_scan_runs, ttl=settings.recent_ttl, clock=settings.clock
        )
        """The statuses, users and workforces of the recent runs, cached briefly."""

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
    async def api(self) -> AsyncIterator[AsyncTimbalClient]:
        """The shared client (a fresh one outside a running server, or after a change);
        the resources, completions and prompts use it too."""
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

    def _fail(self, tool: str, exc: BaseException) -> ToolFailure:
        """The tool error for ``exc`` (worded by the core for an assistant, in this
        server's names, the key scrubbed); an unexpected one is logged with its
        traceback."""
        secret = self.settings.secret()
        if not isinstance(exc, TimbalError):
            details = "".join(traceback.format_exception(exc))
            logger.error("%s failed unexpectedly:\n%s", tool, scrub(details, secret))
        message = describe(exc, "assistant", names=self.settings.setting_names())
        return ToolFailure(scrub(f"{tool}: {message}", secret))

    @staticmethod
    def _query(arguments: Mapping[str, Any], now: datetime) -> RunQuery:
        """The filters among a tool's ``arguments`` (those given) as a query."""
        given = {name: arguments[name] for name in FILTER_NAMES if arguments.get(name) is not None}
        return RunQuery(now=now, **given)

    @staticmethod
    def _applied(
        query: RunQuery, email: str | None, workforce: str | None = None
    ) -> dict[str, Any]:
        applied = {k: v for k, v in query.as_dict().items() if k not in ("sort_by", "sort_order")}
        if email is not None:
            applied["user_email"] = email
        if workforce is not None:
            applied["workforce"] = workforce
        applied["sort_by"] = query.effective_sort_by
        applied["sort_order"] = query.effective_sort_order
        return applied

    @staticmethod
    def _fingerprint(query: RunQuery, email: str | None, workforce: str | None = None) -> str:
        added: dict[str, Any] = {}  # only when set: cursors of earlier versions stay valid
        if query.metadata is not None:
            added["metadata"] = query.metadata
        if workforce is not None:
            added["workforce"] = workforce.strip().casefold()
        return filters_fingerprint(
            {
                **added,
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
        workforce: str | None = None,
    ) -> RunQuery:
        """The query pinned to the cursor's window, or a QueryError naming ``cursor``."""
        mismatch = QueryError(
            "cursor",
            "was returned for different filters; call list_runs with the same filters as "
            "the call that returned it, or leave cursor out to start over",
        )
        if cursor.fingerprint != self._fingerprint(query, email, workforce):
            raise mismatch
        pinned: dict[str, datetime | None] = {}
        for name, ms in (("since", cursor.since_ms), ("until", cursor.until_ms)):
            value = raw[name]
            if value is None or ms is None:
                pinned[name] = None
                continue
            if not is_relative(value, name, now):
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
        for _ in range(defaults.MCP_MAX_PAGES_PER_CALL):
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

    async def _workforce(
        self, client: AsyncTimbalClient, name: str | None, query: RunQuery
    ) -> tuple[RunQuery, Resolution | None]:
        """The query with a workforce name resolved to its id (see :mod:`.known`)."""
        if name is None:
            return query, None
        check_workforce_name(name)  # before the scan of the recent runs
        resolution = resolve_workforce(name, await self.recent.get(client), query.workforce_id)
        if resolution.workforce_id is not None:
            query = query.replace(workforce_id=resolution.workforce_id)
        return query, resolution

    async def _unknown(
        self, client: AsyncTimbalClient, query: RunQuery, found: int, first_page: bool
    ) -> list[dict[str, Any]]:
        """With nothing found, the filter values that match nothing known."""
        if found or not first_page:
            return []
        if all(v is None for v in (query.status, query.sentiment, query.user_id)) and (
            query.workforce_id is None
        ):
            return []
        try:
            snapshot: Snapshot = await self.recent.get(client)
        except TimbalError:  # the runs were read; the hint is a best effort
            logger.warning("could not read the recent runs to check the filter values")
            return []
        return unknown_values(query, snapshot)

    async def list_runs(
        self,
        status: StatusArg = None,
        user_id: UserIdArg = None,
        user_email: UserEmailArg = None,
        sentiment: SentimentArg = None,
        workforce_id: WorkforceIdArg = None,
        workforce: WorkforceArg = None,
        group_id: GroupIdArg = None,
        rev: RevArg = None,
        since: SinceArg = None,
        until: UntilArg = None,
        metadata: MetadataArg = None,
        roots: RootsArg = None,
        sort_by: SortByArg = None,
        sort_order: SortOrderArg = None,
        fields: FieldsArg = None,
        limit: LimitArg = DEFAULT_LIMIT,
        cursor: CursorArg = None,
    ) -> ListRunsOutput:
        """List runs matching filters, one page at a time (see the tool description)."""
        arguments = dict(locals())  # the tool's arguments, by name
        try:
            now = self.settings.current_time()
            email = _check_email(user_email)
            query = self._query(arguments, now)
            async with self.api() as client:
                query, resolution = await self._workforce(client, workforce, query)
                if resolution is not None and resolution.workforce_id is None:
                    page = _Page([], None, 0, False)
                else:
                    start: tuple[str | None, int] = (None, 0)
                    if cursor is not None:
                        decoded = Cursor.decode(cursor)
                        raw = {"since": since, "until": until}
                        query = self._resume(decoded, query, email, raw, now, workforce)
                        start = (decoded.page_token, decoded.offset)
                    page = await self._collect(client, query, start, limit, email)
                unknown = await self._unknown(client, query, len(page.runs), cursor is None)
            return self._list_result(query, email, page, fields, workforce, resolution, unknown)
        except Exception as exc:
            raise self._fail("list_runs", exc) from None

    def _redacted(self, data: dict[str, Any]) -> dict[str, Any]:
        """A result with the API key redacted from every string (see the module)."""
        redacted: dict[str, Any] = redact_data(data, self.settings.secret())
        return redacted

    def _list_result(
        self,
        query: RunQuery,
        email: str | None,
        page: _Page,
        fields: Sequence[str] | None = None,
        workforce: str | None = None,
        resolution: Resolution | None = None,
        unknown: Sequence[dict[str, Any]] = (),
    ) -> CallToolResult:
        columns = list(dict.fromkeys(["id", *fields])) if fields else list(DEFAULT_FIELDS)
        result: dict[str, Any] = {
            "runs": [run_row(run, columns) for run in page.runs],
            "returned": len(page.runs),
        }
        if columns != list(DEFAULT_FIELDS):
            result["fields"] = columns
        if page.next_position is not None:
            token, offset = page.next_position
            result["next_cursor"] = Cursor(
                token,
                offset,
                self._fingerprint(query, email, workforce),
                None if query.since is None else to_epoch_ms(query.since),
                None if query.until is None else to_epoch_ms(query.until),
            ).encode()
        result["applied_filters"] = self._applied(query, email, workforce)
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
        if resolution is not None:
            result["workforce_resolution"] = resolution.as_dict()
        if unknown:
            result["unknown_values"] = list(unknown)
        result = self._redacted(result)
        return CallToolResult(
            content=[TextContent(type="text", text=render_runs_text(result))],
            structured_content=result,
        )

    async def _reactions(
        self, client: AsyncTimbalClient, run_id: str
    ) -> tuple[list[Reaction], bool, str | None]:
        """The newest reactions, whether there are more, or why they could not be read
        (the run is shown even so)."""
        shown_at_most = defaults.MCP_MAX_REACTIONS
        try:
            got = [r async for r in client.list_reactions(run_id, limit=shown_at_most + 1)]
        except TimbalError as exc:
            message = describe(exc, "assistant", names=self.settings.setting_names())
            return [], False, scrub(message, self.settings.secret())
        return got[:shown_at_most], len(got) > shown_at_most, None

    async def get_run(self, run_id: RunIdArg, detail: DetailArg = "summary") -> GetRunOutput:
        """One run by id or idempotency key (see the tool description)."""
        try:
            async with self.api() as client:
                # Both requests at once; each one finishes before the client may close.
                got_run, got_reactions = await asyncio.gather(
                    client.get_run(run_id), self._reactions(client, run_id), return_exceptions=True
                )
            if isinstance(got_run, BaseException):
                raise got_run
            if isinstance(got_reactions, BaseException):
                raise got_reactions
            run = got_run
            reactions, more, problem = got_reactions
            view = shape_run(
                run, reactions, level=detail, more_reactions=more, reactions_problem=problem
            )
        except Exception as exc:
            raise self._fail("get_run", exc) from None
        secret = self.settings.secret()
        uris = resource_uris(run.id)
        links = [
            ResourceLink(
                type="resource_link",
                uri=uris[kind],
                name=redact(name, secret),
                description=description,
                mime_type="application/json",
            )
            for kind, name, description in (
                (
                    "run",
                    f"run {run.id}",
                    "the run as JSON: every field, the whole trace, its reactions",
                ),
                ("trace", f"trace of run {run.id}", "the run's trace as JSON, every span uncut"),
            )
        ]
        # Shaped first (bounded), then redacted: a mask is never longer than what it hides.
        return CallToolResult(
            content=[TextContent(type="text", text=redact(view.text, secret)), *links],
            structured_content=self._redacted(view.structured),
        )

    async def summarize_runs(
        self,
        status: StatusArg = None,
        user_id: UserIdArg = None,
        user_email: UserEmailArg = None,
        sentiment: SentimentArg = None,
        workforce_id: WorkforceIdArg = None,
        workforce: WorkforceArg = None,
        group_id: GroupIdArg = None,
        rev: RevArg = None,
        since: SinceArg = None,
        until: UntilArg = None,
        metadata: MetadataArg = None,
        roots: RootsArg = None,
        sort_by: SortByArg = None,
        sort_order: SortOrderArg = None,
        bucket: BucketArg = None,
        max_runs: MaxRunsArg = DEFAULT_MAX_RUNS,
    ) -> SummarizeRunsOutput:
        """Exact rollups over every matching run (see the tool description)."""
        arguments = dict(locals())  # the tool's arguments, by name
        try:
            now = self.settings.current_time()
            email = _check_email(user_email)
            query = self._query(arguments, now)
            async with self.api() as client:
                query, resolution = await self._workforce(client, workforce, query)
                builder = SummaryBuilder(bucket=bucket, since=query.since, until=query.until)
                if resolution is not None and resolution.workforce_id is None:
                    summary, scanned = builder.result(), 0
                else:
                    if bucket is not None:
                        await self._check_series(client, query, bucket, now)
                    summary, scanned = await _summarize(client, query, email, max_runs, builder)
                unknown = await self._unknown(client, query, summary.total, True)
            result = self._summary_result(summary, scanned, max_runs, query, email, workforce)
            if resolution is not None:
                result["workforce_resolution"] = resolution.as_dict()
            if unknown:
                result["unknown_values"] = unknown
            result = self._redacted(result)
        except Exception as exc:
            raise self._fail("summarize_runs", exc) from None
        return CallToolResult(
            content=[TextContent(type="text", text=summary_text(result))],
            structured_content=result,
        )

    async def _check_series(
        self, client: AsyncTimbalClient, query: RunQuery, bucket: str, now: datetime
    ) -> None:
        """Refuse, before the scan, a series longer than an assistant should read: the
        window is since (or the earliest matching run) to until (or now)."""
        since = query.since
        if since is None:
            first = await client.earliest_run(query)
            if first is None:
                return
            since = first.created_at
        until = query.until or max(now, since + timedelta(milliseconds=1))
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

    def _summary_result(
        self,
        summary: RunSummary,
        scanned: int,
        max_runs: int,
        query: RunQuery,
        email: str | None,
        workforce: str | None = None,
    ) -> dict[str, Any]:
        capped, others = cap_breakdowns(summary.to_dict(), self.settings.summary_top_n)
        result: dict[str, Any] = {
            **capped,
            "max_runs": max_runs,
            "scanned": scanned,
            "applied_filters": self._applied(query, email, workforce),
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


async def _summarize(
    client: AsyncTimbalClient,
    query: RunQuery,
    email: str | None,
    max_runs: int,
    builder: SummaryBuilder | None = None,
) -> tuple[RunSummary, int]:
    """Stream up to ``max_runs`` matching runs into the core's :class:`SummaryBuilder`.

    Runs are read with ``async for`` on the tool's own task: when the call is cancelled,
    the requests in flight are cancelled with it and no other is made. Sorted by
    ``created_at`` (the default), they are fetched with ``parallel="auto"``, as fast as
    an export: as many requests in flight as throughput and the rate limit allow.
    """
    builder = builder or SummaryBuilder()
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
