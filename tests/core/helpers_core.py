"""Shared helpers of the core test suite: a scripted fake API for ``httpx.MockTransport``,
and a driver that runs one scenario through either client (runs come from
:mod:`tests.support.runs`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from timbal_integrations import (
    AsyncTimbalClient,
    Reaction,
    ReactionsPage,
    Run,
    RunDetail,
    RunsPage,
    TimbalClient,
)

__all__ = [
    "BASE",
    "KEY",
    "KINDS",
    "ORG",
    "PROJECT",
    "RUNS_PATH",
    "Driver",
    "FakeApi",
    "mock_driver",
]

KEY = "sk-live-TOPSECRET-0123456789abcdef"
ORG = "org_test"
PROJECT = "proj_test"
BASE = "https://api.example.test"
RUNS_PATH = f"/orgs/{ORG}/projects/{PROJECT}/runs"
KINDS = ("sync", "async")


Action = httpx.Response | Exception | None


class FakeApi:
    """A scripted runs API for ``httpx.MockTransport``.

    Serves ``runs`` in pages of ``page_size`` with tokens ``tok-<offset>``. ``script`` is
    consumed one item per request before normal serving: a ``Response`` is returned, an
    ``Exception`` is raised (a transport error), ``None`` means serve normally. Every
    request is recorded in ``requests``. With ``honour_time``, ``from``/``to`` and
    ``sort_order`` are applied (by ``created_at``); otherwise every filter is ignored.
    """

    def __init__(
        self,
        runs: Iterable[dict[str, Any]] = (),
        *,
        page_size: int = 3,
        script: Iterable[Action] = (),
        repeat: Action = None,
        detail: dict[str, Any] | None = None,
        honour_time: bool = False,
    ) -> None:
        self.runs = list(runs)
        self.honour_time = honour_time
        self.page_size = page_size
        self.script: list[Action] = list(script)
        self.repeat = repeat
        self.detail = detail
        self.requests: list[httpx.Request] = []

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.requests)

    def transport(self) -> httpx.MockTransport:
        """A MockTransport serving this fake (usable by both clients)."""
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        action: Action = self.script.pop(0) if self.script else self.repeat
        if isinstance(action, Exception):
            raise action
        if isinstance(action, httpx.Response):
            # A fresh copy: a client rebinds the stream of the response it receives.
            return httpx.Response(action.status_code, headers=action.headers, content=action.read())
        path = request.url.path
        if path == RUNS_PATH:
            token = request.url.params.get("page_token")
            offset = int(token.removeprefix("tok-")) if token else 0
            runs = self._select(request.url.params) if self.honour_time else self.runs
            chunk = runs[offset : offset + self.page_size]
            end = offset + self.page_size
            next_token = f"tok-{end}" if end < len(runs) else None
            return httpx.Response(200, json={"runs": chunk, "next_page_token": next_token})
        if path.startswith(RUNS_PATH + "/") and self.detail is not None:
            return httpx.Response(200, json=self.detail)
        return httpx.Response(404, json={"message": "no such route"})

    def _select(self, params: httpx.QueryParams) -> list[dict[str, Any]]:
        lo = int(params.get("from", 0))
        hi = int(params.get("to", 2**62))
        timed = [(_ms(r["created_at"]), r["id"], r) for r in self.runs]
        hits = sorted(t for t in timed if lo <= t[0] < hi)
        if params.get("sort_order", "desc") == "desc":
            hits.reverse()
        return [r for _, _, r in hits]


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


class Driver:
    """Run one scenario through ``TimbalClient`` or ``AsyncTimbalClient``.

    Each call opens a fresh client (inside ``asyncio.run`` for the async one), so the
    async client never outlives its event loop. ``requests`` sums ``requests_made``.
    """

    def __init__(self, kind: str, **client_kwargs: Any) -> None:
        assert kind in KINDS
        self.kind = kind
        self.client_kwargs = client_kwargs
        self.requests = 0

    def _call(
        self,
        sync_fn: Callable[[TimbalClient], Any],
        async_fn: Callable[[AsyncTimbalClient], Awaitable[Any]],
    ) -> Any:
        if self.kind == "sync":
            with TimbalClient(**self.client_kwargs) as client:
                try:
                    return sync_fn(client)
                finally:
                    self.requests += client.requests_made

        async def main() -> Any:
            async with AsyncTimbalClient(**self.client_kwargs) as client:
                try:
                    return await async_fn(client)
                finally:
                    self.requests += client.requests_made

        return asyncio.run(main())

    def list_runs(
        self,
        *args: Any,
        take: int | None = None,
        sink: list[Run] | None = None,
        **kwargs: Any,
    ) -> list[Run]:
        """``list(client.list_runs(...))``; ``take`` stops consuming after that many.

        ``sink`` receives each run as it arrives (to see what came before an error).
        """
        out: list[Run] = [] if sink is None else sink

        def sync_fn(client: TimbalClient) -> list[Run]:
            out.extend(itertools.islice(client.list_runs(*args, **kwargs), take))
            return out

        async def async_fn(client: AsyncTimbalClient) -> list[Run]:
            iterator = client.list_runs(*args, **kwargs)
            try:
                async for run in iterator:
                    if take is not None and len(out) >= take:
                        break
                    out.append(run)
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            return out

        result: list[Run] = self._call(sync_fn, async_fn)
        return result

    def get_runs_page(self, *args: Any, **kwargs: Any) -> RunsPage:
        """``client.get_runs_page(...)``."""

        async def async_fn(client: AsyncTimbalClient) -> RunsPage:
            return await client.get_runs_page(*args, **kwargs)

        result: RunsPage = self._call(lambda c: c.get_runs_page(*args, **kwargs), async_fn)
        return result

    def iter_pages(self, *args: Any, **kwargs: Any) -> list[RunsPage]:
        """``list(client.iter_pages(...))``."""

        async def async_fn(client: AsyncTimbalClient) -> list[RunsPage]:
            return [page async for page in client.iter_pages(*args, **kwargs)]

        result: list[RunsPage] = self._call(lambda c: list(c.iter_pages(*args, **kwargs)), async_fn)
        return result

    def get_run(self, run_id: str) -> RunDetail:
        """``client.get_run(run_id)``."""

        async def async_fn(client: AsyncTimbalClient) -> RunDetail:
            return await client.get_run(run_id)

        result: RunDetail = self._call(lambda c: c.get_run(run_id), async_fn)
        return result

    def list_reactions(self, run_id: str, **kwargs: Any) -> list[Reaction]:
        """``list(client.list_reactions(run_id, ...))``."""

        async def async_fn(client: AsyncTimbalClient) -> list[Reaction]:
            return [r async for r in client.list_reactions(run_id, **kwargs)]

        result: list[Reaction] = self._call(
            lambda c: list(c.list_reactions(run_id, **kwargs)), async_fn
        )
        return result

    def get_reactions_page(self, run_id: str, **kwargs: Any) -> ReactionsPage:
        """``client.get_reactions_page(run_id, ...)``."""

        async def async_fn(client: AsyncTimbalClient) -> ReactionsPage:
            return await client.get_reactions_page(run_id, **kwargs)

        result: ReactionsPage = self._call(
            lambda c: c.get_reactions_page(run_id, **kwargs), async_fn
        )
        return result

    def earliest_run(self, *args: Any, **kwargs: Any) -> Run | None:
        """``client.earliest_run(...)``."""

        async def async_fn(client: AsyncTimbalClient) -> Run | None:
            return await client.earliest_run(*args, **kwargs)

        result: Run | None = self._call(lambda c: c.earliest_run(*args, **kwargs), async_fn)
        return result


def mock_driver(kind: str, api: FakeApi, **client_kwargs: Any) -> Driver:
    """A driver whose clients talk to ``api`` through a MockTransport."""
    kwargs: dict[str, Any] = {
        "api_key": KEY,
        "host": BASE,
        "org_id": ORG,
        "project_id": PROJECT,
        "env": {},
        "transport": api.transport(),
    }
    kwargs.update(client_kwargs)
    return Driver(kind, **kwargs)
