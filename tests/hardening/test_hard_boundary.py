"""Issue 16, case 6: input that used to escape as a traceback, or be accepted leniently,
is refused in one line naming the field, before any request, by every front end (they
all go through RunQuery and the client's configuration).

``--metadata`` nested 5,000 deep (RecursionError), a 120 KB metadata value
(httpx.InvalidURL), ``NaN``/``Infinity`` in metadata (sent to the server), ``--timeout
1e308`` (OverflowError), ``--host 'http://[::1'`` (ValueError), ``--limit ١٢٣``
(Arabic-Indic digits). The Airflow operator's side is in
``tests/airflow/test_hard_airflow_input.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server import ServerSettings, create_server
from tests.mcp.helpers_mcp import call, error_text
from tests.support.hostile import KEY, HostileServer, Request, pages
from tests.support.processes import one_error_line, run_cli
from timbal_integrations import Bounds, ConfigError, QueryError, RunQuery, TimbalClient

pytestmark = pytest.mark.timeout(120)

DEEP = '{"a":' * 5000 + "1" + "}" * 5000
BIG = json.dumps({"note": "x" * 120_000})


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def _never_called(request: Request) -> dict[str, Any]:
    return {"runs": [], "next_page_token": None}


CLI_CASES = [
    ("metadata-5000-deep", ["list", "--metadata", DEEP], "--metadata: too long"),
    (
        "metadata-deep-but-short",
        ["list", "--metadata", '{"a":' * 50 + "1" + "}" * 50],
        "--metadata: nests objects and arrays more than 10 deep",
    ),
    ("metadata-120KB", ["list", "--metadata", BIG], "--metadata: too long (120,012 characters"),
    ("metadata-NaN", ["list", "--metadata", '{"score": NaN}'], "holds NaN, which is not a JSON"),
    (
        "metadata-Infinity",
        ["export", "--out", "x.jsonl", "--metadata", '{"s": -Infinity}'],
        "holds -Infinity, which is not a JSON number",
    ),
    ("timeout-1e308", ["list", "--timeout", "1e308"], "is not a number of seconds above 0 and"),
    ("host-open-bracket", ["list", "--host", "http://[::1"], "--host: 'http://[::1' has an"),
    ("limit-arabic-indic", ["list", "--limit", "١٢٣"], "is not a whole number, 0 or more"),
]


@pytest.mark.parametrize(("argv", "words"), [pytest.param(*c[1:], id=c[0]) for c in CLI_CASES])
def test_the_command_line_refuses_in_one_line_before_any_request(
    argv: list[str], words: str, tmp_path: Any
) -> None:
    with HostileServer(pages(_never_called)).running() as server:
        result = run_cli(argv, server, cwd=tmp_path)
        assert server.count == 0, "a request reached the server"
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert words in one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        (DEEP, "too long"),
        (_nested(5000), "nests objects and arrays more than 10 deep"),
        (_nested(10), "nests objects and arrays more than 10 deep"),
        (BIG, "too long"),
        ({"note": "x" * 5000}, "too long (5,011 characters of JSON; at most 4,096)"),
        ({"score": float("nan")}, "holds nan, which is not a JSON number"),
        ({"scores": [1.0, float("inf")]}, "holds inf, which is not a JSON number"),
        ('{"s": Infinity}', "holds Infinity, which is not a JSON number"),
    ],
)
def test_the_library_refuses_metadata_naming_the_field(metadata: Any, words: str) -> None:
    with pytest.raises(QueryError) as info:
        RunQuery(metadata=metadata)
    assert info.value.field == "metadata"
    assert words in str(info.value)


def test_metadata_within_the_bounds_is_sent_as_compact_json() -> None:
    value = _nested(8)
    query = RunQuery(metadata=value)
    assert json.loads(query.to_params()["metadata"]) == value


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("http://[::1", "has an invalid address"),
        ("http://[::1]:99999", "has an invalid port"),
        ("http://exa mple.test", "holds a space or a control character"),
    ],
)
def test_a_malformed_host_is_one_config_error(host: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        TimbalClient(KEY, host=host, org_id="o", project_id="p", env={})
    assert info.value.argument == "host"
    assert words in str(info.value)


def test_mcp_reports_a_malformed_host_as_a_setting_not_a_crash() -> None:
    settings = ServerSettings(api_key=KEY, host="http://[::1", org_id="o", project_id="p")
    message = error_text(call(create_server(settings), "list_runs", {}))
    assert "the server is not configured" in message
    assert "has an invalid address" in message
    assert "internal error" not in message


def test_a_url_too_long_for_http_is_one_line_not_an_invalid_url_traceback() -> None:
    # With the default bounds every URL fits (filters, metadata and a page token are each
    # bounded); a token bound raised past what a URL carries ends in one line too.
    def page(request: Request) -> dict[str, Any]:
        return {"runs": [], "next_page_token": "t" * 70_000}

    with HostileServer(pages(page)).running() as server:
        client = server.client(bounds=Bounds(max_page_token_chars=100_000))
        with client, pytest.raises(QueryError) as info:
            list(client.list_runs())
        assert server.count == 1
    assert info.value.field == "page_token"
    assert "makes the request URL" in str(info.value)
    assert "over the 65,536 an HTTP request carries" in str(info.value)
