"""What the run sensor and its trigger share: statuses, outcomes and the run's summary.

A run is *finished* when its status is one of the success statuses (the sensor succeeds)
or one of the failure statuses (the sensor fails); any other status (``running``, or a
status Timbal may add later, such as a queue state) means "not yet".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from timbal_integrations.errors import QueryError
from timbal_integrations.models import RunDetail

from ._failures import one_line, status_detail_message

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_SUCCESS_STATUSES",
    "Outcome",
    "check_statuses",
    "end_message",
    "outcome",
    "run_name",
    "run_summary",
]

DEFAULT_SUCCESS_STATUSES: Final = ("success",)
DEFAULT_FAILURE_STATUSES: Final = ("error", "cancelled")

Outcome = Literal["success", "failure", "waiting"]


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
