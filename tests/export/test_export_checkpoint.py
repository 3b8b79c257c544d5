"""The checkpoint is typed and checked on load: a damaged one is an ExportError naming
the bad entry when resuming, never a traceback from deep inside an export."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.export.conftest import ClientFor
from tests.export.helpers_export import jsonl_ids
from timbal_integrations import ExportError, RunQuery
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import ExportProgress, export_runs, pending_export
from timbal_integrations.export.checkpoint import (
    CHECKPOINT_VERSION,
    Checkpoint,
    Finished,
    Identity,
    SpoolState,
)
from timbal_integrations.export.checkpoint_load import parse_checkpoint, read_checkpoint
from timbal_integrations.export.files import ExportPaths

IDENTITY = Identity(
    format="jsonl",
    filters={"status": "error"},
    parallel=4,
    limit=None,
    base_url="http://127.0.0.1:1",
    org_id="o",
    project_id="p",
)


def _interrupt_after(pages: int) -> Callable[[ExportProgress], None]:
    def progress(p: ExportProgress) -> None:
        if p.phase == "fetching" and p.pages >= pages:
            raise KeyboardInterrupt

    return progress


def _interrupted(emu: Emulator, client_for: ClientFor, target: Path) -> dict[str, Any]:
    """An export stopped after three pages; its checkpoint's JSON."""
    with pytest.raises(KeyboardInterrupt):
        export_runs(client_for(emu), RunQuery(), target, progress=_interrupt_after(3))
    data: dict[str, Any] = orjson.loads(Path(f"{target}.part.json").read_bytes())
    return data


def test_the_json_form_round_trips() -> None:
    state = Checkpoint(
        identity=IDENTITY,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        windows=[(1, 2), (2, None)],
        since_ms=1,
        count=10,
        offset=100,
        first_us=-5,
        spools=[
            SpoolState("tok", 10, 1, False, id=0, since_ms=5, until_ms=8, window_until_ms=9),
            SpoolState(
                None, 20, 2, True, id=2, since_ms=8, until_ms=9, window_until_ms=9, sha256="ab" * 32
            ),
        ],
        sha256="ef" * 32,
        next_piece=3,
        base_offset=7,
        concatenated=True,
        finished=Finished(bytes=100, sha256="cd" * 32),
    )
    data = orjson.loads(orjson.dumps(state.to_json()))
    assert data["version"] == CHECKPOINT_VERSION
    assert parse_checkpoint(data, path="x") == state


def test_a_checkpoint_of_the_first_format_is_refused_naming_its_version() -> None:
    # Version 1 carried no hashes of what it covered: it cannot be checked, so a resume
    # starts over rather than trust it.
    data = Checkpoint(identity=IDENTITY, started_at=datetime.now(UTC)).to_json()
    data["version"] = 1
    with pytest.raises(ExportError) as info:
        parse_checkpoint(data, path="x")
    assert info.value.field == "version"
    assert "checkpoint version 1; this one reads 2" in str(info.value)


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda d: d.pop("count"), "count"),
        (lambda d: d.update(count="many"), "count"),
        (lambda d: d.update(offset=-3), "offset"),
        (lambda d: d.update(fetched_all=1), "fetched_all"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(started_at="last tuesday"), "started_at"),
        (lambda d: d["identity"].pop("format"), "identity.format"),
        (lambda d: d.update(identity=[]), "identity"),
        (lambda d: d.update(windows=[[1, 2, 3]]), "windows[0]"),
        (lambda d: d.update(windows=[[1, "x"]]), "windows[0].until"),
        (lambda d: d.update(spools=[{"token": None, "offset": 0, "count": 0}]), "spools[0].done"),
        (lambda d: d.update(finished={"bytes": 3}), "finished.sha256"),
        (lambda d: d.update(token=7), "token"),
    ],
)
def test_resuming_from_a_damaged_checkpoint_names_the_entry(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    damage: Callable[[dict[str, Any]], Any],
    field: str,
) -> None:
    target = tmp_path / "runs.jsonl"
    data = _interrupted(timbal_emulator, client_for, target)
    damage(data)
    Path(f"{target}.part.json").write_bytes(orjson.dumps(data))
    with pytest.raises(ExportError) as info:
        export_runs(client_for(timbal_emulator), RunQuery(), target, resume=True)
    error = info.value
    assert error.field == field
    assert error.path == str(ExportPaths(target).checkpoint)
    assert f": {field}: " in str(error)
    assert "without resume" in str(error)
    assert not target.exists()
    assert pending_export(target) is None  # unreadable: nothing to offer


def test_a_checkpoint_that_is_not_json(
    timbal_emulator: Emulator, client_for: ClientFor, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    _interrupted(timbal_emulator, client_for, target)
    Path(f"{target}.part.json").write_bytes(b'{"version": 1, "count"')
    with pytest.raises(ExportError, match="is not valid JSON"):
        read_checkpoint(ExportPaths(target))
    with pytest.raises(ExportError, match="is not valid JSON"):
        export_runs(client_for(timbal_emulator), RunQuery(), target, resume=True)


def test_without_resume_a_damaged_checkpoint_is_discarded_with_a_warning(
    timbal_emulator: Emulator,
    client_for: ClientFor,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = tmp_path / "runs.jsonl"
    data = _interrupted(timbal_emulator, client_for, target)
    data["offset"] = "far"
    Path(f"{target}.part.json").write_bytes(orjson.dumps(data))
    with caplog.at_level(logging.WARNING, logger="timbal_integrations.export"):
        result = export_runs(client_for(timbal_emulator), RunQuery(), target)
    assert "offset: expected a whole number" in caplog.text
    assert "discarding the partial export" in caplog.text
    assert not result.resumed
    assert jsonl_ids(target) == [r["id"] for r in timbal_emulator.runs]
