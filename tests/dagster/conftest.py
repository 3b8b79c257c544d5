"""Fixtures of the Dagster tests: an emulator with a secret key, the resource, an instance.

The emulator's key is not the public demo key, so the leak guard watches for it in every
Dagster event, run, sensor tick, log line and output of these tests. Dagster's home (set
here, before Dagster is imported) is a temporary directory with telemetry off, so the
tests write nothing under ``~/.dagster``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from timbal_integrations.emulator import Emulator

_HOME = Path(tempfile.mkdtemp(prefix="timbal-dagster-home-"))
atexit.register(shutil.rmtree, _HOME, True)
(_HOME / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
os.environ["DAGSTER_HOME"] = str(_HOME)

dagster = pytest.importorskip("dagster")

from dagster_timbal import TimbalResource  # noqa: E402
from tests.dagster.helpers_dagster import resource_for  # noqa: E402
from tests.support.truth import SECRET_KEY, serve  # noqa: E402


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """The module's emulator (3,000 runs, the watched secret key)."""
    with serve() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _watch_the_key(leak_guard: Any) -> None:
    leak_guard.register(SECRET_KEY)


@pytest.fixture
def resource(emu: Emulator) -> TimbalResource:
    """The resource of the module's emulator."""
    return resource_for(emu)


@pytest.fixture
def instance() -> Iterator[Any]:
    """A fresh in-memory Dagster instance."""
    with dagster.DagsterInstance.ephemeral() as inst:
        yield inst
