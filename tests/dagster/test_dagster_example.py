"""``examples/dagster/definitions.py`` loads as ``dagster dev -f`` loads it, materialises a
partition with the Dagster CLI, and its sensor and job run against the emulator."""

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import DagsterInstance, build_sensor_context  # noqa: E402

from dagster_timbal import TimbalSensorCursor  # noqa: E402
from tests.support.truth import SECRET_KEY, runs_between, stats  # noqa: E402
from timbal_integrations.emulator import Emulator  # noqa: E402

pytestmark = [pytest.mark.dagster, pytest.mark.timeout(180)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dagster" / "definitions.py"


@pytest.fixture
def example_env(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a user sets: Timbal's variables, an export dir, a Dagster home."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **emu.env(),
        "TIMBAL_EXPORT_DIR": str(tmp_path / "exports"),
        "DAGSTER_HOME": str(home),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def example(example_env: dict[str, str]) -> ModuleType:
    spec = importlib.util.spec_from_file_location("timbal_dagster_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dagster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=dict(os.environ),
    )


def test_the_dagster_cli_loads_the_file_and_materialises_a_partition(
    emu: Emulator, example_env: dict[str, str]
) -> None:
    loaded = _dagster("definitions", "validate", "-f", str(EXAMPLE))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    run = _dagster(
        "asset", "materialize", "-f", str(EXAMPLE), "--select", "timbal_runs",
        "--partition", "2025-12-05",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RUN_SUCCESS" in run.stderr
    path = Path(example_env["TIMBAL_EXPORT_DIR"]) / "dt=2025-12-05" / "runs.jsonl"
    day = datetime(2025, 12, 5, tzinfo=UTC)
    truth = runs_between(emu.runs, day, day + timedelta(days=1))
    assert [json.loads(line) for line in path.read_text().splitlines()] == truth
    assert SECRET_KEY not in run.stdout + run.stderr  # (the leak guard checks it too)


def test_the_example_sensor_requests_the_triage_job(emu: Emulator, example: Any) -> None:
    defs = example.defs
    sensor = defs.resolve_sensor_def("timbal_new_errors")
    with DagsterInstance.ephemeral() as instance:
        # The first tick looks back a day from now: the emulator's December is older.
        context = build_sensor_context(
            instance=instance, resources={"timbal": defs.resources["timbal"]}
        )
        first = sensor.evaluate_tick(context)
        assert first.run_requests == []
        # A cursor from before the last failed runs: the sensor finds exactly those.
        cursor = TimbalSensorCursor(int(datetime(2025, 12, 30, tzinfo=UTC).timestamp() * 1000))
        context = build_sensor_context(
            instance=instance,
            cursor=cursor.to_json(),
            resources={"timbal": defs.resources["timbal"]},
        )
        result = sensor.evaluate_tick(context)
        ids = [i for r in result.run_requests for i in r.tags["timbal/run_ids"].split(",")]
        day = datetime(2025, 12, 30, tzinfo=UTC)
        errors = runs_between(emu.runs, day, day + timedelta(days=5), status="error")
        assert sorted(ids) == sorted(run["id"] for run in errors)
        assert stats(errors)["count"] == len(ids) > 0
        job = defs.resolve_job_def("triage_timbal_errors")
        launched = job.execute_in_process(instance=instance, tags=result.run_requests[0].tags)
        assert launched.success


def _readme_snippet(section: str) -> str:
    """The first Python block of a README section."""
    readme = (EXAMPLE.parents[2] / "README.md").read_text()
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_snippet_defines_what_it_says() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_readme_snippet("Dagster"), "README.md", "exec"), namespace)  # noqa: S102
    defs = namespace["defs"]
    dagster.Definitions.validate_loadable(defs)
    assert defs.resolve_sensor_def("timbal_new_errors").job_name == "triage_errors"
    asset = defs.resolve_assets_def("timbal_runs")
    assert asset.partitions_def is not None
    assert asset.partitions_def.get_first_partition_key() == "2026-01-01"
