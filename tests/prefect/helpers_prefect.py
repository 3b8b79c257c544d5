"""Helpers of the Prefect tests: blocks for emulators, and reading back from the API."""

from __future__ import annotations

import time
from typing import Any

from prefect_timbal import TimbalCredentials
from timbal_integrations.emulator import Emulator

__all__ = ["SECRET_KEY", "asset_events", "credentials_for"]

SECRET_KEY = "tk-prefect-SECRET-8b2e71"
"""The key of the Prefect tests' emulators: watched by the leak guard."""


def credentials_for(emu: Emulator, **overrides: Any) -> TimbalCredentials:
    """A ``TimbalCredentials`` block for ``emu`` (fields overridable)."""
    fields: dict[str, Any] = {
        "api_key": emu.api_key,
        "host": emu.base_url,
        "org_id": emu.org_id,
        "project_id": emu.project_id,
    }
    fields.update(overrides)
    return TimbalCredentials(**fields)


def asset_events(asset_key: str, *, count: int, deadline_s: float = 60.0) -> list[Any]:
    """The asset's materialisation events as the Prefect API stored them, oldest first.

    Events reach the API from a background worker and are persisted in batches, so this
    polls the API until ``count`` of them are there (or the deadline passes).
    """
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    wanted = EventFilter(
        event=EventNameFilter(prefix=["prefect.asset.materialization."]),
        resource=EventResourceFilter(id=[asset_key]),
    )
    stop = time.monotonic() + deadline_s
    with get_client(sync_client=True) as client:
        while True:
            events = list(client.read_events(filter=wanted, limit=50).events)
            if len(events) >= count or time.monotonic() > stop:
                return sorted(events, key=lambda event: event.occurred)
            time.sleep(0.1)  # the persister flushes every 0.2 s (tests/prefect/conftest.py)
