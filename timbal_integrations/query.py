"""``RunQuery``: the one place run filters are validated and turned into API parameters.

Every front end (library keyword arguments, CLI flags, MCP tool arguments, Airflow
operator arguments) builds a :class:`RunQuery` and hands it to the client.

Times (``since`` inclusive, ``until`` exclusive) accept an aware ``datetime``, an ISO 8601
string (no offset means UTC), epoch milliseconds (int or digit string), ``now``, or a span
back from now (``90m``, ``24h``, ``7d``, ``2w``, ``30s``). "Now" is injectable for tests.
They are parsed by :mod:`timbal_integrations.times`; the filter names and the checks of
the other values are :mod:`timbal_integrations.filters`'. Both modules' public names are
importable from here too, where they have always been.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .errors import QueryError
from .filters import (
    CHANGING_FILTERS,
    FILTER_NAMES,
    SORT_FIELDS,
    SORT_ORDERS,
    STRING_FILTERS,
    check_metadata,
    check_string,
    parse_bool,
    run_value,
)
from .times import format_span, format_time, parse_span, parse_time, to_epoch_ms, utc_now

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
            set_(self, name, None if value is None else check_string(name, value))
        reference = now or utc_now()
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
        set_(self, "metadata", None if metadata is None else check_metadata(metadata))
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
            elif run_value(run, name) != wanted:
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
