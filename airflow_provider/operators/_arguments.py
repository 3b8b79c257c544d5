"""Reading the operators' templated arguments.

Airflow renders a templated argument to a string, and a template that renders nothing
to an empty one: these helpers read such values back (an empty string is "not set", a
digit string is a number) and leave every check to the core (:mod:`timbal_integrations.
limits`, :class:`~timbal_integrations.RunQuery`), which names the argument when a value
is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from timbal_integrations.limits import Parallel, check_limit, check_parallel

__all__ = ["given", "number", "plain_utc", "read_limit", "read_parallel"]


def given(value: object) -> Any:
    """``None`` for a value that is not set (templates that render empty count as unset)."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def plain_utc(value: datetime) -> datetime:
    """A standard-library aware UTC datetime (pendulum's subclass has other arithmetic)."""
    v = value.astimezone(UTC) if value.tzinfo is not None else value
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def number(value: object) -> Any:
    """A set value, with an ASCII digit string (what a template renders) read as an int."""
    value = given(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def read_limit(value: object) -> int | None:
    """A templated ``limit``: None, or a whole number of runs (checked by the core)."""
    return check_limit(number(value))


def read_parallel(value: object) -> Parallel:
    """A templated ``parallel``: a whole number or ``auto`` (checked by the core)."""
    return check_parallel(number(value))
