"""The time ranges of a parallel listing: windows cut from a query, and pieces that split
while they are fetched.

Sans-I/O arithmetic for ``_windows.py`` and ``_balance.py``, and what they yield
(:class:`WindowPage`, :class:`PieceSplit`). A listing sorted by ``created_at`` is first
cut into windows (:func:`windows_for`: equal stretches of ``[since, until)``, a missing
bound found from the earliest or latest run), each the start of a piece
(:func:`pieces_of`). A piece is the runs created in ``[since_ms, until_ms)``, paged with
the query of its *window* (the range it was first given: its page tokens belong to that
query; :func:`window_query`). Pages come in ``created_at`` order, so a piece that has
reached a run created at ``t`` has left only ``[t, until_ms)`` to fetch (ascending), or
``[since_ms, t + 1)`` (descending): the millisecond ``t`` itself stays with the piece,
since more runs may share it. That unfetched rest is a time range too, and it can be split:

- ascending: the owner keeps ``[t, s)`` and stops BEFORE ``s``; the new piece starts AT
  ``s`` and goes to the old end;
- descending: the owner keeps ``[s, t + 1)`` and stops before going below ``s``; the new
  piece covers ``[since_ms, s)``.

``s`` lies strictly inside the unfetched range, so the millisecond the owner reached is
never handed over: every run is fetched by exactly one piece. A page the owner already
asked for may run past ``s``: it is cut at ``s`` on arrival (:func:`cut_at`), so at most
one page is fetched twice and no run is yielded twice.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from ..errors import QueryError
from ..query import RunQuery, to_epoch_ms

if TYPE_CHECKING:
    from .._pages import RawPage
    from ..models import Run, RunsPage

__all__ = [
    "PageT",
    "Piece",
    "PieceSplit",
    "WindowPage",
    "check_window_sort",
    "created_ms",
    "cut_at",
    "earliest_query",
    "kept",
    "latest_query",
    "pieces_of",
    "split_point",
    "take_page",
    "window_bounds",
    "window_query",
    "windows_for",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

PageT = TypeVar("PageT", "RunsPage", "RawPage")


@dataclass(frozen=True)
class WindowPage(Generic[PageT]):
    """One page of a windowed listing: which window it belongs to and how it was fetched.

    ``page_token`` is the token that fetched the page (None for a window's first page), so
    a consumer that has handled this page can resume at window ``window`` with
    ``page.next_page_token`` (or at ``window + 1`` when that is None). ``page`` is a
    :class:`RunsPage`, or a :class:`RawPage` when the listing was asked for raw pages.
    """

    window: int
    page: PageT
    page_token: str | None


# ---------------------------------------------------------------------------- windows


def check_window_sort(q: RunQuery) -> None:
    """Windows cut ``created_at``: only a listing sorted by it can be split into them."""
    if q.sort_by not in (None, "created_at"):
        raise QueryError("parallel", "parallel listing needs sort_by=created_at (the default)")


def earliest_query(query: RunQuery) -> RunQuery:
    """The query asking for the oldest run first."""
    return query.replace(sort_by="created_at", sort_order="asc")


def latest_query(query: RunQuery) -> RunQuery:
    """The query asking for the newest run first."""
    return query.replace(sort_by="created_at", sort_order="desc")


def windows_for(
    query: RunQuery, first: Run | None, last: Run | None, parallel: int
) -> list[RunQuery]:
    """The windows of a parallel listing, in the order their runs must be yielded.

    A missing ``since`` starts at the earliest matching run (``first``); a missing
    ``until`` ends just after the latest one (``last``), so no window is spent on a
    stretch of time that holds nothing.
    """
    check_window_sort(query)
    since = query.since
    until = query.until
    if since is None:
        if first is None:
            return []
        since = first.created_at
    if until is None:
        if last is None:
            return []
        until = last.created_at + timedelta(milliseconds=1)
    if since >= until:
        return []
    windows = query.replace(since=since, until=until).split(parallel)
    if query.effective_sort_order == "desc":
        windows.reverse()
    return windows


def window_bounds(window: RunQuery) -> tuple[int, int]:
    """A window's ``[since, until)`` in epoch milliseconds."""
    if window.since is None or window.until is None:
        raise QueryError("since", "a window needs both since and until")
    return to_epoch_ms(window.since), to_epoch_ms(window.until)


def window_query(query: RunQuery, since_ms: int, until_ms: int) -> RunQuery:
    """``query`` over the window ``[since_ms, until_ms)`` (epoch milliseconds)."""
    return query.replace(
        since=_EPOCH + timedelta(milliseconds=since_ms),
        until=_EPOCH + timedelta(milliseconds=until_ms),
    )


# ----------------------------------------------------------------------------- pieces


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of a parallel listing, where it stands.

    The runs created in ``[since_ms, until_ms)``, paged with the query of the window
    ``[window_since_ms, window_until_ms)`` from ``token`` (None: the window's first
    page). ``id`` is unique within the listing (an export names its spool file by it).
    """

    id: int
    since_ms: int
    until_ms: int
    window_since_ms: int
    window_until_ms: int
    token: str | None = None

    def ended_at(self, at_ms: int, descending: bool) -> Piece:
        """This piece, stopping at ``at_ms`` (its new since when descending, else until)."""
        return replace(self, since_ms=at_ms) if descending else replace(self, until_ms=at_ms)


@dataclass(frozen=True, slots=True)
class PieceSplit:
    """Piece ``piece`` handed the far part of its unfetched rest to ``new``.

    It now stops at ``at_ms``: its ``until_ms`` when ascending, its ``since_ms`` when
    descending. ``new`` covers what it gave up and starts from its first page.
    """

    piece: int
    at_ms: int
    new: Piece


def pieces_of(bounds: list[tuple[int, int]], first_id: int = 0) -> list[Piece]:
    """Fresh pieces (nothing fetched) of the given ``[since_ms, until_ms)`` windows."""
    return [Piece(first_id + i, lo, hi, lo, hi) for i, (lo, hi) in enumerate(bounds) if lo < hi]


def created_ms(page: Any) -> list[int]:
    """Each run's ``created_at`` in epoch milliseconds (floored), in page order.

    ``page`` is a :class:`~timbal_integrations.models.RunsPage` or a
    :class:`~timbal_integrations._pages.RawPage`.
    """
    created = getattr(page, "created", None)
    if created is None:
        created = [run.created_at for run in page.runs]
    return [to_epoch_ms(moment) for moment in created]


def cut_at(page: Any, keep: int) -> Any:
    """``page`` with its first ``keep`` runs only, and no next page (the piece is done)."""
    if hasattr(page, "created"):  # a RawPage
        return type(page)(page.runs[:keep], page.created[:keep], None)
    return page.model_copy(update={"runs": page.runs[:keep], "next_page_token": None})


def kept(times: list[int], stop_ms: int, descending: bool) -> int:
    """How many of a page's leading runs (``times``, in listing order) come before the
    piece's stop: below ``stop_ms`` ascending, at or above it descending."""
    if descending:
        return sum(1 for _ in itertools.takewhile(lambda t: t >= stop_ms, times))
    return sum(1 for _ in itertools.takewhile(lambda t: t < stop_ms, times))


def split_point(lo: int, hi: int, descending: bool) -> int | None:
    """Where to split the unfetched range ``[lo, hi)``, or None when it is too short.

    Strictly inside: ``lo < s < hi``. The owner keeps the half next to where it is (the
    low half ascending, the high half descending); the new piece takes the other.
    """
    if hi - lo < 2:
        return None
    half = (hi - lo) // 2
    return hi - half if descending else lo + half


def take_page(
    page: Any, stop_ms: int, descending: bool, times: list[int] | None = None
) -> tuple[Any, list[int]]:
    """A page as its piece keeps it: cut before the piece's stop (then it is the piece's
    last), and the ``created_at`` milliseconds of the runs kept (``times``: all of the
    page's, when already known)."""
    if times is None:
        times = created_ms(page)
    keep = kept(times, stop_ms, descending)
    if keep < len(times):
        return cut_at(page, keep), times[:keep]
    return page, times
