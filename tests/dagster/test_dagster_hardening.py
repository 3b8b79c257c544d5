"""Issue 16's protections in the Dagster integration: spreadsheet-safe CSV on the asset,
failures with the key redacted and no control character, against hostile servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import DagsterInstance, materialize  # noqa: E402

from dagster_timbal import TimbalResource, timbal_runs_asset  # noqa: E402
from tests.support.hostile import (  # noqa: E402
    KEY,
    ORG,
    PROJECT,
    HostileServer,
    assert_worded_safely,
    echo_key,
    formula_runs,
    pages,
)
from timbal_integrations import QueryError  # noqa: E402

pytestmark = [pytest.mark.dagster, pytest.mark.timeout(120)]

DAY = "2025-12-01"  # the day of tests.support.runs.make_run's runs


@pytest.fixture(autouse=True)
def _watch_the_hostile_key(leak_guard: Any) -> None:
    leak_guard.register(KEY)


def _resource(server: HostileServer) -> TimbalResource:
    return TimbalResource(
        api_key=KEY, host=server.base_url, org_id=ORG, project_id=PROJECT, max_retries=0
    )


def _materialize(server: HostileServer, tmp_path: Path, **options: Any) -> Any:
    """Materialise day :data:`DAY` of an asset of ``server`` into ``tmp_path``."""
    asset = timbal_runs_asset(output_dir=tmp_path, start_date=DAY, **options)
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [asset],
            resources={"timbal": _resource(server)},
            partition_key=DAY,
            instance=instance,
            raise_on_error=False,
        )


def _failure(result: Any) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return str(failure.step_failure_data.user_failure_data.description)


def test_the_asset_writes_spreadsheet_safe_csv_when_asked(tmp_path: Path) -> None:
    with HostileServer(pages(formula_runs)).running() as server:
        result = _materialize(server, tmp_path, format="csv", csv_safe=True)
    assert result.success
    path = tmp_path / f"dt={DAY}" / "runs.csv"
    row = path.read_text().splitlines()[1]
    assert "'=HYPERLINK" in row
    assert "'=cmd|" in row
    assert ",'+1@x," in row
    manifest = json.loads((tmp_path / f"dt={DAY}" / "runs.csv.manifest.json").read_text())
    assert manifest["csv_safe"] is True


def test_csv_safe_is_refused_for_another_format_when_the_asset_is_defined(
    tmp_path: Path,
) -> None:
    with pytest.raises(QueryError) as info:
        timbal_runs_asset(output_dir=tmp_path, format="jsonl", start_date=DAY, csv_safe=True)
    assert info.value.field == "csv_safe"
    assert "only applies to CSV" in str(info.value)


def test_a_failure_never_repeats_the_key_or_a_control_character(tmp_path: Path) -> None:
    with HostileServer(echo_key(before="\x1b[2J", after="\x07")).running() as server:
        result = _materialize(server, tmp_path)
    text = _failure(result)
    assert text.startswith(f"{DAY}: 401 Unauthorized"), text
    assert KEY[-8:] not in text
    assert "\x1b" not in text
    assert "\x07" not in text


def test_describe_redacts_the_key_and_escapes_control_characters_of_any_error() -> None:
    # Not every message comes from the core's redacted errors (a user's code, a library):
    # the wording redacts the object's own key and leaves nothing to act on a terminal.
    assert_worded_safely(
        TimbalResource(api_key=KEY, host="http://127.0.0.1:9", org_id=ORG, project_id=PROJECT)
    )
