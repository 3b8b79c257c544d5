"""Secrets: the suite-wide leak guard (tests/conftest.py) catches a key wherever it
leaks; the key stays out of every repr, message and output we can provoke; and the MCP
HTTP transport refuses requests without its token or with a foreign Host.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_server import ServerSettings, create_server
from mcp_server.transport import BearerTokenMiddleware, build_http_app
from tests.hardening.helpers_hard import (
    MCP_TOKEN,
    SECRET_KEY,
    BrokenServer,
    json_response,
    serve_asgi,
)
from tests.mcp.helpers_http import initialize
from tests.support.processes import run_cli
from timbal_integrations import (
    AsyncTimbalClient,
    AuthenticationError,
    RunQuery,
    TimbalClient,
    TimbalError,
)
from timbal_integrations.emulator import DEFAULT_API_KEY, FIXED_END, Emulator, run_emulator

pytestmark = pytest.mark.timeout(120)

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture(scope="module")
def emu() -> Any:
    with run_emulator(runs=200, seed=3, api_key=SECRET_KEY) as emulator:
        yield emulator


# --- the guard itself -------------------------------------------------------------------------


def test_the_registry_ignores_public_and_short_values(leak_guard: Any) -> None:
    guard = type(leak_guard)()  # a fresh registry, not the session's
    guard.register(DEFAULT_API_KEY)
    guard.register("short")
    guard.register(None)
    guard.register("  tk-long-enough-secret  ")
    # the key, its last 8 characters, and its base64 (its URL-encoded form is itself)
    assert "tk-long-enough-secret" in guard.secrets
    assert "h-secret" in guard.secrets
    assert all(len(form) >= 8 for form in guard.secrets)
    assert not any("demo" in form or "short" in form for form in guard.secrets)
    assert guard.find("somewhere", "demo-key and short") is None
    problem = guard.find("stdout", "x = tk-long-enough-secret")
    assert problem is not None
    assert "tk-long-enough-secret" not in problem  # the report does not repeat it
    assert "stdout" in problem


def test_keys_and_tokens_in_use_are_registered(emu: Emulator, leak_guard: Any) -> None:
    TimbalClient(
        "tk-registered-by-use-0001", host=emu.base_url, org_id="o", project_id="p", env={}
    ).close()
    BearerTokenMiddleware(lambda *a: None, "mcp-token-registered-0002")  # type: ignore[arg-type]
    assert {"tk-registered-by-use-0001", "mcp-token-registered-0002"} <= leak_guard.secrets


INNER_TESTS = """
import logging, os, subprocess, sys, asyncio
import pytest
from mcp import Client
from mcp_server import create_server
from timbal_integrations import TimbalClient, TimbalError
from timbal_integrations.emulator import run_emulator

SECRET = "tk-inner-SECRET-31415926"

@pytest.fixture(autouse=True)
def _register(leak_guard):
    leak_guard.register(SECRET)

def test_clean():
    print("nothing to see")

def test_demo_key_is_public():
    print("export TIMBAL_API_KEY=demo-key")

def test_log_record():
    logging.getLogger("somewhere").warning("using key %s", SECRET)

def test_print():
    print("key:", SECRET)

def test_fd_write():
    os.write(2, SECRET.encode())

def test_read_back_with_capsys(capsys):
    print(SECRET)
    capsys.readouterr()

def test_subprocess_output():
    subprocess.run([sys.executable, "-c", f"print({SECRET!r})"], capture_output=True)

def test_exception_message():
    namespace = {"TimbalError": TimbalError}
    code = "def build(s):\\n    return TimbalError('bad key ' + s)"
    exec(compile(code, "/lib/leaky.py", "exec"), namespace)
    namespace["build"](SECRET)

def test_emulator_factory_key(timbal_emulator_factory):
    emu = timbal_emulator_factory(runs=5, api_key="tk-factory-SECRET-2718")
    print(emu.env())

def test_client_key():
    host = "http://127.0.0.1:9"
    TimbalClient("tk-client-SECRET-1618", host=host, org_id="o", project_id="p").close()
    logging.getLogger("x").error("tk-client-SECRET-1618")

def test_mcp_result():
    runs = [{
        "id": "r1", "idempotency_key": "k1", "status": "success",
        "created_at": "2025-12-01T00:00:00Z", "duration_ms": 1, "cost_usd": 0.0,
        "cost_credits": 0.0, "group_id": "r1", "parent_id": None,
        "last_reaction_sentiment": None,
        "user": {"id": "u", "name": SECRET, "email": "a@b.c"},
        "workforce": {"id": "w", "name": "w", "type": "agent"},
    }]
    with run_emulator(runs=runs, api_key="tk-inner-other-key-99") as emu:
        server = create_server(env=emu.env())
        async def go():
            async with Client(server) as client:
                return await client.call_tool("list_runs", {})
        assert not asyncio.run(go()).is_error
"""


def test_the_guard_fails_every_kind_of_leak(pytester: pytest.Pytester) -> None:
    shutil.copy(CONFTEST, pytester.path / "conftest.py")
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=240)
    leaks = {
        "test_log_record": "a log record of 'somewhere'",
        "test_print": "captured stdout call",
        "test_fd_write": "captured stderr call",
        "test_read_back_with_capsys": "stdout read with capsys/capfd",
        "test_subprocess_output": "a subprocess's stdout",
        "test_exception_message": "a TimbalError message",
        "test_emulator_factory_key": "captured stdout call",
        "test_client_key": "a log record of 'x'",
        "test_mcp_result": "an MCP result of list_runs",
    }
    result.assert_outcomes(passed=2, failed=len(leaks))
    text = result.stdout.str()
    for name in leaks:
        line = next(
            ln for ln in text.splitlines() if ln.startswith(f"FAILED test_inner.py::{name}")
        )
        assert "secret leaked" in line, line
    for name, where in leaks.items():
        assert where in text, (name, where)
    reports = [ln for ln in text.splitlines() if "a registered secret (" in ln]
    assert len(reports) >= len(leaks)
    assert not any("SECRET-31415926" in ln for ln in reports)  # reports do not repeat it


# --- the key stays out of reprs, messages and output --------------------------------------------


def test_no_repr_or_message_shows_the_key(emu: Emulator) -> None:
    client = TimbalClient(
        SECRET_KEY, host=emu.base_url, org_id=emu.org_id, project_id=emu.project_id, env={}
    )
    aclient = AsyncTimbalClient(env=emu.env())
    settings = ServerSettings(env=emu.env(), api_key=SECRET_KEY)
    middleware = BearerTokenMiddleware(lambda *a: None, MCP_TOKEN)  # type: ignore[arg-type]
    objects: list[object] = [
        client,
        aclient,
        client.config,
        client.config.api_key,
        settings,
        middleware,
        emu,
        emu.app,
        RunQuery(status="error", now=FIXED_END),
    ]
    for thing in objects:
        for text in (repr(thing), str(thing)):
            assert SECRET_KEY not in text, type(thing)
            assert MCP_TOKEN not in text, type(thing)
    client.close()
    asyncio.run(aclient.aclose())


def echo_everything(request: Any, number: int) -> bytes:
    """A hostile server: echoes the Authorization header back in every field it can."""
    auth = request.headers.get("authorization", "")
    return json_response(
        500 if number % 2 else 401,
        {"message": f"denied {auth}", "detail": auth, "error": {"message": auth}},
        headers={"X-Echo": auth, "Retry-After": "0"},
    )


def test_a_server_echoing_the_key_never_gets_it_into_an_error_or_output(
    tmp_path: Path,
) -> None:
    with BrokenServer(echo_everything).running() as server:
        with pytest.raises(AuthenticationError) as info, server.client(max_retries=3) as client:
            client.get_runs_page()
        for text in (str(info.value), repr(info.value), info.value.server_message):
            assert SECRET_KEY not in text
        assert "Bearer ***" in str(info.value)
        for argv in (["list"], ["--debug", "summary"], ["export", "-o", str(tmp_path / "x.csv")]):
            result = run_cli(argv, server.env())
            assert result.returncode == 1, result.stderr
            assert SECRET_KEY not in result.stdout + result.stderr
            assert "Bearer ***" in result.stderr


def test_timbal_mcp_at_debug_level_logs_no_key(emu: Emulator, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server", "--log-level", "debug"],
        env={**emu.env(), "TIMBAL_RETRY_TESTING": "1"},
    )

    async def go() -> list[Any]:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            return [
                await client.call_tool("list_runs", {"limit": 3}),
                await client.call_tool("get_run", {"run_id": "no-such-run"}),
                await client.call_tool("summarize_runs", {"since": "2025-12-30"}),
            ]

    with (tmp_path / "stderr.txt").open("w+") as errlog:
        results = asyncio.run(go())
        errlog.seek(0)
        log = errlog.read()
    assert "DEBUG" in log  # it did log at debug level
    assert SECRET_KEY not in log
    for result in results:
        assert SECRET_KEY not in result.model_dump_json()


def test_config_errors_never_echo_a_malformed_key() -> None:
    for key in ("tk-with-a-newline\n-9f8e7d", "tk-with a space-9f8e7d", "tk-ünïcode-9f8e7d"):
        with pytest.raises(TimbalError) as info:
            TimbalClient(key, host="http://127.0.0.1:9", org_id="o", project_id="p", env={})
        assert key.strip() not in str(info.value)
        assert "9f8e7d" not in str(info.value)
        assert "TIMBAL_API_KEY" in str(info.value)


# --- the MCP HTTP transport --------------------------------------------------------------------


def test_the_http_transport_wants_the_token_and_a_local_host(emu: Emulator) -> None:
    server = create_server(ServerSettings(env=emu.env(), now=lambda: FIXED_END))
    app = build_http_app(server, host="127.0.0.1", token=MCP_TOKEN)
    with serve_asgi(app) as base:
        url = f"{base}/mcp"
        refused = [
            initialize(url, {}),
            initialize(url, {"Authorization": "Bearer wrong-token-0000000000"}),
            initialize(url, {"Authorization": MCP_TOKEN}),  # no scheme
            initialize(url, {"Authorization": f"Basic {MCP_TOKEN}"}),
            initialize(url, {"Authorization": f"Bearer {MCP_TOKEN[:-1]}"}),  # a prefix
            initialize(url, {"Authorization": f"Bearer {MCP_TOKEN}x"}),
        ]
        for status, body, headers in refused:
            assert status == 401
            assert "bearer token" in body
            assert MCP_TOKEN not in body + headers
        status, _, _ = initialize(url, {"Authorization": f"Bearer {MCP_TOKEN}"}, host="evil.test")
        assert status == 421  # a foreign Host: DNS rebinding refused
        status, _, _ = initialize(
            url, {"Authorization": f"Bearer {MCP_TOKEN}", "Origin": "http://evil.test"}
        )
        assert status == 403
        status, body, _ = initialize(url, {"Authorization": f"Bearer {MCP_TOKEN}"})
        assert status == 200, body
        assert '"timbal"' in body

        async def with_the_sdk() -> Any:
            headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                return await client.call_tool("list_runs", {"limit": 2})

        result = asyncio.run(with_the_sdk())
    assert not result.is_error
    assert result.structured_content["returned"] == 2
    assert SECRET_KEY not in result.model_dump_json()


def test_a_public_http_bind_without_a_token_is_refused(emu: Emulator) -> None:
    server = create_server(ServerSettings(env=emu.env()))
    for host in ("0.0.0.0", "10.1.2.3", "example.test"):
        with pytest.raises(ValueError, match="--auth-token"):
            build_http_app(server, host=host)
    with pytest.raises(ValueError, match="token"):
        BearerTokenMiddleware(lambda *a: None, "")  # type: ignore[arg-type]
