"""The sync client is generated from the async one; a stale generated file fails lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "unasync.py"
SOURCE = ROOT / "timbal_integrations" / "client" / "_async.py"
TARGET = ROOT / "timbal_integrations" / "client" / "_sync.py"


def unasync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_the_committed_sync_client_is_up_to_date() -> None:
    result = unasync("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_on_a_stale_file_and_shows_the_difference(tmp_path: Path) -> None:
    stale = tmp_path / "_sync.py"
    text = TARGET.read_text()
    assert "    def close(self) -> None:" in text
    stale.write_text(text.replace("    def close(self) -> None:", "    def shut(self) -> None:"))
    result = unasync("--check", str(SOURCE), str(stale))
    assert result.returncode == 1
    assert "is stale" in result.stderr
    assert "-    def shut(self) -> None:" in result.stdout
    assert "+    def close(self) -> None:" in result.stdout
    missing = unasync("--check", str(SOURCE), str(tmp_path / "absent.py"))
    assert missing.returncode == 1


def test_generating_writes_what_check_expects(tmp_path: Path) -> None:
    target = tmp_path / "_sync.py"
    written = unasync(str(SOURCE), str(target))
    assert written.returncode == 0, written.stderr
    assert target.read_text() == TARGET.read_text()
    assert target.read_text().startswith("# Generated from _async.py by scripts/unasync.py")
    assert "async " not in target.read_text()
    assert "await " not in target.read_text()
    assert unasync("--check", str(SOURCE), str(target)).returncode == 0
