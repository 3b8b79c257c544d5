"""What a sync asks the API: the window's listing, and runs re-checked by id.

The listing is the window ``[since, until)`` sorted by ``created_at`` ascending (in
``parallel`` time windows fetched concurrently when asked), so that each day's runs are
complete once a later day's run arrives. Runs are re-checked with ``get_run`` on an
:class:`~timbal_integrations.AsyncTimbalClient` built from the client's settings, at
most :data:`~timbal_integrations.defaults.SYNC_RECHECK_CONCURRENCY` at a time, on a
private event loop in a helper thread (so a caller that runs an event loop of its own
can call a sync too).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from .. import defaults
from .._pages import RawPage
from ..client import WindowPage
from ..errors import NotFoundError
from ..limits import Parallel
from ..query import RunQuery
from ..retry import OnRetry, RetryDetails

if TYPE_CHECKING:
    from ..client import AsyncTimbalClient, TimbalClient

__all__ = ["RetryCounter", "list_window", "recheck"]


class RetryCounter:
    """An ``on_retry`` hook that counts retries, then calls the client's own hook."""

    def __init__(self, then: OnRetry | None) -> None:
        self.then = then
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, details: RetryDetails) -> None:
        with self._lock:
            self.count += 1
        if self.then is not None:
            self.then(details)


def list_window(client: TimbalClient, query: RunQuery, parallel: Parallel) -> Iterator[RawPage]:
    """The raw pages of ``query`` (sorted by ``created_at`` ascending), oldest first.

    With ``parallel`` other than 1 (a number, or ``"auto"``), the client's balanced
    listing fetches pieces of the window concurrently and hands them back in order.
    """
    if parallel == 1:
        pages: Iterator[RawPage] = client.iter_raw_pages(query)
        with closing(pages):  # type: ignore[type-var]
            yield from pages
        return
    pieces = client.resolve_pieces(query, 1)
    items = client.iter_pieces(query, pieces, parallel=parallel, raw=True, ordered=True)
    with closing(items):
        for item in items:
            if isinstance(item, WindowPage):
                yield item.page


def recheck(
    client: TimbalClient,
    run_ids: Sequence[str],
    *,
    on_retry: OnRetry,
    transport: object = None,
    concurrency: int = defaults.SYNC_RECHECK_CONCURRENCY,
) -> tuple[dict[str, dict[str, Any] | None], int]:
    """``get_run`` of every id, concurrently: each run as a JSON dict of the fields the
    server sent (None for a run the API answers 404 for), and the requests made.

    ``transport`` is the client's injected transport, if any (used when it can serve an
    async client, as ``httpx.MockTransport`` can). Any other failure (after the
    client's retries) is raised.
    """
    if not run_ids:
        return {}, 0
    import httpx

    from ..client import AsyncTimbalClient

    async def fetch_all() -> tuple[dict[str, dict[str, Any] | None], int]:
        import asyncio

        slots = asyncio.Semaphore(concurrency)
        found: dict[str, dict[str, Any] | None] = {}
        async with AsyncTimbalClient.from_config(
            client.config,
            timeout=client.timeout,
            retry_policy=client.retry_policy,
            bounds=client.bounds,
            transport=transport if isinstance(transport, httpx.AsyncBaseTransport) else None,
            on_retry=on_retry,
        ) as bridged:

            async def one(run_id: str) -> None:
                async with slots:
                    found[run_id] = await _detail(bridged, run_id)

            try:
                async with asyncio.TaskGroup() as group:
                    for run_id in run_ids:
                        group.create_task(one(run_id))
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            return found, bridged.requests_made

    def run() -> tuple[dict[str, dict[str, Any] | None], int]:
        import asyncio

        return asyncio.run(fetch_all())

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="timbal-sync") as pool:
        return pool.submit(run).result()


async def _detail(client: AsyncTimbalClient, run_id: str) -> dict[str, Any] | None:
    try:
        detail = await client.get_run(run_id)
    except NotFoundError:
        return None
    found: dict[str, Any] = detail.model_dump(mode="json", exclude_unset=True)
    return found
