"""The command line: a real subprocess, flags, and clean shutdown."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import main

REPO = Path(__file__).resolve().parents[2]


class Process:
    """A subprocess whose stdout lines are read by a thread into a queue."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timbal_integrations.emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def wait_for_line(self, prefix: str, timeout: float = 60) -> str:
        """Read stdout until a line starts with ``prefix``."""
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                self.lines.put(None)  # let finish() see the end of stdout too
                pytest.fail(f"process exited before printing {prefix!r}: {self.finish()}")
            self.stdout.append(line)
            if line.startswith(prefix):
                return line.rstrip("\n")

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Wait for exit; returns (exit code, all stdout, all stderr)."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout)
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                break
            self.stdout.append(line)
        return code, "".join(self.stdout), "".join(self.stderr)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def spawn() -> Any:
    processes: list[Process] = []

    def start(*args: str) -> Process:
        process = Process(list(args))
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.kill()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_interrupted(spawn: Any, check_list: Any, stop_signal: int) -> None:
    process = spawn("--port", "0", "--runs", "300", "--seed", "4", "--end", "2026-01-01T00:00:00Z")
    listening = process.wait_for_line("Listening on ")
    base_url = listening.split()[2]
    assert base_url.startswith("http://127.0.0.1:")
    exports = {}
    for _ in range(4):
        line = process.wait_for_line("export ")
        name, value = line.removeprefix("export ").split("=", 1)
        exports[name] = value
    assert exports == {
        "TIMBAL_API_HOST": base_url,
        "TIMBAL_API_KEY": "demo-key",
        "TIMBAL_ORG_ID": "demo-org",
        "TIMBAL_PROJECT_ID": "demo-project",
    }
    curl = process.wait_for_line("curl ")
    assert f"{base_url}/orgs/demo-org/projects/demo-project/runs" in curl

    url = f"{base_url}/orgs/demo-org/projects/demo-project/runs"
    seen: list[str] = []
    token = None
    with httpx.Client(headers={"Authorization": "Bearer demo-key"}) as client:
        while True:
            response = client.get(url, params={"page_token": token} if token else None)
            assert response.status_code == 200
            body = response.json()
            check_list(body)
            seen.extend(run["id"] for run in body["runs"])
            token = body["next_page_token"]
            if token is None:
                break
    assert len(seen) == len(set(seen)) == 300

    process.proc.send_signal(stop_signal)
    code, stdout, stderr = process.finish()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "Traceback" not in stdout
    assert "stopped" in stdout


def test_cli_flags_change_the_data(spawn: Any) -> None:
    process = spawn(
        "--port", "0", "--runs", "40", "--page-size", "7", "--api-key", "k9",
        "--org-id", "o", "--project-id", "p", "--extra-fields", "--fault-rate", "0",
    )  # fmt: skip
    base_url = process.wait_for_line("Listening on ").split()[2]
    response = httpx.get(
        f"{base_url}/orgs/o/projects/p/runs", headers={"Authorization": "Bearer k9"}
    )
    body = response.json()
    assert len(body["runs"]) == 7
    assert "rev" in body["runs"][0]
    process.proc.send_signal(signal.SIGINT)
    code, _stdout, stderr = process.finish()
    assert code == 0, stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--fault-rate", "2"],
        ["--fault-rate", "abc"],
        ["--port", "-1"],
        ["--port", "70000"],
        ["--runs", "x"],
        ["--runs", "-5"],
        ["--page-size", "0"],
        ["--end", "yesterday"],
        ["--fault-kinds", "404"],
        ["--rate-limit", "0"],
        ["--latency-ms", "-3"],
        ["--span-days", "nan"],
        ["--bogus"],
        ["stray"],
    ],
)
def test_bad_flags_exit_2_with_one_line(argv: list[str], capsys: Any) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "error" in lines[0]


def test_too_many_runs_for_the_span_exits_2(capsys: Any) -> None:
    assert main(["--runs", "100000", "--span-days", "0.0001", "--port", "0"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_port_in_use_exits_1(capsys: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port), "--runs", "10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(port) in err[0]


def test_help_exits_0(capsys: Any) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--runs", "--seed", "--fault-rate", "--rate-limit", "--end"):
        assert flag in out


def test_cli_live_shape_and_burst_flags(spawn: Any) -> None:
    process = spawn(
        "--port", "0", "--runs", "300", "--live", "--speed", "60", "--shape", "growing",
        "--end", "2026-01-01T00:00:00Z", "--rate-limit", "1000", "--rate-limit-burst", "5",
    )  # fmt: skip
    assert "growing history" in process.wait_for_line("Timbal runs emulator:")
    live = process.wait_for_line("Live:")
    assert "2026-01-01T00:00:00Z" in live
    assert "x60" in live
    assert "2026-01-08T00:00:00Z" in live  # runs arrive for 7 more days
    base_url = process.wait_for_line("Listening on ").split()[2]
    response = httpx.get(
        f"{base_url}/orgs/demo-org/projects/demo-project/runs",
        headers={"Authorization": "Bearer demo-key"},
    )
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == "5"
    process.proc.send_signal(signal.SIGINT)
    code, _stdout, stderr = process.finish()
    assert code == 0, stderr
    assert "WARNING" not in stderr  # loopback: nothing to warn about


def test_cli_on_every_interface_warns_and_shows_the_real_address(spawn: Any) -> None:
    # Bound to 0.0.0.0 for the few seconds of this test; it is only called on 127.0.0.1.
    process = spawn("--host", "0.0.0.0", "--port", "0", "--runs", "20")
    listening = process.wait_for_line("Listening on ")
    bound = listening.split()[2]
    assert bound.startswith("http://0.0.0.0:")
    port = bound.rsplit(":", 1)[1]
    assert f"from this machine: http://127.0.0.1:{port})" in listening
    assert process.wait_for_line("export TIMBAL_API_HOST=") == (
        f"export TIMBAL_API_HOST=http://127.0.0.1:{port}"
    )
    response = httpx.get(
        f"http://127.0.0.1:{port}/orgs/demo-org/projects/demo-project/runs",
        headers={"Authorization": "Bearer demo-key"},
    )
    assert response.status_code == 200
    process.proc.send_signal(signal.SIGINT)
    code, _stdout, stderr = process.finish()
    assert code == 0, stderr
    assert "WARNING" in stderr
    assert f"0.0.0.0 (every network interface), port {port}" in stderr
    assert "public demo API key 'demo-key'" in stderr
    assert "--host 127.0.0.1" in stderr


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--runs", "100000000"], ["--runs", "1,000,000", "100,000,000"]),
        (["--runs", "950000", "--live"], ["--runs", "1,000,000", "future"]),
        (["--speed", "5"], ["--speed", "--live"]),
        (["--shape", "lumpy"], ["--shape", "growing"]),
    ],
)
def test_too_many_runs_and_bad_live_flags_exit_2_at_once(
    argv: list[str], words: list[str], tmp_path: Path
) -> None:
    # In a child process, to see its peak memory: nothing is generated before failing.
    # The peak is the child's own (VmHWM of its address space, read as it exits):
    # wait4's ru_maxrss would count the test process's own size, since the child starts
    # as a vfork of it.
    peak = tmp_path / "peak.txt"
    code = (
        "import atexit, runpy, sys\n"
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        f"            open({str(peak)!r}, 'w').write(line.split()[1])\n"
        "atexit.register(peak)\n"
        "sys.argv = ['timbal_integrations.emulator', *sys.argv[1:]]\n"
        "runpy.run_module('timbal_integrations.emulator', run_name='__main__', alter_sys=True)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", code, "--port", "0", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0]
    assert int(peak.read_text()) < 200 * 1024  # KB: the interpreter and imports, no runs
