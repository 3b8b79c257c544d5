"""Helpers of the MCP server tests: servers, SDK clients, and the ground truth.

Most tests talk to the server in memory with the official SDK client
(``mcp.Client(server)``); the server's core client reaches the emulator over a real
socket. Expectations are recomputed here from the emulator's ground truth, never with
the library's own filter code.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from mcp_server import ServerSettings, create_server
from timbal_integrations.emulator import FIXED_END, Emulator

T = TypeVar("T")

SNAPSHOTS = Path(__file__).parent / "snapshots"

#: A key that cannot appear anywhere by accident: tests grep every output for it.
API_KEY = "tk_test_Zq8x5ECRETkey_5f2c9d41b7"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fixed_now() -> datetime:
    return FIXED_END


def make_server(emulator: Emulator, **settings: Any) -> MCPServer[Any]:
    """A server reaching ``emulator``, with "now" fixed at the end of its data."""
    settings.setdefault("now", fixed_now)
    return create_server(ServerSettings(env=emulator.env(), **settings))


def in_session(server: MCPServer[Any], work: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``work`` with an in-memory SDK client connected to ``server``."""

    async def go() -> T:
        async with Client(server) as client:
            return await work(client)

    return asyncio.run(go())


def call(server: MCPServer[Any], tool: str, arguments: Mapping[str, Any]) -> CallToolResult:
    """One tool call through the SDK client."""
    return in_session(server, lambda client: client.call_tool(tool, dict(arguments)))


def text_of(result: CallToolResult) -> str:
    """The text content of a result: its one text block (resource links may follow)."""
    texts = [block for block in result.content if block.type == "text"]
    assert len(texts) == 1, result.content
    assert result.content[0] is texts[0]
    assert all(block.type in ("text", "resource_link") for block in result.content)
    return texts[0].text


def error_text(result: CallToolResult) -> str:
    """The message of a tool error; fails if the call did not fail."""
    assert result.is_error, f"expected a tool error, got {text_of(result)[:300]}"
    message = text_of(result)
    assert message.strip()
    assert message.strip() != "Error executing tool"
    assert "Error executing tool" not in message
    return message


async def page_all(
    client: Client, arguments: Mapping[str, Any], *, max_calls: int = 500
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow next_cursor to the end; the ids in order and every structured result."""
    ids: list[str] = []
    results: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(max_calls):
        args = dict(arguments)
        if cursor is not None:
            args["cursor"] = cursor
        result = await client.call_tool("list_runs", args)
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data is not None
        results.append(data)
        ids.extend(row["id"] for row in data["runs"])
        cursor = data.get("next_cursor")
        if cursor is None:
            return ids, results
    raise AssertionError("paging did not end")


def check_snapshot(name: str, current: Any) -> None:
    """``current`` (JSON-ready, or a str for a text file) equals the stored snapshot
    ``name``; with ``TIMBAL_UPDATE_SNAPSHOTS=1`` the snapshot is rewritten first (review
    the diff)."""
    path = SNAPSHOTS / name
    if isinstance(current, str):
        rendered = current if current.endswith("\n") else current + "\n"
    else:
        rendered = json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("TIMBAL_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(rendered, encoding="utf-8")
        temporary.replace(path)
    assert path.exists(), f"no snapshot {path.name}: run with TIMBAL_UPDATE_SNAPSHOTS=1"
    stored = path.read_text(encoding="utf-8")
    same = (
        stored == rendered
        if isinstance(current, str)
        else json.loads(stored) == json.loads(rendered)
    )
    assert same, (
        f"{name} changed; if deliberate, regenerate the snapshots with "
        "TIMBAL_UPDATE_SNAPSHOTS=1 and review the diff"
    )


# --- ground truth -----------------------------------------------------------------------


def created(record: Mapping[str, Any]) -> datetime:
    value = datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00"))
    return value.astimezone(UTC)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def expected_runs(
    emulator: Emulator,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    email: str | None = None,
    rev: str | None = None,
    roots: bool = False,
    sort_by: str = "created_at",
    sort_order: str = "desc",
    **equal: str,
) -> list[dict[str, Any]]:
    """The runs the API should return, in order, recomputed from the ground truth."""
    field_of = {
        "status": lambda r: r["status"],
        "user_id": lambda r: r["user"]["id"],
        "sentiment": lambda r: r["last_reaction_sentiment"],
        "workforce_id": lambda r: r["workforce"]["id"],
        "group_id": lambda r: r["group_id"],
    }
    out = []
    for record in emulator.details:
        moment = truncate_ms(created(record))
        if since is not None and moment < since:
            continue
        if until is not None and moment >= until:
            continue
        if email is not None and record["user"]["email"].lower() != email.lower():
            continue
        if rev is not None and record.get("rev") not in (rev, None):
            continue
        if roots and record["parent_id"] is not None:
            continue
        if any(field_of[name](record) != value for name, value in equal.items()):
            continue
        out.append(dict(record))
    if sort_by == "created_at":
        if sort_order == "asc":
            out.reverse()
        return out
    descending = sort_order == "desc"
    present = [r for r in out if r[sort_by] is not None]
    missing = [r for r in out if r[sort_by] is None]
    present.sort(key=lambda r: (r[sort_by], r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return present + missing


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["id"]) for r in records]
