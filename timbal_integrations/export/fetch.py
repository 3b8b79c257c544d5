"""Fetching an export's pages into ``PATH.part``: in order, or spooled per piece.

A sequential export (or one with a ``limit``) appends each page to ``PATH.part`` in
listing order and checkpoints the window and page token it reached. A parallel export
fetches pieces of time at once (pieces split while they are fetched, so uneven history
keeps every request busy), each into its own spool file with its own position in the
checkpoint, and appends the spools to ``PATH.part`` in time order at the end.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from .. import defaults
from ..client._pieces import Piece, PieceSplit, pieces_of, window_bounds
from ..query import RunQuery
from .checkpoint import SpoolState
from .files import ExportPaths, open_temp, remove, sha256_file, write_all
from .writers import raw_encoder

if TYPE_CHECKING:
    from .job import ExportJob

__all__ = ["fetch"]


def fetch(job: ExportJob, fd: int) -> None:
    """Fetch what the job's checkpoint says is left into ``PATH.part`` (open as ``fd``)."""
    state = job.state
    windows = job.windows()
    if state.spools is not None or (len(windows) > 1 and job.limit is None):
        _fetch_spooled(job, fd, windows)
        return
    if state.fetched_all:
        return
    limit = job.limit
    if limit is not None and state.count >= limit:
        state.fetched_all = True
        job.save()
        return
    encode = raw_encoder(job.format, csv_safe=job.identity.csv_safe)
    pages = job.client.iter_window_pages(
        windows, start_window=state.window, start_token=state.token, raw=True
    )
    try:
        for item in pages:
            page = item.page
            count = len(page.runs)
            if limit is not None:
                count = min(count, limit - state.count)
            job.in_page = True
            if count > 0:
                data = encode(page, count)
                write_all(fd, data)
                job.digest.update(data)
                state.widen_span(
                    page.created[:count] if count < len(page.created) else page.created
                )
                state.stats.tally(page.runs[:count] if count < len(page.runs) else page.runs)
                state.offset += len(data)
                state.count += count
            if page.next_page_token is None:
                state.window, state.token = item.window + 1, None
            else:
                state.window, state.token = item.window, page.next_page_token
            job.in_page = False
            job.pages += 1
            if limit is not None and state.count >= limit:
                break
            job.after_page()
    finally:
        pages.close()
    state.fetched_all = True
    job.save()


def _fetch_spooled(job: ExportJob, fd: int, windows: list[RunQuery]) -> None:
    """Fetch every piece at once, each into its own spool file, then concatenate.

    The listing starts from the frozen windows and splits them as it goes (pieces that
    hold more runs are shared out among the workers, see ``iter_pieces``). Pages are
    written as they arrive, whatever their piece, so no piece waits for an earlier one
    and memory stays flat. Each spool has its own position in the checkpoint (time range,
    page token, byte offset, runs), and a split adds one, with its own spool file, before
    any page of it is written. A resume truncates each spool to its offset and continues
    every unfinished piece where it stopped, once its spool's SHA-256 and runs are checked
    against the checkpoint (the piece a split came from keeps its spool and its check; the
    new piece's spool starts empty). The spools are appended to ``PATH.part`` in
    time order (the order of a sequential export) once all are complete; an interrupted
    concatenation is redone from the spools.
    """
    state = job.state
    paths = job.paths
    if state.spools is None:
        bounds = [window_bounds(window) for window in windows]
        state.spools = [_spool_of(piece) for piece in pieces_of(bounds)]
        state.next_piece = len(state.spools)
        state.base_offset = state.offset
        job.save()
    spools = {spool.id: spool for spool in state.spools}
    _remove_strays(paths, set(spools))  # spools of pieces a crash kept out of the checkpoint
    encode = raw_encoder(job.format, csv_safe=job.identity.csv_safe)
    fds: dict[int, int] = {}
    try:
        for position, spool in enumerate(state.spools):
            if spool.done and state.concatenated:
                continue  # its runs are in PATH.part, which the job has verified
            # Its SHA-256 and runs as checkpointed, or refused; then continued from there.
            job.spool_digests[spool.id] = state.verify_spool(paths, position)
            spool_fd = open_temp(paths.window(spool.id))
            fds[spool.id] = spool_fd
            os.ftruncate(spool_fd, spool.offset)
            os.lseek(spool_fd, spool.offset, os.SEEK_SET)
        todo = [_piece_of(spool) for spool in spools.values() if not spool.done]
        if todo:
            items = job.client.iter_pieces(
                job.query, todo, parallel=job.parallel, raw=True, next_id=state.next_piece
            )
            try:
                for item in items:
                    if isinstance(item, PieceSplit):
                        job.in_page = True  # cut off mid-split, the last checkpoint stands
                        _split(job, spools, fds, item)
                        job.in_page = False
                        continue
                    page = item.page
                    spool = spools[item.window]
                    job.in_page = True
                    if page.runs:
                        data = encode(page, len(page.runs))
                        write_all(fds[item.window], data)
                        job.spool_digests[item.window].update(data)
                        state.widen_span(page.created)
                        state.stats.tally(page.runs)
                        spool.offset += len(data)
                        spool.count += len(page.runs)
                        state.count += len(page.runs)
                    spool.token = page.next_page_token
                    spool.done = page.next_page_token is None
                    job.in_page = False
                    job.pages += 1
                    job.after_page()
            finally:
                items.close()
        state.fetched_all = True
        job.save()
        descending = job.query.effective_sort_order == "desc"
        order = sorted(spools.values(), key=lambda s: -s.since_ms if descending else s.since_ms)
        _concatenate(job, fd, [fds[spool.id] for spool in order if spool.id in fds])
    finally:
        for spool_fd in fds.values():
            os.close(spool_fd)
    for index in spools:
        remove(paths.window(index))


def _spool_of(piece: Piece) -> SpoolState:
    return SpoolState(
        token=piece.token,
        id=piece.id,
        since_ms=piece.since_ms,
        until_ms=piece.until_ms,
        window_since_ms=piece.window_since_ms,
        window_until_ms=piece.window_until_ms,
    )


def _piece_of(spool: SpoolState) -> Piece:
    return Piece(
        spool.id,
        spool.since_ms,
        spool.until_ms,
        spool.window_since_ms,
        spool.window_until_ms,
        spool.token,
    )


def _split(
    job: ExportJob, spools: dict[int, SpoolState], fds: dict[int, int], split: PieceSplit
) -> None:
    """A piece gave part of its range to a new one: record both, start the new spool."""
    old = spools[split.piece]
    if job.query.effective_sort_order == "desc":
        old.since_ms = split.at_ms
    else:
        old.until_ms = split.at_ms
    new = _spool_of(split.new)  # an empty spool: offset 0, the SHA-256 of nothing
    fds[new.id] = open_temp(job.paths.window(new.id), truncate=True)
    job.spool_digests[new.id] = hashlib.sha256()
    spools[new.id] = new
    state = job.state
    assert state.spools is not None
    state.spools.append(new)
    state.next_piece = max(state.next_piece, new.id + 1)


def _remove_strays(paths: ExportPaths, keep: set[int]) -> None:
    """Remove the spool files beside ``PATH.part`` that belong to no piece in ``keep``."""
    folder, name = os.path.split(paths.part)
    prefix = name + ".w"
    for entry in os.listdir(folder or "."):
        suffix = entry[len(prefix) :]
        if entry.startswith(prefix) and suffix.isdigit() and int(suffix) not in keep:
            remove(os.path.join(folder, entry))


def _concatenate(job: ExportJob, fd: int, spool_fds: list[int]) -> None:
    """Append the spools (given in time order) to ``PATH.part`` (redone if cut)."""
    state = job.state
    if state.concatenated:
        return
    base = state.base_offset
    os.ftruncate(fd, base)
    os.lseek(fd, base, os.SEEK_SET)
    job.digest, _ = sha256_file(job.paths.part, base)
    offset = base
    for spool_fd in spool_fds:
        os.lseek(spool_fd, 0, os.SEEK_SET)
        while True:
            chunk = os.read(spool_fd, defaults.SPOOL_READ_BYTES)
            if not chunk:
                break
            write_all(fd, chunk)
            job.digest.update(chunk)
            offset += len(chunk)
    os.fsync(fd)
    state.offset = offset
    state.concatenated = True
    job.save()
