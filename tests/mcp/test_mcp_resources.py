"""The resource templates ``timbal://runs/{run_id}`` and ``timbal://runs/{run_id}/trace``:
listed, read as the API's JSON, bounded, and a missing run is "not found"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_server import RESOURCE_TEMPLATES
from tests.mcp.helpers_mcp import API_KEY, in_session, make_server
from timbal_integrations.defaults import MCP_RESOURCE_CHARS
from timbal_integrations.emulator import Emulator, generate_runs, make_trace, run_emulator


def read(server: MCPServer[Any], uri: str) -> tuple[dict[str, Any], str | None]:
    async def go(client: Client) -> Any:
        return await client.read_resource(uri)

    result = in_session(server, go)
    (content,) = result.contents
    data: dict[str, Any] = orjson.loads(content.text)
    return data, content.mime_type


def test_the_templates_are_listed(server: MCPServer[Any]) -> None:
    async def go(client: Client) -> Any:
        return await client.list_resource_templates()

    listing = in_session(server, go)
    templates = {t.uri_template: t for t in listing.resource_templates}
    assert tuple(templates) == RESOURCE_TEMPLATES
    assert set(templates) == {"timbal://runs/{run_id}", "timbal://runs/{run_id}/trace"}
    for template in templates.values():
        assert template.mime_type == "application/json"
        assert "1,000,000 characters" in (template.description or "")


def test_a_run_as_the_api_sent_it(server: MCPServer[Any], emu: Emulator) -> None:
    source = next(d for d in emu.details if d["last_reaction_sentiment"] and d["status"] == "error")
    data, mime = read(server, f"timbal://runs/{source['id']}")
    assert mime == "application/json"
    run = data["run"]
    assert {k: v for k, v in run.items() if k != "created_at"} == {
        k: v for k, v in source.items() if k != "created_at"
    }  # every field the API sent, the trace and status_detail as they came
    assert datetime.fromisoformat(run["created_at"]) == datetime.fromisoformat(source["created_at"])
    truth = emu.reactions(source["id"])
    assert [r["id"] for r in data["reactions"]] == [r["id"] for r in truth]
    assert [r["feedback"] for r in data["reactions"]] == [r["feedback"] for r in truth]
    assert data["reactions_more"] is False
    assert data["resources"]["trace"] == f"timbal://runs/{source['id']}/trace"
    assert "cut" not in data
    by_key, _ = read(server, f"timbal://runs/{source['idempotency_key']}")
    assert by_key["run"]["id"] == source["id"]


def test_a_trace_as_the_api_sent_it(server: MCPServer[Any], emu: Emulator) -> None:
    source = next(d for d in emu.details if isinstance(d["trace"], dict))
    data, mime = read(server, f"timbal://runs/{source['id']}/trace")
    assert mime == "application/json"
    assert data["trace"] == source["trace"]
    assert data["run_id"] == source["id"]
    assert data["spans"] == len(source["trace"])
    assert data["form"] == "dict"


@pytest.fixture(scope="module")
def huge() -> Iterator[Emulator]:
    with run_emulator(runs=generate_runs(5, seed=3), api_key=API_KEY) as emulator:
        trace = make_trace(200, text_chars=20_000)  # ~ 8 MB of JSON
        emulator.add_run(
            {**emulator.details[1], "id": "huge", "idempotency_key": "hk", "trace": trace}
        )
        yield emulator


def test_resources_are_bounded_and_say_what_was_cut(huge: Emulator) -> None:
    server = make_server(huge)
    for uri in ("timbal://runs/huge/trace", "timbal://runs/huge"):

        async def go(client: Client, uri: str = uri) -> Any:
            return await client.read_resource(uri)

        text = in_session(server, go).contents[0].text
        assert len(text) <= MCP_RESOURCE_CHARS
        data = orjson.loads(text)
        assert "were cut to keep this resource under 1,000,000 characters" in data["cut"]
    trace_doc, _ = read(server, "timbal://runs/huge/trace")
    assert trace_doc["spans"] == 200
    assert len(trace_doc["trace"]) == 200  # every span is there, only long strings cut


def refused(server: MCPServer[Any], uri: str) -> MCPError:
    async def go(client: Client) -> MCPError:
        try:
            await client.read_resource(uri)
        except MCPError as exc:
            return exc
        raise AssertionError(f"{uri} was read")

    return in_session(server, go)


def test_an_unknown_run_is_not_found(server: MCPServer[Any]) -> None:
    error = refused(server, "timbal://runs/01NOSUCHRUN").error
    assert error.code == -32602  # invalid params: the resource does not exist
    assert "01NOSUCHRUN" in error.message
    assert "404" in error.message
    assert "01NOSUCHRUN" in refused(server, "timbal://runs/01NOSUCHRUN/trace").error.message
    refused(server, "timbal://runs/../trace")  # path traversal is refused by the SDK


def test_an_unconfigured_server_says_what_to_set(emu: Emulator) -> None:
    env = {k: v for k, v in emu.env().items() if k != "TIMBAL_API_KEY"}
    from mcp_server import create_server

    error = refused(create_server(env=env), "timbal://runs/x").error
    assert "TIMBAL_API_KEY" in error.message
