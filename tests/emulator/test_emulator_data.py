"""The generated run history: deterministic, realistic and internally consistent."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import FIXED_END, PREVIEW_FIELDS, generate_runs

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?(Z|\+00:00)$")


def epoch_ms(created_at: str) -> int:
    return (datetime.fromisoformat(created_at) - _EPOCH) // timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    return generate_runs(5000, seed=1)


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert generate_runs(400, seed=3) == generate_runs(400, seed=3)
    assert generate_runs(400, seed=3) != generate_runs(400, seed=4)
    assert generate_runs(0, seed=3) == []


def test_served_data_is_deterministic(timbal_emulator_factory: Any) -> None:
    first = timbal_emulator_factory(runs=200, seed=21, page_size=200)
    second = timbal_emulator_factory(runs=200, seed=21, page_size=200)
    other = timbal_emulator_factory(runs=200, seed=22, page_size=200)

    def served(emu: Any) -> Any:
        return httpx.get(emu.runs_url, headers=emu.headers()).json()["runs"]

    assert served(first) == served(second) == first.runs
    assert served(other) != served(first)


def test_shape_and_ids(runs: list[dict[str, Any]]) -> None:
    assert len(runs) == 5000
    for run in runs:
        assert set(PREVIEW_FIELDS) <= set(run)
        assert _ULID.match(run["id"])
        assert _UUID4.match(run["idempotency_key"])
    assert len({run["id"] for run in runs}) == 5000
    assert len({run["idempotency_key"] for run in runs}) == 5000
    created = [epoch_ms(run["created_at"]) for run in runs]
    assert created == sorted(created, reverse=True)  # newest first
    assert len(set(created)) == len(created)  # no ties
    assert [run["id"] for run in runs] == sorted((run["id"] for run in runs), reverse=True)


def test_created_at_spellings_and_span(runs: list[dict[str, Any]]) -> None:
    start, end = FIXED_END - timedelta(days=30), FIXED_END
    kinds: Counter[tuple[bool, bool]] = Counter()
    for run in runs:
        value = run["created_at"]
        assert _RFC3339.match(value), value
        assert start <= datetime.fromisoformat(value) < end
        kinds[(value.endswith("Z"), "." in value)] += 1
    assert len(kinds) == 4  # 'Z' and '+00:00', with and without a fraction
    assert min(kinds.values()) > 200


def test_custom_end_and_span() -> None:
    end = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    runs = generate_runs(300, seed=2, end=end, span=timedelta(hours=6))
    for run in runs:
        assert end - timedelta(hours=6) <= datetime.fromisoformat(run["created_at"]) < end


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n must be"):
        generate_runs(-1)
    with pytest.raises(ValueError, match="aware"):
        generate_runs(10, end=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="span"):
        generate_runs(10_000, span=timedelta(seconds=1))


def test_status_mix_and_running_runs(runs: list[dict[str, Any]]) -> None:
    share = {k: v / len(runs) for k, v in Counter(run["status"] for run in runs).items()}
    assert set(share) == {"success", "error", "cancelled", "running"}
    assert 0.72 < share["success"] < 0.88
    assert 0.06 < share["error"] < 0.14
    assert 0.02 < share["cancelled"] < 0.07
    assert 0.03 < share["running"] < 0.09
    newest = epoch_ms(runs[0]["created_at"])
    span_ms = 30 * 86_400_000
    for run in runs:
        if run["status"] == "running":
            assert run["duration_ms"] is None
            assert newest - epoch_ms(run["created_at"]) < 0.13 * span_ms
            assert run["last_reaction_sentiment"] is None
        else:
            assert isinstance(run["duration_ms"], int)
            assert run["duration_ms"] > 0


def test_costs(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        assert isinstance(run["cost_usd"], float)
        assert run["cost_usd"] >= 0
        assert run["cost_credits"] == round(run["cost_usd"] * 100, 4)
    assert len({run["cost_usd"] for run in runs}) > 4000


def test_users_and_workforces(runs: list[dict[str, Any]]) -> None:
    users = {run["user"]["id"]: run["user"] for run in runs}
    workforces = {run["workforce"]["id"]: run["workforce"] for run in runs}
    assert len(users) == 12
    assert len(workforces) == 8
    assert any("photo_url" not in u for u in users.values())
    assert any(u.get("photo_url") for u in users.values())
    assert {w["type"] for w in workforces.values()} == {"agent", "workflow"}
    assert any("uid" in w for w in workforces.values())
    assert any("url" in w for w in workforces.values())
    assert any("description" in w for w in workforces.values())
    deleted = [w for w in workforces.values() if w.get("deleted_at") is not None]
    assert len(deleted) == 1
    deleted_at = deleted[0]["deleted_at"]
    assert isinstance(deleted_at, int)
    for run in runs:
        if run["workforce"]["id"] == deleted[0]["id"]:
            assert epoch_ms(run["created_at"]) < deleted_at


def test_threads(runs: list[dict[str, Any]]) -> None:
    by_id = {run["id"]: run for run in runs}
    roots = [run for run in runs if run["parent_id"] is None]
    replies = [run for run in runs if run["parent_id"] is not None]
    assert 0.4 < len(roots) / len(runs) < 0.85
    for root in roots:
        assert root["group_id"] == root["id"]
    for reply in replies:
        parent = by_id[reply["parent_id"]]
        assert reply["group_id"] == parent["group_id"]
        assert epoch_ms(parent["created_at"]) < epoch_ms(reply["created_at"])
        assert parent["status"] != "running"
        assert reply["user"] == parent["user"]
        assert reply["workforce"] == parent["workforce"]
    children = Counter(reply["parent_id"] for reply in replies)
    assert max(children.values()) == 1  # a thread is a chain: one reply per run
    sizes = Counter(run["group_id"] for run in runs)
    assert max(sizes.values()) >= 4


def test_sentiment_rev_and_metadata(runs: list[dict[str, Any]]) -> None:
    sentiments = Counter(run["last_reaction_sentiment"] for run in runs)
    assert set(sentiments) == {None, "positive", "negative"}
    assert sentiments[None] / len(runs) > 0.75
    revs = Counter(run["rev"] for run in runs)
    assert set(revs) == {"main", "dev", "feature/x", None}
    assert 0.14 < revs[None] / len(runs) < 0.26
    customers = Counter(run["metadata"].get("customer") for run in runs)
    assert {"acme", "globex", "initech", "umbrella", "hooli"} <= set(customers)
    assert customers[None] > 0  # some runs carry no metadata
    for run in runs:
        metadata = run["metadata"]
        assert isinstance(metadata, dict)
        if metadata:
            assert metadata["env"] in ("prod", "staging")
            assert metadata["tier"] in ("free", "pro", "enterprise")
        assert "trace" not in run  # built when the run is fetched (see test_emulator_traces)
        detail = run["status_detail"]
        if run["status"] == "running":
            assert detail is None
        else:  # Timbal's RunStatus: {code, reason, message}
            assert set(detail) == {"code", "reason", "message"}
            assert detail["code"] == run["status"]
            assert (detail["message"] is None) == (run["status"] == "success")
