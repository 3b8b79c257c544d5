"""The state of a synced dataset (``state.json``): typed, versioned, checked on load.

It records what the dataset is (format, filters, API host, org and project), where the
next sync starts (the high-water mark, the lookback) and which runs were not yet final
at the last sync (:class:`OpenRun`), so that the next sync re-checks them however old
they are. Loading checks every entry: a missing or malformed one is a
:class:`~timbal_integrations.errors.SyncStateError` naming it (``open[3].id``).

**The high-water mark** is the ``until`` the last sync froze when it started (its
"now", to the millisecond, plus one), not the latest ``created_at`` it saw. The mark
says up to when the dataset has *looked*, which is what the next sync must know:

- with filters, the latest matching run may be weeks old (``status="error"`` on a quiet
  project); a mark at that run would make every sync list weeks again, and list more
  each day;
- with no run at all yet, there is no latest run, but there is a time looked up to;
- a run created just before the sync started but not yet visible to the API then (or
  stamped by a server clock behind ours) has a ``created_at`` below the mark, so the
  next sync's window, ``[mark - lookback, now)``, lists it again; a mark at the latest
  run seen would be the same here, but no better.

So the window of each sync starts ``lookback`` before the previous sync's frozen
``until``: every run created since then, and every run young enough to still change,
is listed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from .._version import __version__
from ..errors import SyncMismatchError, SyncStateError
from ..export.records import iso_us

__all__ = ["STATE_VERSION", "DatasetIdentity", "OpenRun", "SyncState", "parse_state"]

STATE_VERSION: Final = 1
"""The version of the state format this module reads and writes."""


@dataclass(frozen=True)
class DatasetIdentity:
    """What a dataset is: a sync with another identity would mix two datasets in one.

    ``filters`` are the query's filters other than ``since`` and ``until`` (the time
    bounds of a dataset move with it; see :meth:`SyncState.check`).
    """

    format: str
    filters: dict[str, Any]
    base_url: str
    org_id: str
    project_id: str

    _SETTINGS = (
        ("format", "format"),
        ("base_url", "TIMBAL_API_HOST"),
        ("org_id", "TIMBAL_ORG_ID"),
        ("project_id", "TIMBAL_PROJECT_ID"),
    )

    def check(self, given: DatasetIdentity, path: str) -> None:
        """Raise :class:`SyncMismatchError` naming the first setting ``given`` has
        otherwise (a filter by its own name)."""
        for key, name in self._SETTINGS:
            if getattr(self, key) != getattr(given, key):
                raise SyncMismatchError(
                    name, stored=getattr(self, key), given=getattr(given, key), path=path
                )
        for name in sorted(set(self.filters) | set(given.filters)):
            if self.filters.get(name) != given.filters.get(name):
                raise SyncMismatchError(
                    name, stored=self.filters.get(name), given=given.filters.get(name), path=path
                )

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "format": self.format,
            "filters": dict(self.filters),
            "base_url": self.base_url,
            "org_id": self.org_id,
            "project_id": self.project_id,
        }


@dataclass(frozen=True)
class OpenRun:
    """A run that was ``running`` at the last sync."""

    id: str
    created_at: datetime
    """Its ``created_at`` (aware UTC): the day of its partition."""
    record: dict[str, Any]
    """The run as the last sync left it: as its partition holds it, or, when it is not
    in the dataset, as last seen."""
    in_dataset: bool = True
    """False when it did not match a ``status`` or ``sentiment`` filter then: it is
    tracked until it ends, in case it comes to match."""


@dataclass
class SyncState:
    """The state of a dataset after a sync."""

    identity: DatasetIdentity
    since: datetime | None
    """The dataset's start: the ``since`` of its first sync (None: from the first run)."""
    high_water_mark: datetime
    """The ``until`` the last sync froze (see the module's docstring)."""
    lookback: timedelta
    open: list[OpenRun] = field(default_factory=list)
    synced_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    syncs: int = 1
    tool_version: str = __version__

    def check(
        self,
        identity: DatasetIdentity,
        since: datetime | None,
        until: datetime | None,
        path: str,
    ) -> None:
        """Refuse a sync whose settings differ from the dataset's
        (:class:`SyncMismatchError` naming the setting).

        ``since`` may be later than the dataset's start (a relative ``since`` such as
        ``90d`` moves forward every day; the dataset keeps its start), not earlier: the
        runs in between were never fetched. ``until`` may not be earlier than the
        high-water mark: the dataset already holds runs up to the mark.
        """
        self.identity.check(identity, path)
        if since is not None and self.since is not None and since < self.since:
            raise SyncMismatchError(
                "since", stored=_text(self.since), given=_text(since), path=path
            )
        if until is not None and until < self.high_water_mark:
            raise SyncMismatchError(
                "until", stored=_text(self.high_water_mark), given=_text(until), path=path
            )

    def to_json(self) -> dict[str, Any]:
        """The JSON form (version :data:`STATE_VERSION`)."""
        return {
            "version": STATE_VERSION,
            "tool_version": self.tool_version,
            "identity": self.identity.to_json(),
            "since": _text(self.since),
            "high_water_mark": _text(self.high_water_mark),
            "lookback_seconds": self.lookback.total_seconds(),
            "open": [
                {
                    "id": run.id,
                    "created_at": _text(run.created_at),
                    "in_dataset": run.in_dataset,
                    "record": run.record,
                }
                for run in self.open
            ],
            "synced_at": _text(self.synced_at),
            "syncs": self.syncs,
        }


def _text(value: datetime | None) -> str | None:
    return None if value is None else iso_us(value)


def parse_state(data: bytes, path: str) -> SyncState:
    """Check and read ``state.json``; :class:`SyncStateError` names a bad entry."""
    read = _Entries(path)
    try:
        top = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise SyncStateError(f"the sync state {path} is not valid JSON", path=path) from None
    top = read.mapping(top, "(the file)")
    version = top.get("version")
    if version != STATE_VERSION:
        raise read.invalid(
            "version",
            f"written by another version of timbal-integrations (state version {version!r}; "
            f"this one reads {STATE_VERSION})",
        )
    ident = read.mapping(top.get("identity"), "identity")
    identity = DatasetIdentity(
        format=read.text(ident, "format", "identity."),
        filters=dict(read.mapping(ident.get("filters"), "identity.filters")),
        base_url=read.text(ident, "base_url", "identity."),
        org_id=read.text(ident, "org_id", "identity."),
        project_id=read.text(ident, "project_id", "identity."),
    )
    lookback = top.get("lookback_seconds")
    if isinstance(lookback, bool) or not isinstance(lookback, (int, float)) or lookback < 0:
        raise read.invalid("lookback_seconds", f"expected seconds, 0 or more, got {lookback!r}")
    syncs = top.get("syncs")
    if isinstance(syncs, bool) or not isinstance(syncs, int) or syncs < 1:
        raise read.invalid("syncs", f"expected a whole number, 1 or more, got {syncs!r}")
    mark = read.time(top, "high_water_mark")
    if mark is None:
        raise read.invalid("high_water_mark", "missing")
    return SyncState(
        identity=identity,
        since=read.time(top, "since"),
        high_water_mark=mark,
        lookback=timedelta(seconds=lookback),
        open=read.open_runs(top.get("open")),
        synced_at=read.time(top, "synced_at") or mark,
        syncs=syncs,
        tool_version=read.text(top, "tool_version", ""),
    )


class _Entries:
    """Checks the entries of a state's JSON, naming the first bad one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def invalid(self, name: str, problem: str) -> SyncStateError:
        return SyncStateError(
            f"the sync state {self.path} is not valid: {name}: {problem}",
            path=self.path,
            field=name,
        )

    def mapping(self, value: object, name: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.invalid(name, f"expected an object, got {_shown(value)}")
        return value

    def text(self, data: Mapping[str, Any], key: str, at: str) -> str:
        value = data.get(key)
        if not isinstance(value, str):
            raise self.invalid(at + key, f"expected a string, got {_shown(value)}")
        return value

    def time(self, data: Mapping[str, Any], key: str, at: str = "") -> datetime | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
        raise self.invalid(at + key, f"expected an ISO 8601 UTC time, got {_shown(value)}")

    def open_runs(self, value: object) -> list[OpenRun]:
        if not isinstance(value, list):
            raise self.invalid("open", f"expected a list, got {_shown(value)}")
        runs: list[OpenRun] = []
        for i, raw in enumerate(value):
            at = f"open[{i}]."
            entry = self.mapping(raw, f"open[{i}]")
            created = self.time(entry, "created_at", at)
            if created is None:
                raise self.invalid(at + "created_at", "missing")
            run_id = self.text(entry, "id", at)
            record = entry.get("record")
            if not isinstance(record, dict) or record.get("id") != run_id:
                raise self.invalid(at + "record", f"expected the run, got {_shown(record)}")
            in_dataset = entry.get("in_dataset")
            if not isinstance(in_dataset, bool):
                raise self.invalid(
                    at + "in_dataset", f"expected true or false, got {_shown(in_dataset)}"
                )
            runs.append(OpenRun(run_id, created, record, in_dataset))
        return runs


def _shown(value: object) -> str:
    text = "nothing" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
