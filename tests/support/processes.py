"""``timbal-runs`` as a real process against an emulator (or any server), and polling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

__all__ = [
    "BIN",
    "cli_env",
    "one_error_line",
    "run_cli",
    "run_measured",
    "start_cli",
    "wait_until",
]

BIN: Final = Path(sys.executable).parent / "timbal-runs"
"""The installed console script, next to the interpreter running the tests."""


class _HasEnv(Protocol):
    def env(self) -> dict[str, str]: ...


Settings = Mapping[str, str] | _HasEnv | None
"""``TIMBAL_*`` settings: a mapping, or anything with ``env()`` (an emulator, a server)."""


def cli_env(settings: Settings = None, **extra: str) -> dict[str, str]:
    """A CLI process's environment: no stray TIMBAL_* settings, retries without waiting,
    then ``settings`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBAL_")}
    env.pop("PYTHONWARNINGS", None)
    env["TIMBAL_RETRY_TESTING"] = "1"
    if settings is not None:
        env.update(settings if isinstance(settings, Mapping) else settings.env())
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    settings: Settings = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    command: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``timbal-runs ARGS`` to completion, output captured as text (``env`` replaces the
    environment built from ``settings``)."""
    return subprocess.run(
        [*(command or [str(BIN)]), *args],
        env=dict(env) if env is not None else cli_env(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def start_cli(args: Sequence[str], settings: Settings, **popen: Any) -> subprocess.Popen[str]:
    """``timbal-runs ARGS`` in the background (stdout and stderr piped as text unless
    ``popen`` says otherwise)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen([str(BIN), *args], env=cli_env(settings), text=True, **popen)


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, what: str = "") -> None:
    """Poll ``condition`` until it holds (a deadline-bounded poll, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.002)


def one_error_line(stderr: str) -> str:
    """The single line of a failed command's stderr (asserting there is exactly one)."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("timbal-runs: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


_MEASURE: Final = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(
    args: Sequence[str], *, env: Mapping[str, str], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``args`` run to completion (output captured as text), and its peak RSS in MB.

    Measured through a small launcher process: on Linux a child's ``ru_maxrss`` also
    counts the resident size of the process that forked it (carried over by ``exec``),
    and the test runner itself may hold hundreds of MB; the launcher's own child starts
    clean.
    """
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        result = subprocess.run(
            [sys.executable, "-c", _MEASURE, report.name, *args],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        peak_kb = int(report.read() or 0)
    return result, peak_kb // 1024
