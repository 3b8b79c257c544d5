"""Text from a server, made safe to show on a terminal: the one sanitiser.

A server's error message or a run's fields (a user name, a workforce name, a status) can
hold control characters: ESC sequences that recolour, move the cursor, retitle the
window or hide the text after them, BEL, C1 controls (``\\x9b`` is a one-byte CSI on
some terminals), and Unicode bidirectional overrides that display text in another order
than it reads (``\\u202e``). :func:`terminal_safe` shows each of them as a visible escape
(``\\x1b``, ``\\u202e``) instead, so nothing a server sends can act on the terminal, and
what was there can still be seen.

``timbal-runs`` passes its table cells, summary cells and error lines through it. Data
output (JSON, JSON Lines, CSV, exports) is never changed: it stays byte-exact.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["UNSAFE", "terminal_safe"]

UNSAFE: Final = re.compile(
    "["
    "\x00-\x1f\x7f"  # C0 controls (ESC, BEL, CR, backspace...) and DEL
    "\x80-\x9f"  # C1 controls (CSI, OSC...)
    "\u061c\u200e\u200f"  # Arabic letter mark, left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2066-\u2069"  # bidi isolates
    "\u2028\u2029"  # line and paragraph separators
    "]"
)
"""The characters :func:`terminal_safe` escapes."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with every control character and bidi control shown as an escape
    (``\\x1b``, ``\\u202e``): nothing in it can act on a terminal."""
    return UNSAFE.sub(_escape, text)
