"""How this package words an error for a Dagster user: the one place.

Every message ``dagster_timbal`` shows (resource configuration, asset and sensor
arguments, failures of a materialisation or a sensor tick) is made here, from the core's
errors and their attributes. The core will gain ``describe(exc, audience)`` and
``ConfigError.argument``; switching to them changes this module only.
"""

from __future__ import annotations

from typing import Final

from timbal_integrations import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
)

__all__ = ["PERMANENT", "field_error", "message", "missing"]

PERMANENT: Final = (
    ConfigError,
    QueryError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
)
"""Errors that a retry of the run cannot fix (the run fails at once, without retries)."""


def message(exc: BaseException) -> str:
    """The error on one line (the core's messages never hold the API key)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def missing(owner: str, field: str, variable: str) -> ConfigError:
    """A required resource field that is neither set nor in the environment."""
    return ConfigError(
        f"{owner}.{field}: not set; pass {field}=EnvVar({variable!r}) (or set {variable} "
        "in the environment of the Dagster code location)"
    )


def field_error(owner: str, field: str, exc: BaseException) -> ConfigError:
    """The core rejected the value of the resource field ``field``."""
    if isinstance(exc, QueryError) and exc.field == field:
        return ConfigError(f"{owner}.{message(exc)}")  # "field: reason" -> "Owner.field: ..."
    return ConfigError(f"{owner}.{field}: {message(exc)}")
