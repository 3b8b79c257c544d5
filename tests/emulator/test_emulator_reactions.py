"""The reactions endpoints: GET (paginated) and POST, consistent with each run's sentiment."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import FIXED_END
from timbal_integrations.emulator.catalog import feedback_pool


def created_ms(run: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(run["created_at"]).timestamp() * 1000)


def test_every_run_has_reactions_matching_its_sentiment(api: Any, timbal_emulator: Any) -> None:
    with_feedback: Counter[str] = Counter()
    per_sentiment: Counter[str] = Counter()
    end_ms = int(FIXED_END.timestamp() * 1000)
    for run in timbal_emulator.runs:
        reactions = timbal_emulator.reactions(run["id"])
        if run["last_reaction_sentiment"] is None:
            assert reactions == []
            continue
        assert 1 <= len(reactions) <= 3
        assert reactions[0]["sentiment"] == run["last_reaction_sentiment"]  # the latest
        finished = created_ms(run) + (run["duration_ms"] or 0)
        times = [r["created_at"] for r in reactions]
        assert times == sorted(times, reverse=True)
        assert all(finished <= t <= max(end_ms, finished) for t in times)
        for reaction in reactions:
            per_sentiment[reaction["sentiment"]] += 1
            if reaction["feedback"]:
                with_feedback[reaction["sentiment"]] += 1
    assert per_sentiment["negative"] > 20
    assert per_sentiment["positive"] > 20
    assert with_feedback["negative"] / per_sentiment["negative"] > 0.7  # thumbs-down say why
    assert with_feedback["positive"] / per_sentiment["positive"] < 0.6


def test_thumbs_down_on_a_failed_run_explains_the_failure(timbal_emulator: Any) -> None:
    checked = 0
    for detail in timbal_emulator.details:
        if detail["status"] != "error" or detail["last_reaction_sentiment"] != "negative":
            continue
        latest = timbal_emulator.reactions(detail["id"])[0]
        if latest["feedback"]:
            kind = detail["status_detail"]["reason"]
            assert latest["feedback"] in feedback_pool("negative", "error", None, kind)
            checked += 1
    assert checked > 5


def test_served_by_id_and_idempotency_key(api: Any, timbal_emulator: Any) -> None:
    run = next(r for r in timbal_emulator.runs if r["last_reaction_sentiment"])
    by_id = api.reactions(run["id"])
    by_key = api.reactions(run["idempotency_key"])
    assert by_id.status_code == by_key.status_code == 200
    assert by_id.json() == by_key.json()
    assert by_id.json() == {
        "reactions": timbal_emulator.reactions(run["id"]),
        "next_page_token": None,
    }
    for reaction in by_id.json()["reactions"]:
        assert set(reaction) == {"id", "user", "sentiment", "feedback", "created_at"}
        assert isinstance(reaction["created_at"], int)


def test_unknown_run_auth_and_org(api: Any, timbal_emulator: Any) -> None:
    assert api.reactions("01NOSUCHRUN").status_code == 404
    url = f"{timbal_emulator.runs_url}/{timbal_emulator.runs[0]['id']}/reactions"
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, json={"sentiment": "positive"}).status_code == 401
    other = url.replace("/demo-org/", "/other-org/")
    assert httpx.get(other, headers=timbal_emulator.headers()).status_code == 403


def test_post_adds_a_reaction_and_pages_are_exact(
    timbal_emulator_factory: Any, make_api: Any
) -> None:
    emu = timbal_emulator_factory(runs=200, page_size=50)
    api = make_api(emu)
    run = next(r for r in emu.runs if r["last_reaction_sentiment"] is None)
    url = f"{emu.runs_url}/{run['id']}/reactions"
    with httpx.Client(headers=emu.headers()) as client:
        for k in range(119):
            response = client.post(url, json={"sentiment": "positive" if k % 2 else "negative"})
            assert response.status_code == 204
            assert response.content == b""
        response = client.post(url, json={"sentiment": "negative", "feedback": "Too slow."})
        assert response.status_code == 204
    pages = []
    token = None
    while True:
        response = api.reactions(run["id"], **({"page_token": token} if token else {}))
        body = response.json()
        pages.append(len(body["reactions"]))
        token = body["next_page_token"]
        if token is None:
            break
    assert pages == [50, 50, 20]
    everything = api.all_reactions(run["id"])
    assert everything == emu.reactions(run["id"])
    assert len({r["id"] for r in everything}) == 120
    assert everything[0]["feedback"] == "Too slow."
    assert everything[0]["user"]["id"] == "usr_ada"  # the API key's owner
    assert [api.get(run["id"]).json()["last_reaction_sentiment"]] == ["negative"]
    listed = {r["id"]: r for r in api.all(sentiment="negative")}
    assert run["id"] in listed
    # A token is bound to its run.
    first = api.reactions(run["id"]).json()
    other = emu.runs[0]["id"] if emu.runs[0]["id"] != run["id"] else emu.runs[1]["id"]
    response = api.reactions(other, page_token=first["next_page_token"])
    assert response.status_code == 400
    assert "page_token" in response.json()["message"]
    assert api.reactions(run["id"], page_token="garbage").status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        (b"not json", 400, "JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"{}", 422, "sentiment"),
        (b'{"sentiment": ""}', 422, "sentiment"),
        (b'{"sentiment": 5}', 422, "sentiment"),
        (b'{"sentiment": "positive", "feedback": 3}', 422, "feedback"),
        (b'{"sentiment": "positive", "feedback": "' + b"x" * 70_000 + b'"}', 413, "too large"),
    ],
)
def test_bad_post_bodies(timbal_emulator_factory: Any, body: bytes, status: int, word: str) -> None:
    emu = timbal_emulator_factory(runs=20)
    run_id = emu.runs[0]["id"]
    response = httpx.post(
        f"{emu.runs_url}/{run_id}/reactions",
        content=body,
        headers={**emu.headers(), "content-type": "application/json"},
    )
    assert response.status_code == status
    assert word in response.json()["message"]
    assert emu.reactions(run_id) == []


def test_post_to_an_unknown_run_is_a_404(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=20)
    response = httpx.post(
        f"{emu.runs_url}/01NOSUCHRUN/reactions",
        json={"sentiment": "positive"},
        headers=emu.headers(),
    )
    assert response.status_code == 404


def test_live_reactions_posted_now_and_generated_later(
    timbal_emulator_factory: Any, make_api: Any
) -> None:
    from timbal_integrations.emulator import EmulatorClock

    clock = EmulatorClock(FIXED_END)
    emu = timbal_emulator_factory(runs=800, live=True, clock=clock)
    api = make_api(emu)
    run = emu.runs[0]
    assert (
        httpx.post(
            f"{emu.runs_url}/{run['id']}/reactions",
            json={"sentiment": "negative"},
            headers=emu.headers(),
        ).status_code
        == 204
    )
    (reaction,) = [r for r in api.all_reactions(run["id"]) if r["user"]["id"] == "usr_ada"][:1]
    assert reaction["created_at"] == clock.now_ms()  # stamped with the emulator's now
    clock.advance(timedelta(days=12))
    for listed in emu.runs[:300]:
        got = api.all_reactions(listed["id"])
        assert (got[0]["sentiment"] if got else None) == listed["last_reaction_sentiment"]
