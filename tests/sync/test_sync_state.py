"""The dataset's state and its checks: a sync refuses what would mix two datasets, names
what is wrong in one line, and a full refresh is the way out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sync.conftest import ClientOf
from tests.sync.helpers_sync import read_dataset, read_json, truth
from timbal_integrations import RunQuery, TimbalClient
from timbal_integrations.emulator import Emulator
from timbal_integrations.errors import (
    QueryError,
    SyncMismatchError,
    SyncStateError,
)
from timbal_integrations.sync import LocalStore, sync_runs
from timbal_integrations.wording import describe

NOW = datetime(2026, 2, 1, tzinfo=UTC)  # after every run of the session emulator


@pytest.fixture
def synced(timbal_emulator: Emulator, client_of: ClientOf, tmp_path: Path) -> Path:
    """A dataset of the session emulator's error runs since 2025-12-25, as CSV."""
    out = tmp_path / "data"
    query = RunQuery(status="error", since="2025-12-25")
    sync_runs(client_of(timbal_emulator), query, out, format="csv", now=NOW)
    return out


def again(emu: Emulator, client_of: ClientOf, out: Path, **filters: object) -> object:
    query = RunQuery(**{"status": "error", "since": "2025-12-25", **filters})  # type: ignore[arg-type]
    return sync_runs(client_of(emu), query, out, now=NOW + timedelta(hours=1))


def test_the_state_file_records_what_the_next_sync_needs(synced: Path) -> None:
    state = read_json(synced / "state.json")
    assert state["version"] == 1
    assert state["identity"]["format"] == "csv"
    assert state["identity"]["filters"] == {"status": "error"}
    assert state["since"] == "2025-12-25T00:00:00.000000Z"
    assert state["high_water_mark"] == "2026-02-01T00:00:00.001000Z"
    assert state["lookback_seconds"] == 3 * 86400
    # The runs still running do not match status=error (yet): tracked, not in the dataset.
    assert state["open"]
    for entry in state["open"]:
        assert set(entry) == {"id", "created_at", "in_dataset", "record"}
        assert entry["in_dataset"] is False
        assert entry["record"]["status"] == "running"
    manifest = read_json(synced / "manifest.json")
    assert manifest["filters"] == {"status": "error"}
    assert manifest["format"] == "csv"
    assert manifest["count"] == sum(p["count"] for p in manifest["partitions"].values())
    assert manifest["last_sync"]["mode"] == "first"
    assert manifest["columns"][0] == "id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "success"}, "status"),
        ({"status": None}, "status"),
        ({"user_id": "usr_ada"}, "user_id"),
        ({"since": "2025-12-20"}, "since"),
        ({"until": "2026-01-15"}, "until"),
    ],
)
def test_a_sync_with_other_filters_is_refused(
    timbal_emulator: Emulator,
    client_of: ClientOf,
    synced: Path,
    change: dict[str, object],
    field: str,
) -> None:
    before = {p: p.read_bytes() for p in synced.rglob("*") if p.is_file()}
    with pytest.raises(SyncMismatchError) as caught:
        again(timbal_emulator, client_of, synced, **change)
    assert caught.value.field == field
    message = describe(
        caught.value, "terminal", names={field: f"--{field}", "full_refresh": "--full-refresh"}
    )
    assert message.startswith(f"--{field}: the dataset in ")
    assert message.endswith("or with --full-refresh to start over")
    assert "\n" not in message
    assert {p: p.read_bytes() for p in synced.rglob("*") if p.is_file()} == before


def test_a_later_since_is_accepted_and_the_dataset_keeps_its_start(
    timbal_emulator: Emulator, client_of: ClientOf, synced: Path
) -> None:
    report = again(timbal_emulator, client_of, synced, since="2025-12-28")
    assert read_json(synced / "state.json")["since"] == "2025-12-25T00:00:00.000000Z"
    assert report.runs == read_json(synced / "manifest.json")["count"]  # type: ignore[attr-defined]


def test_a_sync_with_another_format_or_project_is_refused(
    timbal_emulator: Emulator, client_of: ClientOf, synced: Path
) -> None:
    query = RunQuery(status="error", since="2025-12-25")
    with pytest.raises(SyncMismatchError) as caught:
        sync_runs(client_of(timbal_emulator), query, synced, format="jsonl", now=NOW)
    assert (caught.value.field, caught.value.stored, caught.value.given) == (
        "format",
        "csv",
        "jsonl",
    )
    other = TimbalClient(env={**timbal_emulator.env(), "TIMBAL_PROJECT_ID": "another"})
    with other, pytest.raises(SyncMismatchError) as caught:
        sync_runs(other, query, synced, now=NOW)
    assert caught.value.field == "TIMBAL_PROJECT_ID"
    assert other.requests_made == 0  # refused before asking anything


def test_full_refresh_starts_over_with_new_filters(
    timbal_emulator: Emulator, client_of: ClientOf, synced: Path
) -> None:
    query = RunQuery(status="success", since="2025-12-30")
    report = sync_runs(client_of(timbal_emulator), query, synced, full_refresh=True, now=NOW)
    assert report.mode == "full_refresh"
    assert report.format == "csv"  # kept from the dataset
    assert read_dataset(synced, "csv") == truth(timbal_emulator, "csv", query)
    assert read_json(synced / "state.json")["identity"]["filters"] == {"status": "success"}
    assert report.partitions_removed > 0  # the days before 2025-12-30


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda s: {**s, "version": 9}, "version"),
        (lambda s: {**s, "high_water_mark": "yesterday"}, "high_water_mark"),
        (lambda s: {**s, "open": [{"id": 3, "created_at": "2026-01-01T00:00:00Z"}]}, "open[0].id"),
        (lambda s: {**s, "identity": {**s["identity"], "format": None}}, "identity.format"),
    ],
)
def test_a_damaged_state_is_named(
    timbal_emulator: Emulator, client_of: ClientOf, synced: Path, damage: object, field: str
) -> None:
    state = read_json(synced / "state.json")
    (synced / "state.json").write_text(json.dumps(damage(state)))  # type: ignore[operator]
    with pytest.raises(SyncStateError) as caught:
        again(timbal_emulator, client_of, synced)
    assert caught.value.field == field
    assert str(caught.value).endswith("sync with full_refresh=True to rebuild the dataset")


def test_a_partition_changed_outside_a_sync_is_refused(
    timbal_emulator: Emulator, client_of: ClientOf, tmp_path: Path
) -> None:
    """A partition the sync must read (here the day the window starts in, which it lists
    only from the window's start) is checked against the manifest first."""
    out = tmp_path / "data"
    noon = datetime(2025, 12, 31, 12, tzinfo=UTC)
    client = client_of(timbal_emulator)
    sync_runs(client, RunQuery(), out, now=noon)  # the next window starts 2025-12-28T12:00
    day = out / "runs/dt=2025-12-28/runs.jsonl"
    day.write_bytes(day.read_bytes() + b"\n")
    with pytest.raises(SyncStateError, match="does not match the manifest") as caught:
        sync_runs(client, RunQuery(), out, now=noon + timedelta(hours=1))
    assert caught.value.path == str(day)
    day.unlink()
    with pytest.raises(SyncStateError, match="is missing"):
        sync_runs(client, RunQuery(), out, now=noon + timedelta(hours=1))
    report = sync_runs(client, RunQuery(), out, full_refresh=True, now=noon)
    assert report.partitions_rewritten == 1  # the one day put back; the rest untouched


def test_missing_state_or_manifest(
    timbal_emulator: Emulator, client_of: ClientOf, synced: Path
) -> None:
    manifest = (synced / "manifest.json").read_bytes()
    (synced / "manifest.json").unlink()
    with pytest.raises(SyncStateError, match=r"has a state\.json but no manifest\.json"):
        again(timbal_emulator, client_of, synced)
    (synced / "manifest.json").write_bytes(manifest)
    (synced / "state.json").unlink()
    with pytest.raises(SyncStateError, match=r"but no state\.json"):
        again(timbal_emulator, client_of, synced)


def test_one_sync_at_a_time(timbal_emulator: Emulator, client_of: ClientOf, synced: Path) -> None:
    with LocalStore(synced).lock(), pytest.raises(SyncStateError) as caught:
        again(timbal_emulator, client_of, synced)
    assert "another sync is writing" in str(caught.value)
    assert "full_refresh" not in str(caught.value)  # waiting, not rebuilding, is the fix


def test_bad_arguments_are_named(
    timbal_emulator: Emulator, client_of: ClientOf, tmp_path: Path
) -> None:
    client = client_of(timbal_emulator)
    bad: list[tuple[dict[str, object], str]] = [
        ({"lookback": "3 days please"}, "lookback"),
        ({"lookback": timedelta(days=-1)}, "lookback"),
        ({"lookback": 3}, "lookback"),
        ({"format": "xlsx"}, "format"),
        ({"parallel": 0}, "parallel"),
        ({"full_refresh": "yes"}, "full_refresh"),
    ]
    for kwargs, field in bad:
        with pytest.raises(QueryError) as caught:
            sync_runs(client, RunQuery(), tmp_path / "x", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    for name, value in (("sort_by", "id"), ("sort_order", "asc")):
        with pytest.raises(QueryError) as caught:
            sync_runs(client, RunQuery(**{name: value}), tmp_path / "x")
        assert caught.value.field == name
    (tmp_path / "file").write_text("")
    with pytest.raises(Exception, match="is a file"):
        sync_runs(client, RunQuery(), tmp_path / "file")
    assert client.requests_made == 0
    assert not (tmp_path / "x").exists()
