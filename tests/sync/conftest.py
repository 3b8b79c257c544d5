"""Fixtures of the sync tests: live emulators on a clock the test moves, and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.sync.helpers_sync import START
from timbal_integrations import TimbalClient
from timbal_integrations.emulator import Emulator, EmulatorClock

LiveEmulator = Callable[..., Emulator]
ClientOf = Callable[[Emulator], TimbalClient]


@pytest.fixture
def live_emulator(timbal_emulator_factory: Any) -> LiveEmulator:
    """Start a live emulator whose clock stands at :data:`START` until the test moves it
    (2,000 runs over the 30 days before, seed 7, 100 runs a page, unless told)."""

    def start(**kwargs: Any) -> Emulator:
        kwargs.setdefault("runs", 2000)
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("page_size", 100)
        emu: Emulator = timbal_emulator_factory(
            live=True, clock=EmulatorClock(START), end=START, **kwargs
        )
        return emu

    return start


@pytest.fixture
def client_of() -> Iterator[ClientOf]:
    """Make clients of an emulator (closed at teardown)."""
    clients: list[TimbalClient] = []

    def make(emu: Emulator) -> TimbalClient:
        client = TimbalClient(env=emu.env())
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
