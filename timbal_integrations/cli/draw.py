"""Drawing on a terminal: colour, glyphs, bars and sparklines, with plain fallbacks.

What ``timbal-runs show`` (a run's span tree) and ``timbal-runs summary`` (its time
series) draw with. Two decisions are made once per output stream (:func:`style_for`):

- **colour**: only when the stream is a terminal, ``NO_COLOR`` is unset or empty
  (https://no-color.org), and ``TERM`` is not ``dumb``; ``--color always|never``
  overrides. Piped output never carries escape sequences unless asked to.
- **glyphs**: box-drawing, blocks and check marks when the stream's encoding can write
  them, ASCII otherwise (``PYTHONIOENCODING=ascii``, a Latin-1 terminal).

Everything a server sent (names, paths, error messages, feedback) goes through
:func:`terminal_text` (the core's :func:`~timbal_integrations.sanitize.terminal_safe`)
before it is drawn, so that no control character or escape sequence from the API can
reach the terminal: each is shown as a visible escape instead.

Hand-written rather than built on ``rich``: what is drawn here is a tree, a bar and a
sparkline, and ``rich`` would add ~60 ms to every ``timbal-runs`` start-up that draws,
and three packages (13 MB with pygments) that ``mcp`` does not already install.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Literal

from ..sanitize import terminal_safe

__all__ = [
    "COLOR_CHOICES",
    "Glyphs",
    "Role",
    "Style",
    "bar",
    "clip",
    "replace_unwritable",
    "sparkline",
    "style_for",
    "terminal_text",
]

COLOR_CHOICES: Final = ("auto", "always", "never")

Role = Literal["ok", "error", "warn", "blocked", "dim", "bold", "accent", "running"]

_SGR: Final[dict[str, str]] = {
    "ok": "32",
    "error": "31",
    "warn": "33",
    "blocked": "35",
    "dim": "2",
    "bold": "1",
    "accent": "36",
    "running": "34",
}

_SGR_SEQUENCE: Final = re.compile(r"\x1b\[[0-9;]*m")


def terminal_text(text: object, limit: int | None = None) -> str:
    """``text`` safe to print on a terminal, on one line: runs of white space (newlines
    and tabs included) become one space, every other control character, escape
    sequence or bidi control is shown as a visible escape (``\\x1b``, ``\\u202e``) by the
    core's :func:`~timbal_integrations.sanitize.terminal_safe`, the one sanitiser of
    server text; at most ``limit`` characters (cut with ``…``).

    The one function every string from the server passes through before ``show`` and
    the charts draw it.
    """
    cleaned = terminal_safe(" ".join(str(text).split()))
    return clip(cleaned, limit) if limit is not None else cleaned


def clip(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to ``width`` characters, ending with ``ellipsis`` when cut."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - len(ellipsis))] + ellipsis


@dataclass(frozen=True)
class Glyphs:
    """The characters a drawing uses: box drawing and blocks, or ASCII."""

    branch: str
    last: str
    pipe: str
    blank: str
    full: str
    partial: tuple[str, ...]
    error_block: str
    spark: str
    ellipsis: str
    bullet: str
    marks: Mapping[str, str]

    @classmethod
    def for_encoding(cls, unicode: bool) -> Glyphs:
        """Unicode glyphs, or their ASCII fallbacks."""
        if unicode:
            return cls(
                branch="├── ",
                last="└── ",
                pipe="│   ",
                blank="    ",
                full="█",
                partial=("", "▏", "▎", "▍", "▌", "▋", "▊", "▉"),
                error_block="▒",
                spark="▁▂▃▄▅▆▇█",
                ellipsis="…",
                bullet="·",
                marks={
                    "success": "✓",
                    "error": "✗",
                    "timeout": "◷",
                    "cancelled": "○",
                    "blocked": "■",
                    "running": "…",
                },
            )
        return cls(
            branch="|-- ",
            last="`-- ",
            pipe="|   ",
            blank="    ",
            full="#",
            partial=("",),
            error_block="x",
            spark=" .:-=+*#",
            ellipsis="...",
            bullet="-",
            marks={
                "success": "+",
                "error": "x",
                "timeout": "t",
                "cancelled": "o",
                "blocked": "!",
                "running": ".",
            },
        )


_PROBE: Final = "├└│█▉▒▁✓✗◷○■…·"


def _can_encode(stream: IO[Any]) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        _PROBE.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _is_tty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass(frozen=True)
class Style:
    """How to draw on one stream: with colour or not, Unicode or ASCII, how wide."""

    color: bool
    glyphs: Glyphs
    width: int | None
    """Columns to fit lines into (a terminal's width), or None: never cut (piped)."""

    def paint(self, text: str, role: Role | None) -> str:
        """``text`` in the colour of ``role`` (unchanged without colour or role)."""
        if not self.color or role is None or not text:
            return text
        return f"\x1b[{_SGR[role]}m{text}\x1b[0m"

    def fit(self, line: str) -> str:
        """``line`` cut to the width, if there is one; colour sequences take no room and
        a colour cut short is closed."""
        width = self.width
        if not width or len(_SGR_SEQUENCE.sub("", line)) <= width:
            return line
        room = width - len(self.glyphs.ellipsis)
        out: list[str] = []
        shown = 0
        position = 0
        for match in _SGR_SEQUENCE.finditer(line):
            text = line[position : match.start()]
            take = text[: max(0, room - shown)]
            out.append(take)
            shown += len(take)
            out.append(match.group(0))
            position = match.end()
        tail = line[position:]
        out.append(tail[: max(0, room - shown)])
        cut = "".join(out)
        reset = "\x1b[0m" if "\x1b[" in cut and not cut.endswith("\x1b[0m") else ""
        return cut + reset + self.glyphs.ellipsis


def style_for(
    stream: IO[Any],
    color: str = "auto",
    environ: Mapping[str, str] | None = None,
) -> Style:
    """The :class:`Style` of ``stream`` (see the module docstring); ``color`` is one of
    :data:`COLOR_CHOICES`."""
    env = os.environ if environ is None else environ
    tty = _is_tty(stream)
    if color == "always":
        colored = True
    elif color == "never":
        colored = False
    else:
        colored = tty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    width = shutil.get_terminal_size((100, 24)).columns if tty else None
    return Style(colored, Glyphs.for_encoding(_can_encode(stream)), width)


def replace_unwritable(stream: IO[Any]) -> None:
    """Write characters the stream's encoding lacks as ``?`` instead of failing (a
    user named Zoë on an ASCII terminal); the drawing itself already fell back to
    ASCII."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


def bar(value: float, peak: float, width: int, glyphs: Glyphs) -> str:
    """A horizontal bar of ``value`` on a scale where ``peak`` fills ``width`` columns
    (eighths of a column with Unicode); at least a sliver for any value above 0."""
    if peak <= 0 or value <= 0 or width <= 0:
        return ""
    steps = len(glyphs.partial)
    units = max(1, round(value / peak * width * steps))
    full, rest = divmod(min(units, width * steps), steps)
    return glyphs.full * full + glyphs.partial[rest]


def sparkline(values: Sequence[float], glyphs: Glyphs) -> str:
    """One character per value, its height proportional to the value (0 is the lowest
    mark, the largest value the highest)."""
    marks = glyphs.spark
    peak = max(values, default=0)
    if peak <= 0:
        return marks[0] * len(values)
    top = len(marks) - 1
    return "".join(marks[0] if v <= 0 else marks[max(1, math.ceil(v / peak * top))] for v in values)
