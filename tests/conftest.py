"""Shared test set-up.

- Retries never sleep in tests (the policy still counts and computes delays).
- The emulator fixtures (``timbal_emulator``, ``timbal_emulator_factory``) come from the
  project's own pytest plugin.
- With ``TIMBAL_REQUIRE_AIRFLOW=1`` (set by ``make test``), a skipped Airflow test fails
  the run, and so does a run that executed no test at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from timbal_integrations import retry

pytest_plugins = ["timbal_integrations.emulator.pytest_plugin"]


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Iterator[None]:
    with retry.testing(True):
        yield


_skipped_airflow: list[str] = []
_executed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _executed
    if report.when == "call" and (report.passed or report.failed):
        _executed += 1
    if report.skipped and "airflow" in report.keywords:
        _skipped_airflow.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("TIMBAL_REQUIRE_AIRFLOW") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _skipped_airflow:
        if reporter is not None:
            reporter.write_line(
                f"FAILED: {len(_skipped_airflow)} Airflow test(s) were skipped, "
                f"but TIMBAL_REQUIRE_AIRFLOW=1 requires them: {_skipped_airflow[0]} ...",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if _executed == 0 and not session.config.option.collectonly:
        if reporter is not None:
            reporter.write_line("FAILED: no test was executed", red=True)
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
