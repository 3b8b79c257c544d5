"""``TimbalCredentials``: a Prefect block holding a Timbal project's API settings.

::

    from prefect_timbal import TimbalCredentials

    TimbalCredentials(
        api_key="...", org_id="my-org", project_id="my-project"
    ).save("timbal")                                # once (or in the UI, under Blocks)

    credentials = TimbalCredentials.load("timbal")  # in a flow
    with credentials.get_client() as client:
        ...

Register the block type with the Prefect API (so the UI can create one) with
``prefect block register -m prefect_timbal``. The key is a ``SecretStr``: Prefect stores
it as a secret, and shows ``********`` in the UI, in reprs and in flow-run parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from timbal_integrations._orchestrators import ClientSettings, max_retries_field, timeout_field
from timbal_integrations.config import DEFAULT_HOST, ClientConfig, resolve_config
from timbal_integrations.errors import TimbalError
from timbal_integrations.wording import restate

__all__ = ["TimbalCredentials"]


def _plain(value: object) -> Any:
    """A field's raw value for the core (a ``SecretStr``'s string)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _given(value: object) -> Any:
    """A required field's raw value for the core, None when blank (the core then reports
    the setting as missing)."""
    value = _plain(value)
    return None if isinstance(value, str) and not value.strip() else value


class TimbalCredentials(Block, ClientSettings):
    """The API key, organisation, project and host of one Timbal project.

    :meth:`get_client` and :meth:`get_async_client` give clients; :meth:`describe` words
    any of the core's errors in the block's terms (the block reads no environment
    variable: its fields are its settings). Bad or missing values raise the core's
    :class:`~timbal_integrations.ConfigError` with one line naming the block field, e.g.
    ``no organisation: set TimbalCredentials.org_id`` or ``TimbalCredentials.host:
    'ftp://h' has scheme 'ftp'; expected http or https``.
    """

    _block_type_name: ClassVar[str | None] = "Timbal Credentials"
    _block_type_slug: ClassVar[str | None] = "timbal-credentials"
    _description: ClassVar[str | None] = (
        "The API key, organisation and project of a Timbal project, for reading its run "
        "history (timbal-integrations)."
    )
    _code_example: ClassVar[str | None] = """
```python
from prefect_timbal import TimbalCredentials

credentials = TimbalCredentials.load("BLOCK_NAME")
with credentials.get_client() as client:
    for run in client.list_runs(status="error", since="24h"):
        print(run.id, run.cost_usd)
```
"""

    api_key: SecretStr = Field(description="The Timbal API key.")
    org_id: str = Field(description="The organisation id.")
    project_id: str = Field(description="The project id.")
    host: str = Field(
        default=DEFAULT_HOST,
        description="The API host (api.timbal.ai) or URL (http://127.0.0.1:8000).",
    )
    timeout: float = timeout_field()
    max_retries: int | None = max_retries_field()

    @classmethod
    def _resolve(cls, values: dict[str, Any]) -> ClientConfig:
        """The core's settings of ``values`` (the fields), or its error, restated."""
        try:
            return resolve_config(
                _given(values.get("api_key")),
                host=_plain(values.get("host", DEFAULT_HOST)),
                org_id=_given(values.get("org_id")),
                project_id=_given(values.get("project_id")),
                env={},
            )
        except TimbalError as error:  # no instance yet: the block's names, worded alike
            names = cls.field_names()
            key = _given(values.get("api_key"))
            secret = key if isinstance(key, str) else None
            raise restate(error, "orchestrator", names=names, secret=secret) from None

    @model_validator(mode="before")
    @classmethod
    def _valid(cls, values: Any) -> Any:
        """The core checks the settings before pydantic does: a missing, blank or bad
        field is the core's one-line error naming it, not a ``ValidationError``."""
        if isinstance(values, dict):
            cls._resolve(values)
        return values

    def secret(self) -> str | None:
        """The block's API key (what its messages redact), or None when blank."""
        key = _given(self.api_key)
        return key if isinstance(key, str) else None

    def client_config(self) -> ClientConfig:
        """The resolved settings (the key as a :class:`~timbal_integrations.Secret`).

        Raises :class:`~timbal_integrations.ConfigError` naming the block field to fix.
        """
        return self._resolve(
            {
                "api_key": self.api_key,
                "org_id": self.org_id,
                "project_id": self.project_id,
                "host": self.host,
            }
        )
