"""Issue 16, case 8: secrets at the edges.

- Credentials inside the host (``--host http://user:KEY@...``) are refused in one line
  that never shows them (before: the "is ... reachable?" hint printed them).
- A server that echoes the key back, whole or in part (its last characters, base64 of
  it or of the Authorization header, URL-encoded), has every form redacted from our
  messages, the CLI's output and MCP results (the Airflow side is in
  ``tests/airflow/test_hard_airflow_input.py``). The leak guard watches for those forms.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from mcp_server import ServerSettings, create_server
from tests.mcp.helpers_mcp import call, error_text, text_of
from tests.support.hostile import (
    KEY,
    ORG,
    PROJECT,
    HostileServer,
    Request,
    echo_key,
    echoed_key_forms,
    pages,
)
from tests.support.processes import cli_env, one_error_line, run_cli
from tests.support.runs import make_run
from timbal_integrations import (
    APIConnectionError,
    AuthenticationError,
    ConfigError,
    TimbalClient,
)
from timbal_integrations.redact import redact, secret_forms

pytestmark = pytest.mark.timeout(120)

FORMS = echoed_key_forms()


def _assert_clean(text: str) -> None:
    assert KEY not in text
    for name, form in FORMS.items():
        core = form.strip(".").rstrip("=")
        assert core[-12:] not in text, f"the key's {name} reached: {text[:300]}"


_echo = echo_key()


# --------------------------------------------------------------------------- host


def test_credentials_in_the_host_are_refused_without_being_shown() -> None:
    with HostileServer(pages(lambda r: {"runs": [], "next_page_token": None})).running() as s:
        host = f"http://api:{KEY}@127.0.0.1:{s.port}"
        by_flag = run_cli(["list", "--host", host], cli_env(s))
        by_variable = run_cli(["list"], cli_env(s, TIMBAL_API_HOST=host))
        assert s.count == 0
    for result, name in ((by_flag, "--host"), (by_variable, "TIMBAL_API_HOST")):
        assert result.returncode == 2
        line = one_error_line(result.stderr)
        assert f"{name}: 'http://***@127.0.0.1:" in line
        assert "carries credentials (user:password@)" in line
        _assert_clean(line)
    with pytest.raises(ConfigError) as info:
        TimbalClient("other-key-123456", host=host, org_id=ORG, project_id=PROJECT, env={})
    _assert_clean(str(info.value))
    settings = ServerSettings(api_key="other-key-123456", host=host, org_id=ORG, project_id=PROJECT)
    _assert_clean(error_text(call(create_server(settings), "list_runs", {})))


# --------------------------------------------------------------------------- echoes


def test_a_server_echoing_the_key_in_every_form_gets_none_of_them_repeated() -> None:
    with HostileServer(_echo).running() as server:
        with server.client() as client, pytest.raises(AuthenticationError) as info:
            client.get_runs_page()
        cli = run_cli(["list"], server)
        tool = error_text(call(create_server(ServerSettings(env=server.env())), "list_runs", {}))
    message = str(info.value)
    assert "bad key (last characters: ...***" in message
    assert message.count("***") >= len(FORMS)
    for text in (message, info.value.server_message, cli.stderr, tool):
        _assert_clean(text)
    assert cli.returncode == 1


def test_a_server_echoing_the_key_in_a_broken_header_line() -> None:
    # h11 quotes the line it could not parse: the key must not ride along.
    async def broken(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Echo " + request.headers["authorization"].encode())
        writer.write(b"\r\nContent-Length: 2\r\n\r\n{}")

    with HostileServer(broken).running() as server:
        client = server.client(max_retries=0)
        with client, pytest.raises(APIConnectionError) as info:
            client.get_runs_page()
    _assert_clean(str(info.value))
    assert "could not complete" in str(info.value)


def test_mcp_results_never_repeat_a_key_a_server_put_in_run_fields() -> None:
    def runs(request: Request) -> dict[str, Any]:
        user = {"id": "u", "name": FORMS["base64 of the key"], "email": f"{KEY}@x.test"}
        found = [make_run(0, user=user, group_id=FORMS["url-encoded"])]
        return {"runs": found, "next_page_token": None}

    with HostileServer(pages(runs)).running() as server:
        server_ = create_server(ServerSettings(env=server.env()))
        listed = call(server_, "list_runs", {})
        summary = call(server_, "summarize_runs", {})
    for result in (listed, summary):
        assert not result.is_error
        _assert_clean(text_of(result))
        _assert_clean(json.dumps(result.structured_content))


def test_redaction_finds_every_form_and_leaves_other_text_alone() -> None:
    for form in FORMS.values():
        assert redact(f"<{form}>", KEY).count("***") >= 1, form
    assert redact("nothing secret here: run_00001, 2026-01-01", KEY) == (
        "nothing secret here: run_00001, 2026-01-01"
    )
    assert redact("key ends with =K3Y", KEY) == "key ends with =K3Y"  # 4 characters: chance
    assert redact("anything", None) == "anything"


def test_the_leak_guard_watches_the_derived_forms(leak_guard: Any) -> None:
    leak_guard.register(KEY)
    assert set(secret_forms(KEY)) - {f for f in secret_forms(KEY) if len(f) < 8} <= (
        leak_guard.secrets
    )
    assert KEY[-8:] in leak_guard.secrets
    assert leak_guard.find("x", f"echo {FORMS['url-encoded']}") is not None
    assert leak_guard.find("x", f"echo {FORMS['base64 of the header']}") is not None
