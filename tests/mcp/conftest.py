"""Fixtures of the MCP server tests (helpers live in ``helpers_mcp``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from tests.mcp.helpers_mcp import API_KEY, make_server
from timbal_integrations.emulator import Emulator, run_emulator


@pytest.fixture(scope="session")
def emu() -> Iterator[Emulator]:
    """1,200 runs over 30 days ending at FIXED_END, 50 per page, a distinctive key."""
    with run_emulator(runs=1200, seed=11, page_size=50, api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def server(emu: Emulator) -> MCPServer[Any]:
    """A server reaching the shared emulator, "now" fixed at the end of its data."""
    return make_server(emu)
