"""RetryPolicy and Retry-After parsing; the no-sleep testing switch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timbal_integrations import RetryPolicy, retry
from timbal_integrations.retry import RETRYABLE_STATUS, parse_retry_after

NOW = datetime(2026, 3, 15, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("0.25", 0.25),
        ("-3", 0.0),
        ("", None),
        ("   ", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        (format_datetime(NOW + timedelta(seconds=42), usegmt=True), 42.0),
        (format_datetime(NOW - timedelta(seconds=42), usegmt=True), 0.0),
        ("Sun, 15 Mar 2026 12:01:00 GMT", 60.0),
        ("Sun, 15 Mar 2026 13:01:00 +0100", 60.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_retryable_statuses() -> None:
    assert frozenset({429, 500, 502, 503, 504}) == RETRYABLE_STATUS
    for status in (400, 401, 403, 404, 409, 422):
        assert status not in RETRYABLE_STATUS


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(retry_after_max=60.0)
    assert policy.delay(0, 3.0) == 3.0
    assert policy.delay(5, 0.0) == 0.0
    assert policy.delay(0, 3600.0) == 60.0
    assert policy.delay(0, float("inf")) == 60.0


def test_backoff_ceiling_is_exponential_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[float, float]] = []

    def top(a: float, b: float) -> float:
        calls.append((a, b))
        return b

    monkeypatch.setattr(random, "uniform", top)
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0)
    delays = [policy.delay(attempt) for attempt in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert all(a == 0.0 for a, _ in calls)  # full jitter: from zero


@settings(max_examples=200, deadline=None, database=None)
@given(
    attempt=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=120),
)
def test_backoff_always_within_bounds(attempt: int, base: float, cap: float) -> None:
    policy = RetryPolicy(backoff_base=base, backoff_max=cap)
    delay = policy.delay(attempt)
    assert 0.0 <= delay <= min(cap, base * 2**attempt) + 1e-9


def test_jitter_varies() -> None:
    policy = RetryPolicy()
    delays = {policy.delay(4) for _ in range(50)}
    assert len(delays) > 1
    assert all(0.0 <= d <= 8.0 for d in delays)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"backoff_base": -0.1}, {"backoff_max": -1}, {"retry_after_max": -1}],
)
def test_policy_rejects_negative_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 6
    assert policy.backoff_max == 30.0
    assert policy.retry_after_max == 60.0


def test_testing_switch_nests_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMBAL_RETRY_TESTING", raising=False)
    assert retry.is_testing()  # the suite's autouse fixture
    with retry.testing(False):
        assert not retry.is_testing()
        with retry.testing(True):
            assert retry.is_testing()
        assert not retry.is_testing()
    assert retry.is_testing()


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_testing_switch_from_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, on: bool
) -> None:
    monkeypatch.setenv("TIMBAL_RETRY_TESTING", value)
    with retry.testing(False):
        assert retry.is_testing() is on
