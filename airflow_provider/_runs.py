"""What the run sensor and its trigger share: statuses, outcomes, the run's summary, and
how a run that ended is told in a task log (its status and ``status_detail``'s reason).

A run is *finished* when its status is one of the success statuses (the sensor succeeds)
or one of the failure statuses (the sensor fails); any other status (``running``, or a
status Timbal may add later, such as a queue state) means "not yet".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final, Literal

from timbal_integrations.errors import QueryError
from timbal_integrations.models import RunDetail

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_SUCCESS_STATUSES",
    "Outcome",
    "check_statuses",
    "end_message",
    "not_found_message",
    "one_line",
    "outcome",
    "run_name",
    "run_summary",
    "status_detail_message",
]

DEFAULT_SUCCESS_STATUSES: Final = ("success",)
DEFAULT_FAILURE_STATUSES: Final = ("error", "cancelled")

Outcome = Literal["success", "failure", "waiting"]

_MAX_TEXT: Final = 300


def one_line(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


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


def _statuses(field: str, values: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise QueryError(field, f"{value!r} is not a status; expected e.g. 'success'")
        if value.strip() not in out:
            out.append(value.strip())
    return tuple(out)


def check_statuses(
    success: Iterable[str] | str, failure: Iterable[str] | str | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validated (success, failure) status lists.

    ``failure=None`` means ``error`` and ``cancelled``, less any of them listed as
    success. ``running`` can be neither: it is what the sensor waits on.
    """
    ok = _statuses("success_statuses", success)
    if not ok:
        raise QueryError("success_statuses", "empty; expected at least one status, e.g. 'success'")
    if failure is None:
        bad = tuple(s for s in DEFAULT_FAILURE_STATUSES if s not in ok)
    else:
        bad = _statuses("failure_statuses", failure)
        both = sorted(set(ok) & set(bad))
        if both:
            raise QueryError(
                "failure_statuses", f"{both[0]!r} is also a success status; list it once"
            )
    for field, values in (("success_statuses", ok), ("failure_statuses", bad)):
        if "running" in values:
            raise QueryError(field, "'running' is what the sensor waits on; it cannot end it")
    return ok, bad


def outcome(status: str, success: Iterable[str], failure: Iterable[str]) -> Outcome:
    """``success``, ``failure`` or ``waiting`` for a run in ``status``."""
    if status in success:
        return "success"
    if status in failure:
        return "failure"
    return "waiting"


def run_name(asked: str, detail: RunDetail | None = None) -> str:
    """``run '01J...'``, or ``run '01J...' (idempotency key 'k')`` when asked by key."""
    if detail is None or detail.id == asked:
        return f"Timbal run {asked!r}"
    return f"Timbal run {detail.id!r} (idempotency key {asked!r})"


def end_message(asked: str, detail: RunDetail) -> str:
    """One line for a run that ended in a failure status."""
    reason = status_detail_message(detail.status_detail)
    text = f"{run_name(asked, detail)} ended with status {one_line(detail.status, 60)!r}"
    return f"{text}: {reason}" if reason else text


def not_found_message(asked: str, described: str) -> str:
    """One line for a run that was never found: the run, then the API's 404 as
    :func:`~airflow_provider._failures.describe` words it (``described``)."""
    return f"{run_name(asked)} was not found: {described}"


def run_summary(detail: RunDetail) -> dict[str, Any]:
    """The small JSON-ready view of a run that the sensor returns (its XCom value)."""
    data = detail.to_json_dict()
    keep = (
        "id",
        "idempotency_key",
        "status",
        "created_at",
        "duration_ms",
        "cost_usd",
        "cost_credits",
        "group_id",
        "parent_id",
        "last_reaction_sentiment",
        "status_detail",
    )
    return {key: data.get(key) for key in keep}
