"""Run traces: the SDK's span shape, a consistent tree, usage, errors, and big traces."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from timbal_integrations.emulator import FIXED_END, EmulatorClock, create_app, make_trace
from timbal_integrations.emulator.catalog import ERRORS

_SDK_KEYS = {
    "path", "call_id", "parent_call_id", "t0", "t1", "elapsed",
    "input", "output", "status", "error", "usage", "metadata",
}  # fmt: skip


def spans_of(trace: Any) -> list[dict[str, Any]]:
    if isinstance(trace, dict):
        for call_id, span in trace.items():
            assert span["call_id"] == call_id
        return list(trace.values())
    assert isinstance(trace, list)
    return trace


def created_ms(detail: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(detail["created_at"]).timestamp() * 1000)


def check_tree(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Check one run's trace; returns its spans."""
    spans = spans_of(detail["trace"])
    by_id = {span["call_id"]: span for span in spans}
    assert len(by_id) == len(spans)
    roots = [span for span in spans if span["parent_call_id"] is None]
    assert len(roots) == 1
    root = roots[0]
    assert root["t0"] == created_ms(detail)
    running = detail["status"] == "running"
    if running:
        assert root["t1"] is None
        assert root["status"] is None
    else:
        assert root["t1"] == root["t0"] + detail["duration_ms"]
        assert root["status"]["code"] == detail["status"]
    children: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        assert len(span["call_id"]) == 32
        assert span["call_id"][12] == "7"  # a UUIDv7
        if span is root:
            continue
        parent = by_id[span["parent_call_id"]]
        children.setdefault(parent["call_id"], []).append(span)
        assert span["path"].startswith(parent["path"] + ".")
        assert parent["t0"] <= span["t0"]
        if span["t1"] is not None:
            assert span["t0"] <= span["t1"]
            if parent["t1"] is not None:
                assert span["t1"] <= parent["t1"]
        else:
            assert parent["t1"] is None  # an open call's parent is open too
            assert span["status"] is None
            assert span["output"] is None
        if "elapsed" in span:
            assert span["elapsed"] == (None if span["t1"] is None else span["t1"] - span["t0"])
    # Usage is cumulative: each span holds at least the sum of its children's.
    for span in spans:
        total: Counter[str] = Counter()
        for child in children.get(span["call_id"], ()):
            total.update(child["usage"])
        for key, value in total.items():
            assert span["usage"].get(key, 0) >= value
        for key, value in span["usage"].items():
            _model, _, counter = key.partition(":")
            assert counter
            assert isinstance(value, int)
            assert value >= 0
    for span in spans:
        if span["metadata"].get("type") == "LLM":
            assert span["path"].endswith(".llm")
            assert span["metadata"]["model_provider"] in ("openai", "anthropic")
            assert span["metadata"]["model_name"]
            if span["status"] is not None and span["status"]["code"] == "success":
                assert span["metadata"]["ttft"] >= 0
                assert span["metadata"]["tps"] >= 0
                model = f"{span['metadata']['model_provider']}/{span['metadata']['model_name']}"
                assert span["usage"][f"{model}:input_tokens"] > 0
    return spans


def test_frozen_traces_are_consistent(api: Any, timbal_emulator: Any) -> None:
    statuses: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    extra: Counter[str] = Counter()
    for run in timbal_emulator.runs[::7]:
        detail = api.get(run["id"]).json()  # validated against RunDetail and TimbalTrace
        spans = check_tree(detail)
        statuses[detail["status"]] += 1
        forms[type(detail["trace"]).__name__] += 1
        for span in spans:
            extra.update(set(span) - _SDK_KEYS)
            assert {"path", "call_id", "parent_call_id", "t0", "t1", "usage", "metadata"} <= set(
                span
            )
    assert set(statuses) == {"success", "error", "cancelled", "running"}
    assert forms["list"] > forms["dict"] > 0  # both serialisations occur
    assert {"session", "memory", "x_sampling"} <= set(extra)  # keys beyond the SDK's


def test_failed_runs_have_an_error_span_matching_status_detail(timbal_emulator: Any) -> None:
    kinds: Counter[str] = Counter()
    for detail in timbal_emulator.details:
        if detail["status"] != "error":
            continue
        spans = spans_of(detail["trace"])
        root = next(s for s in spans if s["parent_call_id"] is None)
        failing = [s for s in spans if s["status"] and s["status"]["code"] in ("error", "timeout")]
        assert failing
        status_detail = detail["status_detail"]
        assert status_detail["code"] == "error"
        assert status_detail["reason"] in ERRORS
        assert root["status"]["code"] == "error"
        assert root["error"]["type"] == status_detail["reason"]
        assert root["error"]["message"] == status_detail["message"]
        assert status_detail["message"] in root["error"]["traceback"]
        for span in failing:
            assert span["error"]["message"] == status_detail["message"]
        kinds[status_detail["reason"]] += 1
        if status_detail["reason"] == "TimeoutError":
            assert any(s["status"]["code"] == "timeout" for s in failing)
        if status_detail["reason"] == "RateLimitError":
            assert any(s["path"].endswith(".llm") for s in failing)
    assert set(kinds) == set(ERRORS)


def test_successful_and_cancelled_runs(timbal_emulator: Any) -> None:
    blocked = 0
    for detail in timbal_emulator.details[::3]:
        spans = spans_of(detail["trace"])
        root = next(s for s in spans if s["parent_call_id"] is None)
        if detail["status"] == "success":
            assert all(s["error"] is None for s in spans)
            assert root["output"] is not None
            assert detail["status_detail"]["code"] == "success"
            blocked += any(s["status"]["code"] == "blocked" for s in spans)
            if detail["cost_usd"] > 0:
                tokens = [v for k, v in root["usage"].items() if k.endswith(":input_tokens")]
                assert sum(tokens) > 0
        elif detail["status"] == "cancelled":
            assert root["status"]["code"] == "cancelled"
            assert root["status"]["reason"] == detail["status_detail"]["reason"]
    assert blocked > 0


def test_live_running_traces_grow_with_the_clock() -> None:
    clock = EmulatorClock(FIXED_END)
    app = create_app(runs=3000, live=True, clock=clock)
    running = next(r for r in app.runs if r["status"] == "running")
    earlier = orjson.loads(app.state.detail(running["id"]))
    spans = check_tree(earlier)
    assert all(s["t0"] <= clock.now_ms() for s in spans)
    assert all(s["t1"] is None or s["t1"] <= clock.now_ms() for s in spans)
    clock.advance(timedelta(days=9))
    final = orjson.loads(app.state.detail(running["id"]))
    assert final["status"] != "running"
    final_spans = {s["call_id"]: s for s in check_tree(final)}
    assert len(final_spans) > len(spans)
    for span in spans:  # the same calls, now finished; those done then are unchanged
        done = final_spans[span["call_id"]]
        assert (done["path"], done["parent_call_id"], done["t0"]) == (
            span["path"],
            span["parent_call_id"],
            span["t0"],
        )
        if span["t1"] is not None:
            assert done == span


def test_traces_are_deterministic_and_built_on_demand() -> None:
    first, second = create_app(runs=400, seed=8), create_app(runs=400, seed=8)
    other = create_app(runs=400, seed=9)
    run_id = first.runs[17]["id"]
    assert first.state.detail(run_id) == second.state.detail(run_id)
    assert other.runs[17]["id"] != run_id
    records = first.state.source.dataset.records
    assert all("trace" not in record for record in records)  # nothing held per run


def test_default_traces_stay_small() -> None:
    app = create_app(runs=3000, seed=1)
    sizes = [len(app.state.detail(run["id"]) or b"") for run in app.runs[::10]]
    assert max(sizes) < 30_000  # an MCP get_run answer fits its budget
    assert sorted(sizes)[len(sizes) // 2] > 1_500


def test_make_trace_builds_big_traces(timbal_emulator_factory: Any, make_api: Any) -> None:
    trace = make_trace(200, text_chars=3_000, seed=2)
    assert len(trace) == 200
    assert trace == make_trace(200, text_chars=3_000, seed=2)
    assert len(orjson.dumps(trace)) > 200 * 1_500
    llm_inputs = [
        s["input"]["messages"][0]["content"][0]["text"]
        for s in trace
        if s["path"].endswith(".llm") and s["path"].count(".") == 1
    ]
    assert all(len(text) == 3_000 for text in llm_inputs)
    failed = make_trace(50, status="error")
    assert len(failed) == 50
    assert next(s for s in failed if s["parent_call_id"] is None)["status"]["code"] == "error"
    with pytest.raises(ValueError, match="spans"):
        make_trace(0)

    emu = timbal_emulator_factory(runs=10)
    base = dict(emu.details[0])
    base.update(id="run-big", idempotency_key="key-big", trace=trace)
    emu.add_run(base)
    served = make_api(emu).get("run-big").json()
    assert served["trace"] == trace


def test_every_status_validates_live_and_frozen(
    make_api: Any, timbal_emulator_factory: Any
) -> None:
    clock = EmulatorClock(FIXED_END)
    for emu in (
        timbal_emulator_factory(runs=1500, seed=11),
        timbal_emulator_factory(runs=1500, seed=11, live=True, clock=clock),
    ):
        api = make_api(emu)
        seen: Counter[str] = Counter()
        for run in emu.runs:
            if seen[run["status"]] >= 25:
                continue
            seen[run["status"]] += 1
            detail = api.get(run["id"]).json()  # RunDetail, TimbalTrace, TimbalRunStatus
            check_tree(detail)
            assert api.reactions(run["id"]).status_code == 200  # ListReactionsResBody
        assert {"success", "error", "cancelled"} <= set(seen)
        assert "running" in seen or emu.clock is not None
