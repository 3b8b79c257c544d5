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
    every number added, in any order.

    Every finite float is an integer times a power of two no smaller than ``2**-1074``,
    so the sum is kept as one integer count of ``2**-1074`` (Python's integers have no
    size limit, and adding one is a single C-level operation: ~10x faster per run than
    Shewchuk's partials in Python, which took a tenth of an export's CPU).
    :meth:`value` is the correctly rounded quotient. :attr:`partials` and the constructor
    carry a sum across processes (a checkpoint stores the partials, as ``float.hex``, and
    a resumed export starts from them): ``ExactSum(s.partials).value() == s.value()``.

    An infinite or NaN value makes the sum that value (``inf + -inf`` is NaN), as
    adding it with ``+`` would; it is kept apart so the finite sum stays exact.
    """

    __slots__ = ("_scaled", "_special")

    def __init__(self, values: Iterable[float] = ()) -> None:
        """A sum of ``values`` (none by default)."""
        self._scaled = 0  # the finite sum, in units of 2**-1074
        self._special: float | None = None
        self.add_all(values)

    def add(self, x: float) -> None:
        """Add ``x``."""
        if not math.isfinite(x):
            self._special = x if self._special is None else self._special + x
            return
        self._scaled += _units(x)

    def add_all(self, values: Iterable[float]) -> None:
        """Add every value of ``values``."""
        scaled = self._scaled
        for x in values:
            if not math.isfinite(x):
                self._special = x if self._special is None else self._special + x
                continue
            n, d = x.as_integer_ratio()  # _units(x), inline: this loop is per run
            scaled += n << (_SHIFT - d.bit_length() + 1)
        self._scaled = scaled

    @property
    def partials(self) -> tuple[float, ...]:
        """Floats whose exact sum is this sum (a few; an infinity or NaN last)."""
        kept: list[float] = []
        rest = self._scaled
        while rest:
            part = _quotient(rest)
            if not math.isfinite(part):  # beyond the largest float: cut it in halves
                part = math.ldexp(1.0 if rest > 0 else -1.0, 1023)
            kept.append(part)
            rest -= _units(part)
        return tuple(kept) if self._special is None else (*kept, self._special)

    def _exact(self) -> tuple[float | None, Fraction]:
        from fractions import Fraction  # only comparisons need it

        return self._special, Fraction(self._scaled, _UNIT)

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
        return _quotient(self._scaled)


_SHIFT = 1074
_UNIT = 1 << _SHIFT


def _units(x: float) -> int:
    """Finite ``x`` as a whole number of ``2**-1074`` (its ratio's denominator is a power
    of two, at most ``2**1074``)."""
    n, d = x.as_integer_ratio()
    return n << (_SHIFT - d.bit_length() + 1)


def _quotient(scaled: int) -> float:
    """``scaled * 2**-1074``, correctly rounded (Python's int division is); an
    infinity past the largest float (where ``math.fsum`` raises OverflowError)."""
    try:
        return scaled / _UNIT
    except OverflowError:
        return math.inf if scaled > 0 else -math.inf
