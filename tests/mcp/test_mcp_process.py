"""End to end: a real ``timbal-mcp`` process over stdio and over streamable HTTP.

The SDK's own clients drive it; the process reaches the emulator over a real socket.
Readiness is awaited by reading the server's announcement line, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.helpers_http import McpHttp, initialize, serving
from tests.mcp.helpers_mcp import API_KEY, expected_runs, ids, page_all
from timbal_integrations.emulator import Emulator

BIN = Path(sys.executable).parent
TIMBAL_MCP = str(BIN / "timbal-mcp")
TOKEN = "mcp-test-token-9f8e7d6c5b4a"
START_TIMEOUT = 60.0


def server_env(emu: Emulator, **extra: str) -> dict[str, str]:
    return {**emu.env(), "TIMBAL_RETRY_TESTING": "1", **extra}


def run_stdio(params: StdioServerParameters, errlog: TextIO, work: Any) -> Any:
    async def go() -> Any:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            return await work(client)

    return asyncio.run(go())


def test_the_console_script_exists() -> None:
    assert Path(TIMBAL_MCP).exists(), "the project is not installed (pip install -e .)"


def test_stdio_end_to_end(emu: Emulator, tmp_path: Path) -> None:
    params = StdioServerParameters(command=TIMBAL_MCP, env=server_env(emu))
    since, until = "2025-12-20T00:00:00+01:00", "2025-12-24T00:00:00Z"

    async def work(client: Client) -> dict[str, Any]:
        listing = await client.list_tools()
        every, _ = await page_all(client, {"since": since, "until": until, "limit": 40})
        one = await client.call_tool("get_run", {"run_id": every[0]})
        summary = await client.call_tool(
            "summarize_runs", {"since": since, "until": until, "status": "error"}
        )
        bad = await client.call_tool("list_runs", {"limit": 1000})
        return {
            "tools": sorted(t.name for t in listing.tools),
            "server": client.server_info.name if client.server_info else None,
            "ids": every,
            "one": one.structured_content,
            "summary": summary.structured_content,
            "bad": bad,
        }

    with (tmp_path / "stderr.txt").open("w+") as errlog:
        got = run_stdio(params, errlog, work)
        errlog.seek(0)
        stderr = errlog.read()
    start = datetime.fromisoformat("2025-12-19T23:00:00+00:00")
    end = datetime.fromisoformat("2025-12-24T00:00:00+00:00")
    assert got["tools"] == ["get_run", "list_runs", "summarize_runs"]
    assert got["server"] == "timbal"
    assert got["ids"] == ids(expected_runs(emu, since=start, until=end))
    assert got["one"]["id"] == got["ids"][0]
    errors = expected_runs(emu, since=start, until=end, status="error")
    assert got["summary"]["total"] == len(errors)
    assert got["bad"].is_error
    assert "`limit`" in got["bad"].content[0].text
    assert API_KEY not in stderr
    assert "Traceback" not in stderr


async def exercise_everything(client: Client, emu: Emulator) -> dict[str, Any]:
    """Every tool argument added for traces, series and filters, the resource templates,
    prompts and completions, through one client session."""
    from mcp.types import PromptReference, ResourceTemplateReference

    failed = next(d for d in emu.details if d["status"] == "error")
    out: dict[str, Any] = {}
    out["listing"] = await client.call_tool(
        "list_runs",
        {
            "workforce": "support-agent",
            "metadata": {"env": "prod"},
            "fields": ["id", "status", "cost_usd"],
            "limit": 5,
        },
    )
    out["unknown"] = await client.call_tool("list_runs", {"status": "eror"})
    out["summary"] = await client.call_tool(
        "get_run", {"run_id": failed["id"], "detail": "summary"}
    )
    out["full"] = await client.call_tool("get_run", {"run_id": failed["id"], "detail": "full"})
    out["series"] = await client.call_tool(
        "summarize_runs",
        {
            "since": "2025-12-20",
            "until": "2025-12-24",
            "bucket": "day",
            "workforce": "support-agent",
            "metadata": {"env": "prod"},
        },
    )
    out["templates"] = await client.list_resource_templates()
    out["run"] = await client.read_resource(f"timbal://runs/{failed['id']}")
    out["trace"] = await client.read_resource(f"timbal://runs/{failed['id']}/trace")
    out["prompts"] = await client.list_prompts()
    out["prompt"] = await client.get_prompt("cost_report", {"since": "7d"})
    out["status"] = await client.complete(
        PromptReference(name="triage_failures"), {"name": "status", "value": "err"}
    )
    out["workforce"] = await client.complete(
        PromptReference(name="cost_report"), {"name": "workforce_id", "value": "wf_sup"}
    )
    out["user"] = await client.complete(
        PromptReference(name="user_activity"), {"name": "user_id", "value": "usr_ad"}
    )
    out["sort_by"] = await client.complete(
        PromptReference(name="cost_report"), {"name": "sort_by", "value": "cost"}
    )
    out["run_id"] = await client.complete(
        ResourceTemplateReference(uri="timbal://runs/{run_id}"), {"name": "run_id", "value": ""}
    )
    out["failed"] = failed
    return out


def check_everything(got: dict[str, Any], emu: Emulator) -> None:
    failed = got["failed"]
    listing = got["listing"].structured_content
    assert listing["fields"] == ["id", "status", "cost_usd"]
    assert listing["workforce_resolution"]["workforce_id"] == "wf_support"
    assert listing["applied_filters"]["metadata"] == {"env": "prod"}
    assert got["unknown"].structured_content["unknown_values"][0]["did_you_mean"] == "error"
    summary = got["summary"].structured_content
    assert summary["detail"] == "summary"
    assert summary["trace"]["failures"]
    links = [b for b in got["summary"].content if b.type == "resource_link"]
    assert [str(b.uri) for b in links] == [
        f"timbal://runs/{failed['id']}",
        f"timbal://runs/{failed['id']}/trace",
    ]
    full = got["full"].structured_content
    assert full["detail"] == "full"
    assert all("call_id" in entry for entry in full["trace"]["tree"])
    assert got["series"].structured_content["workforce_resolution"]["workforce_id"] == "wf_support"
    series = got["series"].structured_content["series"]
    assert [b["start"][:10] for b in series] == [
        "2025-12-20",
        "2025-12-21",
        "2025-12-22",
        "2025-12-23",
    ]
    assert {t.uri_template for t in got["templates"].resource_templates} == {
        "timbal://runs/{run_id}",
        "timbal://runs/{run_id}/trace",
    }
    run_doc = json.loads(got["run"].contents[0].text)
    assert run_doc["run"]["trace"] == failed["trace"]
    assert json.loads(got["trace"].contents[0].text)["trace"] == failed["trace"]
    assert [p.name for p in got["prompts"].prompts] == [
        "triage_failures",
        "cost_report",
        "user_activity",
    ]
    assert "summarize_runs" in got["prompt"].messages[0].content.text
    assert got["status"].completion.values == ["error"]
    assert got["workforce"].completion.values == ["wf_support"]
    assert got["user"].completion.values == ["usr_ada"]
    assert got["sort_by"].completion.values == ["cost_usd", "cost_credits"]
    assert got["run_id"].completion.values[0] == emu.runs[0]["id"]


def test_stdio_resources_prompts_completions_and_new_arguments(
    emu: Emulator, tmp_path: Path
) -> None:
    params = StdioServerParameters(command=TIMBAL_MCP, env=server_env(emu))
    with (tmp_path / "stderr.txt").open("w+") as errlog:
        got = run_stdio(params, errlog, lambda client: exercise_everything(client, emu))
        errlog.seek(0)
        stderr = errlog.read()
    check_everything(got, emu)
    assert API_KEY not in stderr
    assert "Traceback" not in stderr


def test_stdio_reports_missing_configuration(emu: Emulator, tmp_path: Path) -> None:
    env = {k: v for k, v in server_env(emu).items() if k != "TIMBAL_API_KEY"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env)

    async def work(client: Client) -> Any:
        return await client.call_tool("list_runs", {})

    with (tmp_path / "stderr.txt").open("w+") as errlog:
        result = run_stdio(params, errlog, work)
        errlog.seek(0)
        stderr = errlog.read()
    assert "configuration problem" in stderr
    assert "TIMBAL_API_KEY (or pass --api-key)" in stderr  # timbal-mcp's flag, worded by the core
    assert result.is_error
    assert "TIMBAL_API_KEY" in result.content[0].text


def test_flags_override_the_environment(emu: Emulator, tmp_path: Path) -> None:
    env = server_env(emu, TIMBAL_PROJECT_ID="wrong-project", TIMBAL_API_KEY="wrong-key-123")
    params = StdioServerParameters(
        command=TIMBAL_MCP,
        args=["--project-id", emu.project_id, "--api-key", API_KEY],
        env=env,
    )

    async def work(client: Client) -> Any:
        return await client.call_tool("list_runs", {"limit": 3})

    with (tmp_path / "stderr.txt").open("w+") as errlog:
        result = run_stdio(params, errlog, work)
    assert not result.is_error, result.content[0].text
    assert result.structured_content["returned"] == 3


def test_importing_the_server_does_not_import_airflow_pyarrow_dagster_or_prefect() -> None:
    code = (
        "import sys, mcp_server, mcp_server.__main__, mcp_server.transport\n"
        "HEAVY = ('airflow', 'pyarrow', 'dagster', 'prefect')\n"
        "mcp_server.create_server(env={})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_start_up_imports_neither_httpx_nor_rich(emu: Emulator, tmp_path: Path) -> None:
    """httpx loads with the first tool call; rich (which the SDK would import to build a
    log handler that our logging set-up makes useless) not at all. Stdin is empty, so the
    server starts, reads end of input, and stops."""
    report = tmp_path / "modules.json"
    code = (
        "import json, sys\n"
        "from mcp_server.__main__ import main\n"
        "status = main([])\n"
        "loaded = sorted(m for m in ('httpx', 'rich', 'mcp_server.server') if m in sys.modules)\n"
        f"open({str(report)!r}, 'w').write(json.dumps([status, loaded]))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=server_env(emu),
        timeout=120,
        check=True,
    )
    assert json.loads(report.read_text()) == [0, ["mcp_server.server"]]


def test_help_and_version() -> None:
    out = subprocess.run(
        [TIMBAL_MCP, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    for flag in ("--transport", "--host", "--port", "--auth-token", "--api-key", "--org-id"):
        assert flag in out.stdout
    version = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("timbal-mcp ")


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--transport", "http", "--host", "0.0.0.0"], {}, "not a loopback address"),
        (["--transport", "http", "--host", "10.1.2.3"], {}, "--auth-token"),
        (["--transport", "http", "--auth-token", "short"], {}, "too short"),
        (["--transport", "http", "--port", "70000"], {}, "--port"),
        (["--transport", "carrier-pigeon"], {}, "invalid choice"),
    ],
)
def test_unsafe_or_bad_usage_exits_2(args: list[str], env: dict[str, str], needle: str) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "TIMBAL_MCP_TOKEN"}
    out = subprocess.run(
        [TIMBAL_MCP, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **env},
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


# --- streamable HTTP -------------------------------------------------------------------------


class HttpServer:
    """A ``timbal-mcp --transport http`` subprocess (see ``tests.mcp.helpers_http``)."""

    def __init__(self, served: McpHttp) -> None:
        self.served = served
        self.url = served.url
        self.port = served.port

    def request(self, headers: dict[str, str], *, host: str | None = None) -> tuple[int, str]:
        """POST an MCP initialize request; the status and body."""
        status, body, _ = initialize(self.url, headers, host=host)
        return status, body


@pytest.fixture(scope="module")
def http_server(emu: Emulator) -> Iterator[HttpServer]:
    """One HTTP server for the module's tests (they only read)."""
    env = {**os.environ, **server_env(emu, TIMBAL_MCP_TOKEN=TOKEN)}
    with serving(["--host", "127.0.0.1"], env, timeout=START_TIMEOUT) as served:
        yield HttpServer(served)
    log = "".join(served.log)
    assert API_KEY not in log
    assert TOKEN not in log
    assert "Traceback" not in log


def test_http_requires_the_bearer_token(http_server: HttpServer) -> None:
    assert http_server.url.endswith("/mcp")
    assert http_server.url.startswith("http://127.0.0.1:")
    status, body = http_server.request({})
    assert status == 401
    assert "bearer token" in body
    status, _ = http_server.request({"Authorization": "Bearer not-the-token-at-all"})
    assert status == 401
    status, _ = http_server.request({"Authorization": TOKEN})  # no scheme
    assert status == 401
    status, body = http_server.request({"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    assert '"timbal"' in body


def test_http_refuses_a_foreign_host_header(http_server: HttpServer) -> None:
    status, _ = http_server.request(
        {"Authorization": f"Bearer {TOKEN}"}, host="attacker.example:80"
    )
    assert status == 421
    status, _ = http_server.request(
        {"Authorization": f"Bearer {TOKEN}", "Origin": "http://attacker.example"}
    )
    assert status == 403
    status, _ = http_server.request(
        {"Authorization": f"Bearer {TOKEN}"}, host=f"localhost:{http_server.port}"
    )
    assert status == 200


def test_http_sdk_client_with_the_token(http_server: HttpServer, emu: Emulator) -> None:
    async def go() -> tuple[list[str], Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            transport = streamable_http_client(http_server.url, http_client=http)
            async with Client(transport) as client:
                listing = await client.list_tools()
                result = await client.call_tool("list_runs", {"limit": 5})
                return sorted(t.name for t in listing.tools), result

    names, result = asyncio.run(go())
    assert names == ["get_run", "list_runs", "summarize_runs"]
    assert not result.is_error
    assert [r["id"] for r in result.structured_content["runs"]] == ids(expected_runs(emu))[:5]


def test_http_resources_prompts_completions_and_new_arguments(
    http_server: HttpServer, emu: Emulator
) -> None:
    async def go() -> dict[str, Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            transport = streamable_http_client(http_server.url, http_client=http)
            async with Client(transport) as client:
                return await exercise_everything(client, emu)

    check_everything(asyncio.run(go()), emu)
