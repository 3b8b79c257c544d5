"""The exact statistics of what an export wrote: per status, running, errors, cost.

They are tallied from the pages as they are written (sequential and parallel paths), kept
in the checkpoint, and reported by ``ExportResult`` and the manifest; a resumed export
reports the same numbers as one that ran through.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.export.conftest import ClientFor
from tests.export.helpers_export import NOW, jsonl_rows
from tests.support.truth import created, stats
from timbal_integrations import RunQuery
from timbal_integrations._exact import ExactSum
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import FORMATS, ExportProgress, ExportResult, export_runs

pytest.importorskip("pyarrow.parquet")


def _stats(result: ExportResult) -> dict[str, Any]:
    return {
        "count": result.count,
        "status_counts": result.status_counts,
        "running_count": result.running_count,
        "error_count": result.error_count,
        "cost_usd": result.cost_usd,
        "cost_credits": result.cost_credits,
    }


def _manifest_stats(result: ExportResult) -> dict[str, Any]:
    assert result.manifest_path is not None
    manifest = json.loads(Path(result.manifest_path).read_text())
    return {key: manifest[key] for key in _stats(result)}


def _interrupt_after(pages: int) -> Callable[[ExportProgress], None]:
    def progress(p: ExportProgress) -> None:
        if p.phase == "fetching" and p.pages >= pages:
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize("fmt", FORMATS)
def test_fresh_export_reports_exact_statistics(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path, fmt: str
) -> None:
    result = export_runs(client_for(timbal_emulator), RunQuery(), tmp_path / f"r.{fmt}", now=NOW)
    truth = stats(timbal_emulator.runs)
    assert truth["running_count"] > 0
    assert truth["error_count"] > 0
    assert _stats(result) == truth
    assert _manifest_stats(result) == truth
    assert result.to_dict()["status_counts"] == truth["status_counts"]


def test_statistics_follow_the_filters_and_the_limit(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    client = client_for(timbal_emulator)
    since = "2025-12-20T00:00:00Z"
    query = RunQuery(since=since, workforce_id="wf_sales")
    result = export_runs(client, query, tmp_path / "sales.jsonl", now=NOW)
    expected = [
        run
        for run in timbal_emulator.runs
        if run["workforce"]["id"] == "wf_sales" and created(run) >= created({"created_at": since})
    ]
    assert _stats(result) == stats(expected)
    # A limit cuts a page: only the runs written are counted, exactly those of the file.
    limited = export_runs(client, RunQuery(), tmp_path / "limited.jsonl", limit=73, now=NOW)
    assert _stats(limited) == stats(jsonl_rows(tmp_path / "limited.jsonl"))
    assert _stats(limited) == stats(timbal_emulator.runs[:73])
    # Nothing matches: zeros, not missing keys.
    empty = export_runs(client, RunQuery(status="nope"), tmp_path / "none.csv", now=NOW)
    assert _stats(empty) == stats([])
    assert _manifest_stats(empty) == stats([])


def test_parallel_export_reports_the_sequential_statistics(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    sequential = export_runs(client_for(timbal_emulator), RunQuery(), tmp_path / "s.csv", now=NOW)
    parallel = export_runs(
        client_for(timbal_emulator), RunQuery(), tmp_path / "p.csv", parallel=4, now=NOW
    )
    assert _stats(parallel) == _stats(sequential) == stats(timbal_emulator.runs)
    assert _manifest_stats(parallel) == stats(timbal_emulator.runs)


@pytest.mark.parametrize(("fmt", "parallel"), [("jsonl", None), ("parquet", None), ("csv", 4)])
def test_resumed_export_reports_the_same_statistics(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    fmt: str,
    parallel: int | None,
) -> None:
    target = tmp_path / f"runs.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        export_runs(
            client_for(timbal_emulator),
            RunQuery(),
            target,
            parallel=parallel,
            progress=_interrupt_after(9),
            now=NOW,
        )
    checkpoint = json.loads((tmp_path / f"runs.{fmt}.part.json").read_text())
    assert sum(checkpoint["stats"]["status_counts"].values()) == checkpoint["count"] > 0
    result = export_runs(
        client_for(timbal_emulator), RunQuery(), target, parallel=parallel, resume=True, now=NOW
    )
    assert result.resumed
    assert _stats(result) == stats(timbal_emulator.runs)
    assert _manifest_stats(result) == stats(timbal_emulator.runs)


def test_export_that_died_after_finishing_reports_its_statistics(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed between finishing the file and renaming it: the resume publishes the file
    from the checkpoint alone, statistics included, without a request."""
    target = tmp_path / "runs.jsonl"
    real_replace = os.replace

    def die_before_publishing(src: Any, dst: Any) -> None:
        if str(dst) == str(target):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_before_publishing)
    with pytest.raises(KeyboardInterrupt):
        export_runs(client_for(timbal_emulator), RunQuery(status="error"), target, now=NOW)
    monkeypatch.setattr(os, "replace", real_replace)
    resumer = client_for(timbal_emulator)
    result = export_runs(resumer, RunQuery(status="error"), target, resume=True, now=NOW)
    assert result.resumed
    assert resumer.requests_made == 0
    errors = [run for run in timbal_emulator.runs if run["status"] == "error"]
    assert _stats(result) == stats(errors)
    assert result.status_counts == {"error": len(errors)}


_COST = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(chunks=st.lists(st.lists(_COST | st.sampled_from([0.1, 1e-300, 1e11, -1e11])), max_size=8))
def test_exact_running_total_is_fsum_of_everything(chunks: list[list[float]]) -> None:
    """Folding pages into the kept partials (through their hex form, as the checkpoint
    stores them) ends at the correctly rounded sum of every value."""
    total = ExactSum()
    for chunk in chunks:
        total.add_all(chunk)
        total = ExactSum(float.fromhex(x.hex()) for x in total.partials)
        assert len(total.partials) < 60
    assert total.value() == math.fsum(v for chunk in chunks for v in chunk)


def test_exact_running_total_beats_a_rounded_running_total() -> None:
    """Where adding page totals would lose the small costs, the kept partials do not."""
    pages = [[1e16], [1.0], [1.0], [-1e16]]
    rounded = 0.0
    total = ExactSum()
    for page in pages:
        rounded = math.fsum([rounded, *page])
        total = ExactSum([*total.partials, *page])
    assert rounded == 0.0
    assert total.value() == 2.0 == math.fsum(v for page in pages for v in page)
    assert ExactSum([math.inf, 1.0]).value() == math.inf
    assert ExactSum(ExactSum([math.inf, 1.0]).partials).value() == math.inf
    assert math.isnan(ExactSum([math.inf, -math.inf, 2.0]).value())
