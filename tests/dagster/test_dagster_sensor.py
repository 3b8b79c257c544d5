"""``timbal_runs_sensor``: evaluations against the emulator, with a cursor across them.

Two data sets stand for the API before and after time passes: new failed runs appear,
and runs that were ``running`` end in ``error`` (they start to match the filter late).
"""

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import (  # noqa: E402
    Config,
    DagsterInstance,
    Definitions,
    OpExecutionContext,
    RunConfig,
    build_sensor_context,
    job,
    op,
)

from dagster_timbal import TimbalSensorCursor, timbal_runs_sensor  # noqa: E402
from tests.dagster.helpers_dagster import resource_for  # noqa: E402
from tests.support.truth import SECRET_KEY, created, serve  # noqa: E402
from timbal_integrations import AuthenticationError, ConfigError, QueryError, Run  # noqa: E402
from timbal_integrations.emulator import Emulator, generate_runs  # noqa: E402

pytestmark = pytest.mark.dagster

END = datetime(2026, 1, 1, tzinfo=UTC)
LOOKBACK = timedelta(hours=12)
START = "2025-12-29T00:00:00Z"


class TriageConfig(Config):
    run_ids: list[str]


@op
def triage(context: OpExecutionContext, config: TriageConfig) -> None:
    context.log.info(f"{len(config.run_ids)} run(s)")


@job
def triage_job() -> None:
    triage()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _before() -> list[dict[str, Any]]:
    """Three days of runs, newest first; at least one error among the last hours."""
    runs = generate_runs(150, seed=11, end=END, span=timedelta(days=3))
    return [dict(run) for run in runs]


def _after(before: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """The same history later: some runs ended in error, new failed runs arrived.

    Returns the runs and the ids by kind: ``late`` (starts to match, created within the
    lookback of the newest error seen), ``too_late`` (starts to match, created long
    before it) and ``new`` (created after everything before).
    """
    after = [dict(run) for run in before]
    newest_error = max(created(r) for r in before if r["status"] == "error")
    others = [r for r in after if r["status"] != "error"]
    late = next(r for r in others if newest_error - LOOKBACK / 2 < created(r) < newest_error)
    too_late = next(r for r in others if created(r) < newest_error - 2 * LOOKBACK)
    for run in (late, too_late):  # each now matches status=error, created long ago
        run.update(status="error", duration_ms=1234)
    template = next(r for r in before if r["status"] == "error")
    new = []
    for i in range(3):
        moment = END + timedelta(minutes=10 * (i + 1))
        run_id = f"01NEWERROR{i:016d}"
        new.append(dict(template, id=run_id, idempotency_key=f"new-{i}", created_at=_iso(moment)))
    return [*reversed(new), *after], {
        "late": {late["id"]},
        "too_late": {too_late["id"]},
        "new": {r["id"] for r in new},
    }


@pytest.fixture(scope="module")
def data() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, set[str]]]:
    before = _before()
    after, kinds = _after(before)
    return before, after, kinds


@pytest.fixture
def serve_runs() -> Iterator[Any]:
    """Start an emulator serving the given runs (with the secret key) for the test."""
    import contextlib

    with contextlib.ExitStack() as stack:

        def start(runs: Sequence[Mapping[str, Any]]) -> Emulator:
            return stack.enter_context(serve(runs, page_size=20))

        yield start


def _evaluate(sensor: Any, emu: Emulator, instance: Any, cursor: str | None) -> Any:
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"timbal": resource_for(emu)}
    )
    return sensor.evaluate_tick(context)


def _requested(result: Any) -> list[str]:
    return [i for request in result.run_requests for i in request.tags["timbal/run_ids"].split(",")]


def _errors_since(runs: Sequence[Mapping[str, Any]], since: str) -> list[str]:
    """Ids of the failed runs created at or after ``since``, oldest first."""
    start = datetime.fromisoformat(since)
    matching = [r for r in runs if r["status"] == "error" and created(r) >= start]
    return [r["id"] for r in sorted(matching, key=lambda r: (created(r), r["id"]))]


def test_each_matching_run_triggers_once_and_late_ones_are_found(
    data: Any, serve_runs: Any, instance: DagsterInstance
) -> None:
    before, after, kinds = data
    sensor = timbal_runs_sensor(
        triage_job, status="error", start=START, lookback=LOOKBACK, batch_size=4
    )
    first_api = serve_runs(before)
    # First evaluation: every failed run since ``start``, oldest first, in batches of 4.
    first = _evaluate(sensor, first_api, instance, None)
    expected = _errors_since(before, START)
    assert len(expected) > 4
    assert _requested(first) == expected
    assert [len(r.tags["timbal/run_ids"].split(",")) for r in first.run_requests][:-1] == [4] * (
        len(first.run_requests) - 1
    )
    for request in first.run_requests:
        ids = request.tags["timbal/run_ids"].split(",")
        assert request.tags["timbal/run_count"] == str(len(ids))
        truth = {r["id"]: r for r in before}
        assert request.tags["timbal/first_created_at"][:19] == truth[ids[0]]["created_at"][:19]
        assert request.tags["timbal/last_created_at"][:19] == truth[ids[-1]]["created_at"][:19]
    assert len({r.run_key for r in first.run_requests}) == len(first.run_requests)

    # Second evaluation, nothing new: no request, and the cursor keeps its place.
    second = _evaluate(sensor, first_api, instance, first.cursor)
    assert second.run_requests == []
    assert "no new Timbal runs" in (second.skip_message or "")
    assert second.cursor == first.cursor

    # Time passes: new failures, and a running run that failed within the lookback.
    later_api = serve_runs(after)
    third = _evaluate(sensor, later_api, instance, second.cursor)
    requested = _requested(third)
    assert set(requested) == kinds["late"] | kinds["new"]
    assert len(requested) == len(set(requested))
    assert not kinds["too_late"] & set(requested)  # older than the lookback: documented
    assert requested[0] in kinds["late"]  # oldest first

    fourth = _evaluate(sensor, later_api, instance, third.cursor)
    assert fourth.run_requests == []


def test_the_cursor_is_small_and_says_where_it_stands(
    data: Any, serve_runs: Any, instance: DagsterInstance
) -> None:
    before, _, _ = data
    sensor = timbal_runs_sensor(triage_job, status="error", start=START, lookback=LOOKBACK)
    result = _evaluate(sensor, serve_runs(before), instance, None)
    cursor = TimbalSensorCursor.from_json(result.cursor)
    newest = max(created(r) for r in before if r["status"] == "error")
    floor = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=cursor.floor_ms)
    assert floor == (newest - LOOKBACK).replace(microsecond=newest.microsecond // 1000 * 1000)
    # Only the runs at or after the floor are remembered, each with its created_at.
    remembered = [r["id"] for r in before if r["status"] == "error" and created(r) >= floor]
    assert sorted(cursor.seen) == sorted(remembered)
    assert TimbalSensorCursor.from_json(cursor.to_json()) == cursor
    assert SECRET_KEY not in result.cursor


def test_max_runs_takes_the_oldest_and_the_next_tick_continues(
    data: Any, serve_runs: Any, instance: DagsterInstance
) -> None:
    before, _, _ = data
    api = serve_runs(before)
    sensor = timbal_runs_sensor(
        triage_job, status="error", start=START, lookback=LOOKBACK, max_runs=3, batch_size=1
    )
    cursor = None
    requested: list[str] = []
    for _ in range(50):
        result = _evaluate(sensor, api, instance, cursor)
        if not result.run_requests:
            break
        assert len(result.run_requests) <= 3
        assert all(r.tags["timbal/run_count"] == "1" for r in result.run_requests)
        requested += _requested(result)
        cursor = result.cursor
    assert requested == _errors_since(before, START)


def test_run_config_carries_the_batch(
    data: Any, serve_runs: Any, instance: DagsterInstance
) -> None:
    before, _, _ = data

    def config(runs: Sequence[Run]) -> RunConfig:
        return RunConfig(ops={"triage": TriageConfig(run_ids=[run.id for run in runs])})

    sensor = timbal_runs_sensor(
        triage_job, name="triage_errors", status="error", start=START, run_config=config
    )
    defs = Definitions(jobs=[triage_job], sensors=[sensor])
    loaded = defs.resolve_sensor_def("triage_errors")
    result = _evaluate(loaded, serve_runs(before), instance, None)
    (request,) = result.run_requests
    assert request.run_config["ops"]["triage"]["config"]["run_ids"] == _errors_since(before, START)
    # The requested run is valid for the job: run it.
    run = triage_job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )
    assert run.success


def test_first_evaluation_without_start_looks_back_from_now(
    serve_runs: Any, instance: DagsterInstance
) -> None:
    """With no ``start``, the first evaluation looks ``lookback`` back from the wall clock:
    runs created just now are found, runs from last week are not."""
    now = datetime.now(UTC)
    runs = generate_runs(20, seed=3, end=now, span=timedelta(days=8))
    for run in runs:
        run["status"] = "error"
    sensor = timbal_runs_sensor(triage_job, status="error", lookback=timedelta(days=1))
    result = _evaluate(sensor, serve_runs(runs), instance, None)
    requested = set(_requested(result))
    recent = {r["id"] for r in runs if created(r) >= now - timedelta(hours=23)}
    old = {r["id"] for r in runs if created(r) < now - timedelta(hours=25)}
    assert recent <= requested
    assert not old & requested


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"since": "24h"}, "since"),
        ({"until": "1h"}, "until"),
        ({"sort_by": "id"}, "sort_by"),
        ({"sort_order": "desc"}, "sort_order"),
        ({"status": ["error"]}, "status"),
        ({"lookback": timedelta(0)}, "lookback"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_runs": True}, "max_runs"),
        ({"start": "not a time"}, "start"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(QueryError) as info:
        timbal_runs_sensor(triage_job, **kwargs)
    assert info.value.field == field


def test_a_bad_cursor_or_configuration_fails_the_tick_in_one_line(
    data: Any, serve_runs: Any, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, _, _ = data
    api = serve_runs(before)
    sensor = timbal_runs_sensor(triage_job, status="error", start=START)
    with pytest.raises(QueryError) as info:
        _evaluate(sensor, api, instance, '{"v": 1, "floor": "yesterday-ish", "seen": {}}')
    assert info.value.field == "cursor"
    assert "reset" in str(info.value)
    monkeypatch.delenv("TIMBAL_PROJECT_ID", raising=False)
    context = build_sensor_context(
        instance=instance, resources={"timbal": resource_for(api, project_id=None)}
    )
    with pytest.raises(ConfigError) as missing:
        sensor.evaluate_tick(context)
    assert str(missing.value) == (
        "no project: set TimbalResource.project_id (or TIMBAL_PROJECT_ID in the code "
        "location's environment)"
    )
    # The API's refusal, after the client's retries, in the resource's terms.
    context = build_sensor_context(
        instance=instance, resources={"timbal": resource_for(api, api_key="tk-wrong")}
    )
    with pytest.raises(AuthenticationError) as refused:
        sensor.evaluate_tick(context)
    text = str(refused.value)
    assert text.startswith("401 Unauthorized"), text
    assert text.endswith("check TimbalResource.api_key)"), text
    assert "\n" not in text
