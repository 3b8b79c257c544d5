"""Chaos: a quarter of all requests fail (429 with Retry-After, 500, 502, 503, dropped
connections) and a request-rate limit paces the client; every front end still gets
exactly the emulator's runs, each once, in order.

The CLI runs as a real process (retries without waiting, ``TIMBAL_RETRY_TESTING=1``,
and a high ``--max-retries``); the library and the MCP server run in-process with real
but tiny waits (``chaos_policy``), so that the rate limit truly paces them. The Airflow
file export under chaos lives in tests/airflow/test_hard_airflow_chaos.py.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from mcp import Client

from mcp_server import ServerSettings, create_server
from tests.hardening.helpers_hard import CHAOS, SECRET_KEY, chaos_policy, real_sleeps
from tests.support.processes import run_cli
from timbal_integrations import AsyncTimbalClient, TimbalClient
from timbal_integrations.emulator import FAULT_KINDS, FIXED_END, Emulator

pytestmark = pytest.mark.timeout(240)


def client_of(emu: Emulator) -> TimbalClient:
    return TimbalClient(
        emu.api_key,
        host=emu.base_url,
        org_id=emu.org_id,
        project_id=emu.project_id,
        retry_policy=chaos_policy(),
        env={},
    )


def assert_it_was_a_bad_day(emu: Emulator, *, rate_limited: bool = True) -> None:
    stats = emu.stats
    assert set(stats.faults_by_kind) == set(FAULT_KINDS), stats.faults_by_kind
    # A fault is drawn for every request the rate limit lets through.
    assert stats.faults_total >= 0.15 * (stats.requests_total - stats.rate_limited)
    if rate_limited:
        # More requests than the bucket holds, so the limit was in force; the clients
        # space their requests by its RateLimit-* headers, so it refused a handful at most.
        settings = emu.app.settings
        assert stats.requests_total > 2 * (settings["rate_limit_burst"] or settings["rate_limit"])
        assert stats.rate_limited <= 5, "the clients ignored the rate limit's headers"


@pytest.mark.slow
def test_a_100k_run_export_through_chaos_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path
) -> None:
    # The CLI retries without waiting, so between two tokens of the rate limit it is
    # refused as often as the emulator can answer: a millisecond per answer bounds that
    # (at most 10 refusals a token), or a fast machine, or a warm cached store of these
    # 100k runs, runs a refused page past --max-retries.
    emu: Emulator = timbal_emulator_factory(
        runs=100_000, page_size=200, api_key=SECRET_KEY, rate_limit=100, latency_ms=1, **CHAOS
    )
    target = tmp_path / "runs.jsonl"
    result = run_cli(
        ["export", "--out", str(target), "--max-retries", "100"], emu.env(), timeout=220
    )
    assert result.returncode == 0, result.stderr
    with target.open("rb") as fh:
        exported = [orjson.loads(line) for line in fh]
    assert len(exported) == 100_000
    assert exported == emu.runs  # every run, once, in order, exactly as the API served it
    manifest = json.loads(Path(f"{target}.manifest.json").read_text())
    assert manifest["count"] == 100_000
    assert manifest["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert sorted(os.listdir(tmp_path)) == ["runs.jsonl", "runs.jsonl.manifest.json"]
    # One sequential client on a busy 2-core machine may stay under 100 requests/s, so
    # whether the limit bit depends on the machine; the parallel tests below always hit it.
    assert_it_was_a_bad_day(emu, rate_limited=False)
    assert SECRET_KEY not in result.stderr + result.stdout


def test_a_parallel_export_through_chaos_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path
) -> None:
    emu: Emulator = timbal_emulator_factory(
        runs=30_000, page_size=100, api_key=SECRET_KEY, rate_limit=100, **CHAOS
    )
    target = tmp_path / "runs.csv"
    args = ["export", "--out", str(target), "--parallel", "8", "--max-retries", "100"]
    result = run_cli(args, emu.env(), timeout=200)
    assert result.returncode == 0, result.stderr
    with target.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["id"] for row in rows] == [run["id"] for run in emu.runs]
    assert [row["status"] for row in rows] == [run["status"] for run in emu.runs]
    assert [float(row["cost_usd"]) for row in rows] == [run["cost_usd"] for run in emu.runs]
    assert_it_was_a_bad_day(emu)


def test_library_listing_through_chaos_is_exact_sequential_and_parallel(
    timbal_emulator_factory: Any,
) -> None:
    emu: Emulator = timbal_emulator_factory(
        runs=6_000, page_size=50, api_key=SECRET_KEY, rate_limit=100, **CHAOS
    )
    expected = [run["id"] for run in emu.runs]
    with real_sleeps(), client_of(emu) as client:
        sequential = [run.id for run in client.list_runs()]
        parallel = [run.id for run in client.list_runs(parallel=8, until=FIXED_END)]
    assert sequential == expected
    assert parallel == expected

    async def go() -> list[str]:
        async with AsyncTimbalClient(
            emu.api_key,
            host=emu.base_url,
            org_id=emu.org_id,
            project_id=emu.project_id,
            retry_policy=chaos_policy(),
            env={},
        ) as client:
            return [run.id async for run in client.list_runs(parallel=4, until=FIXED_END)]

    with real_sleeps():
        assert asyncio.run(go()) == expected
    assert_it_was_a_bad_day(emu)


def test_mcp_paging_to_the_end_through_chaos_is_exact(timbal_emulator_factory: Any) -> None:
    emu: Emulator = timbal_emulator_factory(
        runs=3_000, page_size=50, api_key=SECRET_KEY, rate_limit=40, **CHAOS
    )
    server = create_server(
        ServerSettings(env=emu.env(), now=lambda: FIXED_END, retry_policy=chaos_policy())
    )

    async def go() -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
        ids: list[str] = []
        pages: list[dict[str, Any]] = []
        cursor: str | None = None
        async with Client(server) as client:
            for _ in range(100):
                arguments: dict[str, Any] = {"limit": 170}
                if cursor is not None:
                    arguments["cursor"] = cursor
                result = await client.call_tool("list_runs", arguments)
                assert not result.is_error, result.content
                data = result.structured_content
                assert data is not None
                pages.append(data)
                ids.extend(row["id"] for row in data["runs"])
                cursor = data.get("next_cursor")
                if cursor is None:
                    break
            summary = await client.call_tool("summarize_runs", {})
            assert not summary.is_error, summary.content
            assert summary.structured_content is not None
            return ids, pages, summary.structured_content

    with real_sleeps():
        ids, pages, summary = asyncio.run(go())
    assert ids == [run["id"] for run in emu.runs]
    assert len(pages) == -(-3_000 // 170)
    assert summary["total"] == 3_000
    assert summary["complete"] is True
    assert_it_was_a_bad_day(emu)
