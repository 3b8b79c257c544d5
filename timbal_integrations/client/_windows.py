"""Fetching fixed time windows concurrently, for :class:`AsyncTimbalClient`.

The windows of ``iter_window_pages`` and ``iter_window_pages_as_fetched``: one task per
window, no splitting. :func:`window_pages` hands pages back in window order (each window
buffering at most ``PARALLEL_BUFFER_PAGES`` pages), :func:`window_pages_as_fetched` as
they arrive (what an export that spools each window to its own file needs). The
listings that balance themselves, pieces of time split while they are fetched
(``list_runs(parallel=...)``, ``iter_pieces``), are ``_balance.py``'s.

Only the client's public paging (``iter_pages``, ``iter_raw_pages``) is used, so this
module holds no request logic. The page bounds hold across the whole listing: each
window keeps one :class:`~timbal_integrations.client._guard.PageGuard` for all its
pages, and every page of every window counts toward the listing's ``Bounds.max_pages``.
The synchronous client does not have its own copy: its windowed listings run these
functions on a private event loop (``_bridge.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import defaults
from ..query import RunQuery
from ._guard import PageGuard, listing_guard
from ._pieces import WindowPage

if TYPE_CHECKING:
    import asyncio

    from ._async import AsyncTimbalClient

__all__ = ["cancel", "pages_of", "window_pages", "window_pages_as_fetched"]

_Put = Callable[[WindowPage[Any] | BaseException | None], Awaitable[None]]


def pages_of(
    client: AsyncTimbalClient, window: RunQuery, token: str | None, raw: bool
) -> AsyncGenerator[Any]:
    """The client's pages of ``window`` from ``token`` on: raw or as models."""
    if raw:
        return client.iter_raw_pages(window, page_token=token)
    return client.iter_pages(window, page_token=token)


async def _window(
    client: AsyncTimbalClient,
    window: RunQuery,
    index: int,
    token: str | None,
    raw: bool,
    guard: PageGuard | None = None,
) -> AsyncGenerator[WindowPage[Any]]:
    """The pages of one window from ``token`` on, each with the token that fetched it
    (checked by ``guard``, when given: a window's guard in a listing of many)."""
    async for page in pages_of(client, window, token, raw):
        if guard is not None:
            guard.check(token, page.next_page_token, len(page.runs))
        yield WindowPage(index, page, token)
        token = page.next_page_token


async def _fill(
    client: AsyncTimbalClient,
    window: RunQuery,
    index: int,
    token: str | None,
    raw: bool,
    put: _Put,
    guard: PageGuard,
    slots: asyncio.Semaphore | None = None,
) -> None:
    """Page one window from ``token``, handing each page to ``put``, then None; a
    failure is handed over instead of raised. With ``slots``, one is held while paging
    (not while reporting the end or a failure)."""
    import asyncio

    try:
        async with slots if slots is not None else contextlib.nullcontext():
            async for item in _window(client, window, index, token, raw, guard):
                await put(item)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        await put(exc)
        return
    await put(None)


def _unwrap(item: WindowPage[Any] | BaseException | None) -> WindowPage[Any] | None:
    """What a filler handed over: a page, None (its window is done), or its failure,
    raised here in the consumer."""
    if isinstance(item, BaseException):
        raise item
    return item


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Stop the fillers (the consumer is done or failed) and wait for them to end."""
    import asyncio

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def window_pages(
    client: AsyncTimbalClient,
    windows: Sequence[RunQuery],
    *,
    start_window: int = 0,
    start_token: str | None = None,
    raw: bool = False,
) -> AsyncGenerator[WindowPage[Any]]:
    """Pages of each window from ``start_window`` (at ``start_token``), in window order.

    See :meth:`AsyncTimbalClient.iter_window_pages`.
    """
    import asyncio

    todo = list(range(start_window, len(windows)))
    if not todo:
        return
    if len(todo) == 1:
        async for page in _window(client, windows[todo[0]], todo[0], start_token, raw):
            yield page
        return
    buffers: dict[int, asyncio.Queue[WindowPage[Any] | BaseException | None]] = {
        index: asyncio.Queue(maxsize=defaults.PARALLEL_BUFFER_PAGES) for index in todo
    }
    guard = listing_guard(client)
    tasks = [
        asyncio.create_task(
            _fill(
                client,
                windows[index],
                index,
                start_token if index == start_window else None,
                raw,
                buffers[index].put,
                guard.piece(),
            )
        )
        for index in todo
    ]
    try:
        for index in todo:
            while (item := _unwrap(await buffers[index].get())) is not None:
                yield item
    finally:
        await cancel(tasks)


async def window_pages_as_fetched(
    client: AsyncTimbalClient,
    windows: Sequence[RunQuery],
    *,
    positions: Mapping[int, str | None] | None = None,
    raw: bool = False,
    concurrency: int | None = None,
) -> AsyncGenerator[WindowPage[Any]]:
    """Pages of the windows of ``positions`` (all by default), as they arrive.

    See :meth:`AsyncTimbalClient.iter_window_pages_as_fetched`.
    """
    import asyncio

    todo = dict(positions) if positions is not None else dict.fromkeys(range(len(windows)))
    out: asyncio.Queue[WindowPage[Any] | BaseException | None] = asyncio.Queue(
        maxsize=max(2, len(todo) * 2)
    )
    slots = asyncio.Semaphore(concurrency or max(1, len(todo)))
    guard = listing_guard(client)
    # Windows start in order, so with fewer fetchers than windows the earliest go first.
    tasks = [
        asyncio.create_task(
            _fill(client, windows[index], index, token, raw, out.put, guard.piece(), slots)
        )
        for index, token in sorted(todo.items())
    ]
    remaining = len(tasks)
    try:
        while remaining:
            item = _unwrap(await out.get())
            if item is None:
                remaining -= 1  # a window is done
            else:
                yield item
    finally:
        await cancel(tasks)
