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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from airflow.sdk.exceptions import AirflowFailException

from timbal_integrations import defaults
from timbal_integrations.config import ClientConfig
from timbal_integrations.errors import QueryError
from timbal_integrations.export import infer_format
from timbal_integrations.models import Run
from timbal_integrations.query import RunQuery

from ..hooks.timbal import TimbalHook
from ._arguments import given, read_limit, read_parallel
from ._assets import asset_uri, emit_asset_events
from ._base import RUN_FILTERS, TimbalRunsOperatorBase
from ._interval import has_interval, no_interval_advice, window
from ._output import manifest, write_runs
from ._progress import Progress

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFAULT_MAX_XCOM_RUNS", "TimbalListRunsOperator", "asset_uri"]

DEFAULT_MAX_XCOM_RUNS: Final = defaults.XCOM_MAX_RUNS
"""How many runs the operator puts into XCom at most, unless told otherwise."""


class _Lineage(NamedTuple):
    """What a finished task read and wrote, for OpenLineage."""

    config: ClientConfig
    query: RunQuery
    manifest: Mapping[str, Any] | None


class TimbalListRunsOperator(TimbalRunsOperatorBase):
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
        *TimbalRunsOperatorBase.filter_fields,
        "sort_by",
        "sort_order",
        "limit",
        "output_path",
        "format",
        *TimbalRunsOperatorBase.shared_fields,
    )
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        sort_by: str | None = None,
        sort_order: str | None = None,
        limit: int | str | None = None,
        output_path: str | None = None,
        format: str | None = None,
        output_conn_id: str | None = None,
        write_manifest: bool = True,
        csv_safe: bool = False,
        max_xcom_runs: int = DEFAULT_MAX_XCOM_RUNS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self._lineage: _Lineage | None = None

    def build_query(self, context: Context) -> RunQuery:
        """The validated :class:`RunQuery` of this task instance (after templating): the
        filters, in the window ``since``/``until`` or else the run's data interval."""
        filters = self.filter_values((*RUN_FILTERS, "sort_by", "sort_order"))
        filters["since"], filters["until"] = window(context, filters["since"], filters["until"])
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

        if parent is not self or has_interval(context):
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
                    f"{no_interval_advice(context)}"
                ) from None

    def execute(self, context: Context) -> Any:
        """Fetch the window's runs; return them (XCom) or write them and return a manifest."""
        self._lineage = None
        hook = self.make_hook()
        with self.failing_for_good(hook):
            query = self.build_query(context)
            most = read_limit(self.limit)
            options = {"limit": most, "parallel": read_parallel(self.parallel)}
            fmt = given(self.format)
            if fmt is not None:
                infer_format("", fmt)  # a bad format fails even when output goes to XCom
            output_path = given(self.output_path)
            if self.csv_safe and output_path is None:
                raise QueryError("csv_safe", "only applies to a CSV file; set output_path=")
            config = hook.get_conn().config
        where = self._describe(query)
        self.log.info(
            "Fetching Timbal runs %s from %s (org %s, project %s)",
            where,
            config.base_url,
            config.org_id,
            config.project_id,
        )
        try:
            with self.failing_for_good(hook):
                if output_path is None:
                    runs = self._to_xcom(hook, query, most, where)
                    self._lineage = _Lineage(config, query, None)
                    return runs
                described = self._to_file(hook, query, str(output_path).strip(), **options)
        finally:
            hook.close()
        self._lineage = _Lineage(config, query, described)
        emit_asset_events(self.outlets, context, described, self.log)
        return described

    # -- lineage ---------------------------------------------------------------------------

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

    # -- the two outputs -------------------------------------------------------------------

    @staticmethod
    def _describe(query: RunQuery) -> str:
        shown = query.as_dict()
        where = f"[{shown.pop('since', '-inf')}, {shown.pop('until', 'now')})"
        if shown:
            where += " where " + ", ".join(f"{k}={v}" for k, v in shown.items())
        return where

    def _to_xcom(
        self, hook: TimbalHook, query: RunQuery, most: int | None, where: str
    ) -> list[dict[str, Any]]:
        bound = self.max_xcom_runs
        runs: list[dict[str, Any]] = []
        progress = Progress(self.log, "Timbal runs to XCom")
        if most == 0:
            return runs
        for run in self._runs(hook, query, progress):
            if len(runs) >= bound:
                raise AirflowFailException(
                    f"the window {where} holds more than {bound} runs, more than XCom "
                    f"should carry (max_xcom_runs={bound}); set output_path= to write them "
                    "to a file (e.g. output_path='s3://bucket/timbal/dt={{ "
                    "data_interval_start | ds }}/runs.jsonl'), narrow the filters, "
                    "or raise max_xcom_runs"
                )
            runs.append(run.to_json_dict())
            if most is not None and len(runs) >= most:
                break  # no request beyond the page that holds the last run wanted
        progress.runs = len(runs)
        progress.done()
        return runs

    @staticmethod
    def _runs(hook: TimbalHook, query: RunQuery, progress: Progress) -> Iterator[Run]:
        count = 0
        for page in hook.iter_pages(query):
            count += len(page.runs)
            progress.page(count)
            yield from page.runs

    def _to_file(
        self, hook: TimbalHook, query: RunQuery, output_path: str, **options: Any
    ) -> dict[str, Any]:
        fmt = infer_format(output_path, given(self.format))
        written = write_runs(
            hook.get_conn(),
            query,
            output_path,
            conn_id=self.output_conn_id,
            progress=Progress(self.log, f"Timbal runs to {fmt}"),
            log=self.log,
            format=fmt,
            manifest=self.write_manifest,
            csv_safe=self.csv_safe,
            **options,
        )
        return manifest(written)
