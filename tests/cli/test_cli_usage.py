"""Exit codes and one-line messages: bad usage is 2 and names the flag, failures are 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import cli_env, one_error_line, run_cli
from timbal_integrations import __version__
from timbal_integrations.cli import main
from timbal_integrations.emulator import Emulator

SECRET = "sk-live-SECRET-5f3c9a1e7b"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TIMBAL_API_KEY", "TIMBAL_API_HOST", "TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["list", "--since", "yesterday-ish"], "--since"),
        (["list", "--until", "1700000000"], "--until"),
        (["list", "--since", "2026-01-02", "--until", "2026-01-01"], "--since"),
        (["list", "--limit", "-1"], "--limit"),
        (["list", "--limit", "ten"], "--limit"),
        (["list", "--parallel", "0"], "--parallel"),
        (["list", "--format", "xml"], "--format"),
        (["list", "--sort-by", "name"], "--sort-by"),
        (["list", "--sort-order", "up"], "--sort-order"),
        (["list", "--metadata", "{nope"], "--metadata"),
        (["list", "--metadata", "[1, 2]"], "--metadata"),
        (["list", "--roots", "maybe"], "--roots"),
        (["list", "--status", " "], "--status"),
        (["list", "--bogus"], "--bogus"),
        (["summary", "--format", "csv"], "--format"),
        (["summary", "--since", "3 fortnights"], "--since"),
        (["export"], "--out"),
        (["export", "--out", "runs.txt"], "--format"),
        (["export", "--out", "r.jsonl", "--format", "xlsx"], "--format"),
        (["export", "--out", "r.jsonl", "--max-retries", "-2"], "--max-retries"),
        (["export", "--out", "r.jsonl", "--timeout", "0"], "--timeout"),
        (["export", "--out", "r.jsonl", "--parallel", "65"], "--parallel"),
        (["export", "--out", "r.jsonl", "--workforce-id", ""], "--workforce-id"),
        (["demo", "--runs", "many"], "--runs"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ],
)
def test_bad_usage_exits_2_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert flag in line
    assert captured.out == ""


def test_missing_configuration_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "TIMBAL_API_KEY" in line
    assert "--api-key" in line
    flags = ["--api-key", "k", "--org-id", "o", "--project-id", "p"]
    assert main(["list", *flags, "--host", "ftp://x"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("timbal-runs: error: --host: 'ftp://x' has scheme 'ftp'")
    assert main(["list", *flags[:2], "--org-id", "a/b", "--project-id", "p"]) == 2
    assert "--org-id" in one_error_line(capsys.readouterr().err)


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"timbal-runs {__version__}"
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--out", "--resume", "--parallel", "--since", "--roots", "--api-key", "--quiet"):
        assert flag in out


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "timbal_integrations", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=cli_env(),
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"timbal-runs {__version__}"


def test_rejected_key_exits_1_without_the_key_or_a_traceback(timbal_emulator: Emulator) -> None:
    env = cli_env(timbal_emulator, TIMBAL_API_KEY=SECRET)
    result = run_cli(["list", "--limit", "1"], env=env)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "401" in line
    assert line.endswith("(the API key was rejected — check TIMBAL_API_KEY)")
    assert SECRET not in result.stderr + result.stdout
    # a key given by flag is named by its flag: the hint names what the user set
    flagged = run_cli(["list", "--limit", "1", "--api-key", SECRET], timbal_emulator)
    assert one_error_line(flagged.stderr).endswith("(the API key was rejected — check --api-key)")
    debug = run_cli(["list", "--limit", "1", "--debug"], env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("timbal-runs: error: 401")
    assert SECRET not in debug.stderr
    # the flag overrides the environment
    fixed = run_cli(["list", "--limit", "1", "--api-key", timbal_emulator.api_key], env=env)
    assert fixed.returncode == 0, fixed.stderr


def test_unreachable_api_exits_1(timbal_emulator: Emulator) -> None:
    result = run_cli(
        ["summary", "--host", "http://127.0.0.1:9", "--max-retries", "0", "--timeout", "5"],
        timbal_emulator,
    )
    assert result.returncode == 1
    assert "127.0.0.1:9" in one_error_line(result.stderr)


def test_parallel_needs_the_default_sort(timbal_emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli(
        ["export", "--out", str(tmp_path / "r.jsonl"), "--parallel", "4", "--sort-by", "cost_usd"],
        timbal_emulator,
    )
    assert result.returncode == 2
    assert "--parallel" in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing left behind


def test_emulator_subcommand_is_the_emulator_cli() -> None:
    helped = run_cli(["emulator", "--help"], env=cli_env())
    assert helped.returncode == 0
    assert "--fault-rate" in helped.stdout
    assert "--latency-ms" in helped.stdout
    bad = run_cli(["emulator", "--port", "nope"], env=cli_env())
    assert bad.returncode == 2
    assert "--port" in bad.stderr


def test_debug_logs_each_request_without_query_or_key(timbal_emulator: Emulator) -> None:
    env = cli_env(timbal_emulator)
    quiet = run_cli(["list", "--limit", "120", "--status", "success", "--format", "json"], env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "answered" not in quiet.stderr
    debug = run_cli(
        ["list", "--limit", "120", "--status", "success", "--format", "json", "--debug"], env=env
    )
    assert debug.returncode == 0, debug.stderr
    lines = [line for line in debug.stderr.splitlines() if "answered" in line]
    path = f"/orgs/{timbal_emulator.org_id}/projects/{timbal_emulator.project_id}/runs"
    assert lines == [f"timbal-runs: GET {path} answered 200"] * 3
    assert timbal_emulator.api_key not in debug.stderr
