"""export_runs against the emulator: every format parses back to exactly the served runs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from timbal_integrations import (
    RECORD_FIELDS,
    ExportError,
    QueryError,
    Run,
    RunQuery,
    TimbalClient,
)
from timbal_integrations.emulator import Emulator
from timbal_integrations.export import (
    FORMATS,
    CsvWriter,
    ExportResult,
    JsonlWriter,
    ParquetWriter,
    export_runs,
    infer_format,
    manifest_path,
    open_writer,
)

from .conftest import ClientFor
from .helpers_export import NOW, jsonl_ids, jsonl_rows, parse_time

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _normalized(run: dict[str, Any]) -> dict[str, Any]:
    """A served run with ``created_at`` as a datetime (its spelling varies)."""
    out = dict(run)
    out["created_at"] = parse_time(run["created_at"])
    return out


def _records(served: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flat records of served runs, computed independently of the export code."""
    out = []
    for run in served:
        out.append(
            {
                "id": run["id"],
                "idempotency_key": run["idempotency_key"],
                "created_at": parse_time(run["created_at"]),
                "status": run["status"],
                "duration_ms": run["duration_ms"],
                "cost_usd": run["cost_usd"],
                "cost_credits": run["cost_credits"],
                "user_id": run["user"]["id"],
                "user_name": run["user"]["name"],
                "user_email": run["user"]["email"],
                "workforce_id": run["workforce"]["id"],
                "workforce_name": run["workforce"]["name"],
                "workforce_type": run["workforce"]["type"],
                "group_id": run["group_id"],
                "parent_id": run["parent_id"],
                "last_reaction_sentiment": run["last_reaction_sentiment"],
            }
        )
    return out


def test_infer_format() -> None:
    assert infer_format("runs.jsonl") == "jsonl"
    assert infer_format("RUNS.NDJSON") == "jsonl"
    assert infer_format(Path("a/b.csv")) == "csv"
    assert infer_format("x.parquet") == "parquet"
    assert infer_format("x.pq") == "parquet"
    assert infer_format("x.txt", "CSV") == "csv"
    assert FORMATS == ("jsonl", "csv", "parquet")
    with pytest.raises(QueryError, match=r"^format: .*'runs\.txt'.*jsonl, csv, parquet") as err:
        infer_format("runs.txt")
    assert err.value.field == "format"
    with pytest.raises(QueryError, match="format: 'xml' is not one of"):
        infer_format("runs.jsonl", "xml")


def test_jsonl_holds_every_served_run_with_the_served_fields(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    target = tmp_path / "runs.jsonl"
    result = export_runs(client, RunQuery(), target, now=NOW)
    rows = jsonl_rows(target)
    served = timbal_emulator.runs
    assert [row["id"] for row in rows] == [run["id"] for run in served]
    # Exactly the fields the server sent (no invented nulls), values equal.
    assert [_normalized(row) for row in rows] == [_normalized(run) for run in served]
    assert result.count == len(served) == 3000
    assert result.format == "jsonl"
    assert result.path == str(target)
    assert not result.resumed


def test_jsonl_keeps_unknown_fields(
    timbal_emulator_factory: Any, client_for: ClientFor, tmp_path: Path
) -> None:
    emu = timbal_emulator_factory(runs=300, extra_fields=True)
    target = tmp_path / "extra.jsonl"
    export_runs(client_for(emu), RunQuery(), target, now=NOW)
    rows = jsonl_rows(target)
    assert len(rows) == 300
    unknown = {"rev", "metadata"}
    assert all(unknown <= row.keys() for row in rows)
    assert [(row["rev"], row["metadata"]) for row in rows] == [
        (run["rev"], run["metadata"]) for run in emu.runs
    ]


def test_csv_round_trip(timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path) -> None:
    target = tmp_path / "runs.csv"
    result = export_runs(client, RunQuery(), target, now=NOW)
    with target.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert header == list(RECORD_FIELDS)
    assert len(rows) == result.count == 3000
    ints, floats = {"duration_ms"}, {"cost_usd", "cost_credits"}
    parsed = []
    for row in rows:
        record: dict[str, Any] = {}
        for name, cell in zip(header, row, strict=True):
            if cell == "":
                record[name] = None
            elif name == "created_at":
                assert len(cell) == len("2026-01-01T00:00:00.000000Z")  # one stable spelling
                record[name] = parse_time(cell)
            elif name in ints:
                record[name] = int(cell)
            elif name in floats:
                record[name] = float(cell)
            else:
                record[name] = cell
        parsed.append(record)
    assert parsed == _records(timbal_emulator.runs)


def test_parquet_schema_rows_and_values(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    target = tmp_path / "runs.parquet"
    result = export_runs(client, RunQuery(), target, now=NOW)
    schema = pq.read_schema(target)
    assert schema.names == list(RECORD_FIELDS)
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("duration_ms").type == pa.int64()
    assert schema.field("cost_usd").type == pa.float64()
    assert schema.field("cost_credits").type == pa.float64()
    for name in set(RECORD_FIELDS) - {"created_at", "duration_ms", "cost_usd", "cost_credits"}:
        assert schema.field(name).type == pa.string(), name
    assert not schema.field("id").nullable
    assert schema.field("duration_ms").nullable
    table = pq.read_table(target)
    assert table.num_rows == result.count == 3000
    assert table.to_pylist() == _records(timbal_emulator.runs)


def test_parquet_writer_writes_row_groups(client: TimbalClient, tmp_path: Path) -> None:
    runs = list(client.list_runs(limit=1000))
    target = tmp_path / "groups.parquet"
    with target.open("wb") as fh:
        writer = ParquetWriter(fh, row_group_size=300)
        for start in range(0, len(runs), 70):
            writer.write_runs(runs[start : start + 70])
        writer.close()
    meta = pq.ParquetFile(target).metadata
    assert meta.num_rows == 1000
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [300] * 3 + [100]
    assert pq.read_table(target).column("id").to_pylist() == [run.id for run in runs]


def test_open_writer_stream_formats(client: TimbalClient) -> None:
    runs = list(client.list_runs(limit=3))
    buffer = io.BytesIO()
    writer = open_writer("jsonl", buffer)
    assert isinstance(writer, JsonlWriter)
    writer.write_runs(runs)
    writer.close()
    assert [json.loads(line)["id"] for line in buffer.getvalue().splitlines()] == [
        r.id for r in runs
    ]
    buffer = io.BytesIO()
    writer = open_writer("csv", buffer)
    assert isinstance(writer, CsvWriter)
    writer.close()  # no runs: still a header
    assert buffer.getvalue().decode().splitlines() == [",".join(RECORD_FIELDS)]
    with pytest.raises(QueryError, match="format"):
        open_writer("xlsx", buffer)


def test_manifest_describes_the_file(client: TimbalClient, tmp_path: Path) -> None:
    target = tmp_path / "errors.jsonl"
    query = RunQuery(status="error", since="2025-12-10T00:00:00Z")
    result = export_runs(client, query, target, now=NOW)
    assert result.manifest_path == manifest_path(target) == str(target) + ".manifest.json"
    manifest = json.loads(Path(result.manifest_path).read_text())
    data = target.read_bytes()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == result.sha256
    assert manifest["bytes"] == len(data) == result.bytes
    assert manifest["count"] == result.count == len(data.splitlines())
    assert manifest["format"] == "jsonl"
    assert manifest["filters"] == {"status": "error", "since": "2025-12-10T00:00:00.000Z"}
    # until defaulted to 'now' (frozen, plus the millisecond that makes it inclusive of now)
    assert manifest["window"] == {
        "since": "2025-12-10T00:00:00.000Z",
        "until": "2026-02-01T00:00:00.001Z",
    }
    rows = jsonl_rows(target)
    created = sorted(parse_time(r["created_at"]) for r in rows)
    assert parse_time(manifest["first_created_at"]) == created[0] == result.first_created_at
    assert parse_time(manifest["last_created_at"]) == created[-1] == result.last_created_at
    assert manifest["tool"] == "timbal-integrations"
    assert manifest["tool_version"]
    assert result.to_dict()["until"] == "2026-02-01T00:00:00.001Z"
    json.dumps(result.to_dict())
    # Only the target and its manifest are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "errors.jsonl",
        "errors.jsonl.manifest.json",
    ]


def test_filters_match_a_plain_listing(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    query = RunQuery(
        since="2025-12-05", until="2025-12-20", sort_by="cost_usd", sort_order="asc", roots=True
    )
    target = tmp_path / "sorted.jsonl"
    result = export_runs(client, query, target, now=NOW)
    expected = [run.id for run in client.list_runs(query)]
    assert jsonl_ids(target) == expected
    assert 0 < result.count == len(expected) < 3000
    assert result.since == datetime(2025, 12, 5, tzinfo=UTC)
    assert result.until == datetime(2025, 12, 20, tzinfo=UTC)


def test_limit_and_no_manifest(client: TimbalClient, tmp_path: Path) -> None:
    target = tmp_path / "some.csv"
    result = export_runs(client, RunQuery(), target, limit=123, manifest=False, now=NOW)
    assert result.count == 123
    assert result.manifest_path is None
    assert not Path(manifest_path(target)).exists()
    with target.open(newline="") as fh:
        assert len(list(csv.reader(fh))) == 124
    with pytest.raises(QueryError, match="limit"):
        export_runs(client, RunQuery(), target, limit=-1)
    with pytest.raises(QueryError, match="parallel"):
        export_runs(client, RunQuery(), target, parallel=0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nothing_matches(client: TimbalClient, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"none.{fmt}"
    result = export_runs(client, RunQuery(status="no-such-status"), target, now=NOW)
    assert result.count == 0
    assert result.first_created_at is None
    if fmt == "jsonl":
        assert target.read_bytes() == b""
    elif fmt == "csv":
        assert target.read_text().splitlines() == [",".join(RECORD_FIELDS)]
    else:
        assert pq.read_table(target).num_rows == 0
        assert pq.read_schema(target).names == list(RECORD_FIELDS)


def test_parallel_export_is_the_sequential_export(
    timbal_emulator: Emulator, client: TimbalClient, tmp_path: Path
) -> None:
    sequential = export_runs(client, RunQuery(), tmp_path / "seq.jsonl", now=NOW)
    parallel = export_runs(client, RunQuery(), tmp_path / "par.jsonl", parallel=6, now=NOW)
    ids = jsonl_ids(tmp_path / "par.jsonl")
    assert ids == jsonl_ids(tmp_path / "seq.jsonl") == [r["id"] for r in timbal_emulator.runs]
    assert parallel.sha256 == sequential.sha256
    # the window was resolved: since = the earliest run
    assert parallel.since == parse_time(timbal_emulator.runs[-1]["created_at"])
    assert parallel.until == NOW + timedelta(milliseconds=1)
    csv_par = export_runs(client, RunQuery(), tmp_path / "par.csv", parallel=3, now=NOW)
    csv_seq = export_runs(client, RunQuery(), tmp_path / "seq.csv", now=NOW)
    assert csv_par.sha256 == csv_seq.sha256


def test_overwrites_atomically_and_refuses_directories(
    client: TimbalClient, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "nested" / "runs.jsonl"
    export_runs(client, RunQuery(), target, limit=5, now=NOW)
    first = target.read_bytes()
    result = export_runs(client, RunQuery(), target, limit=7, now=NOW)
    assert result.count == 7
    assert target.read_bytes() != first
    assert len(target.read_bytes().splitlines()) == 7
    directory = tmp_path / "dir.jsonl"
    directory.mkdir()
    with pytest.raises(ExportError, match="is a directory"):
        export_runs(client, RunQuery(), directory, now=NOW)


def test_result_fields(client: TimbalClient, tmp_path: Path) -> None:
    result = export_runs(client, RunQuery(), tmp_path / "r.jsonl", limit=2, now=NOW)
    assert isinstance(result, ExportResult)
    assert set(result.to_dict()) == {
        "path",
        "format",
        "count",
        "since",
        "until",
        "first_created_at",
        "last_created_at",
        "bytes",
        "sha256",
        "filters",
        "manifest_path",
        "resumed",
        "status_counts",
        "running_count",
        "error_count",
        "cost_usd",
        "cost_credits",
    }
    runs = [Run.model_validate(r) for r in jsonl_rows(tmp_path / "r.jsonl")]
    assert len(runs) == 2
