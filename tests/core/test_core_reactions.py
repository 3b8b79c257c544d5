"""``list_reactions`` and ``get_reactions_page`` on both clients: the emulator's reactions
(validated against the spec's ``Reaction``), lazy pages, 404 like ``get_run``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.core.helpers_core import BASE, KEY, KINDS, ORG, PROJECT, Driver
from tests.support.spec import REACTION_VALIDATOR, REACTIONS_VALIDATOR
from timbal_integrations import (
    NotFoundError,
    PaginationLoopError,
    QueryError,
    Reaction,
    ResponseValidationError,
    TimbalClient,
)
from timbal_integrations.emulator import Emulator, generate_runs
from timbal_integrations.wording import describe

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def as_served(reaction: Reaction) -> dict[str, Any]:
    """A parsed reaction back in the API's shape (created_at in epoch milliseconds)."""
    data = reaction.to_json_dict()
    data["created_at"] = (reaction.created_at - EPOCH) // timedelta(milliseconds=1)
    data["user"] = {k: v for k, v in data["user"].items() if v is not None}
    return data


def served(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "user": {k: v for k, v in raw["user"].items() if v is not None}}


def test_reactions_match_the_emulator_and_the_spec(kind: str, timbal_emulator: Emulator) -> None:
    drive = Driver(kind, env=timbal_emulator.env())
    with_reactions = [r for r in timbal_emulator.runs if r["last_reaction_sentiment"]][:8]
    assert with_reactions
    for run in with_reactions:
        truth = timbal_emulator.reactions(run["id"])
        for raw in truth:
            REACTION_VALIDATOR.validate(raw)
        got = drive.list_reactions(run["id"])
        assert [as_served(r) for r in got] == [served(r) for r in truth]
        assert got[0].sentiment == run["last_reaction_sentiment"]  # newest first
        assert all(r.created_at.tzinfo is UTC for r in got)
        by_key = drive.list_reactions(run["idempotency_key"])
        assert [r.id for r in by_key] == [r.id for r in got]
    quiet = next(r for r in timbal_emulator.runs if r["last_reaction_sentiment"] is None)
    assert drive.list_reactions(quiet["id"]) == []


def test_pages_are_followed_lazily(kind: str, timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=generate_runs(20, seed=4), page_size=2)
    run_id = emu.runs[3]["id"]
    for i in range(5):
        emu.add_reaction(run_id, "negative" if i % 2 else "positive", f"note {i}")
    truth = emu.reactions(run_id)
    assert len(truth) >= 5
    drive = Driver(kind, env=emu.env())
    emu.request_log.clear()
    got = drive.list_reactions(run_id)
    assert [r.id for r in got] == [r["id"] for r in truth]
    assert drive.requests == -(-len(truth) // 2)
    drive.requests = 0
    assert [r.id for r in drive.list_reactions(run_id, limit=3)] == [r["id"] for r in truth[:3]]
    assert drive.requests == 2  # no request beyond what the limit needs
    assert drive.list_reactions(run_id, limit=0) == []
    first = drive.get_reactions_page(run_id)
    assert [r.id for r in first.reactions] == [r["id"] for r in truth[:2]]
    assert first.next_page_token
    second = drive.get_reactions_page(run_id, page_token=first.next_page_token)
    assert [r.id for r in second.reactions] == [r["id"] for r in truth[2:4]]
    paths = {entry.path for entry in emu.request_log}
    assert len(paths) == 1
    assert next(iter(paths)).endswith(f"/runs/{run_id}/reactions")
    for entry in emu.request_log:
        assert entry.status == 200


def test_an_unknown_run_is_not_found_like_get_run(kind: str, timbal_emulator: Emulator) -> None:
    drive = Driver(kind, env=timbal_emulator.env())
    with pytest.raises(NotFoundError) as caught:
        drive.list_reactions("01NOSUCHRUN")
    assert caught.value.run_id == "01NOSUCHRUN"
    assert "run_id" in caught.value.check
    assert "01NOSUCHRUN" in describe(caught.value, "assistant")
    with pytest.raises(NotFoundError):
        drive.get_reactions_page("01NOSUCHRUN")


@pytest.mark.parametrize("bad", ["", "  ", "..", "a\nb", "x" * 600])
def test_bad_run_ids_fail_before_any_request(kind: str, bad: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    drive = Driver(
        kind,
        api_key=KEY,
        host=BASE,
        org_id=ORG,
        project_id=PROJECT,
        env={},
        transport=httpx.MockTransport(refuse),
    )
    with pytest.raises(QueryError) as caught:
        drive.list_reactions(bad)
    assert caught.value.field == "run_id"
    with pytest.raises(QueryError):
        drive.list_reactions("ok", limit=-1)


def _client(handler: Any) -> TimbalClient:
    return TimbalClient(
        api_key=KEY,
        host=BASE,
        org_id=ORG,
        project_id=PROJECT,
        env={},
        transport=httpx.MockTransport(handler),
    )


def test_unknown_fields_are_kept_and_bodies_are_checked() -> None:
    body = {
        "reactions": [
            {
                "id": "r1",
                "user": {"id": "u", "name": "Ada", "email": "ada@x", "team": "ops"},
                "sentiment": "confused",
                "feedback": None,
                "created_at": 1767225600000,
                "emoji": "🤔",
            }
        ],
        "next_page_token": "",
        "total": 1,
    }
    REACTIONS_VALIDATOR.validate(body)
    with _client(lambda request: httpx.Response(200, json=body)) as client:
        (reaction,) = list(client.list_reactions("run"))
        page = client.get_reactions_page("run")
    assert reaction.sentiment == "confused"  # an open string
    assert reaction.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert reaction.model_extra == {"emoji": "🤔"}
    assert reaction.user.model_extra == {"team": "ops"}
    assert page.next_page_token is None  # an empty token ends the listing
    broken = {"reactions": [{"id": "r1", "sentiment": "positive"}]}
    with (
        _client(lambda request: httpx.Response(200, json=broken)) as client,
        pytest.raises(ResponseValidationError, match=r"reactions\.0\.user"),
    ):
        list(client.list_reactions("run"))


def test_a_repeated_page_token_stops_the_listing() -> None:
    page = {"reactions": [], "next_page_token": "same"}
    with (
        _client(lambda request: httpx.Response(200, json=page)) as client,
        pytest.raises(PaginationLoopError, match="/reactions"),
    ):
        list(client.list_reactions("run"))
