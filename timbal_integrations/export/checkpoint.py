"""The checkpoint of an export (``PATH.part.json``): typed, versioned, checked on load.

A checkpoint says which export it belongs to (:class:`Identity`: format, filters,
parallelism, limit, CSV-safe mode, API host, org and project), the time window it froze,
how far the listing got (a window and a page token, or one :class:`SpoolState` per piece
of a parallel export: pieces split while they are fetched, and each split adds one, its
spool starting empty), how many runs and bytes of ``PATH.part`` that covers and the
SHA-256 of those bytes (and the same for each spool: its bytes, runs and SHA-256), the
statistics of the runs written (:class:`ExportStats`), and, once the file is complete,
its size and SHA-256 (:class:`Finished`).

On disk it is JSON (version :data:`CHECKPOINT_VERSION`), replaced atomically, sealed by
the SHA-256 of all its other entries, statistics included (``integrity``). Loading
checks every entry: a missing or malformed one is an
:class:`~timbal_integrations.errors.ExportError` naming it (``spools[2].offset``), never
a ``KeyError`` from deep inside an export; entries that contradict each other, or a seal
that does not match (the file was edited), are refused the same way. Before a resume
continues, :meth:`Checkpoint.verify_part` and :meth:`Checkpoint.verify_spool` check the
partial files against it: their SHA-256 and their number of runs must be what it says,
so a truncated or altered ``PATH.part`` or spool is refused rather than finished and
published.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

import orjson

from .._exact import ExactSum
from .._version import __version__
from ..errors import ExportError
from .files import ExportPaths, read_small, replace_json, scan
from .records import micros

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "ExportStats",
    "Finished",
    "Identity",
    "SpoolState",
    "read_checkpoint",
]

CHECKPOINT_VERSION: Final = 2
"""The version of the checkpoint format this module reads and writes (2: the statistics
of what was written; a parallel export's spools are pieces with their own time ranges,
and ``parallel`` may be ``"auto"``; the SHA-256 of the bytes covered, per file; a
CSV-safe flag in the identity; a seal)."""

EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
"""The SHA-256 of no bytes: what a file that holds nothing yet hashes to."""

MAX_CHECKPOINT_BYTES: Final = 16 * 1024 * 1024
"""A checkpoint larger than this is not one of ours (a thousand pieces with long tokens
are a few MB)."""

_START_OVER: Final = "export without resume to start over"


def _seal(data: Mapping[str, Any]) -> str:
    """The SHA-256 of a checkpoint's entries (all but ``integrity``), canonically encoded."""
    body = {key: value for key, value in data.items() if key != "integrity"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What makes two exports the same one: only a checkpoint of the same identity can be
    resumed."""

    format: str
    filters: dict[str, Any]
    parallel: int | str
    limit: int | None
    base_url: str
    org_id: str
    project_id: str
    csv_safe: bool = False

    _LABELS = (
        ("format", "format"),
        ("filters", "filters"),
        ("parallel", "parallel setting"),
        ("limit", "limit"),
        ("csv_safe", "CSV-safe setting"),
        ("base_url", "API host"),
        ("org_id", "org"),
        ("project_id", "project"),
    )

    def difference(self, new: Identity) -> str:
        """How ``new`` differs from this identity, in words (for an error)."""
        for key, label in self._LABELS:
            if getattr(self, key) != getattr(new, key):
                return f"its {label} was {getattr(self, key)!r}, now {getattr(new, key)!r}"
        return "it was written by a different version"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {key: getattr(self, key) for key, _ in self._LABELS}


@dataclass
class SpoolState:
    """Where one piece of a parallel export stands, in its spool file ``PATH.part.w<id>``.

    The piece holds the runs created in ``[since_ms, until_ms)`` and is paged with the
    query of ``[window_since_ms, window_until_ms)`` (see
    :class:`~timbal_integrations.client.Piece`). A piece split off another starts with
    an empty spool (``offset`` 0, ``sha256`` of nothing); the piece it came from keeps
    its spool, whose covered bytes stay checked."""

    token: str | None = None
    """The page token to continue from (None: the piece's first page, or done)."""
    offset: int = 0
    """Bytes of the spool the checkpoint covers."""
    count: int = 0
    """Runs in those bytes."""
    done: bool = False
    """True once the piece's last page is in the spool."""
    id: int = 0
    since_ms: int = 0
    until_ms: int = 0
    window_since_ms: int = 0
    window_until_ms: int = 0
    sha256: str = EMPTY_SHA256
    """The SHA-256 of the ``offset`` bytes covered."""


_STATUS: Final = itemgetter("status")
_COST_USD: Final = itemgetter("cost_usd")
_COST_CREDITS: Final = itemgetter("cost_credits")


@dataclass
class ExportStats:
    """Exact statistics of the runs written so far: how many per status, and the total
    costs (:class:`~timbal_integrations._exact.ExactSum`, so a total is the correctly
    rounded sum of every run's cost, across a resume too)."""

    status_counts: dict[str, int] = field(default_factory=dict)
    cost_usd: ExactSum = field(default_factory=ExactSum)
    cost_credits: ExactSum = field(default_factory=ExactSum)

    def tally(self, runs: Sequence[Mapping[str, Any]]) -> None:
        """Count runs (the server's dicts) that were just written."""
        counts = self.status_counts
        for status, n in Counter(map(_STATUS, runs)).items():
            counts[status] = counts.get(status, 0) + n
        self.cost_usd.add_all(map(_COST_USD, runs))
        self.cost_credits.add_all(map(_COST_CREDITS, runs))

    def sorted_counts(self) -> dict[str, int]:
        """Runs per status, statuses sorted by name."""
        return {status: self.status_counts[status] for status in sorted(self.status_counts)}

    def to_json(self) -> dict[str, Any]:
        """The JSON form: counts, and each total's exact partials as ``float.hex``."""
        return {
            "status_counts": self.sorted_counts(),
            "cost_usd": [x.hex() for x in self.cost_usd.partials],
            "cost_credits": [x.hex() for x in self.cost_credits.partials],
        }


@dataclass(frozen=True)
class Finished:
    """The finished file, before it is renamed into place."""

    bytes: int
    sha256: str


@dataclass
class Checkpoint:
    """The state of one export, as saved in ``PATH.part.json``."""

    identity: Identity
    started_at: datetime
    """The 'now' of the first attempt; relative spans such as ``24h`` resolve against it."""
    tool_version: str = __version__
    windows: list[tuple[int | None, int | None]] = field(default_factory=list)
    """The frozen time windows, as epoch milliseconds ``[since, until)``."""
    since_ms: int | None = None
    until_ms: int | None = None
    window: int = 0
    """Sequential export: the window being fetched..."""
    token: str | None = None
    """...and the page token to continue it from."""
    fetched_all: bool = False
    count: int = 0
    """Runs in ``PATH.part`` (those of earlier attempts included)."""
    offset: int = 0
    """Bytes of ``PATH.part`` the checkpoint covers."""
    sha256: str = EMPTY_SHA256
    """The SHA-256 of those bytes."""
    first_us: int | None = None
    """The earliest ``created_at`` exported, in epoch microseconds."""
    last_us: int | None = None
    spools: list[SpoolState] | None = None
    """Parallel export: one state per piece (None until the pieces are fetched)."""
    next_piece: int = 0
    """Parallel export: the id the next piece split off gets."""
    base_offset: int = 0
    """Parallel export: the bytes of ``PATH.part`` before the spools are appended."""
    concatenated: bool = False
    """Parallel export: the spools are appended to ``PATH.part``."""
    finished: Finished | None = None
    stats: ExportStats = field(default_factory=ExportStats)
    """The statistics of the ``count`` runs written."""

    def widen_span(self, created: Sequence[datetime]) -> None:
        """Widen the first/last ``created_at`` the manifest reports to cover ``created``."""
        low, high = micros(min(created)), micros(max(created))
        self.first_us = low if self.first_us is None else min(self.first_us, low)
        self.last_us = high if self.last_us is None else max(self.last_us, high)

    def save(self, paths: ExportPaths) -> None:
        """Replace ``PATH.part.json`` with this state, atomically."""
        replace_json(paths.checkpoint, self.to_json())

    def part_runs(self) -> int:
        """Runs in the bytes of ``PATH.part`` the checkpoint covers (a parallel export's
        spools hold the others until they are concatenated)."""
        if self.spools is None or self.concatenated:
            return self.count
        return self.count - sum(spool.count for spool in self.spools)

    def verify_part(self, paths: ExportPaths) -> Any:
        """Check that ``PATH.part`` starts with the bytes this checkpoint covers: their
        SHA-256 and number of runs. Returns the SHA-256 (a ``hashlib`` object, to
        continue); :class:`ExportError` naming what differs otherwise."""
        header = 1 if self.identity.format == "csv" else 0
        return _verify(
            paths.part,
            self.offset,
            self.sha256,
            self.part_runs() + header,
            csv=self.identity.format == "csv",
            what="its checkpoint",
        )

    def verify_spool(self, paths: ExportPaths, position: int) -> Any:
        """Check the spool of ``spools[position]`` (the file of its piece's id) like
        :meth:`verify_part`."""
        assert self.spools is not None
        spool = self.spools[position]
        return _verify(
            paths.window(spool.id),
            spool.offset,
            spool.sha256,
            spool.count,
            csv=self.identity.format == "csv",
            what=f"its checkpoint (spools[{position}])",
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form (version :data:`CHECKPOINT_VERSION`), sealed."""
        data = self._entries()
        data["integrity"] = _seal(data)
        return data

    def _entries(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "tool_version": self.tool_version,
            "identity": self.identity.to_json(),
            "started_at": self.started_at.isoformat(),
            "windows": [list(window) for window in self.windows],
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "window": self.window,
            "token": self.token,
            "fetched_all": self.fetched_all,
            "count": self.count,
            "offset": self.offset,
            "sha256": self.sha256,
            "first_us": self.first_us,
            "last_us": self.last_us,
            "spools": None
            if self.spools is None
            else [
                {
                    "token": s.token,
                    "offset": s.offset,
                    "count": s.count,
                    "done": s.done,
                    "id": s.id,
                    "since_ms": s.since_ms,
                    "until_ms": s.until_ms,
                    "window_since_ms": s.window_since_ms,
                    "window_until_ms": s.window_until_ms,
                    "sha256": s.sha256,
                }
                for s in self.spools
            ],
            "next_piece": self.next_piece,
            "base_offset": self.base_offset,
            "concatenated": self.concatenated,
            "finished": None
            if self.finished is None
            else {"bytes": self.finished.bytes, "sha256": self.finished.sha256},
            "stats": self.stats.to_json(),
        }

    @classmethod
    def from_json(cls, data: object, *, path: str) -> Checkpoint:
        """Check and read the JSON form; :class:`ExportError` names a bad entry."""
        read = _Reader(path)
        top = read.mapping(data, "")
        version = read.value(top, "version", int)
        if version != CHECKPOINT_VERSION:
            raise read.invalid(
                "version",
                f"written by another version of timbal-integrations (checkpoint version "
                f"{version!r}; this one reads {CHECKPOINT_VERSION})",
            )
        ident = read.mapping(top.get("identity", _MISSING), "identity")
        identity = Identity(
            format=read.value(ident, "format", str, at="identity."),
            filters=dict(read.mapping(ident.get("filters", _MISSING), "identity.filters")),
            parallel=read.parallel(ident),
            limit=read.value(ident, "limit", int, optional=True, at="identity."),
            base_url=read.value(ident, "base_url", str, at="identity."),
            org_id=read.value(ident, "org_id", str, at="identity."),
            project_id=read.value(ident, "project_id", str, at="identity."),
            csv_safe=read.value(ident, "csv_safe", bool, at="identity."),
        )
        started = read.value(top, "started_at", str)
        try:
            started_at = datetime.fromisoformat(started)
        except ValueError:
            raise read.invalid(
                "started_at", f"expected an ISO 8601 time, got {started!r}"
            ) from None
        state = cls(
            identity=identity,
            started_at=started_at,
            tool_version=read.value(top, "tool_version", str),
            windows=read.windows(top),
            since_ms=read.value(top, "since_ms", int, optional=True),
            until_ms=read.value(top, "until_ms", int, optional=True),
            window=read.value(top, "window", int),
            token=read.value(top, "token", str, optional=True),
            fetched_all=read.value(top, "fetched_all", bool),
            count=read.value(top, "count", int),
            offset=read.value(top, "offset", int),
            sha256=read.digest(top, "sha256"),
            first_us=read.value(top, "first_us", int, optional=True, signed=True),
            last_us=read.value(top, "last_us", int, optional=True, signed=True),
            spools=read.spools(top),
            next_piece=read.value(top, "next_piece", int),
            base_offset=read.value(top, "base_offset", int),
            concatenated=read.value(top, "concatenated", bool),
            finished=read.finished(top),
            stats=read.stats(top),
        )
        read.consistent(state)
        sealed = read.value(top, "integrity", str)
        if sealed != _seal(top):
            raise read.invalid(
                "integrity",
                "the checkpoint was changed after it was written (its entries do not match "
                "their seal), so it cannot be trusted",
            )
        return state


def _verify(path: str, offset: int, sha256: str, lines: int, *, csv: bool, what: str) -> Any:
    """Check the first ``offset`` bytes of ``path``: their SHA-256 and their lines."""
    try:
        digest, size, found = scan(path, offset, csv=csv)
    except FileNotFoundError:
        if offset == 0:
            return hashlib.sha256()
        raise ExportError(f"{path} is missing; {_START_OVER}", path=path) from None
    if size < offset:
        raise ExportError(
            f"{path} is shorter than {what} says ({size:,} < {offset:,} bytes): it was "
            f"truncated; {_START_OVER}",
            path=path,
        )
    if digest.hexdigest() != sha256:
        raise ExportError(
            f"the first {offset:,} bytes of {path} are not the ones {what} covers (their "
            f"SHA-256 differs): the file was altered; {_START_OVER}",
            path=path,
        )
    if found != lines:
        raise ExportError(
            f"{path} holds {found:,} lines where {what} says {lines:,}; {_START_OVER}",
            path=path,
        )
    return digest


def read_checkpoint(paths: ExportPaths) -> Checkpoint | None:
    """The checkpoint beside an export, or None when there is none.

    Raises :class:`ExportError` (naming the entry) when it is unreadable or malformed.
    """
    try:
        raw = read_small(paths.checkpoint, MAX_CHECKPOINT_BYTES)
    except FileNotFoundError:
        return None
    except ExportError as exc:
        raise ExportError(
            f"cannot read the checkpoint {paths.checkpoint}: {exc}; {_START_OVER}",
            path=paths.checkpoint,
        ) from None
    except OSError as exc:
        raise ExportError(
            f"cannot read the checkpoint {paths.checkpoint}: {exc.strerror or exc}",
            path=paths.checkpoint,
        ) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ExportError(
            f"the checkpoint {paths.checkpoint} is not valid JSON; {_START_OVER}",
            path=paths.checkpoint,
        ) from None
    return Checkpoint.from_json(data, path=paths.checkpoint)


_MISSING: Final = object()
_KINDS: Final = {int: "a whole number, 0 or more", str: "a string", bool: "true or false"}


class _Reader:
    """Checks the entries of a checkpoint's JSON, naming the first bad one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def invalid(self, name: str, problem: str) -> ExportError:
        return ExportError(
            f"the checkpoint {self.path} is not valid: {name}: {problem}; {_START_OVER}",
            path=self.path,
            field=name,
        )

    def mapping(self, value: object, name: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.invalid(name or "(the file)", f"expected an object, got {_shown(value)}")
        return value

    def value(
        self,
        data: Mapping[str, Any],
        key: str,
        kind: type,
        *,
        optional: bool = False,
        default: Any = _MISSING,
        signed: bool = False,
        at: str = "",
    ) -> Any:
        value = data.get(key, _MISSING)
        if value is _MISSING:
            if default is not _MISSING:
                return default
            raise self.invalid(at + key, "missing")
        if value is None and optional:
            return None
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if ok and kind is int and not signed:
            ok = value >= 0
        if not ok:
            expected = _KINDS[kind] if signed is False else "a whole number"
            if optional:
                expected += " or null"
            raise self.invalid(at + key, f"expected {expected}, got {_shown(value)}")
        return value

    def windows(self, top: Mapping[str, Any]) -> list[tuple[int | None, int | None]]:
        windows = top.get("windows", _MISSING)
        if not isinstance(windows, list):
            raise self.invalid("windows", f"expected a list, got {_shown(windows)}")
        out: list[tuple[int | None, int | None]] = []
        for i, window in enumerate(windows):
            if not isinstance(window, list) or len(window) != 2:
                raise self.invalid(
                    f"windows[{i}]", f"expected [since, until], got {_shown(window)}"
                )
            pair = dict(zip(("since", "until"), window, strict=True))
            lo = self.value(pair, "since", int, optional=True, at=f"windows[{i}].")
            hi = self.value(pair, "until", int, optional=True, at=f"windows[{i}].")
            out.append((lo, hi))
        return out

    def spools(self, top: Mapping[str, Any]) -> list[SpoolState] | None:
        spools = top.get("spools", _MISSING)
        if spools is None:
            return None
        if not isinstance(spools, list):
            raise self.invalid("spools", f"expected a list or null, got {_shown(spools)}")
        out = []
        for i, raw in enumerate(spools):
            spool = self.mapping(raw, f"spools[{i}]")
            at = f"spools[{i}]."
            out.append(
                SpoolState(
                    token=self.value(spool, "token", str, optional=True, at=at),
                    offset=self.value(spool, "offset", int, at=at),
                    count=self.value(spool, "count", int, at=at),
                    done=self.value(spool, "done", bool, at=at),
                    id=self.value(spool, "id", int, at=at),
                    since_ms=self.value(spool, "since_ms", int, at=at),
                    until_ms=self.value(spool, "until_ms", int, at=at),
                    window_since_ms=self.value(spool, "window_since_ms", int, at=at),
                    window_until_ms=self.value(spool, "window_until_ms", int, at=at),
                    sha256=self.digest(spool, "sha256", at=at),
                )
            )
        return out

    def parallel(self, ident: Mapping[str, Any]) -> int | str:
        if ident.get("parallel") == "auto":
            return "auto"
        value: int = self.value(ident, "parallel", int, at="identity.")
        return value

    def finished(self, top: Mapping[str, Any]) -> Finished | None:
        raw = top.get("finished", _MISSING)
        if raw is None:
            return None
        done = self.mapping(raw, "finished")
        return Finished(
            bytes=self.value(done, "bytes", int, at="finished."),
            sha256=self.digest(done, "sha256", at="finished."),
        )

    def digest(self, data: Mapping[str, Any], key: str, *, at: str = "") -> str:
        value: str = self.value(data, key, str, at=at)
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise self.invalid(at + key, f"expected a SHA-256 in hex, got {_shown(value)}")
        return value

    def consistent(self, state: Checkpoint) -> None:
        """Entries that each look right but contradict one another."""
        windows = len(state.windows)
        if state.window > windows:
            raise self.invalid("window", f"{state.window} is past the last of {windows} windows")
        seen: set[int] = set()
        for i, spool in enumerate(state.spools or ()):
            at = f"spools[{i}]"
            if spool.id in seen:
                raise self.invalid(f"{at}.id", f"{spool.id} is the id of an earlier piece too")
            seen.add(spool.id)
            if spool.id >= state.next_piece:
                raise self.invalid(
                    f"{at}.id", f"{spool.id} is not below next_piece ({state.next_piece})"
                )
            if not (
                spool.window_since_ms <= spool.since_ms <= spool.until_ms <= spool.window_until_ms
            ):
                raise self.invalid(
                    at,
                    f"its range [{spool.since_ms}, {spool.until_ms}) is not within its window "
                    f"[{spool.window_since_ms}, {spool.window_until_ms})",
                )
            if spool.done and spool.token is not None:
                raise self.invalid(f"{at}.token", "a piece that is done has no page token")
        spooled = sum(spool.count for spool in state.spools or ())
        if spooled > state.count:
            raise self.invalid(
                "count", f"{state.count} is fewer than the {spooled} runs of the spools"
            )
        if state.base_offset > state.offset:
            raise self.invalid("base_offset", f"{state.base_offset} is past offset {state.offset}")
        limit = state.identity.limit
        if limit is not None and state.count > limit:
            raise self.invalid("count", f"{state.count} is over the export's limit of {limit}")

    def stats(self, top: Mapping[str, Any]) -> ExportStats:
        raw = self.mapping(top.get("stats", _MISSING), "stats")
        counts = self.mapping(raw.get("status_counts", _MISSING), "stats.status_counts")
        status_counts = {
            str(status): self.value(counts, status, int, at="stats.status_counts.")
            for status in counts
        }
        totals = [self.partials(raw, key) for key in ("cost_usd", "cost_credits")]
        return ExportStats(status_counts, *totals)

    def partials(self, raw: Mapping[str, Any], key: str) -> ExactSum:
        name = f"stats.{key}"
        values = raw.get(key, _MISSING)
        if not isinstance(values, list):
            raise self.invalid(name, f"expected a list of float.hex strings, got {_shown(values)}")
        floats = []
        for i, value in enumerate(values):
            try:
                floats.append(float.fromhex(value))
            except (TypeError, ValueError):
                raise self.invalid(
                    f"{name}[{i}]", f"expected a float.hex string, got {_shown(value)}"
                ) from None
        return ExactSum(floats)


def _shown(value: object) -> str:
    if value is _MISSING:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
