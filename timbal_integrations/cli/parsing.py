"""Argument-parsing scaffolding shared by ``timbal-runs`` and its ``emulator`` command.

- :class:`OneLineParser`: an ``argparse`` parser whose errors are one line and exit 2
  (raised as :class:`UsageError`, no usage dump);
- value types that name what they expect: :func:`whole_number` (ASCII digits only:
  ``"¹".isdigit()`` and ``"١".isdigit()`` are True in Python), :func:`number`,
  :func:`seconds`, :func:`port`;
- :func:`flag`: the flag of an argument name (``user_id`` → ``--user-id``).

Importing it imports nothing of the library beyond ``argparse``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import NoReturn, TypeAlias

__all__ = [
    "OneLineParser",
    "Subcommands",
    "UsageError",
    "flag",
    "number",
    "port",
    "seconds",
    "whole_number",
]

_WHOLE = re.compile(r"[+-]?[0-9]+")


class UsageError(Exception):
    """Bad usage: the command exits 2 with this one-line message."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump), raised as
    :class:`UsageError`."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` with ``message`` and where to find help."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


Subcommands: TypeAlias = "argparse._SubParsersAction[OneLineParser]"
"""What ``add_subparsers`` returns for a :class:`OneLineParser` (commands add to it)."""


def flag(name: str) -> str:
    """The command-line flag of an argument name: ``user_id`` → ``--user-id``."""
    return "--" + name.replace("_", "-")


def _shown(value: float) -> str:
    """A bound as people write it: ``64``, ``1,000,000``, ``0.5``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_shown(minimum)} to {_shown(maximum)}"
    if minimum is not None:
        return f", {_shown(minimum)} or more"
    if maximum is not None:
        return f", {_shown(maximum)} at most"
    return ""


def whole_number(
    *, minimum: int | None = None, maximum: int | None = None, what: str = "a whole number"
) -> Callable[[str], int]:
    """An argparse type: a whole number written in ASCII digits, within the bounds.

    The error says ``'x' is not <what><bounds>``, e.g. ``'-1' is not a whole number, 0
    or more``.
    """
    expected = what + _bounds(minimum, maximum)

    def parse(text: str) -> int:
        stripped = text.strip()
        if not _WHOLE.fullmatch(stripped):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        value = int(stripped)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value

    return parse


def number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    what: str = "a number",
) -> Callable[[str], float]:
    """An argparse type: a finite number within the bounds (``above``: strictly)."""
    if above is not None:
        expected = what + f" above {above:g}"
        if maximum is not None:
            expected += f" and at most {_shown(maximum)}"
    else:
        expected = what + _bounds(minimum, maximum)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None
        if (
            not math.isfinite(value)
            or (above is not None and value <= above)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0, at most an hour (a timeout)."""
    from ..defaults import MAX_REQUEST_TIMEOUT

    return number(above=0, maximum=MAX_REQUEST_TIMEOUT, what="a number of seconds")(text)


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0 picks a free one)."""
    return whole_number(minimum=0, maximum=65535, what="a port")(text)
