"""Snapshots of what a client sees beyond the tool schemas: the resource templates, the
prompts with their arguments, and the results of ``get_run`` (text and structured) and
``summarize_runs`` with a series, for fixed runs of the session emulator (seed 11).

A change must be deliberate: regenerate with ``TIMBAL_UPDATE_SNAPSHOTS=1 pytest
tests/mcp/test_mcp_snapshots.py`` and review the diff.
"""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from tests.mcp.helpers_mcp import call, check_snapshot, in_session, text_of
from timbal_integrations.emulator import Emulator


def test_resource_templates_and_prompts(server: MCPServer[Any]) -> None:
    async def go(client: Client) -> dict[str, Any]:
        templates = await client.list_resource_templates()
        prompts = await client.list_prompts()
        return {
            "resource_templates": [
                t.model_dump(mode="json", exclude_none=True) for t in templates.resource_templates
            ],
            "prompts": [p.model_dump(mode="json", exclude_none=True) for p in prompts.prompts],
        }

    check_snapshot("resources_and_prompts.json", in_session(server, go))


def test_get_run_result(server: MCPServer[Any], emu: Emulator) -> None:
    source = next(d for d in emu.details if d["status"] == "error" and d["last_reaction_sentiment"])
    result = call(server, "get_run", {"run_id": source["id"]})
    check_snapshot("get_run_result.json", result.structured_content)
    check_snapshot("get_run_result.txt", text_of(result))
    links = [b.model_dump(mode="json", exclude_none=True) for b in result.content[1:]]
    check_snapshot("get_run_links.json", links)


def test_summarize_runs_series_result(server: MCPServer[Any]) -> None:
    arguments = {"since": "2025-12-29", "until": "2026-01-01", "bucket": "day"}
    result = call(server, "summarize_runs", arguments)
    check_snapshot("summarize_runs_series.txt", text_of(result))
