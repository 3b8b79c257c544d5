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

from dagster import ConfigurableResource
from pydantic import Field

from timbal_integrations._orchestrators import ClientSettings, max_retries_field, timeout_field
from timbal_integrations.config import VARIABLES, ClientConfig, resolve_config
from timbal_integrations.errors import TimbalError

__all__ = ["TimbalResource"]


def _text(value: object) -> str | None:
    """A non-empty stripped string, or None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class TimbalResource(ConfigurableResource["TimbalResource"], ClientSettings):
    """Access to one Timbal project's runs API.

    Each field can be a literal or an ``EnvVar``; a field left out comes from Timbal's
    environment variable of the same meaning when :meth:`get_client` (or
    :meth:`get_async_client`) is called. :meth:`describe` words any of the core's errors
    in this resource's terms.

    Misconfiguration raises the core's :class:`~timbal_integrations.ConfigError` (or
    :class:`~timbal_integrations.QueryError` for ``max_retries``) with one line naming
    the field, e.g. ``TimbalResource.org_id: 'a/b' is not a valid id ...`` or
    ``no organisation: set TimbalResource.org_id (or TIMBAL_ORG_ID in the code
    location's environment)``.
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
    timeout: float = timeout_field()
    max_retries: int | None = max_retries_field()

    def setting_names(self) -> dict[str, str]:
        """What this resource calls each of the core's settings, for messages.

        A setting is called by its field (``TimbalResource.org_id``) when the field is
        set; when it is left out, by the variable it was read from, or, when that is
        unset too, by the field with the variable as the alternative.
        """
        names = self.field_names()
        for setting, variable in VARIABLES.items():
            field = names[variable]
            if _text(getattr(self, setting)) is not None:
                continue
            if _text(os.environ.get(variable)) is not None:
                names[variable] = f"{variable} (read because {field} is not set)"
            else:
                names[variable] = f"{field} (or {variable} in the code location's environment)"
        return names

    def secret(self) -> str | None:
        """The API key this resource uses (its field, else ``TIMBAL_API_KEY``), or None:
        what its messages redact."""
        return _text(self.api_key) or _text(os.environ.get(VARIABLES["api_key"]))

    def client_config(self) -> ClientConfig:
        """The resolved settings (the key as a :class:`~timbal_integrations.Secret`):
        the fields, then Timbal's environment variables for the fields left out.

        Raises :class:`~timbal_integrations.ConfigError` naming the field to fix.
        """
        try:
            return resolve_config(
                _text(self.api_key),
                host=_text(self.host),
                org_id=_text(self.org_id),
                project_id=_text(self.project_id),
            )
        except TimbalError as error:
            raise self.restate(error) from None
