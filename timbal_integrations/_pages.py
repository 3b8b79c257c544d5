"""The export hot path: list pages checked against the schema but kept as the server's
dicts, without pydantic models.

This module needs only pydantic-core, not pydantic: an export (``timbal-runs export``,
the Airflow operator writing files) never builds a model, and importing pydantic's
model machinery would cost it ~50-70 ms of start-up. ``timbal_integrations.models``
re-exports the public names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic_core import SchemaValidator, ValidationError, core_schema

from .export.records import RECORD_FIELDS

__all__ = ["RECORD_FIELDS", "RawPage", "parse_raw_page"]

# RECORD_FIELDS, the flat record's columns, are read off export.records' table.


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- raw pages
# The export hot path keeps each run as the dict the server sent (exactly its fields and
# spellings) but still checks it against the schema, in pydantic-core, without building
# models: about half the cost per run of RunsPage.


_ISO_TIME = r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?([Zz]|[+-]\d\d:?\d\d)?$"


class _Optional(NamedTuple):
    """A key that may be absent or null."""

    schema: core_schema.CoreSchema


def _record(**fields: core_schema.CoreSchema | _Optional) -> core_schema.TypedDictSchema:
    """A dict with these keys, keeping any others. The checked dict lists its keys in
    this order, then the others: keep it the models' order."""
    checked: dict[str, core_schema.TypedDictField] = {}
    for name, field in fields.items():
        if isinstance(field, _Optional):
            nullable = core_schema.nullable_schema(field.schema)
            checked[name] = core_schema.typed_dict_field(nullable, required=False)
        else:
            checked[name] = core_schema.typed_dict_field(field)
    return core_schema.typed_dict_schema(checked, extra_behavior="allow")


@functools.cache
def _page_validator() -> SchemaValidator:
    """The schema of a list page, written straight in pydantic-core's terms.

    It says what the models above say (a test holds the two to the same verdicts and key
    order), but building it takes ~1 ms, where deriving it from TypedDicts through
    pydantic took ~50 ms of every export's start-up.
    """
    text, integer, number = (
        core_schema.str_schema(),
        core_schema.int_schema(),
        core_schema.float_schema(),
    )
    user = _record(id=text, name=text, email=text, photo_url=_Optional(text))
    workforce = _record(
        id=text,
        name=text,
        type=text,
        uid=_Optional(text),
        url=_Optional(text),
        description=_Optional(text),
        deleted_at=_Optional(integer),
    )
    run = _record(
        id=text,
        idempotency_key=text,
        status=text,
        created_at=core_schema.str_schema(pattern=_ISO_TIME),
        duration_ms=_Optional(integer),
        cost_usd=number,
        cost_credits=number,
        group_id=_Optional(text),
        parent_id=_Optional(text),
        last_reaction_sentiment=_Optional(text),
        user=user,
        workforce=workforce,
    )
    page = _record(runs=core_schema.list_schema(run), next_page_token=_Optional(text))
    return SchemaValidator(page, core_schema.CoreConfig(title="RunsPage"))


@dataclass(frozen=True, slots=True)
class RawPage:
    """A page whose runs are the server's own dicts, checked against the schema.

    ``created`` holds each run's ``created_at`` parsed to an aware UTC datetime, in order.
    """

    runs: list[dict[str, Any]]
    created: list[datetime]
    next_page_token: str | None


_fromisoformat = datetime.fromisoformat


def _parse_all_created(runs: list[dict[str, Any]]) -> list[datetime]:
    """Each run's created_at as an aware UTC datetime.

    The whole page is parsed in one C-level pass (``map``); values that are not already
    UTC (an offset, no zone) are then normalised. A bad value is named by its run.
    """
    values = [run["created_at"] for run in runs]
    try:
        created = list(map(_fromisoformat, values))
    except ValueError:
        index = next(i for i, value in enumerate(values) if not _is_iso(value))
        raise ValidationError.from_exception_data(
            "RawPage",
            [
                {
                    "type": "datetime_from_date_parsing",
                    "loc": ("runs", index, "created_at"),
                    "input": values[index],
                    "ctx": {"error": "not a valid ISO 8601 date-time"},
                }
            ],
        ) from None
    if all(moment.tzinfo is UTC for moment in created):
        return created  # the API writes ...Z: nothing to convert
    return [_utc(moment) for moment in created]


def _is_iso(value: str) -> bool:
    try:
        _fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_raw_page(body: bytes) -> RawPage:
    """Check a page body against the schema and keep its runs as dicts.

    Raises pydantic's ``ValidationError`` (the client maps it to ResponseValidationError).
    """
    data: dict[str, Any] = _page_validator().validate_json(body)
    runs: list[dict[str, Any]] = data["runs"]
    return RawPage(runs, _parse_all_created(runs), data.get("next_page_token") or None)
