"""Tool listing: names, annotations, descriptions, and snapshots of every schema.

A schema change must be deliberate: regenerate the snapshots with
``TIMBAL_UPDATE_SNAPSHOTS=1 pytest tests/mcp/test_mcp_schema.py`` and review the diff.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.types import Tool

from mcp_server import SERVER_NAME, TOOL_NAMES
from tests.mcp.helpers_mcp import check_snapshot, in_session

FILTERS = [
    "status",
    "user_id",
    "user_email",
    "sentiment",
    "workforce_id",
    "workforce",
    "group_id",
    "rev",
    "since",
    "until",
    "metadata",
    "roots",
    "sort_by",
    "sort_order",
]


def enum_values(prop: dict[str, Any]) -> list[str]:
    return next(option["enum"] for option in prop["anyOf"] if "enum" in option)


@pytest.fixture
def tools(server: MCPServer[Any]) -> dict[str, Tool]:
    listing = in_session(server, lambda client: client.list_tools())
    return {tool.name: tool for tool in listing.tools}


def test_server_identifies_itself_as_timbal(server: MCPServer[Any]) -> None:
    async def info(client: Any) -> Any:
        return client.server_info

    server_info = in_session(server, info)
    assert SERVER_NAME == "timbal"
    assert server_info.name == "timbal"
    assert server_info.version


def test_the_three_tools_are_listed_read_only_and_idempotent(tools: dict[str, Tool]) -> None:
    assert sorted(tools) == sorted(TOOL_NAMES) == ["get_run", "list_runs", "summarize_runs"]
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.destructive_hint is False
        assert tool.title
        assert tool.description
        assert len(tool.description) > 100
        assert "Example" in tool.description


def test_list_runs_input_schema_is_typed(tools: dict[str, Tool]) -> None:
    schema = tools["list_runs"].input_schema
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert list(props) == [*FILTERS, "fields", "limit", "cursor"]
    assert schema.get("required", []) == []
    assert props["limit"]["type"] == "integer"
    assert (props["limit"]["minimum"], props["limit"]["maximum"]) == (1, 200)
    assert props["limit"]["default"] == 20

    def enum_of(prop: dict[str, Any]) -> list[str]:
        return next(option["enum"] for option in prop["anyOf"] if "enum" in option)

    assert enum_of(props["sort_by"]) == [
        "id",
        "created_at",
        "duration_ms",
        "cost_usd",
        "cost_credits",
    ]
    assert enum_of(props["sort_order"]) == ["asc", "desc"]
    # status is an open string: known values are offered, none is enforced
    assert "enum" not in json.dumps(props["status"])
    for known in ("success", "error", "cancelled", "running"):
        assert known in props["status"]["description"]
    for name in (*FILTERS, "fields", "limit", "cursor"):
        assert props[name]["description"], name
    assert "24h" in props["since"]["description"]
    assert "UTC" in props["since"]["description"]
    # metadata is a JSON object (a JSON string is accepted too, as everywhere else)
    assert {"type": "object", "additionalProperties": True} in props["metadata"]["anyOf"]
    columns = next(option for option in props["fields"]["anyOf"] if option.get("type") == "array")
    assert columns["items"]["enum"][:3] == ["id", "idempotency_key", "created_at"]
    assert columns["minItems"] == 1


def test_summarize_runs_takes_the_same_filters_and_a_scan_bound(tools: dict[str, Tool]) -> None:
    schema = tools["summarize_runs"].input_schema
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert list(props) == [*FILTERS, "bucket", "max_runs"]
    assert enum_values(props["bucket"]) == ["hour", "day", "week"]
    assert props["max_runs"]["default"] == 10_000
    assert props["max_runs"]["minimum"] == 1
    list_props = tools["list_runs"].input_schema["properties"]
    for name in FILTERS:
        assert props[name] == list_props[name]


def test_get_run_requires_a_run_id(tools: dict[str, Tool]) -> None:
    schema = tools["get_run"].input_schema
    assert schema["required"] == ["run_id"]
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["run_id", "detail"]
    assert schema["properties"]["detail"]["enum"] == ["summary", "full"]
    assert schema["properties"]["detail"]["default"] == "summary"
    output = tools["get_run"].output_schema
    assert output is not None
    assert {"id", "status", "detail", "reactions", "resources"} <= set(output["required"])


def test_output_schemas_are_valid_json_schemas(tools: dict[str, Tool]) -> None:
    for tool in tools.values():
        assert tool.output_schema is not None, tool.name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
    listed = tools["list_runs"].output_schema
    assert listed is not None
    assert set(listed["required"]) == {"runs", "returned", "applied_filters"}
    for name in ("next_cursor", "scanned", "scan_bound_hit", "hint"):
        assert name in listed["properties"]
    summary = tools["summarize_runs"].output_schema
    assert summary is not None
    assert {"total", "complete", "by_status", "max_runs", "applied_filters"} <= set(
        summary["required"]
    )


@pytest.mark.parametrize("name", ["list_runs", "get_run", "summarize_runs"])
def test_schemas_match_their_snapshot(tools: dict[str, Tool], name: str) -> None:
    tool = tools[name]
    current = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "annotations": tool.annotations.model_dump(exclude_none=True) if tool.annotations else None,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
    }
    check_snapshot(f"{name}.json", current)


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_published_input_schema_is_the_strict_models(
    server: MCPServer[Any], tools: dict[str, Tool], name: str
) -> None:
    # create_server reuses the SDK's input schema instead of generating one for the
    # strict argument model; both must say the same.
    arg_model = server._tool_manager.get_tool(name).fn_metadata.arg_model  # type: ignore[union-attr]
    assert arg_model.model_config.get("extra") == "forbid"
    expected = arg_model.model_json_schema(by_alias=True)
    expected.pop("title", None)
    for prop in expected.get("properties", {}).values():
        prop.pop("title", None)
    assert expected.pop("additionalProperties") is False
    published = dict(tools[name].input_schema)
    assert published.pop("additionalProperties") is False
    assert published == expected
