"""Fixtures for the emulator tests: spec validation and a validating HTTP helper."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.spec import (
    ENVELOPE_VALIDATOR,
    ERROR_VALIDATOR,
    LIST_VALIDATOR,
    REACTIONS_VALIDATOR,
    SCHEMAS,
    check_detail_body,
)
from timbal_integrations.emulator import Emulator

# ``timbal_emulator`` and ``timbal_emulator_factory`` come from the emulator's pytest
# plugin, registered by the root conftest (``pytest_plugins``).

_VALID_PREVIEWS: set[str] = set()


def check_list_body(body: Any, *, strict_fields: bool = True) -> None:
    """Validate a list response; with ``strict_fields``, only the spec's fields may appear."""
    keys = {json.dumps(run, sort_keys=True) for run in body.get("runs", ())}
    if keys <= _VALID_PREVIEWS:
        ENVELOPE_VALIDATOR.validate(body)
    else:
        LIST_VALIDATOR.validate(body)
        _VALID_PREVIEWS.update(keys)
    if strict_fields:
        allowed = {
            "": set(SCHEMAS["RunPreview"]["properties"]),
            "user": set(SCHEMAS["UserRef"]["properties"]),
            "workforce": set(SCHEMAS["WorkforcePreview"]["properties"]),
        }
        assert set(body) <= set(SCHEMAS["ListRunsResBody"]["properties"])
        for run in body["runs"]:
            assert set(run) <= allowed[""], set(run) - allowed[""]
            assert set(run["user"]) <= allowed["user"]
            assert set(run["workforce"]) <= allowed["workforce"]


class Api:
    """Plain-httpx access to an emulator; every JSON body it returns has been validated."""

    def __init__(self, emulator: Emulator, client: httpx.Client, strict_fields: bool) -> None:
        self.emulator = emulator
        self.client = client
        self.strict_fields = strict_fields

    def raw_list(self, params: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """GET the list endpoint; validates the body (list or error) before returning."""
        response = self.client.get(self.emulator.runs_url, params=params, **kwargs)
        self._check(response)
        return response

    def page(self, **params: Any) -> dict[str, Any]:
        """One page; fails unless it is a 200."""
        response = self.raw_list(params)
        assert response.status_code == 200, response.text[:500]
        body: dict[str, Any] = response.json()
        return body

    def all(self, **params: Any) -> list[dict[str, Any]]:
        """Every run matching ``params``, through all pages, checking tokens advance."""
        runs: list[dict[str, Any]] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            body = self.page(**params, **({"page_token": token} if token else {}))
            assert len(body["runs"]) <= 50
            runs.extend(body["runs"])
            token = body.get("next_page_token")
            if token is None:
                return runs
            assert body["runs"], "a page with a next token must not be empty"
            assert token not in seen_tokens
            seen_tokens.add(token)

    def error(self, status: int, params: dict[str, Any] | None = None, **kwargs: Any) -> str:
        """GET the list endpoint expecting ``status``; returns the error message."""
        response = self.raw_list(params, **kwargs)
        assert response.status_code == status, response.text[:500]
        message: str = response.json()["message"]
        return message

    def get(self, run_id: str, **kwargs: Any) -> httpx.Response:
        """GET one run; validates the body (RunDetail or error) before returning."""
        response = self.client.get(f"{self.emulator.runs_url}/{run_id}", **kwargs)
        if response.status_code == 200:
            check_detail_body(response.json())
        else:
            ERROR_VALIDATOR.validate(response.json())
        return response

    def reactions(self, run_id: str, **params: Any) -> httpx.Response:
        """GET a run's reactions; validates the body (reactions page or error)."""
        url = f"{self.emulator.runs_url}/{run_id}/reactions"
        response = self.client.get(url, params=params)
        if response.status_code == 200:
            REACTIONS_VALIDATOR.validate(response.json())
        else:
            ERROR_VALIDATOR.validate(response.json())
        return response

    def all_reactions(self, run_id: str) -> list[dict[str, Any]]:
        """Every reaction of a run, through all pages (newest first)."""
        got: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            response = self.reactions(run_id, **({"page_token": token} if token else {}))
            assert response.status_code == 200, response.text
            body = response.json()
            got.extend(body["reactions"])
            token = body.get("next_page_token")
            if token is None:
                return got

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            check_list_body(response.json(), strict_fields=self.strict_fields)
        else:
            assert response.headers["content-type"].startswith("application/json")
            ERROR_VALIDATOR.validate(response.json())


@pytest.fixture
def make_api() -> Iterator[Callable[..., Api]]:
    """Build an :class:`Api` for an emulator; clients are closed at teardown."""
    clients: list[httpx.Client] = []

    def make(emulator: Emulator, *, strict_fields: bool = True) -> Api:
        client = httpx.Client(headers=emulator.headers(), timeout=10)
        clients.append(client)
        return Api(emulator, client, strict_fields)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api(request: pytest.FixtureRequest, make_api: Callable[..., Api]) -> Api:
    """An :class:`Api` on the session emulator (3,000 runs, seed 1)."""
    return make_api(request.getfixturevalue("timbal_emulator"))


@pytest.fixture
def check_list() -> Callable[..., None]:
    """Validate a list response body against the spec (see :func:`check_list_body`)."""
    return check_list_body


@pytest.fixture
def check_detail() -> Callable[[Any], None]:
    """Validate a get-run response body against the spec's ``RunDetail`` (and its trace)."""
    return check_detail_body
