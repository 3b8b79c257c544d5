"""The names the Airflow operator and the docs rely on."""

from __future__ import annotations

import dataclasses
import inspect
from types import ModuleType

import pytest

import timbal_integrations.cli
import timbal_integrations.export as export
from tests.support.exports import exposed_members


@pytest.mark.parametrize("package", [export, timbal_integrations.cli], ids=["export", "cli"])
def test_all_is_what_the_package_exports(package: ModuleType) -> None:
    # Derived, not copied (as httpx's test_exported_members): both packages load their
    # names lazily, and serve exactly their __all__.
    assert set(package.__all__) == exposed_members(package)
    for name in package.__all__:
        assert getattr(package, name, None) is not None, name


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
        "csv_safe",
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
