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
    "on_terminal",
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


def on_terminal(args: Sequence[str], settings: Settings, *, timeout: float = 60) -> str:
    """``timbal-runs ARGS`` with stderr on a pseudo-terminal (stdout discarded), to
    completion: what it showed there. Asserts that it succeeded."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(BIN), *args], env=cli_env(settings), stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=timeout) == 0
    return b"".join(chunks).decode()


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
import atexit, runpy, sys

report, kind, target, *rest = sys.argv[1:]


def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(report, "w") as fh:
                    fh.write(line.split()[1])


atexit.register(peak)
if kind == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
"""


def run_measured(
    args: Sequence[str], *, env: Mapping[str, str], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``args`` (``[sys.executable, "-m", module, ...]`` or ``[sys.executable, "-c",
    code, ...]``) run to completion, output captured as text, and the child's own peak
    RSS in MB.

    The child reports its own ``VmHWM`` (Linux's peak resident set, counted from its
    ``exec``) as it exits: ``wait4``'s ``ru_maxrss`` would also count the resident size
    of the process that forked it, carried over by ``exec``, and the test runner itself
    may hold hundreds of MB. The module or code runs in that same interpreter, under
    ``__main__``, with ``sys.argv`` as it would have it.
    """
    import tempfile

    if args[0] != sys.executable or args[1] not in ("-m", "-c"):
        raise ValueError(f"expected [sys.executable, '-m' or '-c', ...], got {args[:2]!r}")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        result = subprocess.run(
            [sys.executable, "-c", _MEASURE, report.name, *args[1:]],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        peak_kb = int(report.read() or 0)
    return result, peak_kb // 1024
