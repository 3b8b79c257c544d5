"""Both clients against ``httpx.MockTransport``: headers, pagination, retries, error
mapping, body validation, get_run, and the API key kept out of every message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tests.core.helpers_core import (
    BASE,
    KEY,
    KINDS,
    ORG,
    PROJECT,
    RUNS_PATH,
    FakeApi,
    mock_driver,
)
from tests.support.runs import make_run, make_runs
from timbal_integrations import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncTimbalClient,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PaginationLoopError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    RunQuery,
    ServerError,
    TimbalClient,
    TimbalError,
    __version__,
    retry,
)
from timbal_integrations.config import resolve_config
from timbal_integrations.retry import RetryDetails

T0 = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def ids(runs: list[Any]) -> list[str]:
    return [r.id for r in runs]


class SleepRecorder:
    """Records what the clients would sleep, with the testing switch off.

    Only sleeps of the test's own thread are recorded (and skipped): other threads, such
    as a session emulator's server loop, keep sleeping for real.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.delays: list[float] = []
        owner = threading.get_ident()
        real_sleep = time.sleep
        real_async_sleep = asyncio.sleep

        def fake_sleep(seconds: float) -> None:
            if threading.get_ident() != owner:
                real_sleep(seconds)
                return
            self.delays.append(seconds)

        async def fake_async_sleep(seconds: float, *args: Any) -> Any:
            if threading.get_ident() != owner:
                return await real_async_sleep(seconds, *args)
            self.delays.append(seconds)
            return args[0] if args else None

        monkeypatch.setattr(time, "sleep", fake_sleep)
        monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Any:
    recorder = SleepRecorder(monkeypatch)
    with retry.testing(False):
        monkeypatch.delenv("TIMBAL_RETRY_TESTING", raising=False)
        yield recorder


# --- requests -----------------------------------------------------------------------------


def test_headers_and_url(kind: str) -> None:
    api = FakeApi(make_runs(2))
    mock_driver(kind, api).list_runs()
    request = api.requests[0]
    assert request.method == "GET"
    assert str(request.url).startswith(f"{BASE}{RUNS_PATH}")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/json"
    user_agent = request.headers["User-Agent"]
    assert user_agent.startswith(f"timbal-integrations/{__version__} ")
    assert "python-httpx" in user_agent
    # httpx's own defaults still apply: compressed bodies, kept-alive connections.
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.headers["Connection"] == "keep-alive"
    assert request.headers["Host"] == "api.example.test"


def test_timeout_reaches_the_transport(kind: str) -> None:
    api = FakeApi(make_runs(2))
    mock_driver(kind, api, timeout=httpx.Timeout(7.0, connect=2.5)).list_runs()
    assert api.requests[0].extensions["timeout"] == {
        "connect": 2.5,
        "read": 7.0,
        "write": 7.0,
        "pool": 7.0,
    }


def test_closed_client_refuses_requests() -> None:
    api = FakeApi(make_runs(2))
    kwargs = {"api_key": KEY, "host": BASE, "org_id": ORG, "project_id": PROJECT, "env": {}}
    client = TimbalClient(**kwargs, transport=api.transport())
    client.close()
    with pytest.raises(RuntimeError, match="TimbalClient is closed"):
        client.get_runs_page()

    async def main() -> None:
        aclient = AsyncTimbalClient(**kwargs, transport=api.transport())
        await aclient.aclose()
        with pytest.raises(RuntimeError, match="AsyncTimbalClient is closed"):
            await aclient.get_runs_page()

    asyncio.run(main())
    assert api.count == 0


def test_base_url_with_path_prefix(kind: str) -> None:
    api_path = "/timbal" + RUNS_PATH
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"runs": [], "next_page_token": None})

    mock_driver(
        kind,
        FakeApi(),
        host="https://proxy.example.test/timbal/",
        transport=httpx.MockTransport(handler),
    ).list_runs()
    assert seen == [api_path]


def test_filters_sent_as_params_on_every_page(kind: str) -> None:
    api = FakeApi(make_runs(7), page_size=3)
    filters: dict[str, Any] = {
        "status": "error",
        "user_id": "usr_1",
        "sentiment": "negative",
        "group_id": "g",
        "workforce_id": "wf_1",
        "rev": "main",
        "since": T0,
        "until": "2025-12-02",
        "metadata": {"env": "prod"},
        "roots": True,
        "sort_by": "cost_usd",
        "sort_order": "asc",
    }
    runs = mock_driver(kind, api).list_runs(**filters)
    assert len(runs) == 7
    expected = RunQuery(**filters).to_params()
    assert api.count == 3
    for i, request in enumerate(api.requests):
        params = dict(request.url.params)
        token = params.pop("page_token", None)
        assert params == expected
        assert token == (None if i == 0 else f"tok-{3 * i}")
    assert api.requests[0].url.params["metadata"] == '{"env":"prod"}'
    assert api.requests[0].url.params["from"] == "1764547200000"


def test_query_object_and_keyword_filters_merge(kind: str) -> None:
    api = FakeApi(make_runs(1))
    mock_driver(kind, api).list_runs(RunQuery(status="error", rev="dev"), user_id="u", rev=None)
    assert dict(api.requests[0].url.params) == {"status": "error", "user_id": "u"}


# --- pagination --------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "page_size", "requests"), [(25, 3, 9), (24, 3, 8), (1, 50, 1)])
def test_many_pages(kind: str, n: int, page_size: int, requests: int) -> None:
    api = FakeApi(make_runs(n), page_size=page_size)
    driver = mock_driver(kind, api)
    runs = driver.list_runs()
    assert ids(runs) == [f"run_{i:05d}" for i in range(n)]
    assert api.count == requests
    assert driver.requests == requests


@pytest.mark.parametrize(("limit", "requests"), [(1, 1), (10, 1), (11, 2), (20, 2), (21, 3)])
def test_limit_stops_early_without_extra_requests(kind: str, limit: int, requests: int) -> None:
    api = FakeApi(make_runs(35), page_size=10)
    runs = mock_driver(kind, api).list_runs(limit=limit)
    assert ids(runs) == [f"run_{i:05d}" for i in range(limit)]
    assert api.count == requests


def test_limit_zero_makes_no_request(kind: str) -> None:
    api = FakeApi(make_runs(5))
    assert mock_driver(kind, api).list_runs(limit=0) == []
    assert api.count == 0


def test_limit_beyond_total(kind: str) -> None:
    api = FakeApi(make_runs(5), page_size=2)
    assert len(mock_driver(kind, api).list_runs(limit=1000)) == 5
    assert api.count == 3


def test_iteration_is_lazy(kind: str) -> None:
    api = FakeApi(make_runs(30), page_size=10)
    runs = mock_driver(kind, api).list_runs(take=3)
    assert len(runs) == 3
    assert api.count == 1


def test_list_runs_sends_nothing_until_iterated() -> None:
    api = FakeApi(make_runs(3))
    with TimbalClient(
        KEY, host=BASE, org_id=ORG, project_id=PROJECT, env={}, transport=api.transport()
    ) as client:
        iterator = client.list_runs(status="error")
        assert api.count == 0
        assert next(iterator).id == "run_00000"
        assert api.count == 1


def test_empty_result(kind: str) -> None:
    api = FakeApi([])
    driver = mock_driver(kind, api)
    assert driver.list_runs(status="nothing") == []
    assert api.count == 1
    assert driver.earliest_run() is None


def test_empty_page_with_a_token_is_followed(kind: str) -> None:
    script = [
        httpx.Response(200, json={"runs": [], "next_page_token": "a"}),
        httpx.Response(200, json={"runs": [make_run(1)], "next_page_token": "b"}),
        httpx.Response(200, json={"runs": [], "next_page_token": "c"}),
        httpx.Response(200, json={"runs": [make_run(2)], "next_page_token": None}),
    ]
    api = FakeApi(script=script)
    assert ids(mock_driver(kind, api).list_runs()) == ["run_00001", "run_00002"]
    assert [r.url.params.get("page_token") for r in api.requests] == [None, "a", "b", "c"]


def test_get_runs_page_is_one_request(kind: str) -> None:
    api = FakeApi(make_runs(10), page_size=4)
    driver = mock_driver(kind, api)
    page = driver.get_runs_page(status="success")
    assert ids(page.runs) == [f"run_{i:05d}" for i in range(4)]
    assert page.next_page_token == "tok-4"
    page2 = driver.get_runs_page(status="success", page_token=page.next_page_token)
    assert ids(page2.runs) == [f"run_{i:05d}" for i in range(4, 8)]
    assert api.count == 2
    assert dict(api.requests[1].url.params) == {"status": "success", "page_token": "tok-4"}


def test_iter_pages_from_a_token(kind: str) -> None:
    api = FakeApi(make_runs(10), page_size=4)
    pages = mock_driver(kind, api).iter_pages(page_token="tok-4")
    assert [len(p.runs) for p in pages] == [4, 2]
    assert pages[-1].next_page_token is None


@pytest.mark.parametrize(
    "tokens",
    [
        ["same", "same"],
        ["a", "b", "a"],
        ["a", "b", "c", "b"],
    ],
)
def test_token_loop_guard(kind: str, tokens: list[str]) -> None:
    script = [
        httpx.Response(200, json={"runs": [make_run(i)], "next_page_token": tok})
        for i, tok in enumerate(tokens)
    ]
    api = FakeApi(script=script, repeat=httpx.Response(500))
    with pytest.raises(PaginationLoopError) as info:
        mock_driver(kind, api).list_runs()
    assert api.count == len(tokens)
    assert "page token" in str(info.value)
    assert isinstance(info.value, ResponseValidationError)


def test_loop_guard_when_token_echoes_the_one_sent(kind: str) -> None:
    api = FakeApi(
        script=[httpx.Response(200, json={"runs": [make_run(1)], "next_page_token": "x"})],
        repeat=httpx.Response(200, json={"runs": [make_run(2)], "next_page_token": "x"}),
    )
    with pytest.raises(PaginationLoopError):
        mock_driver(kind, api).list_runs()
    assert api.count == 2


def test_loop_guard_yields_runs_before_failing() -> None:
    api = FakeApi(repeat=httpx.Response(200, json={"runs": [make_run(1)], "next_page_token": "x"}))
    got: list[str] = []

    def consume(client: TimbalClient) -> None:
        for run in client.list_runs():
            got.append(run.id)

    with (
        TimbalClient(
            KEY, host=BASE, org_id=ORG, project_id=PROJECT, env={}, transport=api.transport()
        ) as client,
        pytest.raises(PaginationLoopError),
    ):
        consume(client)
    assert got == ["run_00001"]
    assert api.count == 2


# --- retries -----------------------------------------------------------------------------


def _r(status: int, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    return httpx.Response(status, headers=headers, **kw)


def test_429_retry_after_seconds_is_honoured(kind: str, sleeps: SleepRecorder) -> None:
    api = FakeApi(
        make_runs(2),
        script=[_r(429, {"Retry-After": "2"}), _r(429, {"Retry-After": "0.5"})],
    )
    driver = mock_driver(kind, api)
    assert len(driver.list_runs()) == 2
    assert api.count == 3
    assert driver.requests == 3
    assert sleeps.delays == [2.0, 0.5]


def test_429_retry_after_http_date(kind: str, sleeps: SleepRecorder) -> None:
    now = datetime.now(UTC)
    script = [
        _r(429, {"Retry-After": format_datetime(now + timedelta(seconds=30), usegmt=True)}),
        _r(429, {"Retry-After": format_datetime(now - timedelta(hours=1), usegmt=True)}),
        _r(429, {"Retry-After": format_datetime(now + timedelta(hours=1), usegmt=True)}),
    ]
    api = FakeApi(make_runs(1), script=script)
    assert len(mock_driver(kind, api).list_runs()) == 1
    assert api.count == 4
    first, second, third = sleeps.delays
    assert 25.0 <= first <= 30.0  # an HTTP date has whole seconds; allow for a slow machine
    assert second == 0.0  # a date in the past: retry at once
    assert third == 60.0  # capped at retry_after_max


def test_retry_after_capped_by_policy(kind: str, sleeps: SleepRecorder) -> None:
    api = FakeApi(make_runs(1), script=[_r(429, {"Retry-After": "3600"})])
    policy = RetryPolicy(max_retries=2, retry_after_max=5.0)
    mock_driver(kind, api, retry_policy=policy).list_runs()
    assert sleeps.delays == [5.0]


def test_backoff_without_retry_after_is_bounded(
    kind: str, sleeps: SleepRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, b: b)  # the top of each jitter range
    api = FakeApi(make_runs(1), script=[_r(503)] * 7)
    policy = RetryPolicy(max_retries=8, backoff_base=0.5, backoff_max=10.0)
    assert len(mock_driver(kind, api, retry_policy=policy).list_runs()) == 1
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_jitter_within_bounds(kind: str, sleeps: SleepRecorder) -> None:
    api = FakeApi(make_runs(1), script=[_r(500)] * 6)
    mock_driver(kind, api, retry_policy=RetryPolicy(max_retries=6, backoff_max=3.0)).list_runs()
    ceilings = [min(3.0, 0.5 * 2**i) for i in range(6)]
    assert len(sleeps.delays) == 6
    assert all(0.0 <= d <= c for d, c in zip(sleeps.delays, ceilings, strict=True))


def test_503_retry_after_is_honoured(kind: str, sleeps: SleepRecorder) -> None:
    api = FakeApi(make_runs(1), script=[_r(503, {"Retry-After": "3"})])
    assert len(mock_driver(kind, api).list_runs()) == 1
    assert sleeps.delays == [3.0]


def test_get_run_is_retried(kind: str, sleeps: SleepRecorder) -> None:
    api = FakeApi(
        detail=make_run(5),
        script=[_r(429, {"Retry-After": "1"}), httpx.ReadTimeout("slow"), _r(502)],
    )
    driver = mock_driver(kind, api)
    assert driver.get_run("run_00005").id == "run_00005"
    assert api.count == 4
    assert driver.requests == 4
    assert sleeps.delays[0] == 1.0
    assert len(sleeps.delays) == 3


def test_on_retry_receives_each_retry_as_data(kind: str) -> None:
    seen: list[RetryDetails] = []
    api = FakeApi(
        detail=make_run(5),
        script=[_r(429, {"Retry-After": "1"}), httpx.ReadTimeout("slow"), _r(502)],
    )
    driver = mock_driver(kind, api, on_retry=seen.append, max_retries=5)
    assert driver.get_run("run_00005").id == "run_00005"
    path = f"{RUNS_PATH}/run_00005"
    assert [(d.attempt, d.status_code, d.error, d.retry_after) for d in seen] == [
        (1, 429, None, True),
        (2, None, "ReadTimeout", False),
        (3, 502, None, False),
    ]
    assert all(d.path == path and d.max_retries == 5 for d in seen)
    assert seen[0].delay == 1.0  # the server's Retry-After
    assert 0.0 <= seen[1].delay <= 1.0  # backoff: uniform(0, min(30, 0.5 * 2**1))
    assert 0.0 <= seen[2].delay <= 2.0


def test_an_on_retry_hook_that_raises_stops_the_retries(kind: str) -> None:
    def enough(details: RetryDetails) -> None:
        raise RuntimeError(f"enough after {details.status_code}")

    api = FakeApi(make_runs(1), script=[_r(503), _r(503)])
    with pytest.raises(RuntimeError, match="enough after 503"):
        mock_driver(kind, api, on_retry=enough).list_runs()
    assert api.count == 1


def test_on_retry_is_kept_on_the_client_and_reaches_parallel_windows() -> None:
    seen: list[RetryDetails] = []
    api = FakeApi(make_runs(240), page_size=7, honour_time=True, script=[None, None, _r(503)])
    config = resolve_config(KEY, host=BASE, org_id=ORG, project_id=PROJECT, env={})
    with TimbalClient.from_config(config, transport=api.transport(), on_retry=seen.append) as c:
        assert c.on_retry == seen.append
        window = {"since": T0, "until": T0 + timedelta(hours=1)}
        assert len(list(c.list_runs(parallel=4, **window))) == 240  # through the bridge
        assert c.requests_made == api.count
    assert [d.status_code for d in seen] == [503]
    c.on_retry = None
    assert c.on_retry is None


def test_from_config_builds_either_client_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIMBAL_ORG_ID", "from-the-environment")
    config = resolve_config(KEY, host=BASE, org_id=ORG, project_id=PROJECT, env={})
    policy = RetryPolicy(max_retries=2)
    with TimbalClient.from_config(config, timeout=5.0, retry_policy=policy) as client:
        assert client.config is config
        assert client.retry_policy is policy
        assert client.timeout.read == 5.0
    async_client = AsyncTimbalClient.from_config(config, max_retries=1)
    assert async_client.config.org_id == ORG
    assert async_client.retry_policy.max_retries == 1
    asyncio.run(async_client.aclose())
    with pytest.raises(ConfigError, match="config: a dict is not a ClientConfig"):
        TimbalClient.from_config({"org_id": ORG})  # type: ignore[arg-type]


def test_testing_switch_means_no_sleep(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = SleepRecorder(monkeypatch)  # testing mode stays on (autouse fixture)
    api = FakeApi(make_runs(1), script=[_r(429, {"Retry-After": "30"}), _r(503)])
    assert len(mock_driver(kind, api).list_runs()) == 1
    assert api.count == 3
    assert recorder.delays == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_then_succeeds(kind: str, status: int) -> None:
    api = FakeApi(make_runs(4), page_size=2, script=[None, _r(status), _r(status)])
    driver = mock_driver(kind, api)
    assert ids(driver.list_runs()) == [f"run_{i:05d}" for i in range(4)]
    assert api.count == 4
    assert driver.requests == 4
    # the retried request is the same page
    assert [r.url.params.get("page_token") for r in api.requests] == [
        None,
        "tok-2",
        "tok-2",
        "tok-2",
    ]


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_5xx_gives_server_error_after_max_retries(kind: str, max_retries: int) -> None:
    api = FakeApi(repeat=_r(503, json={"message": "Service unavailable"}))
    driver = mock_driver(kind, api, max_retries=max_retries)
    with pytest.raises(ServerError) as info:
        driver.list_runs()
    assert api.count == max_retries + 1
    assert driver.requests == max_retries + 1
    error = info.value
    assert error.status_code == 503
    assert error.path == RUNS_PATH
    assert "Service unavailable" in str(error)
    assert RUNS_PATH in str(error)


def test_429_forever_gives_rate_limit_error(kind: str) -> None:
    api = FakeApi(repeat=_r(429, {"Retry-After": "7"}, json={"message": "slow down"}))
    with pytest.raises(RateLimitError) as info:
        mock_driver(kind, api, max_retries=2).list_runs()
    assert api.count == 3
    assert info.value.retry_after == 7.0
    assert info.value.status_code == 429
    assert "slow down" in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, APIStatusError),
    ],
)
def test_4xx_not_retried_and_mapped(kind: str, status: int, cls: type[APIStatusError]) -> None:
    api = FakeApi(repeat=_r(status, json={"message": f"server says {status}"}))
    driver = mock_driver(kind, api)
    with pytest.raises(cls) as info:
        driver.list_runs()
    assert type(info.value) is cls
    assert api.count == 1
    assert driver.requests == 1
    assert info.value.status_code == status
    assert info.value.path == RUNS_PATH
    assert info.value.server_message == f"server says {status}"
    message = str(info.value)
    assert str(status) in message
    assert RUNS_PATH in message
    assert f"server says {status}" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"detail": "bad from"}, "bad from"),
        ({"error": {"message": "nested why"}}, "nested why"),
        ({"error_description": "oauth style"}, "oauth style"),
        ("plain text reason", "plain text reason"),
        ("<html><head><title>403 Forbidden</title></head><body>x</body></html>", "403 Forbidden"),
        ("<html><body>no title</body></html>", "an HTML error page"),
    ],
)
def test_server_message_extracted(kind: str, body: Any, expected: str) -> None:
    response = _r(403, json=body) if isinstance(body, dict) else _r(403, content=body.encode())
    api = FakeApi(repeat=response)
    with pytest.raises(PermissionDeniedError) as info:
        mock_driver(kind, api).list_runs()
    assert info.value.server_message == expected


def test_long_server_message_is_bounded(kind: str) -> None:
    api = FakeApi(repeat=_r(400, json={"message": "x " * 2000}))
    with pytest.raises(BadRequestError) as info:
        mock_driver(kind, api).list_runs()
    assert len(str(info.value)) < 600
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.RemoteProtocolError("peer closed connection"), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.ReadTimeout("timed out"), APITimeoutError),
        (httpx.ConnectTimeout("timed out"), APITimeoutError),
    ],
)
def test_transport_errors_retried_then_raised(
    kind: str, exc: Exception, cls: type[APIConnectionError]
) -> None:
    api = FakeApi(repeat=exc)
    driver = mock_driver(kind, api, max_retries=3)
    with pytest.raises(cls) as info:
        driver.list_runs()
    assert type(info.value) is cls
    assert api.count == 4
    assert "after 4 attempts" in str(info.value)
    assert info.value.path == RUNS_PATH
    assert BASE in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_transport_errors_recovered(kind: str, exc: Exception) -> None:
    api = FakeApi(make_runs(3), page_size=2, script=[exc, None, exc, exc])
    assert ids(mock_driver(kind, api).list_runs()) == [f"run_{i:05d}" for i in range(3)]
    assert api.count == 5


def test_retries_are_per_request_not_per_listing(kind: str) -> None:
    # each page fails twice; max_retries=2 suffices because the count resets per request
    script: list[Any] = []
    for _ in range(4):
        script += [_r(503), _r(502), None]
    api = FakeApi(make_runs(8), page_size=2, script=script)
    assert len(mock_driver(kind, api, max_retries=2).list_runs()) == 8
    assert api.count == 12


# --- response validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (_r(200, content=b"{not json"), "not JSON"),
        (_r(200, content=b"", headers={"content-type": "application/json"}), "empty body"),
        (
            _r(
                200,
                content=b"<html><body>login</body></html>",
                headers={"content-type": "text/html"},
            ),
            "text/html",
        ),
        (_r(200, json=[1, 2]), "schema"),
        (_r(200, json={"items": []}), "runs"),
        (_r(200, json={"runs": None}), "runs"),
        (_r(200, json={"runs": {"0": make_run(1)}}), "runs"),
        (_r(200, json={"runs": [{"id": "x"}]}), "runs.0"),
        (_r(200, json={"runs": [make_run(1, created_at="yesterday")]}), "created_at"),
        (_r(200, json={"runs": [make_run(1, user=None)]}), "user"),
        (_r(200, json={"runs": [], "next_page_token": 5}), "next_page_token"),
    ],
)
def test_bad_bodies_are_response_validation_errors(
    kind: str, response: httpx.Response, fragment: str
) -> None:
    api = FakeApi(repeat=response)
    with pytest.raises(ResponseValidationError) as info:
        mock_driver(kind, api).list_runs()
    assert api.count == 1  # not retried
    assert fragment in str(info.value)
    assert RUNS_PATH in str(info.value)
    assert not isinstance(info.value, PaginationLoopError)


@pytest.mark.parametrize("status", [301, 302, 304, 307])
def test_redirects_are_not_followed(kind: str, status: int) -> None:
    api = FakeApi(repeat=_r(status, {"Location": "https://elsewhere.example.test/runs"}))
    with pytest.raises(TimbalError) as info:
        mock_driver(kind, api).list_runs()
    assert api.count == 1
    assert str(status) in str(info.value)


def test_empty_string_token_never_duplicates(kind: str) -> None:
    # The spec types next_page_token as string|null; a server that ends with "" must not
    # make the client loop or yield a run twice.
    api = FakeApi(
        script=[
            _r(200, json={"runs": [make_run(1)], "next_page_token": "t1"}),
            _r(200, json={"runs": [make_run(2)], "next_page_token": ""}),
        ],
        repeat=_r(200, json={"runs": [make_run(1)], "next_page_token": "t1"}),
    )
    runs: list[Any] = []
    with contextlib.suppress(PaginationLoopError):
        mock_driver(kind, api).list_runs(sink=runs)
    got = ids(runs)
    assert got[:2] == ["run_00001", "run_00002"]
    assert len(got) == len(set(got))
    assert api.count <= 3


def test_bad_field_location_named(kind: str) -> None:
    bad = make_run(2)
    del bad["idempotency_key"]
    api = FakeApi(repeat=_r(200, json={"runs": [make_run(1), bad]}))
    with pytest.raises(ResponseValidationError, match=r"runs\.1\.idempotency_key"):
        mock_driver(kind, api).list_runs()


def test_unknown_fields_kept_through_the_client(kind: str) -> None:
    run = make_run(
        1,
        rev="main",
        metadata={"env": "prod"},
        workforce={"id": "w", "name": "n", "type": "crew", "team": "blue"},
        status="queued",
    )
    api = FakeApi(repeat=_r(200, json={"runs": [run], "next_page_token": None, "total": 1}))
    driver = mock_driver(kind, api)
    (got,) = driver.list_runs()
    dumped = got.to_json_dict()
    assert dumped["rev"] == "main"
    assert dumped["metadata"] == {"env": "prod"}
    assert dumped["workforce"]["team"] == "blue"
    assert got.workforce.type == "crew"
    assert got.status == "queued"
    page = driver.get_runs_page()
    assert page.model_dump()["total"] == 1


# --- get_run -----------------------------------------------------------------------------


def _detail(**overrides: Any) -> dict[str, Any]:
    return make_run(
        5, status_detail=None, trace={"trace_id": "t"}, metadata={"env": "prod"}, **overrides
    )


def test_get_run_by_id(kind: str) -> None:
    api = FakeApi(detail=_detail())
    detail = mock_driver(kind, api).get_run("run_00005")
    assert detail.id == "run_00005"
    assert detail.trace == {"trace_id": "t"}
    assert detail.to_json_dict()["metadata"] == {"env": "prod"}
    assert api.requests[0].url.path == f"{RUNS_PATH}/run_00005"
    assert api.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert api.count == 1


@pytest.mark.parametrize(
    ("run_id", "raw"),
    [
        ("c4b2a7e0-3f1d-4e8a-9b6c-2d7f5a1e9c3b", "c4b2a7e0-3f1d-4e8a-9b6c-2d7f5a1e9c3b"),
        ("key/with space?&#%", "key%2Fwith%20space%3F%26%23%25"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("ключ", "%D0%BA%D0%BB%D1%8E%D1%87"),
    ],
)
def test_get_run_by_idempotency_key_is_quoted(kind: str, run_id: str, raw: str) -> None:
    api = FakeApi(detail=_detail())
    mock_driver(kind, api).get_run(run_id)
    assert api.requests[0].url.raw_path.decode() == f"{RUNS_PATH}/{raw}"


def test_get_run_404(kind: str) -> None:
    api = FakeApi(repeat=_r(404, json={"message": "Run 'nope' not found"}))
    with pytest.raises(NotFoundError) as info:
        mock_driver(kind, api).get_run("nope")
    assert api.count == 1
    assert info.value.path == f"{RUNS_PATH}/nope"
    assert "Run 'nope' not found" in str(info.value)
    assert "run id" in str(info.value)  # the hint


def test_get_run_detail_without_workforce(kind: str) -> None:
    detail = _detail()
    del detail["workforce"]
    api = FakeApi(detail=detail)
    assert mock_driver(kind, api).get_run("run_00005").workforce is None


def test_get_run_bad_body(kind: str) -> None:
    api = FakeApi(repeat=_r(200, json={"id": "x"}))
    with pytest.raises(ResponseValidationError, match="idempotency_key"):
        mock_driver(kind, api).get_run("x")


@pytest.mark.parametrize("run_id", ["", "   ", "a\nb", "x" * 513, None, 5])
def test_get_run_bad_id_makes_no_request(kind: str, run_id: Any) -> None:
    api = FakeApi(detail=_detail())
    with pytest.raises(QueryError, match=r"^run_id: "):
        mock_driver(kind, api).get_run(run_id)
    assert api.count == 0


def test_earliest_run(kind: str) -> None:
    api = FakeApi(make_runs(5), page_size=2)
    run = mock_driver(kind, api).earliest_run(status="error")
    assert run is not None
    assert run.id == "run_00000"
    assert api.count == 1
    assert dict(api.requests[0].url.params) == {
        "status": "error",
        "sort_by": "created_at",
        "sort_order": "asc",
    }


# --- argument validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": 5}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"bogus": 1}, "bogus"),
        ({"limit": -1}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"parallel": 0}, "parallel"),
        ({"parallel": 65}, "parallel"),
        ({"parallel": True}, "parallel"),
        ({"query": {"status": "error"}}, "query"),
    ],
)
def test_bad_arguments_raise_at_call_time(kind: str, kwargs: dict[str, Any], field: str) -> None:
    api = FakeApi(make_runs(1))
    args: dict[str, Any] = {
        "api_key": KEY,
        "host": BASE,
        "org_id": ORG,
        "project_id": PROJECT,
        "env": {},
        "transport": api.transport(),
    }

    def call(client: Any) -> QueryError:
        with pytest.raises(QueryError) as info:
            client.list_runs(**kwargs)  # not iterated: raises on the call itself
        return info.value

    if kind == "sync":
        with TimbalClient(**args) as client:
            error = call(client)
    else:

        async def main() -> QueryError:
            async with AsyncTimbalClient(**args) as client:
                return call(client)

        error = asyncio.run(main())
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert api.count == 0


def test_bad_filter_in_get_runs_page(kind: str) -> None:
    api = FakeApi(make_runs(1))
    with pytest.raises(QueryError, match=r"^sort_order: "):
        mock_driver(kind, api).get_runs_page(sort_order="sideways")
    assert api.count == 0


def test_parallel_needs_created_at_sort(kind: str) -> None:
    api = FakeApi(make_runs(1))
    with pytest.raises(QueryError, match=r"^parallel: "):
        mock_driver(kind, api).list_runs(
            parallel=2, sort_by="cost_usd", since=T0, until=T0 + timedelta(days=1)
        )


def test_max_retries_overrides_policy(kind: str) -> None:
    api = FakeApi(repeat=_r(500))
    policy = RetryPolicy(max_retries=9, backoff_base=0.0)
    with pytest.raises(ServerError):
        mock_driver(kind, api, retry_policy=policy, max_retries=1).list_runs()
    assert api.count == 2


def test_default_policy_is_six_retries(kind: str) -> None:
    api = FakeApi(repeat=_r(502, content=b"<html><title>502 Bad Gateway</title></html>"))
    with pytest.raises(ServerError) as info:
        mock_driver(kind, api).list_runs()
    assert api.count == 7
    assert info.value.server_message == "502 Bad Gateway"


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_parallel_listing_uses_the_injected_transport(kind: str, order: str) -> None:
    # The host has nothing listening: every request must go through the MockTransport,
    # the windows of a parallel listing included.
    api = FakeApi(make_runs(240), page_size=7, honour_time=True)
    driver = mock_driver(kind, api, host=f"http://127.0.0.1:{_closed_port()}", max_retries=0)
    window: dict[str, Any] = {"since": T0, "until": T0 + timedelta(hours=1), "sort_order": order}
    sequential = ids(driver.list_runs(**window))
    assert len(sequential) == 240
    assert sequential == sorted(sequential, reverse=order == "desc")
    sequential_requests = api.count
    try:
        parallel = ids(driver.list_runs(parallel=4, **window))
    except APIConnectionError as exc:
        pytest.fail(
            f"parallel listing bypassed the injected transport and went to the network: {exc}"
        )
    assert parallel == sequential
    assert api.count > sequential_requests


# --- the key stays secret ----------------------------------------------------------------


def test_key_echoed_by_server_is_scrubbed(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeApi(
        script=[_r(503, json={"message": f"overloaded for {KEY}"})],
        repeat=_r(401, json={"message": f"Invalid API key {KEY}"}),
    )
    with pytest.raises(AuthenticationError) as info:
        mock_driver(kind, api).list_runs()
    error = info.value
    for text in (str(error), repr(error), error.server_message, error.path, repr(error.args)):
        assert KEY not in text
    assert "***" in error.server_message
    assert "TIMBAL_API_KEY" in str(error)
    assert KEY not in caplog.text


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ReadTimeout])
def test_key_scrubbed_from_transport_errors(
    kind: str, exc_type: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeApi(repeat=exc_type(f"failed with Authorization: Bearer {KEY}"))
    with pytest.raises(APIConnectionError) as info:
        mock_driver(kind, api, max_retries=1).list_runs()
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert info.value.__cause__ is None or KEY not in str(info.value.__cause__)
    assert info.value.__suppress_context__
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "response",
    [
        _r(400, json={"message": f"bad key {KEY}"}),
        _r(403, content=f"<html><title>denied {KEY}</title></html>".encode()),
        _r(404, content=f"no run for {KEY}".encode()),
        _r(500, json={"detail": KEY}),
    ],
)
def test_key_never_in_any_status_error(kind: str, response: httpx.Response) -> None:
    api = FakeApi(repeat=response)
    with pytest.raises(TimbalError) as info:
        mock_driver(kind, api, max_retries=0).get_run("abc")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert all(KEY not in str(v) for v in vars(info.value).values())


def test_retries_are_logged_without_the_key(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="timbal_integrations")
    api = FakeApi(make_runs(1), script=[_r(503), httpx.ConnectError("x")])
    mock_driver(kind, api).list_runs()
    messages = [r.getMessage() for r in caplog.records if r.name == "timbal_integrations"]
    assert len(messages) == 2
    assert "503" in messages[0]
    assert "ConnectError" in messages[1]
    assert all(RUNS_PATH in m and KEY not in m for m in messages)
