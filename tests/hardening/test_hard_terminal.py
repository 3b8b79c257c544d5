"""Issue 16, case 7: text from a server never reaches a terminal raw, and CSV can be made
safe for spreadsheets (on request only).

Error messages, table cells and summary cells show ESC, BEL, C1 controls and bidi
overrides as visible escapes; JSON, JSON Lines and CSV output stay byte-exact. With
``--csv-safe`` (``csv_safe=True``) text cells starting with ``=``, ``+``, ``-``, ``@``,
TAB or CR get a ``'`` before them, and the manifest says so; never without it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.hostile import HostileServer, Request, error, pages
from tests.support.processes import one_error_line, run_cli
from tests.support.runs import make_run
from timbal_integrations import QueryError, RunQuery
from timbal_integrations.export import export_runs
from timbal_integrations.sanitize import terminal_safe

pytestmark = pytest.mark.timeout(120)

HOSTILE_TEXT = "\x1b[2J\x1b]0;pwned\x07 boom \x9b31m \u202eexe.txt \u2066x\u2069"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u2069")

FORMULAS = {
    '=HYPERLINK("http://evil.test","click")': '\'=HYPERLINK("http://evil.test","click")',
    "+41 22 000 00 00": "'+41 22 000 00 00",
    "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd": "'@SUM(1+1)*cmd",
    "\tTAB": "'\tTAB",
    "\rCR": "'\rCR",
    "Ada = 1": "Ada = 1",  # only the first character counts
}


def _hostile_runs(request: Request) -> dict[str, Any]:
    runs = [
        make_run(
            i,
            status="succ\x07ess",
            user={"id": "u", "name": HOSTILE_TEXT, "email": "e@x.test"},
            workforce={"id": "w", "name": "\u202ereversed", "type": "agent\x1b[5m"},
            last_reaction_sentiment="\x1b[31mangry",
        )
        for i in range(3)
    ]
    return {"runs": runs, "next_page_token": None}


def _formula_runs(request: Request) -> dict[str, Any]:
    runs = [
        make_run(i, user={"id": f"u{i}", "name": name, "email": "e@x.test"}, cost_usd=-0.5)
        for i, name in enumerate(FORMULAS)
    ]
    return {"runs": runs, "next_page_token": None}


def _no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal"


def test_an_error_body_full_of_escapes_is_shown_escaped() -> None:
    body = json.dumps({"message": HOSTILE_TEXT}).encode()
    with HostileServer(error(500, body)).running() as server:
        result = run_cli(["list", "--max-retries", "0"], server)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    _no_raw_controls(line)
    assert "\\x1b[2J\\x1b]0;pwned\\x07 boom \\x9b31m \\u202eexe.txt" in line


@pytest.mark.parametrize(
    "command", [["list", "--format", "table"], ["summary", "--format", "table"]]
)
def test_table_cells_from_the_server_are_shown_escaped(command: list[str]) -> None:
    with HostileServer(pages(_hostile_runs)).running() as server:
        result = run_cli(command, server)
    assert result.returncode == 0, result.stderr
    _no_raw_controls(result.stdout + result.stderr)
    assert "succ\\x07ess" in result.stdout
    assert "\\u202ereversed" in result.stdout


def test_data_output_stays_byte_exact() -> None:
    with HostileServer(pages(_hostile_runs)).running() as server:
        jsonl = run_cli(["list", "--format", "jsonl"], server)
        as_csv = run_cli(["list", "--format", "csv"], server)
    rows = [orjson.loads(line) for line in jsonl.stdout.splitlines()]
    assert rows[0]["user"]["name"] == HOSTILE_TEXT
    assert HOSTILE_TEXT in as_csv.stdout  # CSV is data: the raw characters, unchanged


def test_the_sanitiser_keeps_ordinary_text_and_escapes_the_rest() -> None:
    assert terminal_safe("Ada Lovelace — café 日本 🚀") == "Ada Lovelace — café 日本 🚀"
    assert terminal_safe("a\x00b\x7fc\x85d\u200fe\u2028f") == "a\\x00b\\x7fc\\x85d\\u200fe\\u2028f"


# --------------------------------------------------------------------------- CSV-safe


def _csv_names(path_or_text: Path | str) -> list[str]:
    if isinstance(path_or_text, Path):
        with path_or_text.open(newline="") as fh:
            text = fh.read()
    else:
        text = path_or_text
    return [row["user_name"] for row in csv.DictReader(io.StringIO(text, newline=""))]


def test_csv_safe_export_prefixes_formula_cells_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"
    with HostileServer(pages(_formula_runs)).running() as server:
        result = run_cli(["export", "--out", str(target), "--csv-safe", "-q"], server)
        assert result.returncode == 0, result.stderr
        with target.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        manifest = json.loads(Path(f"{target}.manifest.json").read_text())
        plain = tmp_path / "plain.csv"
        assert run_cli(["export", "--out", str(plain), "-q"], server).returncode == 0
        plain_manifest = json.loads(Path(f"{plain}.manifest.json").read_text())
    assert [row["user_name"] for row in rows] == list(FORMULAS.values())
    assert {row["cost_usd"] for row in rows} == {"-0.5"}  # numbers are never touched
    assert manifest["csv_safe"] is True
    assert _csv_names(plain) == list(FORMULAS)  # never on by default
    assert plain_manifest["csv_safe"] is False


def test_csv_safe_listing_and_the_library(tmp_path: Path) -> None:
    with HostileServer(pages(_formula_runs)).running() as server:
        listed = run_cli(["list", "--format", "csv", "--csv-safe"], server)
        with server.client() as client:
            result = export_runs(client, RunQuery(), tmp_path / "r.csv", csv_safe=True)
    # (the process's output is read as text, whose newline translation turns CR into LF)
    expected = [name.replace("\r", "\n") for name in FORMULAS.values()]
    assert _csv_names(listed.stdout) == expected
    assert _csv_names(Path(result.path)) == list(FORMULAS.values())


def test_csv_safe_is_refused_where_there_is_no_csv(tmp_path: Path) -> None:
    with HostileServer(pages(_formula_runs)).running() as server:
        exported = run_cli(["export", "--out", str(tmp_path / "r.jsonl"), "--csv-safe"], server)
        listed = run_cli(["list", "--format", "jsonl", "--csv-safe"], server)
        with server.client() as client, pytest.raises(QueryError) as info:
            export_runs(client, RunQuery(), tmp_path / "r.parquet", csv_safe=True)
        assert server.count == 0
    assert exported.returncode == listed.returncode == 2
    assert "--csv-safe only applies to CSV" in one_error_line(exported.stderr)
    assert "--csv-safe only applies to --format csv" in one_error_line(listed.stderr)
    assert info.value.field == "csv_safe"


def test_resuming_with_another_csv_safe_setting_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"

    def stop(progress: Any) -> None:
        raise KeyboardInterrupt

    def many(request: Request) -> dict[str, Any]:
        number = request.number
        token = f"t{number}" if number < 3 else None
        return {"runs": [make_run(number)], "next_page_token": token}

    with HostileServer(pages(many)).running() as server, server.client() as client:
        with pytest.raises(KeyboardInterrupt):
            export_runs(client, RunQuery(), target, csv_safe=True, progress=stop)
        with pytest.raises(QueryError) as info:
            export_runs(client, RunQuery(), target, resume=True)
    assert "its CSV-safe setting was True, now False" in str(info.value)
