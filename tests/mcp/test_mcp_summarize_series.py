"""``summarize_runs(bucket=...)``: a time series equal to a recomputation from the ground
truth, rendered as a table in the text, bounded before any run is read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from tests.mcp.helpers_mcp import call, created, error_text, expected_runs, text_of
from timbal_integrations.defaults import MCP_MAX_TIME_BUCKETS
from timbal_integrations.emulator import Emulator


def summary(server: MCPServer[Any], **arguments: Any) -> tuple[dict[str, Any], str]:
    result = call(server, "summarize_runs", arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content, text_of(result)


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_the_series_equals_a_recomputation(
    server: MCPServer[Any], emu: Emulator, bucket: str
) -> None:
    since = datetime(2025, 12, 18, 6, tzinfo=UTC)
    until = datetime(2025, 12, 24, tzinfo=UTC)
    data, text = summary(
        server, since=since.isoformat(), until=until.isoformat(), bucket=bucket, status="error"
    )
    records = expected_runs(emu, since=since, until=until, status="error")
    assert data["total"] == len(records)
    series = data["series"]
    assert data["bucket"] == bucket

    def start_of(moment: datetime) -> datetime:
        if bucket == "hour":
            return moment.replace(minute=0, second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day if bucket == "day" else day - timedelta(days=day.weekday())

    counts = Counter(start_of(created(r)) for r in records)
    assert {datetime.fromisoformat(b["start"]): b["total"] for b in series if b["total"]} == counts
    assert sum(b["total"] for b in series) == len(records)
    expected_buckets = {"hour": 138, "day": 6, "week": 2}[bucket]
    assert len(series) == expected_buckets  # every bucket of the window, empty ones too
    assert series[0]["partial"] is (bucket != "hour")
    lines = text.splitlines()
    header = lines.index("start|runs|errors|error_rate|cost_usd|p50_ms|p95_ms|by_status")
    assert len(lines) - header - 1 == expected_buckets
    assert f"series by {bucket} (UTC" in text


def test_a_series_too_long_for_an_assistant_is_refused_first(
    server: MCPServer[Any], emu: Emulator
) -> None:
    emu.request_log.clear()
    message = error_text(
        call(server, "summarize_runs", {"since": "30d", "until": "2026-01-01", "bucket": "hour"})
    )
    assert "`bucket`" in message
    assert f"more than the {MCP_MAX_TIME_BUCKETS}" in message
    assert 'bucket "day" or "week"' in message
    assert len(emu.request_log) == 0  # refused before any request
    # An open since: the earliest matching run bounds the window (one request).
    emu.request_log.clear()
    message = error_text(call(server, "summarize_runs", {"bucket": "hour"}))
    assert "`bucket`" in message
    assert len(emu.request_log) == 1


def test_filters_of_list_runs_apply(server: MCPServer[Any], emu: Emulator) -> None:
    data, _ = summary(server, workforce="support-agent", metadata={"env": "prod"}, bucket="week")
    truth = [
        r
        for r in emu.details
        if r["workforce"]["id"] == "wf_support" and (r.get("metadata") or {}).get("env") == "prod"
    ]
    assert data["total"] == len(truth)
    assert data["workforce_resolution"]["workforce_id"] == "wf_support"
    assert data["applied_filters"]["metadata"] == {"env": "prod"}
