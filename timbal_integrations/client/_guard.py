"""The page bounds of a listing (sans-I/O): no server can keep one going forever.

:class:`PageGuard` is what every listing (of runs, of a run's reactions; one window or
piece, or many at once) checks after each page: a page token it already handed out (a
loop), too many empty pages in a row, too many pages in all (``Bounds.max_empty_pages``,
``Bounds.max_pages``). :func:`listing_guard` is the guard of one parallel listing, whose
pieces and windows each get theirs from it (:meth:`PageGuard.piece`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

from ..errors import PaginationLimitError, PaginationLoopError
from ..limits import Bounds

if TYPE_CHECKING:
    from ._base import ClientBase

__all__ = ["PageGuard", "listing_guard"]


class PageGuard:
    """What one listing checks after each page, so that no server can keep it going
    forever: a page token it already handed out (a loop), more than
    ``Bounds.max_empty_pages`` empty pages in a row, more than ``Bounds.max_pages``
    pages in all.

    Tokens already seen are remembered by a 16-byte digest, the last
    :data:`SEEN_TOKENS` of them: memory stays bounded whatever the tokens' length or
    number (``max_pages`` bounds a loop longer than that).

    A parallel listing pages many pieces of time, each a listing of its own query: each
    piece has its guard (:meth:`piece`: its own tokens and empty pages in a row, kept
    while the piece passes from worker to worker), and every page of every piece counts
    toward the listing's ``max_pages``.
    """

    SEEN_TOKENS: Final = 10_000

    def __init__(self, path: str, bounds: Bounds, listing: PageGuard | None = None) -> None:
        self.path = path
        self.bounds = bounds
        self.pages = 0
        self.empty = 0
        self._seen: dict[bytes, None] = {}
        self._listing = listing

    def piece(self) -> PageGuard:
        """The guard of one piece of this (parallel) listing: its own loop and empty-page
        checks; its pages count toward this listing's ``max_pages`` too."""
        return PageGuard(self.path, self.bounds, self)

    @property
    def total(self) -> int:
        """Pages counted toward ``max_pages``: the listing's, every piece's included."""
        return self._listing.pages if self._listing is not None else self.pages

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def check(self, sent: str | None, received: str | None, runs: int) -> None:
        """After a page fetched with ``sent`` that held ``runs`` runs and handed out
        ``received``: raise when following it would loop or go past a bound."""
        self.pages += 1
        if self._listing is not None:
            self._listing.pages += 1
        if received is None:
            return
        bounds = self.bounds
        if self.total >= bounds.max_pages:
            raise PaginationLimitError(
                f"GET {self.path} handed out a next page after {self.total:,} pages, the most "
                "one listing follows (Bounds.max_pages); stopping. Is the server's "
                "pagination broken, or is this listing better split (a shorter "
                "since/until window)?",
                setting="max_pages",
                limit=bounds.max_pages,
            )
        self.empty = self.empty + 1 if runs == 0 else 0
        if self.empty >= bounds.max_empty_pages:
            raise PaginationLimitError(
                f"GET {self.path} returned {self.empty:,} empty pages in a row, each with "
                "a new page token (Bounds.max_empty_pages); stopping instead of following "
                "them forever (the server's pagination is broken)",
                setting="max_empty_pages",
                limit=bounds.max_empty_pages,
            )
        digest = self._digest(received)
        if received == sent or digest in self._seen:
            raise PaginationLoopError(
                f"GET {self.path} returned a page token it had already returned; "
                "stopping instead of looping forever (the server's pagination is broken)"
            )
        self._seen[digest] = None
        if len(self._seen) > self.SEEN_TOKENS:
            del self._seen[next(iter(self._seen))]


def listing_guard(client: ClientBase) -> PageGuard:
    """The page bounds of one listing of ``client``'s runs over many windows or pieces
    (each gets its own guard from it: :meth:`PageGuard.piece`)."""
    return PageGuard(client.config.runs_path, client.bounds)
