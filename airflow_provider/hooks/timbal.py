"""``TimbalHook``: a Timbal connection turned into the core's :class:`TimbalClient`.

A ``timbal`` connection holds the API host (``host``; a bare host such as
``api.timbal.ai`` means https, a full URL such as ``http://127.0.0.1:8000`` is used as
is), the API key (``password``) and, in its extra, ``org_id`` and ``project_id``. Both
of Airflow's spellings work::

    AIRFLOW_CONN_TIMBAL_DEFAULT='{"conn_type": "timbal", "host": "api.timbal.ai",
        "password": "<key>", "extra": {"org_id": "<org>", "project_id": "<project>"}}'
    AIRFLOW_CONN_TIMBAL_DEFAULT='timbal://:<key>@api.timbal.ai/?org_id=<org>&project_id=<project>'

In the URI form a port goes after the host as usual, and a plain-http server is given
by percent-encoding the whole URL as the host (``http%3A%2F%2F127.0.0.1%3A8000``) or by
the path ``/http``. Every field can be overridden by a hook argument. Errors name what
to fix in the connection's terms (``the password of connection 'timbal_default'``), not
the ``TIMBAL_*`` variables the hook never reads (:meth:`TimbalHook.describe`). The key is
only ever held as a :class:`~timbal_integrations.Secret` and registered with Airflow's
secrets masker, so it never shows in task logs.

Retries inside Airflow are bounded by :data:`AIRFLOW_RETRY_POLICY` (4 retries, at most
7.5 s of backoff in all): Airflow's own task retries (``retries``, ``retry_delay``) are
the place for waiting out a longer outage, so a try against an unreachable host fails
in seconds instead of sleeping through a minute of client retries. A ``Retry-After``
from the API is still honoured (up to 60 s per retry).

:meth:`TimbalHook.get_async_conn` gives the :class:`AsyncTimbalClient` that triggers
use; it reads the connection without blocking the triggerer's event loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final, Self, TypeVar

from airflow.sdk import BaseHook

from timbal_integrations import (
    AsyncTimbalClient,
    RetryPolicy,
    RunDetail,
    RunQuery,
    RunsPage,
    TimbalClient,
    defaults,
)
from timbal_integrations.config import VARIABLES, ClientConfig, Secret, resolve_config
from timbal_integrations.errors import TimbalError
from timbal_integrations.models import Run
from timbal_integrations.redact import redact, secret_forms
from timbal_integrations.sanitize import terminal_safe
from timbal_integrations.wording import restate

from .. import CONN_TYPE, DEFAULT_CONN_ID, _failures

__all__ = ["AIRFLOW_RETRY_POLICY", "TimbalHook"]

AIRFLOW_RETRY_POLICY: Final = RetryPolicy(
    max_retries=defaults.AIRFLOW_MAX_RETRIES,
    backoff_base=defaults.AIRFLOW_BACKOFF_BASE,
    backoff_max=defaults.AIRFLOW_BACKOFF_MAX,
)
"""Request retries inside Airflow: 4 retries, backoff ceilings 0.5 + 1 + 2 + 4 s (the
numbers are :mod:`timbal_integrations.defaults`' ``AIRFLOW_*``).

So a request that never gets an answer (connection refused, DNS failure) fails after 5
attempts and at most 7.5 s of waiting; each attempt is bounded by the hook's
``timeout``. ``max_retries=`` (hook or operator) changes the count, not the ceilings.
"""

T = TypeVar("T")
C = TypeVar("C", TimbalClient, AsyncTimbalClient)


def _text(value: object) -> str | None:
    """A non-empty stripped string, or None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class TimbalHook(BaseHook):
    """Interact with Timbal's runs API through an Airflow connection.

    :param timbal_conn_id: the connection to use (type ``timbal``).
    :param host: overrides the connection's host (a bare host or a URL).
    :param api_key: overrides the connection's password (the API key).
    :param org_id: overrides the connection's ``org_id`` extra.
    :param project_id: overrides the connection's ``project_id`` extra.
    :param timeout: seconds each HTTP request may take in all (connecting, sending and
        reading the whole response; at most 3600).
    :param max_retries: retries of 429/5xx/connection errors (default 4, see
        :data:`AIRFLOW_RETRY_POLICY`).

    The connection is read lazily, on the first call that needs the client. Use the
    hook as a context manager (or call :meth:`close`) to close the client's connections.
    """

    conn_name_attr: ClassVar[str] = "timbal_conn_id"
    default_conn_name: ClassVar[str] = DEFAULT_CONN_ID
    conn_type: ClassVar[str] = CONN_TYPE
    hook_name: ClassVar[str] = "Timbal"

    def __init__(
        self,
        timbal_conn_id: str = DEFAULT_CONN_ID,
        *,
        host: str | None = None,
        api_key: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        timeout: float = defaults.REQUEST_TIMEOUT,
        max_retries: int | None = None,
    ) -> None:
        super().__init__()
        self.timbal_conn_id = timbal_conn_id
        self._host = _text(host)
        self._api_key = Secret(api_key.strip()) if api_key and api_key.strip() else None
        if self._api_key:
            self._mask(self._api_key.get())
        self._org_id = _text(org_id)
        self._project_id = _text(project_id)
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: TimbalClient | None = None
        self._known_key: Secret | None = self._api_key
        """The API key once known (an argument, or the connection's password): what
        :meth:`describe` redacts."""

    def __repr__(self) -> str:
        return f"TimbalHook(timbal_conn_id={self.timbal_conn_id!r})"

    @staticmethod
    def _mask(secret: str) -> None:
        """Register the key, and the forms a server may echo it in (URL-encoded, base64),
        with Airflow's secrets masker."""
        from airflow.sdk.log import mask_secret

        for form in secret_forms(secret):
            mask_secret(form)

    def _connection_host(self, conn: Any) -> str | None:
        host = _text(conn.host)
        if host is None or "://" in host:
            return host
        if conn.port:
            host = f"{host}:{int(conn.port)}"
        scheme = _text(conn.schema)
        if scheme in ("http", "https"):
            host = f"{scheme}://{host}"
        return host

    def setting_names(self) -> dict[str, str]:
        """What this hook calls each of the core's settings, for messages.

        A setting given as a hook argument is called by that argument (``the org_id
        argument``);
        otherwise by the connection field it comes from (``the password of connection
        'timbal_default'``).
        """
        where = f"connection {self.timbal_conn_id!r}"
        fields = {
            "api_key": f"the password of {where}",
            "host": f"the host of {where}",
            "org_id": f"the org_id extra of {where}",
            "project_id": f"the project_id extra of {where}",
        }
        given = {
            "api_key": self._api_key,
            "host": self._host,
            "org_id": self._org_id,
            "project_id": self._project_id,
        }
        return {
            VARIABLES[setting]: f"the {setting} argument" if given[setting] else field
            for setting, field in fields.items()
        }

    def describe(self, error: BaseException) -> str:
        """``error``'s message for a task log, naming this hook's connection fields, with
        the API key redacted (whatever form a server echoed it in) and no control
        character left to act on a terminal.

        The core's :func:`~timbal_integrations.wording.describe` for Airflow with
        :meth:`setting_names`; Airflow's error for a connection that is not defined
        says how to define it.
        """
        key = self._known_key.get() if self._known_key is not None else None
        return terminal_safe(redact(_failures.describe(error, self), key))

    @contextlib.contextmanager
    def _airflow_terms(self) -> Iterator[None]:
        """Errors raised inside are restated in this connection's terms."""
        try:
            yield
        except TimbalError as error:
            raise restate(error, "orchestrator", names=self.setting_names()) from None

    def _restated(self, items: Iterator[T]) -> Iterator[T]:
        with self._airflow_terms():
            yield from items

    def _needs_connection(self) -> bool:
        return not (self._host and self._api_key and self._org_id and self._project_id)

    def resolve_config(self) -> ClientConfig:
        """Settings from the arguments, then the connection (never from TIMBAL_* variables).

        Raises :class:`~timbal_integrations.ConfigError` naming the connection field
        to fill in when the key, org or project is missing, and Airflow's
        ``AirflowNotFoundException`` when the connection is not defined.
        """
        conn = self.get_connection(self.timbal_conn_id) if self._needs_connection() else None
        return self._config(conn, conn.extra_dejson if conn is not None else {})

    async def aresolve_config(self) -> ClientConfig:
        """:meth:`resolve_config` for an event loop (a trigger): the connection is read
        without blocking the loop."""
        if not self._needs_connection():
            return self._config(None, {})
        from airflow.providers.common.compat.connection import (
            get_async_connection,
            get_async_extra_dejson,
        )

        conn = await get_async_connection(self.timbal_conn_id, hook=self)
        return self._config(conn, await get_async_extra_dejson(conn))

    def _config(self, conn: Any, extra: Mapping[str, Any]) -> ClientConfig:
        def extra_field(name: str) -> str | None:
            return _text(extra.get(name)) or _text(extra.get(f"extra__{CONN_TYPE}__{name}"))

        key = self._api_key
        if key is None and conn is not None and _text(conn.password):
            key = Secret(str(conn.password).strip())
            self._mask(key.get())
        if key is not None:
            self._known_key = key
        host = self._host or (self._connection_host(conn) if conn is not None else None)
        with self._airflow_terms():
            return resolve_config(
                key,
                host=host,
                org_id=self._org_id or extra_field("org_id"),
                project_id=self._project_id or extra_field("project_id"),
                env={},
            )

    def _new_client(self, cls: type[C], config: ClientConfig, max_retries: int | None) -> C:
        """A ``cls`` client of ``config`` with :data:`AIRFLOW_RETRY_POLICY` (its count
        replaced by ``max_retries``, else by the hook's ``max_retries``)."""
        return cls.from_config(
            config,
            timeout=self._timeout,
            retry_policy=AIRFLOW_RETRY_POLICY,
            max_retries=self._max_retries if max_retries is None else max_retries,
        )

    def get_conn(self) -> TimbalClient:
        """The hook's :class:`TimbalClient`, created on first use and reused after."""
        if self._client is None:
            self._client = self._new_client(TimbalClient, self.resolve_config(), None)
        return self._client

    async def get_async_conn(self, *, max_retries: int | None = None) -> AsyncTimbalClient:
        """A new :class:`AsyncTimbalClient` for this connection; the caller closes it
        (``await client.aclose()``, or ``async with``).

        ``max_retries`` overrides the hook's for this client (triggers retry on their
        own schedule, so they ask for few).
        """
        return self._new_client(AsyncTimbalClient, await self.aresolve_config(), max_retries)

    @property
    def client(self) -> TimbalClient:
        """Same as :meth:`get_conn`."""
        return self.get_conn()

    def close(self) -> None:
        """Close the client's connection pool (a later call opens a new client)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_runs(self, query: RunQuery | None = None, **options: Any) -> Iterator[Run]:
        """Every matching run across pages, lazily: :meth:`TimbalClient.list_runs`, whose
        keywords (``limit``, ``parallel``, filters) ``options`` are."""
        with self._airflow_terms():
            runs = self.get_conn().list_runs(query, **options)
        return self._restated(runs)

    def iter_pages(self, query: RunQuery | None = None, **filters: Any) -> Iterator[RunsPage]:
        """The pages of a listing, lazily (see :meth:`TimbalClient.iter_pages`)."""
        with self._airflow_terms():
            pages = self.get_conn().iter_pages(query, **filters)
        return self._restated(pages)

    def get_run(self, run_id: str) -> RunDetail:
        """One run by id or idempotency key (see :meth:`TimbalClient.get_run`)."""
        with self._airflow_terms():
            return self.get_conn().get_run(run_id)

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with one request for one page of runs.

        Returns ``(True, message)`` on success and ``(False, the API's own message)``
        on failure (Airflow's "Test" button shows it). The key is never in the message.
        """
        opened_here = self._client is None
        try:
            client = self.get_conn()
            page = client.get_runs_page()
        except Exception as error:  # Airflow's contract: report, never raise
            return False, self.describe(error)
        finally:
            if opened_here:
                self.close()
        config = client.config
        more = " and more" if page.next_page_token else ""
        return True, (
            f"Connected to {config.base_url}: org {config.org_id!r}, project "
            f"{config.project_id!r} ({len(page.runs)} run(s){more} visible)"
        )
