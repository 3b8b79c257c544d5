"""What the Dagster resource and the Prefect block share: :class:`ClientSettings`.

Both are settings objects (pydantic models) that hold a project's settings as fields,
hand out clients, and word the core's errors in terms of their own fields. The part
that does not depend on where the settings come from is this mixin, so that the two
front ends differ only in that: each supplies :meth:`ClientSettings.client_config`
(its fields resolved by :func:`~timbal_integrations.config.resolve_config`), and, when
its settings can come from elsewhere than its fields, :meth:`ClientSettings.setting_names`
(what it calls each of the core's settings).

Every message it words has the object's API key redacted (:meth:`ClientSettings.secret`,
in every form a server may echo it; each front end supplies how it holds its key) and
is terminal-safe (:func:`~timbal_integrations.sanitize.terminal_safe`: a server's text
cannot act on the terminal that shows an orchestrator's logs).

The mixin declares no pydantic field (its annotations exist for the type checker only),
so it adds methods, never settings, to the model it is mixed into; the two fields it
needs are declared by the model with :func:`timeout_field` and :func:`max_retries_field`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field

from . import defaults
from .client import AsyncTimbalClient, TimbalClient
from .config import VARIABLES
from .errors import TimbalError
from .limits import check_max_retries
from .sanitize import terminal_safe
from .wording import describe

if TYPE_CHECKING:
    from .config import ClientConfig

__all__ = ["ClientSettings", "max_retries_field", "timeout_field"]

_Client = TypeVar("_Client", TimbalClient, AsyncTimbalClient)
_Error = TypeVar("_Error", bound=BaseException)


def timeout_field() -> Any:
    """The ``timeout`` field of a settings model (``timeout: float = timeout_field()``)."""
    return Field(
        default=defaults.REQUEST_TIMEOUT,
        description=(
            "Seconds each HTTP request may take in all: connecting, sending and reading the "
            f"whole response (default {defaults.REQUEST_TIMEOUT:g}; at most "
            f"{defaults.MAX_REQUEST_TIMEOUT:g})."
        ),
    )


def max_retries_field() -> Any:
    """The ``max_retries`` field of a settings model (``max_retries: int | None =
    max_retries_field()``)."""
    return Field(
        default=None,
        description=(
            "Retries of a request that failed with 429, 5xx or a network error, honouring "
            f"Retry-After (default: the core's, {defaults.MAX_RETRIES}; at most "
            f"{defaults.MAX_RETRIES_LIMIT})."
        ),
    )


class ClientSettings:
    """Clients and error wording for a front end's settings object.

    The object has the fields ``timeout`` (each request's total deadline, in seconds)
    and ``max_retries`` (``None`` for the core's default) and implements
    :meth:`client_config` and :meth:`secret`. Every error it raises is the core's, its
    class and data kept, its message worded for an orchestrator's log in the object's
    own names (``TimbalResource.org_id: 'a/b' is not a valid id ...``).
    """

    if TYPE_CHECKING:  # the model's fields (declared there, not here)
        timeout: float
        max_retries: int | None

    def client_config(self) -> ClientConfig:
        """The resolved settings; raises the core's error, reworded by :meth:`restate`."""
        raise NotImplementedError

    def secret(self) -> str | None:
        """The API key this object would use, as text (None when it has none): what
        :meth:`describe` and :meth:`restate` redact. Reads no more than the object's
        fields (and the environment, where the front end reads it from there)."""
        raise NotImplementedError

    @classmethod
    def field_names(cls) -> dict[str, str]:
        """Each of the core's settings named by this class's field of the same name:
        ``TIMBAL_ORG_ID`` (the setting) is ``Owner.org_id``, and so are ``timeout`` and
        ``max_retries``; the library arguments (``org_id=...``) are not offered, since
        the fields are the way to set them."""
        owner = cls.__name__
        names = {"timeout": f"{owner}.timeout", "max_retries": f"{owner}.max_retries"}
        for setting, variable in VARIABLES.items():
            names[variable] = f"{owner}.{setting}"
            names[setting] = ""
        return names

    def setting_names(self) -> Mapping[str, str]:
        """What this object calls each of the core's settings (``names`` of
        :func:`~timbal_integrations.wording.describe`): :meth:`field_names` unless a
        front end reads settings from elsewhere too."""
        return self.field_names()

    def describe(self, error: BaseException) -> str:
        """``error``'s one-line message for an orchestrator's logs and failures, naming
        this object's fields, with the API key redacted and no control character left."""
        names = self.setting_names()
        return terminal_safe(describe(error, "orchestrator", names=names, secret=self.secret()))

    def restate(self, error: _Error) -> _Error:
        """``error`` itself (class and data kept), its message :meth:`describe`'s."""
        error.args = (self.describe(error),)
        return error

    def get_client(self) -> TimbalClient:
        """A new :class:`~timbal_integrations.TimbalClient`; close it (``with``) when done."""
        return self._client(TimbalClient)

    def get_async_client(self) -> AsyncTimbalClient:
        """A new :class:`~timbal_integrations.AsyncTimbalClient` (``async with`` it)."""
        return self._client(AsyncTimbalClient)

    def _client(self, cls: type[_Client]) -> _Client:
        config = self.client_config()
        try:
            return cls.from_config(
                config, timeout=self.timeout, max_retries=check_max_retries(self.max_retries)
            )
        except TimbalError as error:  # the timeout or max_retries field
            raise self.restate(error) from None
