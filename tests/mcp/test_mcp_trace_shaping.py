"""The ``get_run`` budget holds whatever the run holds: thousands of spans, every span
failing, huge status messages and unknown fields; numbers read rounded."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_server.readable import readable_number
from mcp_server.trace_shaping import shape_run
from tests.support.runs import make_run
from timbal_integrations import Reaction, RunDetail
from timbal_integrations.defaults import (
    MCP_GET_RUN_FULL_CHARS,
    MCP_GET_RUN_SUMMARY_CHARS,
    MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS,
)
from timbal_integrations.emulator import make_trace

LIMITS = {
    "summary": (MCP_GET_RUN_SUMMARY_CHARS, MCP_GET_RUN_SUMMARY_STRUCTURED_CHARS),
    "full": (MCP_GET_RUN_FULL_CHARS, MCP_GET_RUN_FULL_CHARS),
}


def detail(trace: Any, **fields: Any) -> RunDetail:
    return RunDetail.model_validate({**make_run(1), "trace": trace, **fields})


def check(run: RunDetail, reactions: list[Reaction] | None = None) -> dict[str, dict[str, Any]]:
    out = {}
    for level, (text_limit, struct_limit) in LIMITS.items():
        view = shape_run(run, reactions or [], level=level)  # type: ignore[arg-type]
        assert len(view.text) <= text_limit, (level, len(view.text))
        assert len(orjson.dumps(view.structured)) <= struct_limit, level
        out[level] = view.structured
    return out


def failing_everywhere(n: int) -> list[dict[str, Any]]:
    spans = [{"call_id": "root", "parent_call_id": None, "path": "agent", "t0": 0, "t1": n}]
    for i in range(n):
        spans.append(
            {
                "call_id": f"c{i}",
                "parent_call_id": "root" if i == 0 else f"c{i - 1}",  # a 3,000-deep chain
                "path": "agent" + ".step" * (i + 1),
                "t0": i,
                "t1": i + 1,
                "status": {"code": "error", "reason": None, "message": "x" * 500},
                "error": {"type": "Boom", "message": "y" * 500, "traceback": "z" * 5000},
            }
        )
    return spans


def test_thousands_of_spans() -> None:
    shaped = check(detail(make_trace(3000, text_chars=3000, status="error")))
    for data in shaped.values():
        trace = data["trace"]
        assert trace["spans"] == 3000
        assert trace["shown"] + trace["elided"] == 3000
        shown = {e.get("call_id") for e in trace["tree"]}
        if "call_id" in trace["tree"][0]:  # full detail: the failing spans are kept
            assert {f["call_id"] for f in trace["failures"]} <= shown
        assert trace["tree"][0]["depth"] == 0  # the root is always kept
        assert any("left out" in note for note in data["truncated"])


def test_every_span_failing_in_a_deep_chain() -> None:
    shaped = check(detail(failing_everywhere(3000), status="error"))
    assert shaped["summary"]["trace"]["shown"] < 3001


def test_huge_fields_and_feedback() -> None:
    run = detail(
        make_trace(20),
        status_detail={"code": "error", "reason": "Boom", "message": "m" * 1_000_000},
        metadata={"blob": "b" * 1_000_000},
        notes=["n" * 10_000] * 100,
    )
    reaction = Reaction.model_validate(
        {
            "id": "r",
            "user": {"id": "u", "name": "U", "email": "u@x"},
            "sentiment": "negative",
            "feedback": "f" * 100_000,
            "created_at": 1767225600000,
        }
    )
    shaped = check(run, [reaction] * 20)
    notes = " ".join(shaped["summary"]["truncated"])
    assert "status_detail.message cut" in notes
    assert "metadata cut" in notes
    assert "feedback(s) cut" in notes


def test_no_trace_at_all() -> None:
    shaped = check(detail(None))
    assert "trace" not in shaped["summary"]
    assert "truncated" not in shaped["summary"]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_readable_numbers_keep_four_decimals_or_four_digits(value: float) -> None:
    shown = readable_number(value)
    if value == 0:
        assert shown == 0
    elif abs(value) >= 0.01:
        assert abs(shown - value) <= 0.00005 + 1e-9 * abs(value)
        assert len(repr(shown).split(".")[-1]) <= 4 or "e" in repr(shown)
    else:
        assert math.isclose(shown, value, rel_tol=5e-4)


@pytest.mark.parametrize(
    ("value", "shown"), [(2.6868279999999998, 2.6868), (0.000123456, 0.0001235)]
)
def test_readable_examples(value: float, shown: float) -> None:
    assert readable_number(value) == shown
