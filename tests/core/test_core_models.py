"""Models: created_at is aware UTC, unknown fields survive, open enums, record order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tests.support.runs import make_run
from timbal_integrations import RECORD_FIELDS, Run, RunDetail, RunsPage, Workforce
from timbal_integrations.models import KNOWN_STATUSES, parse_raw_page


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("2025-12-01T10:20:30Z", datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-12-01T10:20:30+00:00", datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-12-01T12:20:30+02:00", datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-12-01T05:20:30-05:00", datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-12-01T10:20:30.123Z", datetime(2025, 12, 1, 10, 20, 30, 123000, tzinfo=UTC)),
        (
            "2025-12-01T10:20:30.123456+00:00",
            datetime(2025, 12, 1, 10, 20, 30, 123456, tzinfo=UTC),
        ),
        ("2025-12-01T10:20:30", datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2025-12-01T01:00:00+02:00", datetime(2025, 11, 30, 23, 0, 0, tzinfo=UTC)),
    ],
)
def test_created_at_is_aware_utc(spelling: str, expected: datetime) -> None:
    run = Run.model_validate(make_run(created_at=spelling))
    assert run.created_at == expected
    assert run.created_at.tzinfo is not None
    assert run.created_at.utcoffset() is not None
    assert run.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert run.created_at.tzinfo == UTC
    detail = RunDetail.model_validate(make_run(created_at=spelling))
    assert detail.created_at == expected
    assert detail.created_at.tzinfo == UTC


def test_unknown_fields_are_kept_top_level_and_nested() -> None:
    data = make_run(
        rev="main",
        metadata={"env": "prod"},
        brand_new={"nested": [1, 2]},
        user={"id": "u", "name": "n", "email": "e@x.test", "team": "blue"},
        workforce={"id": "w", "name": "n", "type": "agent", "region": "eu", "deleted_at": 5},
    )
    run = Run.model_validate(data)
    dumped = run.model_dump()
    as_json = run.to_json_dict()
    for out in (dumped, as_json):
        assert out["rev"] == "main"
        assert out["metadata"] == {"env": "prod"}
        assert out["brand_new"] == {"nested": [1, 2]}
        assert out["user"]["team"] == "blue"
        assert out["workforce"]["region"] == "eu"
        assert out["workforce"]["deleted_at"] == 5
    json.dumps(as_json)  # JSON-ready
    assert as_json["created_at"] == "2025-12-01T00:00:00Z"


def test_to_json_dict_round_trips() -> None:
    data = make_run(7, created_at="2025-12-01T12:00:00.5+02:00", extra_thing=3)
    first = Run.model_validate(data).to_json_dict()
    again = Run.model_validate(first).to_json_dict()
    assert first == again
    assert Run.model_validate(first).created_at == datetime(2025, 12, 1, 10, 0, 0, 500000, UTC)


@pytest.mark.parametrize("kind", ["agent", "workflow", "unknown", "crew", "something-new"])
def test_workforce_type_is_open(kind: str) -> None:
    run = Run.model_validate(make_run(workforce={"id": "w", "name": "n", "type": kind}))
    assert run.workforce.type == kind
    assert run.to_record()["workforce_type"] == kind


@pytest.mark.parametrize("status", [*KNOWN_STATUSES, "queued", "timed_out"])
def test_status_is_open(status: str) -> None:
    assert Run.model_validate(make_run(status=status)).status == status


def test_known_statuses() -> None:
    assert set(KNOWN_STATUSES) == {"success", "error", "cancelled", "running"}


def test_to_record_keys_and_values() -> None:
    data = make_run(
        3,
        status="error",
        duration_ms=None,
        cost_usd=0.25,
        cost_credits=25.0,
        group_id="run_00001",
        parent_id="run_00002",
        last_reaction_sentiment="negative",
        user={"id": "usr_9", "name": "Grace", "email": "g@x.test", "photo_url": None},
        workforce={"id": "wf_9", "name": "triage", "type": "workflow", "uid": "t"},
        extra_field="ignored in records",
    )
    record = Run.model_validate(data).to_record()
    assert tuple(record) == RECORD_FIELDS
    assert record == {
        "id": "run_00003",
        "idempotency_key": "key-00003",
        "created_at": datetime(2025, 12, 1, 0, 0, 3, tzinfo=UTC),
        "status": "error",
        "duration_ms": None,
        "cost_usd": 0.25,
        "cost_credits": 25.0,
        "user_id": "usr_9",
        "user_name": "Grace",
        "user_email": "g@x.test",
        "workforce_id": "wf_9",
        "workforce_name": "triage",
        "workforce_type": "workflow",
        "group_id": "run_00001",
        "parent_id": "run_00002",
        "last_reaction_sentiment": "negative",
    }


def test_is_root() -> None:
    assert Run.model_validate(make_run(parent_id=None)).is_root
    assert not Run.model_validate(make_run(parent_id="run_x")).is_root


def test_optional_fields_may_be_absent() -> None:
    data = make_run()
    for name in ("duration_ms", "group_id", "parent_id", "last_reaction_sentiment"):
        del data[name]
    run = Run.model_validate(data)
    assert run.duration_ms is None
    assert run.group_id is None


@pytest.mark.parametrize("missing", ["id", "idempotency_key", "status", "created_at", "user"])
def test_required_fields(missing: str) -> None:
    data = make_run()
    del data[missing]
    with pytest.raises(ValidationError):
        Run.model_validate(data)


def test_bad_created_at_rejected() -> None:
    with pytest.raises(ValidationError):
        Run.model_validate(make_run(created_at="not a time"))


def test_run_detail_extras() -> None:
    data = make_run(
        status_detail={"error": {"type": "ToolError"}},
        trace={"trace_id": "abc", "steps": ["llm"]},
        metadata={"env": "prod"},
        rev=None,
    )
    del data["workforce"]
    detail = RunDetail.model_validate(data)
    assert detail.workforce is None
    assert detail.status_detail == {"error": {"type": "ToolError"}}
    assert detail.trace == {"trace_id": "abc", "steps": ["llm"]}
    dumped = detail.to_json_dict()
    assert dumped["metadata"] == {"env": "prod"}
    assert "rev" in dumped


def test_runs_page() -> None:
    page = RunsPage.model_validate({"runs": [make_run(1)], "cursor_debug": "x"})
    assert page.next_page_token is None
    assert page.runs[0].id == "run_00001"
    assert page.model_dump()["cursor_debug"] == "x"
    page = RunsPage.model_validate({"runs": [], "next_page_token": "abc"})
    assert page.runs == []
    assert page.next_page_token == "abc"


def test_workforce_model_direct() -> None:
    wf = Workforce.model_validate({"id": "w", "name": "n", "type": "t", "deleted_at": 1})
    assert wf.deleted_at == 1
    assert wf.url is None


def _page(*created: str, **extra: object) -> bytes:
    runs = [make_run(id=f"run_{i}", created_at=value, **extra) for i, value in enumerate(created)]
    return json.dumps({"runs": runs, "next_page_token": "t"}).encode()


def test_raw_page_keeps_the_dicts_and_parses_utc_in_one_pass() -> None:
    page = parse_raw_page(_page("2025-12-01T10:20:30Z", "2025-12-01T10:20:31.5Z", color="red"))
    assert [run["created_at"] for run in page.runs] == [
        "2025-12-01T10:20:30Z",
        "2025-12-01T10:20:31.5Z",
    ]
    assert all(run["color"] == "red" for run in page.runs)  # unknown fields survive
    assert page.created == [
        datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC),
        datetime(2025, 12, 1, 10, 20, 31, 500000, tzinfo=UTC),
    ]
    assert page.next_page_token == "t"


def test_raw_page_normalises_offsets_and_naive_times_to_utc() -> None:
    page = parse_raw_page(
        _page("2025-12-01T12:20:30+02:00", "2025-12-01T10:20:30", "2025-12-01T10:20:30Z")
    )
    assert page.created == [datetime(2025, 12, 1, 10, 20, 30, tzinfo=UTC)] * 3
    assert all(moment.tzinfo is UTC for moment in page.created)
    # the dicts keep the server's own spelling
    assert page.runs[0]["created_at"] == "2025-12-01T12:20:30+02:00"


@pytest.mark.parametrize(
    "bad",
    ["2025-02-30T10:20:30Z", "2025-12-01", "yesterday", "2025-12-01T25:00:00Z"],
)
def test_raw_page_names_the_run_with_a_bad_created_at(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_raw_page(_page("2025-12-01T10:20:30Z", bad))
    error = caught.value.errors()[0]
    assert error["loc"] == ("runs", 1, "created_at")


def test_raw_page_checks_types() -> None:
    body = json.loads(_page("2025-12-01T10:20:30Z"))
    body["runs"][0]["cost_usd"] = "a lot"
    with pytest.raises(ValidationError) as caught:
        parse_raw_page(json.dumps(body).encode())
    assert caught.value.errors()[0]["loc"] == ("runs", 0, "cost_usd")


# The raw-page schema is written out by hand in pydantic-core terms (for start-up time);
# these hold it to the models' verdicts and key order, field by field.

_WRONG_VALUES: list[object] = [None, "text", 7, 2.5, True, [], {}]


def _variants() -> list[tuple[str, dict[str, object]]]:
    base = make_run(3)
    base["user"]["photo_url"] = "https://example.test/a.png"
    base["workforce"].update(uid="u", url="https://example.test", description="d", deleted_at=1)
    out: list[tuple[str, dict[str, object]]] = [("as is", base)]
    for where in (None, "user", "workforce"):
        target = base if where is None else base[where]
        for key in list(target):
            if key in ("created_at", "user", "workforce"):
                continue  # on purpose, the raw schema takes only ISO strings here
            for value in [*_WRONG_VALUES, "missing"]:
                run = json.loads(json.dumps(base))
                holder = run if where is None else run[where]
                if value == "missing":
                    del holder[key]
                else:
                    holder[key] = value
                out.append((f"{where or 'run'}.{key}={value!r}", run))
    for key in ("user", "workforce"):
        for value in [None, "text", [], {}]:
            out.append((f"run.{key}={value!r}", {**base, key: value}))
    return out


@pytest.mark.parametrize(("case", "run"), _variants(), ids=[c for c, _ in _variants()])
def test_raw_page_schema_gives_the_models_verdict(case: str, run: dict[str, object]) -> None:
    body = json.dumps({"runs": [run], "next_page_token": None}).encode()
    try:
        RunsPage.model_validate_json(body)
        model_ok = True
    except ValidationError:
        model_ok = False
    try:
        parse_raw_page(body)
        raw_ok = True
    except ValidationError:
        raw_ok = False
    assert raw_ok == model_ok, case


def test_raw_page_keys_come_in_the_models_order() -> None:
    run = make_run(4, zzz=1, aaa={"b": 2})
    run["user"]["extra"] = "e"
    shuffled = dict(reversed(list(run.items())))
    shuffled["user"] = dict(reversed(list(run["user"].items())))
    shuffled["workforce"] = dict(reversed(list(run["workforce"].items())))
    body = json.dumps({"next_page_token": "t", "runs": [shuffled]}).encode()
    raw = parse_raw_page(body).runs[0]
    model = RunsPage.model_validate_json(body).runs[0].model_dump(mode="json", exclude_unset=True)
    assert list(raw) == list(model)
    assert list(raw["user"]) == list(model["user"])
    assert list(raw["workforce"]) == list(model["workforce"])
    del raw["created_at"], model["created_at"]
    assert raw == model
