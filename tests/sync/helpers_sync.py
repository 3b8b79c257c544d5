"""Helpers of the sync tests: reading a dataset back, the emulator's truth, file times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from timbal_integrations import RunQuery
from timbal_integrations.emulator import FIXED_END, Emulator
from timbal_integrations.sync.dataset import StoredRun, decode_partition, view
from timbal_integrations.sync.store import partition_day

__all__ = [
    "START",
    "created",
    "get_requests",
    "list_requests",
    "mtimes",
    "old_final_runs",
    "read_dataset",
    "read_json",
    "stored",
    "truth",
]

START = FIXED_END
"""Where the live emulators of these tests start their clock (their history ends here)."""


def created(run: Mapping[str, Any]) -> datetime:
    """A run dict's ``created_at`` as an aware UTC datetime."""
    return datetime.fromisoformat(run["created_at"]).astimezone(UTC)


def stored(run: Mapping[str, Any]) -> StoredRun:
    """A run dict as a partition holds it."""
    return StoredRun(created(run), dict(run))


def read_dataset(root: Path, fmt: str) -> dict[str, Any]:
    """Every run of the dataset in ``root``, id → what the format keeps of it.

    Asserts what must hold of any dataset: each id once, each run in the partition of its
    UTC day, each partition sorted by ``created_at`` then ``id`` and in the format.
    """
    out: dict[str, Any] = {}
    runs_dir = root / "runs"
    if not runs_dir.exists():
        return out
    for folder in sorted(runs_dir.iterdir()):
        files = sorted(folder.iterdir())
        assert [f.name for f in files] == [f"runs.{fmt}"], files
        name = f"runs/{folder.name}/runs.{fmt}"
        day = partition_day(name)
        assert day is not None
        runs = decode_partition(files[0].read_bytes(), fmt, str(files[0]))
        assert runs, f"{name} is empty"
        assert [r.key() for r in runs] == sorted(r.key() for r in runs), f"{name} is not sorted"
        for run in runs:
            assert run.day == day, f"{run.id} of {run.day} is in {name}"
            assert run.id not in out, f"{run.id} appears twice"
            out[run.id] = view(run, fmt)
    return out


def truth(emu: Emulator, fmt: str, query: RunQuery | None = None) -> dict[str, Any]:
    """The emulator's runs now (those ``query`` matches), id → what ``fmt`` keeps."""
    runs: Iterable[Mapping[str, Any]] = emu.runs
    if query is not None:
        runs = [run for run in runs if query.matches(run)]
    return {run["id"]: view(stored(run), fmt) for run in runs}


def mtimes(root: Path) -> dict[str, int]:
    """Every partition file and its modification time (ns)."""
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for path in sorted(root.glob("runs/dt=*/runs.*"))
    }


def read_json(path: Path) -> Any:
    """A JSON file, decoded."""
    return orjson.loads(path.read_bytes())


def list_requests(emu: Emulator) -> int:
    """Requests for a list page the emulator logged."""
    return sum(1 for r in emu.request_log if r.endpoint == "list")


def get_requests(emu: Emulator) -> list[str]:
    """The run ids the emulator was asked for by id, in order."""
    return [r.run_id or "" for r in emu.request_log if r.endpoint == "get"]


def old_final_runs(emu: Emulator, older_than: timedelta, status: str | None = None) -> list[str]:
    """Runs created more than ``older_than`` before the clock, already ended, oldest first."""
    now = emu.clock.now() if emu.clock is not None else START
    return [
        str(run["id"])
        for run in reversed(emu.runs)
        if created(run) < now - older_than
        and run["status"] != "running"
        and (status is None or run["status"] == status)
    ]
