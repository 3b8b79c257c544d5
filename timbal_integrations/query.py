"""``RunQuery``: the one place run filters are validated and turned into API parameters.

Every front end (library keyword arguments, CLI flags, MCP tool arguments, Airflow
operator arguments) builds a :class:`RunQuery` and hands it to the client.

Times (``since`` inclusive, ``until`` exclusive) accept an aware ``datetime``, an ISO 8601
string (no offset means UTC), epoch milliseconds (int or digit string), ``now``, or a span
back from now (``90m``, ``24h``, ``7d``, ``2w``, ``30s``). "Now" is injectable for tests.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from . import defaults
from .errors import QueryError

__all__ = [
    "CHANGING_FILTERS",
    "FILTER_NAMES",
    "SORT_FIELDS",
    "SORT_ORDERS",
    "RunQuery",
    "format_span",
    "format_time",
    "parse_bool",
    "parse_span",
    "parse_time",
    "to_epoch_ms",
]

SORT_FIELDS: Final = ("id", "created_at", "duration_ms", "cost_usd", "cost_credits")
SORT_ORDERS: Final = ("asc", "desc")
STRING_FILTERS: Final = ("status", "user_id", "sentiment", "group_id", "workforce_id", "rev")
FILTER_NAMES: Final = (
    *STRING_FILTERS,
    "since",
    "until",
    "metadata",
    "roots",
    "sort_by",
    "sort_order",
)
"""The filter names, the same in every front end."""

CHANGING_FILTERS: Final = ("status", "sentiment")
"""Filters on fields that change after a run is created: a ``running`` run ends with
another status, and ``last_reaction_sentiment`` follows the latest reaction. The other
filters are on fields a run keeps for life (its user, workforce, group, revision,
metadata, parent and ``created_at``)."""

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
_MAX_STRING: Final = defaults.MAX_FILTER_CHARS
_TIME_EXPECTED = "an ISO 8601 time, epoch milliseconds, or a span like 24h"

Now = Callable[[], datetime]


def _utc_now() -> datetime:
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
    reference = (now or _utc_now()).astimezone(UTC)
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


def parse_bool(value: object, *, field: str) -> bool:
    """``True``/``False`` or the strings true/false/1/0/yes/no (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
    raise QueryError(field, f"{value!r} is not a boolean; expected true or false")


def _check_string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise QueryError(name, f"a {type(value).__name__} is not allowed; expected a string")
    text = value.strip()
    if not text:
        raise QueryError(name, "empty; leave the filter out to match everything")
    if len(text) > _MAX_STRING:
        raise QueryError(name, f"too long ({len(text)} characters; at most {_MAX_STRING})")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise QueryError(name, "contains control characters")
    return text


_METADATA_EXAMPLE: Final = 'expected a JSON object such as {"env": "prod"}'
_MAX_METADATA_CHARS: Final = defaults.MAX_METADATA_CHARS
_MAX_METADATA_DEPTH: Final = defaults.MAX_METADATA_DEPTH


def _no_constant(name: str) -> Any:
    """``json.loads``' hook for ``NaN``, ``Infinity`` and ``-Infinity``: not JSON."""
    raise QueryError("metadata", f"holds {name}, which is not a JSON number")


def _check_metadata_value(parsed: object) -> None:
    """Walk a metadata value (iteratively: no recursion to exhaust) and refuse what
    cannot be sent: nesting deeper than the bound, non-string keys, a float that is not
    finite, a value JSON has no form for."""
    stack: list[tuple[object, int]] = [(parsed, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > _MAX_METADATA_DEPTH:
                raise QueryError(
                    "metadata",
                    f"nests objects and arrays more than {_MAX_METADATA_DEPTH} deep; "
                    'expected a flat object such as {"env": "prod"}',
                )
            if isinstance(item, dict):
                if not all(isinstance(k, str) for k in item):
                    raise QueryError("metadata", "keys must be strings")
                children: Any = item.values()
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise QueryError("metadata", f"holds {item!r}, which is not a JSON number")
        elif item is not None and not isinstance(item, str | int | bool):
            raise QueryError(
                "metadata", f"holds a {type(item).__name__}, which cannot be sent as JSON"
            )


def _check_metadata(value: object) -> dict[str, Any]:
    parsed: object = value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise QueryError("metadata", f"empty; {_METADATA_EXAMPLE}")
        if len(text) > _MAX_METADATA_CHARS:
            raise QueryError(
                "metadata",
                f"too long ({len(text):,} characters; at most {_MAX_METADATA_CHARS:,})",
            )
        try:
            parsed = json.loads(text, parse_constant=_no_constant)
        except QueryError:
            raise
        except RecursionError:
            raise QueryError(
                "metadata", f"nests objects and arrays more than {_MAX_METADATA_DEPTH} deep"
            ) from None
        except ValueError:
            raise QueryError("metadata", f"is not valid JSON; {_METADATA_EXAMPLE}") from None
    if not isinstance(parsed, dict):
        raise QueryError(
            "metadata", f"a {type(parsed).__name__} is not allowed; {_METADATA_EXAMPLE}"
        )
    if not parsed:
        raise QueryError("metadata", "empty object; leave the filter out to match everything")
    _check_metadata_value(parsed)
    compact = json.dumps(parsed, separators=(",", ":"), allow_nan=False)
    if len(compact) > _MAX_METADATA_CHARS:
        raise QueryError(
            "metadata",
            f"too long ({len(compact):,} characters of JSON; at most {_MAX_METADATA_CHARS:,})",
        )
    return dict(parsed)


def _run_value(run: Mapping[str, Any], name: str) -> Any:
    """The value of ``run`` that filter ``name`` compares."""
    if name == "sentiment":
        return run.get("last_reaction_sentiment")
    if name in ("user_id", "workforce_id"):
        nested = run.get("user" if name == "user_id" else "workforce")
        return nested.get("id") if isinstance(nested, Mapping) else None
    return run.get(name)


class RunQuery:
    """A validated set of run filters.

    >>> q = RunQuery(status="error", since="2026-11-01", until="2026-11-02")
    >>> q.to_params()["from"]
    '1761955200000'

    All arguments are optional. Bad values raise :class:`QueryError` naming the field.
    """

    __slots__ = (
        "group_id",
        "metadata",
        "rev",
        "roots",
        "sentiment",
        "since",
        "sort_by",
        "sort_order",
        "status",
        "until",
        "user_id",
        "workforce_id",
    )

    status: str | None
    user_id: str | None
    sentiment: str | None
    group_id: str | None
    workforce_id: str | None
    rev: str | None
    since: datetime | None
    until: datetime | None
    metadata: dict[str, Any] | None
    roots: bool | None
    sort_by: str | None
    sort_order: str | None

    def __init__(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        sentiment: str | None = None,
        group_id: str | None = None,
        workforce_id: str | None = None,
        rev: str | None = None,
        since: datetime | date | str | int | None = None,
        until: datetime | date | str | int | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        roots: bool | str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        now: datetime | None = None,
    ) -> None:
        set_ = object.__setattr__
        strings = {
            "status": status,
            "user_id": user_id,
            "sentiment": sentiment,
            "group_id": group_id,
            "workforce_id": workforce_id,
            "rev": rev,
        }
        for name, value in strings.items():
            set_(self, name, None if value is None else _check_string(name, value))
        reference = now or _utc_now()
        start = None if since is None else parse_time(since, field="since", now=reference)
        end = None if until is None else parse_time(until, field="until", now=reference)
        if start is not None and end is not None and start >= end:
            raise QueryError(
                "since",
                f"{format_time(start)} is not before until ({format_time(end)}); "
                "since is inclusive and until exclusive, so since must be earlier",
            )
        set_(self, "since", start)
        set_(self, "until", end)
        set_(self, "metadata", None if metadata is None else _check_metadata(metadata))
        set_(self, "roots", None if roots is None else parse_bool(roots, field="roots"))
        if sort_by is not None and sort_by not in SORT_FIELDS:
            raise QueryError("sort_by", f"{sort_by!r} is not one of {', '.join(SORT_FIELDS)}")
        if sort_order is not None and sort_order not in SORT_ORDERS:
            raise QueryError("sort_order", f"{sort_order!r} is not one of asc, desc")
        set_(self, "sort_by", sort_by)
        set_(self, "sort_order", sort_order)

    @classmethod
    def from_filters(cls, filters: Mapping[str, Any], *, now: datetime | None = None) -> RunQuery:
        """Build from a mapping of filter names; unknown names are a :class:`QueryError`."""
        unknown = sorted(set(filters) - set(FILTER_NAMES))
        if unknown:
            raise QueryError(
                unknown[0], f"unknown filter; expected one of {', '.join(FILTER_NAMES)}"
            )
        return cls(now=now, **{k: v for k, v in filters.items() if v is not None})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RunQuery is immutable; use .replace(...)")

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FILTER_NAMES}

    def replace(self, **changes: Any) -> RunQuery:
        """A copy with some filters changed (``None`` removes a filter)."""
        unknown = sorted(set(changes) - set(FILTER_NAMES))
        if unknown:
            raise QueryError(unknown[0], "unknown filter")
        values = self._values()
        values.update(changes)
        return RunQuery.from_filters(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunQuery) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(json.dumps(self.as_dict(), sort_keys=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"RunQuery({inner})"

    @property
    def effective_sort_by(self) -> str:
        """The sort field the server will use (``created_at`` when not given)."""
        return self.sort_by or "created_at"

    @property
    def effective_sort_order(self) -> str:
        """The sort direction the server will use (``desc`` when not given)."""
        return self.sort_order or "desc"

    def as_dict(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready (times as ISO 8601 UTC strings)."""
        out: dict[str, Any] = {}
        for name, value in self._values().items():
            if value is None:
                continue
            out[name] = format_time(value) if isinstance(value, datetime) else value
        return out

    def matches(self, run: Mapping[str, Any], *, only: Iterable[str] | None = None) -> bool:
        """Whether ``run`` (a run dict as the API sends it) passes this query's filters,
        as the API evaluates them: exact, case-sensitive equality of ``status``,
        ``last_reaction_sentiment`` (``sentiment``), ``user.id``, ``group_id`` and
        ``workforce.id``, and ``since <= created_at < until``.

        ``only`` names the filters to check (default: every filter that is set). ``rev``,
        ``metadata`` and ``roots`` cannot be checked from a listed run (it carries no
        revision or metadata, and what ``roots=false`` selects is the server's choice):
        asking for one that is set raises :class:`QueryError` naming it. Sorting is not
        a filter and is never checked.
        """
        names = FILTER_NAMES if only is None else tuple(only)
        for name in names:
            if name not in FILTER_NAMES:
                raise QueryError(name, f"unknown filter; expected one of {', '.join(FILTER_NAMES)}")
            if name in ("rev", "metadata", "roots") and getattr(self, name) is not None:
                raise QueryError(name, "cannot be checked on a listed run")
        for name in names:
            wanted = getattr(self, name)
            if wanted is None or name in ("sort_by", "sort_order"):
                continue
            if name in ("since", "until"):
                created = parse_time(run["created_at"], field="created_at")
                if created < wanted if name == "since" else created >= wanted:
                    return False
            elif _run_value(run, name) != wanted:
                return False
        return True

    def to_params(self) -> dict[str, str]:
        """The query-string parameters of ``GET .../runs`` (``since``/``until`` as from/to ms)."""
        params: dict[str, str] = {}
        for name in STRING_FILTERS:
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.since is not None:
            params["from"] = str(to_epoch_ms(self.since))
        if self.until is not None:
            params["to"] = str(to_epoch_ms(self.until))
        if self.metadata is not None:
            params["metadata"] = json.dumps(self.metadata, separators=(",", ":"), sort_keys=True)
        if self.roots is not None:
            params["roots"] = "true" if self.roots else "false"
        if self.sort_by is not None:
            params["sort_by"] = self.sort_by
        if self.sort_order is not None:
            params["sort_order"] = self.sort_order
        return params

    def split(self, n: int) -> list[RunQuery]:
        """Cut ``[since, until)`` into at most ``n`` contiguous windows, oldest first.

        Windows share their boundaries (one's ``until`` is the next one's ``since``), so
        together they cover the range with no gap and no overlap. A range shorter than
        ``n`` milliseconds gives fewer windows.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise QueryError("parallel", f"{n!r} is not a positive whole number of windows")
        if self.since is None or self.until is None:
            missing = "since" if self.since is None else "until"
            raise QueryError(missing, "splitting into windows needs both since and until")
        start = to_epoch_ms(self.since)
        end = to_epoch_ms(self.until)
        count = max(1, min(n, end - start))
        bounds = [start + ((end - start) * i) // count for i in range(count)] + [end]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        windows = []
        for lo, hi in itertools.pairwise(bounds):
            values = self._values()
            values["since"] = epoch + timedelta(milliseconds=lo)
            values["until"] = epoch + timedelta(milliseconds=hi)
            windows.append(RunQuery.from_filters(values))
        return windows
