"""``TimbalResource``: fields, EnvVar, environment defaults, one-line errors, the secret."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

dagster = pytest.importorskip("dagster")

from dagster import Definitions, EnvVar, build_resources  # noqa: E402
from dagster._core.remote_representation.external_data import RepositorySnap  # noqa: E402
from dagster._serdes import serialize_value  # noqa: E402

import dagster_timbal  # noqa: E402
from dagster_timbal import TimbalResource  # noqa: E402
from tests.dagster.helpers_dagster import resource_for  # noqa: E402
from tests.support.truth import SECRET_KEY  # noqa: E402
from timbal_integrations import ConfigError, TimbalClient, TimbalError  # noqa: E402
from timbal_integrations.emulator import Emulator  # noqa: E402
from timbal_integrations.errors import is_permanent  # noqa: E402

pytestmark = pytest.mark.dagster

_TIMBAL_VARIABLES = ("TIMBAL_API_KEY", "TIMBAL_API_HOST", "TIMBAL_ORG_ID", "TIMBAL_PROJECT_ID")


@pytest.fixture(autouse=True)
def _no_timbal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _TIMBAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_public_names_are_the_documented_ones() -> None:
    assert set(dagster_timbal.__all__) == {
        "DEFAULT_BACKFILL_POLICY",
        "RESOURCE_KEY",
        "TimbalResource",
        "TimbalSensorCursor",
        "timbal_runs_asset",
        "timbal_runs_sensor",
    }
    for name in dagster_timbal.__all__:
        assert getattr(dagster_timbal, name) is not None
    assert issubclass(TimbalResource, dagster.ConfigurableResource)
    assert dagster_timbal.RESOURCE_KEY == "timbal"


def test_get_client_talks_to_the_configured_project(
    resource: TimbalResource, emu: Emulator
) -> None:
    with resource.get_client() as client:
        assert isinstance(client, TimbalClient)
        assert client.config.base_url == emu.base_url
        assert (client.config.org_id, client.config.project_id) == (emu.org_id, emu.project_id)
        page = client.get_runs_page()
    assert [run.id for run in page.runs] == [run["id"] for run in emu.runs[:50]]

    async def first_page() -> list[str]:
        async with resource.get_async_client() as client:
            return [run.id for run in (await client.get_runs_page()).runs]

    assert asyncio.run(first_page()) == [run["id"] for run in emu.runs[:50]]


def test_env_var_works_for_every_field(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MY_KEY": emu.api_key,
        "MY_HOST": emu.base_url,
        "MY_ORG": emu.org_id,
        "MY_PROJECT": emu.project_id,
    }.items():
        monkeypatch.setenv(name, value)
    resource = TimbalResource(
        api_key=EnvVar("MY_KEY"),
        host=EnvVar("MY_HOST"),
        org_id=EnvVar("MY_ORG"),
        project_id=EnvVar("MY_PROJECT"),
    )
    with build_resources({"timbal": resource}) as resources, resources.timbal.get_client() as c:
        assert c.config.base_url == emu.base_url
        assert [run.id for run in c.list_runs(limit=3)] == [r["id"] for r in emu.runs[:3]]


def test_fields_left_out_come_from_timbal_variables(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    with TimbalResource().get_client() as client:
        assert client.config.base_url == emu.base_url
        assert client.get_runs_page().runs
    # A field that is set wins over its variable.
    monkeypatch.setenv("TIMBAL_ORG_ID", "someone-else")
    assert TimbalResource(org_id=emu.org_id).client_config().org_id == emu.org_id


_WHERE = "in the code location's environment"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"org_id": "o", "project_id": "p"},
            f"no API key: set TimbalResource.api_key (or TIMBAL_API_KEY {_WHERE}); "
            "get one from the Timbal platform settings",
        ),
        (
            {"api_key": SECRET_KEY, "project_id": "p"},
            f"no organisation: set TimbalResource.org_id (or TIMBAL_ORG_ID {_WHERE})",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o"},
            f"no project: set TimbalResource.project_id (or TIMBAL_PROJECT_ID {_WHERE})",
        ),
        (
            {"api_key": "  ", "org_id": "o", "project_id": "p"},
            "no API key: set TimbalResource.api_key",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "a/b", "project_id": "p"},
            "TimbalResource.org_id: 'a/b' is not a valid id",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": ".."},
            "TimbalResource.project_id: '..' is not a valid id",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "p", "host": "ftp://x"},
            "TimbalResource.host: 'ftp://x' has scheme 'ftp'; expected http or https",
        ),
        (
            {"api_key": "tk-SECRET 9f3a", "org_id": "o", "project_id": "p"},
            "TimbalResource.api_key: the API key holds a space",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "p", "timeout": -1.0},
            "TimbalResource.timeout: -1.0 is not a number of seconds above 0",
        ),
        (
            {"api_key": SECRET_KEY, "org_id": "o", "project_id": "p", "max_retries": -1},
            "TimbalResource.max_retries: -1 is not a whole number from 0 to 100",
        ),
    ],
)
def test_bad_configuration_is_one_line_naming_the_field(
    fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(TimbalError) as info:
        TimbalResource(**fields).get_client()
    assert is_permanent(info.value)  # a ConfigError, or a QueryError for max_retries
    text = str(info.value)
    assert text.startswith(expected), text
    assert "\n" not in text
    assert "SECRET" not in text  # never the key, not even a malformed one
    # The field is named once: the core's wording, not a prefix on a prefix.
    assert text.count("TimbalResource.") == 1, text


def test_a_value_from_the_environment_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIMBAL_ORG_ID", "a/b")
    with pytest.raises(ConfigError) as info:
        TimbalResource(api_key=SECRET_KEY, project_id="p").client_config()
    assert (info.value.variable, info.value.argument) == ("TIMBAL_ORG_ID", "org_id")
    assert str(info.value).startswith(
        "TIMBAL_ORG_ID (read because TimbalResource.org_id is not set): 'a/b' is not a valid id"
    )


def test_the_key_is_never_shown(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    literal = resource_for(emu)
    assert SECRET_KEY not in repr(literal)
    assert SECRET_KEY not in str(literal)
    # Dagster's UI masks a field marked secret: a literal key shows as ********.
    field = literal.get_resource_definition().config_schema.as_field().config_type.fields
    assert field["api_key"].is_secret
    assert not field["org_id"].is_secret
    # With EnvVar, Dagster records (and shows) only the variable's name.
    monkeypatch.setenv("TIMBAL_API_KEY", SECRET_KEY)
    defs = Definitions(
        resources={"timbal": TimbalResource(api_key=EnvVar("TIMBAL_API_KEY"), org_id="o")}
    )
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "TIMBAL_API_KEY" in snapshot
    assert SECRET_KEY not in snapshot
