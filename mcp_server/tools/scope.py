"""What a ``list_runs`` or ``summarize_runs`` call covers: its filters as a query.

:meth:`Scope.of` checks the filters before any request: the core's
:class:`~timbal_integrations.query.RunQuery` validates and resolves the API's filters
(times included); ``user_email`` (matched here, the API filters by user id only) is
checked as an address. :meth:`Scope.resolve` turns a workforce name into its id among the
recent runs (:mod:`mcp_server.known`); :meth:`Scope.unknown_values` says, when nothing
matched, which filter values match nothing known. :meth:`Scope.applied` is the filters
as a result reports them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from timbal_integrations.errors import QueryError, TimbalError
from timbal_integrations.query import FILTER_NAMES, RunQuery

from ..args import RunFilters, expected, shown
from ..known import Resolution, check_workforce_name, resolve_workforce, unknown_values
from ..recent import RecentValues, Snapshot

if TYPE_CHECKING:
    from timbal_integrations.client import AsyncTimbalClient

__all__ = ["Scope", "check_email"]

logger = logging.getLogger("mcp_server")

_MAX_EMAIL_CHARS = 320


def check_email(value: str | None) -> str | None:
    """``value`` as the address ``user_email`` matches (trimmed, lower case), or a
    :class:`QueryError` naming ``user_email``."""
    if value is None:
        return None
    text = value.strip().lower()
    if (
        not text
        or len(text) > _MAX_EMAIL_CHARS
        or "@" not in text
        or any(c.isspace() or ord(c) < 32 for c in text)
    ):
        raise QueryError("user_email", f"{shown(value)} is not {expected('user_email')}")
    return text


@dataclass(frozen=True)
class Scope:
    """The runs one call covers.

    ``query`` holds the API's filters, resolved at ``now``; ``email`` the address matched
    locally; ``workforce`` the name asked for and ``resolution`` what it resolved to;
    ``window`` the ``since``/``until`` arguments as given (a relative span such as
    ``24h`` resolves again on each call; a ``list_runs`` cursor pins it).
    """

    now: datetime
    query: RunQuery
    email: str | None = None
    workforce: str | None = None
    window: Mapping[str, str | int | None] = field(default_factory=dict)
    resolution: Resolution | None = None

    @classmethod
    def of(cls, filters: RunFilters, now: datetime) -> Scope:
        """The scope of a tool's ``filters`` at ``now``; a bad value is a
        :class:`QueryError` naming it."""
        email = check_email(filters.get("user_email"))
        given = cast(Mapping[str, Any], filters)
        present = {name: given[name] for name in FILTER_NAMES if given.get(name) is not None}
        return cls(
            now=now,
            query=RunQuery(now=now, **present),
            email=email,
            workforce=filters.get("workforce"),
            window={"since": filters.get("since"), "until": filters.get("until")},
        )

    async def resolve(self, client: AsyncTimbalClient, recent: RecentValues) -> Scope:
        """The scope with its workforce name resolved to an id (see :mod:`.known`)."""
        if self.workforce is None:
            return self
        check_workforce_name(self.workforce)  # before the scan of the recent runs
        snapshot = await recent.get(client)
        resolution = resolve_workforce(self.workforce, snapshot, self.query.workforce_id)
        query = self.query
        if resolution.workforce_id is not None:
            query = query.replace(workforce_id=resolution.workforce_id)
        return dataclasses.replace(self, query=query, resolution=resolution)

    @property
    def matches_nothing(self) -> bool:
        """True when the workforce name matched no known workforce (nothing to read)."""
        return self.resolution is not None and self.resolution.workforce_id is None

    def applied(self) -> dict[str, Any]:
        """The filters as applied (times resolved), the effective sort last."""
        query = self.query
        applied = {k: v for k, v in query.as_dict().items() if k not in ("sort_by", "sort_order")}
        if self.email is not None:
            applied["user_email"] = self.email
        if self.workforce is not None:
            applied["workforce"] = self.workforce
        applied["sort_by"] = query.effective_sort_by
        applied["sort_order"] = query.effective_sort_order
        return applied

    async def unknown_values(
        self, client: AsyncTimbalClient, recent: RecentValues, found: int, first_page: bool
    ) -> list[dict[str, Any]]:
        """With nothing found, the filter values that match nothing known."""
        query = self.query
        if found or not first_page:
            return []
        if all(v is None for v in (query.status, query.sentiment, query.user_id)) and (
            query.workforce_id is None
        ):
            return []
        try:
            snapshot: Snapshot = await recent.get(client)
        except TimbalError:  # the runs were read; the hint is a best effort
            logger.warning("could not read the recent runs to check the filter values")
            return []
        return unknown_values(query, snapshot)

    def annotate(self, result: dict[str, Any], unknown: Sequence[dict[str, Any]]) -> None:
        """Add to ``result`` what the workforce name resolved to and the unknown values."""
        if self.resolution is not None:
            result["workforce_resolution"] = self.resolution.as_dict()
        if unknown:
            result["unknown_values"] = list(unknown)
