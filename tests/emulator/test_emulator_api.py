"""The list and get endpoints over real sockets, checked against the spec and the ground truth."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(created_at: str) -> int:
    return (datetime.fromisoformat(created_at) - _EPOCH) // timedelta(milliseconds=1)


def ids(runs: list[dict[str, Any]]) -> list[str]:
    return [run["id"] for run in runs]


def expected(emu: Any, **filters: Any) -> list[dict[str, Any]]:
    """The runs the API should return for ``filters``, recomputed from the ground truth."""
    details = {d["id"]: d for d in emu.details}
    wanted_metadata = json.loads(filters["metadata"]) if "metadata" in filters else None
    out = []
    for run in emu.runs:  # newest first: the default order
        detail = details[run["id"]]
        ms = epoch_ms(run["created_at"])
        if "user_id" in filters and run["user"]["id"] != filters["user_id"]:
            continue
        if "status" in filters and run["status"] != filters["status"]:
            continue
        if "sentiment" in filters and run["last_reaction_sentiment"] != filters["sentiment"]:
            continue
        if "group_id" in filters and run["group_id"] != filters["group_id"]:
            continue
        if "workforce_id" in filters and run["workforce"]["id"] != filters["workforce_id"]:
            continue
        if "rev" in filters and detail["rev"] not in (filters["rev"], None):
            continue
        if "from" in filters and ms < filters["from"]:
            continue
        if "to" in filters and ms >= filters["to"]:
            continue
        if wanted_metadata is not None and any(
            key not in detail["metadata"] or detail["metadata"][key] != value
            for key, value in wanted_metadata.items()
        ):
            continue
        if str(filters.get("roots", "false")).lower() in ("true", "1") and run["parent_id"]:
            continue
        out.append(run)
    return out


def biggest_thread(emu: Any) -> str:
    return Counter(run["group_id"] for run in emu.runs).most_common(1)[0][0]


def test_first_page_is_the_newest_runs(api: Any, timbal_emulator: Any) -> None:
    body = api.page()
    assert body["runs"] == timbal_emulator.runs[:50]
    assert isinstance(body["next_page_token"], str)
    for run in body["runs"]:
        assert set(run) == {
            "id", "idempotency_key", "status", "created_at", "duration_ms", "cost_usd",
            "cost_credits", "group_id", "parent_id", "last_reaction_sentiment", "user",
            "workforce",
        }  # fmt: skip


def test_full_pagination_returns_every_run_once_in_order(api: Any, timbal_emulator: Any) -> None:
    runs = api.all()
    assert len(runs) == len(timbal_emulator.runs) == 3000
    assert len(set(ids(runs))) == 3000
    assert runs == timbal_emulator.runs


def test_ground_truth_is_sorted_newest_first(timbal_emulator: Any) -> None:
    created = [epoch_ms(run["created_at"]) for run in timbal_emulator.runs]
    assert created == sorted(created, reverse=True)
    assert len(set(created)) == len(created)


FILTER_CASES: list[dict[str, Any]] = [
    {"status": "success"},
    {"status": "error"},
    {"status": "cancelled"},
    {"status": "running"},
    {"status": "no-such-status"},
    {"user_id": "usr_ada"},
    {"user_id": "usr_radia"},
    {"sentiment": "positive"},
    {"sentiment": "negative"},
    {"workforce_id": "wf_support"},
    {"workforce_id": "wf_legacy_faq"},
    {"rev": "main"},
    {"rev": "dev"},
    {"rev": "feature/x"},
    {"rev": "no-such-branch"},
    {"metadata": '{"customer": "acme"}'},
    {"metadata": '{"env": "staging", "tier": "pro"}'},
    {"metadata": '{"attempt": 2}'},
    {"metadata": '{"attempt": "2"}'},
    {"metadata": '{"attempt": 2.0}'},
    {"metadata": '{"nope": 1}'},
    {"roots": "true"},
    {"roots": "false"},
    {"status": "error", "workforce_id": "wf_support"},
    {"user_id": "usr_grace", "rev": "dev", "roots": "true"},
    {"metadata": '{"customer": "globex"}', "sentiment": "positive", "status": "success"},
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: json.dumps(f, sort_keys=True))
def test_filter_matches_recomputation(api: Any, timbal_emulator: Any, filters: dict) -> None:
    assert ids(api.all(**filters)) == ids(expected(timbal_emulator, **filters))


def test_filters_select_something(timbal_emulator: Any) -> None:
    # Guard against vacuous filter tests: each realistic case matches a proper subset.
    total = len(timbal_emulator.runs)
    for filters in FILTER_CASES[:4] + FILTER_CASES[5:12] + FILTER_CASES[15:18]:
        assert 0 < len(expected(timbal_emulator, **filters)) < total, filters


def test_group_filter_returns_a_whole_thread(api: Any, timbal_emulator: Any) -> None:
    group = biggest_thread(timbal_emulator)
    runs = api.all(group_id=group)
    assert len(runs) >= 3
    assert ids(runs) == ids(expected(timbal_emulator, group_id=group))
    roots = [run for run in runs if run["parent_id"] is None]
    assert [run["id"] for run in roots] == [group]


def test_rev_always_includes_runs_without_a_branch(api: Any, timbal_emulator: Any) -> None:
    branchless = {d["id"] for d in timbal_emulator.details if d["rev"] is None}
    assert 0.1 < len(branchless) / len(timbal_emulator.details) < 0.3
    for rev in ("main", "dev", "no-such-branch"):
        assert branchless <= set(ids(api.all(rev=rev)))
    assert set(ids(api.all(rev="no-such-branch"))) == branchless


def test_time_bounds_from_inclusive_to_exclusive(api: Any, timbal_emulator: Any) -> None:
    runs = timbal_emulator.runs
    newer, older = runs[100], runs[400]
    window = {"from": epoch_ms(older["created_at"]), "to": epoch_ms(newer["created_at"])}
    got = ids(api.all(**window))
    assert got == ids(runs[101:401])
    assert older["id"] in got
    assert newer["id"] not in got
    assert got == ids(expected(timbal_emulator, **window))


def test_time_bounds_combined_with_filters_and_sort(api: Any, timbal_emulator: Any) -> None:
    runs = timbal_emulator.runs
    window = {"from": epoch_ms(runs[2000]["created_at"]), "to": epoch_ms(runs[50]["created_at"])}
    got = api.all(**window, status="success", sort_by="cost_usd", sort_order="asc")
    want = expected(timbal_emulator, **window, status="success")
    assert sorted(ids(got)) == sorted(ids(want))
    costs = [run["cost_usd"] for run in got]
    assert costs == sorted(costs)


def test_empty_and_inverted_windows(api: Any, timbal_emulator: Any) -> None:
    newest = epoch_ms(timbal_emulator.runs[0]["created_at"])
    assert api.page(**{"from": newest + 1}) == {"runs": [], "next_page_token": None}
    assert api.page(**{"from": newest, "to": newest}) == {"runs": [], "next_page_token": None}
    assert api.page(**{"from": newest, "to": newest - 10}) == {
        "runs": [],
        "next_page_token": None,
    }
    assert ids(api.page(**{"from": newest})["runs"]) == [timbal_emulator.runs[0]["id"]]


def test_empty_parameters_are_ignored(api: Any, timbal_emulator: Any) -> None:
    body = api.page(status="", user_id="", metadata="", roots="", sort_by="", page_token="")
    assert body["runs"] == timbal_emulator.runs[:50]


def _ordered(emu: Any, sort_by: str, order: str, **filters: Any) -> list[str]:
    """The documented order: by value then id, both in the requested direction; nulls last."""

    def value(run: dict[str, Any]) -> Any:
        return epoch_ms(run["created_at"]) if sort_by == "created_at" else run[sort_by]

    runs = expected(emu, **filters)
    present = [run for run in runs if value(run) is not None]
    nulls = [run for run in runs if value(run) is None]
    present.sort(key=lambda run: (value(run), run["id"]), reverse=order == "desc")
    nulls.sort(key=lambda run: run["id"], reverse=order == "desc")
    return ids(present + nulls)


SORTS = [
    (field, order)
    for field in ("id", "created_at", "duration_ms", "cost_usd", "cost_credits")
    for order in ("asc", "desc")
]


@pytest.mark.parametrize(("sort_by", "sort_order"), SORTS)
def test_every_sort_is_ordered_and_complete(
    api: Any, timbal_emulator: Any, sort_by: str, sort_order: str
) -> None:
    got = api.all(sort_by=sort_by, sort_order=sort_order)
    assert len(got) == 3000
    assert ids(got) == _ordered(timbal_emulator, sort_by, sort_order)


@pytest.mark.parametrize(("sort_by", "sort_order"), SORTS)
def test_sorts_with_filters(api: Any, timbal_emulator: Any, sort_by: str, sort_order: str) -> None:
    filters = {"workforce_id": "wf_support", "roots": "true"}
    got = api.all(sort_by=sort_by, sort_order=sort_order, **filters)
    assert ids(got) == _ordered(timbal_emulator, sort_by, sort_order, **filters)


def test_duration_nulls_sort_last_in_both_orders(api: Any, timbal_emulator: Any) -> None:
    running = sum(1 for run in timbal_emulator.runs if run["duration_ms"] is None)
    assert running > 0
    for order in ("asc", "desc"):
        got = api.all(sort_by="duration_ms", sort_order=order)
        assert [run["duration_ms"] for run in got[-running:]] == [None] * running


def test_equivalent_spellings_give_the_same_page(api: Any) -> None:
    assert api.page(roots="1") == api.page(roots="true") == api.page(roots="TRUE")
    assert api.page(roots="0") == api.page(roots="false") == api.page()
    assert api.page(metadata="{}") == api.page()
    assert api.page(metadata='{"env": "prod", "tier": "pro"}') == api.page(
        metadata='{"tier":"pro","env":"prod"}'
    )


def test_sort_order_defaults_to_desc(api: Any) -> None:
    assert api.page(sort_by="cost_usd") == api.page(sort_by="cost_usd", sort_order="desc")


def test_page_token_is_reusable_with_the_same_query(api: Any) -> None:
    first = api.page(status="success")
    second = api.page(status="success", page_token=first["next_page_token"])
    again = api.page(status="success", page_token=first["next_page_token"])
    assert second == again
    assert not set(ids(first["runs"])) & set(ids(second["runs"]))


@pytest.mark.parametrize(
    "other",
    [
        {"status": "error"},
        {},
        {"status": "success", "roots": "true"},
        {"status": "success", "sort_by": "cost_usd"},
        {"status": "success", "sort_order": "asc"},
        {"status": "success", "metadata": '{"env": "prod"}'},
    ],
)
def test_page_token_is_bound_to_its_query(api: Any, other: dict[str, Any]) -> None:
    token = api.page(status="success")["next_page_token"]
    message = api.error(400, {**other, "page_token": token})
    assert "page_token" in message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!not-base64!!!",
        _b64(b"not json"),
        _b64(b"[1, 2]"),
        _b64(b'{"v": 1}'),
        _b64(b'{"v": 2, "q": "x", "k": [1, "a"]}'),
    ],
)
def test_garbage_page_token_is_a_400(api: Any, token: str) -> None:
    assert "page_token" in api.error(400, {"page_token": token})


def test_tampered_page_token_is_a_400(api: Any, timbal_emulator: Any) -> None:
    token = api.page()["next_page_token"]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload["k"][1] = "01NOSUCHRUN0000000000000000"
    assert "page_token" in api.error(400, {"page_token": _b64(json.dumps(payload).encode())})
    payload["k"] = [payload["k"][0] + 1, timbal_emulator.runs[49]["id"]]
    assert "page_token" in api.error(400, {"page_token": _b64(json.dumps(payload).encode())})


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "abc"}, "from"),
        ({"to": "12.5"}, "to"),
        ({"from": "1e12"}, "from"),
        ({"sort_by": "bogus"}, "sort_by"),
        ({"sort_by": "created"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
        ({"roots": "maybe"}, "roots"),
        ({"metadata": "{bad"}, "metadata"),
        ({"metadata": "[1, 2]"}, "metadata"),
        ({"metadata": '"acme"'}, "metadata"),
    ],
)
def test_malformed_parameters_are_a_400_naming_the_parameter(
    api: Any, params: dict[str, str], name: str
) -> None:
    assert name in api.error(400, params)


def test_missing_or_wrong_key_is_a_401(api: Any, timbal_emulator: Any) -> None:
    url = timbal_emulator.runs_url
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {timbal_emulator.api_key}"},
        {"Authorization": "Bearer"},
    ):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        message = response.json()["message"]
        assert message
        assert timbal_emulator.api_key not in message
        response = httpx.get(f"{url}/{timbal_emulator.runs[0]['id']}", headers=headers)
        assert response.status_code == 401
        assert response.json()["message"]


def test_other_org_or_project_is_a_403(timbal_emulator: Any) -> None:
    base, headers = timbal_emulator.base_url, timbal_emulator.headers()
    run_id = timbal_emulator.runs[0]["id"]
    for org, project in (("other-org", "demo-project"), ("demo-org", "other-project")):
        for path in (
            f"/orgs/{org}/projects/{project}/runs",
            f"/orgs/{org}/projects/{project}/runs/{run_id}",
        ):
            response = httpx.get(base + path, headers=headers)
            assert response.status_code == 403
            assert response.json()["message"]


def test_get_run_by_id_and_by_idempotency_key(api: Any, timbal_emulator: Any) -> None:
    details = {d["id"]: d for d in timbal_emulator.details}
    for run in timbal_emulator.runs[::250]:
        by_id = api.get(run["id"])
        by_key = api.get(run["idempotency_key"])
        assert by_id.status_code == by_key.status_code == 200
        assert by_id.json() == by_key.json() == details[run["id"]]
        detail = by_id.json()
        assert {key: detail[key] for key in run} == run  # the preview is a projection
        assert {"status_detail", "trace", "metadata", "rev", "workforce"} <= set(detail)
        assert isinstance(detail["trace"], list | dict)


def test_unknown_run_is_a_404(api: Any) -> None:
    response = api.get("01NOSUCHRUN0000000000000000")
    assert response.status_code == 404
    assert "01NOSUCHRUN0000000000000000" in response.json()["message"]


def test_unknown_paths_are_json_404s(timbal_emulator: Any) -> None:
    response = httpx.get(f"{timbal_emulator.base_url}/nope", headers=timbal_emulator.headers())
    assert response.status_code == 404
    assert response.json()["message"]


def test_no_rate_limit_headers_without_a_rate_limit(api: Any) -> None:
    response = api.raw_list()
    assert "ratelimit-limit" not in response.headers


def test_extra_fields_carry_unknown_fields(timbal_emulator_factory: Any, make_api: Any) -> None:
    emu = timbal_emulator_factory(runs=300, seed=7, extra_fields=True)
    api = make_api(emu, strict_fields=False)
    runs = api.all()
    assert runs == emu.runs
    details = {d["id"]: d for d in emu.details}
    for run in runs:
        assert {"rev", "metadata"} <= set(run)
        assert run["rev"] == details[run["id"]]["rev"]
        assert run["metadata"] == details[run["id"]]["metadata"]


def test_page_size_is_configurable(timbal_emulator_factory: Any, make_api: Any) -> None:
    emu = timbal_emulator_factory(runs=95, seed=3, page_size=10)
    api = make_api(emu)
    first = api.page()
    assert len(first["runs"]) == 10
    assert ids(api.all()) == ids(emu.runs)


def test_custom_credentials(timbal_emulator_factory: Any, make_api: Any) -> None:
    emu = timbal_emulator_factory(runs=20, api_key="k-123", org_id="o1", project_id="p1")
    assert emu.env() == {
        "TIMBAL_API_KEY": "k-123",
        "TIMBAL_API_HOST": emu.base_url,
        "TIMBAL_ORG_ID": "o1",
        "TIMBAL_PROJECT_ID": "p1",
    }
    assert "k-123" not in repr(emu)
    assert ids(make_api(emu).all()) == ids(emu.runs)
    response = httpx.get(emu.runs_url, headers={"Authorization": "Bearer demo-key"})
    assert response.status_code == 401


def test_hundreds_of_pages_are_exact(timbal_emulator_factory: Any, make_api: Any) -> None:
    emu = timbal_emulator_factory(runs=3000, seed=1, page_size=7)  # the session data set
    api = make_api(emu)
    runs = api.all(sort_by="cost_credits", sort_order="asc")
    assert len(runs) == 3000
    assert len(set(ids(runs))) == 3000
    credits = [run["cost_credits"] for run in runs]
    assert credits == sorted(credits)


@pytest.mark.parametrize("value", ["¹", "+²", "١٢", "12a", "+"])
def test_non_ascii_or_bad_epoch_ms_is_a_400(api: Any, value: str) -> None:
    # "¹".isdigit() is True in Python, but int("¹") fails: must be a 400, not a 500.
    assert "'from'" in api.error(400, {"from": value})
