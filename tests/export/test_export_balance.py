"""Parallel exports over pieces that split: byte for byte a sequential export's file, on
uneven history, in both orders, through faults, and resumed after an interruption in
the middle of the splits (every unfinished piece continues from its own position)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.export.conftest import ClientFor
from timbal_integrations import RetryPolicy, RunQuery, TimbalClient, defaults
from timbal_integrations.emulator import FIXED_END, Emulator
from timbal_integrations.export import ExportProgress, export_runs, fetch
from timbal_integrations.export.checkpoint_load import read_checkpoint
from timbal_integrations.export.files import ExportPaths


def _interrupt_after(pages: int) -> Callable[[ExportProgress], None]:
    def progress(p: ExportProgress) -> None:
        if p.phase == "fetching" and p.pages >= pages:
            raise KeyboardInterrupt

    return progress


def _interrupted(
    client: TimbalClient, query: RunQuery, target: Path, *, parallel: int, stop_at: int
) -> None:
    """A parallel export of ``query`` interrupted after ``stop_at`` pages."""
    with pytest.raises(KeyboardInterrupt):
        export_runs(
            client,
            query,
            target,
            parallel=parallel,
            progress=_interrupt_after(stop_at),
            now=FIXED_END,
        )


def _sequential(emu: Emulator, client_for: ClientFor, target: Path, query: RunQuery) -> bytes:
    export_runs(client_for(emu), query, target, now=FIXED_END)
    data = target.read_bytes()
    target.unlink()
    return data


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("parallel", [8, "auto"])
def test_a_balanced_export_is_the_sequential_file_byte_for_byte(
    timbal_emulator_factory: Any,
    client_for: ClientFor,
    tmp_path: Path,
    fmt: str,
    order: str,
    parallel: int | str,
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=7, page_size=20, shape="growing")
    query = RunQuery(sort_order=order)
    target = tmp_path / f"runs.{fmt}"
    expected = _sequential(emu, client_for, target, query)
    result = export_runs(client_for(emu), query, target, parallel=parallel, now=FIXED_END)
    assert target.read_bytes() == expected
    assert result.count == 3000
    assert sorted(os.listdir(tmp_path)) == [f"runs.{fmt}", f"runs.{fmt}.manifest.json"]


def test_a_balanced_export_through_faults_is_exact(
    timbal_emulator_factory: Any, client_for: ClientFor, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(
        runs=3000,
        seed=8,
        page_size=20,
        shape="bursty",
        fault_rate=0.2,
        fault_kinds=("429", "500", "502", "drop"),
        retry_after=0,
    )
    target = tmp_path / "runs.jsonl"
    client = client_for(emu, retry_policy=RetryPolicy(max_retries=30))
    export_runs(client, RunQuery(), target, parallel=8, now=FIXED_END)
    with target.open("rb") as fh:
        assert [orjson.loads(line) for line in fh] == emu.runs
    assert emu.stats.faults_total > 10


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("stop_at", [6, 25, 60])
def test_an_export_interrupted_mid_split_resumes_every_piece(
    timbal_emulator_factory: Any, client_for: ClientFor, tmp_path: Path, order: str, stop_at: int
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=9, page_size=20, shape="growing")
    query = RunQuery(sort_order=order)
    target = tmp_path / "runs.jsonl"
    expected = _sequential(emu, client_for, target, query)
    _interrupted(client_for(emu), query, target, parallel=6, stop_at=stop_at)
    saved = read_checkpoint(ExportPaths(target))
    assert saved is not None
    assert saved.spools is not None
    assert saved.identity.parallel == 6
    # The pieces partition the frozen range, whatever was split before the interruption.
    ranges = sorted((s.since_ms, s.until_ms) for s in saved.spools)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    resumer = client_for(emu)
    result = export_runs(resumer, query, target, parallel=6, resume=True, now=FIXED_END)
    assert result.resumed
    assert target.read_bytes() == expected
    assert sorted(os.listdir(tmp_path)) == ["runs.jsonl", "runs.jsonl.manifest.json"]
    # Only what was not saved is fetched again (plus at most a page per piece).
    assert resumer.requests_made < 3000 // 20 + 2 * len(saved.spools)


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("parallel", [2, 3])
def test_a_piece_resumed_part_way_is_not_split_over_what_it_fetched(
    timbal_emulator_factory: Any,
    client_for: ClientFor,
    tmp_path: Path,
    order: str,
    parallel: int,
) -> None:
    # The runs fill the first tenth of the window: a piece resumed part-way has fetched
    # its first runs, and a split at the middle of its range (as if it had fetched
    # nothing) would hand them to a new piece to list again.
    emu = timbal_emulator_factory(runs=1000, seed=3, page_size=25)
    first = min(run["created_at"] for run in emu.runs)
    start = datetime.fromisoformat(first)
    query = RunQuery(sort_order=order, since=start, until=FIXED_END + 9 * (FIXED_END - start))
    target = tmp_path / "runs.jsonl"
    expected = _sequential(emu, client_for, target, query)
    _interrupted(client_for(emu), query, target, parallel=parallel, stop_at=3)
    result = export_runs(
        client_for(emu), query, target, parallel=parallel, resume=True, now=FIXED_END
    )
    assert result.resumed
    assert result.count == 1000
    assert target.read_bytes() == expected


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("nth", [1, 4])
def test_an_interruption_inside_a_split_keeps_the_last_whole_checkpoint(
    timbal_emulator_factory: Any,
    client_for: ClientFor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    order: str,
    nth: int,
) -> None:
    # Ctrl-C can land anywhere: here after a split has cut its piece's range and before
    # the new piece is recorded. Saving that state would lose the range handed over (a
    # real Ctrl-C lost 177 runs this way); the last checkpoint taken between pages stands.
    emu = timbal_emulator_factory(runs=3000, seed=11, page_size=20, shape="growing")
    query = RunQuery(sort_order=order)
    target = tmp_path / "runs.jsonl"
    expected = _sequential(emu, client_for, target, query)
    opened = fetch.open_temp
    splits = 0

    def open_temp(path: Any, *, truncate: bool = False) -> int:
        nonlocal splits
        if truncate:  # only a split opens a spool from nothing
            splits += 1
            if splits == nth:
                raise KeyboardInterrupt
        return opened(path, truncate=truncate)

    monkeypatch.setattr(fetch, "open_temp", open_temp)
    monkeypatch.setattr(defaults, "CHECKPOINT_INTERVAL", 0.0)  # a checkpoint every page
    with pytest.raises(KeyboardInterrupt):
        export_runs(client_for(emu), query, target, parallel=6, now=FIXED_END)
    monkeypatch.undo()
    saved = read_checkpoint(ExportPaths(target))
    assert saved is not None
    assert saved.spools is not None
    ranges = sorted((s.since_ms, s.until_ms) for s in saved.spools)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # nothing handed away
    result = export_runs(client_for(emu), query, target, parallel=6, resume=True, now=FIXED_END)
    assert result.resumed
    assert target.read_bytes() == expected
