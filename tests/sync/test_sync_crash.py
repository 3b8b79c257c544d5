"""``kill -9`` a real ``timbal-runs sync`` at points chosen deterministically, again and
again, then sync once more: the dataset is exact, and byte for byte the dataset of a
sync that was never killed.

Two kinds of kill point, in a seeded order:

- from outside, ``SIGKILL`` once the emulator has served the N-th list page or the N-th
  run by id (the emulator answers each request after 15 ms, so the process is still
  fetching when it is killed, whatever the machine's speed);
- from inside, ``TIMBAL_SYNC_KILL_AT=POINT:N``: the process sends itself ``SIGKILL`` the
  N-th time it reaches a point of the commit (a partition staged, the journal written, a
  partition put in place, the manifest or the state replaced).

After every kill the dataset a reader sees is whole: every partition is one the manifest
of this sync or of the one before describes, and the manifest agrees with the state,
or a journal is there to finish the job.
"""

from __future__ import annotations

import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import BIN, cli_env, run_cli, wait_until
from tests.sync.helpers_sync import created, read_dataset, read_json, truth
from timbal_integrations.emulator import Emulator

pytestmark = pytest.mark.timeout(300)

KillPoint = tuple[str, int]
"""``("list", N)``/``("get", N)`` from outside; a commit point of the process itself."""

# Before the commit a killed sync leaves the dataset as it was, so the next attempt has
# the same work to do and every such point is reached again; after the commit the work is
# done (the next sync finishes it), so each sync ends with one commit point.
BEFORE_COMMIT_FIRST: list[KillPoint] = [("list", 9), ("staged", 4)]
BEFORE_COMMIT: list[KillPoint] = [("get", 2), ("list", 2), ("staged", 1)]
AFTER_COMMIT: list[KillPoint] = [("journal", 1), ("partition", 1), ("manifest", 1), ("state", 1)]


def served(emu: Emulator, endpoint: str) -> int:
    return sum(1 for r in emu.request_log if r.endpoint == endpoint and r.status == 200)


def killed_sync(emu: Emulator, out: Path, point: KillPoint) -> None:
    """Run a sync and kill it at ``point``; assert that it was killed there."""
    kind, nth = point
    extra = {} if kind in ("list", "get") else {"TIMBAL_SYNC_KILL_AT": f"{kind}:{nth}"}
    emu.request_log.clear()
    process = subprocess.Popen(
        [str(BIN), "sync", "--out", str(out), "--quiet"],
        env=cli_env(emu, **extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if kind in ("list", "get"):
            endpoint = kind

            def reached() -> bool:
                assert process.poll() is None, f"the sync ended before {point}"
                return served(emu, endpoint) >= nth

            wait_until(reached, timeout=120, what=f"{nth} {kind} requests")
            process.kill()
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode == -signal.SIGKILL, (point, process.stderr and process.stderr.read())
    if process.stderr is not None:
        process.stderr.close()


def check_whole(out: Path) -> None:
    """What a reader sees after a kill: with no journal pending, the manifest describes
    exactly the partitions present, byte for byte, and agrees with the state."""
    if (out / ".sync-journal.json").exists() or not (out / "state.json").exists():
        return
    import hashlib

    manifest = read_json(out / "manifest.json")
    present = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.glob("runs/dt=*/runs.*")
    }
    assert present == {e["path"]: e["sha256"] for e in manifest["partitions"].values()}
    assert read_json(out / "state.json")["high_water_mark"] is not None


def clean_sync(emu: Emulator, out: Path) -> dict[str, Any]:
    done = run_cli(["sync", "--out", str(out), "--json", "--quiet"], emu, timeout=180)
    assert done.returncode == 0, done.stderr
    import orjson

    report: dict[str, Any] = orjson.loads(done.stdout)
    return report


def partitions(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("runs/dt=*/*"))}


def test_kill_9_at_many_points_then_sync_is_exact(
    timbal_emulator_factory: Any, tmp_path: Path
) -> None:
    # A frozen emulator whose history ends now (the command line syncs up to the wall
    # clock); the test changes runs with its hooks between syncs.
    end = datetime.now(UTC).replace(microsecond=0)
    emu: Emulator = timbal_emulator_factory(
        runs=3000, seed=11, end=end, page_size=25, latency_ms=15
    )
    rng = random.Random("sync-kill-9")
    out = tmp_path / "data"
    reference = tmp_path / "reference"  # synced alongside, never killed
    old = [r["id"] for r in reversed(emu.runs) if created(r) < end - timedelta(days=10)]
    held = [old[i] for i in (3, 40, 200, 350, 500, 650, 800, 950)]  # open, older than the window
    for run_id in held:
        emu.hold_running(run_id)
    after_commit = rng.sample(AFTER_COMMIT, len(AFTER_COMMIT))  # one of each, over 4 syncs

    for point in [*rng.sample(BEFORE_COMMIT_FIRST, 2), after_commit[0]]:
        killed_sync(emu, out, point)
        check_whole(out)
    clean_sync(emu, out)
    clean_sync(emu, reference)
    assert read_dataset(out, "jsonl") == truth(emu, "jsonl")
    assert partitions(out) == partitions(reference)

    recent = emu.runs[:300]
    for round_number in range(3):
        # The runs change: held runs end or vanish, reactions, prices, new and gone runs.
        emu.hold_running(held[round_number], False)
        emu.remove_run(held[4 + round_number])
        emu.add_reaction(recent[10 + round_number]["id"], "negative", "Not what I asked.")
        emu.update_run(recent[50 + round_number]["id"], cost_usd=2.5, duration_ms=999)
        emu.remove_run(recent[100 + round_number]["id"])
        emu.hold_running(recent[200 + round_number]["id"])
        for point in [*rng.sample(BEFORE_COMMIT, 3), after_commit[1 + round_number]]:
            killed_sync(emu, out, point)
            check_whole(out)
        report = clean_sync(emu, out)
        clean_sync(emu, reference)
        assert read_dataset(out, "jsonl") == truth(emu, "jsonl")
        assert partitions(out) == partitions(reference)
        assert report["runs"] == len(emu.runs)
        assert report["recovered"] is True  # the killed sync had committed: finished first
    assert not (out / ".sync-journal.json").exists()
    assert not (out / ".sync-staging").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".sync.lock", "manifest.json", "runs", "state.json"]
    )
