"""``list_runs``'s newer arguments: ``metadata``, ``workforce`` (a name resolved to its
id), ``fields``; unknown filter values reported with the known ones; numbers rounded in
the text, exact in the structured content."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_server.readable import readable
from tests.mcp.helpers_mcp import (
    API_KEY,
    call,
    error_text,
    expected_runs,
    ids,
    in_session,
    make_server,
    page_all,
    text_of,
)
from timbal_integrations.emulator import Emulator, generate_runs

_LONG_FLOAT = re.compile(r"\d\.\d{7,}")


def listing(server: MCPServer[Any], **arguments: Any) -> tuple[dict[str, Any], str]:
    result = call(server, "list_runs", arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content, text_of(result)


def with_metadata(emu: Emulator, wanted: dict[str, Any]) -> list[str]:
    return [
        r["id"]
        for r in emu.details
        if all((r.get("metadata") or {}).get(k) == v for k, v in wanted.items())
    ]


@pytest.mark.parametrize("spelling", ["object", "json string"])
def test_metadata_filters_like_every_other_front_end(
    server: MCPServer[Any], emu: Emulator, spelling: str
) -> None:
    wanted = {"env": "prod", "tier": "enterprise"}
    expected = with_metadata(emu, wanted)
    assert 0 < len(expected) < len(emu.details) // 2
    value: Any = wanted if spelling == "object" else '{"tier": "enterprise", "env": "prod"}'

    async def go(client: Client) -> list[str]:
        got, _ = await page_all(client, {"metadata": value, "limit": 200})
        return got

    assert in_session(server, go) == expected
    data, text = listing(server, metadata=value, limit=5)
    assert data["applied_filters"]["metadata"] == wanted
    assert "metadata={" in text
    assert '"env":"prod"' in text
    assert '"tier":"enterprise"' in text


def test_metadata_cursor_belongs_to_its_filter(server: MCPServer[Any]) -> None:
    first, _ = listing(server, metadata={"env": "prod"}, limit=2)
    message = error_text(
        call(server, "list_runs", {"metadata": {"env": "staging"}, "cursor": first["next_cursor"]})
    )
    assert "`cursor`" in message


def test_a_workforce_name_is_resolved_to_its_id(server: MCPServer[Any], emu: Emulator) -> None:
    name = next(r["workforce"]["name"] for r in emu.runs if r["workforce"]["id"] == "wf_support")
    data, text = listing(server, workforce=name.upper(), limit=200)
    assert data["workforce_resolution"]["workforce_id"] == "wf_support"
    assert data["workforce_resolution"]["scanned"] == 1000  # the bound: MCP_RECENT_SCAN_RUNS
    assert data["applied_filters"]["workforce_id"] == "wf_support"
    assert data["applied_filters"]["workforce"] == name.upper()
    assert ids(expected_runs(emu, workforce_id="wf_support"))[:200] == [
        r["id"] for r in data["runs"]
    ]
    assert "is wf_support (found among the 1000 most recent runs)" in text

    async def go(client: Client) -> list[str]:
        got, _ = await page_all(client, {"workforce": f"  {name} ", "status": "error"})
        return got

    assert in_session(server, go) == ids(
        expected_runs(emu, workforce_id="wf_support", status="error")
    )


def test_an_unknown_workforce_name_says_what_is_known(server: MCPServer[Any]) -> None:
    data, text = listing(server, workforce="suport-agent")
    assert data["runs"] == []
    resolution = data["workforce_resolution"]
    assert "workforce_id" not in resolution
    assert resolution["did_you_mean"] == "support-agent"
    assert "support-agent" in resolution["known"]
    assert "no workforce named 'suport-agent'" in text
    assert "did you mean 'support-agent'?" in text
    assert "pass workforce_id" in text


def test_ambiguous_and_conflicting_names_are_refused(timbal_emulator_factory: Any) -> None:
    runs = generate_runs(60, seed=4)
    twin = {**runs[0], "id": "twin", "idempotency_key": "twin-key"}
    twin["workforce"] = {**runs[0]["workforce"], "id": "wf_twin", "type": "workflow"}
    emu = timbal_emulator_factory(runs=[twin, *runs[1:]], api_key=API_KEY)
    server = make_server(emu)
    name = twin["workforce"]["name"]
    message = error_text(call(server, "list_runs", {"workforce": name}))
    assert "`workforce`" in message
    assert "names 2 workforces" in message
    assert "wf_twin (workflow" in message
    assert runs[0]["workforce"]["id"] in message
    other = next(r["workforce"] for r in runs if r["workforce"]["name"] != name)
    message = error_text(
        call(server, "list_runs", {"workforce": other["name"], "workforce_id": "wf_elsewhere"})
    )
    assert f"is workforce {other['id']}, but workforce_id is 'wf_elsewhere'" in message


@pytest.mark.parametrize(
    "fields",
    [["status", "cost_usd"], ["id", "idempotency_key", "cost_credits"], ["user", "workforce"]],
)
def test_fields_choose_the_columns(
    server: MCPServer[Any], emu: Emulator, fields: list[str]
) -> None:
    data, text = listing(server, fields=fields, limit=30)
    columns = list(dict.fromkeys(["id", *fields]))
    assert data["fields"] == columns
    truth = {r["id"]: r for r in emu.details}
    for row in data["runs"]:
        assert set(row) <= set(columns)
        source = truth[row["id"]]
        if "idempotency_key" in columns:
            assert row["idempotency_key"] == source["idempotency_key"]
        if "cost_credits" in columns:
            assert row["cost_credits"] == source["cost_credits"]
    header = text.splitlines()[1]
    assert header == "|".join(columns)
    assert ("users: " in text) is ("user" in columns)


def test_fewer_fields_make_smaller_results(server: MCPServer[Any]) -> None:
    _, wide = listing(server, limit=100)
    _, narrow = listing(server, limit=100, fields=["id", "status"])
    assert len(narrow) < len(wide) / 2


@pytest.mark.parametrize(
    ("arguments", "filter_name", "close"),
    [
        ({"status": "eror"}, "status", "error"),
        ({"sentiment": "negativ"}, "sentiment", "negative"),
        ({"workforce_id": "wf_suport"}, "workforce_id", "wf_support"),
        ({"user_id": "usr_adaa"}, "user_id", "usr_ada"),
    ],
)
def test_a_value_that_matches_nothing_known_is_reported(
    server: MCPServer[Any], arguments: dict[str, Any], filter_name: str, close: str
) -> None:
    data, text = listing(server, **arguments)
    assert data["runs"] == []
    (unknown,) = data["unknown_values"]
    assert unknown["filter"] == filter_name
    assert unknown["value"] == arguments[filter_name]
    assert unknown["did_you_mean"] == close
    assert unknown["known"]
    assert f"did you mean {close!r}?" in text
    summary = call(server, "summarize_runs", arguments).structured_content
    assert summary is not None
    assert summary["unknown_values"][0]["did_you_mean"] == close


def test_a_known_value_with_no_runs_is_not_reported(server: MCPServer[Any]) -> None:
    data, _ = listing(server, status="error", since="2025-12-31T23:59:59.999Z")
    assert data["runs"] == []
    assert "unknown_values" not in data


def test_numbers_are_rounded_in_the_text_only(server: MCPServer[Any]) -> None:
    data, text = listing(server, limit=200)
    lines = {line.split("|", 1)[0]: line for line in text.splitlines() if "|" in line}
    rounded = [r for r in data["runs"] if readable(r["cost_usd"]) != r["cost_usd"]]
    assert rounded  # some costs have more digits than a reader needs
    for row in rounded:
        cells = lines[row["id"]].split("|")
        assert cells[4] == str(readable(row["cost_usd"]))  # the structured row keeps them all
    summary = call(server, "summarize_runs", {})
    assert summary.structured_content is not None
    total = summary.structured_content["cost_usd_total"]
    assert f'"cost_usd_total":{readable(total)},' in text_of(summary)
    assert not _LONG_FLOAT.search(text_of(summary))
