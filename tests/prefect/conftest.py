"""Real Prefect 3 for the Prefect tests: one ephemeral API server (Prefect's test harness,
SQLite in a temp dir) for the session, and an emulator with a secret key.

Prefect reads its settings when first imported, so its variables are set here, at import:
a temporary ``PREFECT_HOME``, no telemetry (nothing leaves 127.0.0.1), and an event
persister that flushes quickly (the tests read asset events back from the API). These
tests run in ``.venv-prefect`` (``make test``); elsewhere they are not collected.
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

_HOME = Path(tempfile.mkdtemp(prefix="timbal-prefect-home-"))
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update(
    {
        "PREFECT_HOME": str(_HOME),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "0.2",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)

try:
    import prefect.flows  # noqa: F401 - Prefect is installed here
except ImportError:
    raise pytest.UsageError(
        "tests/prefect need Prefect, which cannot share an environment with Airflow: run "
        "them in .venv-prefect (`make test` does: .venv-prefect/bin/python -m pytest "
        "tests/prefect)"
    ) from None

from prefect_timbal import TimbalCredentials  # noqa: E402
from tests.prefect.helpers_prefect import credentials_for  # noqa: E402
from tests.support.truth import SECRET_KEY, serve  # noqa: E402


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of the session's ephemeral Prefect API (started once, ~10 s)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """The module's emulator (3,000 runs, the watched secret key)."""
    with serve() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _watch_the_key(leak_guard: Any) -> None:
    leak_guard.register(SECRET_KEY)


@pytest.fixture
def credentials(emu: Emulator) -> TimbalCredentials:
    """A block for the module's emulator."""
    return credentials_for(emu)
