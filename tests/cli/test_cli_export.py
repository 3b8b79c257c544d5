"""``timbal-runs export`` as a real process: formats, faults, kill -9 and Ctrl-C resumes,
the progress display, and Parquet without pyarrow."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.processes import BIN, cli_env, one_error_line, run_cli, start_cli, wait_until
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import pending_export

pq = pytest.importorskip("pyarrow.parquet")

BLOCK_PYARROW = (
    "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None; "
    "from timbal_integrations.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _jsonl_ids(path: Path) -> list[str]:
    with path.open("rb") as fh:
        return [orjson.loads(line)["id"] for line in fh]


def test_export_every_format(timbal_emulator: Emulator, tmp_path: Path) -> None:
    ids = [r["id"] for r in timbal_emulator.runs]
    for name in ("runs.jsonl", "runs.parquet"):  # csv: see the Ctrl-C test
        target = tmp_path / name
        result = run_cli(["export", "--out", str(target)], timbal_emulator)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        # not a terminal: no progress, just the final line
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"timbal-runs: wrote 3,000 runs to {target}")
        manifest = json.loads(Path(str(target) + ".manifest.json").read_text())
        assert manifest["count"] == 3000
        assert manifest["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
        assert manifest["format"] == name.split(".")[1]
    assert _jsonl_ids(tmp_path / "runs.jsonl") == ids
    table = pq.read_table(tmp_path / "runs.parquet")
    assert table.num_rows == 3000
    assert table.column("id").to_pylist() == ids


def test_format_flag_quiet_limit_and_no_manifest(timbal_emulator: Emulator, tmp_path: Path) -> None:
    target = tmp_path / "runs.data"
    result = run_cli(
        [
            "export",
            "-o",
            str(target),
            "--format",
            "csv",
            "--limit",
            "10",
            "--no-manifest",
            "--quiet",
        ],
        timbal_emulator,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == result.stdout == ""
    assert len(target.read_text().splitlines()) == 11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.data"]


def test_faults_on_a_parallel_export_exact(timbal_emulator_factory: Any, tmp_path: Path) -> None:
    # (20,000 runs with faults, sequential and parallel: tests/export, in-process.)
    emu = timbal_emulator_factory(runs=10_000, fault_rate=0.2)
    target = tmp_path / "p.jsonl"
    args = ["--max-retries", "40", "--parallel", "4", "--since", "2025-11-01"]
    result = run_cli(["export", "--out", str(target), *args], emu)
    assert result.returncode == 0, result.stderr
    assert _jsonl_ids(target) == [r["id"] for r in emu.runs]
    assert emu.stats.faults_total > 15


def _saved(target: Path) -> int:
    pending = pending_export(target)
    return 0 if pending is None else pending.count


def _kill_when_saved(emu: Emulator, args: list[str], target: Path, at_least: int) -> int:
    """Start an export, SIGKILL it once its checkpoint holds ``at_least`` runs."""
    proc = start_cli(args, emu, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def progressed() -> bool:
            assert not target.exists(), "the target appeared before the export finished"
            assert proc.poll() is None, "the export finished before it could be killed"
            return _saved(target) >= at_least

        wait_until(progressed, timeout=60, what=f"{at_least} runs saved")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    return _saved(target)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_kill_9_then_resume_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path, fmt: str
) -> None:
    # Data up to now, and a relative --since: a resume must resolve "31d" against the first
    # attempt's clock (or its filters would differ), whenever it runs.
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    emu = timbal_emulator_factory(
        runs=10_000 if fmt == "jsonl" else 5_000, latency_ms=5 if fmt == "jsonl" else 10, end=end
    )
    target = tmp_path / f"runs.{fmt}"
    # One request at a time: the kill points are spaced for a sequential export's pace
    # (parallel exports are killed and resumed in tests/hardening/test_hard_crash.py).
    args = ["export", "--out", str(target), "--since", "31d", "--parallel", "1"]
    total = len(emu.runs)
    first = _kill_when_saved(emu, args, target, total // 5)
    second = _kill_when_saved(emu, [*args, "--resume"], target, first + total // 4)
    assert first < second < total
    done = run_cli([*args, "--resume"], emu)
    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stderr
    if fmt == "jsonl":
        ids = _jsonl_ids(target)
    else:
        ids = pq.read_table(target, columns=["id"]).column("id").to_pylist()
    assert ids == [r["id"] for r in emu.runs]  # every run, exactly once, in order
    assert pending_export(target) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        target.name,
        f"{target.name}.manifest.json",
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_kill_9_parallel_then_resume_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path, fmt: str
) -> None:
    # A parallel export spools each window to its own file; every spool must resume at its
    # own checkpoint and the concatenation must still be the sequential order.
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    # 40 ms per page keeps each attempt a few seconds long, so the kills land mid-way.
    emu = timbal_emulator_factory(runs=8_000, latency_ms=40, end=end)
    target = tmp_path / f"runs.{fmt}"
    args = ["export", "--out", str(target), "--since", "31d", "--parallel", "4"]
    total = len(emu.runs)
    first = _kill_when_saved(emu, args, target, total // 5)
    second = _kill_when_saved(emu, [*args, "--resume"], target, first + total // 4)
    assert first < second < total
    done = run_cli([*args, "--resume"], emu)
    assert done.returncode == 0, done.stderr
    if fmt == "jsonl":
        ids = _jsonl_ids(target)
    else:
        ids = [line.split(",", 1)[0] for line in target.read_text().splitlines()[1:]]
    assert ids == [r["id"] for r in emu.runs]  # every run, exactly once, in order
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        target.name,
        f"{target.name}.manifest.json",
    ]


def test_ctrl_c_keeps_progress_for_resume(timbal_emulator_factory: Any, tmp_path: Path) -> None:
    emu = timbal_emulator_factory(runs=8_000, latency_ms=5)
    target = tmp_path / "runs.csv"
    args = ["export", "--out", str(target), "--status", "success"]
    proc = start_cli(args, emu)
    wait_until(lambda: _saved(target) >= 1000, timeout=60, what="progress")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("timbal-runs: interrupted; ")
    assert "--resume" in lines[0]
    assert not target.exists()
    saved = _saved(target)
    assert saved >= 1000

    # A different query cannot resume it: exit 2, naming --resume.
    other = run_cli(["export", "--out", str(target), "--status", "error", "--resume"], emu)
    assert other.returncode == 2
    assert "--resume" in one_error_line(other.stderr)
    assert _saved(target) == saved

    done = run_cli([*args, "--resume"], emu)
    assert done.returncode == 0, done.stderr
    with target.open(newline="") as fh:
        ids = [row["id"] for row in csv.DictReader(fh)]
    assert ids == [r["id"] for r in emu.runs if r["status"] == "success"]


def test_without_resume_a_stale_part_is_discarded_with_a_notice(
    timbal_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(runs=3_000, latency_ms=5)
    target = tmp_path / "runs.jsonl"
    args = ["export", "--out", str(target)]
    _kill_when_saved(emu, args, target, 300)
    again = run_cli(args, emu)
    assert again.returncode == 0, again.stderr
    notice, final = again.stderr.splitlines()
    assert notice.startswith("timbal-runs: discarding the partial export")
    assert "(resumed)" not in final
    assert _jsonl_ids(target) == [r["id"] for r in emu.runs]


def test_api_failure_exits_1_and_says_how_to_resume(
    timbal_emulator_factory: Any, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(runs=3000, fault_rate=1.0, fault_kinds=("503",))
    target = tmp_path / "runs.jsonl"
    result = run_cli(["export", "--out", str(target), "--max-retries", "1"], emu)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "503" in line
    assert not target.exists()


def _export_on_a_terminal(emu: Emulator, target: Path) -> str:
    """``timbal-runs export`` with stderr on a pseudo-terminal: what it showed there
    (one request at a time, so the progress line is drawn at a known pace)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN), "export", "--out", str(target), "--parallel", "1"],
        env=cli_env(emu),
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


def test_progress_on_a_terminal(timbal_emulator_factory: Any, tmp_path: Path) -> None:
    emu = timbal_emulator_factory(runs=4_000, latency_ms=5)
    text = _export_on_a_terminal(emu, tmp_path / "runs.jsonl")
    assert "runs/s" in text
    assert "\r" in text
    assert "wrote 4,000 runs" in text
    assert "retr" not in text


def test_the_progress_line_counts_retries(timbal_emulator_factory: Any, tmp_path: Path) -> None:
    # Retries reach the progress line through the client's on_retry hook (no log line is
    # read): 80 pages of at least 20 ms each, one at a time, a third of them answered
    # 503 first.
    emu = timbal_emulator_factory(runs=4_000, latency_ms=20, fault_rate=0.3, fault_kinds=["503"])
    text = _export_on_a_terminal(emu, tmp_path / "runs.jsonl")
    assert "wrote 4,000 runs" in text
    assert emu.stats.faults_total > 0
    shown = [int(m) for m in re.findall(r"· (\d+) retr(?:y|ies)", text)]
    assert shown, text
    assert shown == sorted(shown)  # a running count
    assert max(shown) <= emu.stats.faults_total
    assert "retrying in" not in text  # the log lines stay for --debug


def test_parquet_without_pyarrow_says_how_to_install(
    timbal_emulator: Emulator, tmp_path: Path
) -> None:
    target = tmp_path / "runs.parquet"
    result = run_cli(
        ["export", "--out", str(target)],
        timbal_emulator,
        command=[sys.executable, "-c", BLOCK_PYARROW],
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "pyarrow" in line
    assert "pip install 'timbal-integrations[parquet]'" in line
    assert not target.exists()
    # jsonl still works without pyarrow
    ok = run_cli(
        ["export", "--out", str(tmp_path / "r.jsonl"), "--limit", "5"],
        timbal_emulator,
        command=[sys.executable, "-c", BLOCK_PYARROW],
    )
    assert ok.returncode == 0, ok.stderr
