"""Issue 16, case 9: ``timbal-mcp --transport http`` bounds its connections, whoever opens
them: a deadline for each request's headers, an idle timeout, and a connection cap.

Before, 300 unauthenticated connections sending their headers slowly stayed open for as
long as they liked (the bearer token is only read once the headers are complete), and a
connection that sent nothing was never closed. A real ``timbal-mcp`` process is attacked
over real sockets; its limits are set small so the test is quick.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

TIMBAL_MCP = str(Path(sys.executable).parent / "timbal-mcp")
TOKEN = "mcp-limits-T0KEN-0b7d4e1a9c3f"
HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1
CAP = 50
SLACK = 10.0
PARTIAL = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    log: list[str]


@pytest.fixture
def served(leak_guard: object) -> Iterator[Served]:
    process = subprocess.Popen(
        [
            TIMBAL_MCP,
            "--transport",
            "http",
            "--port",
            "0",
            "--header-timeout",
            str(HEADER_TIMEOUT),
            "--idle-timeout",
            str(IDLE_TIMEOUT),
            "--max-connections",
            str(CAP),
        ],
        env={**os.environ, "TIMBAL_MCP_TOKEN": TOKEN, "TIMBAL_API_KEY": "tk_unused_0000000000"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        port = None
        while port is None:
            line = lines.get(timeout=60)
            if not line:
                raise AssertionError("timbal-mcp exited before serving: " + "".join(log))
            if "serving streamable HTTP at " in line:
                port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
        yield Served(process, port, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
    assert "Traceback" not in "".join(log)


def _initialize(port: int) -> int:
    """An authenticated MCP initialize request; its status."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/mcp",
            body=body,
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


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


def test_slow_header_connections_cannot_hold_the_server(served: Served) -> None:
    socks = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
            sock.sendall(PARTIAL)  # and never the blank line that ends the headers
            socks.append(sock)
        # While they hang on, a client holding the token is served at once.
        started = time.monotonic()
        assert _initialize(served.port) == 200
        assert time.monotonic() - started < SLACK
        # Every slow connection is closed: evicted by the cap, or past the deadline.
        assert _wait_all_closed(socks, HEADER_TIMEOUT + SLACK) <= HEADER_TIMEOUT + SLACK
    finally:
        for sock in socks:
            sock.close()


def test_a_connection_dripping_its_headers_is_closed_at_the_deadline(served: Served) -> None:
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


def test_idle_connections_are_closed(served: Served) -> None:
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
