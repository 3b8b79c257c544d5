"""The suite's leak guard sees what Prefect records: asset metadata, results, logs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("prefect.flows")

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(240)]

TESTS = Path(__file__).resolve().parents[1]

INNER_TESTS = """
import pytest
from prefect import flow, get_run_logger, task
from prefect.assets import add_asset_metadata, materialize

SECRET = "tk-inner-prefect-SECRET-141421"

@pytest.fixture(autouse=True)
def _register(leak_guard, prefect_api):
    leak_guard.register(SECRET)

@materialize("file:///tmp/timbal-leak-guard.jsonl")
def leaky_asset():
    add_asset_metadata("file:///tmp/timbal-leak-guard.jsonl", {"note": SECRET})

@task
def leaky_result():
    return {"note": SECRET}

@flow
def clean_flow():
    return 3

@flow
def asset_flow():
    leaky_asset()

@flow
def result_flow():
    leaky_result()
    return None

@flow
def log_flow():
    get_run_logger().info("the key is %s", SECRET)

def test_clean():
    assert clean_flow() == 3

def test_asset_metadata():
    asset_flow()

def test_task_result():
    result_flow()

def test_flow_log():
    log_flow()
"""


def test_the_guard_fails_prefect_leaks(pytester: pytest.Pytester) -> None:
    # The suite's layout, in little: the package ``tests`` with its conftest, the shared
    # truth helpers and this folder's conftest and helpers.
    tests = pytester.mkdir("tests")
    for folder, names in (
        ("", ["__init__.py", "conftest.py"]),
        ("support", ["__init__.py", "truth.py"]),
        ("prefect", ["__init__.py", "conftest.py", "helpers_prefect.py"]),
    ):
        (tests / folder).mkdir(exist_ok=True)
        for name in names:
            shutil.copy(TESTS / folder / name, tests / folder / name)
    inner = tests / "prefect"
    (inner / "test_inner.py").write_text(INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", str(inner), timeout=200)
    leaks = {
        "test_asset_metadata": "a Prefect event",
        "test_task_result": "the result of Prefect task leaky_result",
        "test_flow_log": "a log record of 'prefect.flow_runs'",
    }
    result.assert_outcomes(passed=1, failed=len(leaks))
    text = result.stdout.str()
    for name, where in leaks.items():
        line = next(ln for ln in text.splitlines() if f"test_inner.py::{name}" in ln)
        assert "secret leaked" in line, line
        assert where in text, (name, where)
