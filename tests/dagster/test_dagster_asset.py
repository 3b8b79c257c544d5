"""``timbal_runs_asset``: real Dagster materialisations against the emulator.

Partitions one at a time, several in one run (a backfill's range), re-materialisation,
every format, object storage (fsspec's memory file system), and failures; each file is
compared run by run with the emulator's truth, and the metadata with its statistics.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import (  # noqa: E402
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    RetryPolicy,
    materialize,
)
from upath import UPath  # noqa: E402

from dagster_timbal import DEFAULT_BACKFILL_POLICY, TimbalResource, timbal_runs_asset  # noqa: E402
from tests.dagster.helpers_dagster import metadata_values, resource_for  # noqa: E402
from tests.support.truth import runs_between, serve, stats  # noqa: E402
from timbal_integrations import QueryError  # noqa: E402
from timbal_integrations.emulator import Emulator, generate_runs  # noqa: E402

pyarrow_parquet = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.dagster

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def _day(key: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _materializations(result: Any, name: str = "timbal_runs") -> dict[str, dict[str, Any]]:
    return {m.partition: metadata_values(m) for m in result.asset_materializations_for_node(name)}


def _check_day(emu: Emulator, out: Path, key: str, meta: dict[str, Any], **equal: Any) -> None:
    """The day's file holds exactly the emulator's runs of the day, and the metadata says so."""
    path = out / f"dt={key}" / "runs.jsonl"
    truth = runs_between(emu.runs, *_day(key), **equal)
    assert _jsonl(path) == truth  # run by run, every field as served, newest first
    expected = stats(truth)
    assert meta["count"] == meta["dagster/row_count"] == expected["count"] > 0
    assert meta["path"] == str(path)
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["bytes"] == path.stat().st_size
    assert meta["error_count"] == expected["error_count"]
    assert meta["running_count"] == expected["running_count"]
    assert meta["status_counts"] == expected["status_counts"]
    assert meta["cost_usd"] == expected["cost_usd"]
    assert meta["cost_credits"] == expected["cost_credits"]
    since, until = _day(key)
    assert meta["window"] == f"[{key}T00:00:00.000Z, {until:%Y-%m-%d}T00:00:00.000Z)"
    assert since.timestamp() <= meta["first_created_at"] <= meta["last_created_at"]
    manifest = json.loads((out / f"dt={key}" / "runs.jsonl.manifest.json").read_text())
    assert manifest["sha256"] == meta["sha256"]
    assert manifest["count"] == meta["count"]


def test_one_partition_is_the_runs_of_its_utc_day(
    emu: Emulator, resource: TimbalResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01")
    result = materialize(
        [asset], resources={"timbal": resource}, partition_key="2025-12-05", instance=instance
    )
    assert result.success
    materialized = _materializations(result)
    assert list(materialized) == ["2025-12-05"]
    _check_day(emu, tmp_path, "2025-12-05", materialized["2025-12-05"])
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "dt=2025-12-05",
        "dt=2025-12-05/runs.jsonl",
        "dt=2025-12-05/runs.jsonl.manifest.json",
    ]
    # The data version is the file's hash: Dagster sees when a day's data changed.
    event = instance.get_latest_materialization_event(AssetKey("timbal_runs"))
    assert event is not None
    assert (
        event.asset_materialization.tags["dagster/data_version"]
        == (materialized["2025-12-05"]["sha256"])
    )


def test_a_range_run_writes_one_file_per_day_with_its_own_metadata(
    emu: Emulator, resource: TimbalResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    """What a backfill's run does with the default multi-run policy: several days, one
    file and one materialisation (with that day's numbers) per day."""
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01", status="error")
    assert asset.backfill_policy == DEFAULT_BACKFILL_POLICY == BackfillPolicy.multi_run(30)
    result = materialize(
        [asset],
        resources={"timbal": resource},
        instance=instance,
        tags={RANGE_START: "2025-12-10", RANGE_END: "2025-12-14"},
    )
    assert result.success
    materialized = _materializations(result)
    days = ["2025-12-10", "2025-12-11", "2025-12-12", "2025-12-13", "2025-12-14"]
    assert sorted(materialized) == days
    for key in days:
        _check_day(emu, tmp_path, key, materialized[key], status="error")
    assert len({m["sha256"] for m in materialized.values()}) == len(days)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"dt={d}" for d in days]
    # Dagster knows each partition as materialised.
    assert instance.get_materialized_partitions(AssetKey("timbal_runs")) == set(days)


def test_a_day_without_matching_runs_is_an_empty_file(
    resource: TimbalResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01", status="no-such")
    result = materialize(
        [asset], resources={"timbal": resource}, partition_key="2025-12-03", instance=instance
    )
    meta = _materializations(result)["2025-12-03"]
    path = tmp_path / "dt=2025-12-03" / "runs.jsonl"
    assert path.read_bytes() == b""
    assert meta["count"] == meta["error_count"] == meta["bytes"] == 0
    assert meta["cost_usd"] == 0.0
    assert meta["status_counts"] == {}
    assert "first_created_at" not in meta


def test_rematerialising_replaces_the_day_whole(
    resource: TimbalResource, instance: DagsterInstance, tmp_path: Path
) -> None:
    """A day whose runs changed (a run finished, another appeared) is written anew, with
    no partial or stale file left behind."""
    before = generate_runs(
        40, seed=7, end=datetime(2025, 12, 6, tzinfo=UTC), span=timedelta(days=1)
    )
    before[0]["status"] = "running"
    after = [dict(run) for run in before]
    after[0]["status"] = "error"
    later = dict(after[1], id="01NEWRUN00000000000000000", idempotency_key="late-one")
    after.append(later)
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01")
    target = tmp_path / "dt=2025-12-05" / "runs.jsonl"
    metas = []
    for runs in (before, after):
        with serve(runs) as emu:
            result = materialize(
                [asset],
                resources={"timbal": resource_for(emu)},
                partition_key="2025-12-05",
                instance=instance,
            )
            assert result.success
            metas.append(_materializations(result)["2025-12-05"])
            assert _jsonl(target) == emu.runs
    assert metas[0]["running_count"] == 1
    assert metas[1]["running_count"] == 0
    assert metas[1]["error_count"] == metas[0]["error_count"] + 1
    assert metas[1]["count"] == metas[0]["count"] + 1 == 41
    assert metas[0]["sha256"] != metas[1]["sha256"]
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "runs.jsonl",
        "runs.jsonl.manifest.json",
    ]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet(
    emu: Emulator, resource: TimbalResource, instance: DagsterInstance, tmp_path: Path, fmt: str
) -> None:
    asset = timbal_runs_asset(
        "runs_table", output_dir=tmp_path, format=fmt, start_date="2025-12-01", parallel=3
    )
    result = materialize(
        [asset], resources={"timbal": resource}, partition_key="2025-12-20", instance=instance
    )
    meta = _materializations(result, "runs_table")["2025-12-20"]
    path = tmp_path / "dt=2025-12-20" / f"runs.{fmt}"
    truth = runs_between(emu.runs, *_day("2025-12-20"))
    if fmt == "csv":
        ids = [line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]]
    else:
        ids = pyarrow_parquet.read_table(path, columns=["id"]).column("id").to_pylist()
    assert ids == [run["id"] for run in truth]
    assert meta["format"] == fmt
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {k: meta[k] for k in stats(truth)} == stats(truth)


def test_object_storage_through_fsspec(
    emu: Emulator, resource: TimbalResource, instance: DagsterInstance
) -> None:
    """A URI goes through fsspec (here its in-memory file system): each day is one
    complete object, with its manifest beside it."""
    root = UPath("memory://timbal-bucket/exports")
    asset = timbal_runs_asset(output_dir="memory://timbal-bucket/exports", start_date="2025-12-01")
    try:
        result = materialize(
            [asset], resources={"timbal": resource}, partition_key="2025-12-07", instance=instance
        )
        meta = _materializations(result)["2025-12-07"]
        obj = root / "dt=2025-12-07" / "runs.jsonl"
        data = obj.read_bytes()
        truth = runs_between(emu.runs, *_day("2025-12-07"))
        assert [json.loads(line) for line in data.splitlines()] == truth
        assert meta["path"] == "memory://timbal-bucket/exports/dt=2025-12-07/runs.jsonl"
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()
        manifest = json.loads((root / "dt=2025-12-07" / "runs.jsonl.manifest.json").read_text())
        assert manifest["count"] == meta["count"] == len(truth)
    finally:
        root.fs.rm(root.path, recursive=True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"since": "2025-12-01"}, "since"),
        ({"until": "2025-12-02"}, "until"),
        ({"status": 7}, "status"),
        ({"colour": "red"}, "colour"),
        ({"sort_by": "name"}, "sort_by"),
        ({"format": "xlsx"}, "format"),
        ({"start_date": "2025-12-01T06:00:00Z"}, "start_date"),
        ({"start_date": "soon"}, "start_date"),
        ({"end_date": "2025-11-01"}, "end_date"),
        ({"output_dir": ""}, "output_dir"),
        ({"output_dir": 42}, "output_dir"),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_them(
    tmp_path: Path, kwargs: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"output_dir": tmp_path, "start_date": "2025-12-01", **kwargs}
    with pytest.raises(QueryError) as info:
        timbal_runs_asset(**arguments)
    assert info.value.field == field
    assert "\n" not in str(info.value)


def _failure(result: Any) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    data = failures[0].step_failure_data
    assert data.error.cls_name == "Failure"
    return str(data.user_failure_data.description)


def test_bad_configuration_fails_the_run_naming_the_field(
    emu: Emulator, instance: DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMBAL_ORG_ID", raising=False)
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01")
    result = materialize(
        [asset],
        resources={"timbal": resource_for(emu, org_id=None)},
        partition_key="2025-12-05",
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    assert _failure(result) == (
        "no organisation: set TimbalResource.org_id (or TIMBAL_ORG_ID in the code "
        "location's environment)"
    )
    assert not list(tmp_path.iterdir())
    # A bad value names the field once: no doubled prefix.
    result = materialize(
        [asset],
        resources={"timbal": resource_for(emu, org_id="a/b")},
        partition_key="2025-12-05",
        instance=instance,
        raise_on_error=False,
    )
    text = _failure(result)
    assert text.startswith("TimbalResource.org_id: 'a/b' is not a valid id"), text
    assert text.count("org_id") == 1
    assert not list(tmp_path.iterdir())


def test_an_api_refusal_fails_the_run_with_the_api_message(
    emu: Emulator, instance: DagsterInstance, tmp_path: Path
) -> None:
    asset = timbal_runs_asset(output_dir=tmp_path, start_date="2025-12-01")
    result = materialize(
        [asset],
        resources={"timbal": resource_for(emu, project_id="not-mine")},
        partition_key="2025-12-05",
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    text = _failure(result)
    assert text.startswith("2025-12-05: 403 Forbidden")
    assert text.endswith("check TimbalResource.org_id and TimbalResource.project_id)"), text
    assert "TIMBAL_" not in text
    assert "\n" not in text


def _retries(result: Any) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_only_errors_a_retry_may_fix_spend_the_retry_policy(
    emu: Emulator, instance: DagsterInstance, tmp_path: Path
) -> None:
    """A refusal (403) fails at once, even under a retry policy; a server error (503
    after the client's own retries) is retried by Dagster, as the core classifies them."""
    asset = timbal_runs_asset(
        output_dir=tmp_path, start_date="2025-12-01", retry_policy=RetryPolicy(max_retries=2)
    )
    refused = materialize(
        [asset],
        resources={"timbal": resource_for(emu, project_id="not-mine")},
        partition_key="2025-12-05",
        instance=instance,
        raise_on_error=False,
    )
    assert not refused.success
    assert _retries(refused) == 0
    with serve(runs=50, fault_rate=1.0, fault_kinds=["503"]) as api:
        failing = materialize(
            [asset],
            resources={"timbal": resource_for(api, max_retries=0)},
            partition_key="2025-12-05",
            instance=instance,
            raise_on_error=False,
        )
        requests = len(api.request_log)
    assert not failing.success
    assert _retries(failing) == 2
    assert requests == 3  # one attempt and two retries, one request each (max_retries=0)
    last = next(e for e in failing.all_events if e.event_type_value == "STEP_FAILURE")
    error = last.step_failure_data.error  # the policy's retry request, caused by ours
    assert error.cause.cls_name == "Failure"
    assert "Failure: 2025-12-05: 503 Service Unavailable from GET" in error.cause.message


def test_asset_definition_describes_itself(tmp_path: Path) -> None:
    asset = timbal_runs_asset(
        "errors",
        output_dir=tmp_path,
        start_date="2025-12-01",
        end_date="2025-12-08",
        key_prefix=["timbal"],
        group_name="observability",
        status="error",
    )
    assert asset.key == AssetKey(["timbal", "errors"])
    assert asset.partitions_def is not None
    keys = asset.partitions_def.get_partition_keys()
    assert keys == [f"2025-12-0{d}" for d in range(1, 8)]
    assert "timbal" in asset.required_resource_keys
    spec = next(iter(asset.specs))
    assert spec.group_name == "observability"
    assert spec.metadata["filters"].value == {"status": "error"}
    assert "status=error" in (spec.description or "")
