"""How this package words an error for a Prefect user: the one place.

Every message ``prefect_timbal`` makes (block fields, task and flow arguments) is made
here, from the core's errors and their attributes. The core will gain
``describe(exc, audience)`` and ``ConfigError.argument``; switching to them changes this
module only.
"""

from __future__ import annotations

from timbal_integrations import ConfigError, QueryError

__all__ = ["block_field_error", "message", "not_set"]


def message(exc: BaseException) -> str:
    """The error on one line (the core's messages never hold the API key)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def not_set(block: str, field: str) -> ConfigError:
    """A required block field that is missing or blank."""
    return ConfigError(
        f"{block}.{field}: not set; fill it in on the block (Prefect UI: Blocks, or "
        f"{block}({field}=...).save(...))"
    )


def block_field_error(block: str, field: str, exc: BaseException) -> ConfigError:
    """The core rejected the value of the block field ``field``."""
    if isinstance(exc, QueryError) and exc.field == field:
        return ConfigError(f"{block}.{message(exc)}")  # "field: reason" -> "Block.field: ..."
    return ConfigError(f"{block}.{field}: {message(exc)}")
