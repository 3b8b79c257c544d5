"""status_error: the one mapping from HTTP status to exception class; messages are useful
and never carry the key."""

from __future__ import annotations

import pytest

from tests.core.helpers_core import KEY, RUNS_PATH
from timbal_integrations import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ServerError,
)
from timbal_integrations.errors import (
    PERMANENT_ERRORS,
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    ExportError,
    PaginationLoopError,
    ResponseValidationError,
    is_permanent,
    status_error,
)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (409, APIStatusError),
        (418, APIStatusError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[APIStatusError]) -> None:
    error = status_error(status, method="GET", path=RUNS_PATH, server_message="why")
    assert type(error) is cls
    assert error.status_code == status
    assert error.path == RUNS_PATH
    assert error.server_message == "why"
    message = str(error)
    assert message.startswith(f"{status} ")
    assert f"GET {RUNS_PATH}" in message
    assert "why" in message


@pytest.mark.parametrize(
    ("status", "hint_word"),
    [
        (401, "TIMBAL_API_KEY"),
        (403, "TIMBAL_ORG_ID"),
        (404, "TIMBAL_API_HOST"),
        (429, "rate limited"),
    ],
)
def test_messages_carry_a_hint(status: int, hint_word: str) -> None:
    assert hint_word in str(status_error(status, method="GET", path="/x"))


def test_a_missing_run_is_hinted_by_its_id() -> None:
    error = status_error(404, method="GET", path="/runs/x", run_id="x")
    assert isinstance(error, NotFoundError)
    assert error.run_id == "x"
    assert error.check == ("run_id", "TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID")
    assert "check the run id (or idempotency key), TIMBAL_ORG_ID and TIMBAL_PROJECT_ID" in str(
        error
    )


def test_retry_after_is_kept() -> None:
    error = status_error(429, method="GET", path="/x", retry_after=7.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_no_server_message() -> None:
    message = str(status_error(500, method="GET", path="/x"))
    assert message.startswith("500 Internal Server Error from GET /x")
    assert ": " not in message.split("(")[0]


def test_secret_scrubbed_from_server_message_and_path() -> None:
    error = status_error(
        401,
        method="GET",
        path=f"/orgs/{KEY}/runs",
        server_message=f"invalid token Bearer {KEY} for org",
        secret=KEY,
    )
    assert KEY not in str(error)
    assert KEY not in error.server_message
    assert KEY not in error.path
    assert KEY not in repr(error)
    assert "***" in error.server_message


def test_query_error_names_field() -> None:
    error = QueryError("since", "bad value")
    assert error.field == "since"
    assert str(error) == "since: bad value"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (ConfigError("no API key", variable="TIMBAL_API_KEY", missing=True), True),
        (QueryError("since", "'x' is not a time"), True),
        (status_error(400, method="GET", path=RUNS_PATH), True),
        (status_error(422, method="GET", path=RUNS_PATH), True),
        (status_error(401, method="GET", path=RUNS_PATH), True),
        (status_error(403, method="GET", path=RUNS_PATH), True),
        (status_error(404, method="GET", path=RUNS_PATH), True),
        (status_error(429, method="GET", path=RUNS_PATH), False),
        (status_error(503, method="GET", path=RUNS_PATH), False),
        (status_error(409, method="GET", path=RUNS_PATH), False),
        (APIConnectionError("refused"), False),
        (APITimeoutError("timed out"), False),
        (ResponseValidationError("not a page"), False),
        (PaginationLoopError("the same token twice"), False),
        (ExportError("another export is writing runs.jsonl right now"), False),
        (OSError("disk"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_permanent_errors_are_the_ones_a_retry_cannot_fix(
    error: BaseException, permanent: bool
) -> None:
    assert is_permanent(error) is permanent
    assert isinstance(error, PERMANENT_ERRORS) is permanent
