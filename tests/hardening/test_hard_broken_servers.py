"""Broken servers: every way a server can misbehave ends in a clear error of the right
class, after the right number of attempts, with no partial result.

Each server is real (a raw asyncio server on 127.0.0.1, see ``helpers_hard``); both
clients face each one. Transient failures (5xx, 429, dropped or malformed responses,
timeouts) are retried ``RETRIES`` times; anything a retry cannot fix (a 2xx body that
breaks the schema, a 4xx, a pagination loop) fails at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server import ServerSettings, create_server
from tests.hardening.helpers_hard import (
    SECRET_KEY,
    BrokenServer,
    Request,
    http_response,
    json_response,
    page_body,
)
from tests.support.processes import run_cli
from tests.support.runs import make_run
from timbal_integrations import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PaginationLoopError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    TimbalError,
)
from timbal_integrations.defaults import AUTO_PARALLEL_INITIAL

pytestmark = pytest.mark.timeout(60)

RETRIES = 2
TIMEOUT = 0.2  # seconds: the slow server never answers within it

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def always(answer: bytes | None) -> Callable[[Request, int], bytes | None]:
    return lambda request, number: answer


def token_loop(request: Request, number: int) -> bytes:
    """A -> B -> A: the third page hands back a token the client already followed."""
    following = {None: "A", "A": "B", "B": "A"}[request.params.get("page_token")]
    return page_body([make_run(id=f"run_{number}")], following)


def stuck_token(request: Request, number: int) -> bytes:
    return page_body([make_run(id=f"run_{number}")], "same-token-every-time")


def echo_key(request: Request, number: int) -> bytes:
    return json_response(401, {"message": f"bad key: {request.headers.get('authorization')}"})


# (id, responder, error class, requests expected, fragments of the message)
CASES: list[tuple[str, Callable[[Request, int], bytes | None], type[TimbalError], int, list[str]]]
CASES = [
    (
        "invalid-json",
        always(http_response(200, b'{"runs": [{"id": ')),
        ResponseValidationError,
        1,
        ["answered 200 with 17 bytes of application/json, not JSON"],
    ),
    (
        "html-502-page",
        always(http_response(502, NGINX_502, content_type="text/html")),
        ServerError,
        RETRIES + 1,
        ["502 Bad Gateway from GET /orgs/org_hard/projects/proj_hard/runs", "after retrying"],
    ),
    (
        "html-200-page",
        always(
            http_response(
                200, b"<html><body>Sign in to Wi-Fi</body></html>", content_type="text/html"
            )
        ),
        ResponseValidationError,
        1,
        ["text/html, not JSON"],
    ),
    (
        "empty-body",
        always(http_response(200, b"")),
        ResponseValidationError,
        1,
        ["answered 200 with an empty body, not JSON"],
    ),
    (
        "missing-runs",
        always(json_response(200, {"next_page_token": None})),
        ResponseValidationError,
        1,
        ["does not match the API schema: runs: Field required"],
    ),
    (
        "run-missing-fields",
        always(json_response(200, {"runs": [{"id": "run_1"}], "next_page_token": None})),
        ResponseValidationError,
        1,
        ["does not match the API schema: runs.0.idempotency_key: Field required"],
    ),
    (
        "wrong-types",
        always(page_body([make_run(created_at="yesterday", cost_usd="cheap")], None)),
        ResponseValidationError,
        1,
        ["runs.0.created_at: Input should be a valid datetime", "2 problem(s)"],
    ),
    (
        "token-not-a-string",
        always(json_response(200, {"runs": [], "next_page_token": 7})),
        ResponseValidationError,
        1,
        ["next_page_token: Input should be a valid string"],
    ),
    (
        "body-is-a-list",
        always(json_response(200, [make_run()])),
        ResponseValidationError,
        1,
        ["body: Input should be an object"],
    ),
    (
        "page-token-loop",
        token_loop,
        PaginationLoopError,
        3,
        ["returned a page token it had already returned"],
    ),
    (
        "stuck-page-token",
        stuck_token,
        PaginationLoopError,
        2,
        ["returned a page token it had already returned"],
    ),
    (
        "slow-server",
        always(None),
        APITimeoutError,
        RETRIES + 1,
        [f"timed out after {RETRIES + 1} attempts", f"the timeout is {TIMEOUT}s"],
    ),
    (
        "garbage-status-line",
        always(b"HTTP/1.1 banana\r\n\r\n"),
        APIConnectionError,
        RETRIES + 1,
        [f"could not complete after {RETRIES + 1} attempts"],
    ),
    (
        "closed-without-answer",
        always(b""),
        APIConnectionError,
        RETRIES + 1,
        [f"could not complete after {RETRIES + 1} attempts"],
    ),
    (
        "truncated-body",
        always(http_response(200, b'{"runs": [', content_length=5000)),
        APIConnectionError,
        RETRIES + 1,
        [f"could not complete after {RETRIES + 1} attempts"],
    ),
    (
        "500-json",
        always(json_response(500, {"message": "database on fire"})),
        ServerError,
        RETRIES + 1,
        ["500 Internal Server Error", "database on fire", "after retrying"],
    ),
    (
        "503-retry-after",
        always(json_response(503, {"detail": "maintenance"}, headers={"Retry-After": "1"})),
        ServerError,
        RETRIES + 1,
        ["503 Service Unavailable", "maintenance"],
    ),
    (
        "429-forever",
        always(json_response(429, {"message": "slow down"}, headers={"Retry-After": "7"})),
        RateLimitError,
        RETRIES + 1,
        ["429 Too Many Requests", "slow down", "even after retrying"],
    ),
    (
        "redirect",
        always(http_response(301, headers={"Location": "https://api.example.test/v2"})),
        APIStatusError,
        1,
        ["301 Moved Permanently", "redirected to https://api.example.test/v2"],
    ),
    (
        "400",
        always(json_response(400, {"message": "invalid 'from'"})),
        BadRequestError,
        1,
        ["400 Bad Request", "invalid 'from'"],
    ),
    (
        "401-echoing-the-key",
        echo_key,
        AuthenticationError,
        1,
        ["401 Unauthorized", "bad key: Bearer ***", "check TIMBAL_API_KEY"],
    ),
    (
        "403",
        always(json_response(403, {"message": "no access"})),
        PermissionDeniedError,
        1,
        ["403 Forbidden", "TIMBAL_ORG_ID"],
    ),
    (
        "404",
        always(http_response(404, b"Not Found", content_type="text/plain")),
        NotFoundError,
        1,
        ["404 Not Found"],
    ),
]


def list_all(kind: str, server: BrokenServer) -> list[Any]:
    options: dict[str, Any] = {"max_retries": RETRIES, "timeout": TIMEOUT}
    if kind == "sync":
        with server.client(**options) as client:
            return list(client.list_runs())

    async def go() -> list[Any]:
        async with server.async_client(**options) as client:
            return [run async for run in client.list_runs()]

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    ("responder", "error", "requests", "fragments"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_broken_server_ends_in_one_clear_error(
    kind: str,
    responder: Callable[[Request, int], bytes | None],
    error: type[TimbalError],
    requests: int,
    fragments: list[str],
) -> None:
    started = time.monotonic()
    with BrokenServer(responder).running() as server, pytest.raises(TimbalError) as info:
        list_all(kind, server)
    elapsed = time.monotonic() - started
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert server.count == requests
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message
    assert len(message) < 400
    assert "<" not in message  # no HTML
    assert SECRET_KEY not in message
    assert SECRET_KEY not in repr(info.value)
    assert elapsed < 10  # retries of the test mode do not wait; timeouts are 0.2 s each


def test_the_slow_server_costs_one_timeout_per_attempt() -> None:
    started = time.monotonic()
    with BrokenServer(always(None)).running() as server, pytest.raises(APITimeoutError):
        list_all("sync", server)
    elapsed = time.monotonic() - started
    assert server.count == RETRIES + 1
    assert (RETRIES + 1) * TIMEOUT <= elapsed < (RETRIES + 1) * TIMEOUT + 5


def test_429_keeps_the_servers_retry_after() -> None:
    answer = json_response(429, {"message": "slow down"}, headers={"Retry-After": "7"})
    with BrokenServer(always(answer)).running() as server, pytest.raises(RateLimitError) as info:
        list_all("sync", server)
    assert info.value.retry_after == 7
    assert info.value.status_code == 429


def test_a_transient_fault_then_success_is_invisible() -> None:
    """Every retryable fault once, then the right page: the listing is complete."""
    faults = [
        http_response(502, NGINX_502, content_type="text/html"),
        json_response(503, {"message": "busy"}),
        json_response(429, {"message": "slow"}, headers={"Retry-After": "0"}),
        b"",
        http_response(200, b'{"runs": [', content_length=999),
    ]

    def responder(request: Request, number: int) -> bytes:
        if number < len(faults):
            return faults[number]
        token = request.params.get("page_token")
        if token is None:
            return page_body([make_run(id="run_a")], "p2")
        return page_body([make_run(id="run_b")], None)

    with BrokenServer(responder).running() as server:
        with server.client(max_retries=len(faults)) as client:
            got = [run.id for run in client.list_runs()]
        assert got == ["run_a", "run_b"]
        assert server.count == len(faults) + 2


# --- no partial output: the MCP tools fail whole ---------------------------------------------


def broken_second_page(request: Request, number: int) -> bytes:
    if request.params.get("page_token") is None:
        return page_body([make_run(id=f"run_{i}") for i in range(5)], "page-2")
    return http_response(502, NGINX_502, content_type="text/html")


def invalid_second_page(request: Request, number: int) -> bytes:
    if request.params.get("page_token") is None:
        return page_body([make_run(id=f"run_{i}") for i in range(5)], "page-2")
    return http_response(200, b"{not json")


@pytest.mark.parametrize(
    ("responder", "requests", "needle"),
    [
        (broken_second_page, 1 + RETRIES + 1, "the Timbal API failed even after retrying"),
        (invalid_second_page, 2, "the Timbal API sent an unexpected response"),
    ],
    ids=["502-on-page-2", "invalid-json-on-page-2"],
)
@pytest.mark.parametrize("tool", ["list_runs", "summarize_runs"])
def test_mcp_tools_fail_whole_on_a_broken_second_page(
    tool: str, responder: Callable[[Request, int], bytes], requests: int, needle: str
) -> None:
    with BrokenServer(responder).running() as server:
        mcp = create_server(
            ServerSettings(env=server.env(), retry_policy=RetryPolicy(max_retries=RETRIES))
        )
        arguments = {"limit": 8} if tool == "list_runs" else {}

        async def go() -> Any:
            async with Client(mcp) as client:
                return await client.call_tool(tool, arguments)

        result = asyncio.run(go())
        # summarize_runs fetches in parallel: two requests first bound the time range.
        assert server.count == requests + (2 if tool == "summarize_runs" else 0)
    assert result.is_error
    assert result.structured_content is None  # no partial rows or totals
    assert len(result.content) == 1
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"{tool}: ")
    assert needle in text
    assert "run_0" not in text
    assert "Traceback" not in text
    assert SECRET_KEY not in text


# --- the CLI: exit 1, one line, no file ----------------------------------------------------------

CLI_CASES = ["html-502-page", "invalid-json", "page-token-loop", "slow-server", "truncated-body"]


@pytest.mark.parametrize("parallel", ["1", "auto"])
@pytest.mark.parametrize(
    ("responder", "error", "requests"),
    [pytest.param(*case[1:4], id=case[0]) for case in CASES if case[0] in CLI_CASES],
)
def test_cli_export_from_a_broken_server_fails_in_one_line_without_a_file(
    responder: Callable[[Request, int], bytes | None],
    error: type[TimbalError],
    requests: int,
    parallel: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "runs.jsonl"
    options = ["--max-retries", str(RETRIES), "--timeout", str(TIMEOUT), "--parallel", parallel]
    with BrokenServer(responder).running() as server:
        result = run_cli(["export", "--out", str(target), *options], server.env())
        if parallel == "1":
            assert server.count == requests
        else:  # at most the probes for the window's ends and the first pieces more
            assert requests <= server.count <= requests + AUTO_PARALLEL_INITIAL + 1
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("timbal-runs: error: ")
    assert "Traceback" not in result.stderr
    assert not target.exists()
    assert not Path(f"{target}.manifest.json").exists()


def test_cli_list_of_a_listing_that_breaks_midway(tmp_path: Path) -> None:
    """jsonl streams whole lines, then fails; json prints nothing unless complete."""

    def responder(request: Request, number: int) -> bytes:
        if request.params.get("page_token") is None:
            return page_body([make_run(id=f"run_{i:03d}") for i in range(120)], "page-2")
        return http_response(502, NGINX_502, content_type="text/html")

    with BrokenServer(responder).running() as server:
        options = ["--max-retries", str(RETRIES)]
        streamed = run_cli(["list", "--format", "jsonl", *options], server.env())
        whole = run_cli(["list", "--format", "json", *options], server.env())
    for result in (streamed, whole):
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert "502 Bad Gateway" in lines[0]
    assert whole.stdout == ""
    rows = [json.loads(line) for line in streamed.stdout.splitlines()]  # every line parses
    assert [row["id"] for row in rows] == [f"run_{i:03d}" for i in range(len(rows))]
    assert streamed.stdout.endswith("\n")
