"""Values cut to size: JSON previews, strings cut in a nested value, one-line text.

Whatever is cut says how much was left out (``… [1,234 more characters]``), so a model
knows it holds a part and how big the whole is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from ..readable import readable

__all__ = [
    "cut_strings",
    "drop_nulls",
    "indent",
    "one_line",
    "preview",
    "short_path",
    "to_json",
]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PATH_CHARS: Final = 200
_MAX_INDENT: Final = 16


def to_json(value: Any) -> str:
    """``value`` as compact JSON (its ``repr`` when it is not JSON)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def preview(value: Any, limit: int) -> tuple[Any, bool]:
    """``value`` if its JSON fits ``limit`` characters, else a string of its first
    characters and how many were left out; and whether it was cut."""
    if value is None:
        return None, False
    if isinstance(value, str):
        if len(value) <= limit:
            return value, False
        return f"{value[:limit]}… [{len(value) - limit:,} more characters]", True
    text = to_json(value)
    if len(text) <= limit:
        return value, False
    return f"{text[:limit]}… [{len(text) - limit:,} more characters of JSON]", True


def one_line(value: Any, limit: int | None = None) -> str:
    """``value`` on one line for the text content (control characters become spaces)."""
    text = value if isinstance(value, str) else to_json(readable(value))
    text = " ".join(_CONTROL.sub(" ", text).split())
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… [{len(text) - limit:,} more characters]"
    return text


def short_path(path: str) -> str:
    """A span's path, its start cut when it is very long (the end names the call)."""
    return path if len(path) <= _PATH_CHARS else "…" + path[-(_PATH_CHARS - 1) :]


def indent(depth: int) -> str:
    """Two spaces a level, and the depth written out below level 16."""
    if depth <= _MAX_INDENT:
        return "  " * depth
    return "  " * _MAX_INDENT + f"[depth {depth}] "


def cut_strings(value: Any, longest: int) -> tuple[Any, int]:
    """``value`` with every string longer than ``longest`` cut (saying how much was left
    out), and how many were cut."""
    if isinstance(value, str):
        if len(value) <= longest:
            return value, 0
        return f"{value[:longest]}… [{len(value) - longest:,} more characters]", 1
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        count = 0
        for key, item in value.items():
            out[key], n = cut_strings(item, longest)
            count += n
        return out, count
    if isinstance(value, list):
        items = []
        count = 0
        for item in value:
            shown, n = cut_strings(item, longest)
            items.append(shown)
            count += n
        return items, count
    return value, 0


def drop_nulls(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` without its ``None`` entries."""
    return {k: v for k, v in value.items() if v is not None}
