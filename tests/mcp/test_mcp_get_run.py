"""``get_run``: one run by id or idempotency key, with its trace as a compact span tree,
its reactions, links to its resources, and a hard size budget however big the trace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from mcp.server.mcpserver import MCPServer

from tests.mcp.helpers_mcp import API_KEY, call, error_text, make_server, text_of
from timbal_integrations import RunDetail
from timbal_integrations.defaults import (
    MCP_GET_RUN_FULL_CHARS,
    MCP_GET_RUN_SUMMARY_CHARS,
    MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS,
    MCP_PREVIEW_CHARS,
)
from timbal_integrations.emulator import Emulator, generate_runs, make_trace, run_emulator

_LONG_FLOAT = re.compile(r"\d\.\d{7,}")


@pytest.fixture(scope="module")
def big() -> Iterator[Emulator]:
    """A few runs, and runs with 200-span traces whose inputs and outputs are huge."""
    with run_emulator(runs=generate_runs(20, seed=5), api_key=API_KEY) as emulator:
        base = emulator.details[3]
        for status in ("success", "error"):
            trace = make_trace(200, text_chars=50_000, status=status)
            emulator.add_run(
                {**base, "id": f"big-{status}", "idempotency_key": f"bk-{status}", "trace": trace}
            )
        emulator.add_run(
            {**base, "id": "odd", "idempotency_key": "odd-key", "trace": {"not": "spans"}}
        )
        yield emulator


def get(server: MCPServer[Any], run_id: str, **arguments: Any) -> tuple[dict[str, Any], str, Any]:
    result = call(server, "get_run", {"run_id": run_id, **arguments})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data is not None
    return data, text_of(result), result


def spans(source: dict[str, Any]) -> list[dict[str, Any]]:
    trace = source["trace"]
    return list(trace.values()) if isinstance(trace, dict) else list(trace)


@pytest.mark.parametrize("index", [0, 1, 2, 7, 500])
def test_the_summary_of_a_run(server: MCPServer[Any], emu: Emulator, index: int) -> None:
    source = emu.details[index]
    data, text, result = get(server, source["id"])
    assert data["detail"] == "summary"
    assert data["id"] == source["id"]
    assert data["idempotency_key"] == source["idempotency_key"]
    assert data["status"] == source["status"]
    assert data.get("duration_ms") == source["duration_ms"]
    assert data["cost_usd"] == source["cost_usd"]  # full precision in structured content
    assert data["cost_credits"] == source["cost_credits"]
    if source["status_detail"] is None:
        assert "status_detail" not in data
    else:
        assert data["status_detail"] == {
            k: v for k, v in source["status_detail"].items() if v is not None
        }
    assert data.get("metadata") == source["metadata"]  # fields beyond the spec are kept
    assert data.get("rev") == source["rev"]
    assert data.get("sentiment") == source["last_reaction_sentiment"]
    assert "last_reaction_sentiment" not in data
    assert data["user"] == {k: v for k, v in source["user"].items() if v is not None}
    assert data["workforce"]["id"] == source["workforce"]["id"]
    moment = datetime.fromisoformat(data["created_at"])
    assert abs(moment - datetime.fromisoformat(source["created_at"])) < timedelta(milliseconds=1)
    # the trace: every span in the tree, depth first, with the parsed numbers
    parsed = RunDetail.model_validate(source).parsed_trace
    assert parsed is not None
    trace = data["trace"]
    assert trace["spans"] == trace["shown"] == len(spans(source))
    assert "elided" not in trace
    assert trace["usage_by_model"] == parsed.usage_by_model()
    assert [e["path"] for e in trace["tree"]] == [s.path for s, _ in parsed.walk()]
    assert [e["depth"] for e in trace["tree"]] == [d for _, d in parsed.walk()]
    for entry, (span, _) in zip(trace["tree"], parsed.walk(), strict=True):
        assert entry.get("duration_ms") == span.duration_ms
        assert entry["status"] == (span.status_code or "running")
    failures = parsed.failures()
    assert [f["call_id"] for f in trace.get("failures", [])] == [s.call_id for s in failures][:5]
    # reactions, newest first, with their feedback
    truth = emu.reactions(source["id"])
    assert [r["sentiment"] for r in data["reactions"]] == [r["sentiment"] for r in truth]
    assert [r.get("feedback") for r in data["reactions"]] == [r["feedback"] for r in truth]
    # links to the resources, in the structured content and as resource links
    assert data["resources"] == {
        "run": f"timbal://runs/{source['id']}",
        "trace": f"timbal://runs/{source['id']}/trace",
    }
    links = [block for block in result.content if block.type == "resource_link"]
    assert [str(link.uri) for link in links] == [
        data["resources"]["run"],
        data["resources"]["trace"],
    ]
    assert all(link.mime_type == "application/json" for link in links)
    # the text: the same facts, numbers rounded
    assert text.startswith(f"run {source['id']} · {source['status']}")
    assert f"trace: {len(spans(source))} spans" in text
    assert not _LONG_FLOAT.search(text), text
    for reaction in truth:
        if reaction["feedback"]:
            assert reaction["feedback"] in text
    assert data["resources"]["trace"] in text


def test_a_failed_run_says_where_it_failed(server: MCPServer[Any], emu: Emulator) -> None:
    source = next(d for d in emu.details if d["status"] == "error")
    data, text, _ = get(server, source["id"])
    failures = data["trace"]["failures"]
    deepest = failures[0]
    message = source["status_detail"]["message"]
    assert message in deepest["error"]
    root = next(s for s in spans(source) if s["parent_call_id"] is None)
    assert failures[-1]["call_id"] == root["call_id"]  # the callers it propagated to
    assert f"failed at {deepest['path']}" in text
    assert "! " in text  # the error, on the span where it started


def test_by_idempotency_key(server: MCPServer[Any], emu: Emulator) -> None:
    source = emu.details[3]
    data, _, _ = get(server, source["idempotency_key"])
    assert data["id"] == source["id"]
    assert data["resources"]["run"] == f"timbal://runs/{source['id']}"


def test_full_detail_gives_every_field_of_every_span(server: MCPServer[Any], emu: Emulator) -> None:
    source = next(d for d in emu.details if d["status"] == "error")
    data, text, _ = get(server, source["id"], detail="full")
    assert data["detail"] == "full"
    tree = data["trace"]["tree"]
    raw = {s["call_id"]: s for s in spans(source)}
    assert len(tree) == len(raw)
    for entry in tree:
        span = raw[entry["call_id"]]
        assert entry.get("parent_call_id") == span["parent_call_id"]
        assert (entry["t0"], entry.get("t1")) == (span["t0"], span["t1"])
        assert entry.get("usage", {}) == span["usage"]
        assert entry.get("input") == span["input"]  # small enough: whole
        assert entry.get("output") == span["output"]
        if span["error"] is not None:
            assert entry["error"]["traceback"] == span["error"]["traceback"]
    assert "input: " in text


@pytest.mark.parametrize("status", ["success", "error"])
def test_a_200_span_trace_with_huge_values_stays_in_budget(big: Emulator, status: str) -> None:
    server = make_server(big)
    data, text, _ = get(server, f"big-{status}")
    assert len(text) <= MCP_GET_RUN_SUMMARY_CHARS
    assert len(text) / 4 <= 8_000  # the token target of a summary
    assert len(orjson.dumps(data)) <= MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS
    trace = data["trace"]
    assert trace["spans"] == 200
    assert trace["shown"] == 200  # the whole tree fits in a summary
    assert "timbal://runs/big-" in data["hint"]
    assert 'detail="full"' in data["hint"]
    if status == "error":  # the failing LLM call's 50,000-character input, previewed
        assert trace["failures"]
        assert "failed at " in text
        shown_input = trace["failures"][0]["input"]
        assert isinstance(shown_input, str)
        assert len(shown_input) < MCP_PREVIEW_CHARS + 60
        assert any("cut to 300 characters" in note for note in data["truncated"])
    full, full_text, _ = get(server, f"big-{status}", detail="full")
    assert len(full_text) <= MCP_GET_RUN_FULL_CHARS
    assert len(orjson.dumps(full)) <= MCP_GET_RUN_FULL_CHARS
    kept = full["trace"]
    assert kept["shown"] + kept.get("elided", 0) == 200
    assert any("cut to" in note for note in full["truncated"])
    paths = {entry["call_id"] for entry in kept["tree"]}
    if status == "error":  # the failing spans and their callers are always kept
        assert {f["call_id"] for f in kept["failures"]} <= paths
    if kept.get("elided"):
        assert any("left out" in note for note in full["truncated"])
        assert "span(s) left out" in full_text


def test_a_trace_that_is_not_spans(big: Emulator) -> None:
    data, text, _ = get(make_server(big), "odd")
    assert "trace" not in data
    assert any("not in Timbal's span shape" in note for note in data["truncated"])
    assert "timbal://runs/odd/trace" in text


def test_unknown_run_is_an_actionable_error(server: MCPServer[Any]) -> None:
    message = error_text(call(server, "get_run", {"run_id": "01NOSUCHRUN"}))
    assert "'01NOSUCHRUN'" in message
    assert "404" in message
    assert "list_runs" in message
