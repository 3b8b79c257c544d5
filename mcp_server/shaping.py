"""Shaping results for a model to read: compact rows, the text rendering, the cursor.

Nothing here talks to the network. The functions turn the core's typed runs into small
JSON-ready dicts (nulls left out), render a page of runs as a compact table, cap long
breakdowns, and encode the opaque ``list_runs`` cursor.

The cursor is URL-safe base64 (unpadded) of a short JSON array: the API page token of
the page holding the next run, the position of that run inside the page, a fingerprint
of the filters, and the resolved time window. Continuing from it re-requests that page
with the same parameters and skips the runs already returned, so paging never skips or
repeats a run; pinning the window keeps a relative ``since`` such as ``24h`` from
drifting between calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from timbal_integrations import defaults
from timbal_integrations.errors import QueryError
from timbal_integrations.models import Run, RunDetail
from timbal_integrations.query import format_time

__all__ = [
    "CURSOR_VERSION",
    "Cursor",
    "cap_breakdowns",
    "compact_json",
    "detail_dict",
    "filters_fingerprint",
    "render_runs_text",
    "run_row",
]

CURSOR_VERSION: Final = 1
_MAX_CURSOR_CHARS: Final = defaults.MCP_MAX_CURSOR_CHARS
_BAD_CURSOR: Final = (
    "is not a cursor returned by list_runs; pass next_cursor back unchanged, "
    "or leave cursor out to start from the first run"
)


def compact_json(value: Any) -> str:
    """JSON without whitespace (what the text content of a tool result carries)."""
    return orjson.dumps(value).decode()


def run_row(run: Run) -> dict[str, Any]:
    """The compact row of a run: the fields a model needs, nulls left out."""
    user: dict[str, Any] = {"id": run.user.id}
    if run.user.name:
        user["name"] = run.user.name
    if run.user.email:
        user["email"] = run.user.email
    workforce: dict[str, Any] = {"id": run.workforce.id}
    if run.workforce.name:
        workforce["name"] = run.workforce.name
    row: dict[str, Any] = {
        "id": run.id,
        "created_at": format_time(run.created_at),
        "status": run.status,
    }
    if run.duration_ms is not None:
        row["duration_ms"] = run.duration_ms
    row["cost_usd"] = run.cost_usd
    row["user"] = user
    row["workforce"] = workforce
    if run.last_reaction_sentiment is not None:
        row["sentiment"] = run.last_reaction_sentiment
    if run.group_id is not None:
        row["group_id"] = run.group_id
    if run.parent_id is not None:
        row["parent_id"] = run.parent_id
    return row


def _drop_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def detail_dict(detail: RunDetail, *, max_chars: int = defaults.MCP_DETAIL_CHARS) -> dict[str, Any]:
    """A run's detail fields, JSON-ready, nulls left out, bounded to about ``max_chars``.

    ``last_reaction_sentiment`` is renamed ``sentiment`` (as in list rows). Fields the
    API adds are kept. When the JSON would exceed ``max_chars``, the largest of
    ``trace``, ``status_detail`` and the unknown fields are cut to a preview string and
    named in ``truncated``.
    """
    data = detail.to_json_dict()
    data["created_at"] = format_time(detail.created_at)
    data["sentiment"] = data.pop("last_reaction_sentiment", None)
    if isinstance(data.get("user"), dict):
        data["user"] = _drop_nulls(data["user"])
    if isinstance(data.get("workforce"), dict):
        data["workforce"] = _drop_nulls(data["workforce"])
    data = _drop_nulls(data)
    data.pop("truncated", None)
    fixed = {
        "id",
        "idempotency_key",
        "created_at",
        "status",
        "duration_ms",
        "cost_usd",
        "cost_credits",
        "user",
        "workforce",
        "sentiment",
        "group_id",
        "parent_id",
    }
    truncated: list[str] = []
    while len(compact_json(data)) > max_chars:
        sizes = {k: len(compact_json(v)) for k, v in data.items() if k not in fixed}
        if not sizes:
            break
        name = max(sizes, key=lambda k: sizes[k])
        text = compact_json(data[name])
        budget = max(200, max_chars // 4)
        if len(text) <= budget:
            break
        data[name] = text[:budget] + f"... [{len(text) - budget} more characters]"
        truncated.append(name)
    if truncated:
        data["truncated"] = truncated
    return data


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return text.replace("|", "/").replace("\n", " ")


_BARS: Final = 9  # separators in a row of the runs table


def render_runs_text(result: Mapping[str, Any]) -> str:
    """Render a ``list_runs`` result as compact text: a header, a table, legends, a hint.

    Users appear in rows by email and workforces by name; the legends below the table
    give their ids (for the ``user_id`` and ``workforce_id`` filters). A ``group_id`` of
    ``=id`` marks a run that starts its own thread. The cursor is repeated in the text,
    for clients that show a model only the text.
    """
    runs: Sequence[Mapping[str, Any]] = result["runs"]
    filters: Mapping[str, Any] = result["applied_filters"]
    sort = f"{filters['sort_by']} {filters['sort_order']}"
    shown = ", ".join(f"{k}={v}" for k, v in filters.items() if k not in ("sort_by", "sort_order"))
    lines = [
        f"{result['returned']} run(s), sorted by {sort}; filters: {shown or 'none'}"
        + ("; more available" if result.get("next_cursor") else "; end of results")
    ]
    if "scanned" in result:
        bound = " (scan bound reached)" if result.get("scan_bound_hit") else ""
        lines.append(f"user_email matched while scanning {result['scanned']} run(s){bound}")
    users: dict[str, tuple[str, str]] = {}
    forces: dict[str, set[str]] = {}
    if runs:
        lines.append(
            "id|created_at|status|duration_ms|cost_usd|user|workforce|sentiment|group_id|parent_id"
        )
    for row in runs:
        user = row["user"]
        workforce = row["workforce"]
        user_label = user.get("email") or user["id"]
        users.setdefault(user_label, (user["id"], user.get("name") or ""))
        force_label = workforce.get("name") or workforce["id"]
        forces.setdefault(force_label, set()).add(workforce["id"])
        group = row.get("group_id")
        cells = (
            row["id"],
            row["created_at"],
            row["status"],
            row.get("duration_ms"),
            row["cost_usd"],
            user_label,
            force_label,
            row.get("sentiment"),
            "=id" if group is not None and group == row["id"] else group,
            row.get("parent_id"),
        )
        line = "|".join(["-" if v is None or v == "" else str(v) for v in cells])
        if line.count("|") != _BARS or "\n" in line:  # a value holds | or a newline
            line = "|".join(map(_cell, cells))
        lines.append(line)
    if users:
        lines.append(
            "users: "
            + "; ".join(
                f"{label} = {uid}" + (f" ({name})" if name else "")
                for label, (uid, name) in users.items()
            )
        )
    if forces:
        lines.append(
            "workforces: "
            + "; ".join(f"{label} = {', '.join(sorted(ids))}" for label, ids in forces.items())
        )
    if result.get("next_cursor"):
        lines.append(f"next_cursor: {result['next_cursor']}")
    if result.get("hint"):
        lines.append(str(result["hint"]))
    return "\n".join(lines)


def _top(buckets: list[dict[str, Any]], top_n: int) -> tuple[list[dict[str, Any]], Any]:
    if len(buckets) <= top_n:
        return buckets, None
    kept, rest = buckets[:top_n], buckets[top_n:]
    return kept, {
        "buckets": len(rest),
        "count": sum(int(b["count"]) for b in rest),
        "cost_usd": sum(float(b["cost_usd"]) for b in rest),
    }


def cap_breakdowns(
    summary: dict[str, Any], top_n: int
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Keep the ``top_n`` largest buckets of each breakdown; report what was left out.

    Buckets come largest first from the core, so the kept ones are the biggest. Returns
    the capped summary and, per capped breakdown, ``{buckets, count, cost_usd}`` of the
    rest.
    """
    capped = dict(summary)
    others: dict[str, dict[str, Any]] = {}
    for name in ("by_status", "by_user", "by_workforce", "by_sentiment"):
        kept, rest = _top(list(summary[name]), top_n)
        capped[name] = kept
        if rest is not None:
            others[name] = rest
    return capped, others


def filters_fingerprint(filters: Mapping[str, Any]) -> str:
    """A short hash of normalized filters, to tell whether a cursor belongs to them."""
    canonical = orjson.dumps(dict(filters), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    """Where the next ``list_runs`` call resumes.

    ``page_token`` is the API token of the page holding the next run (None for the
    first page), ``offset`` that run's index inside the page, ``fingerprint`` the
    filters' fingerprint, and ``since_ms``/``until_ms`` the window pinned on the first
    call.
    """

    page_token: str | None
    offset: int
    fingerprint: str
    since_ms: int | None
    until_ms: int | None

    def encode(self) -> str:
        """The opaque string handed to the model."""
        raw = orjson.dumps(
            [
                CURSOR_VERSION,
                self.page_token,
                self.offset,
                self.fingerprint,
                self.since_ms,
                self.until_ms,
            ]
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor; anything that is not one is a :class:`QueryError` on ``cursor``."""
        if not isinstance(text, str) or not text.strip() or len(text) > _MAX_CURSOR_CHARS:
            raise QueryError("cursor", _BAD_CURSOR)
        value = text.strip()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = orjson.loads(raw)
        except (binascii.Error, ValueError):
            raise QueryError("cursor", _BAD_CURSOR) from None
        if not isinstance(data, list) or len(data) != 6 or data[0] != CURSOR_VERSION:
            raise QueryError("cursor", _BAD_CURSOR)
        _, token, offset, fingerprint, since_ms, until_ms = data
        valid = (
            (token is None or (isinstance(token, str) and token != ""))
            and _is_count(offset)
            and isinstance(fingerprint, str)
            and (since_ms is None or _is_count(since_ms))
            and (until_ms is None or _is_count(until_ms))
        )
        if not valid:
            raise QueryError("cursor", _BAD_CURSOR)
        return cls(token, offset, fingerprint, since_ms, until_ms)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
