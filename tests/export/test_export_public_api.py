"""The names the Airflow operator and the docs rely on."""

from __future__ import annotations

import dataclasses
import inspect

import timbal_integrations.cli
import timbal_integrations.export as export

DOCUMENTED = {
    "FORMATS",
    "PARQUET_INSTALL_HINT",
    "CsvWriter",
    "ExportProgress",
    "ExportResult",
    "JsonlWriter",
    "ParquetWriter",
    "PendingExport",
    "RunWriter",
    "export_runs",
    "infer_format",
    "manifest_path",
    "open_writer",
    "parquet_available",
    "parquet_schema",
    "pending_export",
}


def test_all_is_the_documented_list() -> None:
    assert set(export.__all__) == DOCUMENTED
    for name in export.__all__:
        assert getattr(export, name, None) is not None, name
    assert timbal_integrations.cli.__all__
    for name in timbal_integrations.cli.__all__:
        assert hasattr(timbal_integrations.cli, name), name


def test_export_runs_signature() -> None:
    parameters = inspect.signature(export.export_runs).parameters
    assert list(parameters) == [
        "client",
        "query",
        "path",
        "format",
        "resume",
        "parallel",
        "limit",
        "manifest",
        "progress",
        "now",
    ]
    keyword_only = [p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == list(parameters)[3:]
    assert parameters["manifest"].default is True
    assert parameters["resume"].default is False


def test_export_result_fields() -> None:
    names = [f.name for f in dataclasses.fields(export.ExportResult)]
    assert names == [
        "path",
        "format",
        "count",
        "since",
        "until",
        "first_created_at",
        "last_created_at",
        "bytes",
        "sha256",
        "filters",
        "manifest_path",
        "resumed",
        "status_counts",
        "running_count",
        "error_count",
        "cost_usd",
        "cost_credits",
    ]
    assert export.FORMATS == ("jsonl", "csv", "parquet")
