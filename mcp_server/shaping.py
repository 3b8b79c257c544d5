"""Shaping results for a model to read: compact rows, the text rendering, the cursor.

Nothing here talks to the network. The functions turn the core's typed runs into small
JSON-ready dicts (nulls left out, the columns asked for), render a page of runs as a
compact table, cap long breakdowns, and encode the opaque ``list_runs`` cursor. One
run's ``get_run`` result is :mod:`mcp_server.trace_shaping`'s.

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
from typing import Any, Final, Literal, get_args

import orjson

from timbal_integrations import defaults
from timbal_integrations.errors import QueryError
from timbal_integrations.models import Run
from timbal_integrations.query import format_time

from .known import describe_unknown
from .readable import readable

__all__ = [
    "CURSOR_VERSION",
    "DEFAULT_FIELDS",
    "RUN_FIELDS",
    "Cursor",
    "RunField",
    "cap_breakdowns",
    "compact_json",
    "filters_fingerprint",
    "render_runs_text",
    "run_row",
]

CURSOR_VERSION: Final = 1
RunField = Literal[
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
]
"""A column ``list_runs`` can return (an item of ``fields``)."""
RUN_FIELDS: Final[tuple[RunField, ...]] = get_args(RunField)
"""The columns ``list_runs`` can return (``fields``), in their order."""
DEFAULT_FIELDS: Final = (
    "id",
    "created_at",
    "status",
    "duration_ms",
    "cost_usd",
    "user",
    "workforce",
    "sentiment",
    "group_id",
    "parent_id",
)
"""The columns ``list_runs`` returns unless told otherwise."""
_MAX_CURSOR_CHARS: Final = defaults.MCP_MAX_CURSOR_CHARS
_BAD_CURSOR: Final = (
    "is not a cursor returned by list_runs; pass next_cursor back unchanged, "
    "or leave cursor out to start from the first run"
)


def compact_json(value: Any) -> str:
    """JSON without whitespace (what the text content of a tool result carries)."""
    return orjson.dumps(value).decode()


def run_row(run: Run, fields: Sequence[str] = DEFAULT_FIELDS) -> dict[str, Any]:
    """The compact row of a run: the ``fields`` asked for (``id`` always), nulls left
    out."""
    user: dict[str, Any] = {"id": run.user.id}
    if run.user.name:
        user["name"] = run.user.name
    if run.user.email:
        user["email"] = run.user.email
    workforce: dict[str, Any] = {"id": run.workforce.id}
    if run.workforce.name:
        workforce["name"] = run.workforce.name
    values: dict[str, Any] = {
        "id": run.id,
        "idempotency_key": run.idempotency_key,
        "created_at": format_time(run.created_at),
        "status": run.status,
        "duration_ms": run.duration_ms,
        "cost_usd": run.cost_usd,
        "cost_credits": run.cost_credits,
        "user": user,
        "workforce": workforce,
        "sentiment": run.last_reaction_sentiment,
        "group_id": run.group_id,
        "parent_id": run.parent_id,
    }
    wanted = set(fields) | {"id"}
    return {k: v for k, v in values.items() if k in wanted and v is not None}


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = str(value)
    return text.replace("|", "/").replace("\n", " ")


def render_runs_text(result: Mapping[str, Any]) -> str:
    """Render a ``list_runs`` result as compact text: a header, a table, legends, a hint.

    The table has the columns of ``result["fields"]`` (default: :data:`DEFAULT_FIELDS`).
    Users appear in rows by email and workforces by name; the legends below the table
    give their ids (for the ``user_id`` and ``workforce_id`` filters). A ``group_id`` of
    ``=id`` marks a run that starts its own thread. Numbers are rounded for reading. The
    cursor is repeated in the text, for clients that show a model only the text.
    """
    runs: Sequence[Mapping[str, Any]] = result["runs"]
    filters: Mapping[str, Any] = result["applied_filters"]
    columns = [c for c in (result.get("fields") or DEFAULT_FIELDS) if c in RUN_FIELDS]
    if "id" not in columns:
        columns.insert(0, "id")
    sort = f"{filters['sort_by']} {filters['sort_order']}"
    shown = ", ".join(
        f"{k}={compact_json(v) if isinstance(v, dict) else v}"
        for k, v in filters.items()
        if k not in ("sort_by", "sort_order")
    )
    lines = [
        f"{result['returned']} run(s), sorted by {sort}; filters: {shown or 'none'}"
        + ("; more available" if result.get("next_cursor") else "; end of results")
    ]
    resolution = result.get("workforce_resolution")
    if resolution:
        if resolution.get("workforce_id"):
            lines.append(
                f"workforce {resolution['name']!r} is {resolution['workforce_id']} (found among "
                f"the {resolution['scanned']} most recent runs)"
            )
        else:
            known = ", ".join(resolution.get("known") or []) or "none"
            close = resolution.get("did_you_mean")
            lines.append(
                f"no workforce named {resolution['name']!r} among the {resolution['scanned']} "
                f"most recent runs (known: {known})"
                + (f"; did you mean {close!r}?" if close else "")
                + "; pass workforce_id if it has not run recently"
            )
    for entry in result.get("unknown_values") or ():
        lines.append(describe_unknown(entry))
    if "scanned" in result:
        bound = " (scan bound reached)" if result.get("scan_bound_hit") else ""
        lines.append(f"user_email matched while scanning {result['scanned']} run(s){bound}")
    users: dict[str, tuple[str, str]] = {}
    forces: dict[str, set[str]] = {}
    if runs:
        lines.append("|".join(columns))
    for row in runs:
        cells: list[Any] = []
        for column in columns:
            value = row.get(column)
            if column == "user" and value is not None:
                label = value.get("email") or value["id"]
                users.setdefault(label, (value["id"], value.get("name") or ""))
                value = label
            elif column == "workforce" and value is not None:
                label = value.get("name") or value["id"]
                forces.setdefault(label, set()).add(value["id"])
                value = label
            elif column == "group_id" and value is not None and value == row["id"]:
                value = "=id"
            elif isinstance(value, float):
                value = readable(value)
            cells.append(value)
        line = "|".join(["-" if v is None or v == "" else str(v) for v in cells])
        if line.count("|") != len(columns) - 1 or "\n" in line:  # a value holds | or \n
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
