"""Where Prefect is installed, the core and the MCP server still do not import it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("prefect.flows")

pytestmark = pytest.mark.prefect

CODE = """
import json, sys
import timbal_integrations
from timbal_integrations import TimbalClient, RunQuery
import timbal_integrations.export, timbal_integrations.summary
import mcp_server, mcp_server.__main__, mcp_server.transport
mcp_server.create_server(env={})
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'dagster', 'airflow'))
print(json.dumps(heavy))
"""


def test_core_and_mcp_server_import_no_orchestrator() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
