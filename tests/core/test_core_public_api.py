"""The package's public names are pinned, and importing it stays light."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

import pytest

import timbal_integrations
from tests.support.exports import exposed_members

CORE_MODULES = [
    "timbal_integrations.config",
    "timbal_integrations.defaults",
    "timbal_integrations.limits",
    "timbal_integrations.wording",
    "timbal_integrations.errors",
    "timbal_integrations.models",
    "timbal_integrations.query",
    "timbal_integrations.filters",
    "timbal_integrations.times",
    "timbal_integrations.retry",
    "timbal_integrations.client",
    "timbal_integrations.summary",
    "timbal_integrations.timebuckets",
    "timbal_integrations.trace",
    "timbal_integrations.usage",
]


def test_all_is_what_the_package_exports() -> None:
    # Derived, not copied (as httpx's test_exported_members): the names the package
    # actually serves are exactly __all__, each once.
    assert set(timbal_integrations.__all__) == exposed_members(timbal_integrations)
    assert len(set(timbal_integrations.__all__)) == len(timbal_integrations.__all__)
    assert "RunQuery" in timbal_integrations.__all__  # the derivation sees lazy names


def test_every_exported_name_exists() -> None:
    for name in timbal_integrations.__all__:
        assert getattr(timbal_integrations, name, None) is not None, name


def test_version_is_a_string() -> None:
    assert isinstance(timbal_integrations.__version__, str)
    assert timbal_integrations.__version__[0].isdigit()


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_core_modules_have_explicit_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert exported, module_name
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_exceptions_form_one_tree() -> None:
    ti = timbal_integrations
    for name in ti.__all__:
        obj = getattr(ti, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ti.TimbalError), name
    assert issubclass(ti.APITimeoutError, ti.APIConnectionError)
    assert issubclass(ti.PaginationLoopError, ti.ResponseValidationError)
    assert issubclass(ti.QueryError, ValueError)
    for cls in (
        ti.BadRequestError,
        ti.AuthenticationError,
        ti.PermissionDeniedError,
        ti.NotFoundError,
        ti.RateLimitError,
        ti.ServerError,
    ):
        assert issubclass(cls, ti.APIStatusError)


def test_import_does_not_pull_airflow_pyarrow_dagster_or_prefect() -> None:
    code = (
        "import json, sys\n"
        "HEAVY = ('airflow', 'pyarrow', 'dagster', 'prefect')\n"
        "import timbal_integrations\n"
        "from timbal_integrations import TimbalClient, RunQuery\n"
        "import timbal_integrations.summary\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _modules_after(code: str) -> set[str]:
    script = "import json, sys\n" + code + "\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_is_lazy_until_a_name_is_used() -> None:
    loaded = _modules_after("import timbal_integrations")
    assert not {"httpx", "pydantic", "asyncio"} & loaded
    loaded = _modules_after("from timbal_integrations import TimbalClient")
    assert {"httpx", "pydantic_core"} <= loaded
    assert "asyncio" not in loaded  # only parallel paging and async retries need it
    # The export path checks pages with pydantic-core alone; the models load on first use.
    loaded = _modules_after("import timbal_integrations.cli, timbal_integrations.export")
    assert not {"pydantic", "timbal_integrations.models", "timbal_integrations.summary"} & loaded
    loaded = _modules_after("from timbal_integrations import RECORD_FIELDS")
    assert not {"pydantic", "timbal_integrations.models"} & loaded
    loaded = _modules_after("from timbal_integrations import Run")
    assert {"pydantic", "timbal_integrations.models"} <= loaded


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        timbal_integrations.nope  # noqa: B018
    assert "TimbalClient" in dir(timbal_integrations)


def test_sniffio_is_a_declared_dependency() -> None:
    # httpcore retries a failed `import sniffio` several times per async request
    # (encode/httpcore#1103); declaring it keeps ~1 ms per MCP call off.
    from importlib.metadata import requires

    names = {re.match(r"[A-Za-z0-9_.-]+", req) for req in requires("timbal-integrations") or []}
    assert "sniffio" in {name.group(0).lower() for name in names if name is not None}
