"""Issue 16's protections in the Prefect integration: spreadsheet-safe CSV through the
task and the flow, failures with the key redacted and no control character."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

prefect = pytest.importorskip("prefect.flows")

from prefect import flow  # noqa: E402

from prefect_timbal import TimbalCredentials, export_runs, export_runs_flow  # noqa: E402
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
from timbal_integrations import AuthenticationError  # noqa: E402

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(180)]

SINCE, UNTIL = "2025-12-01", "2025-12-02"  # the day of tests.support.runs.make_run's runs


@pytest.fixture(autouse=True)
def _watch_the_hostile_key(leak_guard: Any) -> None:
    leak_guard.register(KEY)


def _credentials(server: HostileServer) -> TimbalCredentials:
    return TimbalCredentials(
        api_key=KEY, host=server.base_url, org_id=ORG, project_id=PROJECT, max_retries=0
    )


@pytest.mark.usefixtures("prefect_api")
def test_the_task_and_the_flow_write_spreadsheet_safe_csv_when_asked(tmp_path: Path) -> None:
    by_task, by_flow = tmp_path / "task.csv", tmp_path / "flow.csv"
    with HostileServer(pages(formula_runs)).running() as server:
        credentials = _credentials(server)

        @flow
        def both() -> None:
            export_runs(credentials, by_task, csv_safe=True, since=SINCE, until=UNTIL)

        both()
        export_runs_flow(credentials, SINCE, UNTIL, str(by_flow), csv_safe=True)
    for path in (by_task, by_flow):
        row = path.read_text().splitlines()[1]
        assert "'=HYPERLINK" in row
        assert ",'+1@x," in row
        manifest = json.loads(Path(f"{path}.manifest.json").read_text())
        assert manifest["csv_safe"] is True


@pytest.mark.usefixtures("prefect_api")
def test_a_failure_never_repeats_the_key_or_a_control_character(tmp_path: Path) -> None:
    with HostileServer(echo_key(before="\x1b[2J", after="\x07")).running() as server:
        credentials = _credentials(server)

        @flow
        def failing() -> None:
            export_runs(credentials, tmp_path / "runs.jsonl", since=SINCE, until=UNTIL)

        with pytest.raises(AuthenticationError) as info:
            failing()
    text = str(info.value)
    assert "401 Unauthorized" in text
    assert KEY[-8:] not in text
    assert "\x1b" not in text


def test_describe_redacts_the_key_and_escapes_control_characters_of_any_error() -> None:
    # Not every message comes from the core's redacted errors (a user's code, a library):
    # the wording redacts the object's own key and leaves nothing to act on a terminal.
    assert_worded_safely(
        TimbalCredentials(api_key=KEY, host="http://127.0.0.1:9", org_id=ORG, project_id=PROJECT)
    )
