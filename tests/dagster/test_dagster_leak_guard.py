"""The suite's leak guard sees what Dagster records: event metadata, logs, runs, ticks."""

import shutil
from pathlib import Path

import pytest

pytest.importorskip("dagster")

pytestmark = [pytest.mark.dagster, pytest.mark.timeout(240)]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

INNER_TESTS = """
import pytest
from dagster import (
    MaterializeResult, RunRequest, asset, build_sensor_context, job, materialize, op, sensor,
)

SECRET = "tk-inner-dagster-SECRET-161803"

@pytest.fixture(autouse=True)
def _register(leak_guard):
    leak_guard.register(SECRET)

@op
def nothing():
    pass

@job
def a_job():
    nothing()

def test_clean():
    @asset
    def fine():
        return MaterializeResult(metadata={"count": 3})
    assert materialize([fine]).success

def test_metadata():
    @asset
    def leaky():
        return MaterializeResult(metadata={"note": "key " + SECRET})
    assert materialize([leaky]).success

def test_run_tags():
    assert a_job.execute_in_process(tags={"who": SECRET}).success

def test_sensor_tick():
    @sensor(job=a_job)
    def leaky_sensor(context):
        return [RunRequest(run_key="k", tags={"note": SECRET})]
    leaky_sensor.evaluate_tick(build_sensor_context())
"""


def test_the_guard_fails_dagster_leaks(pytester: pytest.Pytester) -> None:
    shutil.copy(CONFTEST, pytester.path / "conftest.py")
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=200)
    leaks = {
        "test_metadata": "a Dagster event",
        "test_run_tags": "a Dagster run (config, tags)",
        "test_sensor_tick": "the Dagster sensor tick of leaky_sensor",
    }
    result.assert_outcomes(passed=1, failed=len(leaks))
    text = result.stdout.str()
    for name, where in leaks.items():
        line = next(
            ln for ln in text.splitlines() if ln.startswith(f"FAILED test_inner.py::{name}")
        )
        assert "secret leaked" in line, line
        assert where in text, (name, where)
