"""Latency, injected faults and the rate limit, seen from a plain httpx client."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import FAULT_KINDS


def fetch_all_with_retries(
    emu: Any, check_list: Any, params: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], Counter[str], int]:
    """Page through everything, retrying every failure; returns (runs, failures, pages)."""
    runs: list[dict[str, Any]] = []
    failures: Counter[str] = Counter()
    token: str | None = None
    pages = 0
    with httpx.Client(headers=emu.headers(), timeout=10) as client:
        while True:
            query = {**(params or {}), **({"page_token": token} if token else {})}
            for _attempt in range(100):
                try:
                    response = client.get(emu.runs_url, params=query)
                except httpx.TransportError:
                    failures["drop"] += 1
                    continue
                if response.status_code == 200:
                    break
                failures[str(response.status_code)] += 1
                assert response.status_code in (429, 500, 502, 503), response.text
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "0"
            else:
                pytest.fail("too many consecutive failures")
            body = response.json()
            check_list(body)
            pages += 1
            runs.extend(body["runs"])
            token = body["next_page_token"]
            if token is None:
                return runs, failures, pages


def test_faults_at_20_percent_never_corrupt_data(
    timbal_emulator_factory: Any, check_list: Any
) -> None:
    emu = timbal_emulator_factory(runs=2000, seed=5, fault_rate=0.2)
    runs, failures, pages = fetch_all_with_retries(emu, check_list)
    assert runs == emu.runs
    assert pages == 40
    stats = emu.stats
    assert stats.faults_by_kind == dict(failures)
    assert set(failures) == set(FAULT_KINDS)  # every kind happened
    assert 0.1 < stats.faults_total / stats.requests_total < 0.3
    assert stats.served_ok == pages
    assert stats.requests_total == pages + sum(failures.values())
    assert stats.requests_by_endpoint == {"list": stats.requests_total}


def test_faults_with_filters_and_sort(timbal_emulator_factory: Any, check_list: Any) -> None:
    emu = timbal_emulator_factory(runs=2000, seed=5, fault_rate=0.3)
    params = {"status": "success", "sort_by": "duration_ms", "sort_order": "asc"}
    runs, failures, _pages = fetch_all_with_retries(emu, check_list, params)
    want = [run for run in emu.runs if run["status"] == "success"]
    assert sorted(run["id"] for run in runs) == sorted(run["id"] for run in want)
    durations = [run["duration_ms"] for run in runs]
    assert durations == sorted(durations)
    assert sum(failures.values()) > 0


def test_faults_are_reproducible_for_a_seed(timbal_emulator_factory: Any) -> None:
    def outcomes(emu: Any) -> list[str]:
        seen = []
        with httpx.Client(headers=emu.headers()) as client:
            for _ in range(60):
                try:
                    seen.append(str(client.get(emu.runs_url).status_code))
                except httpx.TransportError:
                    seen.append("drop")
        return seen

    first = outcomes(timbal_emulator_factory(runs=100, seed=9, fault_rate=0.5))
    second = outcomes(timbal_emulator_factory(runs=100, seed=9, fault_rate=0.5))
    other = outcomes(timbal_emulator_factory(runs=100, seed=10, fault_rate=0.5))
    assert first == second
    assert first != other
    assert len(set(first)) > 2


def test_injected_429_carries_retry_after_and_rate_limit_headers(
    timbal_emulator_factory: Any,
) -> None:
    emu = timbal_emulator_factory(runs=50, fault_rate=1.0, fault_kinds=("429",), retry_after=7)
    response = httpx.get(emu.runs_url, headers=emu.headers())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert int(response.headers["ratelimit-limit"]) > 0
    assert response.headers["ratelimit-remaining"] == "0"
    assert response.headers["ratelimit-reset"] == "7"
    assert response.json()["message"]
    assert emu.stats.faults_by_kind == {"429": 1}


def test_drop_is_a_transport_error(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=50, fault_rate=1.0, fault_kinds=("drop",))
    with httpx.Client(headers=emu.headers()) as client:
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(emu.runs_url)
    run_id = emu.runs[0]["id"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{emu.runs_url}/{run_id}", headers=emu.headers())
    assert emu.stats.faults_by_kind == {"drop": 4}
    assert emu.stats.responses_by_status == {}


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("500", "application/json"), ("502", "text/html"), ("503", "application/json")],
)
def test_server_errors(timbal_emulator_factory: Any, kind: str, content_type: str) -> None:
    emu = timbal_emulator_factory(runs=50, fault_rate=1.0, fault_kinds=(kind,))
    response = httpx.get(emu.runs_url, headers=emu.headers())
    assert response.status_code == int(kind)
    assert response.headers["content-type"].startswith(content_type)
    if kind == "502":
        assert "<html>" in response.text
    else:
        assert response.json()["message"]


def test_get_run_is_faulted_too_and_retries_get_the_right_run(
    timbal_emulator_factory: Any, check_detail: Any
) -> None:
    emu = timbal_emulator_factory(runs=100, seed=2, fault_rate=0.5)
    details = {d["id"]: d for d in emu.details}
    failures = 0
    with httpx.Client(headers=emu.headers()) as client:
        for run in emu.runs[:20]:
            while True:
                try:
                    response = client.get(f"{emu.runs_url}/{run['id']}")
                except httpx.TransportError:
                    failures += 1
                    continue
                if response.status_code == 200:
                    break
                failures += 1
            check_detail(response.json())
            assert response.json() == details[run["id"]]
    assert failures == emu.stats.faults_total > 0
    assert emu.stats.requests_by_endpoint == {"get": 20 + failures}


def test_other_paths_are_never_faulted(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=10, fault_rate=1.0, rate_limit=1)
    for _ in range(5):
        response = httpx.get(f"{emu.base_url}/elsewhere", headers=emu.headers())
        assert response.status_code == 404
        assert response.json()["message"]
    assert emu.stats.faults_total == 0
    assert emu.stats.requests_by_endpoint == {"other": 5}


def test_rate_limit_gives_429_with_headers(timbal_emulator_factory: Any) -> None:
    # Bursts of 5, a token back every 1,000 s: exactly 5 pass whatever the machine's speed.
    emu = timbal_emulator_factory(runs=50, rate_limit=0.001, rate_limit_burst=5)
    with httpx.Client(headers=emu.headers()) as client:
        responses = [client.get(emu.runs_url) for _ in range(20)]
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 15
    for response in responses:
        assert response.headers["ratelimit-limit"] == "5"
        assert int(response.headers["ratelimit-remaining"]) >= 0
        assert int(response.headers["ratelimit-reset"]) >= 0
    assert ok[0].headers["ratelimit-remaining"] == "4"
    for response in limited:
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.json()["message"]
    assert emu.stats.rate_limited == len(limited)
    assert emu.stats.served_ok == len(ok)
    assert emu.stats.faults_total == 0


def test_configure_at_runtime(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=50)
    with httpx.Client(headers=emu.headers()) as client:
        assert client.get(emu.runs_url).status_code == 200
        emu.configure(fault_rate=1.0, fault_kinds=["503"])
        assert client.get(emu.runs_url).status_code == 503
        emu.configure(fault_rate=0.0, rate_limit=1)
        statuses = [client.get(emu.runs_url).status_code for _ in range(3)]
        assert statuses[0] == 200
        assert 429 in statuses
        emu.configure(rate_limit=None)
        response = client.get(emu.runs_url)
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers
        emu.configure(latency_ms=150)
        assert client.get(emu.runs_url).elapsed.total_seconds() >= 0.15
        emu.configure(latency_ms=0)
    assert emu.app.settings["latency_ms"] == 0
    assert emu.stats.faults_by_kind == {"503": 1}
    emu.stats.reset()
    assert emu.stats.snapshot() == {
        "requests_total": 0,
        "requests_by_endpoint": {},
        "faults_by_kind": {},
        "faults_total": 0,
        "rate_limited": 0,
        "served_ok": 0,
        "responses_by_status": {},
    }


@pytest.mark.parametrize(
    "switches",
    [
        {"fault_rate": 1.5},
        {"fault_rate": -0.1},
        {"fault_kinds": ["404"]},
        {"latency_ms": -1},
        {"rate_limit": 0},
        {"retry_after": -1},
    ],
)
def test_bad_switches_are_rejected(timbal_emulator_factory: Any, switches: dict) -> None:
    emu = timbal_emulator_factory(runs=10)
    with pytest.raises(ValueError, match=next(iter(switches))):
        emu.configure(**switches)
