"""Real Prefect flows (the ephemeral API) against the emulator: the tasks, and
``export_runs_flow`` with its asset event read back from the Prefect API."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

prefect = pytest.importorskip("prefect.flows")

from prefect import flow  # noqa: E402
from prefect.client.orchestration import get_client  # noqa: E402

from prefect_timbal import (  # noqa: E402
    TimbalCredentials,
    export_runs,
    export_runs_flow,
    list_runs,
    summarize_runs,
)
from tests.prefect.helpers_prefect import asset_events, credentials_for  # noqa: E402
from tests.support.truth import SECRET_KEY, runs_between, serve, stats  # noqa: E402
from timbal_integrations import PermissionDeniedError, QueryError, Run, ServerError  # noqa: E402
from timbal_integrations.emulator import Emulator, generate_runs  # noqa: E402
from timbal_integrations.export import ExportResult  # noqa: E402
from timbal_integrations.summary import RunSummary  # noqa: E402

pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

DAY = datetime(2025, 12, 5, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_runs_flow_writes_the_window_and_records_the_asset(
    emu: Emulator, credentials: TimbalCredentials, tmp_path: Path
) -> None:
    target = tmp_path / "dt=2025-12-05" / "runs.jsonl"
    result = export_runs_flow(
        credentials, since="2025-12-05", until="2025-12-06", output_path=str(target)
    )
    truth = runs_between(emu.runs, DAY, NEXT)
    assert isinstance(result, ExportResult)
    assert _jsonl(target) == truth  # run by run, every field as served
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    assert result.sha256 == sha
    assert {k: getattr(result, k) for k in stats(truth)} == stats(truth)

    (event,) = asset_events(f"file://{target}", count=1)
    assert event.event == "prefect.asset.materialization.succeeded"
    metadata = dict(event.payload)
    assert metadata["count"] == len(truth) > 0
    assert metadata["sha256"] == sha
    assert metadata["since"] == "2025-12-05T00:00:00.000Z"
    assert metadata["until"] == "2025-12-06T00:00:00.000Z"
    assert metadata["path"] == str(target)
    assert metadata["bytes"] == target.stat().st_size
    assert {k: metadata[k] for k in stats(truth)} == stats(truth)
    related = {r["prefect.resource.id"]: r for r in event.related}
    assert related["timbal-integrations"]["prefect.resource.role"] == "asset-materialized-by"


def test_a_rerun_replaces_the_file_and_records_a_new_materialisation(
    tmp_path: Path,
) -> None:
    runs = generate_runs(30, seed=5, end=NEXT, span=timedelta(days=1))
    runs[0]["status"] = "running"
    later = [dict(run) for run in runs]
    later[0]["status"] = "success"
    target = tmp_path / "runs.jsonl"
    shas = []
    for data in (runs, later):
        with serve(data) as emu:
            result = export_runs_flow(
                credentials_for(emu), since=DAY, until=NEXT, output_path=str(target)
            )
            assert _jsonl(target) == emu.runs
            shas.append(result.sha256)
            assert result.running_count == (1 if data is runs else 0)
    assert shas[0] != shas[1]
    events = asset_events(f"file://{target}", count=2)
    assert [e.payload["sha256"] for e in events] == shas
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl", "runs.jsonl.manifest.json"]


def test_flow_filters_formats_and_an_explicit_asset_key(
    emu: Emulator, credentials: TimbalCredentials, tmp_path: Path
) -> None:
    target = tmp_path / "errors.parquet"
    result = export_runs_flow(
        credentials,
        since=DAY,
        until=NEXT + timedelta(days=6),
        output_path=str(target),
        status="error",
        asset_key="s3://analytics/timbal/errors.parquet",
    )
    truth = runs_between(emu.runs, DAY, NEXT + timedelta(days=6), status="error")
    assert pq.read_table(target, columns=["id"]).column("id").to_pylist() == [
        r["id"] for r in truth
    ]
    assert result.format == "parquet"
    assert result.error_count == result.count == len(truth)
    (event,) = asset_events("s3://analytics/timbal/errors.parquet", count=1)
    assert event.payload["filters"]["status"] == "error"
    assert event.payload["count"] == len(truth)


def test_the_tasks_in_a_flow(emu: Emulator, credentials: TimbalCredentials, tmp_path: Path) -> None:
    @flow
    def report(path: str) -> tuple[list[Run], RunSummary, ExportResult]:
        listed = list_runs(credentials, status="error", since=DAY, until=NEXT)
        summary = summarize_runs(credentials, since=DAY, until=NEXT)
        exported = export_runs(credentials, path, since=DAY, until=NEXT, workforce_id="wf_sales")
        return listed, summary, exported

    path = tmp_path / "sales.csv"
    listed, summary, exported = report(str(path))
    day = runs_between(emu.runs, DAY, NEXT)
    assert [run.id for run in listed] == [r["id"] for r in day if r["status"] == "error"]
    assert summary.total == len(day)
    assert summary.error_count == stats(day)["error_count"]
    assert summary.cost_usd_total == stats(day)["cost_usd"]
    sales = [r for r in day if r["workforce"]["id"] == "wf_sales"]
    ids = [line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]]
    assert ids == [r["id"] for r in sales]
    assert {k: getattr(exported, k) for k in stats(sales)} == stats(sales)


def test_summarize_runs_with_a_bucket_gives_the_series_of_the_window(
    emu: Emulator, credentials: TimbalCredentials
) -> None:
    @flow
    def hourly() -> RunSummary:
        return summarize_runs(credentials, since=DAY, until=NEXT, bucket="hour")

    summary = hourly()
    day = runs_between(emu.runs, DAY, NEXT)
    assert summary.bucket == "hour"
    assert summary.series is not None
    assert [b.start for b in summary.series] == [DAY + timedelta(hours=h) for h in range(24)]
    assert sum(b.total for b in summary.series) == summary.total == len(day)
    for b in summary.series:
        inside = stats(runs_between(day, b.start, b.end))
        assert (b.total, b.error_count) == (inside["count"], inside["error_count"])
        assert (b.cost_usd, b.cost_credits) == (inside["cost_usd"], inside["cost_credits"])


def test_a_bad_bucket_fails_the_task_before_any_request(
    emu: Emulator, credentials: TimbalCredentials
) -> None:
    @flow
    def series(since: datetime, bucket: str) -> RunSummary:
        return summarize_runs(credentials, since=since, until=NEXT, bucket=bucket)  # type: ignore[arg-type]

    mark = emu.request_log.total
    with pytest.raises(QueryError) as info:
        series(DAY, "fortnight")
    assert info.value.field == "bucket"
    with pytest.raises(QueryError) as info:  # 8,784 hours: more than a series holds
        series(DAY - timedelta(days=365), "hour")
    assert info.value.field == "bucket"
    assert len(emu.request_log.since(mark)) == 0


def test_bad_filters_fail_the_flow_naming_the_field(
    credentials: TimbalCredentials, tmp_path: Path
) -> None:
    with pytest.raises(QueryError) as info:
        export_runs_flow(credentials, since=NEXT, until=DAY, output_path=str(tmp_path / "x.jsonl"))
    assert info.value.field == "since"
    with pytest.raises(QueryError) as info:
        export_runs_flow(
            credentials, since=DAY, until=NEXT, output_path=str(tmp_path / "x.jsonl"),
            status="error", sort_by="colour",
        )  # fmt: skip
    assert info.value.field == "sort_by"
    with pytest.raises(QueryError) as info:
        export_runs_flow(credentials, since=DAY, until=NEXT, output_path=str(tmp_path / "x.xlsx"))
    assert info.value.field == "format"
    with pytest.raises(QueryError) as info:
        export_runs_flow(
            credentials, since=DAY, until=NEXT, output_path=str(tmp_path / "my runs.jsonl")
        )
    assert info.value.field == "output_path"
    assert "asset_key=" in str(info.value)
    assert not list(tmp_path.iterdir())


def test_an_api_refusal_fails_the_flow_with_the_api_message(emu: Emulator, tmp_path: Path) -> None:
    with pytest.raises(PermissionDeniedError) as info:
        export_runs_flow(
            credentials_for(emu, project_id="not-mine"),
            since=DAY,
            until=NEXT,
            output_path=str(tmp_path / "x.jsonl"),
        )
    text = str(info.value)
    assert text.startswith("403 Forbidden"), text
    assert text.endswith("check TimbalCredentials.org_id and TimbalCredentials.project_id)")
    assert "TIMBAL_" not in text


def test_given_retries_a_task_retries_only_what_a_retry_may_fix(emu: Emulator) -> None:
    """A refusal (403) fails the task at once, retries or not; a server error (503
    after the client's own retries) spends the task's retries, as the core classifies."""
    attempts = 3

    @flow
    def listing(credentials: TimbalCredentials) -> list[Run]:
        retried = list_runs.with_options(retries=attempts - 1, retry_delay_seconds=0)
        return retried(credentials, limit=5)

    mark = emu.request_log.total
    with pytest.raises(PermissionDeniedError):
        listing(credentials_for(emu, project_id="not-mine"))
    assert len(emu.request_log.since(mark)) == 1
    with serve(runs=20, fault_rate=1.0, fault_kinds=["503"]) as failing:
        with pytest.raises(ServerError) as info:
            listing(credentials_for(failing, max_retries=0))
        assert len(failing.request_log) == attempts
    assert str(info.value).startswith("503 Service Unavailable")


def test_the_key_is_in_no_flow_run_parameter_or_log(
    emu: Emulator, credentials: TimbalCredentials, tmp_path: Path
) -> None:
    """What the Prefect API keeps of a flow run (its parameters, its logs) never holds
    the key: the block's SecretStr is masked when Prefect serialises parameters."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, LogFilter
    from prefect.logging.handlers import APILogWorker

    export_runs_flow(credentials, since=DAY, until=NEXT, output_path=str(tmp_path / "r.jsonl"))
    APILogWorker.instance().drain()  # the run's logs, sent in the background, are in
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["timbal-export-runs"]))
        )
        assert runs
        logs = client.read_logs(log_filter=LogFilter())
    for run in runs:
        text = json.dumps(run.parameters, default=str)
        assert SECRET_KEY not in text
        assert "credentials" in run.parameters
    assert any("Timbal run(s)" in log.message for log in logs)
    assert not any(SECRET_KEY in log.message for log in logs)
