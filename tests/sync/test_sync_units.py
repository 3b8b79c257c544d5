"""The sync's pure parts: filters checked on a run, spans, the window, updating a run from
its detail, the flat record read back, partitions, the journal and the stores."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.runs import make_run, make_runs
from tests.sync.helpers_sync import stored
from timbal_integrations import RunQuery
from timbal_integrations.errors import QueryError, SyncStateError
from timbal_integrations.export.records import (
    CREATED_AT,
    RECORD_FIELDS,
    csv_row,
    csv_values,
    record_from_row,
    record_row,
)
from timbal_integrations.query import format_span, parse_span
from timbal_integrations.sync import FsspecStore, LocalStore
from timbal_integrations.sync.dataset import decode_partition, encode_partition, view
from timbal_integrations.sync.journal import commit, recover
from timbal_integrations.sync.plan import Window, apply_detail, change_kinds, plan_window
from timbal_integrations.sync.state import DatasetIdentity, SyncState

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- matches


def test_matches_checks_each_filter_as_the_api_does() -> None:
    run = make_run(1, status="error", last_reaction_sentiment="negative")
    assert RunQuery().matches(run)
    assert RunQuery(status="error", sentiment="negative", user_id="usr_1").matches(run)
    assert RunQuery(workforce_id="wf_1", group_id="run_00001").matches(run)
    assert not RunQuery(status="Error").matches(run)  # exact, case-sensitive
    assert not RunQuery(sentiment="positive").matches(run)
    assert not RunQuery(sentiment="negative").matches(make_run(2))  # no reaction: null
    assert not RunQuery(user_id="usr_2").matches(run)
    assert RunQuery(since="2025-12-01T00:00:01Z").matches(run)
    assert not RunQuery(since="2025-12-01T00:00:01.001Z").matches(run)
    assert not RunQuery(until="2025-12-01T00:00:01Z").matches(run)  # until is exclusive
    query = RunQuery(status="error", user_id="usr_2", rev="main")
    assert query.matches(run, only=("status",))
    assert not query.matches(run, only=("status", "user_id"))
    with pytest.raises(QueryError) as caught:
        query.matches(run)
    assert caught.value.field == "rev"
    with pytest.raises(QueryError):
        RunQuery(metadata={"env": "prod"}).matches(run)
    with pytest.raises(QueryError) as caught:
        RunQuery().matches(run, only=("colour",))
    assert caught.value.field == "colour"


def test_spans() -> None:
    assert parse_span("3d", field="lookback") == timedelta(days=3)
    assert parse_span(" 36h ", field="lookback") == timedelta(hours=36)
    assert parse_span(timedelta(0), field="lookback") == timedelta(0)
    for bad in ("3", "soon", "-3d", "", 3, None, "999999999w"):
        with pytest.raises(QueryError) as caught:
            parse_span(bad, field="lookback")
        assert caught.value.field == "lookback"
    assert [format_span(timedelta(seconds=s)) for s in (259200, 129600, 5400, 45, 0)] == [
        "3d",
        "36h",
        "90m",
        "45s",
        "0s",
    ]


# --------------------------------------------------------------------------- the window


def state(mark: datetime, since: datetime | None = None) -> SyncState:
    identity = DatasetIdentity("jsonl", {}, "http://x", "o", "p")
    return SyncState(identity, since, mark, timedelta(days=3))


def test_the_first_window_is_the_query_up_to_now() -> None:
    window = plan_window(None, RunQuery(), T0 + timedelta(microseconds=1500), timedelta(days=3))
    assert window == Window(None, T0 + timedelta(milliseconds=2))
    since = RunQuery(since="2026-01-01")
    assert plan_window(None, since, T0, timedelta(days=3)).since == datetime(2026, 1, 1, tzinfo=UTC)


def test_later_windows_start_a_lookback_before_the_mark() -> None:
    mark = T0 - timedelta(days=1)
    window = plan_window(state(mark), RunQuery(), T0, timedelta(days=3))
    assert window == Window(mark - timedelta(days=3), T0 + timedelta(milliseconds=1))
    # never before the dataset's start
    start = mark - timedelta(days=1)
    assert plan_window(state(mark, start), RunQuery(), T0, timedelta(days=3)).since == start
    # a clock that went back does not shrink the dataset's reach
    assert (
        plan_window(state(mark), RunQuery(), mark - timedelta(hours=5), timedelta(0)).until == mark
    )
    # a query's until caps it
    capped = plan_window(state(mark), RunQuery(until=T0 - timedelta(hours=1)), T0, timedelta(0))
    assert capped.until == T0 - timedelta(hours=1)


def test_window_membership() -> None:
    window = Window(T0, T0 + timedelta(days=1))
    assert window.contains(T0)
    assert not window.contains(T0 - timedelta(microseconds=1))
    assert not window.contains(T0 + timedelta(days=1))
    assert window.overlaps(date(2026, 1, 10))
    assert window.overlaps(date(2026, 1, 11))
    assert not window.overlaps(date(2026, 1, 9))
    assert not window.overlaps(date(2026, 1, 12))
    empty = Window(T0, T0)
    assert empty.empty
    assert not empty.contains(T0)
    assert not empty.overlaps(date(2026, 1, 10))
    listing = window.listing(RunQuery(status="error", user_id="u"))
    assert listing.as_dict() == {
        "user_id": "u",
        "since": "2026-01-10T12:00:00.000Z",
        "until": "2026-01-11T12:00:00.000Z",
        "sort_by": "created_at",
        "sort_order": "asc",
    }


# --------------------------------------------------------------------------- updates


def test_a_run_is_updated_from_its_detail_without_detail_only_fields() -> None:
    listed = make_run(3, status="running", duration_ms=None, cost_usd=0.0, extra_field=1)
    listed["created_at"] = "2025-12-01T00:00:03.000000+00:00"
    detail = {
        **make_run(3, status="success", duration_ms=42, cost_usd=0.5),
        "created_at": "2025-12-01T00:00:03Z",  # spelt otherwise: kept as stored
        "trace": [{"path": "agent"}],
        "status_detail": {"code": "OK"},
        "user": {"id": "usr_1", "name": "Ada L.", "email": "ada@example.test"},
    }
    del detail["workforce"]  # the spec's RunDetail may lack it
    updated = apply_detail(listed, detail)
    assert list(updated) == list(listed)
    assert updated["status"] == "success"
    assert updated["duration_ms"] == 42
    assert updated["cost_usd"] == 0.5
    assert updated["created_at"] == listed["created_at"]
    assert updated["workforce"] == listed["workforce"]
    assert updated["user"]["name"] == "Ada L."
    assert updated["extra_field"] == 1  # the detail lacks it: kept
    kinds = change_kinds(stored(listed), stored(updated), "jsonl")
    assert kinds == ["status", "cost", "duration"]
    assert change_kinds(stored(listed), stored(listed), "csv") == []
    renamed = {**listed, "workforce": {**listed["workforce"], "name": "x"}}
    assert change_kinds(stored(listed), stored(renamed), "csv") == ["other"]


# --------------------------------------------------------------------------- records

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_OPTIONAL = st.none() | _TEXT.filter(bool)


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    i = draw(st.integers(0, 80_000))
    return make_run(
        i,
        status=draw(st.sampled_from(["success", "error", "running", 'weird, "quoted"'])),
        duration_ms=draw(st.none() | st.integers(0, 2**53)),
        cost_usd=draw(st.floats(allow_nan=False, allow_infinity=False)),
        cost_credits=draw(st.floats(-1e300, 1e300)),
        group_id=draw(_OPTIONAL),
        parent_id=draw(_OPTIONAL),
        last_reaction_sentiment=draw(_OPTIONAL),
        user={"id": draw(_TEXT), "name": draw(_TEXT), "email": "e@x.test"},
        workforce={"id": "wf", "name": draw(_TEXT), "type": draw(_TEXT)},
        created_at=f"2026-01-0{draw(st.integers(1, 9))}T00:00:0{i % 10}.{i % 999999:06d}Z",
    )


@settings(max_examples=150, deadline=None)
@given(run=runs())
def test_the_flat_record_reads_back_exactly(run: dict[str, Any]) -> None:
    created = stored(run).created
    row = record_row(run, created)
    assert record_row(record_from_row(row), row[CREATED_AT]) == row
    cells = [str(v) if v is not None else "" for v in csv_row(run, created)]
    back = csv_values(cells)
    assert csv_row(record_from_row(back), back[CREATED_AT]) == csv_row(run, created)


def test_csv_values_name_a_bad_cell() -> None:
    cells = [
        str(v) if v is not None else "" for v in csv_row(make_run(), stored(make_run()).created)
    ]
    cells[RECORD_FIELDS.index("duration_ms")] = "soon"
    with pytest.raises(ValueError, match="duration_ms"):
        csv_values(cells)
    with pytest.raises(ValueError, match="cells"):
        csv_values(cells[:3])


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_partitions_read_back_as_written(fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    runs_ = [stored(run) for run in make_runs(40)]
    runs_[3].record["last_reaction_sentiment"] = "positive"
    runs_[4].record["extra"] = {"kept": True}  # JSON Lines keeps every field
    data = encode_partition(runs_, fmt)
    back = decode_partition(data, fmt, "p")
    assert [view(r, fmt) for r in back] == [view(r, fmt) for r in runs_]
    assert encode_partition(back, fmt) == data  # the same runs, the same bytes
    with pytest.raises(SyncStateError, match=f"cannot be read as {fmt}"):
        decode_partition(data[: len(data) // 2] + b"\x00garbage", fmt, "p")


# --------------------------------------------------------------------------- journal


def stores(tmp_path: Path) -> list[Any]:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    return [LocalStore(tmp_path / "local"), FsspecStore(memory, f"/bucket-{tmp_path.name}/data")]


def test_stores_do_what_the_journal_needs(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        name = "runs/dt=2026-01-01/runs.jsonl"
        assert store.read(name) is None
        store.stage(name, b"one\n")
        assert store.read(name) is None  # staged is not visible
        assert store.read_staged(name) == b"one\n"
        store.promote(name)
        assert store.read(name) == b"one\n"
        assert store.read_staged(name) is None
        store.write("manifest.json", b"{}")
        assert store.read("manifest.json") == b"{}"
        assert store.partition_names() == [name]
        store.stage("runs/dt=2026-01-02/runs.jsonl", b"x")
        store.clear_staging()
        assert store.read_staged("runs/dt=2026-01-02/runs.jsonl") is None
        store.delete(name)
        store.delete(name)
        assert store.partition_names() == []
        with store.lock():
            pass


def test_a_committed_journal_is_finished_by_the_next_sync(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        a, b = "runs/dt=2026-01-01/runs.jsonl", "runs/dt=2026-01-02/runs.jsonl"
        store.stage(a, b"new a\n")
        store.write(b, b"old b\n")
        sha = hashlib.sha256(b"new a\n").hexdigest()
        store.write(
            ".sync-journal.json",
            b'{"version": 1, "partitions": {"%s": {"sha256": "%s", "bytes": 6}, "%s": null},'
            b' "manifest": {"m": 1}, "state": {"s": 1}}' % (a.encode(), sha.encode(), b.encode()),
        )
        assert recover(store) is True
        assert store.read(a) == b"new a\n"
        assert store.read(b) is None
        assert store.read("manifest.json") == b'{\n  "m": 1\n}\n'
        assert store.read("state.json") == b'{\n  "s": 1\n}\n'
        assert store.read(".sync-journal.json") is None
        assert recover(store) is False  # nothing left to do


def test_a_journal_whose_partition_is_not_the_one_committed_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    name = "runs/dt=2026-01-01/runs.jsonl"
    store.stage(name, b"tampered\n")
    commit_journal = {name: {"sha256": hashlib.sha256(b"right\n").hexdigest(), "bytes": 6}}
    store.write(".sync-journal.json", b"")
    with pytest.raises(SyncStateError, match="cannot be read"):
        recover(store)
    store.write(
        ".sync-journal.json",
        orjson.dumps({"version": 1, "partitions": commit_journal, "manifest": {}, "state": {}}),
    )
    with pytest.raises(SyncStateError, match="not the partition its journal committed"):
        recover(store)
    assert recover(store, discard=True) is False  # a full refresh drops it
    assert store.read_staged(name) is None


def test_commit_applies_everything(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    name = "runs/dt=2026-01-01/runs.csv"
    store.stage(name, b"x")
    commit(store, {name: {"sha256": "-", "bytes": 1}}, {"m": 2}, {"s": 2})
    assert store.read(name) == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "runs", "state.json"]


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(runs(), min_size=1, max_size=6, unique_by=lambda run: run["id"]))
def test_any_partition_reads_back_to_the_same_bytes(batch: list[dict[str, Any]]) -> None:
    """Whatever the text (quotes, new lines, NUL, any script), a partition read back and
    written again is the same bytes: an unchanged day is never rewritten."""
    pytest.importorskip("pyarrow")
    ordered = sorted((stored(run) for run in batch), key=lambda r: r.key())
    for fmt in ("jsonl", "csv", "parquet"):
        data = encode_partition(ordered, fmt)
        back = decode_partition(data, fmt, "p")
        assert encode_partition(back, fmt) == data
        assert [r.id for r in back] == [r.id for r in ordered]


# --------------------------------------------------------------------------- the package


def test_the_package_serves_its_all_and_the_documented_signature() -> None:
    import inspect

    import timbal_integrations.sync as sync
    from tests.support.exports import exposed_members

    assert set(sync.__all__) == exposed_members(sync)
    parameters = inspect.signature(sync.sync_runs).parameters
    assert list(parameters) == [
        "client",
        "query",
        "out",
        "format",
        "lookback",
        "full_refresh",
        "parallel",
        "now",
        "progress",
    ]
    assert [p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY] == list(parameters)[3:]


def test_importing_the_sync_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from timbal_integrations.sync import sync_runs, SyncReport\n"
        "heavy = ('pyarrow', 'airflow', 'pydantic.main', 'timbal_integrations.models')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
