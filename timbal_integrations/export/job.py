"""The export job: :func:`export_runs`, one attempt at exporting a query to a file.

An attempt opens (or resumes) ``PATH.part`` under a lock, freezes the time window, fetches
pages into it (:mod:`~timbal_integrations.export.fetch`), finishes the format (syncs and
hashes JSON Lines or CSV; converts the Parquet spool), renames the file into place and
writes the manifest. The checkpoint (:mod:`~timbal_integrations.export.checkpoint`) is
saved as pages are written, so that any interruption can be resumed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from .. import defaults
from ..errors import ExportError, QueryError
from ..limits import Parallel, check_limit, check_parallel
from ..query import RunQuery, to_epoch_ms
from .checkpoint import Checkpoint, Finished, Identity
from .checkpoint_load import read_checkpoint
from .fetch import fetch
from .files import (
    ExportPaths,
    check_target,
    fsync_dir,
    fsync_path,
    lock,
    open_temp,
    remove,
    replace_json,
    sha256_file,
    write_all,
)
from .results import (
    ExportProgress,
    ExportResult,
    manifest_document,
    result_of,
)
from .writers import CsvWriter, ParquetWriter, check_csv_safe, infer_format, pyarrow_modules

if TYPE_CHECKING:
    from ..client import TimbalClient

__all__ = ["export_runs"]

logger = logging.getLogger("timbal_integrations.export")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else to_epoch_ms(value)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(milliseconds=value)


class ExportJob:
    """One attempt at an export (fresh or resumed); :func:`export_runs` runs it."""

    def __init__(
        self,
        client: TimbalClient,
        query: RunQuery,
        paths: ExportPaths,
        fmt: str,
        *,
        resume: bool,
        parallel: Parallel,
        limit: int | None,
        manifest: bool,
        progress: Callable[[ExportProgress], None] | None,
        now: datetime,
        csv_safe: bool = False,
    ) -> None:
        self.client = client
        self.query = query
        self.paths = paths
        self.format = fmt
        self.resume = resume
        self.parallel = parallel
        self.limit = limit
        self.manifest = manifest
        self.progress = progress
        self.now = now
        config = client.config
        self.identity = Identity(
            format=fmt,
            filters=query.as_dict(),
            parallel=parallel,
            limit=limit,
            base_url=config.base_url,
            org_id=config.org_id,
            project_id=config.project_id,
            csv_safe=csv_safe,
        )
        self.state = Checkpoint(identity=self.identity, started_at=now)
        self.resumed = False
        self.resumed_from = 0
        self.started = time.monotonic()
        self.pages = 0
        self.digest: Any = hashlib.sha256()
        """The SHA-256 of ``PATH.part`` so far (its bytes the checkpoint covers)."""
        self.spool_digests: dict[int, Any] = {}
        """The SHA-256 of each piece's spool so far, by piece id (a parallel export)."""
        self.in_page = False
        """True while a page's bytes and bookkeeping, or a split's two pieces, are being
        written: the state is then not one to checkpoint."""
        self._last_save = time.monotonic()

    # -- bookkeeping

    def save(self) -> None:
        """Replace the checkpoint with the current state (and the hashes of what it
        covers)."""
        state = self.state
        state.sha256 = self.digest.hexdigest()
        for spool in state.spools or ():
            digest = self.spool_digests.get(spool.id)
            if digest is not None:
                spool.sha256 = digest.hexdigest()
        state.save(self.paths)
        self._last_save = time.monotonic()

    def report(self, phase: str) -> None:
        """Hand the progress to the ``progress`` callback, if any."""
        if self.progress is not None:
            self.progress(
                ExportProgress(
                    count=self.state.count,
                    pages=self.pages,
                    bytes=self.state.offset,
                    elapsed=time.monotonic() - self.started,
                    resumed_from=self.resumed_from,
                    phase=phase,
                )
            )

    def after_page(self) -> None:
        """After a page is written: checkpoint when one is due, and report."""
        if time.monotonic() - self._last_save >= defaults.CHECKPOINT_INTERVAL:
            self.save()
        self.report("fetching")

    def windows(self) -> list[RunQuery]:
        """The frozen windows, as queries."""
        return [
            self.query.replace(since=_from_ms(lo), until=_from_ms(hi))
            for lo, hi in self.state.windows
        ]

    # -- the steps

    def run(self) -> ExportResult:
        """Export, resuming if asked and possible; returns what was written."""
        paths = self.paths
        os.makedirs(os.path.dirname(paths.target), exist_ok=True)
        check_target(paths.target)
        old = self._previous()
        if old is not None and self.resume:
            if old.identity != self.identity:
                raise QueryError(
                    "resume",
                    f"the interrupted export of {paths.target} was a different export "
                    f"({old.identity.difference(self.identity)}); run without resume to "
                    "start over",
                )
            if old.finished is not None:
                done = self._recover_finished(old)
                if done is not None:
                    return done
        created = not os.path.exists(paths.part)
        fd = open_temp(paths.part)
        try:
            lock(fd, paths)
            try:
                self._open(fd, old)
            except BaseException:
                if created and not os.path.exists(paths.checkpoint):
                    remove(paths.part)  # nothing was started: leave nothing behind
                raise
            try:
                fetch(self, fd)
            except BaseException as exc:
                self._save_after_failure(exc)
                raise
            if self.format == "parquet":
                os.fsync(fd)
                self._convert()
            else:
                self._finish_stream(fd)
            return self._publish()
        finally:
            os.close(fd)

    def _previous(self) -> Checkpoint | None:
        """The checkpoint an earlier attempt left, if any. An unreadable one fails a
        resume (naming what is wrong) and is discarded otherwise."""
        try:
            return read_checkpoint(self.paths)
        except ExportError as exc:
            if self.resume:
                raise
            logger.warning("%s", exc)
            return None

    def _open(self, fd: int, old: Checkpoint | None) -> None:
        """Start fresh, or resume from the checkpoint ``old`` (truncating past it)."""
        paths = self.paths
        size = os.fstat(fd).st_size
        if self.resume and old is not None and old.finished is None:
            self.digest = old.verify_part(paths)  # its hash and runs, or refused
            os.ftruncate(fd, old.offset)
            os.lseek(fd, old.offset, os.SEEK_SET)
            self.state = old
            self.resumed = True
            self.resumed_from = old.count
            self.now = old.started_at
            return
        if old is not None or size:
            saved = f" ({old.count:,} runs)" if old is not None else ""
            logger.warning(
                "discarding the partial export %s%s left by an interrupted export "
                "(resume=True, or timbal-runs export --resume, continues one instead)",
                paths.part,
                saved,
            )
        remove(paths.checkpoint)  # it describes data about to be dropped
        for index in range(len(old.windows) if old is not None else 0):
            remove(paths.window(index))
        for spool in (old.spools or []) if old is not None else []:
            remove(paths.window(spool.id))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        remove(paths.convert)
        self.state = Checkpoint(identity=self.identity, started_at=self.now)
        if self.format == "csv":
            header = CsvWriter.header()
            write_all(fd, header)
            self.digest.update(header)
            self.state.offset = len(header)
        self._resolve_windows()
        self.save()

    def _resolve_windows(self) -> None:
        """Freeze the window: ``until`` defaults to now, and parallel windows are cut once."""
        query = self.query
        if query.until is None:
            now = self.now.astimezone(UTC)
            until = now.replace(microsecond=now.microsecond // 1000 * 1000)
            query = query.replace(until=until + timedelta(milliseconds=1))
        if self.parallel == 1:
            windows = [query]
        else:
            # One window per fetcher: measured best on evenly spread history (more, smaller
            # windows end in more partial pages; see benchmarks/RESULTS.md).
            windows = self.client.resolve_windows(query, self.parallel)
        self.state.windows = [(_ms(w.since), _ms(w.until)) for w in windows]
        starts = [w.since for w in windows]
        since = query.since if not windows or None in starts else min(filter(None, starts))
        self.state.since_ms = _ms(since)
        self.state.until_ms = _ms(query.until)

    def _save_after_failure(self, exc: BaseException) -> None:
        """Keep the progress made for a later resume, and say so on the exception. Cut
        off in the middle of a page, the last checkpoint stands (it is at most
        ``CHECKPOINT_INTERVAL`` old)."""
        if not self.in_page:
            with contextlib.suppress(Exception):
                self.save()
        with contextlib.suppress(Exception):
            exc.add_note(
                f"{self.state.count:,} runs are saved in {self.paths.part}; "
                "export again with resume=True (timbal-runs export --resume) to continue"
            )

    def _finish_stream(self, fd: int) -> None:
        os.fsync(fd)
        self.state.finished = Finished(bytes=self.state.offset, sha256=self.digest.hexdigest())
        self.save()

    def _convert(self) -> None:
        """Turn the spool into Parquet, streaming, in row groups; then hash the result."""
        paths = self.paths
        self.report("converting")
        remove(paths.convert)
        target = os.fdopen(open_temp(paths.convert, truncate=True), "wb")
        writer = ParquetWriter(target)
        try:
            remaining = self.state.offset
            with open(paths.part, "rb") as spool:
                tail = b""
                while remaining > 0:
                    chunk = spool.read(min(defaults.SPOOL_READ_BYTES, remaining))
                    if not chunk:
                        raise ExportError(
                            f"{paths.part} ended before its checkpoint", path=paths.part
                        )
                    remaining -= len(chunk)
                    lines = (tail + chunk).split(b"\n")
                    tail = lines.pop()
                    writer.write_rows(orjson.loads(line) for line in lines if line)
                if tail:
                    writer.write_rows([orjson.loads(tail)])
            writer.close()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            target.close()
            remove(paths.convert)
            raise
        target.close()
        if writer.rows != self.state.count:
            remove(paths.convert)
            raise ExportError(
                f"{paths.part} holds {writer.rows} runs but its checkpoint says "
                f"{self.state.count}; run without resume to start over",
                path=paths.part,
            )
        fsync_path(paths.convert)
        digest, size = sha256_file(paths.convert)
        self.state.finished = Finished(bytes=size, sha256=digest.hexdigest())
        self.save()
        os.replace(paths.convert, paths.part)

    def _publish(self) -> ExportResult:
        """Rename the finished file into place, write the manifest, drop the checkpoint."""
        paths = self.paths
        remove(paths.manifest)
        os.replace(paths.part, paths.target)
        fsync_dir(paths.target)
        return self._complete()

    def _complete(self) -> ExportResult:
        paths = self.paths
        result = result_of(self.state, paths, manifest=self.manifest, resumed=self.resumed)
        if self.manifest:
            replace_json(paths.manifest, manifest_document(result, self.state))
        for leftover in paths.leftovers():
            remove(leftover)
        return result

    def _recover_finished(self, old: Checkpoint) -> ExportResult | None:
        """The last attempt died after finishing the file: publish it if it is intact."""
        paths = self.paths
        finished = old.finished

        def intact(path: str) -> bool:
            if finished is None:
                return False
            try:
                digest, size = sha256_file(path)
            except (FileNotFoundError, ExportError):  # missing, or not a regular file
                return False
            return bool(size == finished.bytes and digest.hexdigest() == finished.sha256)

        self.state = old
        self.resumed = True
        if intact(paths.convert):  # died between converting and renaming the Parquet file
            os.replace(paths.convert, paths.part)
        if intact(paths.part):
            return self._publish()
        if not os.path.exists(paths.part) and intact(paths.target):
            return self._complete()  # died after the rename: only the manifest was missing
        self.state = Checkpoint(identity=self.identity, started_at=self.now)
        self.resumed = False
        return None


def export_runs(
    client: TimbalClient,
    query: RunQuery,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    resume: bool = False,
    parallel: Parallel | None = None,
    limit: int | None = None,
    manifest: bool = True,
    progress: Callable[[ExportProgress], None] | None = None,
    now: datetime | None = None,
    csv_safe: bool = False,
) -> ExportResult:
    """Export every run matching ``query`` to the local file ``path``, atomically.

    ``format`` is one of :data:`FORMATS` (default: from the extension). ``resume``
    continues an interrupted export of the same query and format from its checkpoint
    (without it, a stale partial export is discarded, with a warning on the
    ``timbal_integrations.export`` logger). ``parallel=N`` keeps N requests in flight over
    pieces of time that split as they are fetched; ``parallel="auto"`` picks N itself
    within the API's rate limit (sort by created_at only; a missing ``since`` is found
    with one request). The file is the same, byte for byte, as a sequential export's.
    ``limit`` caps the number of runs. ``progress`` is called after every page. ``now``
    (default: the current time) is what a missing ``until`` is frozen to. ``csv_safe``
    (CSV only, off by default) makes the file safe to open in a spreadsheet: a text cell
    starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a
    ``'`` before it (see :func:`~timbal_integrations.export.records.csv_safe_cell`); the
    manifest records ``"csv_safe": true``.

    Raises :class:`QueryError` for a bad argument (naming it), :class:`ExportError` when
    the file cannot be written or resumed, and the client's errors for API failures;
    after a failure the progress made is kept for ``resume=True``.
    """
    fmt = infer_format(path, format)
    n = check_parallel(parallel)
    check_limit(limit)
    check_csv_safe(csv_safe, fmt)
    if not isinstance(query, RunQuery):
        raise QueryError("query", f"a {type(query).__name__} is not a RunQuery")
    if fmt == "parquet":
        pyarrow_modules()
    reference = (now or datetime.now(UTC)).astimezone(UTC)
    job = ExportJob(
        client,
        query,
        ExportPaths(path),
        fmt,
        resume=resume,
        parallel=n,
        limit=limit,
        manifest=manifest,
        progress=progress,
        now=reference,
        csv_safe=csv_safe,
    )
    try:
        result = job.run()
    except OSError as exc:
        error = ExportError(
            f"cannot write {job.paths.target}: {exc.strerror or exc}", path=job.paths.target
        )
        for note in getattr(exc, "__notes__", ()):
            error.add_note(note)
        raise error from exc
    job.report("done")
    return result
