"""Opening a dataset for a sync: its state and manifest read, checked and settled.

:func:`open_dataset` reads ``state.json`` and ``manifest.json`` (refusing a dataset whose
files contradict each other, or whose settings differ from this sync's), settles what a
sync keeps from one pass to the next when it is not told (the format, the lookback),
and plans the window the sync lists (:func:`~timbal_integrations.sync.plan.plan_window`).
It writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from .. import defaults
from ..errors import SyncStateError
from ..export.writers import pyarrow_modules
from ..query import RunQuery
from .dataset import Manifest, parse_manifest
from .plan import Window, plan_window
from .state import DatasetIdentity, SyncState, parse_state
from .store import MANIFEST, STATE, DatasetStore

if TYPE_CHECKING:
    from ..config import ClientConfig

__all__ = ["DEFAULT_LOOKBACK", "Opened", "open_dataset"]

DEFAULT_LOOKBACK: Final = timedelta(seconds=defaults.SYNC_LOOKBACK_SECONDS)
"""How far back of the high-water mark a sync lists runs again, unless told (3 days)."""

_TIME_FILTERS: Final = ("since", "until", "sort_by", "sort_order")


@dataclass(frozen=True)
class Opened:
    """A dataset as a sync finds it, and what this sync will do with it."""

    state: SyncState | None
    """The dataset's state (None: a first sync, or a full refresh)."""
    manifest: Manifest
    """Its manifest (an empty one for a first sync or a full refresh)."""
    format: str
    lookback: timedelta
    identity: DatasetIdentity
    """What the dataset is, as this sync sees it (checked against the state's)."""
    window: Window
    """The runs this sync lists."""


def open_dataset(
    store: DatasetStore,
    query: RunQuery,
    config: ClientConfig,
    *,
    format: str | None,
    lookback: timedelta | None,
    full_refresh: bool,
    now: datetime,
) -> Opened:
    """Read and check the dataset in ``store`` for a sync of ``query`` at ``now``.

    ``format`` and ``lookback`` are the sync's arguments (None: the dataset's, or the
    defaults for a new one). Raises :class:`SyncStateError` when the dataset cannot be
    continued as it is, and :class:`~timbal_integrations.errors.SyncMismatchError` when
    a setting differs from the dataset's.
    """
    state_data = store.read(STATE)
    manifest_data = store.read(MANIFEST)
    state: SyncState | None = None
    previous: SyncState | None = None
    manifest: Manifest | None = None
    if full_refresh:
        # Rebuilt from nothing: the old state only says the format and lookback to
        # keep when none is given (a damaged one says nothing).
        try:
            previous = None if state_data is None else parse_state(state_data, "")
        except SyncStateError:
            previous = None
    elif state_data is not None:
        previous = state = parse_state(state_data, store.where(STATE))
        if manifest_data is None:
            raise SyncStateError(
                f"the dataset in {store.location} has a {STATE} but no {MANIFEST}",
                path=store.where(MANIFEST),
            )
        manifest = parse_manifest(manifest_data, store.where(MANIFEST))
    elif manifest_data is not None or store.partition_names():
        raise SyncStateError(
            f"{store.location} holds partitions or a {MANIFEST} but no {STATE}: it was "
            "not made by a sync, or its state was removed",
            path=store.where(STATE),
        )
    fmt = "jsonl"
    if format is not None:
        fmt = format
    elif previous is not None:
        fmt = previous.identity.format
    if fmt == "parquet":
        pyarrow_modules()
    span = DEFAULT_LOOKBACK
    if lookback is not None:
        span = lookback
    elif previous is not None:
        span = previous.lookback
    identity = DatasetIdentity(
        format=fmt,
        filters={k: v for k, v in query.as_dict().items() if k not in _TIME_FILTERS},
        base_url=config.base_url,
        org_id=config.org_id,
        project_id=config.project_id,
    )
    if state is not None and manifest is not None:
        state.check(identity, query.since, query.until, store.location)
        if manifest.format != fmt:
            raise SyncStateError(
                f"the manifest {store.where(MANIFEST)} describes {manifest.format} "
                f"partitions, but the state says {fmt}",
                path=store.where(MANIFEST),
            )
    else:
        manifest = Manifest(fmt)
    window = plan_window(state, query, now, span)
    return Opened(state, manifest, fmt, span, identity, window)
