"""The asynchronous client's connections come in pools of at most 8 (``client/_shards``).

httpcore's pool scans every connection whenever a request starts or ends, so one pool
of 32 connections cost a 32-wide listing more CPU than the requests themselves. These
tests talk to the emulator over real sockets.
"""

from __future__ import annotations

import asyncio

import httpx

from timbal_integrations import AsyncTimbalClient, TimbalClient
from timbal_integrations.client._shards import SHARD_CONNECTIONS, AsyncShards
from timbal_integrations.emulator import Emulator
from timbal_integrations.emulator.pytest_plugin import EmulatorFactory
from timbal_integrations.errors import NotFoundError


def connections(pool: httpx.AsyncHTTPTransport) -> int:
    return len(pool._pool.connections)


def test_32_requests_in_flight_are_spread_over_four_pools_of_8(
    timbal_emulator_factory: EmulatorFactory,
) -> None:
    emu: Emulator = timbal_emulator_factory(runs=200, seed=2, page_size=10, latency_ms=20)

    async def main() -> tuple[list[int], list[int], int]:
        async with AsyncTimbalClient(env=emu.env(), max_connections=32) as client:
            shards = client._wire
            assert isinstance(shards, AsyncShards)
            pages = await asyncio.gather(*(client.get_runs_page() for _ in range(32)))
            assert all(len(page.runs) == 10 for page in pages)
            return (
                [connections(pool) for pool in shards.pools],
                list(shards.in_flight),
                client.requests_made,
            )

    opened, in_flight, requests = asyncio.run(main())
    # All 32 start before any answer can arrive: each pool takes 8, none more.
    assert opened == [SHARD_CONNECTIONS] * 4
    assert in_flight == [0, 0, 0, 0]  # every response closed gave its slot back
    assert requests == 32


def test_an_error_answer_gives_its_slot_back(timbal_emulator: Emulator) -> None:
    async def main() -> list[int]:
        async with AsyncTimbalClient(env=timbal_emulator.env()) as client:
            shards = client._wire
            assert isinstance(shards, AsyncShards)
            for _ in range(3):
                try:
                    await client.get_run("no-such-run")
                except NotFoundError:
                    pass
                else:
                    raise AssertionError("a missing run was found")
            return list(shards.in_flight)

    assert asyncio.run(main()) == [0] * 4


def test_the_sync_client_keeps_one_pool(timbal_emulator: Emulator) -> None:
    with TimbalClient(env=timbal_emulator.env()) as client:
        assert isinstance(client._wire, httpx.HTTPTransport)
        assert client.get_runs_page().runs


def test_a_small_async_client_keeps_one_pool(timbal_emulator: Emulator) -> None:
    async def main() -> object:
        async with AsyncTimbalClient(env=timbal_emulator.env(), max_connections=8) as client:
            await client.get_runs_page()
            return client._wire

    assert isinstance(asyncio.run(main()), httpx.AsyncHTTPTransport)
