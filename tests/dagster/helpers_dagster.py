"""Helpers of the Dagster tests."""

from __future__ import annotations

from typing import Any

from dagster_timbal import TimbalResource
from timbal_integrations.emulator import Emulator

__all__ = ["SECRET_KEY", "metadata_values", "resource_for"]

SECRET_KEY = "tk-dagster-SECRET-5f1a9c"
"""The key of the Dagster tests' emulators: watched by the leak guard."""


def resource_for(emu: Emulator, **overrides: Any) -> TimbalResource:
    """A resource configured for ``emu`` (fields overridable)."""
    fields: dict[str, Any] = {
        "api_key": emu.api_key,
        "host": emu.base_url,
        "org_id": emu.org_id,
        "project_id": emu.project_id,
    }
    fields.update(overrides)
    return TimbalResource(**fields)


def metadata_values(materialization: Any) -> dict[str, Any]:
    """A materialisation's metadata as plain values."""
    return {key: value.value for key, value in materialization.metadata.items()}
