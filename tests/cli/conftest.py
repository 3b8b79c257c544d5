"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from tests.support.processes import BIN


@pytest.fixture(scope="session", autouse=True)
def _console_script_installed() -> None:
    if not BIN.exists():  # pragma: no cover - the project is not installed
        pytest.fail(f"{BIN} is missing: install the project (make install)")
