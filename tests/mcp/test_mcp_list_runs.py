"""``list_runs`` against the emulator: every filter, times, paging, user_email, shape, size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_server.shaping import RUN_FIELDS
from tests.mcp.helpers_mcp import (
    call,
    error_text,
    expected_runs,
    fixed_now,
    ids,
    in_session,
    make_server,
    page_all,
    text_of,
)
from timbal_integrations.emulator import FIXED_END, Emulator

DAY = timedelta(days=1)
OPT_IN_COLUMNS = {"idempotency_key", "cost_credits"}
"""The columns a row holds only when ``fields`` asks for them."""
ROW_KEYS = set(RUN_FIELDS) - OPT_IN_COLUMNS
"""The default columns: every other one (the snapshot of the schema pins every column)."""


def structured(server: MCPServer[Any], **arguments: Any) -> dict[str, Any]:
    result = call(server, "list_runs", arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    data: dict[str, Any] = result.structured_content
    return data


def some(emu: Emulator, field: str) -> str:
    """A value of ``field`` that a minority of runs have (so the filter narrows)."""
    getters = {
        "user_id": lambda r: r["user"]["id"],
        "workforce_id": lambda r: r["workforce"]["id"],
        "group_id": lambda r: r["group_id"],
        "sentiment": lambda r: r["last_reaction_sentiment"],
        "status": lambda r: r["status"],
    }
    counts: dict[str, int] = {}
    for record in emu.details:
        value = getters[field](record)
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    # a value with several runs, but not most of them
    candidates = sorted((c, v) for v, c in counts.items() if 3 <= c <= len(emu.details) // 2)
    return candidates[len(candidates) // 2][1]


def test_default_is_twenty_newest_runs(server: MCPServer[Any], emu: Emulator) -> None:
    data = structured(server)
    assert data["returned"] == 20 == len(data["runs"])
    assert [row["id"] for row in data["runs"]] == ids(expected_runs(emu))[:20]
    assert data["applied_filters"] == {"sort_by": "created_at", "sort_order": "desc"}
    assert data["next_cursor"]
    assert "cursor" in data["hint"]


@pytest.mark.parametrize("field", ["status", "user_id", "workforce_id", "group_id", "sentiment"])
def test_each_equality_filter(server: MCPServer[Any], emu: Emulator, field: str) -> None:
    value = some(emu, field)
    filters: dict[str, Any] = {field: value}
    expected = ids(expected_runs(emu, **filters))
    assert 0 < len(expected) < len(emu.details)
    data = structured(server, **{field: value}, limit=200)
    assert [row["id"] for row in data["runs"]] == expected[:200]
    assert data["applied_filters"][field] == value


def test_rev_filter_includes_runs_without_a_branch(server: MCPServer[Any], emu: Emulator) -> None:
    expected = ids(expected_runs(emu, rev="dev"))
    with_branch = [r for r in emu.details if r.get("rev") == "dev"]
    without = [r for r in emu.details if r.get("rev") is None]
    assert with_branch
    assert without
    got = in_session(server, lambda c: page_all(c, {"rev": "dev", "limit": 200}))[0]
    assert got == expected


def test_roots_true_lists_only_thread_starts(server: MCPServer[Any], emu: Emulator) -> None:
    data = structured(server, roots=True, limit=100)
    assert [row["id"] for row in data["runs"]] == ids(expected_runs(emu, roots=True))[:100]
    assert all("parent_id" not in row and row["group_id"] == row["id"] for row in data["runs"])
    assert data["applied_filters"]["roots"] is True


def test_relative_since_is_resolved_against_now_and_echoed(
    server: MCPServer[Any], emu: Emulator
) -> None:
    data = structured(server, status="error", since="7d", limit=200)
    since = FIXED_END - 7 * DAY
    assert data["applied_filters"]["since"] == "2025-12-25T00:00:00.000Z"
    assert [row["id"] for row in data["runs"]] == ids(
        expected_runs(emu, status="error", since=since)
    )
    assert all(row["status"] == "error" for row in data["runs"])


@pytest.mark.parametrize(
    ("since", "until", "resolved_since", "resolved_until"),
    [
        # an offset is honoured: 01:00+01:00 is midnight UTC
        (
            "2025-12-20T01:00:00+01:00",
            "2025-12-21T06:30:00+05:30",
            "2025-12-20T00:00:00.000Z",
            "2025-12-21T01:00:00.000Z",
        ),
        # no offset means UTC; a date alone is its midnight
        (
            "2025-12-20T00:00:00",
            "2025-12-21",
            "2025-12-20T00:00:00.000Z",
            "2025-12-21T00:00:00.000Z",
        ),
        # epoch milliseconds, as an integer and as a string
        (1766188800000, "1766275200000", "2025-12-20T00:00:00.000Z", "2025-12-21T00:00:00.000Z"),
        # spans back from now
        ("12d", "36h", "2025-12-20T00:00:00.000Z", "2025-12-30T12:00:00.000Z"),
    ],
)
def test_time_forms(
    server: MCPServer[Any],
    emu: Emulator,
    since: Any,
    until: Any,
    resolved_since: str,
    resolved_until: str,
) -> None:
    data = structured(server, since=since, until=until, limit=200)
    applied = data["applied_filters"]
    assert (applied["since"], applied["until"]) == (resolved_since, resolved_until)
    start = datetime.fromisoformat(resolved_since)
    end = datetime.fromisoformat(resolved_until)
    expected = ids(expected_runs(emu, since=start, until=end))
    assert expected
    assert [row["id"] for row in data["runs"]] == expected[:200]
    for row in data["runs"]:
        assert start <= datetime.fromisoformat(row["created_at"]) < end


@pytest.mark.parametrize(
    ("sort_by", "sort_order"),
    [("cost_usd", "desc"), ("duration_ms", "asc"), ("created_at", "asc"), ("id", "desc")],
)
def test_sorting(server: MCPServer[Any], emu: Emulator, sort_by: str, sort_order: str) -> None:
    data = structured(server, sort_by=sort_by, sort_order=sort_order, since="3d", limit=60)
    expected = expected_runs(emu, since=FIXED_END - 3 * DAY, sort_by=sort_by, sort_order=sort_order)
    assert [row["id"] for row in data["runs"]] == ids(expected)[:60]
    assert data["applied_filters"]["sort_by"] == sort_by
    assert data["applied_filters"]["sort_order"] == sort_order


@pytest.mark.parametrize("limit", [7, 50, 200])
def test_paging_to_the_end_yields_every_run_once(
    emu: Emulator, server: MCPServer[Any], limit: int
) -> None:
    every, results = in_session(server, lambda c: page_all(c, {"limit": limit}))
    assert every == ids(expected_runs(emu))
    assert len(set(every)) == len(emu.details) == 1200
    assert all(r["returned"] == limit for r in results[:-1])
    assert "next_cursor" not in results[-1]
    assert "hint" not in results[-1]


def test_paging_with_filters_and_a_sort(emu: Emulator, server: MCPServer[Any]) -> None:
    arguments = {"status": "success", "sort_by": "cost_usd", "sort_order": "asc", "limit": 33}
    every, _ = in_session(server, lambda c: page_all(c, arguments))
    assert every == ids(expected_runs(emu, status="success", sort_by="cost_usd", sort_order="asc"))


def test_a_relative_window_stays_pinned_while_paging(emu: Emulator) -> None:
    """The clock moves between calls; the cursor keeps the first call's window."""
    clock = [FIXED_END]
    server = make_server(emu, now=lambda: clock[0])

    async def walk(client: Client) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            args: dict[str, Any] = {"since": "2d", "limit": 9}
            if cursor:
                args["cursor"] = cursor
            result = await client.call_tool("list_runs", args)
            assert not result.is_error, text_of(result)
            data = result.structured_content
            assert data is not None
            assert data["applied_filters"]["since"] == "2025-12-30T00:00:00.000Z"
            seen.extend(row["id"] for row in data["runs"])
            cursor = data.get("next_cursor")
            clock[0] += timedelta(hours=5)
            if not cursor:
                return seen

    assert in_session(server, walk) == ids(expected_runs(emu, since=FIXED_END - 2 * DAY))


def test_an_absolute_window_can_be_repeated_in_another_spelling(
    server: MCPServer[Any], emu: Emulator
) -> None:
    first = structured(server, since="2025-12-29T01:00:00+01:00", limit=5)
    second = structured(server, since="2025-12-29T00:00:00Z", limit=5, cursor=first["next_cursor"])
    expected = ids(expected_runs(emu, since=datetime(2025, 12, 29, tzinfo=UTC)))
    assert [r["id"] for r in first["runs"] + second["runs"]] == expected[:10]


def test_user_email_matches_case_insensitively(server: MCPServer[Any], emu: Emulator) -> None:
    email = emu.details[0]["user"]["email"]
    expected = ids(expected_runs(emu, email=email))
    assert expected
    every, results = in_session(
        server, lambda c: page_all(c, {"user_email": email.upper(), "limit": 50})
    )
    assert every == expected
    assert results[0]["applied_filters"]["user_email"] == email.lower()
    assert sum(r["scanned"] for r in results) == len(emu.details)
    assert all(r["scan_bound_hit"] is False for r in results)
    assert all(row["user"]["email"] == email for r in results for row in r["runs"])


def test_user_email_scan_is_bounded_and_the_cursor_stays_exact(emu: Emulator) -> None:
    """A scan bound smaller than a page: each call stops early, paging still covers all."""
    server = make_server(emu, max_email_scan=37)
    rare = sorted(
        {r["user"]["email"] for r in emu.details},
        key=lambda e: sum(1 for r in emu.details if r["user"]["email"] == e),
    )[0]
    expected = ids(expected_runs(emu, email=rare, since=FIXED_END - 10 * DAY))
    every, results = in_session(
        server, lambda c: page_all(c, {"user_email": rare, "since": "10d", "limit": 3})
    )
    assert every == expected
    assert all(r["scanned"] <= 37 for r in results)
    bounded = [r for r in results if r["scan_bound_hit"]]
    assert bounded, "the bound was never hit"
    assert all(r["next_cursor"] and "scan" in r["hint"] for r in bounded)
    text = text_of(call(server, "list_runs", {"user_email": rare, "since": "10d", "limit": 3}))
    assert "scanning" in text


def test_rows_are_compact_with_nulls_left_out(server: MCPServer[Any], emu: Emulator) -> None:
    data = structured(server, limit=200)
    truth = {r["id"]: r for r in emu.details}
    assert len(ROW_KEYS) == 10  # the ten default columns: a new column is named above
    for row in data["runs"]:
        assert set(row) <= ROW_KEYS
        assert None not in row.values()
        source = truth[row["id"]]
        assert row["status"] == source["status"]
        assert row["cost_usd"] == source["cost_usd"]
        assert row.get("duration_ms") == source["duration_ms"]
        assert row.get("sentiment") == source["last_reaction_sentiment"]
        assert row.get("parent_id") == source["parent_id"]
        assert row["user"] == {
            "id": source["user"]["id"],
            "name": source["user"]["name"],
            "email": source["user"]["email"],
        }
        assert row["workforce"] == {
            "id": source["workforce"]["id"],
            "name": source["workforce"]["name"],
        }
        created = datetime.fromisoformat(row["created_at"])
        assert row["created_at"].endswith("Z")
        assert len(row["created_at"]) == 24
        assert abs(created - datetime.fromisoformat(source["created_at"])) < timedelta(
            milliseconds=1
        )
    # some rows do have the optional fields, so leaving nulls out is a real choice
    assert any("duration_ms" not in row for row in data["runs"])
    assert any("parent_id" in row for row in data["runs"])


def test_text_is_compact_and_carries_every_run(server: MCPServer[Any]) -> None:
    result = call(server, "list_runs", {"limit": 50, "status": "success"})
    text = text_of(result)
    data = result.structured_content
    assert data is not None
    assert not text.lstrip().startswith("{")
    assert "\n  " not in text
    for row in data["runs"]:
        assert row["id"] in text
        assert row["user"]["email"] in text
        assert row["user"]["id"] in text  # in the legend, for the user_id filter
        assert row["workforce"]["id"] in text
    assert "status=success" in text.splitlines()[0]
    assert f"next_cursor: {data['next_cursor']}" in text  # for clients showing only text
    assert "same filters" in text


def test_results_stay_well_under_25k_tokens_at_the_maximum_limit(
    server: MCPServer[Any],
) -> None:
    result = call(server, "list_runs", {"limit": 200})
    text = text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["returned"] == 200
    text_tokens = len(text) / 4
    structured_tokens = len(orjson.dumps(result.structured_content)) / 4
    assert text_tokens < 10_000, text_tokens
    assert structured_tokens < 20_000, structured_tokens


def test_an_empty_result(server: MCPServer[Any]) -> None:
    result = call(server, "list_runs", {"status": "no-such-status"})
    assert not result.is_error
    data = result.structured_content
    assert data is not None
    assert data["runs"] == []
    assert data["returned"] == 0
    assert "next_cursor" not in data
    assert text_of(result).startswith("0 run(s)")


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "eyJ2IjoxfQ", "WzEsbnVsbCwtMSwiYWIiLG51bGwsbnVsbF0", "!" * 5000],
)
def test_a_cursor_that_is_not_one_is_an_error_naming_cursor(
    server: MCPServer[Any], cursor: str
) -> None:
    message = error_text(call(server, "list_runs", {"cursor": cursor}))
    assert "`cursor`" in message
    assert "next_cursor" in message


@pytest.mark.parametrize(
    "changed",
    [
        {"status": "error"},
        {"since": "2025-12-28T00:00:00Z"},
        {"since": "3d", "until": "1d"},
        {"user_email": "someone@example.test"},
        {"sort_order": "asc"},
        {},
    ],
)
def test_a_cursor_reused_with_other_filters_is_an_error(
    server: MCPServer[Any], changed: dict[str, Any]
) -> None:
    original = {"since": "2025-12-29T00:00:00Z", "status": "success", "limit": 5}
    cursor = structured(server, **original)["next_cursor"]
    arguments = {**original, **changed, "cursor": cursor}
    if not changed:
        del arguments["status"]
    message = error_text(call(server, "list_runs", arguments))
    assert "`cursor`" in message
    assert "same filters" in message


def test_now_defaults_to_the_wall_clock(emu: Emulator) -> None:
    """Without an injected clock, "24h" means the last day of real time (no old runs)."""
    server = make_server(emu, now=None)
    data = structured(server, since="24h")
    assert data["runs"] == []
    resolved = datetime.fromisoformat(data["applied_filters"]["since"])
    assert resolved > fixed_now()


def test_paging_one_run_at_a_time(emu: Emulator, server: MCPServer[Any]) -> None:
    arguments = {"status": "cancelled", "since": "15d", "limit": 1}
    every, results = in_session(server, lambda c: page_all(c, arguments))
    expected = ids(expected_runs(emu, status="cancelled", since=FIXED_END - 15 * DAY))
    assert len(expected) >= 5
    assert every == expected
    assert len(results) in (len(expected), len(expected) + 1)
