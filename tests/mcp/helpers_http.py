"""Helpers of the tests of ``timbal-mcp --transport http``: a real server process, and an
MCP ``initialize`` request sent over a plain socket (headers exactly as a test wants).

The process is awaited by reading its announcement line on stderr, never by sleeping.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

__all__ = ["INITIALIZE", "TIMBAL_MCP", "McpHttp", "initialize", "serving"]

TIMBAL_MCP: Final = str(Path(sys.executable).parent / "timbal-mcp")

INITIALIZE: Final = json.dumps(
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
"""An MCP ``initialize`` request."""


def initialize(
    url: str, headers: Mapping[str, str], *, host: str | None = None
) -> tuple[int, str, str]:
    """POST :data:`INITIALIZE` to ``url`` (``http://127.0.0.1:PORT/mcp``) with ``headers``
    (and a ``Host`` header of ``host``, when given); the status, the body, and the
    response's headers as text."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", parts.path or "/", skip_host=True)
        connection.putheader("Host", host or parts.netloc)
        sent = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Content-Length": str(len(INITIALIZE)),
            **headers,
        }
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders(INITIALIZE.encode())
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, body, str(response.getheaders())
    finally:
        connection.close()


@dataclass
class McpHttp:
    """A ``timbal-mcp --transport http`` process and what it announced."""

    process: subprocess.Popen[str]
    url: str
    """Where it serves MCP (``http://127.0.0.1:PORT/mcp``)."""
    lines: queue.Queue[str]
    """Its stderr lines from the announcement on ("" once it has closed)."""
    log: list[str]
    """Every stderr line so far."""

    @property
    def port(self) -> int:
        """The port it listens on."""
        port = urlsplit(self.url).port
        assert port is not None
        return port


@contextlib.contextmanager
def serving(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float = 60.0
) -> Iterator[McpHttp]:
    """Run ``timbal-mcp --transport http --port 0 *args`` with ``env`` for the block, once
    it has announced its URL (within ``timeout`` seconds); then stop it and wait for it."""
    process = subprocess.Popen(
        [TIMBAL_MCP, "--transport", "http", "--port", "0", *args],
        env=dict(env),
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
        url = None
        while url is None:
            line = lines.get(timeout=timeout)
            if not line:
                raise AssertionError("timbal-mcp exited before serving: " + "".join(log))
            if "serving streamable HTTP at " in line:
                url = line.split(" at ", 1)[1].strip()
        yield McpHttp(process, url, lines, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stderr is not None
        process.stderr.close()
