"""Reading a checkpoint back: the file (bounded in size), its JSON, and every entry checked.

:func:`read_checkpoint` reads ``PATH.part.json`` beside an export (None when there is
none); :func:`parse_checkpoint` turns its JSON into a
:class:`~timbal_integrations.export.checkpoint.Checkpoint`. A missing or malformed entry
is an :class:`~timbal_integrations.errors.ExportError` naming it (``spools[2].offset``),
never a ``KeyError`` from deep inside an export; entries that contradict each other, or
a seal that does not match (the file was edited), are refused the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson

from .._exact import ExactSum
from ..errors import ExportError
from .checkpoint import CHECKPOINT_VERSION, Checkpoint, ExportStats, Finished, Identity, SpoolState
from .files import ExportPaths, read_small
from .integrity import START_OVER, seal

__all__ = ["MAX_CHECKPOINT_BYTES", "parse_checkpoint", "read_checkpoint"]

MAX_CHECKPOINT_BYTES: Final = 16 * 1024 * 1024
"""A checkpoint larger than this is not one of ours (a thousand pieces with long tokens
are a few MB)."""


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
            f"cannot read the checkpoint {paths.checkpoint}: {exc}; {START_OVER}",
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
            f"the checkpoint {paths.checkpoint} is not valid JSON; {START_OVER}",
            path=paths.checkpoint,
        ) from None
    return parse_checkpoint(data, path=paths.checkpoint)


def parse_checkpoint(data: object, *, path: str) -> Checkpoint:
    """Check and read a checkpoint's JSON form (``path`` is where it was read, for
    messages); :class:`ExportError` names a bad entry."""
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
        raise read.invalid("started_at", f"expected an ISO 8601 time, got {started!r}") from None
    state = Checkpoint(
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
    if sealed != seal(top):
        raise read.invalid(
            "integrity",
            "the checkpoint was changed after it was written (its entries do not match "
            "their seal), so it cannot be trusted",
        )
    return state


_MISSING: Final = object()
_KINDS: Final = {int: "a whole number, 0 or more", str: "a string", bool: "true or false"}


class _Reader:
    """Checks the entries of a checkpoint's JSON, naming the first bad one."""

    def __init__(self, path: str) -> None:
        self.path = path

    def invalid(self, name: str, problem: str) -> ExportError:
        return ExportError(
            f"the checkpoint {self.path} is not valid: {name}: {problem}; {START_OVER}",
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
