"""``list_runs``: one page of matching runs, from where the cursor says, as compact rows.

A page is read from the core's raw listing (:meth:`AsyncTimbalClient.get_runs_page`):
``user_email`` is matched here, scanning a bounded number of runs per call. The cursor
(:class:`mcp_server.shaping.Cursor`) names the API page holding the next run and its
position in it, a fingerprint of the filters and the time window pinned on the first
call; continuing from it re-requests that page and skips the runs already returned, so
paging never skips or repeats a run. The result's rows, text and hints are shaped by
:mod:`mcp_server.shaping`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mcp.types import CallToolResult, TextContent

from timbal_integrations import defaults
from timbal_integrations.errors import PaginationLoopError, QueryError
from timbal_integrations.models import Run
from timbal_integrations.query import parse_time, to_epoch_ms
from timbal_integrations.redact import redact_data

from ..shaping import DEFAULT_FIELDS, Cursor, filters_fingerprint, render_runs_text, run_row
from .scope import Scope

if TYPE_CHECKING:
    from timbal_integrations.client import AsyncTimbalClient

__all__ = ["Page", "fingerprint", "is_relative", "list_result", "read_page", "resume"]

Position = tuple[str | None, int]
"""Where a run is: the API page token of its page (None for the first) and its index."""


@dataclass
class Page:
    """The runs one call returns, where the next one is, and how the scan went."""

    runs: list[Run]
    next_position: Position | None
    scanned: int
    bound_hit: bool


def is_relative(value: str | int, name: str, now: datetime) -> bool:
    """True when ``value`` depends on "now" (a span such as 24h, or "now")."""
    earlier = now - timedelta(days=1)
    return parse_time(value, field=name, now=now) != parse_time(value, field=name, now=earlier)


def _ms_to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def fingerprint(scope: Scope) -> str:
    """The fingerprint of the filters a cursor belongs to."""
    query = scope.query
    added: dict[str, Any] = {}  # only when set: cursors of earlier versions stay valid
    if query.metadata is not None:
        added["metadata"] = query.metadata
    if scope.workforce is not None:
        added["workforce"] = scope.workforce.strip().casefold()
    return filters_fingerprint(
        {
            **added,
            "status": query.status,
            "user_id": query.user_id,
            "user_email": scope.email,
            "sentiment": query.sentiment,
            "workforce_id": query.workforce_id,
            "group_id": query.group_id,
            "rev": query.rev,
            "roots": bool(query.roots),
            "sort_by": query.effective_sort_by,
            "sort_order": query.effective_sort_order,
            "since": query.since is not None,
            "until": query.until is not None,
        }
    )


def resume(cursor: Cursor, scope: Scope) -> Scope:
    """The scope pinned to the cursor's window, or a QueryError naming ``cursor``."""
    mismatch = QueryError(
        "cursor",
        "was returned for different filters; call list_runs with the same filters as "
        "the call that returned it, or leave cursor out to start over",
    )
    if cursor.fingerprint != fingerprint(scope):
        raise mismatch
    query = scope.query
    pinned: dict[str, datetime | None] = {}
    for name, ms in (("since", cursor.since_ms), ("until", cursor.until_ms)):
        value = scope.window.get(name)
        if value is None or ms is None:
            pinned[name] = None
            continue
        if not is_relative(value, name, scope.now):
            resolved = getattr(query, name)
            if resolved is None or to_epoch_ms(resolved) != ms:
                raise mismatch
        try:
            pinned[name] = _ms_to_datetime(ms)
        except OverflowError:  # a tampered cursor: beyond what a datetime holds
            raise QueryError("cursor", "is not a cursor returned by list_runs") from None
    return dataclasses.replace(scope, query=query.replace(**pinned))


async def read_page(
    client: AsyncTimbalClient, scope: Scope, cursor: str | None, limit: int, max_scan: int
) -> tuple[Scope, Page]:
    """Up to ``limit`` runs of ``scope`` from ``cursor`` (the scope pinned to its window)."""
    if scope.matches_nothing:
        return scope, Page([], None, 0, False)
    start: Position = (None, 0)
    if cursor is not None:
        decoded = Cursor.decode(cursor)
        scope = resume(decoded, scope)
        start = (decoded.page_token, decoded.offset)
    return scope, await _collect(client, scope, start, limit, max_scan)


async def _collect(
    client: AsyncTimbalClient, scope: Scope, start: Position, limit: int, max_scan: int
) -> Page:
    """Up to ``limit`` matching runs from ``start``, and where the next one is."""
    email = scope.email
    token, offset = start
    runs: list[Run] = []
    scanned = 0
    seen: set[str] = set()
    for _ in range(defaults.MCP_MAX_PAGES_PER_CALL):
        page = await client.get_runs_page(scope.query, page_token=token)
        following = page.next_page_token
        if following is not None and (following == token or following in seen):
            raise PaginationLoopError(
                "the API returned a page token it had already returned; stopping instead of looping"
            )
        index = offset
        while index < len(page.runs):
            run = page.runs[index]
            index += 1
            if email is not None:
                scanned += 1
                if run.user.email.lower() == email:
                    runs.append(run)
            else:
                runs.append(run)
            full = len(runs) >= limit
            bound = email is not None and scanned >= max_scan
            if full or bound:
                if index < len(page.runs):
                    position: Position | None = (token, index)
                elif following is not None:
                    position = (following, 0)
                else:
                    position = None
                return Page(runs, position, scanned, bound and not full)
        if following is None:
            return Page(runs, None, scanned, False)
        seen.add(following)
        token, offset = following, 0
    return Page(runs, (token, offset), scanned, True)


def list_result(
    scope: Scope,
    page: Page,
    fields: Sequence[str] | None,
    unknown: Sequence[dict[str, Any]],
    secret: str | None,
) -> CallToolResult:
    """The tool result: the rows of ``fields``, the cursor, the filters as applied, how
    the scan went and what to do next; the API key redacted."""
    email = scope.email
    query = scope.query
    columns = list(dict.fromkeys(["id", *fields])) if fields else list(DEFAULT_FIELDS)
    result: dict[str, Any] = {
        "runs": [run_row(run, columns) for run in page.runs],
        "returned": len(page.runs),
    }
    if columns != list(DEFAULT_FIELDS):
        result["fields"] = columns
    if page.next_position is not None:
        token, offset = page.next_position
        result["next_cursor"] = Cursor(
            token,
            offset,
            fingerprint(scope),
            None if query.since is None else to_epoch_ms(query.since),
            None if query.until is None else to_epoch_ms(query.until),
        ).encode()
    result["applied_filters"] = scope.applied()
    if email is not None:
        result["scanned"] = page.scanned
        result["scan_bound_hit"] = page.bound_hit
    if page.next_position is not None:
        if page.bound_hit and email is not None:
            hint = (
                f"The user_email scan stopped after {page.scanned} runs. To continue, "
                "call list_runs again with the same filters and cursor=next_cursor; "
                "a narrower since/until window or user_id makes the scan shorter."
            )
        else:
            hint = (
                "More runs may match: call list_runs again with the same filters and "
                "cursor=next_cursor for the next ones (summarize_runs gives totals)."
            )
        result["hint"] = hint
    scope.annotate(result, unknown)
    redacted: dict[str, Any] = redact_data(result, secret)
    return CallToolResult(
        content=[TextContent(type="text", text=render_runs_text(redacted))],
        structured_content=redacted,
    )
