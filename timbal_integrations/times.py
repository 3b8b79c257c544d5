"""Times and spans: the one parser of the time values every front end accepts.

A time (``since`` inclusive, ``until`` exclusive, a run's ``created_at``) is an aware
``datetime``, a ``date`` (its midnight UTC), an ISO 8601 string (no offset means UTC),
epoch milliseconds (int or digit string), ``now``, or a span back from now (``90m``,
``24h``, ``7d``, ``2w``, ``30s``); :func:`parse_time` turns any of them into an aware UTC
datetime truncated to milliseconds, and "now" is injectable for tests. A span is a
length of time (:func:`parse_span`, :func:`format_span`). :func:`format_time` and
:func:`to_epoch_ms` are the two forms a time leaves in (ISO 8601 text, API parameters).

Bad values raise :class:`~timbal_integrations.errors.QueryError` naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

from .errors import QueryError

__all__ = [
    "format_span",
    "format_time",
    "parse_span",
    "parse_time",
    "to_epoch_ms",
    "utc_now",
]

_MIN_MS: Final = 0
_MAX_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z
_SECONDS_LIKE_MS: Final = 100_000_000_000  # below this, an epoch-ms value means 1973 or before
_SPAN = re.compile(r"^\s*(\d{1,9})\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|wk|wks)\s*$")
_SPAN_UNITS: Final = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "wk": 604800,
    "wks": 604800,
}
_TIME_EXPECTED = "an ISO 8601 time, epoch milliseconds, or a span like 24h"


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default "now" of relative times)."""
    return datetime.now(UTC)


def to_epoch_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (floored to the millisecond)."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + (delta.microseconds // 1000)


def _from_ms(ms: int, field: str) -> datetime:
    if ms < _MIN_MS or ms > _MAX_MS:
        raise QueryError(field, f"{ms} is out of range; expected epoch milliseconds after 1970")
    if ms < _SECONDS_LIKE_MS:
        raise QueryError(
            field,
            f"{ms} looks like epoch seconds (or a time before 1973); "
            f"epoch milliseconds are expected, e.g. {ms * 1000}",
        )
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` and millisecond precision (the form we echo back)."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def parse_time(value: object, *, field: str = "time", now: datetime | None = None) -> datetime:
    """Parse one time value into an aware UTC datetime truncated to milliseconds.

    Raises :class:`QueryError` naming ``field`` when the value is not understood.
    """
    result: datetime
    if isinstance(value, datetime):
        result = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, bool):
        raise QueryError(field, f"{value!r} is a boolean; expected {_TIME_EXPECTED}")
    elif isinstance(value, int):
        result = _from_ms(value, field)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            raise QueryError(field, f"{value!r} is not a whole number of epoch milliseconds")
        result = _from_ms(int(value), field)
    elif isinstance(value, str):
        result = _parse_time_string(value, field, now)
    else:
        raise QueryError(
            field, f"a {type(value).__name__} is not a time; expected {_TIME_EXPECTED}"
        )
    if result.year < 1970:
        raise QueryError(field, f"{value!r} is before 1970; expected a time after 1970")
    return result.replace(microsecond=(result.microsecond // 1000) * 1000)


def _parse_time_string(value: str, field: str, now: datetime | None) -> datetime:
    text = value.strip()
    shown = value if len(value) <= 64 else value[:61] + "..."
    if not text:
        raise QueryError(field, f"empty; expected {_TIME_EXPECTED}")
    if text.isascii() and text.isdigit():  # "¹".isdigit() is True, int("¹") fails
        if len(text) > 15:
            raise QueryError(field, f"{shown!r} is out of range for epoch milliseconds")
        return _from_ms(int(text), field)
    reference = (now or utc_now()).astimezone(UTC)
    if text.lower() == "now":
        return reference
    try:
        span = _span(text)
        if span is not None:
            return reference - span
    except OverflowError:
        raise QueryError(field, f"{shown!r} reaches back before year 1") from None
    if text[-1:] == "z":  # RFC 3339 allows a lower-case zone designator
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError:
        raise QueryError(field, f"{shown!r} is not {_TIME_EXPECTED}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise QueryError(field, f"{shown!r} is out of range") from None


def _span(text: str) -> timedelta | None:
    """``90m``, ``24h``, ``7d``... as a timedelta; None when ``text`` is not a span."""
    match = _SPAN.match(text.lower())
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * _SPAN_UNITS[match.group(2)])


def parse_span(value: object, *, field: str) -> timedelta:
    """A length of time: a ``timedelta`` (0 or more), or a span such as ``90m``, ``24h``,
    ``3d``, ``2w`` (the spelling of relative ``since`` values).

    Raises :class:`QueryError` naming ``field`` when the value is not understood.
    """
    expected = "a span such as 3d, 72h or 90m"
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise QueryError(field, f"{format_span(value)} is negative; expected {expected}")
        return value
    if isinstance(value, str):
        shown = value if len(value) <= 64 else value[:61] + "..."
        try:
            span = _span(value.strip())
        except OverflowError:
            raise QueryError(field, f"{shown!r} is too long") from None
        if span is None:
            raise QueryError(field, f"{shown!r} is not {expected}")
        return span
    raise QueryError(
        field, f"a {type(value).__name__} is not a length of time; expected {expected}"
    )


def format_span(value: timedelta) -> str:
    """A span in the largest whole unit: ``3d``, ``36h``, ``90m``, ``45s``."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
