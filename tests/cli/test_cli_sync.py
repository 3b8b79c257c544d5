"""``timbal-runs sync``: the dataset, the summary line and the JSON report, exit codes and
one-line errors, and the progress line on a terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import on_terminal, one_error_line, run_cli
from tests.sync.helpers_sync import read_dataset, truth
from timbal_integrations import RunQuery
from timbal_integrations.emulator import Emulator


def test_sync_writes_the_dataset_and_says_what_it_did(
    timbal_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    first = run_cli(
        ["sync", "--out", str(out), "--format", "csv", "--since", "2025-12-20"], timbal_emulator
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    line = first.stderr.strip()
    assert line.startswith(f"timbal-runs: synced {out}: ")
    query = RunQuery(since="2025-12-20")
    expected = truth(timbal_emulator, "csv", query)
    assert f"{len(expected):,} runs: {len(expected):,} added" in line
    assert read_dataset(out, "csv") == expected

    again = run_cli(
        ["sync", "--out", str(out), "--since", "2025-12-20", "--json", "-q"], timbal_emulator
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    report = json.loads(again.stdout)
    assert report["format"] == "csv"  # the dataset's
    assert report["mode"] == "incremental"
    assert report["lookback"] == "3d"
    assert report["added"] == report["changed"] == report["partitions_rewritten"] == 0
    assert report["requests"]["list_pages"] >= 1


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--lookback", "a while"], "--lookback"),
        (["--format", "xlsx"], "--format"),
        (["--sort-by", "id"], "--sort-by"),
        (["--sort-order", "asc"], "--sort-order"),
        (["--parallel", "0"], "--parallel"),
        (["--since", "soon"], "--since"),
    ],
)
def test_bad_usage_exits_2_naming_the_flag(
    timbal_emulator: Emulator, tmp_path: Path, extra: list[str], flag: str
) -> None:
    result = run_cli(["sync", "--out", str(tmp_path / "d"), *extra], timbal_emulator)
    assert result.returncode == 2
    assert flag in one_error_line(result.stderr)
    assert not (tmp_path / "d" / "state.json").exists()


def test_other_filters_are_refused_with_the_way_out(
    timbal_emulator: Emulator, tmp_path: Path
) -> None:
    out = str(tmp_path / "d")
    assert run_cli(["sync", "--out", out, "--status", "error"], timbal_emulator).returncode == 0
    result = run_cli(["sync", "--out", out, "--status", "success"], timbal_emulator)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == (
        f"timbal-runs: error: --status: the dataset in {out} was synced with 'error', not "
        "'success'; sync with the same --status, or with --full-refresh to start over"
    )
    result = run_cli(["sync", "--out", out], timbal_emulator)
    assert "--status: the dataset in" in one_error_line(result.stderr)
    result = run_cli(["sync", "--out", out, "--full-refresh"], timbal_emulator)
    assert result.returncode == 0, result.stderr


def test_a_damaged_dataset_exits_1_with_the_way_out(
    timbal_emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "d"
    assert run_cli(["sync", "--out", str(out)], timbal_emulator).returncode == 0
    (out / "state.json").write_text("{")
    result = run_cli(["sync", "--out", str(out)], timbal_emulator)
    assert result.returncode == 1
    assert one_error_line(result.stderr).endswith(
        "is not valid JSON; sync with --full-refresh to rebuild the dataset"
    )
    (tmp_path / "f").write_text("")
    result = run_cli(["sync", "--out", str(tmp_path / "f")], timbal_emulator)
    assert result.returncode == 1
    assert "is a file; expected a directory" in one_error_line(result.stderr)


def test_help_lists_sync_and_its_flags() -> None:
    top = run_cli(["--help"])
    assert "sync" in top.stdout
    result = run_cli(["sync", "--help"])
    for flag in (
        "--out",
        "--lookback",
        "--format",
        "--full-refresh",
        "--parallel",
        "--status",
        "--json",
    ):
        assert flag in result.stdout


def test_progress_on_a_terminal(timbal_emulator_factory: Any, tmp_path: Path) -> None:
    emu = timbal_emulator_factory(runs=3_000, latency_ms=5)
    text = on_terminal(["sync", "--out", str(tmp_path / "d")], emu)
    assert "syncing: " in text
    assert "runs/s" in text
    assert "\r" in text
    assert "3,000 runs: 3,000 added" in text
