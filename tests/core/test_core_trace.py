"""Typed traces: the emulator's traces (validated against the spec) parsed into a tree,
through both clients; malformed traces read as None, never as an error."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.helpers_core import KINDS, Driver
from tests.support.spec import STATUS_VALIDATOR, TRACE_VALIDATOR, epoch_ms
from timbal_integrations import RunDetail, Span, Trace, parse_trace
from timbal_integrations.emulator import Emulator, generate_runs, make_trace
from timbal_integrations.trace import SPAN_KEYS, RunStatus, group_usage, parse_status


def raw_spans(trace: Any) -> list[dict[str, Any]]:
    return list(trace.values()) if isinstance(trace, dict) else list(trace)


def check_against_raw(detail: dict[str, Any], trace: Trace) -> None:
    """What the parsed trace must say about a spec-valid raw trace, recomputed here."""
    spans = raw_spans(detail["trace"])
    assert len(trace) == len(spans)
    assert trace.skipped == 0
    assert trace.form == ("dict" if isinstance(detail["trace"], dict) else "list")
    by_id = {s["call_id"]: s for s in spans}
    for span in trace:
        raw = by_id[span.call_id]
        assert span.raw == raw
        assert span.path == raw["path"]
        assert span.t0 == raw["t0"]
        assert span.t1 == raw["t1"]
        assert dict(span.usage) == raw["usage"]
        assert span.input == raw["input"]
        assert span.output == raw["output"]
        assert dict(span.extra) == {k: v for k, v in raw.items() if k not in SPAN_KEYS}
        if raw["status"] is None:
            assert span.status is None
        else:
            assert span.status == RunStatus(
                raw["status"]["code"], raw["status"]["reason"], raw["status"]["message"]
            )
        if raw["error"] is not None:
            assert span.error is not None
            assert span.error.message == raw["error"]["message"]
            assert span.error.type == raw["error"]["type"]
    root = trace.root
    assert root is not None
    assert root.parent_call_id is None
    assert root.t0 == epoch_ms(detail["created_at"])
    walked = list(trace.walk())
    assert sorted(s.call_id for s, _ in walked) == sorted(by_id)  # every span once
    base = root.path.count(".")
    for span, depth in walked:
        assert depth == span.path.count(".") - base  # the emulator's paths nest
        kids = trace.children(span)
        assert [k.t0 for k in kids] == sorted(k.t0 for k in kids)
        assert all(trace.parent(k) is span for k in kids)
    if detail["status"] != "running":
        assert trace.duration_ms == detail["duration_ms"]
        # usage is cumulative: the run's usage is the root's, and the LLM calls' sum
        assert trace.usage() == root.usage
        leaves: Counter[str] = Counter()
        for span in trace:
            if not trace.children(span):
                leaves.update(span.usage)
        assert trace.usage() == dict(leaves)
    grouped = trace.usage_by_model()
    assert sum(sum(c.values()) for c in grouped.values()) == sum(trace.usage().values())


def test_emulator_traces_follow_the_spec_and_parse_into_their_tree(
    timbal_emulator: Emulator,
) -> None:
    forms: Counter[str] = Counter()
    failed = 0
    for detail in list(timbal_emulator.details)[:600]:
        TRACE_VALIDATOR.validate(detail["trace"])
        if detail["status_detail"] is not None:
            STATUS_VALIDATOR.validate(detail["status_detail"])
        model = RunDetail.model_validate(detail)
        trace = model.parsed_trace
        assert trace is not None
        check_against_raw(detail, trace)
        forms[trace.form] += 1
        status = model.status_info
        if detail["status"] == "error":
            assert status is not None
            assert status.code == "error"
            failures = trace.failures()
            assert failures, detail["id"]
            first = failures[0]
            assert not any(s.failed for s, _ in _subtree(trace, first) if s is not first)
            assert trace.depth(first) == max(trace.depth(s) for s in failures)
            assert trace.root in failures
            assert (first.status.message if first.status else None) == status.message
            failed += 1
        else:
            assert not [s for s in trace.failures() if s.status_code == "error"]
    assert forms["dict"] > 50
    assert forms["list"] > 50
    assert failed > 30


def _subtree(trace: Trace, top: Span) -> list[tuple[Span, int]]:
    out = [(top, 0)]
    for kid in trace.children(top):
        out.extend(_subtree(trace, kid))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_both_clients_parse_the_trace_they_fetch(kind: str, timbal_emulator: Emulator) -> None:
    details = list(timbal_emulator.details)[:200]
    picks = [
        next(d for d in details if isinstance(d["trace"], dict)),
        next(d for d in details if isinstance(d["trace"], list)),
        next(d for d in details if d["status"] == "error"),
    ]
    drive = Driver(kind, env=timbal_emulator.env())
    for source in picks:
        detail = drive.get_run(source["id"])
        trace = detail.parsed_trace
        assert trace is not None
        check_against_raw(source, trace)
        assert detail.trace == source["trace"]  # the raw field is kept as sent
        assert detail.model_dump(mode="json")["trace"] == source["trace"]


@pytest.mark.parametrize("status", ["success", "error"])
def test_a_200_span_trace(timbal_emulator_factory: Any, status: str) -> None:
    emu = timbal_emulator_factory(runs=generate_runs(5, seed=2))
    trace_200 = make_trace(200, status=status)
    emu.add_run({**emu.details[1], "id": "big", "idempotency_key": "big-key", "trace": trace_200})
    detail = Driver("sync", env=emu.env()).get_run("big-key")
    trace = detail.parsed_trace
    assert trace is not None
    assert len(trace) == 200
    assert len(list(trace.walk())) == 200
    assert trace.root is not None
    assert bool(trace.failures()) is (status == "error")
    assert trace.usage_by_model()


# --- malformed traces ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        5,
        "a trace",
        [],
        {},
        [1, "two", None],
        [{"path": "agent"}],  # no call_id
        [{"call_id": 7, "path": "agent"}],  # not a string
        {"spans": [{"call_id": "a"}]},  # a dict whose values are not spans
        True,
    ],
)
def test_a_missing_or_malformed_trace_is_none(value: Any) -> None:
    assert parse_trace(value) is None
    detail = RunDetail.model_validate(
        {
            "id": "r",
            "idempotency_key": "k",
            "status": "success",
            "created_at": "2026-01-01T00:00:00Z",
            "cost_usd": 0,
            "cost_credits": 0,
            "user": {"id": "u", "name": "n", "email": "e@x"},
            "trace": value,
            "status_detail": value,
        }
    )
    assert detail.parsed_trace is None
    assert detail.trace == value


def test_bad_fields_read_as_absent_and_unknown_ones_are_kept() -> None:
    trace = parse_trace(
        [
            {
                "call_id": "a",
                "path": "agent",
                "parent_call_id": None,
                "t0": 1000.0,
                "t1": "soon",
                "elapsed": True,
                "status": "error",
                "error": "boom",
                "usage": {"m:input_tokens": "3", "m:output_tokens": 2.0, "x:y": True, 5: 1},
                "metadata": ["not", "a", "dict"],
                "custom": {"kept": 1},
            },
            "not a span",
            {"call_id": "b", "parent_call_id": "a", "t0": 1001, "t1": 1005, "elapsed": 4},
            {"call_id": "b", "path": "duplicate"},
        ]
    )
    assert trace is not None
    assert trace.skipped == 2
    a, b = trace.spans
    assert (a.t0, a.t1, a.elapsed, a.duration_ms) == (1000, None, None, None)
    assert a.status == RunStatus("error")
    assert a.error is not None
    assert a.error.message == "boom"
    assert a.failed
    assert dict(a.usage) == {"m:output_tokens": 2}
    assert dict(a.metadata) == {}
    assert dict(a.extra) == {"custom": {"kept": 1}}
    assert a.name == "agent"
    assert b.name == "b"  # no path: named by its call id
    assert b.duration_ms == 4
    assert trace.failures() == [a]


def test_dict_form_takes_call_ids_from_keys() -> None:
    trace = parse_trace({"x": {"path": "agent", "parent_call_id": None, "t0": 1, "t1": 2}})
    assert trace is not None
    assert trace.form == "dict"
    assert trace.spans[0].call_id == "x"


def test_orphans_and_cycles_are_walked_once() -> None:
    trace = parse_trace(
        [
            {"call_id": "root", "parent_call_id": None, "t0": 0},
            {"call_id": "kid", "parent_call_id": "root", "t0": 5},
            {"call_id": "early", "parent_call_id": "root", "t0": 1},
            {"call_id": "orphan", "parent_call_id": "gone", "t0": 2},
            {"call_id": "c1", "parent_call_id": "c2", "t0": 3},
            {"call_id": "c2", "parent_call_id": "c1", "t0": 4},
            {"call_id": "self", "parent_call_id": "self", "t0": 9},
        ]
    )
    assert trace is not None
    walked = [(s.call_id, d) for s, d in trace.walk()]
    assert sorted(c for c, _ in walked) == sorted(s.call_id for s in trace)
    assert walked[:3] == [("root", 0), ("early", 1), ("kid", 1)]
    assert trace.root is not None
    assert trace.root.call_id == "root"
    assert {s.call_id for s in trace.roots} == {"root", "orphan", "self"}
    assert trace.ancestors(trace.get("c1")) == [trace.get("c2")]  # type: ignore[arg-type]


def test_an_open_span() -> None:
    trace = parse_trace([{"call_id": "a", "parent_call_id": None, "t0": 5, "t1": None}])
    assert trace is not None
    span = trace.spans[0]
    assert span.is_open
    assert span.duration_ms is None
    assert trace.duration_ms is None


def test_usage_grouping_and_own_usage() -> None:
    assert group_usage({"openai/gpt-4o:input_tokens": 3, "openai/gpt-4o:output_tokens": 1}) == {
        "openai/gpt-4o": {"input_tokens": 3, "output_tokens": 1}
    }
    assert group_usage({"requests": 2, "a/b:c:d": 1}) == {"": {"requests": 2}, "a/b": {"c:d": 1}}
    # A trace whose spans hold only their own usage (not cumulative) still sums right.
    flat = parse_trace(
        [
            {"call_id": "r", "parent_call_id": None, "usage": {}},
            {"call_id": "x", "parent_call_id": "r", "usage": {"m:t": 2}},
            {"call_id": "y", "parent_call_id": "r", "usage": {"m:t": 3}},
        ]
    )
    assert flat is not None
    assert flat.usage() == {"m:t": 5}


def test_parse_status() -> None:
    assert parse_status({"code": "error", "reason": "ToolError", "message": "x", "n": 1}) == (
        RunStatus("error", "ToolError", "x", {"n": 1})
    )
    assert parse_status({"code": 5}) is None
    assert parse_status({"reason": "no code"}) is None
    assert parse_status("") is None
    assert parse_status(None) is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
_ids = st.sampled_from(["a", "b", "c", "d", ""])
_span = st.fixed_dictionaries(
    {},
    optional={
        "call_id": _ids | st.integers(),
        "parent_call_id": st.none() | _ids,
        "path": st.text(max_size=8) | st.integers(),
        "t0": st.none() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=2),
        "t1": st.none() | st.integers(-5, 5) | st.booleans(),
        "elapsed": st.none() | st.integers(-5, 5),
        "status": st.none()
        | st.text(max_size=6)
        | st.fixed_dictionaries({}, optional={"code": _json, "reason": _json, "message": _json}),
        "error": _json,
        "usage": st.dictionaries(st.text(max_size=6), _json, max_size=4) | _json,
        "metadata": _json,
        "extra": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_span | _json, max_size=8) | st.dictionaries(_ids, _span | _json, max_size=5) | _json
)
def test_parsing_never_fails_and_walks_every_span_once(value: Any) -> None:
    trace = parse_trace(value)
    if trace is None:
        return
    ids = [s.call_id for s in trace]
    assert len(ids) == len(set(ids))
    assert sorted(s.call_id for s, _ in trace.walk()) == sorted(ids)
    assert set(s.call_id for s in trace.failures()) <= set(ids)
    for span in trace:
        assert all(isinstance(v, int) for v in span.usage.values())
        assert span.duration_ms is None or span.duration_ms >= 0
    assert all(isinstance(v, int) for v in trace.usage().values())
    trace.usage_by_model()
    assert trace.root is None or trace.root.call_id in ids
