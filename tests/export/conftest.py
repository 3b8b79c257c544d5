"""Fixtures of the export tests: clients of the emulator and file readers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from timbal_integrations import TimbalClient
from timbal_integrations.emulator import Emulator

ClientFor = Callable[..., TimbalClient]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    """Make clients of an emulator (closed at teardown)."""
    clients: list[TimbalClient] = []

    def make(emu: Emulator, **kwargs: Any) -> TimbalClient:
        client = TimbalClient(
            api_key=emu.api_key,
            host=emu.base_url,
            org_id=emu.org_id,
            project_id=emu.project_id,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(timbal_emulator: Emulator, client_for: ClientFor) -> TimbalClient:
    """A client of the session emulator (3,000 runs)."""
    return client_for(timbal_emulator)
