"""A parallel listing that balances itself, for :class:`AsyncTimbalClient`.

A long listing sorted by ``created_at`` is cut into pieces of time, paged concurrently
by workers (:func:`piece_pages`, what ``list_runs(parallel=...)``, ``iter_pieces``,
exports and summaries use). The work balances itself: when a worker runs out, it splits
the largest unfetched range left (see ``_pieces.py`` for why that is exact at
millisecond boundaries) and takes half, until pieces are about a page long; a listing in
yield order splits next to its consumer instead, so what is fetched ahead fits bounded
buffers. How many workers run is a :class:`~timbal_integrations.pacing.Concurrency`: a
fixed number, or ``auto``. Pages are handed back in yield order (each piece buffered,
all buffers bounded together) or as they arrive, with the splits, for an export that
spools each piece to a file.

Only the client's public paging (``iter_pages``, ``iter_raw_pages``) is used. Each
piece keeps one :class:`~timbal_integrations.client._guard.PageGuard` for all its pages
(while it passes from worker to worker too), and every page of every piece counts toward
the listing's ``Bounds.max_pages``. A worker stops after any page once the listing has
failed or is closing. The synchronous client runs :func:`piece_pages` on a private event
loop (``_bridge.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Final

from .. import defaults
from ..limits import AUTO, Parallel
from ..pacing import Concurrency
from ..query import RunQuery
from ._core import logger
from ._guard import PageGuard, listing_guard
from ._pieces import Piece, PieceSplit, WindowPage, created_ms, split_point, take_page, window_query
from ._windows import cancel, pages_of

if TYPE_CHECKING:
    from ._async import AsyncTimbalClient

__all__ = ["piece_pages"]


_CHUNK_PAGES: Final = 8
"""Pages of the pieces an ordered listing cuts next to its consumer (each split costs
about half a page fetched twice, so 8 pages cost ~6% more requests)."""


class _Live:
    """A piece being listed: its range, where it stands, and (ordered) its buffer."""

    __slots__ = (
        "buffer",
        "closed",
        "density",
        "done",
        "extent",
        "guard",
        "hi",
        "id",
        "lo",
        "next",
        "origin",
        "owned",
        "reached",
        "resumed",
        "runs_seen",
        "token",
        "whi",
        "wlo",
    )

    def __init__(
        self, piece: Piece, descending: bool, guard: PageGuard, density: float | None = None
    ) -> None:
        self.id = piece.id
        self.guard = guard  # the piece's page bounds, whichever worker pages it
        self.lo, self.hi = piece.since_ms, piece.until_ms
        self.wlo, self.whi = piece.window_since_ms, piece.window_until_ms
        self.token = piece.token
        self.reached: int | None = None  # created_at (ms) of the last run fetched
        # Resumed part-way (a token from an earlier listing): what it fetched before is
        # not known here until a page from that token says where it stands.
        self.resumed = piece.token is not None
        self.density = density  # runs per millisecond met so far (or its parent's)
        self.origin = piece.until_ms - 1 if descending else piece.since_ms  # where it starts
        self.runs_seen = 0
        self.extent = 0  # milliseconds crossed from its origin
        self.done = False  # its last page has arrived
        self.closed = False  # ... and has been handed on
        self.owned = False
        self.buffer: deque[WindowPage[Any]] = deque()
        self.next: _Live | None = None  # ordered: the piece yielded after this one

    def unfetched(self, descending: bool) -> tuple[int, int]:
        """The time range this piece has not fetched yet, ``[lo, hi)``: empty for a
        resumed piece until its first run arrives (splitting it before then could hand
        out runs an earlier listing already fetched)."""
        if self.reached is None:
            return (self.lo, self.lo) if self.resumed else (self.lo, self.hi)
        return (self.lo, self.reached + 1) if descending else (self.reached, self.hi)


class _Listing:
    """One parallel listing over pieces: its workers, its pieces, what it hands on."""

    def __init__(
        self,
        client: AsyncTimbalClient,
        query: RunQuery,
        pieces: Sequence[Piece],
        *,
        raw: bool,
        ordered: bool,
        concurrency: Concurrency,
        next_id: int | None,
    ) -> None:
        import asyncio

        self.client = client
        self.query = query
        self.raw = raw
        self.ordered = ordered
        self.concurrency = concurrency
        self.descending = query.effective_sort_order == "desc"
        self.cv = asyncio.Condition()
        self.guard = listing_guard(client)
        live = [_Live(piece, self.descending, self.guard.piece()) for piece in pieces]
        live.sort(key=lambda p: -p.lo if self.descending else p.lo)  # yield order
        for before, after in itertools.pairwise(live):
            before.next = after
        self.head: _Live | None = live[0] if live else None
        self.pending: deque[_Live] = deque(live)
        self.live: dict[int, _Live] = {p.id: p for p in live}
        self.open = len(live)
        ids = [p.id for p in pieces]
        self.next_id = next_id if next_id is not None else max(ids, default=-1) + 1
        self.tasks: set[asyncio.Task[None]] = set()
        self.active = 0
        self.failure: BaseException | None = None
        self.page_size = 0
        self.seen_runs = 0
        self.seen_ms = 0
        self.buffered = 0
        self.events: deque[WindowPage[Any] | PieceSplit] = deque()
        self.queued = 0
        self.splits = 0
        self.stopping = False

    # -- workers

    def _spawn(self, piece: _Live) -> None:
        import asyncio

        piece.owned = True
        self.active += 1
        task = asyncio.create_task(self._work(piece))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _staff(self) -> None:
        """Start workers while fewer are at work than wanted and there is work."""
        if self.failure is not None or self.stopping:
            return
        head = self.head
        if self.ordered and head is not None and not head.owned and not head.done:
            with contextlib.suppress(ValueError):
                self.pending.remove(head)
            self._spawn(head)  # the consumer waits for it: never left unfetched
        while self.active < self.concurrency.target:
            piece = self._take()
            if piece is None:
                return
            self._spawn(piece)

    def _take(self) -> _Live | None:
        """Work for a free worker: an unowned piece, else half of the largest unfetched
        range (None when every piece is down to about a page). The piece returned is
        owned by the caller."""
        piece = self._find()
        if piece is not None:
            piece.owned = True
        return piece

    def _find(self) -> _Live | None:
        while self.pending:
            piece = self.pending.popleft()
            if not piece.done:
                return piece
        return self._front_chunk() if self.ordered else self._halve_largest()

    def _density(self, piece: _Live) -> float | None:
        """Runs per millisecond: the piece's own once it has met two pages of runs, else
        the listing's so far (a single page, all in one millisecond, would look
        boundless, and cut pieces too small to hold a run)."""
        if piece.runs_seen >= 2 * self.page_size and piece.density:
            return piece.density
        return self.seen_runs / self.seen_ms if self.seen_ms else piece.density

    def _front_chunk(self) -> _Live | None:
        """Ordered: the first piece (in yield order) with more than two chunks of
        ``_CHUNK_PAGES`` pages left keeps one chunk; the new piece takes the rest.

        Work stays next to the consumer, so what is fetched ahead of it fits in bounded
        buffers: halving the largest range would send workers far ahead, to wait there.
        """
        if not self.page_size:
            return None  # nothing fetched yet: the first page tells the size of a page
        left = 0.0
        for live in self.live.values():
            lo, hi = live.unfetched(self.descending)
            left += (hi - lo) * (self._density(live) or 0.0) / self.page_size
        # Near the end, smaller chunks, so that every worker still has one.
        pages = max(1.0, min(_CHUNK_PAGES, left / self.concurrency.target))
        piece: _Live | None = self.head
        while piece is not None:
            density = self._density(piece)
            if piece.owned and not piece.done and density:
                lo, hi = piece.unfetched(self.descending)
                chunk = max(1, math.ceil(pages * self.page_size / density))
                if hi - lo > 2 * chunk:
                    return self._split(piece, hi - chunk if self.descending else lo + chunk)
            piece = piece.next
        return None

    def _halve_largest(self) -> _Live | None:
        """As fetched: split the largest unfetched range in two (by the runs it is
        expected to hold), unless every one is down to about two pages."""
        best: _Live | None = None
        best_size = 0.0
        for piece in self.live.values():
            if not piece.owned or piece.done:
                continue
            lo, hi = piece.unfetched(self.descending)
            if hi - lo < 2:
                continue
            size = (hi - lo) * (self._density(piece) or 1.0)
            if self.page_size and size < 2 * self.page_size:
                continue  # about a page long: not worth another request
            if size > best_size:
                best, best_size = piece, size
        if best is None:
            return None
        lo, hi = best.unfetched(self.descending)
        at = split_point(lo, hi, self.descending)
        return None if at is None else self._split(best, at)

    def _split(self, piece: _Live, at: int) -> _Live:
        """Hand the far side of ``at`` (strictly inside ``piece``'s unfetched range) to a
        new piece; ``piece`` stops before it (ascending) or at it (descending)."""
        if self.descending:
            new = Piece(self.next_id, piece.lo, at, piece.lo, at)
            piece.lo = at
        else:
            new = Piece(self.next_id, at, piece.hi, at, piece.hi)
            piece.hi = at
        self.next_id += 1
        self.splits += 1
        taken = _Live(new, self.descending, self.guard.piece(), piece.density)
        self.live[new.id] = taken
        self.open += 1
        if self.ordered:
            taken.next, piece.next = piece.next, taken
        else:
            # Handed on before any page of either piece fetched after the split.
            self.events.append(PieceSplit(piece.id, at, new))
            self.cv.notify_all()  # _take is called under the condition's lock
        return taken

    async def _work(self, piece: _Live | None) -> None:
        import asyncio

        try:
            while piece is not None and self.failure is None:
                if await self._page(piece):
                    return  # asked to leave: fewer workers are wanted
                async with self.cv:
                    piece = self._take()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc
        finally:
            self.active -= 1
            async with self.cv:
                self._staff()
                self.cv.notify_all()

    async def _page(self, piece: _Live) -> bool:
        """Fetch ``piece`` until it is done (False) or its worker should leave (True)."""
        client = self.client
        window = window_query(self.query, piece.wlo, piece.whi)
        pages = pages_of(client, window, piece.token, self.raw)
        asked = self.concurrency.now()  # when this worker asked for the page it awaits
        async with contextlib.aclosing(pages):
            async for fetched in pages:
                token = piece.token
                stop = piece.lo if self.descending else piece.hi
                size = len(fetched.runs)
                every = created_ms(fetched)
                page, times = take_page(fetched, stop, self.descending, every)
                piece.guard.check(token, page.next_page_token, size)
                if times:
                    piece.reached = times[-1]
                if every:
                    # How dense the piece is: all it has met (cut runs too: they tell where
                    # the next runs are) over the time it has crossed since its start.
                    extent = abs(every[-1] - piece.origin) + 1
                    self.seen_runs += size
                    self.seen_ms += max(0, extent - piece.extent)
                    piece.runs_seen += size
                    piece.extent = max(piece.extent, extent)
                    piece.density = piece.runs_seen / piece.extent
                self.page_size = max(self.page_size, size)
                piece.token = page.next_page_token
                piece.done = page.next_page_token is None
                if piece.done:
                    del self.live[piece.id]
                await self._hand_on(piece, WindowPage(piece.id, page, token))
                if self.failure is not None or self.stopping:
                    return True  # the listing failed or is closing: no further request
                target = self.concurrency.page_done(
                    client.pacer.counts(),
                    busy=self.active >= self.concurrency.target,
                    sent=asked,
                )
                if piece.done:
                    return False
                if self.active > target and not (self.ordered and piece is self.head):
                    piece.owned = False
                    self.pending.appendleft(piece)
                    return True
                async with self.cv:
                    self._staff()
                asked = self.concurrency.now()
        return False  # not reached: a listing ends with a page without a next token

    async def _hand_on(self, piece: _Live, item: WindowPage[Any]) -> None:
        """Buffer a page for the consumer, waiting while the buffers are full."""
        room = max(defaults.PARALLEL_BUFFER_PAGES, 2 * self.concurrency.target)
        if self.ordered:
            room = max(room, 2 * _CHUNK_PAGES * self.concurrency.target)
        async with self.cv:
            if self.ordered:
                await self.cv.wait_for(
                    lambda: (
                        self.failure is not None
                        or self.buffered < room
                        or (
                            piece is self.head
                            and len(piece.buffer) < defaults.PARALLEL_BUFFER_PAGES
                        )
                    )
                )
                piece.buffer.append(item)
                self.buffered += 1
            else:
                await self.cv.wait_for(lambda: self.failure is not None or self.queued < room)
                self.events.append(item)
                self.queued += 1
            piece.closed = piece.done
            if piece.closed:
                self.open -= 1
            self.cv.notify_all()

    # -- the consumer

    async def stop(self) -> None:
        """Cancel every worker and wait for them (none starts from now on)."""
        self.stopping = True
        while self.tasks:
            await cancel(list(self.tasks))

    async def pages_in_order(self) -> AsyncGenerator[WindowPage[Any]]:
        """Every page, pieces in yield order."""
        async with self.cv:
            self._staff()
        while (piece := self.head) is not None:

            def ready(piece: _Live = piece) -> bool:
                return self.failure is not None or bool(piece.buffer) or piece.closed

            async with self.cv:
                await self.cv.wait_for(ready)
                if self.failure is not None:
                    raise self.failure
                if not piece.buffer:
                    self.head = piece.next
                    self._staff()
                    self.cv.notify_all()
                    continue
                item = piece.buffer.popleft()
                self.buffered -= 1
                self.cv.notify_all()
            yield item

    async def as_fetched(self) -> AsyncGenerator[WindowPage[Any] | PieceSplit]:
        """Every page and every split, as they happen."""
        async with self.cv:
            self._staff()
        while True:
            async with self.cv:
                await self.cv.wait_for(
                    lambda: self.failure is not None or bool(self.events) or self.open == 0
                )
                if self.failure is not None:
                    raise self.failure
                if not self.events:
                    return
                item = self.events.popleft()
                if isinstance(item, WindowPage):
                    self.queued -= 1
                self.cv.notify_all()
            yield item


async def piece_pages(
    client: AsyncTimbalClient,
    query: RunQuery,
    pieces: Sequence[Piece],
    *,
    parallel: Parallel = AUTO,
    raw: bool = False,
    ordered: bool = False,
    next_id: int | None = None,
) -> AsyncGenerator[WindowPage[Any] | PieceSplit]:
    """The pages of ``pieces``, balanced across workers; see
    :meth:`AsyncTimbalClient.iter_pieces`."""
    concurrency = Concurrency(None if parallel == AUTO else int(parallel))
    listing = _Listing(
        client, query, pieces, raw=raw, ordered=ordered, concurrency=concurrency, next_id=next_id
    )
    try:
        if ordered:
            async for page in listing.pages_in_order():
                yield page
        else:
            async for item in listing.as_fetched():
                yield item
    finally:
        await listing.stop()
        logger.debug(
            "parallel listing: %d splits; requests in flight (seconds, target): %s",
            listing.splits,
            concurrency.history,
        )
