"""Both clients against the emulator over real sockets.

Every expectation is recomputed here, independently, from the emulator's ground truth
(``emu.details``: every run with its detail-only fields, newest first); the library's
own filter code is never used to compute what a listing should return.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import http.server
import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.core.helpers_core import KEY, KINDS, Driver
from timbal_integrations import (
    AsyncTimbalClient,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    Run,
    RunDetail,
    RunQuery,
    TimbalClient,
)
from timbal_integrations.emulator import FIXED_END, Emulator

EmulatorFactory = Callable[..., Emulator]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_MS = (FIXED_END - EPOCH) // timedelta(milliseconds=1)
DAY_MS = 86_400_000
#: Plenty of retries, never sleeping (the suite's testing switch), for the faulty servers.
PATIENT = RetryPolicy(max_retries=25)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def driver(kind: str, emu: Emulator, **kwargs: Any) -> Driver:
    return Driver(kind, env=emu.env(), **kwargs)


# --- the independent recomputation -------------------------------------------------------


@functools.lru_cache(maxsize=50_000)
def _parse_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - EPOCH) // timedelta(milliseconds=1)


def created_ms(record: Mapping[str, Any]) -> int:
    return _parse_ms(record["created_at"])


def matches(record: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Does one run match the filters, as the API spec describes them?"""
    for name, value in filters.items():
        if name == "status" and record["status"] != value:
            return False
        if name == "user_id" and record["user"]["id"] != value:
            return False
        if name == "sentiment" and record["last_reaction_sentiment"] != value:
            return False
        if name == "group_id" and record["group_id"] != value:
            return False
        if name == "workforce_id" and record["workforce"]["id"] != value:
            return False
        if name == "rev" and record.get("rev") not in (value, None):  # branchless runs too
            return False
        if name == "from_ms" and created_ms(record) < value:
            return False
        if name == "to_ms" and created_ms(record) >= value:
            return False
        if name == "metadata":
            meta = record.get("metadata") or {}
            if any(k not in meta or meta[k] != v for k, v in value.items()):
                return False
        if name == "roots" and value and record["parent_id"] is not None:
            return False
    return True


def expected_ids(emu: Emulator, order: str = "desc", **filters: Any) -> list[str]:
    """Ids of the matching runs sorted by creation time (ties on id)."""
    hits = [r for r in emu.details if matches(r, filters)]
    hits.sort(key=lambda r: (created_ms(r), r["id"]), reverse=order == "desc")
    return [r["id"] for r in hits]


def ids(runs: list[Run]) -> list[str]:
    return [r.id for r in runs]


def assert_exactly_once(got: list[Run], expected: list[str]) -> None:
    got_ids = ids(got)
    assert len(got_ids) == len(set(got_ids)), "duplicates"
    missing = set(expected) - set(got_ids)
    extra = set(got_ids) - set(expected)
    assert not missing, f"{len(missing)} runs lost"
    assert not extra, f"{len(extra)} unexpected runs"
    assert got_ids == expected


def utc_ms(year: int, month: int, day: int, hour: int = 0) -> int:
    """Epoch milliseconds of a UTC wall-clock time."""
    moment = datetime(year, month, day, hour, tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def ms_to_iso(ms: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms)).isoformat()


# --- ground truth sanity -----------------------------------------------------------------


def test_ground_truth_is_consistent(timbal_emulator: Emulator) -> None:
    emu = timbal_emulator
    assert len(emu.runs) == len(emu.details) == 3000
    assert [r["id"] for r in emu.runs] == [r["id"] for r in emu.details]
    times = [created_ms(r) for r in emu.details]
    assert times == sorted(times, reverse=True)
    assert all(t < END_MS for t in times)


# --- each filter alone, then combined ----------------------------------------------------

T_MID = END_MS - 10 * DAY_MS

SINGLE_FILTERS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"status": "error"}, {"status": "error"}),
    ({"status": "running"}, {"status": "running"}),
    ({"status": "no-such-status"}, {"status": "no-such-status"}),
    ({"user_id": "usr_ada"}, {"user_id": "usr_ada"}),
    ({"sentiment": "negative"}, {"sentiment": "negative"}),
    ({"workforce_id": "wf_legacy_faq"}, {"workforce_id": "wf_legacy_faq"}),
    ({"rev": "feature/x"}, {"rev": "feature/x"}),
    ({"rev": "never-used-branch"}, {"rev": "never-used-branch"}),  # branchless runs only
    ({"since": ms_to_iso(T_MID)}, {"from_ms": T_MID}),
    ({"until": T_MID - 15 * DAY_MS}, {"to_ms": T_MID - 15 * DAY_MS}),
    (
        {"since": "2025-12-20T00:00:00+02:00", "until": "2025-12-21T12:00:00-03:00"},
        {"from_ms": utc_ms(2025, 12, 19, 22), "to_ms": utc_ms(2025, 12, 21, 15)},
    ),
    ({"metadata": {"env": "staging"}}, {"metadata": {"env": "staging"}}),
    (
        {"metadata": '{"customer": "acme", "tier": "enterprise"}'},
        {"metadata": {"customer": "acme", "tier": "enterprise"}},
    ),
    ({"metadata": {"attempt": 2}}, {"metadata": {"attempt": 2}}),
    (
        {"metadata": {"customer": "acme", "tier": "free"}},
        {"metadata": {"customer": "acme", "tier": "free"}},
    ),
    ({"roots": True}, {"roots": True}),
    ({"roots": "false"}, {}),
]


@pytest.mark.parametrize(("filters", "truth"), SINGLE_FILTERS, ids=lambda v: str(v)[:60])
def test_each_filter_alone(
    timbal_emulator: Emulator, kind: str, filters: dict[str, Any], truth: dict[str, Any]
) -> None:
    expected = expected_ids(timbal_emulator, **truth)
    got = driver(kind, timbal_emulator).list_runs(**filters)
    assert_exactly_once(got, expected)


def test_group_id_filter(timbal_emulator: Emulator, kind: str) -> None:
    emu = timbal_emulator
    sizes: dict[str, int] = {}
    for r in emu.details:
        sizes[r["group_id"]] = sizes.get(r["group_id"], 0) + 1
    group = max(sizes, key=lambda g: (sizes[g], g))
    assert sizes[group] >= 3
    got = driver(kind, emu).list_runs(group_id=group)
    assert_exactly_once(got, expected_ids(emu, group_id=group))
    assert {r.group_id for r in got} == {group}
    assert sum(r.is_root for r in got) == 1


def test_rev_includes_branchless_runs(timbal_emulator: Emulator, kind: str) -> None:
    emu = timbal_emulator
    got = driver(kind, emu).list_runs(rev="main")
    assert_exactly_once(got, expected_ids(emu, rev="main"))
    revs = {r["id"]: r.get("rev") for r in emu.details}
    assert {revs[r.id] for r in got} == {"main", None}


def test_since_inclusive_until_exclusive(timbal_emulator: Emulator, kind: str) -> None:
    emu = timbal_emulator
    first, middle, last = emu.details[100], emu.details[50], emu.details[10]
    got = driver(kind, emu).list_runs(since=first["created_at"], until=last["created_at"])
    got_ids = ids(got)
    assert first["id"] in got_ids
    assert middle["id"] in got_ids
    assert last["id"] not in got_ids
    assert got_ids == [r["id"] for r in emu.details[11:101]]
    # epoch milliseconds work the same way
    got_ms = driver(kind, emu).list_runs(since=created_ms(first), until=created_ms(last))
    assert ids(got_ms) == got_ids


COMBINED: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"status": "error", "workforce_id": "wf_support", "since": END_MS - 20 * DAY_MS},
        {"status": "error", "workforce_id": "wf_support", "from_ms": END_MS - 20 * DAY_MS},
    ),
    (
        {"user_id": "usr_ada", "roots": True, "metadata": {"env": "prod"}},
        {"user_id": "usr_ada", "roots": True, "metadata": {"env": "prod"}},
    ),
    (
        {"rev": "dev", "status": "success", "until": END_MS - 5 * DAY_MS, "roots": "1"},
        {"rev": "dev", "status": "success", "to_ms": END_MS - 5 * DAY_MS, "roots": True},
    ),
    (
        {"sentiment": "negative", "metadata": {"customer": "globex"}, "user_id": "usr_grace"},
        {"sentiment": "negative", "metadata": {"customer": "globex"}, "user_id": "usr_grace"},
    ),
]


@pytest.mark.parametrize(("filters", "truth"), COMBINED, ids=lambda v: str(v)[:60])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_combined_filters(
    timbal_emulator: Emulator,
    kind: str,
    filters: dict[str, Any],
    truth: dict[str, Any],
    order: str,
) -> None:
    expected = expected_ids(timbal_emulator, order=order, **truth)
    assert expected  # the combination is not vacuous
    got = driver(kind, timbal_emulator).list_runs(sort_order=order, **filters)
    assert_exactly_once(got, expected)


def test_query_object_equals_keywords(timbal_emulator: Emulator, kind: str) -> None:
    q = RunQuery(status="error", since=END_MS - 15 * DAY_MS)
    d = driver(kind, timbal_emulator)
    assert ids(d.list_runs(q)) == ids(d.list_runs(status="error", since=END_MS - 15 * DAY_MS))


WINDOW: dict[str, Any] = {"since": END_MS - 6 * DAY_MS, "until": END_MS - 2 * DAY_MS}


@pytest.mark.parametrize("sort_by", ["id", "created_at"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sort_by_unique_keys(
    timbal_emulator: Emulator, kind: str, sort_by: str, sort_order: str
) -> None:
    emu = timbal_emulator
    truth = {"from_ms": WINDOW["since"], "to_ms": WINDOW["until"]}
    hits = [r for r in emu.details if matches(r, truth)]
    key = (lambda r: r["id"]) if sort_by == "id" else (lambda r: (created_ms(r), r["id"]))
    expected = [r["id"] for r in sorted(hits, key=key, reverse=sort_order == "desc")]
    got = driver(kind, emu).list_runs(sort_by=sort_by, sort_order=sort_order, **WINDOW)
    assert_exactly_once(got, expected)


@pytest.mark.parametrize("sort_by", ["duration_ms", "cost_usd", "cost_credits"])
@pytest.mark.parametrize("sort_order", ["asc", "desc"])
def test_sort_by_values(
    timbal_emulator: Emulator, kind: str, sort_by: str, sort_order: str
) -> None:
    # Ties (and nulls) may come in any order the server likes: check the set and the values.
    emu = timbal_emulator
    expected = expected_ids(emu, from_ms=WINDOW["since"], to_ms=WINDOW["until"])
    got = driver(kind, emu).list_runs(sort_by=sort_by, sort_order=sort_order, **WINDOW)
    got_ids = ids(got)
    assert len(got_ids) == len(set(got_ids))
    assert set(got_ids) == set(expected)
    values = [getattr(r, sort_by) for r in got]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=sort_order == "desc")
    by_id = {r["id"]: r for r in emu.details}
    assert values == [by_id[i][sort_by] for i in got_ids]


def test_default_sort_is_created_at_desc(timbal_emulator: Emulator, kind: str) -> None:
    got = driver(kind, timbal_emulator).list_runs(limit=120)
    assert ids(got) == [r["id"] for r in timbal_emulator.runs[:120]]


# --- pagination at scale -----------------------------------------------------------------


@pytest.mark.parametrize("page_size", [7, 333])
def test_full_pagination_over_thousands(
    timbal_emulator_factory: EmulatorFactory, kind: str, page_size: int
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=1, page_size=page_size)
    d = driver(kind, emu)
    got = d.list_runs()
    assert_exactly_once(got, [r["id"] for r in emu.runs])
    pages = -(-3000 // page_size)
    assert d.requests == pages
    assert emu.stats.requests_total == pages


def test_full_pagination_session_emulator(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    assert_exactly_once(d.list_runs(), [r["id"] for r in timbal_emulator.runs])
    assert d.requests == 60
    asc = d.list_runs(sort_order="asc")
    assert ids(asc) == [r["id"] for r in reversed(timbal_emulator.runs)]


@pytest.mark.parametrize(("page_size", "pages"), [(1, 150), (149, 2), (150, 1), (151, 1)])
def test_page_boundaries(
    timbal_emulator_factory: EmulatorFactory, kind: str, page_size: int, pages: int
) -> None:
    emu = timbal_emulator_factory(runs=150, seed=3, page_size=page_size)
    d = driver(kind, emu)
    assert_exactly_once(d.list_runs(), [r["id"] for r in emu.runs])
    assert d.requests == pages
    limited = driver(kind, emu)
    assert ids(limited.list_runs(limit=5)) == [r["id"] for r in emu.runs[:5]]
    assert limited.requests == -(-5 // page_size)


@pytest.mark.parametrize(("limit", "requests"), [(1, 1), (50, 1), (51, 2), (149, 3)])
def test_limit_against_emulator(
    timbal_emulator: Emulator, kind: str, limit: int, requests: int
) -> None:
    d = driver(kind, timbal_emulator)
    got = d.list_runs(limit=limit)
    assert ids(got) == [r["id"] for r in timbal_emulator.runs[:limit]]
    assert d.requests == requests


def test_pages_and_tokens(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    first = d.get_runs_page(status="success")
    assert len(first.runs) == 50
    assert first.next_page_token
    second = d.get_runs_page(status="success", page_token=first.next_page_token)
    expected = expected_ids(timbal_emulator, status="success")
    assert ids(first.runs) + ids(second.runs) == expected[:100]
    pages = d.iter_pages(status="success", page_token=second.next_page_token)
    rest = [run for page in pages for run in page.runs]
    assert ids(first.runs) + ids(second.runs) + ids(rest) == expected


def test_empty_listing(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    assert d.list_runs(since=END_MS, until=END_MS + DAY_MS) == []
    assert d.requests == 1
    assert d.earliest_run(status="no-such") is None


def test_earliest_run(timbal_emulator: Emulator, kind: str) -> None:
    run = driver(kind, timbal_emulator).earliest_run(status="error")
    assert run is not None
    assert run.id == expected_ids(timbal_emulator, order="asc", status="error")[0]


def test_unknown_fields_survive(timbal_emulator_factory: EmulatorFactory, kind: str) -> None:
    emu = timbal_emulator_factory(runs=300, seed=5, page_size=40, extra_fields=True)
    got = driver(kind, emu).list_runs()
    details = {r["id"]: r for r in emu.details}
    assert len(got) == 300
    for run in got:
        dumped = run.to_json_dict()
        assert dumped["rev"] == details[run.id]["rev"]
        assert dumped["metadata"] == details[run.id]["metadata"]
    # nested optional fields the spec allows are kept too
    assert any("description" in r.to_json_dict()["workforce"] for r in got)


# --- faults, rate limiting ---------------------------------------------------------------


def test_faults_at_20_percent_lose_nothing(
    timbal_emulator_factory: EmulatorFactory, kind: str
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=1, page_size=50, fault_rate=0.2)
    d = driver(kind, emu, retry_policy=PATIENT)
    got = d.list_runs()
    assert_exactly_once(got, [r["id"] for r in emu.runs])
    faults = emu.stats.faults_by_kind
    assert sum(faults.values()) >= 5
    assert d.requests == emu.stats.requests_total == 60 + sum(faults.values())
    assert len(faults) >= 3  # several kinds, dropped connections included in a long run


def test_faults_with_filters_and_odd_pages(
    timbal_emulator_factory: EmulatorFactory, kind: str
) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=1, page_size=13, fault_rate=0.2)
    filters: dict[str, Any] = {"status": "success", "until": END_MS - 3 * DAY_MS}
    got = driver(kind, emu, retry_policy=PATIENT).list_runs(sort_order="asc", **filters)
    expected = expected_ids(emu, order="asc", status="success", to_ms=END_MS - 3 * DAY_MS)
    assert_exactly_once(got, expected)
    assert emu.stats.faults_by_kind.get("drop", 0) > 0


@pytest.mark.parametrize("kinds", [("drop",), ("429",), ("500", "502", "503")])
def test_each_fault_kind_alone(
    timbal_emulator_factory: EmulatorFactory, kind: str, kinds: tuple[str, ...]
) -> None:
    emu = timbal_emulator_factory(
        runs=600, seed=2, page_size=20, fault_rate=0.3, fault_kinds=kinds, retry_after=1
    )
    got = driver(kind, emu, retry_policy=PATIENT).list_runs()
    assert_exactly_once(got, [r["id"] for r in emu.runs])
    assert set(emu.stats.faults_by_kind) <= set(kinds)
    assert emu.stats.faults_total > 0


def test_faults_in_parallel_listing(timbal_emulator_factory: EmulatorFactory, kind: str) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=1, page_size=50, fault_rate=0.2)
    d = driver(kind, emu, retry_policy=PATIENT)
    got = d.list_runs(parallel=4, since=END_MS - 30 * DAY_MS, until=END_MS)
    assert_exactly_once(got, [r["id"] for r in emu.runs])
    assert emu.stats.faults_total > 0
    assert d.requests == emu.stats.requests_total  # requests_made counts the windows' too


def test_rate_limited_server(timbal_emulator_factory: EmulatorFactory, kind: str) -> None:
    emu = timbal_emulator_factory(runs=300, seed=4, page_size=20, rate_limit=10)
    d = driver(kind, emu, retry_policy=RetryPolicy(max_retries=10_000))
    got = d.list_runs()
    assert_exactly_once(got, [r["id"] for r in emu.runs])
    # 15 pages from a 10-request burst: the client spaces its requests by the
    # RateLimit-* headers (even with retry waits off in tests), so none is refused.
    assert emu.stats.rate_limited == 0
    assert d.requests == 15


# --- parallel listing --------------------------------------------------------------------


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("parallel", [4, 7])
def test_parallel_equals_sequential(
    timbal_emulator: Emulator, kind: str, order: str, parallel: int
) -> None:
    d = driver(kind, timbal_emulator)
    window: dict[str, Any] = {
        "since": END_MS - 9 * DAY_MS,
        "until": END_MS - 1 * DAY_MS,
        "sort_order": order,
    }
    sequential = ids(d.list_runs(**window))
    assert ids(d.list_runs(parallel=parallel, **window)) == sequential
    assert sequential == expected_ids(
        timbal_emulator, order=order, from_ms=window["since"], to_ms=window["until"]
    )


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_parallel_with_filters_and_limit(timbal_emulator: Emulator, kind: str, order: str) -> None:
    d = driver(kind, timbal_emulator)
    filters: dict[str, Any] = {"status": "success", "since": END_MS - 8 * DAY_MS, "until": END_MS}
    sequential = ids(d.list_runs(sort_order=order, **filters))
    assert ids(d.list_runs(parallel=4, sort_order=order, **filters)) == sequential
    for limit in (1, 75, 10_000):
        got = d.list_runs(parallel=4, sort_order=order, limit=limit, **filters)
        assert ids(got) == sequential[:limit]


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_parallel_without_bounds(timbal_emulator: Emulator, kind: str, order: str) -> None:
    d = driver(kind, timbal_emulator)
    got = d.list_runs(parallel=3, sort_order=order, workforce_id="wf_report")
    assert ids(got) == expected_ids(timbal_emulator, order=order, workforce_id="wf_report")


def test_parallel_empty(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    assert d.list_runs(parallel=4, status="no-such") == []
    assert d.list_runs(parallel=4, since=END_MS, until=END_MS + DAY_MS) == []


# --- get_run -----------------------------------------------------------------------------


def test_get_run_by_id_and_idempotency_key(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    for record in (timbal_emulator.details[0], timbal_emulator.details[1234]):
        by_id = d.get_run(record["id"])
        by_key = d.get_run(record["idempotency_key"])
        assert isinstance(by_id, RunDetail)
        assert by_id.to_json_dict() == by_key.to_json_dict()
        assert by_id.to_json_dict() == RunDetail.model_validate(record).to_json_dict()
        assert by_id.to_json_dict()["metadata"] == record["metadata"]


# --- errors ------------------------------------------------------------------------------


def test_wrong_key_is_authentication_error(timbal_emulator: Emulator, kind: str) -> None:
    env = dict(timbal_emulator.env(), TIMBAL_API_KEY="sk-wrong-key-XYZ")
    d = Driver(kind, env=env)
    with pytest.raises(AuthenticationError) as info:
        d.list_runs()
    assert d.requests == 1
    message = str(info.value)
    assert message.startswith("401 ")
    assert "Invalid API key" in message
    assert "TIMBAL_API_KEY" in message
    assert "/runs" in message
    assert "sk-wrong-key-XYZ" not in message


@pytest.mark.parametrize("which", ["org_id", "project_id"])
def test_other_org_or_project_is_permission_denied(
    timbal_emulator: Emulator, kind: str, which: str
) -> None:
    d = Driver(kind, env=timbal_emulator.env(), **{which: "someone-else"})
    with pytest.raises(PermissionDeniedError) as info:
        d.list_runs()
    assert d.requests == 1
    message = str(info.value)
    assert message.startswith("403 ")
    assert "someone-else" in message
    assert "TIMBAL_ORG_ID" in message
    assert timbal_emulator.api_key not in message


def test_unknown_run_is_not_found(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    with pytest.raises(NotFoundError) as info:
        d.get_run("no such run")
    assert d.requests == 1
    message = str(info.value)
    assert message.startswith("404 ")
    assert "Run 'no such run' not found" in message  # the server's own words
    assert "run id" in message  # and the hint
    assert info.value.path.endswith("/runs/no%20such%20run")


def test_bad_page_token_is_bad_request(timbal_emulator: Emulator, kind: str) -> None:
    d = driver(kind, timbal_emulator)
    with pytest.raises(BadRequestError) as info:
        d.get_runs_page(page_token="not-a-token")
    assert d.requests == 1
    assert info.value.status_code == 400
    assert "page_token" in str(info.value)
    token = d.get_runs_page(status="error").next_page_token
    with pytest.raises(BadRequestError, match="different filters"):
        d.get_runs_page(status="success", page_token=token)


def test_unreachable_server_is_connection_error(kind: str) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    from timbal_integrations import APIConnectionError

    d = Driver(
        kind,
        api_key="k",
        host=f"http://127.0.0.1:{port}",
        org_id="o",
        project_id="p",
        env={},
        max_retries=2,
    )
    with pytest.raises(APIConnectionError) as info:
        d.list_runs()
    assert d.requests == 3
    assert f"127.0.0.1:{port}" in str(info.value)


def test_key_not_logged_over_real_sockets(
    timbal_emulator_factory: EmulatorFactory, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = timbal_emulator_factory(runs=400, seed=6, page_size=20, fault_rate=0.3, api_key=KEY)
    d = driver(kind, emu, retry_policy=PATIENT)
    assert_exactly_once(d.list_runs(), [r["id"] for r in emu.runs])
    with pytest.raises(NotFoundError):
        d.get_run("no-such-run")
    assert "timbal_integrations" in {r.name for r in caplog.records}  # retries were logged
    assert KEY not in caplog.text
    assert KEY not in repr(emu)


# --- the clients directly, sharing one connection pool -----------------------------------


def test_sync_client_reuses_connections(timbal_emulator: Emulator) -> None:
    with TimbalClient(env=timbal_emulator.env()) as client:
        first = list(client.list_runs(limit=200))
        again = list(client.list_runs(limit=200))
        detail = client.get_run(first[0].id)
    assert ids(first) == ids(again)
    assert detail.id == first[0].id
    assert client.requests_made == 9


def test_async_client_concurrent_calls(timbal_emulator: Emulator) -> None:
    async def main() -> tuple[list[list[Run]], int]:
        async with AsyncTimbalClient(env=timbal_emulator.env()) as client:

            async def collect(status: str) -> list[Run]:
                return [r async for r in client.list_runs(status=status)]

            results = await asyncio.gather(*(collect(s) for s in ("success", "error", "running")))
            return list(results), client.requests_made

    results, requests = asyncio.run(main())
    for status, got in zip(("success", "error", "running"), results, strict=True):
        assert_exactly_once(got, expected_ids(timbal_emulator, status=status))
    assert requests == 48 + 7 + 4


# --- proxies from the environment ---------------------------------------------------------


class _ForwardProxy(http.server.BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: records each absolute-form request line and relays it."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        target = urllib.parse.urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
            upstream.request(
                "GET", self.path[len(f"{target.scheme}://{target.netloc}") :], headers=headers
            )
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_proxy_from_the_environment_is_used(
    timbal_emulator: Emulator, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    handler = type("Proxy", (_ForwardProxy,), {"seen": seen})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        monkeypatch.setenv("HTTP_PROXY", address)
        monkeypatch.setenv("http_proxy", address)
        got = driver(kind, timbal_emulator).list_runs(limit=120)
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()
    assert ids(got) == expected_ids(timbal_emulator)[:120]
    assert len(seen) == 3  # every page went through the proxy, in absolute form
    assert all(line.startswith(timbal_emulator.base_url + "/orgs/") for line in seen)
