"""The list endpoint's query parameters: validation and normalization.

Empty values count as absent and unknown parameters are ignored, as by the API. A
malformed value is a :class:`BadRequest` whose message names the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from timbal_integrations.emulator.data import to_epoch_ms

__all__ = [
    "EQ_FILTERS",
    "SORT_FIELDS",
    "SORT_ORDERS",
    "BadRequest",
    "ListParams",
    "canonical_json",
    "parse_created_at",
    "parse_list_params",
]

SORT_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "created_at",
    "duration_ms",
    "cost_usd",
    "cost_credits",
)
"""Accepted ``sort_by`` values."""

SORT_ORDERS: Final[tuple[str, ...]] = ("asc", "desc")
"""Accepted ``sort_order`` values."""

EQ_FILTERS: Final[tuple[str, ...]] = ("user_id", "status", "sentiment", "group_id", "workforce_id")
"""Filters that match one field exactly."""
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


class BadRequest(Exception):
    """A request the API answers with 400; ``message`` names the offending parameter."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ListParams:
    """Normalized list-endpoint parameters (filters, sort and page token)."""

    user_id: str | None = None
    status: str | None = None
    sentiment: str | None = None
    group_id: str | None = None
    workforce_id: str | None = None
    rev: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    metadata: tuple[tuple[str, bytes], ...] = ()
    roots: bool = False
    sort_by: str = "created_at"
    sort_order: str = "desc"
    page_token: str | None = None

    def filter_key(self) -> tuple[Any, ...]:
        """The filters alone, normalized, as a hashable key."""
        return (
            self.user_id,
            self.status,
            self.sentiment,
            self.group_id,
            self.workforce_id,
            self.rev,
            self.from_ms,
            self.to_ms,
            self.metadata,
            self.roots,
        )


def _int_param(name: str, raw: str) -> int:
    text = raw.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):  # "¹".isdigit() is True, int("¹") fails
        raise BadRequest(f"invalid '{name}': expected epoch milliseconds (an integer), got {raw!r}")
    return int(text)


def parse_list_params(query: Mapping[str, str]) -> ListParams:
    """Validate and normalize the list endpoint's query parameters.

    Empty values count as absent. Unknown parameters are ignored.

    Raises:
        BadRequest: a parameter is malformed; the message names it.
    """

    def get(name: str) -> str | None:
        value = query.get(name)
        return value if value else None

    from_raw, to_raw = get("from"), get("to")
    from_ms = _int_param("from", from_raw) if from_raw is not None else None
    to_ms = _int_param("to", to_raw) if to_raw is not None else None

    metadata: tuple[tuple[str, bytes], ...] = ()
    metadata_raw = get("metadata")
    if metadata_raw is not None:
        try:
            parsed = orjson.loads(metadata_raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"invalid 'metadata': not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise BadRequest("invalid 'metadata': expected a JSON object")
        metadata = tuple(sorted((str(k), canonical_json(v)) for k, v in parsed.items()))

    roots = False
    roots_raw = get("roots")
    if roots_raw is not None:
        lowered = roots_raw.strip().lower()
        if lowered in _TRUE:
            roots = True
        elif lowered not in _FALSE:
            raise BadRequest(f"invalid 'roots': expected true or false, got {roots_raw!r}")

    sort_by = get("sort_by") or "created_at"
    if sort_by not in SORT_FIELDS:
        raise BadRequest(
            f"invalid 'sort_by': expected one of {', '.join(SORT_FIELDS)}, got {sort_by!r}"
        )
    sort_order = get("sort_order") or "desc"
    if sort_order not in SORT_ORDERS:
        raise BadRequest(f"invalid 'sort_order': expected asc or desc, got {sort_order!r}")

    return ListParams(
        user_id=get("user_id"),
        status=get("status"),
        sentiment=get("sentiment"),
        group_id=get("group_id"),
        workforce_id=get("workforce_id"),
        rev=get("rev"),
        from_ms=from_ms,
        to_ms=to_ms,
        metadata=metadata,
        roots=roots,
        sort_by=sort_by,
        sort_order=sort_order,
        page_token=get("page_token"),
    )


def canonical_json(value: Any) -> bytes:
    """JSON bytes that are equal exactly when two JSON values are equal (``2.0`` is ``2``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def parse_created_at(value: str) -> int:
    """An RFC 3339 ``created_at`` as epoch milliseconds; an offset is required."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"created_at without an offset: {value!r}")
    return to_epoch_ms(parsed)
