"""The benchmark suite runs end to end on tiny data, so it cannot rot between `make bench`s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_suite_smoke_run() -> None:
    env = dict(os.environ, TIMBAL_RETRY_TESTING="1")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "smoke run" in out
    for section in ("1 export", "2 parallel", "3 memory", "4 mcp", "5 sync"):
        assert section in out, f"section {section!r} missing:\n{out}"
    # The exported ids of every parallel level equal the sequential export's.
    assert "ids identical: True" in out
    assert "ids identical: False" not in out
    assert "cold start / SDK import alone" in out
    assert "Traceback" not in result.stderr
