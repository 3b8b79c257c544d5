"""Issue 16, cases 1 to 3: what a hostile server can no longer do to a request or a
listing. Every server here is real (``tests.support.hostile``), and bounded in time, so
that code which does not bound itself fails these tests instead of hanging them.

1. A total deadline per request, whatever the server's dripping: the library (both
   clients), ``timbal-runs --timeout`` and the MCP ``list_runs`` all end within it, and
   the error says it was the total deadline.
2. A decoded-size cap per response (identity, gzip, deflate, br): a 200 MB body or a
   gzip bomb fails fast with flat memory (peak RSS measured in a subprocess).
3. Page bounds: a page token too long, empty pages without end, pages without end, a
   loop; and an MCP ``summarize_runs`` cancelled by its client stops at once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import brotli
import pytest
from mcp import Client

from mcp_server import ServerSettings, create_server
from tests.mcp.helpers_mcp import call, error_text
from tests.support.hostile import (
    KEY,
    HostileServer,
    Request,
    body,
    drip,
    drip_headers,
    error,
    gzip_bomb,
    pages,
)
from tests.support.processes import cli_env, one_error_line, run_cli, run_measured
from tests.support.runs import make_run, make_runs
from timbal_integrations import (
    APITimeoutError,
    Bounds,
    ConfigError,
    PaginationLimitError,
    PaginationLoopError,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryPolicy,
    RunQuery,
    TimbalClient,
    defaults,
)
from timbal_integrations.client._guard import PageGuard

pytestmark = pytest.mark.timeout(120)

NO_RETRY = RetryPolicy(max_retries=0)
SLACK = 8.0  # seconds a bounded call may overrun its bound on a loaded machine


def _first_page(server: HostileServer, **kwargs: Any) -> Any:
    """One page from ``server`` through a fresh sync client."""
    with server.client(**kwargs) as client:
        return client.get_runs_page()


def _timed(work: Callable[[], Any]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        work()
    except BaseException as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


# --------------------------------------------------------------------------- 1. deadline


@pytest.mark.parametrize("dripping", [drip, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_cannot_outlast_the_total_deadline_sync(
    dripping: Callable[..., Any],
) -> None:
    # One byte every 50 ms never lets a per-read timeout of 1 s fire: only a total can.
    with HostileServer(dripping(0.05)).running() as server:
        client = server.client(timeout=1.0, retry_policy=NO_RETRY)
        with client:
            failure, elapsed = _timed(lambda: client.get_runs_page())
    assert isinstance(failure, APITimeoutError), repr(failure)
    assert failure.deadline is True
    assert failure.seconds == 1.0
    assert elapsed < 1.0 + SLACK
    assert "the timeout is 1s per request in all, its total deadline" in str(failure)


def test_a_dripping_server_cannot_outlast_the_total_deadline_async() -> None:
    async def go(server: HostileServer) -> None:
        async with server.async_client(timeout=1.0, retry_policy=NO_RETRY) as client:
            await client.get_runs_page()

    with HostileServer(drip(0.05)).running() as server:
        failure, elapsed = _timed(lambda: asyncio.run(go(server)))
    assert isinstance(failure, APITimeoutError), repr(failure)
    assert failure.deadline is True
    assert elapsed < 1.0 + SLACK


def test_every_retry_gets_its_own_deadline_and_the_last_one_is_named() -> None:
    with HostileServer(drip(0.05)).running() as server:
        with server.client(timeout=0.5, max_retries=2) as client:
            failure, elapsed = _timed(lambda: client.get_runs_page())
        assert server.count == 3
    assert isinstance(failure, APITimeoutError)
    assert "after 3 attempts" in str(failure)
    assert elapsed < 1.5 + SLACK


def test_a_slow_phase_alone_is_not_called_the_total_deadline() -> None:
    # A server that sends nothing: with a read timeout far below the total, the read
    # phase runs out first, and the error says which timeout that was.
    import httpx

    async def silent(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    with HostileServer(silent).running() as server:
        timeout = httpx.Timeout(10.0, read=0.3)
        with server.client(timeout=timeout, retry_policy=NO_RETRY) as client:
            failure, _ = _timed(lambda: client.get_runs_page())
    assert isinstance(failure, APITimeoutError)
    assert failure.deadline is False
    assert failure.seconds == 0.3
    assert "ReadTimeout; the timeout is 0.3s" in str(failure)


def test_timbal_runs_timeout_is_the_total_deadline() -> None:
    with HostileServer(drip(0.05)).running() as server:
        started = time.monotonic()
        args = ["list", "--format", "jsonl", "--timeout", "1", "--max-retries", "0"]
        result = run_cli(args, server, timeout=60)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "the timeout is 1s per request in all, its total deadline" in line
    assert elapsed < 1.0 + SLACK + 5  # plus the process's start-up


def test_mcp_list_runs_is_bounded_by_the_same_deadline() -> None:
    with HostileServer(drip(0.05)).running() as server:
        settings = ServerSettings(env=server.env(), timeout=1.0, retry_policy=NO_RETRY)
        started = time.monotonic()
        result = call(create_server(settings), "list_runs", {})
        elapsed = time.monotonic() - started
    message = error_text(result)
    assert "could not reach the Timbal API" in message
    assert "total deadline" in message
    assert elapsed < 1.0 + SLACK


@pytest.mark.parametrize("timeout", [0, -1, 1e308, float("inf"), float("nan"), True, "30"])
def test_a_timeout_out_of_bounds_is_one_config_error(timeout: Any) -> None:
    with pytest.raises(ConfigError) as info:
        TimbalClient(KEY, host="http://127.0.0.1:9", org_id="o", project_id="p", timeout=timeout)
    assert info.value.argument == "timeout"
    assert "at most 3600" in str(info.value)


# --------------------------------------------------------------------------- 2. size cap


def _zeros(total: int, piece: int = 1 << 20) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            size = min(piece, total - sent)
            yield bytes(size)
            sent += size

    return chunks


_ONE_PAGE = """
import sys
from timbal_integrations import ResponseTooLargeError, TimbalClient

client = TimbalClient(sys.argv[1], host=sys.argv[2], org_id="o", project_id="p", env={},
                      max_retries=0)
try:
    client.get_runs_page()
except ResponseTooLargeError as exc:
    print(type(exc).__name__, exc.limit, exc)
"""


def _peak_rss_against(server: HostileServer) -> tuple[str, int]:
    """One request in a fresh interpreter; its output and its peak RSS in MB."""
    command = [sys.executable, "-c", _ONE_PAGE, KEY, server.base_url]
    result, peak_mb = run_measured(command, env=cli_env(), timeout=90)
    assert result.returncode == 0, result.stderr
    return result.stdout, peak_mb


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(body(_zeros(200 * 1024 * 1024)), id="200MB-chunked"),
        pytest.param(
            body(lambda: iter((gzip_bomb(),)), headers={"Content-Encoding": "gzip"}),
            id="1MB-gzip-of-1GiB",
        ),
    ],
)
def test_a_huge_or_bombed_body_fails_fast_with_flat_memory(answer: Any) -> None:
    # Before: 448 MB peak for the 200 MB body, 2.16 GB for the bomb. Now reading stops at
    # the 64 MiB cap: the peak is the interpreter, the cap and a decoding step.
    with HostileServer(answer).running() as server:
        output, peak_mb = _peak_rss_against(server)
    assert f"ResponseTooLargeError {defaults.MAX_RESPONSE_BYTES}" in output
    assert "over the 64 MiB cap" in output
    assert 0 < peak_mb < 64 + 120, f"peak RSS {peak_mb} MB"


def test_a_content_length_over_the_cap_fails_before_reading() -> None:
    announced = 300 * 1024 * 1024

    answer = body(_zeros(1024), length=announced)
    with HostileServer(answer).running() as server, pytest.raises(ResponseTooLargeError) as info:
        _first_page(server, max_retries=0)
    assert "announced 314,572,800 bytes" in str(info.value)


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", _deflate),
        ("deflate", _raw_deflate),
        ("br", lambda data: brotli.compress(data, quality=1)),
    ],
)
def test_every_encoding_is_capped_as_it_is_decoded(
    encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    bomb = encode(bytes(32 * 1024 * 1024))
    assert len(bomb) < 200_000
    headers = {"Content-Encoding": encoding}
    bounds = Bounds(max_response_bytes=1024 * 1024)
    answer = body(lambda: iter((bomb,)), headers=headers)
    with HostileServer(answer).running() as server, pytest.raises(ResponseTooLargeError) as info:
        _first_page(server, max_retries=0, bounds=bounds)
    assert info.value.limit == 1024 * 1024
    assert "over the 1 MiB cap" in str(info.value)
    assert "Bounds(max_response_bytes=...)" in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", _deflate),
        ("deflate", _raw_deflate),
        ("br", brotli.compress),
        ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
    ],
)
def test_encoded_pages_still_read_exactly(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    runs = make_runs(30)
    page = json.dumps({"runs": runs, "next_page_token": None}).encode()
    headers = {"Content-Encoding": encoding}
    with HostileServer(body(lambda: iter((encode(page),)), headers=headers)).running() as server:
        got = _first_page(server)
    assert [run.id for run in got.runs] == [run["id"] for run in runs]
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate, br"


def test_an_encoding_that_was_not_asked_for_is_refused() -> None:
    headers = {"Content-Encoding": "zstd"}
    answer = body(lambda: iter((b"\x28\xb5\x2f\xfd",)), headers=headers)
    with HostileServer(answer).running() as s, pytest.raises(ResponseValidationError) as info:
        _first_page(s, max_retries=0)
    assert "cannot be decoded (Content-Encoding 'zstd', which was not asked for" in str(info.value)


def test_a_corrupt_gzip_body_is_one_validation_error() -> None:
    headers = {"Content-Encoding": "gzip"}
    junk = b"\x1f\x8b\x08\x00" + b"\xff" * 64
    answer = body(lambda: iter((junk,)), headers=headers)
    with HostileServer(answer).running() as server, pytest.raises(ResponseValidationError) as info:
        _first_page(server, max_retries=0)
    assert "cannot be decoded" in str(info.value)


def test_the_size_cap_is_configurable_and_checked() -> None:
    with pytest.raises(ConfigError) as info:
        Bounds(max_response_bytes=0)
    assert info.value.argument == "max_response_bytes"
    with pytest.raises(ConfigError) as info:
        TimbalClient(KEY, host="http://127.0.0.1:9", org_id="o", project_id="p", bounds=3)  # type: ignore[arg-type]
    assert info.value.argument == "bounds"


# --------------------------------------------------------------------------- 3. pages


def _endless_empty(request: Request) -> dict[str, Any]:
    return {"runs": [], "next_page_token": f"t{request.number}"}


def _endless_one_run(request: Request) -> dict[str, Any]:
    return {"runs": [make_run(request.number)], "next_page_token": f"t{request.number}"}


def test_empty_pages_without_end_stop_at_the_bound() -> None:
    # Before: a listing followed them forever (here, until this server gave up).
    limit = defaults.MAX_EMPTY_PAGES

    def page(request: Request) -> dict[str, Any]:
        if request.number >= 3 * limit:  # bounded: a listing that never stops ends here
            return {"runs": [], "next_page_token": None}
        return _endless_empty(request)

    with HostileServer(pages(page)).running() as server:
        with server.client() as client, pytest.raises(PaginationLimitError) as info:
            list(client.list_runs())
        assert server.count == limit
    assert info.value.setting == "max_empty_pages"
    assert "returned 1,000 empty pages in a row" in str(info.value)


def test_pages_without_end_stop_at_the_bound_and_both_bounds_are_configurable() -> None:
    with HostileServer(pages(_endless_one_run)).running() as server:
        client = server.client(bounds=Bounds(max_pages=40))
        with client, pytest.raises(PaginationLimitError) as info:
            list(client.list_runs())
        assert server.count == 40
        assert info.value.setting == "max_pages"
    with HostileServer(pages(_endless_empty)).running() as server:
        client = server.client(bounds=Bounds(max_empty_pages=7))
        with client, pytest.raises(PaginationLimitError) as info:
            list(client.iter_raw_pages())
        assert server.count == 7
        assert "7 empty pages in a row" in str(info.value)


def test_an_export_and_a_summary_of_endless_pages_end_in_one_line(tmp_path: Any) -> None:
    with HostileServer(pages(_endless_empty)).running() as server:
        for args in (["export", "--out", str(tmp_path / "r.jsonl")], ["summary"]):
            result = run_cli(args, server, timeout=60)
            assert result.returncode == 1
            line = one_error_line(result.stderr)
            assert "empty pages in a row" in line
            assert "Bounds.max_empty_pages" in line
    assert not (tmp_path / "r.jsonl").exists()


def _long_token(request: Request) -> dict[str, Any]:
    return {"runs": [make_run(0)], "next_page_token": "x" * 70_000}


def test_a_server_token_over_the_bound_is_the_servers_fault() -> None:
    # Before: a raw httpx.InvalidURL traceback when the token was sent back.
    with HostileServer(pages(_long_token)).running() as server, server.client() as client:
        with pytest.raises(PaginationLimitError) as info:
            list(client.list_runs())
        assert server.count == 1
        with pytest.raises(PaginationLimitError):
            client.get_runs_page()
    assert info.value.setting == "max_page_token_chars"
    assert "returned a next_page_token of 70,000 characters" in str(info.value)
    assert "over the 16,384 a page token may have" in str(info.value)


def test_mcp_list_runs_blames_the_server_not_an_argument_for_a_long_token() -> None:
    with HostileServer(pages(_long_token)).running() as server:
        result = call(create_server(ServerSettings(env=server.env())), "list_runs", {})
    message = error_text(result)
    assert "the Timbal API sent an unexpected response" in message
    assert "next_page_token of 70,000 characters" in message
    assert "page_token`" not in message
    assert "cursor" not in message


def test_a_token_at_the_bound_is_followed_and_fits_an_mcp_cursor() -> None:
    token = "y" * defaults.MAX_PAGE_TOKEN_CHARS

    def page(request: Request) -> dict[str, Any]:
        more = request.params.get("page_token") is None
        return {"runs": make_runs(3), "next_page_token": token if more else None}

    with HostileServer(pages(page)).running() as server:
        with server.client() as client:
            assert len(list(client.list_runs())) == 6
        settings = ServerSettings(env=server.env())
        first = call(create_server(settings), "list_runs", {"limit": 3})
        cursor = first.structured_content["next_cursor"]  # type: ignore[index]
        second = call(create_server(settings), "list_runs", {"limit": 3, "cursor": cursor})
    assert not second.is_error, second
    assert second.structured_content["returned"] == 3  # type: ignore[index]


def test_loops_are_found_with_bounded_memory() -> None:
    guard = PageGuard("/runs", Bounds())
    for index in range(25_000):
        guard.check(f"t{index - 1}" if index else None, f"t{index}", 1)
    assert len(guard._seen) == PageGuard.SEEN_TOKENS
    with pytest.raises(PaginationLoopError):
        guard.check("t24999", "t24000", 1)  # a token handed out 1,000 pages ago
    with pytest.raises(PaginationLoopError):
        PageGuard("/runs", Bounds()).check("same", "same", 5)


def test_a_limit_stops_at_the_page_that_holds_its_last_run() -> None:
    with HostileServer(pages(_endless_one_run)).running() as server:
        with server.client() as client:
            assert len(list(client.list_runs(limit=5))) == 5
        assert server.count == 5


def _endless_at_one_moment(request: Request) -> dict[str, Any]:
    # Every run at the same millisecond: a balanced listing (summarize_runs lists with
    # parallel="auto") has one piece it cannot split, and pages it for as long as the
    # server hands out tokens.
    run = make_run(request.number, created_at="2025-12-01T00:00:00Z")
    return {"runs": [run], "next_page_token": f"t{request.number}"}


def test_a_cancelled_mcp_summarize_runs_stops_making_requests_at_once() -> None:
    # Before: 335 requests in 15 s after the client had cancelled the call.
    async def go(server: HostileServer) -> tuple[int, int]:
        settings = ServerSettings(env=server.env())
        async with Client(create_server(settings)) as client:
            call_task = asyncio.create_task(client.call_tool("summarize_runs", {}))
            while server.count < 5:
                await asyncio.sleep(0.01)
            call_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call_task
            at_cancel = server.count
            await asyncio.sleep(1.0)  # what a runaway call would use to keep requesting
            return at_cancel, server.count

    with HostileServer(pages(_endless_at_one_moment, delay=0.02)).running() as server:
        at_cancel, later = asyncio.run(go(server))
    assert later - at_cancel <= 1, (at_cancel, later)


def _endless_in_every_piece(request: Request) -> dict[str, Any]:
    # One run just inside the window each request asks for, and always a next token: no
    # piece of a balanced listing ever ends, and every split makes another endless one.
    until_ms = int(request.params["to"])
    created = datetime.fromtimestamp((until_ms - 1) / 1000, UTC)
    run = make_run(request.number, created_at=created.isoformat().replace("+00:00", "Z"))
    return {"runs": [run], "next_page_token": f"t{request.number}"}


def test_a_balanced_listing_counts_every_page_of_every_piece() -> None:
    # Each piece pages its own query; were each bounded on its own, a listing that keeps
    # splitting would follow max_pages pages per piece. The bound is the listing's.
    query = RunQuery(since="2025-01-01", until="2025-02-01")
    with HostileServer(pages(_endless_in_every_piece)).running() as server:
        with server.client(bounds=Bounds(max_pages=40)) as client:
            with pytest.raises(PaginationLimitError) as info:
                list(client.list_runs(query, parallel=4))
            assert info.value.setting == "max_pages"
            assert 40 <= server.count <= 40 + 8, server.count  # plus requests in flight
        windows = {request.params["to"] for request in server.requests}
    assert len(windows) > 1  # the listing did split into pieces


def test_a_closed_parallel_listing_stops_its_windows() -> None:
    def page(request: Request) -> dict[str, Any]:
        return _endless_one_run(request)

    with HostileServer(pages(page, delay=0.01)).running() as server:
        with server.client() as client:
            runs = client.list_runs(RunQuery(since="2025-01-01", until="2025-02-01"), parallel=4)
            for _ in zip(range(3), runs, strict=False):
                pass
            runs.close()
            at_close = server.count
            time.sleep(0.5)
        assert server.count - at_close <= 4, (at_close, server.count)


def test_an_error_page_is_read_within_the_cap_too() -> None:
    huge = json.dumps({"message": "x" * (2 * 1024 * 1024)}).encode()
    bounds = Bounds(max_response_bytes=1024 * 1024)
    with HostileServer(error(500, huge)).running() as server, pytest.raises(ResponseTooLargeError):
        _first_page(server, max_retries=0, bounds=bounds)


def test_the_window_probes_follow_empty_pages_to_the_first_run() -> None:
    # An empty page that says there is more is not "no runs": a parallel listing's probe
    # for the oldest (and newest) run reads on, within the same bounds as any listing.
    def page(request: Request) -> dict[str, Any]:
        if request.params.get("page_token") is None:
            return {"runs": [], "next_page_token": "more"}
        return {"runs": [make_run(0)], "next_page_token": None}

    with HostileServer(pages(page)).running() as server:
        with server.client() as client:
            first = client.earliest_run()
        assert first is not None
        assert first.id == make_run(0)["id"]
        assert server.count == 2
    with HostileServer(pages(_endless_empty)).running() as server:
        client = server.client(bounds=Bounds(max_empty_pages=5))
        with client, pytest.raises(PaginationLimitError):
            client.earliest_run()
        assert server.count == 5
