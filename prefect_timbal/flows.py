"""``export_runs_flow``: the runs of a window to a file, recorded as a Prefect asset.

::

    from prefect_timbal import TimbalCredentials, export_runs_flow

    export_runs_flow(
        TimbalCredentials.load("timbal"),
        since="2026-01-01",
        until="2026-01-02",
        output_path="/data/timbal/dt=2026-01-01/runs.jsonl",
        status="error",
    )

The file is written by the core's export (atomic: a re-run replaces it whole) inside a
task declared with Prefect's ``@materialize``; the asset (key ``file:///<absolute path>``
unless ``asset_key`` is given) gets a materialisation event whose metadata holds
``count``, ``sha256``, ``since``, ``until`` (the window as resolved), ``bytes``,
``format``, ``error_count``, ``running_count``, ``status_counts``, ``cost_usd`` and
``cost_credits``.
"""

from datetime import date, datetime
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from timbal_integrations import QueryError, RunQuery
from timbal_integrations.export import ExportResult

from .credentials import TimbalCredentials
from .tasks import export_to_file

__all__ = ["asset_metadata", "export_runs_flow"]

TimeArg = datetime | date | str | int


def asset_metadata(result: ExportResult) -> dict[str, Any]:
    """The metadata of the asset event of an export: what the export counted and hashed."""
    described = result.to_dict()
    return {
        "path": result.path,
        "format": result.format,
        "count": result.count,
        "sha256": result.sha256,
        "bytes": result.bytes,
        "since": described["since"],
        "until": described["until"],
        "first_created_at": described["first_created_at"],
        "last_created_at": described["last_created_at"],
        "error_count": result.error_count,
        "running_count": result.running_count,
        "status_counts": result.status_counts,
        "cost_usd": result.cost_usd,
        "cost_credits": result.cost_credits,
        "filters": result.filters,
    }


def _asset(output_path: Path, asset_key: str | None, query: RunQuery) -> Asset:
    """The asset of the file: ``asset_key``, else ``file://`` and the absolute path."""
    key = asset_key or f"file://{output_path}"
    shown = ", ".join(f"{k}={v}" for k, v in query.as_dict().items())
    try:
        return Asset(
            key=key,
            properties=AssetProperties(
                name=f"Timbal runs: {output_path.name}",
                description=f"Timbal runs where {shown}, exported by timbal-integrations.",
            ),
        )
    except ValidationError as exc:
        reason = "; ".join(str(error["msg"]) for error in exc.errors())
        argument = "asset_key" if asset_key else "output_path"
        raise QueryError(
            argument,
            f"{key!r} is not a valid Prefect asset key ({reason}); pass asset_key= with a "
            "URI such as 'file:///data/timbal/runs.jsonl' or 's3://bucket/timbal/runs.jsonl'",
        ) from None


@flow(name="timbal-export-runs", log_prints=False)
def export_runs_flow(
    credentials: TimbalCredentials,
    since: TimeArg,
    until: TimeArg,
    output_path: str,
    format: str | None = None,
    status: str | None = None,
    user_id: str | None = None,
    sentiment: str | None = None,
    group_id: str | None = None,
    workforce_id: str | None = None,
    rev: str | None = None,
    metadata: dict[str, Any] | str | None = None,
    roots: bool | None = None,
    sort_by: str | None = None,
    sort_order: str | None = None,
    parallel: int | None = None,
    asset_key: str | None = None,
    csv_safe: bool = False,
) -> ExportResult:
    """Export the runs of ``[since, until)`` matching the filters to ``output_path``.

    :param credentials: the :class:`~prefect_timbal.TimbalCredentials` block.
    :param since: the window's start, inclusive (a datetime, an ISO 8601 string, epoch
        milliseconds or a span back from now such as ``24h``).
    :param until: the window's end, exclusive.
    :param output_path: the local file to write (replaced whole on a re-run).
    :param format: ``jsonl``, ``csv`` or ``parquet`` (default: from the extension).
    :param status: ... ``sort_order``: filters, the same names as everywhere.
    :param parallel: fetch the window in this many concurrent windows.
    :param asset_key: the Prefect asset's key (default ``file://`` + the absolute path).
    :param csv_safe: CSV only (default False): write text cells that start with ``=``,
        ``+``, ``-``, ``@``, a tab or a carriage return with a ``'`` before them, so a
        spreadsheet cannot read them as formulas (it changes those cells; the manifest
        records ``"csv_safe": true``).

    Returns the export's :class:`~timbal_integrations.export.ExportResult`.
    """
    query = RunQuery(
        since=since,
        until=until,
        status=status,
        user_id=user_id,
        sentiment=sentiment,
        group_id=group_id,
        workforce_id=workforce_id,
        rev=rev,
        metadata=metadata,
        roots=roots,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    path = Path(output_path).expanduser().resolve()
    asset = _asset(path, asset_key, query)

    @materialize(asset, by="timbal-integrations", name="timbal-export-asset", cache_policy=NO_CACHE)
    def write_asset() -> ExportResult:
        result = export_to_file(
            credentials, query, path, format=format, parallel=parallel, csv_safe=csv_safe
        )
        add_asset_metadata(asset, asset_metadata(result))
        return result

    return write_asset()
