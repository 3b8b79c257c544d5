"""``timbal_runs_asset``: a daily-partitioned asset of Timbal run history, one file per day.

::

    from dagster import Definitions, EnvVar
    from dagster_timbal import TimbalResource, timbal_runs_asset

    timbal_runs = timbal_runs_asset(output_dir="data/timbal", start_date="2026-01-01")
    defs = Definitions(
        assets=[timbal_runs],
        resources={"timbal": TimbalResource(api_key=EnvVar("TIMBAL_API_KEY"))},
    )

Partitions are UTC days. Materialising partition ``D`` writes every run created in
``[D 00:00, D+1 00:00)`` UTC that matches the filters to ``output_dir/dt=D/runs.<ext>``
through the core's export: streamed, exact, written under a temporary name and renamed,
so a re-materialisation replaces the day's file whole. The newest partition is
yesterday's: Dagster offers a day once it has ended.

Backfills: the default :class:`~dagster.BackfillPolicy` is
``BackfillPolicy.multi_run(max_partitions_per_run=30)``: a backfill of a year is 13
runs, each exporting up to 30 days one after the other, one file and one set of
metadata per day. A run that fails part-way has replaced the files of the days it
finished (each whole); re-running the range writes them again, identically.

``output_dir`` is a local directory or an object-storage URI (``s3://bucket/timbal``,
``gs://...``, ``az://...``, or a ``UPath``), through ``fsspec`` (install its driver,
e.g. ``s3fs``). For object storage each day is exported to a local temporary file and
uploaded as one object, so readers see the previous file or the new one, never a part.
"""

import os
import tempfile
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    DailyPartitionsDefinition,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from upath import UPath

from timbal_integrations import (
    QueryError,
    RunQuery,
    TimbalClient,
    TimbalError,
    defaults,
    parse_time,
)
from timbal_integrations.errors import is_permanent
from timbal_integrations.export import ExportResult, check_csv_safe, export_runs, infer_format

from .resource import TimbalResource

__all__ = ["DEFAULT_BACKFILL_POLICY", "RESOURCE_KEY", "timbal_runs_asset"]

RESOURCE_KEY: Final = "timbal"
"""The resource key under which the asset and the sensor expect a ``TimbalResource``."""

DEFAULT_BACKFILL_POLICY: Final = BackfillPolicy.multi_run(
    max_partitions_per_run=defaults.DAGSTER_BACKFILL_DAYS
)
"""Backfills run up to 30 days per run (one file per day)."""


def _day(value: str | date | datetime, argument: str) -> datetime:
    """A UTC midnight, read by the core's time parser."""
    moment = parse_time(value, field=argument)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
        raise QueryError(
            argument,
            f"{value!r} is not a midnight UTC; daily partitions start at 00:00 UTC "
            "(give a date such as '2026-01-01')",
        )
    return moment


def _output_dir(output_dir: str | os.PathLike[str] | UPath) -> Path | UPath:
    """A local directory (absolute) or a remote ``UPath``."""
    if isinstance(output_dir, UPath):
        if output_dir.protocol in ("", "file", "local"):
            return Path(output_dir.path).expanduser().resolve()
        return output_dir
    text = os.fspath(output_dir) if isinstance(output_dir, str | os.PathLike) else None
    if not isinstance(text, str) or not text.strip():
        raise QueryError("output_dir", f"{output_dir!r} is not a directory path or URI")
    scheme = urlsplit(text).scheme
    if len(scheme) > 1 and scheme != "file":  # a one-letter scheme is a Windows drive
        return UPath(text)
    if scheme == "file":
        text = urlsplit(text).path
    return Path(text).expanduser().resolve()


def _metadata(result: ExportResult, path: str) -> dict[str, Any]:
    """The materialisation's metadata, from what the export reports about the file."""
    window = result.to_dict()
    metadata: dict[str, Any] = {
        "count": MetadataValue.int(result.count),
        "dagster/row_count": MetadataValue.int(result.count),
        "path": MetadataValue.path(path),
        "sha256": MetadataValue.text(result.sha256),
        "bytes": MetadataValue.int(result.bytes),
        "format": MetadataValue.text(result.format),
        "error_count": MetadataValue.int(result.error_count),
        "running_count": MetadataValue.int(result.running_count),
        "status_counts": MetadataValue.json(result.status_counts),
        "cost_usd": MetadataValue.float(result.cost_usd),
        "cost_credits": MetadataValue.float(result.cost_credits),
        "window": MetadataValue.text(f"[{window['since']}, {window['until']})"),
    }
    if result.first_created_at is not None and result.last_created_at is not None:
        metadata["first_created_at"] = MetadataValue.timestamp(result.first_created_at)
        metadata["last_created_at"] = MetadataValue.timestamp(result.last_created_at)
    return metadata


def _failure(resource: TimbalResource, error: TimbalError, key: str | None = None) -> Failure:
    """The run's failure: the core's one line in the resource's terms (after the day, when
    one was being exported); an error that a retry cannot fix allows no retries."""
    text = resource.describe(error)
    return Failure(
        description=text if key is None else f"{key}: {text}",
        allow_retries=not is_permanent(error),
    )


class _DayExport:
    """What materialising the asset does: each partition's day to its file, with metadata."""

    def __init__(
        self,
        query: RunQuery,
        partitions: DailyPartitionsDefinition,
        directory: Path | UPath,
        fmt: str,
        *,
        parallel: int | None,
        manifest: bool,
        csv_safe: bool,
        resource_key: str,
    ) -> None:
        self.query = query
        self.partitions = partitions
        self.directory = directory
        self.format = fmt
        self.parallel = parallel
        self.manifest = manifest
        self.csv_safe = csv_safe
        self.resource_key = resource_key

    def target(self, key: str) -> Path | UPath:
        """Where partition ``key``'s file goes: ``output_dir/dt=KEY/runs.<ext>``."""
        return self.directory / f"dt={key}" / f"runs.{self.format}"

    def export(self, client: TimbalClient, key: str) -> ExportResult:
        """Export day ``key`` (a local file, or an object uploaded whole)."""
        window = self.partitions.time_window_for_partition_key(key)
        query = self.query.replace(
            since=window.start.astimezone(UTC), until=window.end.astimezone(UTC)
        )
        target = self.target(key)
        options: dict[str, Any] = {
            "format": self.format,
            "parallel": self.parallel,
            "manifest": self.manifest,
            "csv_safe": self.csv_safe,
        }
        if isinstance(target, Path):
            return export_runs(client, query, target, **options)
        with tempfile.TemporaryDirectory(prefix="timbal-dagster-") as scratch:
            result = export_runs(client, query, Path(scratch) / target.name, **options)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.fs.put_file(result.path, target.path)
            if result.manifest_path is not None:
                beside = target.with_name(target.name + ".manifest.json")
                beside.fs.put_file(result.manifest_path, beside.path)
        return result

    def __call__(self, context: AssetExecutionContext) -> MaterializeResult[None]:
        keys = list(context.partition_keys)
        resource: TimbalResource = getattr(context.resources, self.resource_key)
        try:
            client = resource.get_client()
        except TimbalError as exc:
            raise _failure(resource, exc) from None
        done: dict[str, tuple[ExportResult, dict[str, Any]]] = {}
        with client:
            for key in keys:
                try:
                    result = self.export(client, key)
                except TimbalError as exc:
                    raise _failure(resource, exc, key) from (None if is_permanent(exc) else exc)
                target = str(self.target(key))
                done[key] = (result, _metadata(result, target))
                context.log.info(
                    f"{key}: {result.count} runs ({result.error_count} errors, "
                    f"{result.running_count} still running, cost_usd {result.cost_usd:.6f}) "
                    f"-> {target} (sha256 {result.sha256[:12]})"
                )
        if len(keys) == 1:
            result, metadata = done[keys[0]]
            return MaterializeResult(metadata=metadata, data_version=DataVersion(result.sha256))
        for key, (_, metadata) in done.items():
            context.add_asset_metadata(metadata, partition_key=key)
        return MaterializeResult()


def timbal_runs_asset(
    name: str = "timbal_runs",
    *,
    output_dir: str | os.PathLike[str] | UPath,
    format: str = "jsonl",
    start_date: str | date | datetime,
    end_date: str | date | datetime | None = None,
    key_prefix: str | Sequence[str] | None = None,
    group_name: str | None = None,
    description: str | None = None,
    backfill_policy: BackfillPolicy | None = DEFAULT_BACKFILL_POLICY,
    retry_policy: RetryPolicy | None = None,
    parallel: int | None = None,
    manifest: bool = True,
    csv_safe: bool = False,
    resource_key: str = RESOURCE_KEY,
    **filters: Any,
) -> AssetsDefinition:
    """A daily-partitioned asset whose partition ``D`` is the file of the runs of day ``D``.

    :param name: the asset's name (its key is ``key_prefix`` + ``name``).
    :param output_dir: where the files go: ``output_dir/dt=YYYY-MM-DD/runs.<ext>`` (a local
        directory, an object-storage URI such as ``s3://bucket/timbal``, or a ``UPath``).
        A relative directory is taken from the working directory of the code location.
    :param format: ``jsonl`` (default; every field the API sent), ``csv`` or ``parquet``.
    :param start_date: the first partition (a date, UTC).
    :param end_date: the partition after the last one (default: none, one per ended day).
    :param key_prefix: the asset key's prefix.
    :param group_name: the asset group.
    :param description: the asset's description (default: one made from the filters).
    :param backfill_policy: how many days one run exports at most (default: 30).
    :param retry_policy: Dagster's retries of a failed materialisation (default: none).
        Errors that a retry cannot fix (bad configuration, the API's 400/401/403/404)
        fail at once, without spending them.
    :param parallel: fetch each day in this many concurrent windows.
    :param manifest: also write ``runs.<ext>.manifest.json`` beside each file (default).
    :param csv_safe: ``format="csv"`` only (default False): write text cells that start
        with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return with a ``'`` before
        them, so that a spreadsheet cannot read them as formulas. It changes those cells;
        each day's manifest records ``"csv_safe": true``.
    :param resource_key: the key of the :class:`~dagster_timbal.TimbalResource`.
    :param filters: ``status``, ``user_id``, ``sentiment``, ``group_id``,
        ``workforce_id``, ``rev``, ``metadata``, ``roots``, ``sort_by``, ``sort_order``:
        the same names as everywhere. ``since`` and ``until`` come from the partition.

    Each materialisation reports ``count``, ``path``, ``sha256``, ``bytes``,
    ``error_count``, ``running_count``, ``status_counts``, ``cost_usd``,
    ``cost_credits`` and the ``window`` of each day, as the export counted them.

    Raises :class:`~timbal_integrations.QueryError` naming the argument when one is bad.
    """
    for window_filter in ("since", "until"):
        if window_filter in filters:
            raise QueryError(
                window_filter,
                "the partition sets the window (each day's runs are [D, D+1) UTC); "
                "choose the days with start_date and end_date",
            )
    query = RunQuery.from_filters(filters)
    fmt = infer_format("", format)
    check_csv_safe(csv_safe, fmt)
    start = _day(start_date, "start_date")
    end = None if end_date is None else _day(end_date, "end_date")
    if end is not None and end <= start:
        raise QueryError("end_date", f"{end_date!r} is not after start_date {start_date!r}")
    directory = _output_dir(output_dir)
    partitions = DailyPartitionsDefinition(
        start_date=start.strftime("%Y-%m-%d"),
        end_date=end.strftime("%Y-%m-%d") if end is not None else None,
        timezone="UTC",
    )
    shown = query.as_dict()
    where = ", ".join(f"{k}={v}" for k, v in shown.items()) or "all runs"
    job = _DayExport(
        query,
        partitions,
        directory,
        fmt,
        parallel=parallel,
        manifest=manifest,
        csv_safe=csv_safe,
        resource_key=resource_key,
    )

    def timbal_runs(context: AssetExecutionContext) -> MaterializeResult[None]:
        return job(context)

    with warnings.catch_warnings():
        # Dagster calls the backfill_policy parameter beta; this package chose it, tests
        # it and documents its policy, so its users are not warned on every load.
        warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy")
        define = asset(
            name=name,
            key_prefix=key_prefix,
            group_name=group_name,
            description=description
            or f"Timbal runs ({where}), one {fmt} file per UTC day: {job.target('<day>')}",
            partitions_def=partitions,
            backfill_policy=backfill_policy,
            retry_policy=retry_policy,
            required_resource_keys={resource_key},
            kinds={"timbal", fmt},
            metadata={
                "output_dir": MetadataValue.path(str(directory)),
                "filters": MetadataValue.json(shown),
            },
        )
        return define(timbal_runs)
