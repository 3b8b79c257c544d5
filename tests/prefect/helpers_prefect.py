"""Helpers of the Prefect tests: blocks for emulators, and reading back from the API."""

from __future__ import annotations

import time
from typing import Any

from prefect_timbal import TimbalCredentials
from tests.support.truth import settings_for
from timbal_integrations.emulator import Emulator

__all__ = ["asset_events", "credentials_for"]


def credentials_for(emu: Emulator, **overrides: Any) -> TimbalCredentials:
    """A ``TimbalCredentials`` block for ``emu`` (fields overridable)."""
    return TimbalCredentials(**settings_for(emu, **overrides))


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
