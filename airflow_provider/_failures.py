"""What the provider tells Airflow users when something fails, and what retrying can fix.

One place for the wording of every failure the hook, operator, sensor and triggers report
(one line each), so that the core's audience-aware descriptions can be wired in here
alone. Errors are told apart by their class, never by their text.

- :data:`PERMANENT`: retrying the task cannot help (bad filters, bad configuration,
  401/403/404/400, an Airflow connection that does not exist): fail at once.
- :data:`TRANSIENT`: the API may answer later (no answer, 429, 5xx, a malformed body):
  wait and try again, within the task's or the sensor's bounds.
"""

from __future__ import annotations

import json
from typing import Any, Final

from airflow.sdk.exceptions import AirflowNotFoundException

from timbal_integrations.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)

from . import CONN_TYPE

__all__ = [
    "PERMANENT",
    "TRANSIENT",
    "describe",
    "one_line",
    "status_detail_message",
]

PERMANENT: Final = (
    QueryError,
    ConfigError,
    BadRequestError,
    AuthenticationError,
    PermissionDeniedError,
    NotFoundError,
    AirflowNotFoundException,
)
"""Errors that a retry of the task cannot fix."""

TRANSIENT: Final = (APIConnectionError, RateLimitError, ServerError, ResponseValidationError)
"""Errors after which the API may well answer later."""

_MAX_TEXT: Final = 300


def one_line(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(error: BaseException, conn_id: str) -> str:
    """The one-line message for ``error``, naming ``conn_id`` where the fix is there."""
    if isinstance(error, AirflowNotFoundException):
        env = "AIRFLOW_CONN_" + conn_id.upper()
        return (
            f"the Airflow connection {conn_id!r} is not defined: create it with type "
            f"{CONN_TYPE!r} (host = API host, password = API key, extra org_id and "
            f'project_id), e.g. {env}=\'{{"conn_type": "{CONN_TYPE}", "host": '
            '"api.timbal.ai", "password": "<key>", "extra": {"org_id": "<org>", '
            '"project_id": "<project>"}}\''
        )
    return one_line(str(error) or type(error).__name__, 1000)


def status_detail_message(status_detail: Any) -> str:
    """The human part of a run's ``status_detail`` (free-form in the API), on one line.

    Looks for ``message`` (top level or under ``error``), then ``reason``, then
    ``detail``; otherwise shows the value itself as compact JSON. Empty when there is
    nothing to show.
    """
    if status_detail is None or status_detail == {} or status_detail == "":
        return ""
    if isinstance(status_detail, str):
        return one_line(status_detail)
    if isinstance(status_detail, dict):
        error = status_detail.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            kind = error.get("type")
            if isinstance(message, str) and message:
                prefix = f"{kind}: " if isinstance(kind, str) and kind else ""
                return one_line(prefix + message)
        for key in ("message", "reason", "detail"):
            value = status_detail.get(key)
            if isinstance(value, str) and value:
                return one_line(value)
        if isinstance(error, str) and error:
            return one_line(error)
    try:
        text = json.dumps(status_detail, sort_keys=True, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(status_detail)
    return one_line(text)
