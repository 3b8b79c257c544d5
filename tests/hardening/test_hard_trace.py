"""Issue 16's defences on issue 20's endpoints, against hostile servers on 127.0.0.1.

- A run's reactions (``list_reactions``) page under the same bounds as a listing of
  runs: a repeated token, endless empty pages, endless pages and an oversized token
  each stop the listing with a clear error after a bounded number of requests.
- A run's detail with a trace that echoes the key, carries ESC/BEL/bidi controls,
  ``NaN``/``Infinity`` and deep nesting: MCP ``get_run`` (both levels), the
  ``timbal://runs/...`` resources and ``timbal-runs show`` repeat no form of the key,
  put no control character on a terminal, and give valid JSON.
- A trace of countless short values keeps the trace resource under its bound.
- Completions never offer a server's value that holds the key or could not be passed
  back as an argument.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference

from mcp_server import ServerSettings, create_server
from tests.mcp.helpers_mcp import call, error_text, in_session, text_of
from tests.support.hostile import (
    KEY,
    HostileServer,
    Request,
    echo_key,
    echoed_key_forms,
    pages,
)
from tests.support.processes import run_cli
from tests.support.runs import make_run
from timbal_integrations import (
    Bounds,
    PaginationLimitError,
    PaginationLoopError,
    defaults,
)
from timbal_integrations.redact import redact
from timbal_integrations.retry import RetryPolicy

pytestmark = pytest.mark.timeout(120)

FORMS = echoed_key_forms()
RUN_ID = "run_00007"
ESCAPES = "\x1b]0;owned\x07\x1b[2J\u202e"


@pytest.fixture(autouse=True)
def _watch_the_hostile_key(leak_guard: Any) -> None:
    leak_guard.register(KEY)


def _assert_clean(text: str) -> None:
    """No form of the hostile key in ``text``."""
    assert KEY not in text
    for name, form in FORMS.items():
        assert form not in text, f"the key's {name} reached: {text[:300]}"


def _strict_json(text: str) -> Any:
    """``text`` as JSON, refusing ``NaN`` and ``Infinity`` (not JSON)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def _reaction(i: int, feedback: str = "fine") -> dict[str, Any]:
    user = {"id": f"u{i}", "name": f"User {i}", "email": f"u{i}@x.test"}
    return {
        "id": f"re_{i}",
        "user": user,
        "sentiment": "positive",
        "feedback": feedback,
        "created_at": "2025-12-01T01:00:00Z",
    }


# --------------------------------------------------------------------------- reactions


def _endless(page: Callable[[Request], dict[str, Any]]) -> Callable[[Request], dict[str, Any]]:
    """Reactions pages from ``page``; anything else (the run itself) is a plain run."""

    def answer(request: Request) -> dict[str, Any]:
        if request.path.endswith("/reactions"):
            return page(request)
        return make_run(7)

    return answer


CASES: list[tuple[str, Callable[[Request], dict[str, Any]], type[Exception], str | None]] = [
    (
        "a token handed out twice",
        lambda r: {"reactions": [_reaction(r.number)], "next_page_token": "same"},
        PaginationLoopError,
        None,
    ),
    (
        "empty pages with a new token each",
        lambda r: {"reactions": [], "next_page_token": f"t{r.number}"},
        PaginationLimitError,
        "max_empty_pages",
    ),
    (
        "pages that never end",
        lambda r: {"reactions": [_reaction(r.number)], "next_page_token": f"t{r.number}"},
        PaginationLimitError,
        "max_pages",
    ),
    (
        "a token too long to send back",
        lambda r: {"reactions": [_reaction(r.number)], "next_page_token": "x" * 20_000},
        PaginationLimitError,
        "max_page_token_chars",
    ),
]


@pytest.mark.parametrize(("name", "page", "error", "setting"), CASES, ids=[c[0] for c in CASES])
def test_a_runs_reactions_are_paged_under_the_listing_bounds(
    name: str,
    page: Callable[[Request], dict[str, Any]],
    error: type[Exception],
    setting: str | None,
) -> None:
    bounds = Bounds(max_pages=30, max_empty_pages=10)
    with HostileServer(pages(_endless(page))).running() as server:
        with server.client(bounds=bounds, max_retries=0) as client, pytest.raises(error) as info:
            list(client.list_reactions(RUN_ID))
        requests = server.count
    assert requests <= 30, requests  # bounded, whatever the server hands out
    assert f"/runs/{RUN_ID}/reactions" in str(info.value)  # the listing it was
    if setting is not None:
        assert isinstance(info.value, PaginationLimitError)
        assert info.value.setting == setting


def test_the_async_client_bounds_reactions_too() -> None:
    page = CASES[1][1]

    async def go(server: HostileServer) -> PaginationLimitError:
        async with server.async_client(bounds=Bounds(max_empty_pages=5)) as client:
            with pytest.raises(PaginationLimitError) as info:
                async for _ in client.list_reactions(RUN_ID):
                    pass
        return info.value

    with HostileServer(pages(_endless(page))).running() as server:
        error = asyncio.run(go(server))
        assert server.count == 5
    assert error.setting == "max_empty_pages"


def test_mcp_get_run_shows_the_run_when_its_reactions_page_forever() -> None:
    page = CASES[2][1]  # pages that never end: get_run reads at most what it shows
    with HostileServer(pages(_endless(page))).running() as server:
        result = call(
            create_server(ServerSettings(env=server.env())), "get_run", {"run_id": RUN_ID}
        )
        requests = server.count
    assert not result.is_error, text_of(result)
    assert requests <= 2 + defaults.MCP_MAX_REACTIONS  # the run, then one page per reaction


# --------------------------------------------------------------------------- a run's trace


def _hostile_detail() -> dict[str, Any]:
    """A run whose trace, status and reactions carry the key, controls, NaN and depth."""
    nested: Any = "bottom"
    for _ in range(150):  # deep, but within what the JSON parser accepts
        nested = [nested]
    spans = [
        {
            "path": f"agent{ESCAPES}",
            "call_id": "c1",
            "parent_call_id": None,
            "t0": 1764547200000,
            "t1": 1764547260000,
            "input": {"prompt": f"use {KEY} please", "deep": nested},
            "output": {"b64": FORMS["base64 of the key"], "ratio": "NaN-placeholder"},
            "status": {"code": "error", "reason": "boom", "message": f"failed {ESCAPES}"},
            "error": {"type": "ValueError", "message": f"bad key ...{KEY[-10:]} {ESCAPES}"},
            "usage": {"openai/gpt-4o:input_tokens": 10, "openai/gpt-4o:output_tokens": 2},
        },
        {
            "path": f"agent.llm{ESCAPES}",
            "call_id": "c2",
            "parent_call_id": "c1",
            "t0": 1764547201000,
            "t1": 1764547202000,
            "input": FORMS["url-encoded"],
            "output": None,
            "status": {"code": "success"},
            "error": None,
            "usage": {"openai/gpt-4o:input_tokens": 10, "openai/gpt-4o:output_tokens": 2},
        },
    ]
    return make_run(
        7,
        status="error",
        user={"id": "u7", "name": f"Eve{ESCAPES}", "email": "eve@x.test"},
        status_detail={"code": "error", "reason": "boom", "message": f"{KEY} {ESCAPES}"},
        trace=spans,
    )


def _hostile_body(keyed: bool) -> bytes:
    # NaN and Infinity are not JSON, but a server may send them: json.dumps writes them.
    text = json.dumps(_hostile_detail()).replace('"NaN-placeholder"', "NaN")
    if not keyed:  # the data output is the server's, unchanged: no key there to leak
        text = redact(text, KEY)
    return text.replace('"t1": 1764547202000', '"t1": 1764547202000, "score": Infinity').encode()


def _detail_server(*, keyed: bool = True) -> HostileServer:
    """A run of :func:`_hostile_detail` (with the key in it, or masked) and a reaction."""

    async def handler(request: Request, writer: Any) -> None:
        if request.path.endswith("/reactions"):
            feedback = f"{ESCAPES} my key is {KEY if keyed else 'secret'}"
            data = json.dumps({"reactions": [_reaction(1, feedback)], "next_page_token": None})
            payload = data.encode()
        else:
            payload = _hostile_body(keyed)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    return HostileServer(handler)


def _read(server: MCPServer[Any], uri: str) -> str:
    async def go(client: Client) -> str:
        result = await client.read_resource(uri)
        (content,) = result.contents
        text: str = content.text  # type: ignore[union-attr]
        return text

    return in_session(server, go)


def test_mcp_get_run_and_the_resources_repeat_no_key_and_stay_valid_json() -> None:
    with _detail_server().running() as server:
        mcp = create_server(ServerSettings(env=server.env()))
        results = [
            call(mcp, "get_run", {"run_id": RUN_ID, "detail": level})
            for level in ("summary", "full")
        ]
        documents = [_read(mcp, f"timbal://runs/{RUN_ID}{tail}") for tail in ("", "/trace")]
    for result in results:
        assert not result.is_error, text_of(result)
        _assert_clean(text_of(result))
        _assert_clean(json.dumps(result.structured_content))
        assert "***" in text_of(result)
    for document in documents:
        _assert_clean(document)
        data = _strict_json(document)  # NaN and Infinity became null, never bare words
        assert "***" in document
    run = _strict_json(documents[0])["run"]
    assert run["trace"][0]["output"]["ratio"] is None
    assert data["spans"] == 2


def test_timbal_runs_show_puts_no_control_character_on_the_terminal() -> None:
    with _detail_server().running() as server:
        shown = run_cli(["show", RUN_ID, "--color", "never"], server)
    with _detail_server(keyed=False).running() as server:
        as_json = run_cli(["show", RUN_ID, "--format", "json"], server)
    assert shown.returncode == 0, shown.stderr
    _assert_clean(shown.stdout)  # the picture redacts the key, as every message does
    assert "***" in shown.stdout
    for control in ("\x1b", "\x07", "\u202e"):
        assert control not in shown.stdout
    assert "\\x1b]0;owned\\x07" in shown.stdout  # shown, escaped, not acted on
    assert "\\u202e" in shown.stdout
    assert as_json.returncode == 0, as_json.stderr
    document = _strict_json(as_json.stdout)  # data output: valid JSON, the text unchanged
    assert document["run"]["user"]["name"] == f"Eve{ESCAPES}"


def test_a_trace_resource_of_countless_short_values_stays_under_its_bound() -> None:
    values = list(range(150_000))  # ~1 MB of JSON, no string to cut

    def answer(request: Request) -> dict[str, Any]:
        if request.path.endswith("/reactions"):
            return {"reactions": [], "next_page_token": None}
        return make_run(7, trace=[{"path": "a", "call_id": "c", "numbers": values}] * 2)

    with HostileServer(pages(answer)).running() as server:
        mcp = create_server(ServerSettings(env=server.env()))
        trace_doc = _read(mcp, f"timbal://runs/{RUN_ID}/trace")
        run_doc = _read(mcp, f"timbal://runs/{RUN_ID}")
    for document in (trace_doc, run_doc):
        assert len(document) <= defaults.MCP_RESOURCE_CHARS
    trace = _strict_json(trace_doc)
    assert trace["trace"] is None
    assert "trace omitted" in trace["cut"]
    assert _strict_json(run_doc)["run"]["trace"].startswith("omitted here: read timbal://")


def test_a_resource_failure_is_worded_and_redacted_like_a_tool_error() -> None:
    async def go(client: Client) -> MCPError:
        try:
            await client.read_resource(f"timbal://runs/{RUN_ID}")
        except MCPError as exc:
            return exc
        raise AssertionError("the resource was read")

    with HostileServer(echo_key(500, before="\x1b[2J")).running() as server:
        settings = ServerSettings(env=server.env(), retry_policy=RetryPolicy(max_retries=0))
        mcp = create_server(settings)
        resource_error = str(in_session(mcp, go))
        tool_error = error_text(call(mcp, "get_run", {"run_id": RUN_ID}))
    for message in (resource_error, tool_error):
        _assert_clean(message)
        assert "500" in message
        assert "***" in message


# --------------------------------------------------------------------------- completions


def test_completions_offer_no_server_value_that_holds_the_key_or_is_too_long() -> None:
    users = [("u_plain", "plain"), (f"u_{KEY}", "keyed"), ("u_" + "x" * 5_000, "long")]

    def answer(request: Request) -> dict[str, Any]:
        runs = [
            make_run(i, user={"id": uid, "name": name, "email": f"{name}@x.test"})
            for i, (uid, name) in enumerate(users)
        ]
        return {"runs": runs, "next_page_token": None}

    async def go(client: Client) -> list[str]:
        result = await client.complete(
            PromptReference(name="user_activity"), {"name": "user_id", "value": "u_"}
        )
        return list(result.completion.values)

    with HostileServer(pages(answer)).running() as server:
        offered = in_session(create_server(ServerSettings(env=server.env())), go)
    assert offered == ["u_plain"]
