"""Fetching an export's pages into ``PATH.part``: in order, or spooled per window.

A sequential export (or one with a ``limit``) appends each page to ``PATH.part`` in
listing order and checkpoints the window and page token it reached. A parallel export
fetches every window at once, each into its own spool file with its own position in the
checkpoint, and appends the spools to ``PATH.part`` in window order at the end.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import defaults
from ..query import RunQuery
from .checkpoint import SpoolState
from .files import open_temp, remove, sha256_file, write_all
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
    """Fetch every window at once, each into its own spool file, then concatenate.

    Pages are written as they arrive, whatever their window, so no window waits for
    an earlier one and memory stays flat. Each spool has its own position in the
    checkpoint (page token, byte offset, runs), so a resume truncates each spool to
    its offset and continues every unfinished window where it stopped. The spools
    are appended to ``PATH.part`` in window order (the order of a sequential export)
    once all are complete; an interrupted concatenation is redone from the spools.
    """
    state = job.state
    paths = job.paths
    if state.spools is None:
        state.spools = [SpoolState() for _ in windows]
        state.base_offset = state.offset
        job.save()
    spools = state.spools
    encode = raw_encoder(job.format, csv_safe=job.identity.csv_safe)
    fds: dict[int, int] = {}
    try:
        for index, spool in enumerate(spools):
            if spool.done and state.concatenated:
                continue
            job.spool_digests[index] = state.verify_spool(paths, index)
            spool_fd = open_temp(paths.window(index))
            fds[index] = spool_fd
            os.ftruncate(spool_fd, spool.offset)
            os.lseek(spool_fd, spool.offset, os.SEEK_SET)
        positions = {i: spool.token for i, spool in enumerate(spools) if not spool.done}
        if positions:
            pages = job.client.iter_window_pages_as_fetched(
                windows, positions=positions, raw=True, concurrency=job.parallel
            )
            try:
                for item in pages:
                    page = item.page
                    spool = spools[item.window]
                    job.in_page = True
                    if page.runs:
                        data = encode(page, len(page.runs))
                        write_all(fds[item.window], data)
                        job.spool_digests[item.window].update(data)
                        state.widen_span(page.created)
                        spool.offset += len(data)
                        spool.count += len(page.runs)
                        state.count += len(page.runs)
                    spool.token = page.next_page_token
                    spool.done = page.next_page_token is None
                    job.in_page = False
                    job.pages += 1
                    job.after_page()
            finally:
                pages.close()
        state.fetched_all = True
        job.save()
        _concatenate(job, fd, fds)
    finally:
        for spool_fd in fds.values():
            os.close(spool_fd)
    for index in range(len(spools)):
        remove(paths.window(index))


def _concatenate(job: ExportJob, fd: int, fds: dict[int, int]) -> None:
    """Append the window spools to ``PATH.part`` in window order (redone if cut)."""
    state = job.state
    if state.concatenated:
        return
    base = state.base_offset
    os.ftruncate(fd, base)
    os.lseek(fd, base, os.SEEK_SET)
    job.digest, _ = sha256_file(job.paths.part, base)
    offset = base
    for index in sorted(fds):
        spool_fd = fds[index]
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
