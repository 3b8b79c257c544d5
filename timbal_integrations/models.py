"""Typed models of the runs API, tolerant of what the server adds later.

Every model keeps unknown fields (``extra="allow"``): they survive ``model_dump`` and
so appear again in exports. ``status`` and ``workforce.type`` are open strings.
``created_at`` is always an aware UTC datetime, whatever spelling the server used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from ._pages import RawPage, _utc, parse_raw_page
from .export.records import RECORD_FIELDS, SOURCE_KEYS, record_row

if TYPE_CHECKING:  # loaded with the first parsed trace
    from .trace import RunStatus, Trace

__all__ = [
    "KNOWN_STATUSES",
    "KNOWN_WORKFORCE_TYPES",
    "RECORD_FIELDS",
    "RawPage",
    "Reaction",
    "ReactionsPage",
    "Run",
    "RunDetail",
    "RunsPage",
    "UserRef",
    "Workforce",
    "parse_raw_page",
]

KNOWN_STATUSES: tuple[str, ...] = ("success", "error", "cancelled", "running")
"""Status values seen in Timbal; others are accepted too."""

KNOWN_WORKFORCE_TYPES: tuple[str, ...] = ("agent", "workflow", "unknown")

# RawPage and parse_raw_page live in _pages, RECORD_FIELDS in export.records (the export
# path, which needs no pydantic models); they are re-exported here.

# defer_build: a model's validator is built on its first use, not at import, so a process
# that builds only some models pays only for those.
_OPEN = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

_UtcTime = Annotated[datetime, AfterValidator(_utc)]
"""An aware UTC datetime, whatever offset (or none: UTC) the server wrote."""


class UserRef(BaseModel):
    """The user who started a run."""

    model_config = _OPEN

    id: str
    name: str
    email: str
    photo_url: str | None = None


class Workforce(BaseModel):
    """The agent or workflow a run belongs to. ``type`` may be any string."""

    model_config = _OPEN

    id: str
    name: str
    type: str
    uid: str | None = None
    url: str | None = None
    description: str | None = None
    deleted_at: int | None = None


class _RunFields(BaseModel):
    """The fields a run has in both forms the API sends (list item and detail)."""

    model_config = _OPEN

    id: str
    idempotency_key: str
    status: str
    created_at: _UtcTime
    duration_ms: int | None = None
    cost_usd: float
    cost_credits: float
    group_id: str | None = None
    parent_id: str | None = None
    last_reaction_sentiment: str | None = None
    user: UserRef

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field the server sent, unknown ones included."""
        return self.model_dump(mode="json")


class Run(_RunFields):
    """One run as the list endpoint returns it (the spec's ``RunPreview``)."""

    workforce: Workforce

    @property
    def is_root(self) -> bool:
        """True when the run starts a conversation (it has no parent)."""
        return self.parent_id is None

    def to_record(self) -> dict[str, Any]:
        """The flat record form, keys in :data:`RECORD_FIELDS` order (``created_at`` a
        datetime): the columns of :mod:`timbal_integrations.export.records`."""
        row = record_row(self.model_dump(include=SOURCE_KEYS), self.created_at)
        return dict(zip(RECORD_FIELDS, row, strict=True))


class RunDetail(_RunFields):
    """One run as ``GET .../runs/{run_id}`` returns it (the spec's ``RunDetail``).

    ``trace`` and ``status_detail`` are kept exactly as the server sent them (exports
    and ``model_dump`` give them back unchanged); :attr:`parsed_trace` and
    :attr:`status_info` are their typed views (see :mod:`timbal_integrations.trace`).
    """

    workforce: Workforce | None = None
    status_detail: Any = None
    trace: Any = None

    @cached_property
    def parsed_trace(self) -> Trace | None:
        """The trace as typed spans in a tree, or None when the run has no usable trace
        (missing or malformed: never an error). Parsed once, on first use."""
        from .trace import parse_trace

        return parse_trace(self.trace)

    @cached_property
    def status_info(self) -> RunStatus | None:
        """``status_detail`` as ``{code, reason, message}`` (None while running, or when
        the server sent something else)."""
        from .trace import parse_status

        return parse_status(self.status_detail)


class Reaction(BaseModel):
    """A user's reaction to a run (``GET .../runs/{run_id}/reactions``): who, the
    sentiment (``positive``, ``negative``, or any other string), what they wrote
    (``feedback``, may be None) and when (``created_at``, aware UTC; the API sends
    epoch milliseconds)."""

    model_config = _OPEN

    id: str
    user: UserRef
    sentiment: str
    feedback: str | None = None
    created_at: _UtcTime

    @field_validator("created_at", mode="before")
    @classmethod
    def _epoch_ms(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return _EPOCH + timedelta(milliseconds=value)
        return value

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``created_at`` as ISO 8601), unknown fields included."""
        return self.model_dump(mode="json")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _no_empty_token(value: str | None) -> str | None:
    # The spec types the token as string-or-null; an empty string cannot name a page.
    return value or None


_PageToken = Annotated[str | None, AfterValidator(_no_empty_token)]
"""A page's ``next_page_token``: ``None`` at the end (an empty string reads as ``None``)."""


class ReactionsPage(BaseModel):
    """One page of a run's reactions, newest first, and the next page's token."""

    model_config = _OPEN

    reactions: list[Reaction]
    next_page_token: _PageToken = None


class RunsPage(BaseModel):
    """One page of runs and the opaque token of the next page (``None`` at the end)."""

    model_config = _OPEN

    runs: list[Run]
    next_page_token: _PageToken = None
