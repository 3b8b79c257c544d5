"""The tools' home: :class:`TimbalTools` binds the three tools to one
:class:`~mcp_server.settings.ServerSettings` and one shared API client.

Each tool method is the tool as the SDK publishes it (its signature is the input schema,
see :mod:`mcp_server.args`) and does three things: turn its arguments into a
:class:`~mcp_server.tools.scope.Scope` (or a run id), call its module
(:mod:`.list_runs`, :mod:`.get_run`, :mod:`.summarize_runs`) with the shared client, and
turn any failure into a tool error (:func:`mcp_server.failures.tool_failure`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Unpack

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from timbal_integrations.config import ClientConfig

from ..args import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_RUNS,
    BucketArg,
    CursorArg,
    DetailArg,
    FieldsArg,
    GetRunOutput,
    LimitArg,
    ListRunsOutput,
    MaxRunsArg,
    RunFilters,
    RunIdArg,
    SummarizeRunsOutput,
    takes_filters,
)
from ..failures import tool_failure
from ..readable import summary_text
from ..recent import RecentValues
from ..settings import ServerSettings
from .get_run import read_run, run_result
from .list_runs import list_result, read_page
from .scope import Scope
from .summarize_runs import read_summary, summary_result

if TYPE_CHECKING:  # the client (and httpx) load with the first tool call, not at start-up
    from timbal_integrations.client import AsyncTimbalClient

__all__ = ["TimbalTools"]


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

    @contextlib.asynccontextmanager
    async def _scoped(self, filters: RunFilters) -> AsyncIterator[tuple[AsyncTimbalClient, Scope]]:
        """The API client and the scope of ``filters`` (checked before the client is
        made, its workforce name resolved)."""
        scope = Scope.of(filters, self.settings.current_time())
        async with self.api() as client:
            yield client, await scope.resolve(client, self.recent)

    @takes_filters
    async def list_runs(
        self,
        *,
        fields: FieldsArg = None,
        limit: LimitArg = DEFAULT_LIMIT,
        cursor: CursorArg = None,
        **filters: Unpack[RunFilters],
    ) -> ListRunsOutput:
        """List runs matching filters, one page at a time (see the tool description)."""
        settings = self.settings
        try:
            async with self._scoped(filters) as (client, scope):
                scope, page = await read_page(client, scope, cursor, limit, settings.max_email_scan)
                first = cursor is None
                unknown = await scope.unknown_values(client, self.recent, len(page.runs), first)
            return list_result(scope, page, fields, unknown, settings.secret())
        except Exception as exc:
            raise tool_failure("list_runs", exc, settings) from None

    async def get_run(self, run_id: RunIdArg, detail: DetailArg = "summary") -> GetRunOutput:
        """One run by id or idempotency key (see the tool description)."""
        try:
            async with self.api() as client:
                found, view = await read_run(client, run_id, detail, self.settings)
        except Exception as exc:
            raise tool_failure("get_run", exc, self.settings) from None
        return run_result(found, view, self.settings.secret())

    @takes_filters
    async def summarize_runs(
        self,
        *,
        bucket: BucketArg = None,
        max_runs: MaxRunsArg = DEFAULT_MAX_RUNS,
        **filters: Unpack[RunFilters],
    ) -> SummarizeRunsOutput:
        """Exact rollups over every matching run (see the tool description)."""
        settings = self.settings
        try:
            async with self._scoped(filters) as (client, scope):
                summary, scanned = await read_summary(client, scope, bucket, max_runs)
                unknown = await scope.unknown_values(client, self.recent, summary.total, True)
            result = summary_result(summary, scanned, max_runs, scope, unknown, settings)
        except Exception as exc:
            raise tool_failure("summarize_runs", exc, settings) from None
        return CallToolResult(
            content=[TextContent(type="text", text=summary_text(result))],
            structured_content=result,
        )
