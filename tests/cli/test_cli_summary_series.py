"""``timbal-runs summary --by hour|day|week``: the series in JSON equals a recomputation
from the emulator's runs; the table draws it as bars and sparklines, coloured only on a
terminal; a series past the bound is refused before any request."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.cli.helpers_cli import on_terminal, plain
from tests.support.processes import cli_env, one_error_line, run_cli
from timbal_integrations.emulator import Emulator

SINCE = "2025-12-10T00:00:00Z"
UNTIL = "2025-12-24T12:00:00Z"


def test_json_series_equals_a_recomputation(timbal_emulator: Emulator) -> None:
    args = ["summary", "--by", "day", "--since", SINCE, "--until", UNTIL, "--format", "json"]
    result = run_cli(args, timbal_emulator)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["bucket"] == "day"
    series = doc["series"]
    start = datetime(2025, 12, 10, tzinfo=UTC)
    assert [b["start"] for b in series] == [
        (start + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(15)
    ]
    assert series[-1]["partial"] is True  # until falls inside the last day
    assert not any(b["partial"] for b in series[:-1])
    end = datetime(2025, 12, 24, 12, tzinfo=UTC)
    per_day: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for run in timbal_emulator.runs:
        created = datetime.fromisoformat(run["created_at"])
        if start <= created < end:
            day = created.astimezone(UTC).strftime("%Y-%m-%dT00:00:00Z")
            per_day[day] += 1
            errors[day] += run["status"] == "error"
    for b in series:
        assert b["total"] == per_day[b["start"]]
        assert b["error_count"] == errors[b["start"]]
    assert sum(b["total"] for b in series) == doc["total"]


def test_series_fetched_in_parallel_equals_the_sequential_one(timbal_emulator: Emulator) -> None:
    # --by with --parallel N|auto: pieces arrive from several requests at once, and the
    # fold's buckets and exact sums come out the same as from one sequential listing.
    base = ["summary", "--by", "day", "--since", SINCE, "--until", UNTIL, "--format", "json"]
    docs = []
    for parallel in ([], ["--parallel", "4"], ["--parallel", "auto"]):
        result = run_cli([*base, *parallel], timbal_emulator)
        assert result.returncode == 0, result.stderr
        docs.append(json.loads(result.stdout))
    assert docs[0]["total"] > 0
    assert docs[1] == docs[0]
    assert docs[2] == docs[0]


def test_weeks_start_on_monday(timbal_emulator: Emulator) -> None:
    result = run_cli(["summary", "--by", "week", "--format", "json"], timbal_emulator)
    assert result.returncode == 0, result.stderr
    for b in json.loads(result.stdout)["series"]:
        assert datetime.fromisoformat(b["start"]).isoweekday() == 1


def test_the_table_draws_the_series_plainly_when_piped(timbal_emulator: Emulator) -> None:
    args = ["summary", "--by", "day", "--since", SINCE, "--until", UNTIL, "--format", "table"]
    result = run_cli(args, timbal_emulator, env=cli_env(timbal_emulator, PYTHONIOENCODING="utf-8"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out
    assert "By day (UTC) · 15 buckets" in out
    for label in ("  runs    ", "  errors  ", "  cost    "):
        assert label in out
    rows = [line for line in out.splitlines() if line.startswith("  2025-12-")]
    assert len(rows) == 15
    assert rows[-1].startswith("  2025-12-24*")
    assert all("█" in row for row in rows)
    ascii_out = run_cli(
        args, timbal_emulator, env=cli_env(timbal_emulator, PYTHONIOENCODING="ascii")
    )
    assert ascii_out.returncode == 0, ascii_out.stderr
    assert ascii_out.stdout.isascii()
    assert "#" in ascii_out.stdout


def test_a_terminal_gets_a_coloured_chart_even_without_by(timbal_emulator: Emulator) -> None:
    env = cli_env(timbal_emulator, PYTHONIOENCODING="utf-8")
    env.pop("NO_COLOR", None)
    code, out, err = on_terminal(["summary", "--since", SINCE, "--until", UNTIL], env)
    assert code == 0, err
    assert "\x1b[1mBy day (UTC) · 15 buckets\x1b[0m" in out
    assert "\x1b[31m▒" in out  # errors in red
    code, quiet, err = on_terminal(
        ["summary", "--since", SINCE, "--until", UNTIL], {**env, "NO_COLOR": "1"}
    )
    assert code == 0, err
    assert "\x1b" not in quiet
    assert quiet == plain(out)
    # A short window is drawn by the hour; an open one from the earliest matching run.
    code, hourly, _ = on_terminal(
        ["summary", "--since", "2025-12-20", "--until", "2025-12-21"], env
    )
    assert "By hour (UTC) · 24 buckets" in plain(hourly)
    code, whole, _ = on_terminal(["summary", "--until", "2026-01-01"], env)
    assert "By day (UTC) · 30 buckets" in plain(whole)


def test_too_many_buckets_is_refused_before_any_request(timbal_emulator: Emulator) -> None:
    timbal_emulator.request_log.clear()
    args = ["summary", "--by", "hour", "--since", "2025-01-01", "--until", "2025-12-31"]
    result = run_cli(args, timbal_emulator)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("timbal-runs: error: --by: ")
    assert "more than 1,000" in line
    assert len(timbal_emulator.request_log) == 0
    bad = run_cli(["summary", "--by", "minute"], timbal_emulator)
    assert bad.returncode == 2
    assert "--by" in one_error_line(bad.stderr)
