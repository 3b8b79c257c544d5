"""``TimbalListRunsOperator``: the runs of one time window, into XCom or into a file.

Each task fetches the runs of its window, ``[since, until)``. By default the window is
the DAG run's data interval, so every scheduled run fetches exactly its own interval
and re-running (or backfilling) an interval fetches the same runs again::

    TimbalListRunsOperator(
        task_id="export_runs",
        output_path="s3://bucket/timbal/dt={{ data_interval_start | ds }}/runs.jsonl",
    )

Without ``output_path`` the runs go to XCom as JSON-ready dicts, at most
``max_xcom_runs`` of them (more is an error, never a silent truncation). With
``output_path`` (a local path or any ``ObjectStoragePath`` URI) the runs are streamed
to a file by the core's export writers (JSON Lines, CSV or Parquet), which replace the
previous file of that path atomically; XCom then gets a small manifest.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from airflow.sdk import (
    Asset,
    AssetAlias,
    BaseOperator,
    CronDataIntervalTimetable,
    DeltaDataIntervalTimetable,
    ObjectStoragePath,
)
from airflow.sdk.exceptions import AirflowFailException

from timbal_integrations import defaults
from timbal_integrations.config import ClientConfig
from timbal_integrations.errors import QueryError
from timbal_integrations.export import ExportProgress, ExportResult, export_runs, infer_format
from timbal_integrations.limits import Parallel, check_max_retries, check_parallel
from timbal_integrations.models import Run
from timbal_integrations.query import RunQuery, format_time

from .. import DEFAULT_CONN_ID
from .._failures import PERMANENT
from ..hooks.timbal import TimbalHook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFAULT_MAX_XCOM_RUNS", "TimbalListRunsOperator", "asset_uri"]

DEFAULT_MAX_XCOM_RUNS: Final = defaults.XCOM_MAX_RUNS
"""How many runs the operator puts into XCom at most, unless told otherwise."""

_PROGRESS_EVERY_S: Final = 10.0
_PROGRESS_EVERY_PAGES: Final = 10

_INTERVAL_KEYS: Final = ("data_interval_start", "data_interval_end")
_URI_PATH_SAFE: Final = "/:@!$&'()*+,;=~"


def _given(value: object) -> Any:
    """``None`` for a filter that is not set (templates that render empty count as unset)."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _plain_utc(value: datetime) -> datetime:
    """A standard-library aware UTC datetime (pendulum's subclass has other arithmetic)."""
    v = value.astimezone(UTC) if value.tzinfo is not None else value
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def _whole(name: str, value: object, *, minimum: int) -> int | None:
    """A whole number from an int or a digit string (templates render strings)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise QueryError(name, f"{value!r} is not a whole number (at least {minimum})")
    return value


def _parallel(value: object) -> Parallel:
    """A templated ``parallel``: a whole number (templates render strings) or ``auto``."""
    given = _given(value)
    if isinstance(given, str) and given.strip().isascii() and given.strip().isdigit():
        given = int(given.strip())
    return check_parallel(given)


def _is_local(path: str) -> bool:
    """A plain path or a ``file://`` URI (written in place, atomically by rename)."""
    scheme = urlsplit(path).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and path[1:2] == ":")  # C:\ on Windows


def _local_path(path: str) -> Path:
    if path.startswith("file://"):
        return Path(urlsplit(path).path)
    return Path(path).expanduser()


def asset_uri(output_path: str) -> str:
    """The asset URI of a file the operator writes: ``file://`` and an absolute path for
    a local file, the URI itself (less any ``conn_id@``) for object storage."""
    if _is_local(output_path):
        # Percent-encode only what a URI path cannot hold: dt=2025-12-14 stays readable.
        return "file://" + quote(str(_local_path(output_path).absolute()), safe=_URI_PATH_SAFE)
    parts = urlsplit(output_path)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def _has_interval_timetable(dag: Any) -> bool:
    timetable = getattr(dag, "timetable", None)
    return isinstance(timetable, CronDataIntervalTimetable | DeltaDataIntervalTimetable)


def _no_interval_advice(context: Context) -> str:
    """How to give a DAG run with no data interval a window, for this DAG."""
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or "<dag_id>"
    trigger = f"airflow dags trigger {dag_id} --logical-date 2025-12-15T00:00:00+00:00"
    if _has_interval_timetable(dag):
        return (
            f"trigger it with a logical date (e.g. `{trigger}`, or the logical date field "
            "of the UI's trigger form), which gives it the interval that ends then"
        )
    return (
        "pass since= and until= (e.g. since='2026-11-01', until='2026-11-02'), or schedule "
        "the DAG with a data-interval timetable such as CronDataIntervalTimetable('0 0 * * *', "
        f"timezone='UTC') and trigger it with a logical date (`{trigger}`)"
    )


class _Progress:
    """Logs pages, runs and the rate: the first page, then every few pages or seconds."""

    def __init__(self, log: Any, what: str) -> None:
        self._log = log
        self._what = what
        self._started = time.monotonic()
        self._last = self._started
        self.pages = 0
        self.runs = 0

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self.runs / elapsed if elapsed > 0 else 0.0

    def page(self, runs_so_far: int) -> None:
        self.pages += 1
        self.runs = runs_so_far
        now = time.monotonic()
        if (
            self.pages == 1
            or self.pages % _PROGRESS_EVERY_PAGES == 0
            or now - self._last >= _PROGRESS_EVERY_S
        ):
            self._last = now
            self._log.info(
                "%s: page %d, %d runs so far (%.0f runs/s)",
                self._what,
                self.pages,
                self.runs,
                self.rate(),
            )

    def export(self, status: ExportProgress) -> None:
        """The ``progress`` callback of :func:`export_runs` (called after every page)."""
        if status.phase == "fetching":
            self.page(status.count)
        elif status.phase == "converting":
            self._log.info("%s: converting %d runs", self._what, status.count)

    def done(self, suffix: str = "") -> None:
        elapsed = time.monotonic() - self._started
        self._log.info(
            "%s: done, %d runs in %d page(s) in %.2fs (%.0f runs/s)%s",
            self._what,
            self.runs,
            self.pages,
            elapsed,
            self.rate(),
            suffix,
        )


class _Lineage(NamedTuple):
    """What a finished task read and wrote, for OpenLineage."""

    config: ClientConfig
    query: RunQuery
    manifest: Mapping[str, Any] | None


class TimbalListRunsOperator(BaseOperator):
    """Fetch the Timbal runs of a time window into XCom, or stream them into a file.

    Filters (all templated, the same names as everywhere in timbal-integrations):

    :param status: run status (``success``, ``error``, ``cancelled``, ``running``, ...).
    :param user_id: only runs started by this user.
    :param sentiment: the last reaction's sentiment.
    :param group_id: only runs of this conversation group.
    :param workforce_id: only runs of this agent or workflow.
    :param rev: only runs of this revision (runs with no recorded branch are included).
    :param since: start of the window, inclusive. Defaults to ``data_interval_start``.
    :param until: end of the window, exclusive. Defaults to ``data_interval_end``.
    :param metadata: a dict (or JSON object string) the runs' metadata must match.
    :param roots: only runs that start a conversation (``True``) or only follow-ups.
    :param sort_by: ``id``, ``created_at`` (default), ``duration_ms``, ``cost_usd``,
        ``cost_credits``.
    :param sort_order: ``asc`` or ``desc`` (default).

    Output and connection:

    :param limit: fetch at most this many runs (templated).
    :param output_path: where to write the runs (templated): a local path or an
        ``ObjectStoragePath`` URI such as ``s3://bucket/timbal/dt={{ ds }}/runs.jsonl``.
        Without it the runs go to XCom.
    :param format: ``jsonl``, ``csv`` or ``parquet`` (templated); inferred from the
        path's extension when left out.
    :param output_conn_id: the Airflow connection of the object store (for
        ``ObjectStoragePath``), when the URI does not name one.
    :param write_manifest: also write ``<output_path>.manifest.json`` (the filters, the
        window, the count, the SHA-256...) beside the file (default True).
    :param csv_safe: CSV files only (default False): write text cells that start with
        ``=``, ``+``, ``-``, ``@``, a tab or a carriage return with a ``'`` before them,
        so that a spreadsheet cannot read them as formulas. It changes those cells; the
        manifest records ``"csv_safe": true``.
    :param max_xcom_runs: the most runs put into XCom (default 1,000); a window with
        more fails the task and asks for ``output_path``.
    :param parallel: with ``output_path``: how many requests to keep in flight (1 to
        64) over pieces of the window that balance themselves, or ``"auto"``: as many
        as throughput and the API's rate limit allow (templated; default: one at a time).
        The file is the same as a sequential export's.
    :param max_retries: retries of a request that failed with 429, 5xx or a network
        error, honouring ``Retry-After``. Default inside Airflow: 4 retries with at most
        7.5 s of backoff per request
        (:data:`~airflow_provider.hooks.timbal.AIRFLOW_RETRY_POLICY`); at most
        :data:`~timbal_integrations.defaults.MAX_RETRIES_LIMIT` (100). A value changes
        the count, not the backoff ceilings.
    :param timbal_conn_id: the Timbal connection (default ``timbal_default``).
    :param org_id: overrides the connection's ``org_id`` (templated).
    :param project_id: overrides the connection's ``project_id`` (templated).

    Returns (to XCom) the runs as JSON-ready dicts, or with ``output_path`` a manifest:
    ``path``, ``format``, ``count``, ``since``, ``until``, ``first_created_at``,
    ``last_created_at``, ``bytes``, ``sha256`` and ``filters``.

    Assets: with ``outlets=[AssetAlias("timbal_runs")]``, each file written becomes an
    asset event of the file's asset (:func:`asset_uri`), with ``count``, ``sha256``,
    ``bytes``, ``format``, ``since`` and ``until`` in its extra; DAGs scheduled on the
    alias run when a file lands. Lineage: :meth:`get_openlineage_facets_on_complete`.
    """

    template_fields: Sequence[str] = (
        "status",
        "user_id",
        "sentiment",
        "group_id",
        "workforce_id",
        "rev",
        "since",
        "until",
        "metadata",
        "roots_only",
        "sort_by",
        "sort_order",
        "limit",
        "output_path",
        "format",
        "parallel",
        "org_id",
        "project_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"metadata": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        sentiment: str | None = None,
        group_id: str | None = None,
        workforce_id: str | None = None,
        rev: str | None = None,
        since: datetime | str | int | None = None,
        until: datetime | str | int | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        roots: bool | str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        limit: int | str | None = None,
        output_path: str | None = None,
        format: str | None = None,
        output_conn_id: str | None = None,
        write_manifest: bool = True,
        csv_safe: bool = False,
        max_xcom_runs: int = DEFAULT_MAX_XCOM_RUNS,
        max_retries: int | None = None,
        timbal_conn_id: str = DEFAULT_CONN_ID,
        org_id: str | None = None,
        project_id: str | None = None,
        parallel: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.user_id = user_id
        self.sentiment = sentiment
        self.group_id = group_id
        self.workforce_id = workforce_id
        self.rev = rev
        self.since = since
        self.until = until
        if isinstance(metadata, Mapping):
            # Checked now: Airflow walks a templated dict when the DAG is parsed, and one
            # nested thousands deep would crash it there (a string is checked at run time).
            RunQuery(metadata=metadata)
        self.metadata = metadata
        # ``roots`` is a read-only property of BaseOperator (the DAG's root tasks).
        self.roots_only = roots
        self.sort_by = sort_by
        self.sort_order = sort_order
        self.limit = limit
        self.output_path = output_path
        self.format = format
        self.output_conn_id = output_conn_id
        self.write_manifest = write_manifest
        if not isinstance(csv_safe, bool):
            raise QueryError("csv_safe", f"{csv_safe!r} is not True or False")
        self.csv_safe = csv_safe
        if isinstance(max_xcom_runs, bool) or not isinstance(max_xcom_runs, int):
            raise QueryError("max_xcom_runs", f"{max_xcom_runs!r} is not a whole number")
        if max_xcom_runs < 1:
            raise QueryError("max_xcom_runs", f"{max_xcom_runs} is not a positive number")
        self.max_xcom_runs = max_xcom_runs
        self.max_retries = check_max_retries(max_retries)
        self.timbal_conn_id = timbal_conn_id
        self.org_id = org_id
        self.project_id = project_id
        self.parallel = parallel
        self._lineage: _Lineage | None = None

    # -- building the query ---------------------------------------------------------------

    def _window(self, context: Context) -> tuple[Any, Any]:
        """``since``/``until``: the arguments when given, else the run's data interval."""
        since = _given(self.since)
        until = _given(self.until)
        if since is not None and until is not None:
            return since, until
        start = context.get("data_interval_start")
        end = context.get("data_interval_end")
        if start is None or end is None:
            missing = " and ".join(
                name for name, value in (("since", since), ("until", until)) if value is None
            )
            raise QueryError(
                "since" if since is None else "until",
                f"this DAG run has no data interval to take {missing} from (it was "
                f"triggered without a logical date): {_no_interval_advice(context)}",
            )
        if since is None and until is None and start == end:
            raise QueryError(
                "since",
                f"this DAG run's data interval is empty ({format_time(_plain_utc(start))} to "
                "itself): Airflow 3's schedule='@daily' and other cron strings give "
                "zero-width intervals; use schedule=CronDataIntervalTimetable('0 0 * * *', "
                "timezone='UTC') or pass since= and until=",
            )
        return (
            _plain_utc(start) if since is None else since,
            _plain_utc(end) if until is None else until,
        )

    def build_query(self, context: Context) -> RunQuery:
        """The validated :class:`RunQuery` of this task instance (after templating)."""
        since, until = self._window(context)
        values: dict[str, Any] = {
            "status": self.status,
            "user_id": self.user_id,
            "sentiment": self.sentiment,
            "group_id": self.group_id,
            "workforce_id": self.workforce_id,
            "rev": self.rev,
            "since": since,
            "until": until,
            "metadata": self.metadata,
            "roots": self.roots_only,
            "sort_by": self.sort_by,
            "sort_order": self.sort_order,
        }
        filters = {name: _given(value) for name, value in values.items()}
        for name in ("since", "until"):
            if isinstance(filters[name], datetime):
                filters[name] = _plain_utc(filters[name])
        return RunQuery.from_filters(filters)

    # -- running ------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        """Render templates; a template that needs the data interval of a DAG run that has
        none (triggered without a logical date) fails the task with one line, not with
        Jinja's ``UndefinedError`` and a traceback, and without retries."""
        import jinja2

        if parent is not self or all(context.get(key) is not None for key in _INTERVAL_KEYS):
            super()._do_render_template_fields(
                parent, template_fields, context, jinja_env, seen_oids
            )
            return
        for name in template_fields:
            try:
                super()._do_render_template_fields(parent, [name], context, jinja_env, seen_oids)
            except jinja2.UndefinedError:
                raise AirflowFailException(
                    f"{name}: its template needs the data interval, which this DAG run does "
                    f"not have (it was triggered without a logical date): "
                    f"{_no_interval_advice(context)}"
                ) from None

    def execute(self, context: Context) -> Any:
        """Fetch the window's runs; return them (XCom) or write them and return a manifest."""
        self._lineage = None
        hook = TimbalHook(
            self.timbal_conn_id,
            org_id=_given(self.org_id),
            project_id=_given(self.project_id),
            max_retries=self.max_retries,
        )
        try:
            query = self.build_query(context)
            limit = _whole("limit", self.limit, minimum=0)
            parallel = _parallel(self.parallel)
            fmt = _given(self.format)
            if fmt is not None:
                infer_format("", fmt)  # a bad format fails even when output goes to XCom
            if self.csv_safe and _given(self.output_path) is None:
                raise QueryError("csv_safe", "only applies to a CSV file; set output_path=")
            client = hook.get_conn()
        except PERMANENT as error:
            raise AirflowFailException(hook.describe(error)) from None
        config = client.config
        window = self._describe(query)
        self.log.info(
            "Fetching Timbal runs %s from %s (org %s, project %s)",
            window,
            config.base_url,
            config.org_id,
            config.project_id,
        )
        try:
            output_path = _given(self.output_path)
            if output_path is None:
                runs = self._to_xcom(hook, query, limit, window)
                self._lineage = _Lineage(config, query, None)
                return runs
            manifest = self._to_file(hook, query, limit, str(output_path).strip(), parallel)
        except PERMANENT as error:
            raise AirflowFailException(hook.describe(error)) from None
        finally:
            hook.close()
        self._lineage = _Lineage(config, query, manifest)
        self._emit_asset_events(context, manifest)
        return manifest

    # -- assets and lineage ----------------------------------------------------------------

    def _emit_asset_events(self, context: Context, manifest: Mapping[str, Any]) -> None:
        """Attach the written file to this task's asset outlets.

        Through each ``AssetAlias`` outlet the file's asset (its URI from ``output_path``)
        gets an event; an ``Asset`` outlet with that same URI gets the extra on the event
        Airflow emits for it. The extra: ``count``, ``sha256``, ``bytes``, ``format``,
        ``since`` and ``until``.
        """
        outlets = [o for o in self.outlets if isinstance(o, Asset | AssetAlias)]
        if not outlets:
            return
        uri = asset_uri(str(manifest["path"]))
        extra = {
            key: manifest[key] for key in ("count", "sha256", "bytes", "format", "since", "until")
        }
        events = context["outlet_events"]
        for outlet in outlets:
            if isinstance(outlet, AssetAlias):
                events[outlet].add(Asset(uri), extra=extra)
                self.log.info("Asset event for %s through the alias %r", uri, outlet.name)
            elif unquote(outlet.uri) == unquote(uri):
                events[outlet].extra.update(extra)
                self.log.info("Asset event for %s", uri)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage facets of the finished task (called by the OpenLineage provider).

        Input: the Timbal project's runs (namespace ``timbal://<host>``, name
        ``orgs/<org>/projects/<project>/runs``) with the filters and the window as a
        facet. Output, when a file was written: the file, with its row count and size.
        Returns None when the OpenLineage provider is not installed.
        """
        if self._lineage is None:
            return None
        try:
            from .._lineage import operator_lineage
        except ImportError:
            return None
        return operator_lineage(self._lineage.config, self._lineage.query, self._lineage.manifest)

    @staticmethod
    def _describe(query: RunQuery) -> str:
        shown = query.as_dict()
        window = f"[{shown.pop('since', '-inf')}, {shown.pop('until', 'now')})"
        if shown:
            window += " where " + ", ".join(f"{k}={v}" for k, v in shown.items())
        return window

    def _to_xcom(
        self, hook: TimbalHook, query: RunQuery, limit: int | None, window: str
    ) -> list[dict[str, Any]]:
        bound = self.max_xcom_runs
        runs: list[dict[str, Any]] = []
        progress = _Progress(self.log, "Timbal runs to XCom")
        if limit == 0:
            return runs
        for run in self._runs(hook, query, progress):
            if len(runs) >= bound:
                raise AirflowFailException(
                    f"the window {window} holds more than {bound} runs, more than XCom "
                    f"should carry (max_xcom_runs={bound}); set output_path= to write them "
                    "to a file (e.g. output_path='s3://bucket/timbal/dt={{ "
                    "data_interval_start | ds }}/runs.jsonl'), narrow the filters, "
                    "or raise max_xcom_runs"
                )
            runs.append(run.to_json_dict())
            if limit is not None and len(runs) >= limit:
                break  # no request beyond the page that holds the last run wanted
        progress.runs = len(runs)
        progress.done()
        return runs

    @staticmethod
    def _runs(hook: TimbalHook, query: RunQuery, progress: _Progress) -> Iterator[Run]:
        count = 0
        for page in hook.iter_pages(query):
            count += len(page.runs)
            progress.page(count)
            yield from page.runs

    def _to_file(
        self,
        hook: TimbalHook,
        query: RunQuery,
        limit: int | None,
        output_path: str,
        parallel: Parallel = 1,
    ) -> dict[str, Any]:
        fmt = infer_format(output_path, _given(self.format))
        client = hook.get_conn()
        progress = _Progress(self.log, f"Timbal runs to {fmt}")
        if _is_local(output_path):
            result = export_runs(
                client,
                query,
                _local_path(output_path),
                format=fmt,
                limit=limit,
                parallel=parallel,
                manifest=self.write_manifest,
                progress=progress.export,
                csv_safe=self.csv_safe,
            )
            progress.done(f", {result.bytes:,} bytes to {result.path}")
            return self._manifest(result, result.path, result.manifest_path)
        target = ObjectStoragePath(output_path, conn_id=self.output_conn_id)
        manifest_target: ObjectStoragePath | None = None
        with tempfile.TemporaryDirectory(prefix="timbal-export-") as scratch:
            local = Path(scratch) / (target.name or f"runs.{fmt}")
            result = export_runs(
                client,
                query,
                local,
                format=fmt,
                limit=limit,
                parallel=parallel,
                manifest=self.write_manifest,
                progress=progress.export,
                csv_safe=self.csv_safe,
            )
            progress.done(f", {result.bytes:,} bytes")
            # One upload per object: S3, GCS and Azure Blob make an object visible only
            # once it is complete, so readers see the old partition or the new one.
            self.log.info("Uploading %s bytes to %s", f"{result.bytes:,}", output_path)
            target.fs.put_file(str(local), target.path)
            if result.manifest_path is not None:
                manifest_target = ObjectStoragePath(
                    output_path + ".manifest.json", conn_id=self.output_conn_id
                )
                manifest_target.fs.put_file(result.manifest_path, manifest_target.path)
        return self._manifest(
            result, output_path, None if manifest_target is None else output_path + ".manifest.json"
        )

    @staticmethod
    def _manifest(result: ExportResult, path: str, manifest_path: str | None) -> dict[str, Any]:
        """The small JSON-ready description of a written file that goes to XCom."""
        described = result.to_dict()
        return {
            "path": path,
            "format": result.format,
            "count": result.count,
            "since": described["since"],
            "until": described["until"],
            "first_created_at": described["first_created_at"],
            "last_created_at": described["last_created_at"],
            "bytes": result.bytes,
            "sha256": result.sha256,
            "filters": described["filters"],
            "manifest_path": manifest_path,
        }
