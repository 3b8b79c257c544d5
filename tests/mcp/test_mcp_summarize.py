"""``summarize_runs``: exact rollups, checked against an independent recomputation."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_server.readable import readable
from tests.mcp.helpers_mcp import (
    API_KEY,
    call,
    created,
    expected_runs,
    in_session,
    make_server,
    text_of,
)
from timbal_integrations import RunQuery, TimbalClient
from timbal_integrations.emulator import FIXED_END, Emulator
from timbal_integrations.summary import summarize

DAY = timedelta(days=1)


def summary_of(server: MCPServer[Any], **arguments: Any) -> dict[str, Any]:
    result = call(server, "summarize_runs", arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    data: dict[str, Any] = result.structured_content
    # The text is the same figures, rounded for reading (the series, if any, as a table).
    figures = text_of(result).split("\n", 1)[0]
    assert orjson.loads(figures) == readable({k: v for k, v in data.items() if k != "series"})
    return data


def nearest_rank(values: list[int], p: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def check_against(records: list[dict[str, Any]], data: dict[str, Any]) -> None:
    """Every number, recomputed from the raw records."""
    total = len(records)
    assert data["total"] == total
    by_status: dict[str, list[float]] = {}
    for r in records:
        by_status.setdefault(r["status"], []).append(r["cost_usd"])
    got_status = {b["key"]: b for b in data["by_status"]}
    assert set(got_status) == set(by_status)
    for key, costs in by_status.items():
        assert got_status[key]["count"] == len(costs)
        assert got_status[key]["cost_usd"] == pytest.approx(math.fsum(costs), abs=1e-9)
        assert got_status[key]["share"] == pytest.approx(len(costs) / total, abs=1e-6)
    errors = len(by_status.get("error", []))
    assert data["error_count"] == errors
    assert data["error_rate"] == pytest.approx(errors / total, abs=1e-6)
    assert data["cost_usd_total"] == pytest.approx(math.fsum(r["cost_usd"] for r in records))
    assert data["cost_credits_total"] == pytest.approx(
        math.fsum(r["cost_credits"] for r in records)
    )
    durations = [r["duration_ms"] for r in records if r["duration_ms"] is not None]
    assert data["duration"] == {
        "count": len(durations),
        "p50_ms": nearest_rank(durations, 50),
        "p95_ms": nearest_rank(durations, 95),
        "max_ms": max(durations) if durations else None,
    }
    users: dict[str, int] = {}
    forces: dict[str, int] = {}
    moods: dict[str | None, int] = {}
    for r in records:
        users[r["user"]["id"]] = users.get(r["user"]["id"], 0) + 1
        forces[r["workforce"]["id"]] = forces.get(r["workforce"]["id"], 0) + 1
        mood = r["last_reaction_sentiment"]
        moods[mood] = moods.get(mood, 0) + 1
    assert {b["key"]: b["count"] for b in data["by_user"]} == users
    assert {b["key"]: b["count"] for b in data["by_workforce"]} == forces
    assert {b["key"]: b["count"] for b in data["by_sentiment"]} == moods
    counts = [b["count"] for b in data["by_user"]]
    assert counts == sorted(counts, reverse=True)
    first = min(created(r) for r in records)
    last = max(created(r) for r in records)
    assert abs(datetime.fromisoformat(data["first_run_at"]) - first) < timedelta(milliseconds=1)
    assert abs(datetime.fromisoformat(data["last_run_at"]) - last) < timedelta(milliseconds=1)


def test_every_run(server: MCPServer[Any], emu: Emulator) -> None:
    data = summary_of(server)
    check_against([dict(r) for r in emu.details], data)
    assert data["complete"] is True
    assert data["scanned"] == len(emu.details)
    assert data["max_runs"] == 10_000
    assert "hint" not in data
    assert "others" not in data


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"status": "error"}, {"status": "error"}),
        ({"since": "7d"}, {"since": FIXED_END - 7 * DAY}),
        (
            {"since": "2025-12-10T00:00:00+02:00", "until": "2025-12-20"},
            {
                "since": datetime.fromisoformat("2025-12-09T22:00:00+00:00"),
                "until": datetime.fromisoformat("2025-12-20T00:00:00+00:00"),
            },
        ),
        (
            {"workforce_id": "wf_support", "roots": True},
            {"workforce_id": "wf_support", "roots": True},
        ),
    ],
)
def test_with_filters(
    server: MCPServer[Any], emu: Emulator, arguments: dict[str, Any], expected: dict[str, Any]
) -> None:
    data = summary_of(server, **arguments)
    records = expected_runs(emu, **expected)
    assert records
    check_against(records, data)
    assert data["complete"] is True


def test_user_email(server: MCPServer[Any], emu: Emulator) -> None:
    email = emu.details[5]["user"]["email"]
    data = summary_of(server, user_email=email.title(), since="20d")
    records = expected_runs(emu, email=email, since=FIXED_END - 20 * DAY)
    check_against(records, data)
    assert data["applied_filters"]["user_email"] == email.lower()
    assert data["scanned"] == len(expected_runs(emu, since=FIXED_END - 20 * DAY))
    assert [b["key"] for b in data["by_user"]] == [emu.details[5]["user"]["id"]]


def test_the_scan_bound_makes_it_incomplete(server: MCPServer[Any], emu: Emulator) -> None:
    data = summary_of(server, max_runs=130, sort_by="cost_usd")
    records = expected_runs(emu, sort_by="cost_usd")[:130]
    check_against(records, data)
    assert data["complete"] is False
    assert data["scanned"] == 130
    assert "max_runs" in data["hint"]
    # exactly at the bound is complete
    everything = summary_of(server, max_runs=len(emu.details))
    assert everything["complete"] is True


def test_the_numbers_are_those_of_the_core_summary(server: MCPServer[Any], emu: Emulator) -> None:
    """The same code as ``timbal-runs summary``: the core's summarize over the same runs."""
    data = summary_of(server, since="10d", status="success")
    query = RunQuery(since="10d", status="success", now=FIXED_END)
    with TimbalClient(env=emu.env()) as client:
        core = summarize(client.list_runs(query)).to_dict()
    assert {k: data[k] for k in core} == core


def test_long_breakdowns_keep_the_largest_buckets(emu: Emulator) -> None:
    server = make_server(emu, summary_top_n=3)
    data = summary_of(server)
    assert len(data["by_user"]) == 3
    left_out = data["others"]["by_user"]
    assert left_out["buckets"] == len({r["user"]["id"] for r in emu.details}) - 3
    assert left_out["count"] + sum(b["count"] for b in data["by_user"]) == data["total"]
    assert left_out["cost_usd"] + sum(b["cost_usd"] for b in data["by_user"]) == pytest.approx(
        data["cost_usd_total"]
    )
    assert len(data["by_workforce"]) == 3
    assert "by_workforce" in data["others"]
    assert "by_sentiment" not in data["others"]  # three buckets: nothing left out


def test_cancelling_a_summary_stops_its_requests(timbal_emulator_factory: Any) -> None:
    """The summary reads runs on the tool's own task: cancelling the call (the client
    sends notifications/cancelled) cancels the request in flight, and no other follows."""
    # 2,000 runs at 20 a page and 100 ms a page: the whole summary would take 10 s.
    emu = timbal_emulator_factory(runs=2000, page_size=20, latency_ms=100, api_key=API_KEY)
    server = make_server(emu)

    async def go(client: Client) -> tuple[int, int]:
        summary = asyncio.ensure_future(client.call_tool("summarize_runs", {}))
        deadline = time.monotonic() + 60
        while emu.stats.requests_total < 3:  # the summary is under way
            assert time.monotonic() < deadline, "the summary made no requests"
            assert not summary.done(), summary
            await asyncio.sleep(0.005)
        summary.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await summary
        at_cancel = emu.stats.requests_total
        # Ten pages of list_runs (at least a second): a summary still reading would add
        # about as many requests again meanwhile.
        listed = await client.call_tool("list_runs", {"limit": 200})
        assert not listed.is_error, text_of(listed)
        return at_cancel, emu.stats.requests_total

    at_cancel, after = in_session(server, go)
    assert at_cancel < 100  # cancelled well before the end
    assert after - at_cancel <= 10 + 1  # list_runs' ten, and one already on its way
