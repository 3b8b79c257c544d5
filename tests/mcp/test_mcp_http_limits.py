"""Issue 16, case 9: ``timbal-mcp --transport http`` bounds its connections, whoever opens
them: a deadline for each request's headers, an idle timeout, and a connection cap.

Before, 300 unauthenticated connections sending their headers slowly stayed open for as
long as they liked (the bearer token is only read once the headers are complete), and a
connection that sent nothing was never closed. A real ``timbal-mcp`` process is attacked
over real sockets; its limits are set small so the test is quick.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.mcp.helpers_http import TIMBAL_MCP, McpHttp, initialize, serving

pytestmark = pytest.mark.timeout(120)

TOKEN = "mcp-limits-T0KEN-0b7d4e1a9c3f"
HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1
CAP = 50
SLACK = 10.0
PARTIAL = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture
def served(leak_guard: object) -> Iterator[McpHttp]:
    args = [
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--idle-timeout",
        str(IDLE_TIMEOUT),
        "--max-connections",
        str(CAP),
    ]
    env = {**os.environ, "TIMBAL_MCP_TOKEN": TOKEN, "TIMBAL_API_KEY": "tk_unused_0000000000"}
    with serving(args, env) as server:
        yield server
    assert "Traceback" not in "".join(server.log)


def _initialize(server: McpHttp) -> int:
    """An authenticated MCP initialize request; its status."""
    status, _, _ = initialize(server.url, {"Authorization": f"Bearer {TOKEN}"})
    return status


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset), without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def _wait_all_closed(socks: list[socket.socket], within: float) -> float:
    """Seconds until the server closed every socket (fails past ``within``)."""
    started = time.monotonic()
    open_ = list(socks)
    while open_:
        if time.monotonic() - started > within:
            raise AssertionError(f"{len(open_)} connections still open after {within}s")
        select.select(open_, [], [], 0.05)
        open_ = [s for s in open_ if not _closed_by_server(s)]
    return time.monotonic() - started


def test_slow_header_connections_cannot_hold_the_server(served: McpHttp) -> None:
    socks = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            sock.sendall(PARTIAL)  # and never the blank line that ends the headers
            socks.append(sock)
        # While they hang on, a client holding the token is served at once.
        started = time.monotonic()
        assert _initialize(served) == 200
        assert time.monotonic() - started < SLACK
        # Every slow connection is closed: evicted by the cap, or past the deadline.
        assert _wait_all_closed(socks, HEADER_TIMEOUT + SLACK) <= HEADER_TIMEOUT + SLACK
    finally:
        for sock in socks:
            sock.close()


def test_a_connection_dripping_its_headers_is_closed_at_the_deadline(served: McpHttp) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        started = time.monotonic()
        closed = False
        for byte in PARTIAL * 10:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_by_server(sock):
                closed = True
                break
            time.sleep(0.05)  # paces the attacker: the server's deadline is what is tested
        assert closed
        assert time.monotonic() - started < HEADER_TIMEOUT + SLACK


def test_idle_connections_are_closed(served: McpHttp) -> None:
    # One that never sends anything, and one left idle after a complete request.
    silent = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    kept = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        kept.request("GET", "/mcp", headers={"Authorization": "Bearer wrong"})
        response = kept.getresponse()
        response.read()
        assert response.status == 401
        assert kept.sock is not None
        idle = kept.sock
        _wait_all_closed([silent, idle], max(HEADER_TIMEOUT, IDLE_TIMEOUT) + SLACK)
    finally:
        silent.close()
        kept.close()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--header-timeout", "0"),
        ("--header-timeout", "nan"),
        ("--idle-timeout", "0"),
        ("--max-connections", "0"),
    ],
)
def test_bad_limits_exit_2(flag: str, value: str) -> None:
    result = subprocess.run(
        [TIMBAL_MCP, "--transport", "http", "--port", "0", flag, value],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TIMBAL_MCP_TOKEN": TOKEN},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 2
    assert f"timbal-mcp: error: {flag} " in result.stderr
    assert "Traceback" not in result.stderr
