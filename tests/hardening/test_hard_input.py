"""Hostile and mistaken input, across the library, the CLI's flags and the MCP tools'
arguments (the operator's arguments: tests/airflow/test_hard_airflow_input.py).

Every row gets a clear one-line message that names the field, and none produces a
traceback, a hang, or a single request to the API (the emulator counts requests).
Injection-looking values that are *valid* are shown to travel as inert data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mcp import Client

from mcp_server import ServerSettings, create_server
from tests.hardening.helpers_hard import ORG, PROJECT, SECRET_KEY, BrokenServer, json_response
from tests.support.processes import run_cli
from timbal_integrations import (
    NotFoundError,
    RetryPolicy,
    RunQuery,
    TimbalClient,
    TimbalError,
    cli,
)
from timbal_integrations.emulator import FIXED_END, Emulator, run_emulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def emu() -> Any:
    with run_emulator(runs=300, seed=8, api_key=SECRET_KEY) as emulator:
        yield emulator


def client_of(emu: Emulator, **overrides: Any) -> TimbalClient:
    arguments: dict[str, Any] = {
        "api_key": emu.api_key,
        "host": emu.base_url,
        "org_id": emu.org_id,
        "project_id": emu.project_id,
        "env": {},
    }
    arguments.update(overrides)
    return TimbalClient(**arguments)


def listing(**kwargs: Any) -> Callable[[Emulator], Any]:
    """``list(client.list_runs(**kwargs))``: validation must fail before any request."""
    return lambda emu: list(client_of(emu).list_runs(**kwargs))


def getting(run_id: object) -> Callable[[Emulator], Any]:
    return lambda emu: client_of(emu).get_run(run_id)  # type: ignore[arg-type]


def paging(**kwargs: Any) -> Callable[[Emulator], Any]:
    return lambda emu: client_of(emu).get_runs_page(**kwargs)


def building(**overrides: Any) -> Callable[[Emulator], Any]:
    return lambda emu: client_of(emu, **overrides).get_runs_page()


LIBRARY: list[tuple[str, Callable[[Emulator], Any], str]] = [
    ("since-words", listing(since="yesterday"), "since"),
    ("since-after-until", listing(since="2026-01-02", until="2026-01-01"), "since"),
    ("since-equals-until", listing(since="2026-01-01", until="2026-01-01"), "since"),
    ("until-absurd-ms", listing(until=10**20), "until"),
    ("until-year-10000", listing(until="10000-01-01"), "until"),
    ("since-negative", listing(since=-1), "since"),
    ("since-bool", listing(since=True), "since"),
    ("since-nan", listing(since=float("nan")), "since"),
    ("since-year-1", listing(since="0001-01-01"), "since"),
    ("since-epoch-seconds", listing(since=1_700_000_000), "since"),
    ("since-span-overflow", listing(since="999999999w"), "since"),
    ("since-list", listing(since=["2026-01-01"]), "since"),
    ("status-empty", listing(status=""), "status"),
    ("status-huge", listing(status="x" * 100_000), "status"),
    ("status-header-injection", listing(status="error\r\nX-Injected: 1"), "status"),
    ("status-nul", listing(status="error\x00"), "status"),
    ("user-id-int", listing(user_id=123), "user_id"),
    ("metadata-broken-json", listing(metadata='{"env": '), "metadata"),
    ("metadata-array", listing(metadata="[1, 2]"), "metadata"),
    ("metadata-unserializable", listing(metadata={"k": object()}), "metadata"),
    ("roots-maybe", listing(roots="maybe"), "roots"),
    ("sort-by-injection", listing(sort_by="cost_usd; DROP TABLE runs"), "sort_by"),
    ("sort-order-sideways", listing(sort_order="sideways"), "sort_order"),
    ("limit-negative", listing(limit=-1), "limit"),
    ("limit-string", listing(limit="10"), "limit"),
    ("parallel-zero", listing(parallel=0), "parallel"),
    ("parallel-huge", listing(parallel=10**6), "parallel"),
    ("parallel-with-cost-sort", listing(parallel=4, sort_by="cost_usd"), "parallel"),
    ("unknown-filter", listing(colour="red"), "colour"),
    ("query-not-a-query", listing(query="status=error"), "query"),
    ("run-id-empty", getting(""), "run_id"),
    ("run-id-dot-dot", getting(".."), "run_id"),
    ("run-id-dot", getting("."), "run_id"),
    ("run-id-nul", getting("run\x00id"), "run_id"),
    ("run-id-int", getting(42), "run_id"),
    ("run-id-huge", getting("r" * 10_000), "run_id"),
    ("page-token-int", paging(page_token=123), "page_token"),
    ("page-token-empty", paging(page_token=""), "page_token"),
    ("page-token-huge", paging(page_token="t" * 100_000), "page_token"),
    ("org-id-traversal", building(org_id="../admin"), "TIMBAL_ORG_ID"),
    ("org-id-dot-dot", building(org_id=".."), "TIMBAL_ORG_ID"),
    ("project-id-escape", building(project_id="p%2F..%2Fx"), "TIMBAL_PROJECT_ID"),
    ("org-id-int", building(org_id=5), "org_id"),
    ("host-ftp", building(host="ftp://files.example.test"), "TIMBAL_API_HOST"),
    ("host-bad-port", building(host="http://127.0.0.1:99999"), "TIMBAL_API_HOST"),
    ("host-with-query", building(host="http://127.0.0.1:1/?x=1"), "TIMBAL_API_HOST"),
    ("key-with-newline", building(api_key="tk_live\r\nX-Injected: 1"), "TIMBAL_API_KEY"),
    ("key-non-ascii", building(api_key="tk_lïve_1234567890"), "TIMBAL_API_KEY"),
    ("key-int", building(api_key=12345678), "api_key"),
    ("timeout-negative", building(timeout=-1), "timeout"),
    ("timeout-zero", building(timeout=0), "timeout"),
    ("timeout-string", building(timeout="fast"), "timeout"),
    ("max-retries-string", building(max_retries="3"), "max_retries"),
    ("max-retries-negative", building(max_retries=-1), "max_retries"),
    ("max-retries-float", building(max_retries=1.5), "max_retries"),
    ("retry-policy-string", building(retry_policy="aggressive"), "retry_policy"),
    ("host-without-name", building(host="http://"), "TIMBAL_API_HOST"),
]


def assert_one_clear_line(message: str, field: str) -> None:
    assert field.lower() in message.lower(), message
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert len(message) < 400, message
    assert "Traceback" not in message
    assert SECRET_KEY not in message


@pytest.mark.parametrize(
    ("action", "field"), [pytest.param(*row[1:], id=row[0]) for row in LIBRARY]
)
def test_library_rejects_bad_input_before_any_request(
    emu: Emulator, action: Callable[[Emulator], Any], field: str
) -> None:
    before = emu.stats.requests_total
    started = time.monotonic()
    with pytest.raises((TimbalError, ValueError)) as info:
        action(emu)
    assert time.monotonic() - started < 5
    assert emu.stats.requests_total == before, "a request reached the API"
    error = info.value
    if hasattr(error, "field"):
        assert error.field == field
    assert_one_clear_line(str(error), field)
    assert SECRET_KEY not in repr(error)


def test_retry_policy_rejects_absurd_values() -> None:
    for kwargs, field in [
        ({"backoff_base": float("nan")}, "backoff_base"),
        ({"backoff_max": -1}, "backoff_max"),
        ({"retry_after_max": float("inf")}, "retry_after_max"),
        ({"max_retries": True}, "max_retries"),
    ]:
        with pytest.raises(ValueError, match=field):
            RetryPolicy(**kwargs)


def test_injection_looking_values_that_are_valid_travel_as_inert_data(emu: Emulator) -> None:
    """A valid but hostile-looking filter is one query parameter, matched literally."""
    with client_of(emu) as client:
        assert list(client.list_runs(status="error' OR '1'='1")) == []
        assert list(client.list_runs(user_id="../../admin", metadata={"$where": "1"})) == []
    assert emu.stats.requests_by_endpoint == {"list": 2}


def test_a_run_id_full_of_path_tricks_stays_one_path_segment() -> None:
    tricks = ["../../etc/passwd", "?page_token=x", "#frag", "%2e%2e", "a/../..", "run id"]
    answer = json_response(404, {"message": "no such run"})
    with BrokenServer(lambda request, number: answer).running() as server:
        with server.client(max_retries=0) as client:
            for run_id in tricks:
                with pytest.raises(NotFoundError):
                    client.get_run(run_id)
        paths = [request.path for request in server.requests]
    runs = f"/orgs/{ORG}/projects/{PROJECT}/runs/"
    assert paths == [runs + quote(run_id, safe="") for run_id in tricks]
    assert all("/" not in path.removeprefix(runs) for path in paths)
    assert all(not request.params for request in server.requests)


def test_a_valid_query_survives_a_round_trip_of_its_own_parameters() -> None:
    query = RunQuery(
        status="a&b=c", user_id="x y", metadata={"k": "v&w"}, since="1d", now=FIXED_END
    )
    assert RunQuery.from_filters(query.as_dict()) == query


# --- MCP arguments ----------------------------------------------------------------------------

MCP: list[tuple[str, str, dict[str, Any], str]] = [
    ("limit-huge", "list_runs", {"limit": 10**30}, "limit"),
    ("limit-zero", "list_runs", {"limit": 0}, "limit"),
    ("limit-words", "list_runs", {"limit": "many"}, "limit"),
    ("limit-bool", "list_runs", {"limit": True}, "limit"),
    ("limit-fraction", "list_runs", {"limit": 2.5}, "limit"),
    ("unknown-argument", "list_runs", {"colour": "red"}, "colour"),
    ("metadata-list", "list_runs", {"metadata": ["env", "prod"]}, "metadata"),
    ("metadata-bad-json", "list_runs", {"metadata": '{"env": '}, "metadata"),
    ("metadata-empty", "list_runs", {"metadata": {}}, "metadata"),
    ("fields-unknown", "list_runs", {"fields": ["id", "secret"]}, "fields"),
    ("workforce-blank", "list_runs", {"workforce": "   "}, "workforce"),
    ("bucket-minute", "summarize_runs", {"bucket": "minute"}, "bucket"),
    (
        "bucket-too-many",
        "summarize_runs",
        {"bucket": "hour", "since": "2025-01-01", "until": "2025-12-01"},
        "bucket",
    ),
    ("detail-everything", "get_run", {"run_id": "x", "detail": "everything"}, "detail"),
    ("status-list", "list_runs", {"status": ["error"]}, "status"),
    ("status-operator-object", "list_runs", {"status": {"$ne": None}}, "status"),
    ("status-nul", "list_runs", {"status": "error\x00"}, "status"),
    ("status-huge", "list_runs", {"status": "x" * 100_000}, "status"),
    ("since-words", "list_runs", {"since": "yesterday"}, "since"),
    ("since-after-until", "list_runs", {"since": "2026-01-02", "until": "2026-01-01"}, "since"),
    ("since-absurd", "list_runs", {"since": 10**30}, "since"),
    ("since-year-1", "list_runs", {"since": "0001-01-01"}, "since"),
    ("since-bool", "list_runs", {"since": False}, "since"),
    ("until-bad-date", "list_runs", {"until": "2026-13-45"}, "until"),
    ("email-not-an-email", "list_runs", {"user_email": "robert'); DROP TABLE"}, "user_email"),
    ("email-header-injection", "list_runs", {"user_email": "a@b.c\r\nBcc: x"}, "user_email"),
    ("cursor-garbage", "list_runs", {"cursor": "garbage"}, "cursor"),
    ("cursor-huge", "list_runs", {"cursor": "A" * 200_000}, "cursor"),
    ("sort-by-injection", "list_runs", {"sort_by": "id; DROP TABLE runs"}, "sort_by"),
    ("roots-maybe", "list_runs", {"roots": "maybe"}, "roots"),
    ("run-id-missing", "get_run", {}, "run_id"),
    ("run-id-dot-dot", "get_run", {"run_id": ".."}, "run_id"),
    ("run-id-blank", "get_run", {"run_id": "  "}, "run_id"),
    ("run-id-int", "get_run", {"run_id": 5}, "run_id"),
    ("run-id-huge", "get_run", {"run_id": "r" * 10_000}, "run_id"),
    ("run-id-extra-argument", "get_run", {"run_id": "x", "verbose": True}, "verbose"),
    ("max-runs-huge", "summarize_runs", {"max_runs": 10**9}, "max_runs"),
    ("max-runs-negative", "summarize_runs", {"max_runs": -1}, "max_runs"),
    ("summary-since-after-until", "summarize_runs", {"since": "7d", "until": "8d"}, "since"),
]


@pytest.mark.parametrize(
    ("tool", "arguments", "field"), [pytest.param(*row[1:], id=row[0]) for row in MCP]
)
def test_mcp_rejects_bad_arguments_before_any_request(
    emu: Emulator, tool: str, arguments: dict[str, Any], field: str
) -> None:
    server = create_server(ServerSettings(env=emu.env(), now=lambda: FIXED_END))
    before = emu.stats.requests_total

    async def go() -> Any:
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    started = time.monotonic()
    result = asyncio.run(go())
    assert time.monotonic() - started < 5
    assert emu.stats.requests_total == before, "a request reached the API"
    assert result.is_error
    assert result.structured_content is None
    message = result.content[0].text  # type: ignore[union-attr]
    assert f"`{field}`" in message
    assert_one_clear_line(message, field)


# --- CLI flags --------------------------------------------------------------------------------

CLI: list[tuple[str, list[str], str]] = [
    ("since-words", ["list", "--since", "yesterday"], "--since"),
    ("since-after-until", ["list", "--since", "2026-01-02", "--until", "2026-01-01"], "--since"),
    ("until-absurd", ["list", "--until", "99999999999999999999"], "--until"),
    ("since-epoch-seconds", ["summary", "--since", "1700000000"], "--since"),
    ("since-empty", ["list", "--since", ""], "--since"),
    ("limit-negative", ["list", "--limit", "-5"], "--limit"),
    ("limit-words", ["list", "--limit", "lots"], "--limit"),
    ("parallel-zero", ["list", "--parallel", "0"], "--parallel"),
    ("parallel-cost-sort", ["list", "--parallel", "4", "--sort-by", "cost_usd"], "--parallel"),
    ("metadata-broken", ["list", "--metadata", '{"env": '], "--metadata"),
    ("metadata-array", ["summary", "--metadata", "[1, 2]"], "--metadata"),
    ("roots-maybe", ["list", "--roots", "maybe"], "--roots"),
    ("sort-by-injection", ["list", "--sort-by", "id;rm -rf /"], "--sort-by"),
    ("sort-order", ["list", "--sort-order", "up"], "--sort-order"),
    ("status-header-injection", ["list", "--status", "error\r\nX-Injected: 1"], "--status"),
    ("user-id-huge", ["list", "--user-id", "u" * 5000], "--user-id"),
    ("unknown-flag", ["list", "--colour", "red"], "--colour"),
    ("export-without-out", ["export"], "--out"),
    ("export-unknown-extension", ["export", "--out", "runs.xml"], "--format"),
    ("export-bad-format", ["export", "--out", "runs.jsonl", "--format", "xml"], "--format"),
    ("list-bad-format", ["list", "--format", "yaml"], "--format"),
    ("timeout-negative", ["list", "--timeout", "-1"], "--timeout"),
    ("timeout-nan", ["list", "--timeout", "nan"], "--timeout"),
    ("max-retries-absurd", ["list", "--max-retries", "1000000"], "--max-retries"),
    ("host-ftp", ["list", "--host", "ftp://files.example.test"], "--host"),
    ("org-id-traversal", ["list", "--org-id", "../admin"], "--org-id"),
    ("api-key-newline", ["list", "--api-key", "tk_live\nX-Injected: 1"], "--api-key"),
]


@pytest.mark.parametrize(("argv", "flag"), [pytest.param(*row[1:], id=row[0]) for row in CLI])
def test_cli_rejects_bad_flags_before_any_request(
    emu: Emulator,
    argv: list[str],
    flag: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    before = emu.stats.requests_total
    started = time.monotonic()
    code = cli.main(argv)
    assert time.monotonic() - started < 5
    out, err = capsys.readouterr()
    assert emu.stats.requests_total == before, "a request reached the API"
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("timbal-runs: error: ")
    assert_one_clear_line(lines[0], flag)
    assert list(tmp_path.iterdir()) == []  # no file, not even a partial one


def test_cli_bad_input_as_a_real_process(emu: Emulator, tmp_path: Path) -> None:
    """The same through the console script: exit 2, one line, no traceback, no request."""
    before = emu.stats.requests_total
    for argv, flag in [
        (["export", "--out", str(tmp_path / "r.jsonl"), "--since", "next tuesday"], "--since"),
        (["list", "--org-id", ".."], "--org-id"),
        (["summary", "--limit", "3"], "--limit"),
    ]:
        result = run_cli(argv, emu.env())
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert_one_clear_line(lines[0], flag)
    assert emu.stats.requests_total == before
    assert list(tmp_path.iterdir()) == []
