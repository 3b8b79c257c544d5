"""Which failures the provider treats as final, and its one way of wording them.

What is Airflow's own lives here; the words for the core's errors come from the core:

- :data:`PERMANENT`: retrying the task cannot help (bad filters, bad configuration,
  401/403/404/400, an Airflow connection that does not exist): fail at once.
- :data:`TRANSIENT`: the API may answer later (no answer, 429, 5xx, a malformed body):
  wait and try again, within the task's or the sensor's bounds.
- :func:`describe`: a failure's one line for a task log. A core error is worded by
  :func:`timbal_integrations.wording.describe` for the ``"airflow"`` audience, naming
  what the hook's connection calls each setting (:meth:`TimbalHook.setting_names
  <airflow_provider.hooks.timbal.TimbalHook.setting_names>`); the only wording of the
  provider's own is for Airflow's error about a connection that is not defined.

Errors are told apart by their class, never by their text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from airflow.sdk.exceptions import AirflowNotFoundException

from timbal_integrations import wording
from timbal_integrations.errors import (
    PERMANENT_ERRORS,
    APIConnectionError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

from . import CONN_TYPE

if TYPE_CHECKING:
    from .hooks.timbal import TimbalHook

__all__ = ["PERMANENT", "TRANSIENT", "describe"]

PERMANENT: Final[tuple[type[BaseException], ...]] = (*PERMANENT_ERRORS, AirflowNotFoundException)
"""Errors that a retry of the task cannot fix: the core's (:data:`~timbal_integrations.
errors.PERMANENT_ERRORS`) and Airflow's for a connection that is not defined."""

TRANSIENT: Final[tuple[type[BaseException], ...]] = (
    APIConnectionError,
    RateLimitError,
    ServerError,
    ResponseValidationError,
)
"""Errors after which the API may well answer later."""


def describe(error: BaseException, hook: TimbalHook) -> str:
    """The one-line message of ``error`` for a task log, in ``hook``'s connection's terms."""
    if isinstance(error, AirflowNotFoundException):
        conn_id = hook.timbal_conn_id
        env = "AIRFLOW_CONN_" + conn_id.upper()
        return (
            f"the Airflow connection {conn_id!r} is not defined: create it with type "
            f"{CONN_TYPE!r} (host = API host, password = API key, extra org_id and "
            f'project_id), e.g. {env}=\'{{"conn_type": "{CONN_TYPE}", "host": '
            '"api.timbal.ai", "password": "<key>", "extra": {"org_id": "<org>", '
            '"project_id": "<project>"}}\''
        )
    return wording.describe(error, "airflow", names=hook.setting_names())
