"""The pieces of a parallel listing: time ranges that split while they are fetched.

Sans-I/O bookkeeping for ``_windows.py``. A listing sorted by ``created_at`` is cut into
pieces, each the runs created in ``[since_ms, until_ms)``; a piece is paged with the
query of its *window* (the range it was first given: its page tokens belong to that
query). Pages come in ``created_at`` order, so a piece that has reached a run created at
``t`` has left only ``[t, until_ms)`` to fetch (ascending), or ``[since_ms, t + 1)``
(descending): the millisecond ``t`` itself stays with the piece, since more runs may
share it. That unfetched rest is a time range too, and it can be split:

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
from datetime import UTC, datetime
from typing import Any, Final

from ..query import to_epoch_ms

__all__ = [
    "Piece",
    "PieceSplit",
    "created_ms",
    "cut_at",
    "kept",
    "pieces_of",
    "split_point",
    "take_page",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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
