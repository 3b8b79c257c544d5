"""Every failure is a tool error a model can act on, and the API key appears nowhere."""

from __future__ import annotations

import logging
import socket
from typing import Any

import orjson
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from mcp_server import ServerSettings, create_server
from mcp_server.failures import tool_failure
from tests.mcp.helpers_mcp import API_KEY, call, error_text, in_session, make_server, text_of
from timbal_integrations.emulator import Emulator
from timbal_integrations.errors import AuthenticationError, status_error
from timbal_integrations.wording import describe

# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "names", "expects"),
    [
        ("list_runs", {"limit": 0}, "`limit`", "1 to 200"),
        ("list_runs", {"limit": 201}, "`limit`", "1 to 200"),
        ("list_runs", {"limit": "many"}, "`limit`", "1 to 200"),
        ("list_runs", {"limit": True}, "`limit`", "1 to 200"),
        ("list_runs", {"limit": 2.5}, "`limit`", "1 to 200"),
        ("list_runs", {"sort_by": "cost"}, "`sort_by`", "cost_usd"),
        ("list_runs", {"sort_order": "down"}, "`sort_order`", "asc or desc"),
        ("list_runs", {"roots": "maybe"}, "`roots`", "true or false"),
        ("list_runs", {"status": 3}, "`status`", "success"),
        ("list_runs", {"since": ["24h"]}, "`since`", "ISO 8601"),
        ("list_runs", {"since": True}, "`since`", "ISO 8601"),
        ("list_runs", {"since": "yesterday"}, "`since`", "ISO 8601"),
        ("list_runs", {"until": "2025-13-40"}, "`until`", "ISO 8601"),
        ("list_runs", {"since": 1700000000}, "`since`", "milliseconds"),
        ("list_runs", {"since": "1d", "until": "2d"}, "`since`", "before until"),
        ("list_runs", {"status": "   "}, "`status`", "leave the filter out"),
        ("list_runs", {"user_email": "not-an-email"}, "`user_email`", "email address"),
        ("list_runs", {"statuss": "error"}, "`statuss`", "status, user_id"),
        ("list_runs", {"metadata": [1]}, "`metadata`", "JSON object"),
        ("list_runs", {"metadata": "{not json"}, "`metadata`", "JSON object"),
        ("list_runs", {"metadata": {}}, "`metadata`", "leave the filter out"),
        ("list_runs", {"fields": ["id", "colour"]}, "`fields`", "column names"),
        ("list_runs", {"fields": []}, "`fields`", "column names"),
        ("list_runs", {"workforce": "  "}, "`workforce`", "empty"),
        ("summarize_runs", {"bucket": "minute"}, "`bucket`", "hour, day or week"),
        ("summarize_runs", {"metadata": 5}, "`metadata`", "JSON object"),
        ("get_run", {"run_id": "x", "detail": "everything"}, "`detail`", "summary or full"),
        ("summarize_runs", {"max_runs": 0}, "`max_runs`", "1 to 100000"),
        ("summarize_runs", {"cursor": "abc"}, "`cursor`", "accepted:"),
        ("summarize_runs", {"limit": 5}, "`limit`", "accepted:"),
        ("get_run", {}, "`run_id`", "required"),
        ("get_run", {"run_id": ""}, "`run_id`", "run id"),
        ("get_run", {"run_id": "x" * 600}, "`run_id`", "run id"),
        ("get_run", {"run_id": "bad\nid"}, "`run_id`", "control characters"),
        ("get_run", {"run_id": "x", "verbose": True}, "`verbose`", "accepted: run_id"),
    ],
)
def test_bad_arguments_name_the_argument_and_what_was_expected(
    server: MCPServer[Any], tool: str, arguments: dict[str, Any], names: str, expects: str
) -> None:
    message = error_text(call(server, tool, arguments))
    assert names in message, message
    assert expects in message, message
    assert "\n" not in message


def test_several_bad_arguments_are_all_named(server: MCPServer[Any]) -> None:
    message = error_text(call(server, "list_runs", {"limit": 500, "sort_by": "x", "extra": 1}))
    assert "`limit`" in message
    assert "`sort_by`" in message
    assert "`extra`" in message


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drop", "variable"),
    [
        ("TIMBAL_API_KEY", "TIMBAL_API_KEY"),
        ("TIMBAL_ORG_ID", "TIMBAL_ORG_ID"),
        ("TIMBAL_PROJECT_ID", "TIMBAL_PROJECT_ID"),
    ],
)
def test_missing_configuration_is_a_tool_error(emu: Emulator, drop: str, variable: str) -> None:
    env = {k: v for k, v in emu.env().items() if k != drop}
    server = create_server(env=env)
    for tool, arguments in (
        ("list_runs", {}),
        ("get_run", {"run_id": "x"}),
        ("summarize_runs", {}),
    ):
        message = error_text(call(server, tool, arguments))
        assert "not configured" in message
        assert variable in message


def test_a_malformed_host_is_a_tool_error(emu: Emulator) -> None:
    server = create_server(env={**emu.env(), "TIMBAL_API_HOST": "ftp://example.test"})
    message = error_text(call(server, "list_runs", {}))
    assert "TIMBAL_API_HOST" in message


# --- API errors -----------------------------------------------------------------------------


def test_a_rejected_key(emu: Emulator) -> None:
    wrong = "tk_test_WRONGkey_0000000000000"
    server = create_server(env={**emu.env(), "TIMBAL_API_KEY": wrong})
    for tool, arguments in (
        ("list_runs", {}),
        ("get_run", {"run_id": "x"}),
        ("summarize_runs", {}),
    ):
        message = error_text(call(server, tool, arguments))
        assert "the API key was rejected — check TIMBAL_API_KEY" in message
        assert "401" in message
        assert wrong not in message


def test_a_setting_given_to_the_server_is_named_as_such(emu: Emulator) -> None:
    # The key came from create_server (or timbal-mcp --api-key), not the environment:
    # the hint names what was actually set.
    wrong = "tk_test_WRONGkey_1111111111111"
    server = create_server(env=emu.env(), api_key=wrong)
    message = error_text(call(server, "list_runs", {}))
    assert "the API key was rejected — check the server's api_key setting" in message
    assert "TIMBAL_API_KEY" not in message
    assert wrong not in message


def test_the_package_exports_what_it_declares() -> None:
    import mcp_server
    from tests.support.exports import exposed_members

    assert set(mcp_server.__all__) == exposed_members(mcp_server)


def test_a_forbidden_project(emu: Emulator) -> None:
    server = create_server(env={**emu.env(), "TIMBAL_PROJECT_ID": "someone-elses"})
    message = error_text(call(server, "list_runs", {}))
    assert "403" in message
    assert "TIMBAL_ORG_ID and TIMBAL_PROJECT_ID" in message


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("429", "rate limited by the Timbal API even after retrying"),
        ("500", "the Timbal API failed even after retrying"),
        ("502", "the Timbal API failed even after retrying"),
        ("503", "the Timbal API failed even after retrying"),
        ("drop", "could not reach the Timbal API"),
    ],
)
def test_persistent_faults_after_retries(
    timbal_emulator_factory: Any, kind: str, needle: str
) -> None:
    emu = timbal_emulator_factory(
        runs=50, api_key=API_KEY, fault_rate=1.0, fault_kinds=[kind], retry_after=3
    )
    server = make_server(emu)
    for tool, arguments in (
        ("list_runs", {}),
        ("summarize_runs", {}),
        ("get_run", {"run_id": "x"}),
    ):
        message = error_text(call(server, tool, arguments))
        assert needle in message, message
        if kind != "drop":
            assert f"HTTP {kind}" in message
    # every request retried 4 times; get_run asks for the run and its reactions at once
    assert emu.stats.requests_total == 4 * 5
    assert emu.stats.requests_by_endpoint["reactions"] == 5
    if kind == "429":
        assert "wait 3s" in message


def test_transient_faults_are_retried_invisibly(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=300, api_key=API_KEY, fault_rate=0.3, page_size=20)
    server = make_server(emu)
    data = call(server, "list_runs", {"limit": 200}).structured_content
    assert data is not None
    assert data["returned"] == 200
    assert emu.stats.faults_total > 0


def test_an_unreachable_api(emu: Emulator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = create_server(env={**emu.env(), "TIMBAL_API_HOST": f"http://127.0.0.1:{port}"})
    message = error_text(call(server, "list_runs", {}))
    assert "could not reach the Timbal API" in message
    assert f"127.0.0.1:{port}" in message


def test_an_unexpected_crash_is_still_explained(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"boom {API_KEY}")

    monkeypatch.setattr("mcp_server.tools.list_runs.run_row", broken)
    message = error_text(call(make_server(emu), "list_runs", {"limit": 1}))
    assert "internal error (RuntimeError)" in message
    assert "RuntimeError: boom ***" in caplog.text  # the traceback is logged, scrubbed
    assert API_KEY not in caplog.text
    assert "internal error" in message
    assert "list_runs" in message
    assert API_KEY not in message


def test_explanations_scrub_the_key_even_if_the_api_echoes_it() -> None:
    leaked = status_error(
        401, method="GET", path="/orgs/o/projects/p/runs", server_message=f"bad key {API_KEY}"
    )
    assert isinstance(leaked, AuthenticationError)
    assert API_KEY in describe(leaked, "assistant")  # the raw explanation would leak it...
    failure = tool_failure("list_runs", leaked, ServerSettings(env={"TIMBAL_API_KEY": API_KEY}))
    assert API_KEY not in str(failure)  # ...the tools scrub it
    assert "check TIMBAL_API_KEY" in str(failure)


# --- the key appears nowhere -------------------------------------------------------------------


def _every_output(result: CallToolResult) -> str:
    parts = [text_of(result)]
    if result.structured_content is not None:
        parts.append(orjson.dumps(result.structured_content).decode())
    return "\n".join(parts)


def test_the_api_key_appears_in_no_result_error_or_log_line(
    emu: Emulator, timbal_emulator_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faulty = timbal_emulator_factory(
        runs=40, api_key=API_KEY, fault_rate=0.5, fault_kinds=["429", "500", "502", "drop"]
    )
    calls: list[tuple[MCPServer[Any], str, dict[str, Any]]] = []
    for target in (emu, faulty):
        server = make_server(target)
        calls += [
            (server, "list_runs", {"limit": 200, "user_email": "ada@acme.test"}),
            (server, "list_runs", {"since": "bad"}),
            (server, "list_runs", {"cursor": "bad"}),
            (server, "get_run", {"run_id": emu.details[0]["id"]}),
            (server, "get_run", {"run_id": "missing"}),
            (server, "summarize_runs", {"max_runs": 100}),
        ]
    wrong_org = create_server(env={**emu.env(), "TIMBAL_ORG_ID": "other"})
    calls.append((wrong_org, "list_runs", {}))
    outputs = []
    for server, tool, arguments in calls:
        outputs.append(_every_output(call(server, tool, arguments)))

    async def listing(client: Any) -> Any:
        return await client.list_tools()

    outputs.append(repr(in_session(make_server(emu), listing)))
    everything = "\n".join(outputs)
    assert "Error executing tool" not in everything
    assert API_KEY not in everything
    assert API_KEY not in caplog.text
    assert caplog.records  # the logs were captured (retries warn)
    assert API_KEY not in repr(make_server(emu))
    assert API_KEY not in repr(ServerSettings(api_key=API_KEY))
