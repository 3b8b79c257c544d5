"""wording.describe: one error, worded for each audience in each front end's names."""

from __future__ import annotations

import errno
import pickle

import pytest

from timbal_integrations import (
    APIConnectionError,
    AuthenticationError,
    ConfigError,
    ExportError,
    NotFoundError,
    PaginationLoopError,
    QueryError,
    RateLimitError,
)
from timbal_integrations.config import resolve_config
from timbal_integrations.errors import status_error
from timbal_integrations.wording import AUDIENCES, describe, restate

KEY = "tk_wording_0123456789abcdef"

CLI = {"since": "--since", "api_key": "--api-key", "TIMBAL_API_HOST": "--host", "host": "--host"}
HOOK = {
    "TIMBAL_API_KEY": "the password of connection 'my_conn'",
    "TIMBAL_ORG_ID": "the org_id extra of connection 'my_conn'",
    "TIMBAL_PROJECT_ID": "the project_id extra of connection 'my_conn'",
    "TIMBAL_API_HOST": "the host of connection 'my_conn'",
}
MCP = {"api_key": "", "host": "", "org_id": "", "project_id": ""}


def missing_key() -> ConfigError:
    with pytest.raises(ConfigError) as info:
        resolve_config(org_id="o", project_id="p", env={})
    return info.value


def test_query_errors_carry_field_and_reason() -> None:
    error = QueryError("since", "'x' is not an ISO 8601 time")
    assert (error.field, error.reason) == ("since", "'x' is not an ISO 8601 time")
    assert str(error) == "since: 'x' is not an ISO 8601 time"  # unchanged
    assert describe(error, "terminal") == str(error)
    assert describe(error, "terminal", names=CLI) == "--since: 'x' is not an ISO 8601 time"
    assert describe(error, "assistant") == "invalid `since`: 'x' is not an ISO 8601 time"
    assert describe(error, "airflow") == str(error)


def test_a_missing_setting_says_what_to_set_in_each_front_end() -> None:
    error = missing_key()
    assert (error.variable, error.argument, error.missing) == (
        "TIMBAL_API_KEY",
        "api_key",
        True,
    )
    assert error.reason == "no API key"
    assert str(error) == (
        "no API key: set TIMBAL_API_KEY (or pass api_key=...); "
        "get one from the Timbal platform settings"
    )
    terminal = describe(error, "terminal", names=CLI)
    assert "set TIMBAL_API_KEY (or pass --api-key)" in terminal
    airflow = describe(error, "airflow", names=HOOK)
    assert airflow.startswith("no API key: set the password of connection 'my_conn'")
    assert "TIMBAL_" not in airflow
    assistant = describe(error, "assistant", names=MCP)
    assert assistant.startswith("the server is not configured: no API key: set TIMBAL_API_KEY;")
    assert "pass" not in assistant  # the server has no library arguments
    assert "env section" in assistant


def test_a_bad_value_is_named_where_it_came_from() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(KEY, host="ftp://x", org_id="o", project_id="p", env={})
    error = info.value
    assert (error.variable, error.argument, error.missing) == ("TIMBAL_API_HOST", "host", False)
    assert error.reason == "'ftp://x' has scheme 'ftp'; expected http or https"
    assert str(error) == f"TIMBAL_API_HOST: {error.reason}"
    assert describe(error, "terminal", names=CLI) == f"--host: {error.reason}"
    assert describe(error, "airflow", names=HOOK).startswith("the host of connection 'my_conn': ")
    assert KEY not in str(error)


def test_an_argument_only_error_names_the_argument() -> None:
    error = ConfigError("0 is not a number of seconds above 0", argument="timeout")
    assert str(error) == "timeout: 0 is not a number of seconds above 0"
    assert describe(error, "terminal", names={"timeout": "--timeout"}).startswith("--timeout: ")


def test_status_hints_are_data_worded_per_front_end() -> None:
    error = status_error(401, method="GET", path="/runs", server_message="bad key")
    assert isinstance(error, AuthenticationError)
    assert error.check == ("TIMBAL_API_KEY",)
    assert str(error) == (
        "401 Unauthorized from GET /runs: bad key (the API key was rejected — check TIMBAL_API_KEY)"
    )
    airflow = describe(error, "airflow", names=HOOK)
    assert "check the password of connection 'my_conn'" in airflow
    assert "TIMBAL_API_KEY" not in airflow
    cli = describe(error, "terminal", names={"TIMBAL_API_KEY": "--api-key"})
    assert cli.endswith("(the API key was rejected — check --api-key)")
    assistant = describe(error, "assistant")
    assert assistant == (
        "the API key was rejected — check TIMBAL_API_KEY (HTTP 401; the API said: bad key)."
    )
    forbidden = status_error(403, method="GET", path="/runs")
    assert "check the org_id extra of connection 'my_conn' and the project_id extra" in describe(
        forbidden, "airflow", names=HOOK
    )


def test_a_missing_run_for_an_assistant() -> None:
    error = status_error(404, method="GET", path="/runs/r1", run_id="r1")
    assert isinstance(error, NotFoundError)
    assert describe(error, "assistant") == (
        "no run with id or idempotency key 'r1' in this project — check the id (list_runs "
        "shows run ids), TIMBAL_ORG_ID and TIMBAL_PROJECT_ID (HTTP 404)."
    )
    listing = status_error(404, method="GET", path="/runs")
    assert "check TIMBAL_ORG_ID, TIMBAL_PROJECT_ID and TIMBAL_API_HOST" in str(listing)


def test_a_redirect_names_the_host_setting() -> None:
    error = status_error(301, method="GET", path="/runs", location="https://elsewhere.test/v2")
    assert "redirected to https://elsewhere.test/v2; point TIMBAL_API_HOST there" in str(error)
    cli = describe(error, "terminal", names={"TIMBAL_API_HOST": "--host"})
    assert "point --host there" in cli


def test_rate_limits_say_how_long_to_wait() -> None:
    error = status_error(429, method="GET", path="/runs", retry_after=3.0)
    assert isinstance(error, RateLimitError)
    assert "wait 3s and try again" in describe(error, "assistant")
    assert "rate limited by the API even after retrying" in str(error)


def test_other_errors_and_exceptions() -> None:
    gone = APIConnectionError("GET /runs could not complete after 7 attempts", path="/runs")
    assert describe(gone, "terminal") == str(gone)
    assert describe(gone, "assistant") == f"could not reach the Timbal API: {gone}"
    loop = PaginationLoopError("the token repeated")
    assert (
        describe(loop, "assistant")
        == "the Timbal API sent an unexpected response: the token repeated"
    )
    disk = OSError(errno.ENOSPC, "No space left on device", "/data/runs.jsonl")
    assert describe(disk, "terminal") == "No space left on device: /data/runs.jsonl"
    assert describe(ExportError("cannot write"), "airflow") == "cannot write"
    assert describe(RuntimeError("boom"), "assistant").startswith("internal error (RuntimeError)")


def test_every_audience_words_every_error_on_one_line() -> None:
    errors: list[BaseException] = [
        QueryError("limit", "-1 is not a whole number"),
        missing_key(),
        status_error(503, method="GET", path="/runs", server_message="busy"),
        status_error(418, method="GET", path="/runs"),
        APIConnectionError("refused"),
    ]
    for error in errors:
        for audience in AUDIENCES:
            text = describe(error, audience)
            assert text
            assert "\n" not in text


def test_an_unknown_audience_is_refused() -> None:
    with pytest.raises(ValueError, match="audience"):
        describe(missing_key(), "email")  # type: ignore[arg-type]


def test_restate_keeps_the_error_and_rewords_it() -> None:
    error = missing_key()
    same = restate(error, "airflow", names=HOOK)
    assert same is error
    assert isinstance(same, ConfigError)
    assert same.variable == "TIMBAL_API_KEY"
    assert str(same).startswith("no API key: set the password of connection 'my_conn'")


def test_errors_keep_their_data_through_pickling() -> None:
    for error in (
        missing_key(),
        QueryError("since", "bad"),
        status_error(404, method="GET", path="/runs/r", run_id="r", server_message="gone"),
        ExportError("cut", path="/tmp/x.part", field="offset"),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


RESOURCE = {
    "TIMBAL_API_KEY": "TimbalResource.api_key",
    "TIMBAL_ORG_ID": "TimbalResource.org_id",
    "TIMBAL_PROJECT_ID": "TimbalResource.project_id",
    "TIMBAL_API_HOST": "TimbalResource.host",
    "api_key": "",
    "org_id": "",
    "project_id": "",
    "host": "",
    "timeout": "TimbalResource.timeout",
}


def test_the_orchestrator_audience_names_a_resource_field_once() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(KEY, org_id="a/b", project_id="p", env={})
    text = describe(info.value, "orchestrator", names=RESOURCE)
    assert text.startswith("TimbalResource.org_id: 'a/b' is not a valid id"), text
    assert "TIMBAL_" not in text
    assert text.count("org_id") == 1  # no doubled prefix
    missing = describe(missing_key(), "orchestrator", names=RESOURCE)
    assert missing == (
        "no API key: set TimbalResource.api_key; get one from the Timbal platform settings"
    )
    forbidden = status_error(403, method="GET", path="/orgs/o/projects/p/runs")
    assert describe(forbidden, "orchestrator", names=RESOURCE).endswith(
        "(the key cannot access this org/project — check TimbalResource.org_id and "
        "TimbalResource.project_id)"
    )


def test_airflow_is_the_orchestrator_audience() -> None:
    errors: list[BaseException] = [
        QueryError("limit", "-1 is not a whole number"),
        missing_key(),
        status_error(404, method="GET", path="/runs/r", run_id="r"),
        status_error(401, method="GET", path="/runs"),
        ExportError("cannot write"),
    ]
    for error in errors:
        for names in (None, HOOK, RESOURCE):
            assert describe(error, "airflow", names=names) == describe(
                error, "orchestrator", names=names
            )
