"""The token-bucket rate limit: exact under concurrency, headers on every runs response."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from timbal_integrations.emulator import create_app
from timbal_integrations.emulator.server import serve_app
from timbal_integrations.emulator.stats import TokenBucket

LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
# A bucket of 10 that refills one request every 1,000 seconds: exact whatever the speed.
SLOW = {"rate_limit": 0.001, "rate_limit_burst": 10}


def test_bucket_arithmetic_with_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 3, monotonic=lambda: now[0])
    results = [bucket.take() for _ in range(4)]
    assert [allowed for allowed, _, _ in results] == [True, True, True, False]
    remaining = [dict(headers)[b"ratelimit-remaining"] for _, _, headers in results]
    assert remaining == [b"2", b"1", b"0", b"0"]
    assert dict(results[0][2])[b"ratelimit-limit"] == b"3"
    assert dict(results[0][2])[b"ratelimit-reset"] == b"1"  # 1 token short: 0.5 s, rounded up
    assert results[3][1] == pytest.approx(0.5)  # one token comes back in half a second
    now[0] = 0.25
    allowed, wait, _ = bucket.take()
    assert not allowed
    assert wait == pytest.approx(0.25)
    now[0] = 0.5
    assert bucket.take()[0]
    now[0] = 100.0  # refills up to the burst, no further
    assert [bucket.take()[0] for _ in range(4)] == [True, True, True, False]


def test_every_runs_response_carries_the_headers(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=30, rate_limit=1000)
    run_id = emu.runs[0]["id"]
    url = emu.runs_url
    with httpx.Client(headers=emu.headers()) as client:
        responses = [
            client.get(url),  # 200
            client.get(f"{url}/{run_id}"),  # 200
            client.get(f"{url}/nope"),  # 404
            client.get(url, params={"sort_by": "x"}),  # 400
            client.get(url, headers={"Authorization": "Bearer wrong-key"}),  # 401
            client.get(f"{url}/{run_id}/reactions"),  # 200
            client.post(f"{url}/{run_id}/reactions", json={"sentiment": "positive"}),  # 204
            client.post(f"{url}/{run_id}/reactions", json={"sentiment": ""}),  # 422
            client.post(url),  # 405
        ]
        emu.configure(fault_rate=1.0, fault_kinds=["500", "502", "503"])
        responses += [client.get(url) for _ in range(6)]
        emu.configure(fault_rate=0.0)
        other = client.get(f"{emu.base_url}/elsewhere")
    statuses = Counter(r.status_code for r in responses)
    assert {200, 204, 400, 401, 404, 405, 422} <= set(statuses)
    assert {500, 502, 503} & set(statuses)
    for response in responses:
        for name in LIMIT_HEADERS:
            assert name in response.headers, (response.status_code, name)
        assert response.headers["ratelimit-limit"] == "1000"
    assert not any(name in other.headers for name in LIMIT_HEADERS)


def test_exact_under_concurrent_asyncio_requests(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=30, **SLOW)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(headers=emu.headers(), limits=limits) as client:
            return await asyncio.gather(*(client.get(emu.runs_url) for _ in range(40)))

    responses = asyncio.run(burst())
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) == 10
    assert len(limited) == 30
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in ok) == list(range(10))
    for response in limited:
        assert response.headers["ratelimit-remaining"] == "0"
        assert 999 <= int(response.headers["retry-after"]) <= 1000  # a token every 1,000 s
        assert int(response.headers["ratelimit-reset"]) >= int(response.headers["retry-after"])
    assert emu.stats.rate_limited == 30
    assert emu.stats.responses_by_status == {200: 10, 429: 30}


def test_exact_across_server_threads(timbal_emulator_factory: Any) -> None:
    # One app served by two uvicorn threads, hit by eight client threads at once.
    app = create_app(runs=30, **SLOW)
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(serve_app(app)) for _ in range(2)]
        statuses: list[int] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def client(k: int) -> None:
            emu = servers[k % 2]
            with httpx.Client(headers=emu.headers()) as http:
                start.wait()
                got = [http.get(emu.runs_url).status_code for _ in range(6)]
            with lock:
                statuses.extend(got)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert Counter(statuses) == {200: 10, 429: 38}
    assert app.stats.rate_limited == 38


def test_retry_after_is_when_a_token_is_back(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=30, rate_limit=0.01)  # a token every 100 s, burst 1
    with httpx.Client(headers=emu.headers()) as client:
        first, second = client.get(emu.runs_url), client.get(emu.runs_url)
    assert first.status_code == 200
    assert first.headers["ratelimit-remaining"] == "0"
    assert second.status_code == 429
    assert 99 <= int(second.headers["retry-after"]) <= 100
    assert second.json()["message"].startswith("Rate limit exceeded")


def test_burst_switch(timbal_emulator_factory: Any) -> None:
    emu = timbal_emulator_factory(runs=30)
    emu.configure(rate_limit=0.001, rate_limit_burst=3)
    with httpx.Client(headers=emu.headers()) as client:
        assert [client.get(emu.runs_url).status_code for _ in range(4)] == [200, 200, 200, 429]
        emu.configure(rate_limit_burst=5)  # refills the bucket
        assert [client.get(emu.runs_url).status_code for _ in range(6)] == [200] * 5 + [429]
        assert emu.app.settings["rate_limit_burst"] == 5
        emu.configure(rate_limit=None)
        assert "ratelimit-limit" not in client.get(emu.runs_url).headers
    with pytest.raises(ValueError, match="rate_limit_burst"):
        emu.configure(rate_limit=1, rate_limit_burst=0.5)
