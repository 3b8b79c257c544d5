"""``TimbalCredentials``: fields, one-line errors, the secret, saving, registering."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

prefect = pytest.importorskip("prefect.flows")

from prefect.blocks.core import Block  # noqa: E402
from pydantic import SecretStr  # noqa: E402

import prefect_timbal  # noqa: E402
from prefect_timbal import TimbalCredentials  # noqa: E402
from tests.prefect.helpers_prefect import credentials_for  # noqa: E402
from tests.support.truth import SECRET_KEY  # noqa: E402
from timbal_integrations import ConfigError, TimbalClient, TimbalError  # noqa: E402
from timbal_integrations.emulator import Emulator  # noqa: E402
from timbal_integrations.errors import is_permanent  # noqa: E402

pytestmark = pytest.mark.prefect


def test_public_names_are_the_documented_ones() -> None:
    assert set(prefect_timbal.__all__) == {
        "TimbalCredentials",
        "export_runs",
        "export_runs_flow",
        "list_runs",
        "retry_unless_permanent",
        "summarize_runs",
    }
    for name in prefect_timbal.__all__:
        assert getattr(prefect_timbal, name) is not None
    assert issubclass(TimbalCredentials, Block)
    assert TimbalCredentials.model_fields["api_key"].annotation is SecretStr
    assert {"api_key", "org_id", "project_id", "host"} <= set(TimbalCredentials.model_fields)
    assert TimbalCredentials.get_block_type_slug() == "timbal-credentials"


def test_get_client_talks_to_the_configured_project(
    credentials: TimbalCredentials, emu: Emulator
) -> None:
    with credentials.get_client() as client:
        assert isinstance(client, TimbalClient)
        assert client.config.base_url == emu.base_url
        ids = [run.id for run in client.get_runs_page().runs]
    assert ids == [run["id"] for run in emu.runs[:50]]

    async def first_page() -> list[str]:
        async with credentials.get_async_client() as client:
            return [run.id for run in (await client.get_runs_page()).runs]

    assert asyncio.run(first_page()) == ids


B = "TimbalCredentials"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"org_id": "o", "project_id": "p"},
            "no API key: set TimbalCredentials.api_key; get one from the Timbal platform settings",
        ),
        ({"api_key": " ", "org_id": "o", "project_id": "p"}, f"no API key: set {B}.api_key"),
        ({"api_key": SECRET_KEY, "project_id": "p"}, f"no organisation: set {B}.org_id"),
        ({"api_key": SECRET_KEY, "org_id": "o"}, "no project: set TimbalCredentials.project_id"),
        (
            {"api_key": SECRET_KEY, "org_id": "\t", "project_id": "p"},
            f"no organisation: set {B}.org_id",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "a/b", "project_id": "p"},
            "TimbalCredentials.org_id: 'a/b' is not a valid id",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "."},
            "TimbalCredentials.project_id: '.' is not a valid id",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "p", "host": "ftp://h"},
            "TimbalCredentials.host: 'ftp://h' has scheme 'ftp'; expected http or https",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "p", "host": " "},
            "TimbalCredentials.host: empty; expected a host",
        ),
        (
            {"api_key": "tk-bad key-SECRET", "org_id": "o", "project_id": "p"},
            "TimbalCredentials.api_key: the API key holds a space",
        ),
    ],
)  # fmt: skip
def test_bad_fields_are_one_line_errors_naming_them(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        TimbalCredentials(**fields)
    text = str(info.value)
    assert text.startswith(expected), text
    assert "\n" not in text
    assert "SECRET" not in text
    assert text.count("TimbalCredentials.") == 1, text  # named once, no doubled prefix


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout", 0.0, "TimbalCredentials.timeout: 0.0 is not a number of seconds above 0"),
        ("max_retries", -1, "TimbalCredentials.max_retries: -1 is not a whole number from 0 to"),
    ],
)
def test_bad_client_options_name_their_field(
    emu: Emulator, field: str, value: float, expected: str
) -> None:
    with pytest.raises(TimbalError) as info:
        credentials_for(emu, **{field: value}).get_client()
    assert is_permanent(info.value)
    assert str(info.value).startswith(expected), str(info.value)


def test_the_key_is_a_secret(credentials: TimbalCredentials) -> None:
    assert isinstance(credentials.api_key, SecretStr)
    assert SECRET_KEY not in repr(credentials)
    assert SECRET_KEY not in str(credentials)
    assert SECRET_KEY not in credentials.model_dump_json()


def test_save_and_load_through_the_api(prefect_api: str, emu: Emulator) -> None:
    credentials_for(emu).save("timbal-test", overwrite=True)
    loaded = TimbalCredentials.load("timbal-test")
    assert loaded.api_key.get_secret_value() == SECRET_KEY
    with loaded.get_client() as client:
        assert client.get_runs_page().runs
    # What the API hands out without asking for secrets is masked.
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(
            "timbal-test", "timbal-credentials", include_secrets=False
        )
    assert SECRET_KEY not in repr(document.data)
    assert document.data["org_id"] == emu.org_id


def test_prefect_block_register_cli(prefect_api: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_timbal"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PREFECT_API_URL": prefect_api},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Timbal Credentials" in result.stdout
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug("timbal-credentials")
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
    assert block_type.name == "Timbal Credentials"
    assert schema is not None
    assert schema.fields["secret_fields"] == ["api_key"]
    assert set(schema.fields["required"]) == {"api_key", "org_id", "project_id"}
