"""Helpers of the CLI tests: run ``timbal-runs`` as a real process against an emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from timbal_integrations.emulator import Emulator

__all__ = [
    "BIN",
    "cli_env",
    "one_error_line",
    "run_cli",
    "start_cli",
    "wait_for",
]

BIN = Path(sys.executable).parent / "timbal-runs"
"""The installed console script, next to the interpreter running the tests."""


def cli_env(emu: Emulator | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI process: no stray TIMBAL_* settings, retries without sleeps."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBAL_")}
    env["TIMBAL_RETRY_TESTING"] = "1"
    env.pop("PYTHONWARNINGS", None)
    if emu is not None:
        env.update(emu.env())
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    emu: Emulator | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    command: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``timbal-runs ARGS`` to completion; output captured as text."""
    return subprocess.run(
        [*(command or [str(BIN)]), *args],
        env=dict(env) if env is not None else cli_env(emu),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(args: Sequence[str], emu: Emulator, **popen: Any) -> subprocess.Popen[str]:
    """Start ``timbal-runs ARGS`` in the background (stdout/stderr piped as text)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([str(BIN), *args], env=cli_env(emu), text=True, **popen)


def wait_for(condition: Callable[[], bool], *, timeout: float = 60, what: str = "") -> None:
    """Poll ``condition`` until true (a short poll loop with a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


def one_error_line(stderr: str) -> str:
    """The single line of a failed command's stderr (asserting there is exactly one)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("timbal-runs: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]
