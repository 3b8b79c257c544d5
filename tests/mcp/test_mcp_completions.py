"""``completion/complete``: fixed values (status, sort_by...) and values of the recent
runs (workforce_id, user_id, run_id...), cached for a while on an injectable clock."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import Completion, PromptReference, ResourceTemplateReference

from mcp_server import create_server
from tests.mcp.helpers_mcp import API_KEY, in_session, make_server
from timbal_integrations.emulator import Emulator, generate_runs

PROMPT = PromptReference(name="cost_report")
RUN = ResourceTemplateReference(uri="timbal://runs/{run_id}")


def complete(server: MCPServer[Any], name: str, value: str, ref: Any = PROMPT) -> Completion:
    async def go(client: Client) -> Completion:
        result = await client.complete(ref, {"name": name, "value": value})
        return result.completion

    return in_session(server, go)


def test_the_server_declares_completions(server: MCPServer[Any]) -> None:
    async def go(client: Client) -> Any:
        return client.server_capabilities

    capabilities = in_session(server, go)
    assert capabilities is not None
    assert capabilities.completions is not None


@pytest.mark.parametrize(
    ("name", "typed", "expected"),
    [
        ("status", "", ["success", "error", "cancelled", "running"]),
        ("status", "er", ["error"]),
        ("status", "CAN", ["cancelled"]),
        ("sort_by", "cost", ["cost_usd", "cost_credits"]),
        ("sort_by", "", ["id", "created_at", "duration_ms", "cost_usd", "cost_credits"]),
        ("sort_order", "", ["desc", "asc"]),
        ("bucket", "w", ["week"]),
        ("since", "7", ["7d"]),
        ("nonsense", "", []),
    ],
)
def test_fixed_values(server: MCPServer[Any], name: str, typed: str, expected: list[str]) -> None:
    got = complete(server, name, typed)
    assert got.values == expected
    assert got.total == len(expected)
    assert got.has_more is False


def test_values_of_the_recent_runs(server: MCPServer[Any], emu: Emulator) -> None:
    forces = {r["workforce"]["id"]: r["workforce"]["name"] for r in emu.runs}
    users = {r["user"]["id"]: r["user"] for r in emu.runs}
    got = complete(server, "workforce_id", "")
    assert set(got.values) == set(forces)
    assert complete(server, "workforce_id", "wf_sup").values == ["wf_support"]
    # a workforce can be found by its name too
    assert complete(server, "workforce_id", forces["wf_support"][:5]).values[0] == "wf_support"
    assert set(complete(server, "user_id", "").values) == set(users)
    ada = next(u for u in users.values() if u["name"].startswith("Ada"))
    assert complete(server, "user_id", ada["email"][:4]).values[0] == ada["id"]  # by email
    assert complete(server, "user_email", "ada").values == [ada["email"]]
    assert complete(server, "workforce", "support").values == [forces["wf_support"]]
    recent = complete(server, "run_id", "", ref=RUN)
    assert recent.values[:3] == [r["id"] for r in emu.runs[:3]]  # newest first
    assert recent.values[0] in complete(server, "run_id", recent.values[0][:12], ref=RUN).values


def test_recent_values_are_cached_on_the_injected_clock(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=generate_runs(120, seed=9), api_key=API_KEY, page_size=50)
    now = [1000.0]
    server = make_server(emu, clock=lambda: now[0], recent_ttl=60.0)

    async def twice(client: Client) -> list[Completion]:
        out = []
        for _ in range(2):
            result = await client.complete(PROMPT, {"name": "workforce_id", "value": ""})
            out.append(result.completion)
        return out

    emu.request_log.clear()
    first, second = in_session(server, twice)
    assert first.values == second.values
    scans = len(emu.request_log)
    assert scans == 3  # one scan of the 120 runs (three pages) for both completions
    now[0] += 59
    in_session(server, twice)
    assert len(emu.request_log) == scans  # still fresh
    now[0] += 2
    in_session(server, twice)
    assert len(emu.request_log) == 2 * scans  # stale after 60 s: scanned again, once


def test_the_scan_is_bounded(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=generate_runs(300, seed=9), api_key=API_KEY, page_size=50)
    server = make_server(emu, recent_scan_runs=100)
    emu.request_log.clear()
    complete(server, "user_id", "")
    assert len(emu.request_log) == 3  # 100 runs (and one more to know there are more)


def test_without_an_api_only_fixed_values(emu: Emulator) -> None:
    env = {k: v for k, v in emu.env().items() if k != "TIMBAL_API_KEY"}
    server = create_server(env=env)
    assert complete(server, "status", "").values == ["success", "error", "cancelled", "running"]
    assert complete(server, "user_id", "").values == []
    assert complete(server, "run_id", "", ref=RUN).values == []
