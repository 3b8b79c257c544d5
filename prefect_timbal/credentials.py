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

from typing import Any, ClassVar, Final, Self, TypeVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, model_validator

from timbal_integrations import AsyncTimbalClient, ConfigError, TimbalClient
from timbal_integrations.config import ClientConfig, resolve_config

from ._errors import block_field_error, not_set

__all__ = ["TimbalCredentials"]

_REQUIRED: Final = ("api_key", "org_id", "project_id")
# Valid values for the other fields while the core checks one field on its own.
_VALID: Final[dict[str, str | None]] = {
    "api_key": "k",
    "org_id": "o",
    "project_id": "p",
    "host": None,
}

_Client = TypeVar("_Client", TimbalClient, AsyncTimbalClient)


def _blank(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or (isinstance(value, str) and not value.strip())


class TimbalCredentials(Block):
    """The API key, organisation, project and host of one Timbal project.

    Bad or missing values raise :class:`~timbal_integrations.ConfigError` with one line
    naming the block field, e.g. ``TimbalCredentials.org_id: not set; ...``.
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
        default="https://api.timbal.ai",
        description="The API host (api.timbal.ai) or URL (http://127.0.0.1:8000).",
    )
    timeout: float = Field(default=30.0, description="Seconds to wait for each HTTP response.")
    max_retries: int | None = Field(
        default=None,
        description="Retries of 429, 5xx and network errors (default: the core's, 6).",
    )

    @model_validator(mode="before")
    @classmethod
    def _required(cls, values: Any) -> Any:
        """A missing or blank field is a one-line error naming it, not a ValidationError."""
        if isinstance(values, dict):
            for name in _REQUIRED:
                if _blank(values.get(name)):
                    raise not_set(cls.__name__, name)
        return values

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self.client_config()
        return self

    def client_config(self) -> ClientConfig:
        """The resolved settings (the key as a :class:`~timbal_integrations.Secret`).

        Raises :class:`~timbal_integrations.ConfigError` naming the block field to fix.
        """
        block = type(self).__name__
        values: dict[str, str | None] = {
            "api_key": self.api_key.get_secret_value(),
            "org_id": self.org_id,
            "project_id": self.project_id,
            "host": self.host,
        }
        for name, value in values.items():  # the core checks each field on its own
            try:
                resolve_config(**{**_VALID, name: value}, env={})
            except ConfigError as exc:
                raise block_field_error(block, name, exc) from None
        return resolve_config(**values, env={})

    def get_client(self) -> TimbalClient:
        """A new :class:`~timbal_integrations.TimbalClient`; close it (``with``) when done."""
        return self._client(TimbalClient)

    def get_async_client(self) -> AsyncTimbalClient:
        """A new :class:`~timbal_integrations.AsyncTimbalClient` (``async with`` it)."""
        return self._client(AsyncTimbalClient)

    def _client(self, cls: type[_Client]) -> _Client:
        config = self.client_config()
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
        except ConfigError as exc:  # the other settings passed: the timeout is left
            raise block_field_error(type(self).__name__, "timeout", exc) from None
        except ValueError as exc:  # the retry policy's
            raise block_field_error(type(self).__name__, "max_retries", exc) from None
