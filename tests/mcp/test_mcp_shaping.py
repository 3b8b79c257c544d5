"""Shaping without a network: the cursor, compact rows, text rendering, capped breakdowns."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_server.shaping import (
    Cursor,
    cap_breakdowns,
    filters_fingerprint,
    render_runs_text,
    run_row,
)
from mcp_server.transport import is_loopback, security_settings
from timbal_integrations.errors import QueryError
from timbal_integrations.models import Run

RUN: dict[str, Any] = {
    "id": "01RUN",
    "idempotency_key": "key-1",
    "status": "error",
    "created_at": "2025-12-31T10:00:00.123456+00:00",
    "duration_ms": None,
    "cost_usd": 0.5,
    "cost_credits": 50.0,
    "group_id": "01RUN",
    "parent_id": None,
    "last_reaction_sentiment": None,
    "user": {"id": "usr_a", "name": "Ada", "email": "ada@x.test"},
    "workforce": {"id": "wf_a", "name": "agent-a", "type": "agent"},
}


@given(
    token=st.none() | st.text(min_size=1, max_size=200),
    offset=st.integers(min_value=0, max_value=10**6),
    since=st.none() | st.integers(min_value=0, max_value=2**48),
    until=st.none() | st.integers(min_value=0, max_value=2**48),
)
def test_cursor_round_trips(
    token: str | None, offset: int, since: int | None, until: int | None
) -> None:
    cursor = Cursor(token, offset, "0123456789abcdef", since, until)
    text = cursor.encode()
    assert text.isascii()
    assert "=" not in text
    assert Cursor.decode(text) == cursor


@given(st.text(max_size=300))
def test_garbage_never_decodes_into_something_else(text: str) -> None:
    try:
        decoded = Cursor.decode(text)
    except QueryError as exc:
        field = exc.field
    else:  # only a real encoding decodes
        assert decoded.encode() == text.strip()
        return
    assert field == "cursor"


@pytest.mark.parametrize(
    "payload",
    [
        [2, None, 0, "f", None, None],  # another version
        [1, None, -1, "f", None, None],  # a negative offset
        [1, None, True, "f", None, None],  # a boolean offset
        [1, "", 0, "f", None, None],  # an empty page token
        [1, None, 0, 5, None, None],  # a fingerprint that is not a string
        [1, None, 0, "f", "x", None],  # a window that is not milliseconds
        {"v": 1},
    ],
)
def test_tampered_cursors_are_refused(payload: Any) -> None:
    text = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()
    with pytest.raises(QueryError) as caught:
        Cursor.decode(text)
    assert caught.value.field == "cursor"


def test_fingerprint_depends_on_every_value_but_not_key_order() -> None:
    a = filters_fingerprint({"status": "error", "since": True})
    assert a == filters_fingerprint({"since": True, "status": "error"})
    assert a != filters_fingerprint({"status": "success", "since": True})
    assert a != filters_fingerprint({"status": "error", "since": False})


def test_rows_leave_nulls_out_and_keep_milliseconds() -> None:
    row = run_row(Run.model_validate(RUN))
    assert row == {
        "id": "01RUN",
        "created_at": "2025-12-31T10:00:00.123Z",
        "status": "error",
        "cost_usd": 0.5,
        "user": {"id": "usr_a", "name": "Ada", "email": "ada@x.test"},
        "workforce": {"id": "wf_a", "name": "agent-a"},
        "group_id": "01RUN",
    }


def test_text_rendering_has_a_header_a_table_and_legends() -> None:
    reply = {**RUN, "id": "01REPLY", "parent_id": "01RUN", "last_reaction_sentiment": "negative"}
    rows = [run_row(Run.model_validate(RUN)), run_row(Run.model_validate(reply))]
    text = render_runs_text(
        {
            "runs": rows,
            "returned": 2,
            "next_cursor": "abc",
            "applied_filters": {"status": "error", "sort_by": "created_at", "sort_order": "desc"},
            "hint": "More runs may match.",
        }
    )
    lines = text.splitlines()
    assert lines[0].startswith("2 run(s), sorted by created_at desc; filters: status=error")
    assert lines[0].endswith("more available")
    assert lines[1].startswith("id|created_at|status")
    assert lines[2] == "01RUN|2025-12-31T10:00:00.123Z|error|-|0.5|ada@x.test|agent-a|-|=id|-"
    assert lines[3].endswith("|negative|01RUN|01RUN")
    assert "users: ada@x.test = usr_a (Ada)" in text
    assert "workforces: agent-a = wf_a" in text
    assert lines[-2] == "next_cursor: abc"
    assert lines[-1] == "More runs may match."


def test_text_rows_escape_bars_and_newlines_in_values() -> None:
    tricky = {
        **RUN,
        "status": "err|or",
        "user": {**RUN["user"], "email": "", "name": "A\nda"},
        "workforce": {**RUN["workforce"], "name": "agent|a"},
    }
    row = run_row(Run.model_validate(tricky))
    text = render_runs_text(
        {
            "runs": [row],
            "returned": 1,
            "applied_filters": {"sort_by": "created_at", "sort_order": "desc"},
        }
    )
    table = text.splitlines()[2]
    assert table == "01RUN|2025-12-31T10:00:00.123Z|err/or|-|0.5|usr_a|agent/a|-|=id|-"
    assert table.count("|") == 9


def test_breakdowns_are_capped_with_the_rest_accounted_for() -> None:
    buckets = [{"key": f"u{i}", "count": 10 - i, "share": 0.0, "cost_usd": 1.0} for i in range(6)]
    summary = {
        "by_status": buckets[:2],
        "by_user": buckets,
        "by_workforce": [],
        "by_sentiment": buckets[:4],
        "total": 45,
    }
    capped, others = cap_breakdowns(summary, 4)
    assert [b["key"] for b in capped["by_user"]] == ["u0", "u1", "u2", "u3"]
    assert others == {"by_user": {"buckets": 2, "count": 11, "cost_usd": 2.0}}
    assert capped["by_sentiment"] == buckets[:4]
    assert capped["total"] == 45


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.test", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_dns_rebinding_protection_lists_only_known_hosts() -> None:
    settings = security_settings("0.0.0.0", ["mcp.internal.test"])
    assert settings.enable_dns_rebinding_protection
    assert "127.0.0.1:*" in settings.allowed_hosts
    assert "mcp.internal.test:*" in settings.allowed_hosts
    assert "0.0.0.0:*" not in settings.allowed_hosts
    assert "http://mcp.internal.test:*" in settings.allowed_origins
    specific = security_settings("10.0.0.5")
    assert "10.0.0.5:*" in specific.allowed_hosts


def test_now_is_not_needed_for_absolute_values() -> None:
    # a sanity check of the helper the cursor relies on
    from mcp_server.tools.list_runs import is_relative

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_relative("24h", "since", now)
    assert is_relative("now", "since", now)
    assert not is_relative("2025-12-01", "since", now)
    assert not is_relative(1764547200000, "since", now)
