"""Redacting the API key from text: the one function every message goes through.

A server (or a proxy in front of it) may echo the key back in an error: whole, in part
("key ending in ...f7b3a_key"), URL-encoded, or inside base64 (of the key alone, of
``Bearer <key>``, of ``user:<key>``). :func:`redact` replaces each of those with
``***``:

- the key itself, and its percent-encoded forms (``quote``, ``quote_plus``);
- any run of :data:`PARTIAL_CHARS` or more characters that is also a run of the key (its
  last or first characters, or any other stretch), unless the run is too plain to tell
  apart from ordinary text (fewer than :data:`DISTINCT_CHARS` different characters, such
  as ``000000``);
- the key's base64 (standard and URL-safe alphabets) at each of the three alignments it
  can have inside a longer base64 string: the characters that only the key's bytes
  determine.

:func:`secret_forms` lists the forms searched for whole (the test suite's leak guard
watches for them too). Error construction (``status_error``, the clients' transport
errors), the MCP tools' results and errors, and the Airflow hook's failures all redact
through here.
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any, Final
from urllib.parse import quote, quote_plus

import orjson

__all__ = ["DISTINCT_CHARS", "MASK", "PARTIAL_CHARS", "redact", "redact_data", "secret_forms"]

MASK: Final = "***"
"""What a redacted secret reads as."""

PARTIAL_CHARS: Final = 6
"""A run of this many characters of the key, or more, counts as part of the key."""

DISTINCT_CHARS: Final = 4
"""A fragment of the key with fewer different characters than this is not searched for
on its own: ``000000`` or ``aaaaaa`` occur in ordinary text."""

_MIN_FORM: Final = 6  # a base64 fragment shorter than this is too likely to be chance


def _distinctive(text: str) -> bool:
    return len(set(text)) >= DISTINCT_CHARS


def _base64_fragments(secret: bytes) -> set[str]:
    """The characters of base64 that only ``secret``'s bytes determine, for each of the
    three offsets (mod 3) it can start at inside a longer encoded string."""
    found: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret + b"\0\0").decode("ascii")
        first = -(-8 * shift // 6)  # the first character whose 6 bits are all the key's
        last = (8 * (shift + len(secret))) // 6  # one past the last such character
        fragment = encoded[first:last]
        if len(fragment) >= _MIN_FORM and _distinctive(fragment):
            found.add(fragment)
            found.add(fragment.replace("+", "-").replace("/", "_"))
    return found


@functools.lru_cache(maxsize=32)
def secret_forms(secret: str) -> frozenset[str]:
    """The forms of ``secret`` a server may echo that :func:`redact` searches for whole:
    itself, percent-encoded, and its base64 fragments (empty for an empty secret)."""
    if not secret:
        return frozenset()
    forms = {quote(secret, safe=""), quote_plus(secret, safe="")}
    forms = {form for form in forms if _distinctive(form)}
    forms |= _base64_fragments(secret.encode("utf-8"))
    forms.add(secret)
    return frozenset(form for form in forms if form)


@functools.lru_cache(maxsize=32)
def _pattern(secret: str) -> re.Pattern[str]:
    """One regular expression matching every whole form, longest first."""
    forms = sorted(secret_forms(secret), key=len, reverse=True)
    return re.compile("|".join(re.escape(form) for form in forms))


@functools.lru_cache(maxsize=32)
def _runs(secret: str) -> frozenset[str]:
    """Every run of :data:`PARTIAL_CHARS` characters of the key that is distinctive."""
    size = PARTIAL_CHARS
    runs = (secret[i : i + size] for i in range(len(secret) - size + 1))
    return frozenset(run for run in runs if _distinctive(run))


@functools.lru_cache(maxsize=32)
def _partial_pattern(secret: str) -> re.Pattern[str] | None:
    """Matches (empty, looking ahead) where a run of :func:`_runs` starts: the scan runs
    in C, not a Python loop over every position (an MCP result's strings took ~6 ms)."""
    runs = sorted(_runs(secret))
    if not runs:
        return None
    return re.compile("(?=(?:" + "|".join(re.escape(run) for run in runs) + "))")


def _partial_spans(text: str, secret: str) -> list[tuple[int, int]]:
    """Where ``text`` holds runs of the key at least :data:`PARTIAL_CHARS` long (merged)."""
    pattern = _partial_pattern(secret)
    if pattern is None:
        return []
    spans: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        start = match.start()
        end = start + PARTIAL_CHARS
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _may_hold(value: Any, secret: str) -> bool:
    """False only when no string of ``value`` can hold a form of ``secret``: searched
    once in the JSON text of the whole value, where a key of plain ASCII (no quote,
    backslash or control character, which JSON escapes) appears as it is."""
    if not _PLAIN.fullmatch(secret):
        return True
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return True
    if _pattern(secret).search(text):
        return True
    partial = _partial_pattern(secret) if len(secret) >= PARTIAL_CHARS else None
    return partial is not None and partial.search(text) is not None


_PLAIN: Final = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")  # printable ASCII but " and \


def redact(text: str, secret: str | None) -> str:
    """``text`` with every form of ``secret`` (see the module's description) replaced by
    ``***``. A missing or empty secret leaves the text as it is."""
    if not secret or not text:
        return text
    text = _pattern(secret).sub(MASK, text)
    if len(secret) < PARTIAL_CHARS:
        return text
    spans = _partial_spans(text, secret)
    if not spans:
        return text
    pieces: list[str] = []
    at = 0
    for start, end in spans:
        pieces.append(text[at:start])
        pieces.append(MASK)
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def redact_data(value: Any, secret: str | None) -> Any:
    """``value`` (JSON-like: dicts, lists, strings...) with :func:`redact` applied to every
    string in it, keys included; a new structure, or ``value`` itself when nothing
    changed."""
    if not secret:
        return value
    if isinstance(value, str):
        return redact(value, secret)
    if not _may_hold(value, secret):
        return value
    return _redact_walk(value, secret)


def _redact_walk(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {_redact_walk(k, secret): _redact_walk(v, secret) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_walk(item, secret) for item in value)
    return value
