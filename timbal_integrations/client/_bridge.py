"""Windowed listings of :class:`TimbalClient`: the async client's, run on a private loop.

Why this part is bridged rather than generated: everything else in ``_sync.py`` is
``_async.py`` with ``async`` and ``await`` taken out, because fetching one page after
another is the same loop either way. Fetching many windows *at once* is not: without an
event loop, a generated copy would need threads, queues and cancellation of its own — a
second implementation of ``_windows.py`` to keep in step. So the synchronous client
runs the one implementation: an :class:`AsyncTimbalClient` built ``from_config`` with
this client's settings, its public ``iter_window_pages`` or
``iter_window_pages_as_fetched``, on an event loop in a helper thread, handing pages
over a bounded queue. Nothing here calls a private member of ``AsyncTimbalClient``.

A single window, or a transport that only speaks sync (an ``httpx.BaseTransport`` that
is not also an ``AsyncBaseTransport``), is paged in the caller's thread with the client's
own ``iter_pages``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from .. import defaults
from ..limits import Parallel
from ..query import RunQuery
from ._guard import listing_guard
from ._pieces import Piece, PieceSplit, WindowPage, take_page, window_query

if TYPE_CHECKING:
    from ._async import AsyncTimbalClient
    from ._sync import TimbalClient

__all__ = ["piece_pages", "window_pages", "window_pages_as_fetched"]

_MakePages = Callable[["AsyncTimbalClient"], AsyncGenerator[Any]]


def window_pages(
    client: TimbalClient,
    windows: Sequence[RunQuery],
    *,
    start_window: int = 0,
    start_token: str | None = None,
    raw: bool = False,
) -> Generator[WindowPage[Any]]:
    """Pages of each window from ``start_window`` (at ``start_token``), in window order.

    See :meth:`TimbalClient.iter_window_pages`.
    """
    starts: dict[int, str | None] = dict.fromkeys(range(start_window, len(windows)))
    if start_window < len(windows):
        starts[start_window] = start_token
    yield from _paged_windows(
        client,
        windows,
        starts,
        raw,
        lambda bridged: bridged.iter_window_pages(
            windows, start_window=start_window, start_token=start_token, raw=raw
        ),
        len(windows) * 2,
    )


def window_pages_as_fetched(
    client: TimbalClient,
    windows: Sequence[RunQuery],
    *,
    positions: Mapping[int, str | None] | None = None,
    raw: bool = False,
    concurrency: int | None = None,
) -> Generator[WindowPage[Any]]:
    """Pages of the windows of ``positions`` (all by default), as they arrive.

    See :meth:`TimbalClient.iter_window_pages_as_fetched`.
    """
    todo = dict(positions) if positions is not None else dict.fromkeys(range(len(windows)))
    yield from _paged_windows(
        client,
        windows,
        todo,
        raw,
        lambda bridged: bridged.iter_window_pages_as_fetched(
            windows, positions=todo, raw=raw, concurrency=concurrency
        ),
        len(todo) * 2,
    )


def _paged_windows(
    client: TimbalClient,
    windows: Sequence[RunQuery],
    starts: Mapping[int, str | None],
    raw: bool,
    make: _MakePages,
    buffer: int,
) -> Iterator[WindowPage[Any]]:
    """The windows of ``starts`` (each from its page token): bridged (``make``, pages
    crossing a queue of ``buffer``), or one after another in this thread when there is
    only one or the transport only speaks sync."""
    if len(starts) <= 1 or _sync_only(client):
        return _in_turn(client, windows, starts, raw)
    return _bridged(client, make, buffer)


def piece_pages(
    client: TimbalClient,
    query: RunQuery,
    pieces: Sequence[Piece],
    *,
    parallel: Parallel,
    raw: bool = False,
    ordered: bool = False,
    next_id: int | None = None,
) -> Generator[WindowPage[Any] | PieceSplit]:
    """The pages of ``pieces``, balanced across workers.

    See :meth:`TimbalClient.iter_pieces`.
    """
    if parallel == 1 or len(pieces) == 0 or _sync_only(client):
        yield from _pieces_in_turn(client, query, pieces, raw)
        return
    yield from _bridged(
        client,
        lambda bridged: bridged.iter_pieces(
            query, pieces, parallel=parallel, raw=raw, ordered=ordered, next_id=next_id
        ),
        2 * defaults.PARALLEL_BUFFER_PAGES,
    )


def _pieces_in_turn(
    client: TimbalClient, query: RunQuery, pieces: Sequence[Piece], raw: bool
) -> Iterator[WindowPage[Any]]:
    """Page the pieces one after another in this thread, in yield order, unsplit."""
    descending = query.effective_sort_order == "desc"
    listing = listing_guard(client)
    for piece in sorted(pieces, key=lambda p: -p.since_ms if descending else p.since_ms):
        window = window_query(query, piece.window_since_ms, piece.window_until_ms)
        token = piece.token
        pages = _pages_of(client, window, token, raw)
        stop = piece.since_ms if descending else piece.until_ms
        guard = listing.piece()
        with contextlib.closing(pages):
            for fetched in pages:
                page, _ = take_page(fetched, stop, descending)
                guard.check(token, page.next_page_token, len(fetched.runs))
                yield WindowPage(piece.id, page, token)
                if page.next_page_token is None:
                    break
                token = page.next_page_token


def _pages_of(
    client: TimbalClient, window: RunQuery, token: str | None, raw: bool
) -> Generator[Any]:
    """The client's pages of ``window`` from ``token`` on: raw or as models."""
    if raw:
        return client.iter_raw_pages(window, page_token=token)
    return client.iter_pages(window, page_token=token)


def _sync_only(client: TimbalClient) -> bool:
    """True when the injected transport cannot serve an asynchronous client."""
    transport = client._transport  # the sync client's own (this module is part of it)
    return transport is not None and not isinstance(transport, httpx.AsyncBaseTransport)


def _in_turn(
    client: TimbalClient, windows: Sequence[RunQuery], starts: Mapping[int, str | None], raw: bool
) -> Iterator[WindowPage[Any]]:
    """Page the windows of ``starts`` one after another, in this thread; ``starts`` maps
    each window to the page token it starts from. Every page counts toward the
    listing's page bounds (each window keeps its own loop and empty-page checks)."""
    listing = listing_guard(client)
    for index, token in sorted(starts.items()):
        guard = listing.piece()
        for page in _pages_of(client, windows[index], token, raw):
            guard.check(token, page.next_page_token, len(page.runs))
            yield WindowPage(index, page, token)
            token = page.next_page_token


def _bridged(client: TimbalClient, make: _MakePages, buffer: int) -> Iterator[Any]:
    """Run an async page listing on a private event loop in a helper thread.

    Pages cross a queue of ``buffer`` items; closing this generator (or an error on
    either side) stops the helper, whose client is closed before the thread ends.
    Requests the helper made are added to ``client.requests_made``.
    """
    import asyncio  # only parallel paging needs it (~40 ms to import)

    from ._async import AsyncTimbalClient

    out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=buffer)
    stop = threading.Event()
    transport = client._transport
    async_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None

    async def produce() -> None:
        async with AsyncTimbalClient.from_config(
            client.config,
            timeout=client.timeout,
            retry_policy=client.retry_policy,
            bounds=client.bounds,
            transport=async_transport,
            on_retry=client.on_retry,
        ) as bridged:
            try:
                pages = make(bridged)
                async for item in pages:
                    while not stop.is_set():
                        try:
                            out.put(("page", item), timeout=0.05)
                            break
                        except queue.Full:
                            await asyncio.sleep(0)
                    if stop.is_set():
                        aclose = getattr(pages, "aclose", None)
                        if aclose is not None:
                            await aclose()
                        return
            finally:
                client._core.requests_made += bridged.requests_made

    def worker() -> None:
        try:
            asyncio.run(produce())
        except BaseException as exc:  # handed to the consumer thread
            out.put(("error", exc))
        else:
            out.put(("done", None))

    thread = threading.Thread(target=worker, name="timbal-parallel", daemon=True)
    thread.start()
    try:
        while True:
            kind, payload = out.get()
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield payload
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
        thread.join()
