"""OpenLineage facets of ``TimbalListRunsOperator`` (imported only when they are asked for).

Importing this module needs ``apache-airflow-providers-openlineage`` (and so the
OpenLineage client); the operator imports it lazily and treats an ``ImportError`` as
"lineage is off", so the provider works the same without it.

Datasets follow OpenLineage's naming: the input is the Timbal project's runs, namespace
``timbal://<host>`` and name ``orgs/<org_id>/projects/<project_id>/runs``; the output is
the written file, namespace ``file`` and its absolute path for a local file, or
``<scheme>://<bucket>`` and the key for object storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import (
    Dataset,
    DatasetFacet,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    SchemaDatasetFacet,
    SchemaDatasetFacetFields,
)
from airflow.providers.openlineage.extractors import OperatorLineage

from timbal_integrations import RECORD_FIELDS, RunQuery
from timbal_integrations.config import ClientConfig

from .operators._assets import asset_uri

__all__ = ["TimbalRunsQueryDatasetFacet", "input_dataset", "operator_lineage", "output_dataset"]

FACET_NAME = "timbalRunsQuery"
"""The key of :class:`TimbalRunsQueryDatasetFacet` in the input dataset's facets."""


@attr.define
class TimbalRunsQueryDatasetFacet(DatasetFacet):
    """Which runs were read: the filters (the names used everywhere in
    timbal-integrations) and the ``[since, until)`` window, as ISO 8601 UTC strings."""

    filters: dict[str, Any] = attr.field(factory=dict)
    since: str | None = attr.field(default=None)
    until: str | None = attr.field(default=None)


def input_dataset(config: ClientConfig, query: RunQuery) -> Any:
    """The Timbal project's runs, with the query as a facet."""
    shown = query.as_dict()
    since = shown.pop("since", None)
    until = shown.pop("until", None)
    host = urlsplit(config.base_url)
    netloc = host.hostname or ""
    if host.port:
        netloc += f":{host.port}"
    return Dataset(
        namespace=f"timbal://{netloc}",
        name=f"orgs/{config.org_id}/projects/{config.project_id}/runs",
        facets={
            FACET_NAME: TimbalRunsQueryDatasetFacet(
                filters={k: str(v) if not isinstance(v, dict) else v for k, v in shown.items()},
                since=since,
                until=until,
            )
        },
    )


def output_dataset(manifest: Mapping[str, Any]) -> Any:
    """The written file, with its row count, size and (for flat formats) columns."""
    uri = urlsplit(asset_uri(str(manifest["path"])))
    if uri.scheme == "file":
        namespace, name = "file", uri.path
    else:
        namespace, name = f"{uri.scheme}://{uri.netloc}", uri.path.lstrip("/")
    facets: dict[str, Any] = {}
    if manifest.get("format") in ("csv", "parquet"):
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=field) for field in RECORD_FIELDS]
        )
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets=facets,
        outputFacets={
            "outputStatistics": OutputStatisticsOutputDatasetFacet(
                rowCount=int(manifest["count"]), size=int(manifest["bytes"])
            )
        },
    )


def operator_lineage(
    config: ClientConfig, query: RunQuery, manifest: Mapping[str, Any] | None
) -> Any:
    """The task's ``OperatorLineage``: the runs read and, if any, the file written."""
    return OperatorLineage(
        inputs=[input_dataset(config, query)],
        outputs=[] if manifest is None else [output_dataset(manifest)],
    )
