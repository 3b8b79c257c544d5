"""What both clients show of their state: the read-only surface over their :class:`Core`.

:class:`ClientBase` is the base of :class:`AsyncTimbalClient` and the generated
:class:`TimbalClient`: their configuration, timeout, page bounds, retry policy,
``on_retry`` hook, pacer and request count, all read from the client's ``Core``. None of
it does I/O, so it is written once here rather than once per client.
"""

from __future__ import annotations

import httpx

from ..config import ClientConfig
from ..limits import Bounds
from ..pacing import Pacer
from ..retry import OnRetry, RetryPolicy
from ._core import Core

__all__ = ["ClientBase"]


class ClientBase:
    """The properties both clients share (each client sets ``_core`` when built)."""

    _core: Core

    @property
    def config(self) -> ClientConfig:
        """The resolved configuration (its API key is a :class:`Secret`)."""
        return self._core.config

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of each request (its longest phase is the total deadline)."""
        return self._core.timeout

    @property
    def bounds(self) -> Bounds:
        """What the client accepts from the server (response size, pages)."""
        return self._core.bounds

    @property
    def retry_policy(self) -> RetryPolicy:
        """How failed requests are retried."""
        return self._core.retry

    @property
    def on_retry(self) -> OnRetry | None:
        """Called with each retry's details before the client waits (None: not called)."""
        return self._core.on_retry

    @on_retry.setter
    def on_retry(self, hook: OnRetry | None) -> None:
        self._core.on_retry = hook

    @property
    def pacer(self) -> Pacer:
        """What the client learned of the API's rate limit (``RateLimit-*`` headers,
        429s), and how it spaces requests to stay within it."""
        return self._core.pacer

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._core.requests_made

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"
