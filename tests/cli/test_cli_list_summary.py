"""``timbal-runs list`` and ``summary`` against the emulator: outputs parse back, numbers
equal a straightforward recomputation."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pty
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import BIN, cli_env, run_cli
from timbal_integrations import RECORD_FIELDS
from timbal_integrations.cli import format_summary, format_table
from timbal_integrations.emulator import Emulator


def _ids(emu: Emulator) -> list[str]:
    return [run["id"] for run in emu.runs]


def test_list_defaults_to_jsonl_when_piped(timbal_emulator: Emulator) -> None:
    result = run_cli(["list"], timbal_emulator)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == _ids(timbal_emulator)  # every run, no default limit
    assert result.stderr == ""


def test_list_json_csv_and_jsonl_parse_back(timbal_emulator: Emulator) -> None:
    served = timbal_emulator.runs[:120]
    as_json = run_cli(["list", "--format", "json", "--limit", "120"], timbal_emulator)
    assert as_json.returncode == 0, as_json.stderr
    array = json.loads(as_json.stdout)
    assert [row["id"] for row in array] == [run["id"] for run in served]
    assert array[0].keys() == served[0].keys()

    as_csv = run_cli(["list", "--format", "csv", "--limit", "120"], timbal_emulator)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0].keys()) == list(RECORD_FIELDS)
    assert [(r["id"], r["user_email"], float(r["cost_usd"])) for r in rows] == [
        (run["id"], run["user"]["email"], run["cost_usd"]) for run in served
    ]

    empty = run_cli(["list", "--format", "json", "--status", "nope"], timbal_emulator)
    assert json.loads(empty.stdout) == []
    header_only = run_cli(["list", "--format", "csv", "--status", "nope"], timbal_emulator)
    assert header_only.stdout.splitlines() == [",".join(RECORD_FIELDS)]


def test_list_filters_and_sorting(timbal_emulator: Emulator) -> None:
    result = run_cli(
        [
            "list",
            "--status",
            "error",
            "--since",
            "2025-12-10T00:00:00Z",
            "--until",
            "2025-12-20",
            "--sort-by",
            "cost_usd",
            "--sort-order",
            "asc",
        ],
        timbal_emulator,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    low, high = (
        datetime.fromisoformat("2025-12-10T00:00:00+00:00"),
        datetime.fromisoformat("2025-12-20T00:00:00+00:00"),
    )
    expected = [
        run
        for run in timbal_emulator.runs
        if run["status"] == "error" and low <= datetime.fromisoformat(run["created_at"]) < high
    ]
    assert sorted(row["id"] for row in rows) == sorted(run["id"] for run in expected)
    costs = [row["cost_usd"] for row in rows]
    assert costs == sorted(costs)
    assert len(rows) > 10


def test_list_table_is_aligned_and_limited(timbal_emulator: Emulator) -> None:
    result = run_cli(["list", "--format", "table"], timbal_emulator)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + 50  # header + the default table limit
    header = lines[0]
    for column in ("ID", "CREATED (UTC)", "STATUS", "DURATION", "COST USD", "USER", "WORKFORCE"):
        assert column in header
    start = header.index("CREATED (UTC)")
    status = header.index("STATUS")
    for line, run in zip(lines[1:], timbal_emulator.runs, strict=False):
        assert line.startswith(run["id"])
        created = line[start : start + 20]
        assert created.endswith("Z")
        assert datetime.fromisoformat(created) == datetime.fromisoformat(run["created_at"]).replace(
            microsecond=0
        )
        assert line[status:].startswith(run["status"])
        assert f"{run['cost_usd']:.4f}" in line
    assert "first 50 runs" in result.stderr


def test_table_rendering_units(timbal_emulator: Emulator) -> None:
    from timbal_integrations import Run
    from timbal_integrations.summary import summarize

    runs = [Run.model_validate(r) for r in timbal_emulator.runs[:300]]
    lines = format_table(runs[:3]).splitlines()
    cost_end = lines[0].index("COST USD") + len("COST USD")
    for line, run in zip(lines[1:], runs[:3], strict=True):  # costs right-aligned, 4 decimals
        assert line[:cost_end].endswith(f"{run.cost_usd:.4f}")
    by_duration = {
        r.duration_ms: r for r in runs if r.duration_ms is not None and r.duration_ms >= 60_000
    }
    long_run = next(iter(by_duration.values()))
    minutes, seconds = divmod(long_run.duration_ms // 1000, 60)  # type: ignore[operator]
    assert f"{minutes}m{seconds:02d}s" in format_table([long_run])
    summary_text = format_summary(summarize(runs))
    assert "Runs             300" in summary_text
    assert "By status" in summary_text
    assert "By user" in summary_text


def test_list_is_a_table_on_a_terminal(timbal_emulator: Emulator) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN), "list", "--limit", "5"],
        env=cli_env(timbal_emulator),
        stdout=slave,
        stderr=subprocess.PIPE,
        text=True,
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
    assert proc.stderr is not None
    proc.stderr.close()
    out = b"".join(chunks).decode().splitlines()
    assert out[0].startswith("ID ")
    assert "CREATED (UTC)" in out[0]
    assert len(out) == 6


def _recompute(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary, computed the plain way from the served runs."""
    total = len(runs)
    durations = sorted(r["duration_ms"] for r in runs if r["duration_ms"] is not None)

    def nearest_rank(p: float) -> int:
        return int(durations[max(1, math.ceil(p / 100 * len(durations))) - 1])

    created = [datetime.fromisoformat(r["created_at"]) for r in runs]
    return {
        "total": total,
        "status": Counter(r["status"] for r in runs),
        "user": Counter((r["user"]["id"], r["user"]["name"], r["user"]["email"]) for r in runs),
        "workforce": Counter((r["workforce"]["id"], r["workforce"]["name"]) for r in runs),
        "sentiment": Counter(r["last_reaction_sentiment"] for r in runs),
        "errors": sum(r["status"] == "error" for r in runs),
        "usd": sum(r["cost_usd"] for r in runs),
        "credits": sum(r["cost_credits"] for r in runs),
        "p50": nearest_rank(50),
        "p95": nearest_rank(95),
        "max": durations[-1],
        "first": min(created),
        "last": max(created),
    }


def _check_summary(got: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    want = _recompute(runs)
    assert got["total"] == want["total"]
    assert got["complete"] is True
    assert {b["key"]: b["count"] for b in got["by_status"]} == dict(want["status"])
    assert {(b["key"], b["name"], b["email"]): b["count"] for b in got["by_user"]} == dict(
        want["user"]
    )
    assert {(b["key"], b["name"]): b["count"] for b in got["by_workforce"]} == dict(
        want["workforce"]
    )
    assert {b["key"]: b["count"] for b in got["by_sentiment"]} == dict(want["sentiment"])
    for bucket in got["by_status"]:
        assert bucket["share"] == pytest.approx(bucket["count"] / want["total"], abs=1e-6)
    assert got["error_count"] == want["errors"]
    assert got["error_rate"] == pytest.approx(want["errors"] / want["total"], abs=1e-6)
    assert got["cost_usd_total"] == pytest.approx(want["usd"], rel=1e-12)
    assert got["cost_credits_total"] == pytest.approx(want["credits"], rel=1e-12)
    assert got["duration"]["p50_ms"] == want["p50"]
    assert got["duration"]["p95_ms"] == want["p95"]
    assert got["duration"]["max_ms"] == want["max"]
    assert datetime.fromisoformat(got["first_run_at"]) == want["first"]
    assert datetime.fromisoformat(got["last_run_at"]) == want["last"]


def test_summary_numbers_equal_a_recomputation(timbal_emulator: Emulator) -> None:
    result = run_cli(["summary"], timbal_emulator)  # json when piped
    assert result.returncode == 0, result.stderr
    _check_summary(json.loads(result.stdout), timbal_emulator.runs)


def test_filtered_parallel_summary(timbal_emulator: Emulator) -> None:
    args = ["summary", "--format", "json", "--workforce-id", "wf_support", "--parallel", "4"]
    result = run_cli([*args, "--since", "2025-12-15"], timbal_emulator)
    assert result.returncode == 0, result.stderr
    since = datetime.fromisoformat("2025-12-15T00:00:00+00:00")
    subset = [
        r
        for r in timbal_emulator.runs
        if r["workforce"]["id"] == "wf_support" and datetime.fromisoformat(r["created_at"]) >= since
    ]
    assert len(subset) > 100
    _check_summary(json.loads(result.stdout), subset)


def test_summary_table(timbal_emulator: Emulator) -> None:
    result = run_cli(["summary", "--format", "table", "--status", "error"], timbal_emulator)
    assert result.returncode == 0, result.stderr
    errors = [r for r in timbal_emulator.runs if r["status"] == "error"]
    text = result.stdout
    assert "Filters          --status error" in text
    assert f"Runs             {len(errors):,}" in text
    assert f"Errors           {len(errors):,} (100.0%)" in text
    usd = sum(r["cost_usd"] for r in errors)
    assert f"${usd:,.4f}" in text
    for title in ("By status", "By user", "By workforce", "By sentiment"):
        assert title in text
    top_user = Counter(r["user"]["email"] for r in errors).most_common(1)[0][0]
    assert top_user in text


def test_outputs_go_to_stdout_only(timbal_emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli(["list", "--limit", "3", "--format", "jsonl"], timbal_emulator, cwd=tmp_path)
    assert len(result.stdout.splitlines()) == 3
    assert list(tmp_path.iterdir()) == []
