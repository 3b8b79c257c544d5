"""RunQuery: filter validation, translation to API parameters, time parsing, windows."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timbal_integrations import FILTER_NAMES, QueryError, RunQuery, parse_time
from timbal_integrations.query import format_time, parse_bool, to_epoch_ms

NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)
NOW_MS = 1773576000000
T0 = datetime(2025, 12, 1, tzinfo=UTC)
T0_MS = 1764547200000


def test_constants() -> None:
    assert to_epoch_ms(NOW) == NOW_MS
    assert to_epoch_ms(T0) == T0_MS


def test_filter_names() -> None:
    assert FILTER_NAMES == (
        "status",
        "user_id",
        "sentiment",
        "group_id",
        "workforce_id",
        "rev",
        "since",
        "until",
        "metadata",
        "roots",
        "sort_by",
        "sort_order",
    )


# --- translation of every filter -------------------------------------------------------


def test_empty_query_has_no_params() -> None:
    assert RunQuery().to_params() == {}
    assert RunQuery().as_dict() == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "error"),
        ("user_id", "usr_ada"),
        ("sentiment", "negative"),
        ("group_id", "run_01ABC"),
        ("workforce_id", "wf_support"),
        ("rev", "feature/x"),
    ],
)
def test_string_filters_translate_as_is(name: str, value: str) -> None:
    assert RunQuery.from_filters({name: value}).to_params() == {name: value}
    assert RunQuery.from_filters({name: f"  {value} "}).to_params() == {name: value}


def test_since_until_translate_to_from_to_ms() -> None:
    q = RunQuery(since=T0, until=T0 + timedelta(days=1, milliseconds=1))
    assert q.to_params() == {"from": str(T0_MS), "to": str(T0_MS + 86_400_001)}
    assert q.as_dict() == {"since": "2025-12-01T00:00:00.000Z", "until": "2025-12-02T00:00:00.001Z"}


def test_only_since_or_only_until() -> None:
    assert RunQuery(since=T0).to_params() == {"from": str(T0_MS)}
    assert RunQuery(until=T0).to_params() == {"to": str(T0_MS)}


def test_metadata_dict_sent_as_compact_sorted_json() -> None:
    q = RunQuery(metadata={"tier": "pro", "env": "prod", "n": 2})
    assert q.to_params() == {"metadata": '{"env":"prod","n":2,"tier":"pro"}'}
    assert q.metadata == {"tier": "pro", "env": "prod", "n": 2}


def test_metadata_json_string() -> None:
    q = RunQuery(metadata=' {"env": "prod", "nested": {"a": [1, true, null]}} ')
    assert json.loads(q.to_params()["metadata"]) == {
        "env": "prod",
        "nested": {"a": [1, True, None]},
    }
    assert q.metadata == {"env": "prod", "nested": {"a": [1, True, None]}}
    assert RunQuery(metadata='{"env": "prod"}') == RunQuery(metadata={"env": "prod"})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "list is not allowed"),
        ('"env"', "str is not allowed"),
        ("42", "int is not allowed"),
        ("{}", "empty object"),
        ({}, "empty object"),
        ("", "empty"),
        ("   ", "empty"),
        ([("env", "prod")], "list is not allowed"),
        ({"env": object()}, "cannot be sent as JSON"),
        ({1: "a"}, "keys must be strings"),
    ],
)
def test_bad_metadata(value: Any, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(metadata=value)
    assert info.value.field == "metadata"
    assert str(info.value).startswith("metadata: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected", "param"),
    [
        (True, True, "true"),
        (False, False, "false"),
        ("true", True, "true"),
        ("TRUE", True, "true"),
        (" yes ", True, "true"),
        ("1", True, "true"),
        ("on", True, "true"),
        ("false", False, "false"),
        ("No", False, "false"),
        ("0", False, "false"),
        ("off", False, "false"),
        (1, True, "true"),
        (0, False, "false"),
    ],
)
def test_roots(value: Any, expected: bool, param: str) -> None:
    q = RunQuery(roots=value)
    assert q.roots is expected
    assert q.to_params() == {"roots": param}


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, 1.0, None.__class__, [True]])
def test_bad_roots(value: Any) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(roots=value)
    assert info.value.field == "roots"
    assert "expected true or false" in str(info.value)
    with pytest.raises(QueryError, match=r"^roots: "):
        parse_bool(value, field="roots")


@pytest.mark.parametrize("sort_by", ["id", "created_at", "duration_ms", "cost_usd", "cost_credits"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sort_enums(sort_by: str, sort_order: str) -> None:
    q = RunQuery(sort_by=sort_by, sort_order=sort_order)
    assert q.to_params() == {"sort_by": sort_by, "sort_order": sort_order}
    assert q.effective_sort_by == sort_by
    assert q.effective_sort_order == sort_order


def test_sort_defaults() -> None:
    assert RunQuery().effective_sort_by == "created_at"
    assert RunQuery().effective_sort_order == "desc"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sort_by": "status"}, "sort_by"),
        ({"sort_by": "CREATED_AT"}, "sort_by"),
        ({"sort_order": "descending"}, "sort_order"),
        ({"sort_order": "DESC"}, "sort_order"),
    ],
)
def test_bad_sort(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_all_filters_together() -> None:
    q = RunQuery(
        status="error",
        user_id="usr_ada",
        sentiment="negative",
        group_id="g1",
        workforce_id="wf_1",
        rev="main",
        since=T0,
        until="2025-12-02T00:00:00Z",
        metadata={"env": "prod"},
        roots=True,
        sort_by="cost_usd",
        sort_order="asc",
    )
    assert q.to_params() == {
        "status": "error",
        "user_id": "usr_ada",
        "sentiment": "negative",
        "group_id": "g1",
        "workforce_id": "wf_1",
        "rev": "main",
        "from": str(T0_MS),
        "to": str(T0_MS + 86_400_000),
        "metadata": '{"env":"prod"}',
        "roots": "true",
        "sort_by": "cost_usd",
        "sort_order": "asc",
    }
    assert set(q.as_dict()) == set(FILTER_NAMES)


@pytest.mark.parametrize(
    "name", ["status", "user_id", "sentiment", "group_id", "workforce_id", "rev"]
)
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (5, "int is not allowed"),
        (["a"], "list is not allowed"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 513, "too long"),
        ("a\nb", "control characters"),
        ("a\x00b", "control characters"),
        ("a\x7fb", "control characters"),
    ],
)
def test_bad_string_filters(name: str, value: Any, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(**{name: value})
    assert info.value.field == name
    assert str(info.value).startswith(f"{name}: ")
    assert fragment in str(info.value)


def test_string_at_max_length_ok() -> None:
    assert RunQuery(status="x" * 512).status == "x" * 512


# --- time parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 12, 1, 10, tzinfo=UTC), datetime(2025, 12, 1, 10, tzinfo=UTC)),
        (
            datetime(2025, 12, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            datetime(2025, 12, 1, 10, tzinfo=UTC),
        ),
        (datetime(2025, 12, 1, 10), datetime(2025, 12, 1, 10, tzinfo=UTC)),
        (
            datetime(2025, 12, 1, 10, 0, 0, 123999, tzinfo=UTC),
            datetime(2025, 12, 1, 10, 0, 0, 123000, tzinfo=UTC),
        ),
        (date(2025, 12, 1), T0),
        ("2025-12-01", T0),
        ("2025-12-01T10:00:00Z", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T10:00:00+00:00", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T12:00:00+02:00", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T05:30:00-04:30", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T10:00:00", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01 10:00:00", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T10:00", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("  2025-12-01T10:00:00Z  ", datetime(2025, 12, 1, 10, tzinfo=UTC)),
        ("2025-12-01T10:00:00.5Z", datetime(2025, 12, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        (
            "2025-12-01T10:00:00.123456Z",
            datetime(2025, 12, 1, 10, 0, 0, 123000, tzinfo=UTC),
        ),
        ("2025-12-01T00:30:00+01:00", datetime(2025, 11, 30, 23, 30, tzinfo=UTC)),
        (T0_MS, T0),
        (str(T0_MS), T0),
        (f" {T0_MS} ", T0),
        (float(T0_MS), T0),
        (T0_MS + 1, T0 + timedelta(milliseconds=1)),
        ("now", NOW),
        ("NOW", NOW),
        ("30s", NOW - timedelta(seconds=30)),
        ("90m", NOW - timedelta(minutes=90)),
        ("90min", NOW - timedelta(minutes=90)),
        ("24h", NOW - timedelta(hours=24)),
        ("24 H", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("7days", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("0h", NOW),
    ],
)
def test_parse_time_forms(value: object, expected: datetime) -> None:
    result = parse_time(value, field="since", now=NOW)
    assert result == expected
    assert result.tzinfo == UTC


def test_relative_span_uses_injected_now_in_any_zone() -> None:
    tokyo_now = NOW.astimezone(timezone(timedelta(hours=9)))
    assert parse_time("1h", now=tokyo_now) == NOW - timedelta(hours=1)
    assert parse_time("1h", now=tokyo_now).tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("", "empty"),
        ("   ", "empty"),
        ("24x", "is not an ISO 8601 time"),
        ("-24h", "is not an ISO 8601 time"),
        ("2025-13-01", "is not an ISO 8601 time"),
        ("2025-12-01T25:00:00Z", "is not an ISO 8601 time"),
        (True, "boolean"),
        (False, "boolean"),
        (1.5, "whole number"),
        (float("nan"), "whole number"),
        (float("inf"), "whole number"),
        (-1, "out of range"),
        (10**16, "out of range"),
        ("9" * 16, "out of range"),
        (1_700_000_000, "looks like epoch seconds"),
        ("1700000000", "looks like epoch seconds"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
        ("9999-12-31T23:59:59-01:00", "out of range"),
        ("999999999w", "before year 1"),
        ("99999999d", "before year 1"),
        ([2025, 12, 1], "list is not a time"),
        (None, "NoneType is not a time"),
        ("x" * 200, "..."),
    ],
)
def test_parse_time_bad_values(value: object, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_time(value, field="until", now=NOW)
    message = str(info.value)
    assert info.value.field == "until"
    assert message.startswith("until: ")
    assert fragment in message
    assert "\n" not in message
    assert len(message) < 300


def test_seconds_hint_shows_milliseconds() -> None:
    with pytest.raises(QueryError, match="1700000000000"):
        parse_time(1_700_000_000, field="since")


def test_format_time() -> None:
    assert format_time(datetime(2025, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)) == (
        "2025-12-01T10:00:00.123Z"
    )
    east = datetime(2025, 12, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(east) == "2025-12-01T10:00:00.000Z"


def test_relative_since_until_with_injected_now() -> None:
    q = RunQuery(since="24h", until="1h", now=NOW)
    assert q.since == NOW - timedelta(hours=24)
    assert q.until == NOW - timedelta(hours=1)
    assert q.to_params() == {
        "from": str(NOW_MS - 24 * 3_600_000),
        "to": str(NOW_MS - 3_600_000),
    }
    q2 = RunQuery.from_filters({"since": "7d", "until": "now"}, now=NOW)
    assert q2.to_params() == {"from": str(NOW_MS - 7 * 86_400_000), "to": str(NOW_MS)}


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (T0, T0),
        (T0 + timedelta(milliseconds=1), T0),
        ("1h", "2h"),
        ("now", "now"),
        ("2025-12-01T10:00:00+02:00", "2025-12-01T08:00:00Z"),
    ],
)
def test_since_not_before_until_is_an_error(since: object, until: object) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(since=since, until=until, now=NOW)  # type: ignore[arg-type]
    assert info.value.field == "since"
    assert "not before until" in str(info.value)


def test_one_millisecond_range_is_fine() -> None:
    q = RunQuery(since=T0, until=T0 + timedelta(milliseconds=1))
    assert q.to_params() == {"from": str(T0_MS), "to": str(T0_MS + 1)}


def test_since_field_named_in_query_errors() -> None:
    with pytest.raises(QueryError, match=r"^since: "):
        RunQuery(since="nonsense")
    with pytest.raises(QueryError, match=r"^until: "):
        RunQuery(until="nonsense")


# --- from_filters / replace / identity ---------------------------------------------------


def test_from_filters_unknown_name() -> None:
    with pytest.raises(QueryError) as info:
        RunQuery.from_filters({"statuz": "error"})
    assert info.value.field == "statuz"
    assert "unknown filter" in str(info.value)


def test_from_filters_skips_none() -> None:
    q = RunQuery.from_filters({"status": "error", "user_id": None, "roots": "false"})
    assert q.to_params() == {"status": "error", "roots": "false"}


def test_replace() -> None:
    q = RunQuery(status="error", since=T0, until=T0 + timedelta(days=1))
    q2 = q.replace(status=None, user_id="u", sort_order="asc")
    assert q2.to_params() == {
        "user_id": "u",
        "from": str(T0_MS),
        "to": str(T0_MS + 86_400_000),
        "sort_order": "asc",
    }
    assert q.status == "error"  # unchanged
    with pytest.raises(QueryError, match=r"^bogus: "):
        q.replace(bogus=1)
    with pytest.raises(QueryError, match=r"^since: "):
        q.replace(since=T0 + timedelta(days=2))


def test_immutable_equal_hashable() -> None:
    q = RunQuery(status="error", metadata={"a": 1})
    with pytest.raises(AttributeError):
        q.status = "x"
    same = RunQuery(status="error", metadata='{"a": 1}')
    assert q == same
    assert hash(q) == hash(same)
    assert q != RunQuery(status="success")
    assert q != {"status": "error"}
    assert "status='error'" in repr(q)


# --- split into windows ------------------------------------------------------------------


def _check_windows(q: RunQuery, windows: list[RunQuery], n: int) -> None:
    assert q.since is not None
    assert q.until is not None
    span = to_epoch_ms(q.until) - to_epoch_ms(q.since)
    assert len(windows) == min(n, span)
    assert windows[0].since == q.since
    assert windows[-1].until == q.until
    total = 0
    for a, b in itertools.pairwise(windows):
        assert a.until == b.since
    for w in windows:
        assert w.since is not None
        assert w.until is not None
        assert w.since < w.until
        total += to_epoch_ms(w.until) - to_epoch_ms(w.since)
        assert w.replace(since=None, until=None) == q.replace(since=None, until=None)
    assert total == span


def test_split_basic() -> None:
    q = RunQuery(status="error", since=T0, until=T0 + timedelta(days=4), roots=True)
    windows = q.split(4)
    assert [w.since for w in windows] == [T0 + timedelta(days=i) for i in range(4)]
    _check_windows(q, windows, 4)
    assert all(w.status == "error" and w.roots is True for w in windows)


def test_split_one_and_short_range() -> None:
    q = RunQuery(since=T0, until=T0 + timedelta(milliseconds=3))
    assert q.split(1) == [q]
    assert len(q.split(10)) == 3
    _check_windows(q, q.split(10), 10)


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "4"])
def test_split_bad_n(n: Any) -> None:
    q = RunQuery(since=T0, until=T0 + timedelta(days=1))
    with pytest.raises(QueryError, match=r"^parallel: "):
        q.split(n)


def test_split_needs_both_ends() -> None:
    with pytest.raises(QueryError, match=r"^since: "):
        RunQuery(until=T0).split(2)
    with pytest.raises(QueryError, match=r"^until: "):
        RunQuery(since=T0).split(2)


@settings(max_examples=300, deadline=None, database=None)
@given(
    start=st.integers(min_value=100_000_000_000, max_value=4_000_000_000_000),
    length=st.one_of(
        st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=10**12)
    ),
    n=st.integers(min_value=1, max_value=64),
)
def test_split_property(start: int, length: int, n: int) -> None:
    q = RunQuery(since=start, until=start + length, status="success")
    windows = q.split(n)
    _check_windows(q, windows, n)
    # Every millisecond of the range falls in exactly one window.
    bounds = [to_epoch_ms(w.since) for w in windows if w.since is not None]
    for probe in {start, start + length - 1, start + length // 2}:
        inside = [
            w
            for w in windows
            if w.since is not None
            and w.until is not None
            and to_epoch_ms(w.since) <= probe < to_epoch_ms(w.until)
        ]
        assert len(inside) == 1
    assert bounds == sorted(bounds)


@settings(max_examples=200, deadline=None, database=None)
@given(ms=st.integers(min_value=100_000_000_000, max_value=253402300799999))
def test_epoch_ms_round_trip(ms: int) -> None:
    assert to_epoch_ms(parse_time(ms)) == ms
    assert to_epoch_ms(parse_time(str(ms))) == ms
    assert parse_time(format_time(parse_time(ms))) == parse_time(ms)


@settings(max_examples=200, deadline=None, database=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60 + 1, max_value=14 * 60 - 1),
)
def test_zone_does_not_change_the_instant(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    shifted = moment.astimezone(zone)
    expected = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_time(shifted) == expected
    assert parse_time(shifted.isoformat()) == expected


@pytest.mark.parametrize("text", ["¹", "²³", "١٢٣"])
def test_non_ascii_digits_are_not_epoch_ms(text: str) -> None:
    # str.isdigit() accepts superscripts and other scripts' digits; int() does not take
    # them all, and they are not what anyone means by epoch milliseconds.
    with pytest.raises(QueryError, match="since"):
        parse_time(text, field="since")
