"""Crash and resume: ``kill -9`` a ``timbal-runs export`` at several random points in a
row, resuming each time. The finished file is exact, and the target path never holds a
partial file (a watcher thread looks at it the whole time).

Kill points are random amounts of bytes written (seeded, so a failure replays), so a
kill may land mid-page, between checkpoints, during a retry (the emulator also injects
faults) or before the first checkpoint exists.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.hardening.helpers_hard import SECRET_KEY
from tests.support.files import TargetWatcher, part_size
from tests.support.processes import run_cli, start_cli, wait_until
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import pending_export

pytestmark = pytest.mark.timeout(240)

KILLS = 4


def read_ids(target: Path, fmt: str) -> list[str]:
    if fmt == "jsonl":
        with target.open("rb") as fh:
            return [orjson.loads(line)["id"] for line in fh]
    if fmt == "csv":
        with target.open(newline="") as fh:
            return [row["id"] for row in csv.DictReader(fh)]
    pq = pytest.importorskip("pyarrow.parquet")
    ids: list[str] = pq.read_table(target, columns=["id"]).column("id").to_pylist()
    return ids


def kill_points(emu: Emulator, seed: str) -> Iterator[int]:
    """Increasing ``.part`` sizes spread over the export (every format spools at least 40%
    of the JSON Lines size, so every point comes well before the end)."""
    estimate = 0.4 * sum(len(orjson.dumps(run)) + 1 for run in emu.runs)
    rng = random.Random(seed)
    yield from sorted(int(rng.uniform(0.0, 0.7) * estimate) for _ in range(KILLS))


@pytest.mark.parametrize(
    ("fmt", "parallel"),
    [("jsonl", None), ("csv", 4), ("parquet", None)],
    ids=["jsonl", "csv-parallel", "parquet"],
)
def test_kill_9_again_and_again_then_resume_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path, fmt: str, parallel: int | None
) -> None:
    # 10 ms a page bounds from below how long an attempt takes to reach its kill point,
    # whatever the machine's speed: the later points come after a periodic checkpoint
    # (every 0.2 s), so a resume continues from saved progress, not always from zero.
    emu: Emulator = timbal_emulator_factory(
        runs=12_000,
        page_size=50,
        latency_ms=10,
        api_key=SECRET_KEY,
        fault_rate=0.1,
        fault_kinds=("429", "500", "502", "503", "drop"),
    )
    target = tmp_path / f"runs.{fmt}"
    args = ["export", "--out", str(target), "--max-retries", "100", "--until", "2026-01-01"]
    if parallel:
        args += ["--parallel", str(parallel)]
    killed_at: list[int] = []
    with TargetWatcher(target) as watcher:
        for number, point in enumerate(kill_points(emu, f"{fmt}-{parallel}")):
            process = start_cli(
                [*args, "--resume"] if number else args,
                emu.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:

                def reached(point: int = point, process: subprocess.Popen[bytes] = process) -> bool:
                    assert process.poll() is None, "the export ended before its kill point"
                    return part_size(target) >= point

                wait_until(reached, timeout=120, what=f"{point} bytes in {target}.part")
            finally:
                process.kill()
                process.wait(30)
            assert process.returncode == -signal.SIGKILL
            killed_at.append(part_size(target))
            assert not target.exists()
        assert watcher.sightings == [], "the target held a file before the export finished"
        saved = pending_export(target)
        assert saved is not None
        assert saved.count > 0
        done = run_cli([*args, "--resume"], emu.env(), timeout=180)
    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stderr
    assert len(killed_at) == KILLS
    assert read_ids(target, fmt) == [run["id"] for run in emu.runs]  # each run once, in order
    final = target.stat().st_size
    assert watcher.sightings
    assert set(watcher.sightings) == {final}  # whole, when it appeared
    manifest = json.loads(Path(f"{target}.manifest.json").read_text())
    assert manifest["count"] == len(emu.runs)
    assert manifest["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert sorted(os.listdir(tmp_path)) == [target.name, f"{target.name}.manifest.json"]
    assert pending_export(target) is None
    assert emu.stats.faults_total > 0
