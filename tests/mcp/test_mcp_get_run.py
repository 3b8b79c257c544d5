"""``get_run``: one run by id or idempotency key, with its detail fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from mcp.server.mcpserver import MCPServer

from tests.mcp.helpers_mcp import call, error_text, text_of
from timbal_integrations.emulator import Emulator, generate_runs


def detail(server: MCPServer[Any], run_id: str) -> dict[str, Any]:
    result = call(server, "get_run", {"run_id": run_id})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert orjson.loads(text_of(result)) == result.structured_content  # compact JSON text
    assert "\n" not in text_of(result)
    data: dict[str, Any] = result.structured_content
    return data


@pytest.mark.parametrize("index", [0, 1, 2, 7, 500])
def test_by_id_with_every_detail_field(server: MCPServer[Any], emu: Emulator, index: int) -> None:
    source = emu.details[index]
    data = detail(server, source["id"])
    assert data["id"] == source["id"]
    assert data["idempotency_key"] == source["idempotency_key"]
    assert data["status"] == source["status"]
    assert data.get("duration_ms") == source["duration_ms"]
    assert data["cost_usd"] == source["cost_usd"]
    assert data["cost_credits"] == source["cost_credits"]
    assert data.get("status_detail") == source["status_detail"]
    assert data.get("trace") == source["trace"]
    assert data.get("metadata") == source["metadata"]  # fields beyond the spec are kept
    assert data.get("rev") == source["rev"]
    assert data.get("sentiment") == source["last_reaction_sentiment"]
    assert "last_reaction_sentiment" not in data
    assert data["user"] == {k: v for k, v in source["user"].items() if v is not None}
    assert data["workforce"]["id"] == source["workforce"]["id"]
    assert data["workforce"]["type"] == source["workforce"]["type"]
    assert None not in data.values()
    moment = datetime.fromisoformat(data["created_at"])
    assert abs(moment - datetime.fromisoformat(source["created_at"])) < timedelta(milliseconds=1)


def test_by_idempotency_key(server: MCPServer[Any], emu: Emulator) -> None:
    source = emu.details[3]
    data = detail(server, source["idempotency_key"])
    assert data["id"] == source["id"]


def test_unknown_run_is_an_actionable_error(server: MCPServer[Any]) -> None:
    message = error_text(call(server, "get_run", {"run_id": "01NOSUCHRUN"}))
    assert "'01NOSUCHRUN'" in message
    assert "404" in message
    assert "list_runs" in message


def test_huge_fields_are_cut_and_named(timbal_emulator_factory: Any) -> None:
    from tests.mcp.helpers_mcp import API_KEY, make_server

    runs = generate_runs(3, seed=5)
    big = dict(runs[0])
    big["trace"] = {"spans": [{"i": i, "text": "x" * 500} for i in range(400)]}
    emu = timbal_emulator_factory(runs=[big, *runs[1:]], api_key=API_KEY)
    server = make_server(emu)
    data = detail(server, big["id"])
    assert data["truncated"] == ["trace"]
    assert isinstance(data["trace"], str)
    assert "more characters" in data["trace"]
    assert len(text_of(call(server, "get_run", {"run_id": big["id"]}))) < 45_000
    small = detail(server, runs[1]["id"])
    assert "truncated" not in small
