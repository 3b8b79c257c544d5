"""Interrupted exports (Ctrl-C, API failures, torn writes) resume to exactly-once files."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.export.conftest import ClientFor
from tests.export.helpers_export import NOW, jsonl_ids
from timbal_integrations import APIStatusError, ExportError, QueryError, RunQuery, TimbalError
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import (
    FORMATS,
    ExportProgress,
    export_runs,
    manifest_path,
    pending_export,
)

pq = pytest.importorskip("pyarrow.parquet")

PAGE = 50  # the emulator's page size


def _ids(path: Path, fmt: str) -> list[str]:
    if fmt == "jsonl":
        return jsonl_ids(path)
    if fmt == "csv":
        lines = path.read_text().splitlines()[1:]
        return [line.split(",", 1)[0] for line in lines]
    return list(pq.read_table(path, columns=["id"]).column("id").to_pylist())


def _interrupt_after(pages: int) -> Callable[[ExportProgress], None]:
    def progress(p: ExportProgress) -> None:
        if p.phase == "fetching" and p.pages >= pages:
            raise KeyboardInterrupt

    return progress


def _leftovers(target: Path) -> set[str]:
    return {p.name for p in target.parent.iterdir()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_ctrl_c_then_resume_continues_where_it_stopped(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / f"runs.{fmt}"
    with pytest.raises(KeyboardInterrupt) as info:
        export_runs(client_for(timbal_emulator), RunQuery(), target, progress=_interrupt_after(7))
    assert not target.exists()
    assert "resume" in " ".join(getattr(info.value, "__notes__", []))
    pending = pending_export(target)
    assert pending is not None
    assert pending.count == 7 * PAGE
    assert pending.format == fmt
    assert _leftovers(target) == {f"runs.{fmt}.part", f"runs.{fmt}.part.json"}

    resumer = client_for(timbal_emulator)
    result = export_runs(resumer, RunQuery(), target, resume=True)
    assert result.resumed
    assert result.count == 3000
    assert _ids(target, fmt) == [r["id"] for r in timbal_emulator.runs]
    # Only the pages not yet saved were fetched again.
    assert resumer.requests_made == 3000 // PAGE - 7
    assert pending_export(target) is None
    assert _leftovers(target) == {f"runs.{fmt}", f"runs.{fmt}.manifest.json"}


def test_api_failure_after_retries_then_resume(
    timbal_emulator_factory: Any, client_for: ClientFor, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(runs=2000)
    target = tmp_path / "runs.jsonl"

    def break_the_api(p: ExportProgress) -> None:
        if p.pages == 5:
            emu.configure(fault_rate=1.0, fault_kinds=("500",))

    with pytest.raises(APIStatusError) as info:
        export_runs(
            client_for(emu, max_retries=2), RunQuery(), target, progress=break_the_api, now=NOW
        )
    assert info.value.status_code == 500
    assert any("--resume" in note for note in getattr(info.value, "__notes__", []))
    assert not target.exists()
    pending = pending_export(target)
    assert pending is not None
    assert pending.count >= 5 * PAGE

    emu.configure(fault_rate=0.0)
    result = export_runs(client_for(emu), RunQuery(), target, resume=True)
    assert result.resumed
    assert jsonl_ids(target) == [r["id"] for r in emu.runs]
    assert result.until == NOW + timedelta(milliseconds=1)  # the first attempt's window


def test_resume_cuts_a_half_written_page(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    with pytest.raises(KeyboardInterrupt):
        export_runs(client_for(timbal_emulator), RunQuery(), target, progress=_interrupt_after(3))
    with open(str(target) + ".part", "ab") as part:  # a torn write past the checkpoint
        part.write(b'{"id": "01TORN", "idempotency_key": "x", "sta')
    export_runs(client_for(timbal_emulator), RunQuery(), target, resume=True)
    ids = jsonl_ids(target)
    assert ids == [r["id"] for r in timbal_emulator.runs]
    assert len(set(ids)) == len(ids)


def test_parallel_export_resumes_in_order(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    with pytest.raises(KeyboardInterrupt):
        export_runs(
            client_for(timbal_emulator),
            RunQuery(),
            target,
            parallel=4,
            progress=_interrupt_after(20),
            now=NOW,
        )
    assert not target.exists()
    result = export_runs(
        client_for(timbal_emulator), RunQuery(), target, parallel=4, resume=True, now=NOW
    )
    assert result.resumed
    assert jsonl_ids(target) == [r["id"] for r in timbal_emulator.runs]


def test_parquet_interrupted_while_converting_refetches_nothing(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.parquet"

    def stop_converting(p: ExportProgress) -> None:
        if p.phase == "converting":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_runs(client_for(timbal_emulator), RunQuery(), target, progress=stop_converting)
    assert not target.exists()
    resumer = client_for(timbal_emulator)
    result = export_runs(resumer, RunQuery(), target, resume=True)
    assert resumer.requests_made == 0
    assert result.count == 3000
    assert _ids(target, "parquet") == [r["id"] for r in timbal_emulator.runs]


def test_resume_refuses_a_different_export(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    client = client_for(timbal_emulator)
    with pytest.raises(KeyboardInterrupt):
        export_runs(client, RunQuery(status="success"), target, progress=_interrupt_after(2))
    with pytest.raises(QueryError, match=r"^resume: .*different export.*filters") as info:
        export_runs(client, RunQuery(status="error"), target, resume=True)
    assert info.value.field == "resume"
    with pytest.raises(QueryError, match=r"^resume: .*format was 'jsonl', now 'csv'"):
        export_runs(client, RunQuery(status="success"), target, format="csv", resume=True)
    with pytest.raises(QueryError, match=r"^resume: .*parallel"):
        export_runs(client, RunQuery(status="success"), target, parallel=2, resume=True)
    # The partial export is still there for the right resume.
    pending = pending_export(target)
    assert pending is not None
    assert pending.count == 2 * PAGE
    assert pending.filters == {"status": "success"}


def test_without_resume_a_stale_partial_export_is_discarded(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = tmp_path / "runs.csv"
    client = client_for(timbal_emulator)
    with pytest.raises(KeyboardInterrupt):
        export_runs(client, RunQuery(), target, progress=_interrupt_after(4))
    with caplog.at_level(logging.WARNING, logger="timbal_integrations.export"):
        result = export_runs(client, RunQuery(), target)
    assert not result.resumed
    assert result.count == 3000
    assert "discarding" in caplog.text
    assert "200 runs" in caplog.text
    assert _ids(target, "csv") == [r["id"] for r in timbal_emulator.runs]


def test_resume_with_nothing_to_resume_starts_fresh(
    client_for: ClientFor, tmp_path: Path, timbal_emulator: Emulator
) -> None:
    target = tmp_path / "runs.jsonl"
    result = export_runs(client_for(timbal_emulator), RunQuery(), target, resume=True, limit=60)
    assert not result.resumed
    assert result.count == 60


def test_resume_honours_the_limit(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    with pytest.raises(KeyboardInterrupt):
        export_runs(
            client_for(timbal_emulator), RunQuery(), target, limit=475, progress=_interrupt_after(3)
        )
    result = export_runs(client_for(timbal_emulator), RunQuery(), target, limit=475, resume=True)
    assert result.count == 475
    assert jsonl_ids(target) == [r["id"] for r in timbal_emulator.runs[:475]]


def test_a_second_export_to_the_same_target_is_refused(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    fd = os.open(str(target) + ".part", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running export holds it
        with pytest.raises(ExportError, match="another export is writing"):
            export_runs(client_for(timbal_emulator), RunQuery(), target)
    finally:
        os.close(fd)
    assert not target.exists()


def test_tens_of_thousands_of_runs_with_faults_are_exact(
    timbal_emulator_factory: Any, client_for: ClientFor, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(runs=20_000, fault_rate=0.15)
    client = client_for(emu, max_retries=40)
    expected = [r["id"] for r in emu.runs]
    sequential = export_runs(client, RunQuery(), tmp_path / "seq.jsonl", now=NOW)
    assert jsonl_ids(tmp_path / "seq.jsonl") == expected
    parallel = export_runs(client, RunQuery(), tmp_path / "par.jsonl", parallel=4, now=NOW)
    assert jsonl_ids(tmp_path / "par.jsonl") == expected
    assert sequential.sha256 == parallel.sha256
    assert emu.stats.faults_total > 50
    manifest = Path(manifest_path(tmp_path / "par.jsonl"))
    assert manifest.exists()


def test_errors_are_timbal_errors(
    client_for: ClientFor, tmp_path: Path, timbal_emulator: Emulator
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TimbalError):
        export_runs(client_for(timbal_emulator), RunQuery(), blocker / "runs.jsonl")
