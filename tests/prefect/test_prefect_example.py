"""``examples/prefect/export_flow.py``, run as a user runs it, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

prefect = pytest.importorskip("prefect.flows")

from tests.prefect.helpers_prefect import asset_events  # noqa: E402
from tests.support.truth import SECRET_KEY, runs_between  # noqa: E402
from timbal_integrations.emulator import Emulator  # noqa: E402

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(180)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefect" / "export_flow.py"


def test_the_example_exports_a_day_and_records_the_asset(
    prefect_api: str, emu: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "2025-12-05"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env={
            **os.environ,
            **emu.env(),
            "PREFECT_API_URL": prefect_api,
            "TIMBAL_EXPORT_DIR": str(out),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    path = (out / "dt=2025-12-05" / "runs.jsonl").resolve()
    day = datetime(2025, 12, 5, tzinfo=UTC)
    truth = runs_between(emu.runs, day, day + timedelta(days=1))
    assert [json.loads(line) for line in path.read_text().splitlines()] == truth
    assert f"{len(truth)} runs -> {path}" in result.stdout
    assert SECRET_KEY not in result.stdout + result.stderr
    (event,) = asset_events(f"file://{path}", count=1)
    assert event.payload["count"] == len(truth)


def test_the_readme_snippet_saves_the_block_and_defines_the_flow(prefect_api: str) -> None:
    readme = (EXAMPLE.parents[2] / "README.md").read_text()
    body = readme.split("\n## Prefect\n", 1)[1].split("\n## ", 1)[0]
    snippet = body.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our README
    from prefect import Flow

    from prefect_timbal import TimbalCredentials

    assert isinstance(namespace["nightly"], Flow)
    assert TimbalCredentials.load("timbal").org_id == "my-org"
