"""Shared helpers: an emulator in its own process, subprocess timing and peak RSS."""

from __future__ import annotations

import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BIN",
    "Emulator",
    "Timed",
    "emulator_process",
    "median",
    "run_timed",
]

BIN = Path(sys.executable).parent
FIXED_END = "2026-01-01T00:00:00Z"
_URL = re.compile(r"http://127\.0\.0\.1:\d+")


@dataclass(frozen=True)
class Emulator:
    """An emulator serving in a child process (so it never shares our GIL)."""

    base_url: str
    api_key: str
    org_id: str
    project_id: str
    runs: int

    def env(self) -> dict[str, str]:
        """The environment for a client subprocess pointed at this emulator."""
        env = dict(os.environ)
        env.update(
            TIMBAL_API_HOST=self.base_url,
            TIMBAL_API_KEY=self.api_key,
            TIMBAL_ORG_ID=self.org_id,
            TIMBAL_PROJECT_ID=self.project_id,
        )
        return env

    @property
    def runs_path(self) -> str:
        """The list endpoint's path."""
        return f"/orgs/{self.org_id}/projects/{self.project_id}/runs"


@contextmanager
def emulator_process(
    runs: int,
    *,
    latency_ms: int = 0,
    page_size: int = 50,
    seed: int = 1,
    shape: str = "even",
    rate_limit: float | None = None,
) -> Iterator[Emulator]:
    """Start ``python -m timbal_integrations.emulator`` on a free port; stop it after.

    ``shape`` is the history's (``even``, ``growing``, ``bursty``); ``rate_limit`` a
    token bucket of that many requests per second (burst: the same number)."""
    cmd = [
        sys.executable,
        "-m",
        "timbal_integrations.emulator",
        "--port",
        "0",
        "--runs",
        str(runs),
        "--seed",
        str(seed),
        "--page-size",
        str(page_size),
        "--latency-ms",
        str(latency_ms),
        "--end",
        FIXED_END,
        "--api-key",
        "bench-key",
        "--shape",
        shape,
    ]
    if rate_limit is not None:
        cmd += ["--rate-limit", str(rate_limit)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stream = proc.stdout
        reader = threading.Thread(
            target=lambda: [lines.put(line) for line in iter(stream.readline, "")], daemon=True
        )
        reader.start()
        deadline = time.monotonic() + 120
        seen: list[str] = []
        url = None
        while url is None:
            if time.monotonic() > deadline or (proc.poll() is not None and lines.empty()):
                raise RuntimeError("the emulator did not start:\n" + "".join(seen))
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            seen.append(line)
            match = _URL.search(line)
            if match:
                url = match.group(0)
        yield Emulator(url, "bench-key", "demo-org", "demo-project", runs)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Timed:
    """Wall time and peak resident memory of one child process."""

    seconds: float
    peak_rss_mb: float
    returncode: int


def run_timed(cmd: Sequence[str], *, env: dict[str, str] | None = None) -> Timed:
    """Run a command to completion; its wall time and peak RSS (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    # ru_maxrss is in kilobytes on Linux.
    return Timed(seconds, usage.ru_maxrss / 1024, proc.returncode)


def median(values: Sequence[float]) -> float:
    """The median of some measurements."""
    return statistics.median(values)
