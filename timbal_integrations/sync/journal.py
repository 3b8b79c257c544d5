"""Committing a sync: every change of the dataset happens, or none does.

A sync first writes each new partition in full to the store's staging area, touching
nothing a reader sees. Then it **commits**: it replaces ``.sync-journal.json`` with the
list of partitions to put in place (with their SHA-256) or remove, and the complete new
``manifest.json`` and ``state.json``. Writing the journal is the commit point. Then it
**applies** the journal: each staged partition is renamed into place (one atomic rename
or object copy each), removed partitions are deleted, the manifest is replaced, then the
state, and the journal is deleted last.

Killed (``kill -9``, a power cut) before the journal exists, a sync leaves only staged
files, which the next sync discards: the dataset is as it was. Killed after, the next
sync finds the journal and applies it again first (:func:`recover`: each step can be
done twice; a staged file is checked against its SHA-256 before it is put in place).
Either way the next sync starts from a dataset, manifest and state that agree, so a
sync that is killed and run again ends in the same dataset as one that was not.

``TIMBAL_SYNC_KILL_AT=POINT[:N]`` (tests only) makes the process kill itself with
``SIGKILL`` the ``N``-th time it reaches ``POINT``: ``staged`` (a partition staged),
``journal`` (just committed), ``partition`` (a partition put in place or removed),
``manifest`` or ``state`` (replaced). It lets a test kill a real sync at an exact point.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Mapping
from typing import Any, Final

import orjson

from ..errors import SyncStateError
from .store import JOURNAL, MANIFEST, STATE, DatasetStore

__all__ = ["JOURNAL_VERSION", "commit", "crash_point", "dumps", "recover"]

JOURNAL_VERSION: Final = 1
_KILL_AT: Final = "TIMBAL_SYNC_KILL_AT"
_reached: dict[str, int] = {}


def crash_point(point: str) -> None:
    """Kill this process here when ``TIMBAL_SYNC_KILL_AT`` says so (tests only)."""
    spec = os.environ.get(_KILL_AT)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] >= int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)


def dumps(document: Mapping[str, Any]) -> bytes:
    """The bytes of a JSON file of the dataset (indented, one trailing newline)."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def commit(
    store: DatasetStore,
    partitions: Mapping[str, Mapping[str, Any] | None],
    manifest: Mapping[str, Any],
    state: Mapping[str, Any],
) -> None:
    """Commit and apply a sync: ``partitions`` maps each staged partition's name to its
    ``{"sha256", "bytes"}``, and each partition to remove to None."""
    journal = {
        "version": JOURNAL_VERSION,
        "partitions": dict(partitions),
        "manifest": dict(manifest),
        "state": dict(state),
    }
    store.write(JOURNAL, dumps(journal))
    crash_point("journal")
    _apply(store, journal, check=False)


def recover(store: DatasetStore, *, discard: bool = False) -> bool:
    """Finish a sync that was committed but not fully applied, and discard the staged
    files of one that was not committed. True when a journal was applied.

    ``discard`` (a full refresh, which trusts nothing it finds) drops the journal
    instead of applying it.
    """
    data = store.read(JOURNAL)
    if data is None or discard:
        store.delete(JOURNAL)
        store.clear_staging()
        return False
    where = store.where(JOURNAL)
    try:
        journal = orjson.loads(data)
    except orjson.JSONDecodeError:
        journal = None
    if (
        not isinstance(journal, dict)
        or journal.get("version") != JOURNAL_VERSION
        or not isinstance(journal.get("partitions"), dict)
        or not isinstance(journal.get("manifest"), dict)
        or not isinstance(journal.get("state"), dict)
    ):
        raise SyncStateError(
            f"the journal {where} of an interrupted sync cannot be read", path=where
        )
    _apply(store, journal, check=True)
    return True


def _apply(store: DatasetStore, journal: Mapping[str, Any], *, check: bool) -> None:
    for name, entry in journal["partitions"].items():
        if entry is None:
            store.delete(name)
        elif not check:
            store.promote(name)
        else:
            _put_in_place(store, name, entry)
        crash_point("partition")
    store.write(MANIFEST, dumps(journal["manifest"]))
    crash_point("manifest")
    store.write(STATE, dumps(journal["state"]))
    crash_point("state")
    store.delete(JOURNAL)
    store.clear_staging()


def _put_in_place(store: DatasetStore, name: str, entry: Mapping[str, Any]) -> None:
    """Promote a staged partition after checking it (or find it already in place)."""
    wanted = entry.get("sha256") if isinstance(entry, Mapping) else None
    staged = store.read_staged(name)
    if staged is not None and hashlib.sha256(staged).hexdigest() == wanted:
        store.promote(name)
        return
    final = store.read(name)
    if final is None or hashlib.sha256(final).hexdigest() != wanted:
        where = store.where(name)
        raise SyncStateError(
            f"an interrupted sync cannot be finished: {where} is not the partition its "
            "journal committed",
            path=where,
        )
