"""``timbal-runs demo``: zero configuration, files written, next steps printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.processes import cli_env, run_cli

BLOCK_PYARROW = (
    "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None; "
    "from timbal_integrations.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_demo_needs_no_configuration(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    result = run_cli(["demo"], env=cli_env(), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    out_dir = tmp_path / "timbal-demo"
    jsonl = out_dir / "runs.jsonl"
    assert len(jsonl.read_bytes().splitlines()) == 3000
    assert pq.read_table(out_dir / "runs.parquet").num_rows == 3000
    manifest = json.loads((out_dir / "runs.jsonl.manifest.json").read_text())
    assert manifest["count"] == 3000
    text = result.stdout
    assert f"Exported 3,000 runs to {Path('timbal-demo') / 'runs.jsonl'}" in text
    assert "Runs             3,000" in text
    assert "By workforce" in text
    assert "timbal-runs emulator --port 8000" in text
    assert "export TIMBAL_API_HOST=http://127.0.0.1:8000" in text
    assert "export TIMBAL_API_KEY=demo-key" in text
    assert "export TIMBAL_ORG_ID=demo-org" in text
    assert "export TIMBAL_PROJECT_ID=demo-project" in text
    assert "timbal-mcp" in text
    conn_line = next(line for line in text.splitlines() if "AIRFLOW_CONN_TIMBAL_DEFAULT=" in line)
    conn = json.loads(conn_line.split("=", 1)[1].strip("'"))
    assert conn == {
        "conn_type": "timbal",
        "host": "http://127.0.0.1:8000",
        "password": "demo-key",
        "extra": {"org_id": "demo-org", "project_id": "demo-project"},
    }


def test_demo_without_pyarrow_skips_parquet_and_says_why(tmp_path: Path) -> None:
    result = run_cli(
        ["demo", "--dir", "out", "--runs", "500"],
        env=cli_env(),
        cwd=tmp_path,
        command=[sys.executable, "-c", BLOCK_PYARROW],
    )
    assert result.returncode == 0, result.stderr
    assert "Parquet skipped: pyarrow is not installed" in result.stdout
    assert "pip install 'timbal-integrations[parquet]'" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "runs.jsonl",
        "runs.jsonl.manifest.json",
    ]
