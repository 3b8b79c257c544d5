"""Helpers of the Dagster tests."""

from __future__ import annotations

from typing import Any

from dagster_timbal import TimbalResource
from tests.support.truth import settings_for
from timbal_integrations.emulator import Emulator

__all__ = ["metadata_values", "resource_for"]


def resource_for(emu: Emulator, **overrides: Any) -> TimbalResource:
    """A resource configured for ``emu`` (fields overridable)."""
    return TimbalResource(**settings_for(emu, **overrides))


def metadata_values(materialization: Any) -> dict[str, Any]:
    """A materialisation's metadata as plain values."""
    return {key: value.value for key, value in materialization.metadata.items()}
