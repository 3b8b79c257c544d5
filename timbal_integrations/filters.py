"""The run filters' vocabulary: their names, and how each value is checked.

:data:`FILTER_NAMES` are the filters, spelled the same in every front end;
:func:`filter_fields` is how a front end that keeps each filter in a field of its own
(an Airflow operator's attributes and ``template_fields``) derives those fields from the
names instead of writing the list again. The checks here (strings, metadata JSON,
booleans) are :class:`~timbal_integrations.query.RunQuery`'s, and :func:`run_value` is
what a filter compares on a run as the API sends it. Times are
:mod:`timbal_integrations.times`'.

Bad values raise :class:`~timbal_integrations.errors.QueryError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from . import defaults
from .errors import QueryError

__all__ = [
    "CHANGING_FILTERS",
    "FILTER_NAMES",
    "SORT_FIELDS",
    "SORT_ORDERS",
    "STRING_FILTERS",
    "check_metadata",
    "check_string",
    "filter_fields",
    "parse_bool",
    "run_value",
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
_MAX_STRING: Final = defaults.MAX_FILTER_CHARS


def filter_fields(
    *, without: Iterable[str] = (), rename: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The filters a front end takes, each mapped to the field that holds it, in
    :data:`FILTER_NAMES` order: ``{filter name: field name}``.

    For a front end that keeps every filter in a field (an attribute, a template field,
    a config field) of its own, so that it never writes the list of filter names again:
    ``without`` leaves out the filters it does not take, and ``rename`` gives a filter
    another field name where its own is taken. An Airflow operator, say, where ``roots``
    is a read-only property of ``BaseOperator``::

        FIELDS = filter_fields(rename={"roots": "roots_only"})

        class MyOperator(BaseOperator):
            template_fields = (*FIELDS.values(), "output_path")

            def build_query(self) -> RunQuery:
                values = {name: getattr(self, field) for name, field in FIELDS.items()}
                return RunQuery.from_filters(values)

    A name in ``without`` or ``rename`` that is not a filter, or two filters given one
    field, is a :class:`ValueError`: a mistake in the front end's code, raised when its
    module loads.
    """
    renamed = dict(rename or {})
    left_out = set(without)
    unknown = sorted((left_out | set(renamed)) - set(FILTER_NAMES))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a filter; expected one of {FILTER_NAMES}")
    fields = {name: renamed.get(name, name) for name in FILTER_NAMES if name not in left_out}
    if len(set(fields.values())) != len(fields):
        raise ValueError(f"two filters share a field: {fields}")
    return fields


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


def check_string(name: str, value: object) -> str:
    """A string filter's value, stripped: not empty, at most ``MAX_FILTER_CHARS``
    characters, no control characters."""
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


def check_metadata(value: object) -> dict[str, Any]:
    """The ``metadata`` filter: a non-empty JSON object (a mapping, or its JSON text)
    that can be sent: string keys, finite numbers, bounded nesting and size."""
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


def run_value(run: Mapping[str, Any], name: str) -> Any:
    """The value of ``run`` (a run dict as the API sends it) that filter ``name``
    compares."""
    if name == "sentiment":
        return run.get("last_reaction_sentiment")
    if name in ("user_id", "workforce_id"):
        nested = run.get("user" if name == "user_id" else "workforce")
        return nested.get("id") if isinstance(nested, Mapping) else None
    return run.get(name)
