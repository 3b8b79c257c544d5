"""OpenLineage: ``TimbalListRunsOperator`` gives facets through the OpenLineage provider's
own extractor machinery when the provider is installed (``make test`` installs it), and
the provider works unchanged, without an import error or a warning, when it is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.airflow.helpers_airflow import REPO, connection_json, runs_between
from timbal_integrations import RECORD_FIELDS, parse_time
from timbal_integrations.emulator import Emulator

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(120)]

KEY = "tk_airflow_lineage_7d1b3e5a9c42"
SINCE, UNTIL = "2025-12-31T00:00:00Z", "2025-12-31T06:00:00Z"


@pytest.fixture
def emu(airflow_db: Any, timbal_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emulator: Emulator = timbal_emulator_factory(runs=300, api_key=KEY)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_LINEAGE", connection_json(emulator))
    return emulator


def _lineage(operator: Any) -> Any:
    """What the OpenLineage listener gets for a task that succeeded."""
    from airflow.providers.openlineage.extractors.base import DefaultExtractor
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.utils.state import TaskInstanceState

    manager = ExtractorManager()
    assert manager.get_extractor_class(operator) is DefaultExtractor
    dag_run = SimpleNamespace(run_id="manual__lineage")
    return manager.extract_metadata(dag_run, operator, TaskInstanceState.SUCCESS, None)


def _as_json(value: Any) -> Any:
    from openlineage.client.serde import Serde

    return json.loads(Serde.to_json(value))


def test_export_lineage_names_the_runs_read_and_the_file_written(
    emu: Emulator, tmp_path: Path
) -> None:
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    target = tmp_path / "dt=2025-12-31" / "runs.csv"
    operator = TimbalListRunsOperator(
        task_id="export",
        timbal_conn_id="timbal_lineage",
        status="error",
        metadata={"env": "prod"},
        since=SINCE,
        until=UNTIL,
        output_path=str(target),
    )
    manifest = operator.execute({})  # type: ignore[arg-type]
    lineage = _lineage(operator)

    (source,) = [_as_json(dataset) for dataset in lineage.inputs]
    host = emu.base_url.removeprefix("http://")
    assert source["namespace"] == f"timbal://{host}"
    assert source["name"] == f"orgs/{emu.org_id}/projects/{emu.project_id}/runs"
    query = source["facets"]["timbalRunsQuery"]
    assert query["filters"] == {"status": "error", "metadata": {"env": "prod"}}
    assert (query["since"], query["until"]) == (
        "2025-12-31T00:00:00.000Z",
        "2025-12-31T06:00:00.000Z",
    )
    assert query["_producer"]
    assert query["_schemaURL"].startswith("https://openlineage.io/spec/")

    (written,) = [_as_json(dataset) for dataset in lineage.outputs]
    assert (written["namespace"], written["name"]) == ("file", str(target))
    stats = written["outputFacets"]["outputStatistics"]
    expected = runs_between(
        emu, parse_time(SINCE), parse_time(UNTIL), status="error"
    )  # the metadata filter narrows it further
    assert stats["rowCount"] == manifest["count"] <= len(expected)
    assert stats["size"] == target.stat().st_size
    assert [f["name"] for f in written["facets"]["schema"]["fields"]] == list(RECORD_FIELDS)


def test_lineage_of_an_xcom_task_and_of_object_storage_names(emu: Emulator) -> None:
    from airflow_provider._lineage import output_dataset
    from airflow_provider.operators.timbal import TimbalListRunsOperator

    operator = TimbalListRunsOperator(
        task_id="to_xcom", timbal_conn_id="timbal_lineage", since=SINCE, until=UNTIL
    )
    assert operator.get_openlineage_facets_on_complete(None) is None  # nothing ran yet
    operator.execute({})  # type: ignore[arg-type]
    lineage = _lineage(operator)
    assert len(lineage.inputs) == 1
    assert lineage.outputs == []

    manifest = {"path": "s3://conn@bucket/timbal/dt=1/runs.jsonl", "count": 3, "bytes": 10}
    dataset = _as_json(output_dataset({**manifest, "format": "jsonl"}))
    assert (dataset["namespace"], dataset["name"]) == ("s3://bucket", "timbal/dt=1/runs.jsonl")
    assert "schema" not in dataset.get("facets", {})  # JSON Lines rows are nested runs


# Run in a fresh interpreter where the OpenLineage distributions are not installed (their
# metadata and modules hidden), every warning an error: the provider, the operator and a
# real export work as before.
WITHOUT_OPENLINEAGE = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata, sys, warnings
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="starlette.*")

    import importlib_metadata  # what Airflow reads its providers' entry points with

    def hiding(every_distribution):
        def distributions(**kwargs):
            for dist in every_distribution(**kwargs):
                if "openlineage" not in (dist.metadata["Name"] or "").lower():
                    yield dist
        return distributions

    for module in (importlib.metadata, importlib_metadata):
        module.distributions = hiding(module.distributions)

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "openlineage" or name.startswith(("openlineage.",
                    "airflow.providers.openlineage")):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Hide())
    import airflow_provider
    from airflow.providers_manager import ProvidersManager
    assert "timbal-integrations" in ProvidersManager().providers
    assert not [p for p in ProvidersManager().providers if "openlineage" in p]
    from airflow_provider.operators.timbal import TimbalListRunsOperator
    op = TimbalListRunsOperator(task_id="t", timbal_conn_id="timbal_lineage",
        since=sys.argv[1], until=sys.argv[2], output_path=sys.argv[3])
    manifest = op.execute({})
    assert op.get_openlineage_facets_on_complete(None) is None
    hidden = ("openlineage", "openlineage.", "airflow.providers.openlineage")
    assert not [m for m in sys.modules if m.startswith(hidden)], "imported"
    print(manifest["count"])
    """
)


def test_without_the_openlineage_provider_lineage_is_inert(emu: Emulator, tmp_path: Path) -> None:
    target = tmp_path / "runs.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENLINEAGE, SINCE, UNTIL, str(target)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=90,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Warning" not in out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) == len(target.read_text().splitlines()) > 0
