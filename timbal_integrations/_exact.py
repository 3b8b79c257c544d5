"""Exact running sums of floats: :class:`ExactSum`.

One implementation for every total that must be exact: the summary's cost totals
(:mod:`timbal_integrations.summary` re-exports it) and the statistics an export keeps in
its checkpoint. This module imports nothing but :mod:`math`, so the export path can use
it without loading the summary's pydantic models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fractions import Fraction

__all__ = ["ExactSum"]


class ExactSum:
    """A running sum of floats that is exact: :meth:`value` equals :func:`math.fsum` of
    every number added, in any order, while keeping only a few partial sums.

    Shewchuk's algorithm (the one behind ``math.fsum``): the partials never overlap, so
    their exact sum is the exact sum of the inputs. :attr:`partials` and the constructor
    carry a sum across processes (a checkpoint stores the partials, as ``float.hex``, and
    a resumed export starts from them): ``ExactSum(s.partials).value() == s.value()``.

    An infinite or NaN value makes the sum that value (``inf + -inf`` is NaN), as
    adding it with ``+`` would; it is kept apart so the finite partials stay exact.
    """

    __slots__ = ("_partials", "_special")

    def __init__(self, values: Iterable[float] = ()) -> None:
        """A sum of ``values`` (none by default)."""
        self._partials: list[float] = []
        self._special: float | None = None
        for value in values:
            self.add(value)

    def add(self, x: float) -> None:
        """Add ``x``."""
        if not math.isfinite(x):
            self._special = x if self._special is None else self._special + x
            return
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def add_all(self, values: Iterable[float]) -> None:
        """Add every value of ``values``."""
        for value in values:
            self.add(value)

    @property
    def partials(self) -> tuple[float, ...]:
        """Floats whose exact sum is this sum (a few; an infinity or NaN last)."""
        kept = tuple(x for x in self._partials if x)
        return kept if self._special is None else (*kept, self._special)

    def _exact(self) -> tuple[float | None, Fraction]:
        from fractions import Fraction  # only comparisons need it

        return self._special, sum(map(Fraction, self._partials), Fraction(0))

    def __eq__(self, other: object) -> bool:
        """Two sums are equal when their exact values are (NaN equals NaN here)."""
        if not isinstance(other, ExactSum):
            return NotImplemented
        mine, theirs = self._special, other._special
        if mine is not None and theirs is not None and math.isnan(mine) and math.isnan(theirs):
            return True
        return self._exact() == other._exact()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"ExactSum(value={self.value()!r})"

    def value(self) -> float:
        """The correctly rounded sum of everything added."""
        if self._special is not None:
            return self._special
        return math.fsum(self._partials)
