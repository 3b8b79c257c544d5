"""``TimbalClient`` and ``AsyncTimbalClient``: the runs API, typed, paginated and retried.

Both clients have the same surface::

    with TimbalClient() as client:                       # config from TIMBAL_* variables
        for run in client.list_runs(status="error", since="24h"):
            print(run.id, run.user.email, run.cost_usd)

    async with AsyncTimbalClient() as client:
        async for run in client.list_runs(since="7d", limit=100):
            ...

``list_runs`` pages lazily and makes no request beyond what ``limit`` needs;
``get_runs_page`` makes exactly one request; ``get_run`` accepts a run id or an
idempotency key. With ``parallel=N``, ``list_runs`` splits ``[since, until)`` into ``N``
windows fetched concurrently and still yields every run once, in the requested order
when sorting by ``created_at``. ``Client.from_config(config, ...)`` builds a client of an
already resolved :class:`~timbal_integrations.config.ClientConfig`.

Each request has a total deadline (``timeout``), each response body a decoded-size cap
and each listing page bounds (``bounds=Bounds(...)``): see
:class:`~timbal_integrations.limits.Bounds`.

The package: ``_core`` (sans-I/O: a client's settings, request shaping, retry
decisions), the sans-I/O modules it calls, one job each (``_checks``: arguments;
``_body``: bodies decoded in bounded steps, within the cap; ``_ratelimit``:
``RateLimit-*`` headers; ``_failures``: error statuses and requests with no answer;
``_parse``: 2xx bodies to models; ``_guard``: a listing's page bounds; ``_pieces``: the
time ranges of parallel listings), ``_base`` (the properties both clients share),
``_async`` (``AsyncTimbalClient``, the source of truth), ``_sync`` (``TimbalClient``,
generated from ``_async`` by ``scripts/unasync.py``), ``_balance`` (parallel listings
that balance themselves, async), ``_windows`` (fixed windows, async), ``_bridge`` (the
sync client's parallel listings, run on a private loop), ``_shards`` (connection pools)
and ``_deadline`` (the total deadline of each request, kept by every network operation).
"""

from __future__ import annotations

from ._async import AsyncTimbalClient
from ._core import DEFAULT_TIMEOUT, USER_AGENT
from ._pieces import Piece, PieceSplit, WindowPage
from ._sync import TimbalClient

__all__ = [
    "DEFAULT_TIMEOUT",
    "USER_AGENT",
    "AsyncTimbalClient",
    "Piece",
    "PieceSplit",
    "TimbalClient",
    "WindowPage",
]
