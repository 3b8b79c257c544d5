"""``TimbalResource``: Timbal's configuration as a Dagster resource, and its clients.

::

    from dagster import Definitions, EnvVar
    from dagster_timbal import TimbalResource

    defs = Definitions(
        resources={
            "timbal": TimbalResource(
                api_key=EnvVar("TIMBAL_API_KEY"),
                org_id=EnvVar("TIMBAL_ORG_ID"),
                project_id=EnvVar("TIMBAL_PROJECT_ID"),
            )
        },
        ...,
    )

A field left out is read from Timbal's own environment variable when a client is made
(``TIMBAL_API_KEY``, ``TIMBAL_ORG_ID``, ``TIMBAL_PROJECT_ID``, ``TIMBAL_API_HOST``).
Give the key as ``EnvVar("TIMBAL_API_KEY")`` (or leave it out): Dagster then records and
shows only the variable's name. A key written as a literal string is marked secret, so
Dagster's UI shows ``********`` in its place; it is never in a repr, a log line, an
error or asset metadata.
"""

from __future__ import annotations

import os
from typing import Final, TypeVar

from dagster import ConfigurableResource
from pydantic import Field

from timbal_integrations import AsyncTimbalClient, ConfigError, TimbalClient
from timbal_integrations.config import ClientConfig, resolve_config

from ._errors import field_error, missing

__all__ = ["TimbalResource"]

_VARIABLES: Final = {
    "api_key": "TIMBAL_API_KEY",
    "org_id": "TIMBAL_ORG_ID",
    "project_id": "TIMBAL_PROJECT_ID",
    "host": "TIMBAL_API_HOST",
}
# Valid values for the other fields while one field is checked on its own by the core.
_STAND_INS: Final[dict[str, str | None]] = {
    "api_key": "k",
    "org_id": "o",
    "project_id": "p",
    "host": None,
}

_Client = TypeVar("_Client", TimbalClient, AsyncTimbalClient)


def _text(value: object) -> str | None:
    """A non-empty stripped string, or None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class TimbalResource(ConfigurableResource["TimbalResource"]):
    """Access to one Timbal project's runs API.

    Each field can be a literal or an ``EnvVar``; a field left out comes from Timbal's
    environment variable of the same meaning when :meth:`get_client` is called.
    Misconfiguration raises :class:`~timbal_integrations.ConfigError` with one line
    naming the field, e.g. ``TimbalResource.org_id: not set; ...``.
    """

    api_key: str | None = Field(
        default=None,
        description=(
            "The Timbal API key. Use EnvVar('TIMBAL_API_KEY'), or leave it out to read "
            "TIMBAL_API_KEY; a literal is masked in the UI."
        ),
        repr=False,
        json_schema_extra={"dagster__is_secret": True},
    )
    org_id: str | None = Field(
        default=None, description="The organisation id (default: TIMBAL_ORG_ID)."
    )
    project_id: str | None = Field(
        default=None, description="The project id (default: TIMBAL_PROJECT_ID)."
    )
    host: str | None = Field(
        default=None,
        description=(
            "The API host, such as api.timbal.ai, or a URL such as http://127.0.0.1:8000 "
            "(default: TIMBAL_API_HOST, else https://api.timbal.ai)."
        ),
    )
    timeout: float = Field(default=30.0, description="Seconds to wait for each HTTP response.")
    max_retries: int | None = Field(
        default=None,
        description=(
            "Retries of a request that failed with 429, 5xx or a network error, honouring "
            "Retry-After (default: the core's, 6)."
        ),
    )

    def client_config(self) -> ClientConfig:
        """The resolved settings (the key as a :class:`~timbal_integrations.Secret`).

        Raises :class:`~timbal_integrations.ConfigError` naming the field to fix.
        """
        owner = type(self).__name__
        values: dict[str, str | None] = {}
        for name, variable in _VARIABLES.items():
            value = _text(getattr(self, name)) or _text(os.environ.get(variable))
            if value is None and name != "host":
                raise missing(owner, name, variable)
            values[name] = value
        for name, value in values.items():  # each field alone, so an error names its field
            try:
                resolve_config(**{**_STAND_INS, name: value}, env={})
            except ConfigError as exc:
                raise field_error(owner, name, exc) from None
        return resolve_config(**values, env={})

    def get_client(self) -> TimbalClient:
        """A new :class:`~timbal_integrations.TimbalClient`; close it (``with``) when done."""
        return self._client(TimbalClient)

    def get_async_client(self) -> AsyncTimbalClient:
        """A new :class:`~timbal_integrations.AsyncTimbalClient` (``async with`` it)."""
        return self._client(AsyncTimbalClient)

    def _client(self, cls: type[_Client]) -> _Client:
        config = self.client_config()
        owner = type(self).__name__
        try:
            return cls(
                config.api_key,
                host=config.base_url,
                org_id=config.org_id,
                project_id=config.project_id,
                timeout=self.timeout,
                max_retries=self.max_retries,
                env={},
            )
        except ConfigError as exc:  # the settings passed: only the timeout is left
            raise field_error(owner, "timeout", exc) from None
        except ValueError as exc:  # the retry policy's
            raise field_error(owner, "max_retries", exc) from None
