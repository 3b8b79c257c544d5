"""Prompts: triage recent failures, a cost report for a period, one user's activity."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError

from mcp_server import PROMPT_NAMES
from tests.mcp.helpers_mcp import in_session


def prompt_text(server: MCPServer[Any], name: str, arguments: dict[str, str]) -> str:
    async def go(client: Client) -> Any:
        return await client.get_prompt(name, arguments)

    result = in_session(server, go)
    (message,) = result.messages
    assert message.role == "user"
    text: str = message.content.text
    return text


def tool_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``Call <tool> with {...}`` instructions of a prompt, arguments parsed."""
    calls = []
    for tool, arguments in re.findall(r"Call (\w+) with (\{.*?\})[ :.\n]", text):
        calls.append((tool, json.loads(arguments)))
    return calls


def test_the_prompts_are_listed_with_their_arguments(server: MCPServer[Any]) -> None:
    async def go(client: Client) -> Any:
        return await client.list_prompts()

    prompts = {p.name: p for p in in_session(server, go).prompts}
    assert tuple(prompts) == PROMPT_NAMES
    arguments = {
        name: [(a.name, a.required) for a in p.arguments or []] for name, p in prompts.items()
    }
    assert arguments == {
        "triage_failures": [("since", False), ("workforce_id", False), ("status", False)],
        "cost_report": [
            ("since", False),
            ("until", False),
            ("workforce_id", False),
            ("sort_by", False),
        ],
        "user_activity": [("user_id", True), ("since", False)],
    }
    for prompt in prompts.values():
        assert prompt.title
        assert prompt.description
        assert all(a.description for a in prompt.arguments or [])


def test_triage_failures(server: MCPServer[Any]) -> None:
    text = prompt_text(server, "triage_failures", {"since": "24h", "workforce_id": "wf_support"})
    assert "since 2025-12-31T00:00:00.000Z" in text  # resolved against the server's now
    calls = tool_calls(text)
    assert (
        "summarize_runs",
        {"since": "24h", "workforce_id": "wf_support", "bucket": "hour"},
    ) in calls
    listing = next(arguments for tool, arguments in calls if tool == "list_runs")
    assert listing["status"] == "error"
    assert "get_run" in text
    assert "feedback" in text


def test_cost_report(server: MCPServer[Any]) -> None:
    text = prompt_text(server, "cost_report", {"since": "2025-12-01", "until": "2025-12-15"})
    assert "since 2025-12-01T00:00:00.000Z, until 2025-12-15T00:00:00.000Z" in text
    calls = dict(tool_calls(text))
    assert calls["summarize_runs"]["bucket"] == "day"
    assert calls["list_runs"]["sort_by"] == "cost_usd"
    assert "tokens by model" in text


def test_user_activity(server: MCPServer[Any]) -> None:
    text = prompt_text(server, "user_activity", {"user_id": "usr_ada"})
    calls = dict(tool_calls(text))
    assert calls["summarize_runs"] == {"user_id": "usr_ada", "since": "7d", "bucket": "day"}
    assert calls["list_runs"]["user_id"] == "usr_ada"


@pytest.mark.parametrize(
    ("name", "arguments", "needle"),
    [
        ("triage_failures", {"since": "yesterdayish"}, "`since`"),
        ("cost_report", {"since": "7d", "sort_by": "price"}, "`sort_by`"),
        ("cost_report", {"since": "1d", "until": "2d"}, "before until"),
        ("user_activity", {}, "`user_id` is required"),
        ("user_activity", {"user_id": "u", "user": "x"}, "unknown argument `user`"),
    ],
)
def test_bad_arguments_are_refused(
    server: MCPServer[Any], name: str, arguments: dict[str, str], needle: str
) -> None:
    async def go(client: Client) -> MCPError:
        try:
            await client.get_prompt(name, arguments)
        except MCPError as exc:
            return exc
        raise AssertionError("the prompt rendered")

    assert needle in in_session(server, go).error.message
