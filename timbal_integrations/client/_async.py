"""A client of the runs API: typed, paginated and retried.

``_async.py`` is the source of truth of both clients: ``_sync.py`` is generated from it
by ``scripts/unasync.py``, and ``make lint`` fails when the generated file is stale.
Everything that is not I/O (request shaping, retry decisions, response checks) lives in
``_core.py`` and the modules it names, the read-only properties in ``_base.py``;
fetching concurrently lives in ``_balance.py`` (pieces that split) and ``_windows.py``
(fixed windows), which the synchronous client runs through ``_bridge.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from .. import defaults
from ..config import ClientConfig, Secret, resolve_config
from ..limits import AUTO, Bounds, Parallel, check_limit, check_parallel
from ..query import RunQuery
from ..retry import OnRetry, RetryPolicy, is_testing
from ._balance import piece_pages
from ._base import ClientBase
from ._body import Reply
from ._checks import build_query, check_page_token, check_run_id, with_token
from ._core import DEFAULT_TIMEOUT, TRANSPORT_ERRORS, Core, logger
from ._deadline import deadline, install
from ._pieces import (
    PageT,
    Piece,
    PieceSplit,
    WindowPage,
    check_window_sort,
    earliest_query,
    latest_query,
    pieces_of,
    window_bounds,
    windows_for,
)
from ._shards import async_wire, ssl_context
from ._windows import window_pages, window_pages_as_fetched

if TYPE_CHECKING:  # loaded when first needed: an export never builds these models
    from .._pages import RawPage
    from ..models import Reaction, ReactionsPage, Run, RunDetail, RunsPage

__all__ = ["AsyncTimbalClient"]


class AsyncTimbalClient(ClientBase):
    """A client of Timbal's runs API (``async with AsyncTimbalClient() as client: ...``).

    Arguments left out come from ``TIMBAL_API_KEY``, ``TIMBAL_API_HOST``,
    ``TIMBAL_ORG_ID`` and ``TIMBAL_PROJECT_ID`` (or ``env`` instead of the process
    environment); :meth:`from_config` takes an already resolved configuration.
    ``timeout`` is the total deadline of each request, in seconds: connecting, sending
    and every read of the response, however slowly the server sends it (each phase is
    bounded by it too; an ``httpx.Timeout`` sets the phases apart, and the total is then
    its longest phase). ``bounds`` (a :class:`~timbal_integrations.limits.Bounds`) caps
    what the client accepts from the server: the size of a response, the length of a
    page token, empty and total pages of a listing. ``max_retries`` and ``retry_policy``
    say how failures (429, 5xx, timeouts, dropped connections) are retried, and
    ``on_retry`` is called with a :class:`~timbal_integrations.retry.RetryDetails`
    before each retry. ``transport`` injects an httpx transport (``httpx.MockTransport``
    in tests; the deadline then holds between reads of the body). Use as a context
    manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        api_key: str | Secret | None = None,
        *,
        host: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        on_retry: OnRetry | None = None,
        max_connections: int = defaults.MAX_CONNECTIONS,
        bounds: Bounds | None = None,
    ) -> None:
        config = resolve_config(api_key, host=host, org_id=org_id, project_id=project_id, env=env)
        self._setup(
            config, timeout, max_retries, retry_policy, transport, on_retry, max_connections, bounds
        )

    @classmethod
    def from_config(
        cls,
        config: ClientConfig,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_retry: OnRetry | None = None,
        max_connections: int = defaults.MAX_CONNECTIONS,
        bounds: Bounds | None = None,
    ) -> Self:
        """A client of an already resolved configuration (no environment is read).

        What front ends use once they have turned their own settings (an Airflow
        connection, the MCP server's settings) into a :class:`ClientConfig`.
        """
        client = cls.__new__(cls)
        client._setup(
            config, timeout, max_retries, retry_policy, transport, on_retry, max_connections, bounds
        )
        return client

    def _setup(
        self,
        config: ClientConfig,
        timeout: float | httpx.Timeout,
        max_retries: int | None,
        retry_policy: RetryPolicy | None,
        transport: httpx.AsyncBaseTransport | None,
        on_retry: OnRetry | None,
        max_connections: int,
        bounds: Bounds | None,
    ) -> None:
        self._core = Core(config, timeout, max_retries, retry_policy, on_retry, bounds)
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=self._core.headers(),
            timeout=self._core.timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections),
            verify=ssl_context(),
        )
        self._wire, self._shards = async_wire(
            self._http, config.base_url, transport, max_connections
        )
        install(self._wire)  # every read keeps the request's total deadline

    async def _send(self, request: httpx.Request, path: str) -> Reply:
        """Send through the chosen transport (see ``transport_for``) and read the body,
        within the request's total deadline and the response size cap."""
        if self._http.is_closed:
            raise RuntimeError("this AsyncTimbalClient is closed")
        with deadline(self._core.total) as at:
            response = await self._wire.handle_async_request(request)
            try:
                body = self._core.body(response, path, at)
                if response.is_stream_consumed:  # built in memory by an injected transport
                    body.feed(response.content)
                else:
                    async for chunk in response.aiter_raw():
                        body.feed(chunk)
                content = body.finish()
            finally:
                await response.aclose()
        logger.debug("GET %s answered %d", request.url.path, response.status_code)
        return Reply(response.status_code, response.headers, content)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pools."""
        await self._http.aclose()
        if self._shards is not None:
            await self._shards.aclose()

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, run_id: str | None = None
    ) -> Reply:
        core = self._core
        attempt = 0
        url = core.url(path, params)
        while True:
            response: Reply | None = None
            error: Exception | None = None
            wait = core.pacer.reserve()  # within the server's rate limit, even in tests
            if wait > 0:
                import asyncio  # only pacing and retries need it

                await asyncio.sleep(wait)
            started = monotonic()  # the total deadline starts after the pacer's wait
            core.requests_made += 1
            try:
                response = await self._send(core.request(self._http, url), path)
            except TRANSPORT_ERRORS as exc:
                error = exc
            core.observe(response)
            delay = core.retry_delay(response, error, attempt, path)
            if delay is None:
                if error is not None:
                    ran_out = core.ran_out(started)
                    raise core.transport_error(error, path, attempt + 1, ran_out) from None
                assert response is not None
                return core.handle(response, path, run_id)
            if not is_testing():
                import asyncio  # only retries need it

                await asyncio.sleep(delay)
            attempt += 1

    async def get_runs_page(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> RunsPage:
        """Fetch one page of runs (exactly one request, plus retries)."""
        params = with_token(build_query(query, filters).to_params(), check_page_token(page_token))
        path = self._core.config.runs_path
        return self._core.page(await self._get(path, params), path)

    def iter_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> AsyncGenerator[RunsPage]:
        """Iterate over pages lazily, starting at ``page_token`` (the first page if None)."""
        token = check_page_token(page_token)
        return self._pages(build_query(query, filters), token, self._core.page)

    def iter_raw_pages(
        self, query: RunQuery | None = None, *, page_token: str | None = None, **filters: Any
    ) -> AsyncGenerator[RawPage]:
        """Like :meth:`iter_pages`, but each run stays the dict the server sent (checked
        against the schema): the fast path of exports."""
        token = check_page_token(page_token)
        return self._pages(build_query(query, filters), token, self._core.raw_page)

    async def _pages(
        self,
        q: RunQuery,
        page_token: str | None,
        parse: Callable[[Reply, str], PageT],
    ) -> AsyncGenerator[PageT]:
        core = self._core
        path = core.config.runs_path
        base = q.to_params()
        guard = core.page_guard()
        token = page_token
        while True:
            page = parse(await self._get(path, with_token(base, token)), path)
            guard.check(token, page.next_page_token, len(page.runs))
            yield page
            if page.next_page_token is None:
                return
            token = page.next_page_token

    def list_runs(
        self,
        query: RunQuery | None = None,
        *,
        limit: int | None = None,
        parallel: Parallel | None = None,
        **filters: Any,
    ) -> AsyncGenerator[Run]:
        """Every matching run across pages, lazily; at most ``limit`` runs.

        ``parallel=N`` keeps N requests in flight over pieces of ``[since, until)`` that
        split as they are fetched, so that uneven history keeps every request busy;
        ``parallel="auto"`` picks N itself, within the API's rate limit (sort by
        created_at only). Runs come once each, in the listing's order. Filters are
        validated here, before the first run is asked for.
        """
        q = build_query(query, filters)
        check_limit(limit)
        n = check_parallel(parallel)
        if n != 1:
            check_window_sort(q)
        return self._list(q, limit, n)

    async def _list(
        self, q: RunQuery, limit: int | None, parallel: Parallel
    ) -> AsyncGenerator[Run]:
        if limit == 0:
            return
        count = 0
        pages = self.iter_pages(q) if parallel == 1 else self._ordered_pages(q, parallel)
        async with aclosing(pages):
            async for page in pages:
                for run in page.runs:
                    yield run
                    count += 1
                    if limit is not None and count >= limit:
                        return

    async def _ordered_pages(self, q: RunQuery, parallel: Parallel) -> AsyncGenerator[RunsPage]:
        # One piece: the workers cut it next to the consumer once a page tells its size.
        pieces = await self.resolve_pieces(q, 1)
        items = self.iter_pieces(q, pieces, parallel=parallel, ordered=True)
        async with aclosing(items):
            async for item in items:
                if isinstance(item, WindowPage):
                    yield item.page

    async def resolve_windows(
        self, query: RunQuery | None = None, parallel: Parallel = 1
    ) -> list[RunQuery]:
        """Cut the query's ``[since, until)`` into ``parallel`` windows, in yield order
        (``"auto"``: as many as an automatic listing starts with).

        A missing ``since`` is found with one ascending request for the earliest matching
        run, a missing ``until`` with one descending request for the latest. Newest window
        first when sorting descending. An empty list means nothing can match.
        """
        q = query if query is not None else RunQuery()
        n = check_parallel(parallel)
        check_window_sort(q)
        first = await self.earliest_run(q) if q.since is None else None
        last = None
        if q.until is None:
            last = await self._first_run(latest_query(q))
        return windows_for(q, first, last, defaults.AUTO_PARALLEL_INITIAL if n == AUTO else n)

    async def resolve_pieces(
        self, query: RunQuery | None = None, parallel: Parallel = AUTO
    ) -> list[Piece]:
        """The pieces a parallel listing of ``query`` starts from: its windows
        (:meth:`resolve_windows`), nothing fetched yet, ids from 0."""
        windows = await self.resolve_windows(query, parallel)
        return pieces_of([window_bounds(w) for w in windows])

    def iter_pieces(
        self,
        query: RunQuery,
        pieces: Sequence[Piece],
        *,
        parallel: Parallel = AUTO,
        raw: bool = False,
        ordered: bool = False,
        next_id: int | None = None,
    ) -> AsyncGenerator[WindowPage[Any] | PieceSplit]:
        """The pages of ``pieces`` of ``query``, fetched by workers that balance the work.

        ``parallel`` workers (``"auto"``: as many as throughput and the rate limit allow,
        see :class:`~timbal_integrations.pacing.Concurrency`) page the pieces; a worker
        that runs out splits the largest unfetched range left and takes half, until
        pieces are about a page long. Each page comes as a :class:`WindowPage` whose
        ``window`` is its piece's id (cut before the piece's end, where a split put it;
        no ``next_page_token`` once the piece is done). With ``ordered=True`` pages come
        in the listing's order (bounded buffers hold what is fetched ahead); otherwise
        as they arrive, each split announced by a :class:`PieceSplit` before any page of
        the new piece, and before any page of the old one fetched after it. New pieces
        get ids from ``next_id`` (default: one more than the largest given). Every run
        is yielded once; closing the iterator stops every request.
        """
        n = check_parallel(parallel)
        check_window_sort(query)
        return piece_pages(
            self, query, pieces, parallel=n, raw=raw, ordered=ordered, next_id=next_id
        )

    def iter_window_pages(
        self,
        windows: Sequence[RunQuery],
        *,
        start_window: int = 0,
        start_token: str | None = None,
        raw: bool = False,
    ) -> AsyncGenerator[WindowPage[Any]]:
        """Pages of each window, windows one after another in the given order, fetched
        concurrently.

        Starts at window ``start_window`` with ``start_token`` (to resume). Every window
        from ``start_window`` on is paged concurrently into a bounded buffer (so at most
        a few pages per window are held in memory), and every run is yielded once, in
        window order. ``raw=True`` gives :class:`RawPage` pages.
        """
        return window_pages(
            self, windows, start_window=start_window, start_token=start_token, raw=raw
        )

    def iter_window_pages_as_fetched(
        self,
        windows: Sequence[RunQuery],
        *,
        positions: Mapping[int, str | None] | None = None,
        raw: bool = False,
        concurrency: int | None = None,
    ) -> AsyncGenerator[WindowPage[Any]]:
        """Pages of all windows fetched concurrently, each yielded as soon as it arrives.

        Pages of one window come in their order; pages of different windows interleave.
        ``positions`` maps the windows to fetch to the page token to start from (None for
        a window's first page); by default every window from its start. This is what an
        export that spools each window to its own file needs: full concurrency, nothing
        held back in memory waiting for an earlier window. ``concurrency`` bounds how many
        windows are fetched at once (default: all); more windows than fetchers balances
        windows that hold more runs than others.
        """
        return window_pages_as_fetched(
            self, windows, positions=positions, raw=raw, concurrency=concurrency
        )

    async def get_run(self, run_id: str) -> RunDetail:
        """One run by id or idempotency key."""
        checked = check_run_id(run_id)
        path = self._core.run_path(checked)
        return self._core.detail(await self._get(path, run_id=checked), path)

    async def get_reactions_page(
        self, run_id: str, *, page_token: str | None = None
    ) -> ReactionsPage:
        """One page of a run's reactions, newest first (exactly one request, plus retries).

        ``run_id`` is a run id or an idempotency key; an unknown run raises
        :class:`~timbal_integrations.errors.NotFoundError` (with ``run_id`` set), as
        :meth:`get_run` does.
        """
        checked = check_run_id(run_id)
        token = check_page_token(page_token)
        path = self._core.reactions_path(checked)
        params = with_token(None, token)
        return self._core.reactions(await self._get(path, params, run_id=checked), path)

    def list_reactions(self, run_id: str, *, limit: int | None = None) -> AsyncGenerator[Reaction]:
        """Every reaction to a run, newest first, across pages, lazily; at most ``limit``.

        The run id (or idempotency key) and ``limit`` are checked here, before the first
        reaction is asked for; no request is made beyond what ``limit`` needs.
        """
        checked = check_run_id(run_id)
        check_limit(limit)
        return self._reactions(checked, limit)

    async def _reactions(self, run_id: str, limit: int | None) -> AsyncGenerator[Reaction]:
        if limit == 0:
            return
        core = self._core
        path = core.reactions_path(run_id)
        guard = core.page_guard(path)  # the same page bounds as a listing of runs
        token: str | None = None
        count = 0
        while True:
            page = core.reactions(await self._get(path, with_token(None, token), run_id), path)
            guard.check(token, page.next_page_token, len(page.reactions))
            for reaction in page.reactions:
                yield reaction
                count += 1
                if limit is not None and count >= limit:
                    return
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def earliest_run(self, query: RunQuery | None = None, **filters: Any) -> Run | None:
        """The oldest run matching the filters (one ascending request; more only while
        the server answers empty pages that say there is more), or None."""
        return await self._first_run(earliest_query(build_query(query, filters)))

    async def _first_run(self, q: RunQuery) -> Run | None:
        """The first run of ``q``'s listing, following page tokens past empty pages
        (within the client's :class:`~timbal_integrations.limits.Bounds`), or None."""
        async with aclosing(self.iter_pages(q)) as pages:
            async for page in pages:
                if page.runs:
                    return page.runs[0]
        return None
