"""A run's own parts as ``get_run`` shows them: its fields, its reactions, the error of a
span, and the URIs of its resources (where it is uncut)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from timbal_integrations import defaults
from timbal_integrations.models import RunDetail
from timbal_integrations.query import format_time

from .values import drop_nulls, preview

if TYPE_CHECKING:
    from timbal_integrations.models import Reaction
    from timbal_integrations.trace import Span

__all__ = ["MESSAGE_CHARS", "error_text", "reaction_rows", "resource_uris", "run_fields"]

MESSAGE_CHARS: Final = 1_000
"""How much of a status message, an error or an unknown field a result shows."""
_FIXED: Final = frozenset(RunDetail.model_fields)
"""The run's fields the shaped result gives its own place (others are shown as sent)."""


def resource_uris(run_id: str) -> dict[str, str]:
    """The resources of a run: its full JSON and its full trace."""
    quoted = quote(run_id, safe="")
    return {"run": f"timbal://runs/{quoted}", "trace": f"timbal://runs/{quoted}/trace"}


def run_fields(detail: RunDetail) -> tuple[dict[str, Any], list[str]]:
    """The run's own fields (nulls left out, unknown fields kept and previewed), and
    notes on what was cut."""
    notes: list[str] = []
    data = detail.to_json_dict()
    out: dict[str, Any] = {
        "id": detail.id,
        "idempotency_key": detail.idempotency_key,
        "created_at": format_time(detail.created_at),
        "status": detail.status,
        "duration_ms": detail.duration_ms,
        "cost_usd": detail.cost_usd,
        "cost_credits": detail.cost_credits,
        "user": drop_nulls(data["user"]),
        "workforce": drop_nulls(data["workforce"]) if data.get("workforce") else None,
        "sentiment": detail.last_reaction_sentiment,
        "group_id": detail.group_id,
        "parent_id": detail.parent_id,
    }
    info = detail.status_info
    if info is not None:
        message, cut = preview(info.message, MESSAGE_CHARS)
        out["status_detail"] = drop_nulls(
            {"code": info.code, "reason": info.reason, "message": message}
        )
        if cut:
            notes.append(f"status_detail.message cut to {MESSAGE_CHARS} characters")
    elif detail.status_detail is not None:
        out["status_detail"], cut = preview(detail.status_detail, MESSAGE_CHARS)
        if cut:
            notes.append(f"status_detail cut to {MESSAGE_CHARS} characters")
    for key, value in data.items():
        if key in _FIXED or value is None:
            continue
        shown, cut = preview(value, MESSAGE_CHARS)
        out[key] = shown
        if cut:
            notes.append(f"{key} cut to {MESSAGE_CHARS} characters")
    return drop_nulls(out), notes


def reaction_rows(reactions: Sequence[Reaction]) -> tuple[list[dict[str, Any]], int]:
    """The reactions as rows (feedback previewed), and how many feedbacks were cut."""
    rows = []
    cut_count = 0
    for reaction in reactions:
        feedback, cut = preview(reaction.feedback, defaults.MCP_FEEDBACK_CHARS)
        cut_count += cut
        user = drop_nulls(
            {"id": reaction.user.id, "name": reaction.user.name, "email": reaction.user.email}
        )
        rows.append(
            drop_nulls(
                {
                    "created_at": format_time(reaction.created_at),
                    "sentiment": reaction.sentiment,
                    "user": user,
                    "feedback": feedback,
                }
            )
        )
    return rows, cut_count


def error_text(span: Span) -> str | None:
    """What went wrong in ``span``: its error's summary, else its failed status."""
    if span.error is not None and span.error.summary():
        return span.error.summary()
    if span.failed and span.status is not None:
        parts = [p for p in (span.status.reason, span.status.message) if p]
        return ": ".join(parts) or None
    return None
