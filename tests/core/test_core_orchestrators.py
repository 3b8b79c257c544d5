"""ClientSettings: the clients and error wording the Dagster resource and the Prefect block
share, on a plain pydantic model (neither framework needed)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from timbal_integrations import AsyncTimbalClient, ConfigError, QueryError, TimbalClient
from timbal_integrations._orchestrators import ClientSettings, max_retries_field, timeout_field
from timbal_integrations.config import ClientConfig, resolve_config
from timbal_integrations.emulator import Emulator
from timbal_integrations.errors import status_error


class Settings(BaseModel, ClientSettings):
    """A settings model as a front end writes one: fields, and their resolution."""

    api_key: str
    org_id: str
    project_id: str
    host: str
    timeout: float = timeout_field()
    max_retries: int | None = max_retries_field()

    def secret(self) -> str | None:
        return self.api_key or None

    def client_config(self) -> ClientConfig:
        try:
            return resolve_config(
                self.api_key,
                host=self.host,
                org_id=self.org_id,
                project_id=self.project_id,
                env={},
            )
        except ConfigError as error:
            raise self.restate(error) from None


def settings_for(emu: Emulator, **overrides: object) -> Settings:
    fields: dict[str, object] = {
        "api_key": emu.api_key,
        "org_id": emu.org_id,
        "project_id": emu.project_id,
        "host": emu.base_url,
        **overrides,
    }
    return Settings.model_validate(fields)


def test_the_mixin_adds_methods_not_fields() -> None:
    assert set(Settings.model_fields) == {
        "api_key",
        "org_id",
        "project_id",
        "host",
        "timeout",
        "max_retries",
    }
    assert Settings.model_fields["timeout"].default == 30.0
    assert Settings.model_fields["max_retries"].default is None


def test_clients_of_both_kinds_reach_the_configured_project(timbal_emulator: Emulator) -> None:
    settings = settings_for(timbal_emulator, timeout=5.0, max_retries=2)
    with settings.get_client() as client:
        assert isinstance(client, TimbalClient)
        assert client.retry_policy.max_retries == 2
        ids = [run.id for run in client.get_runs_page().runs]
    assert ids == [run["id"] for run in timbal_emulator.runs[:50]]

    async def first_page() -> list[str]:
        async with settings.get_async_client() as client:
            assert isinstance(client, AsyncTimbalClient)
            return [run.id for run in (await client.get_runs_page()).runs]

    assert asyncio.run(first_page()) == ids


def test_errors_name_the_fields(timbal_emulator: Emulator) -> None:
    with pytest.raises(ConfigError) as bad_id:
        settings_for(timbal_emulator, org_id="a/b").get_client()
    assert str(bad_id.value).startswith("Settings.org_id: 'a/b' is not a valid id")
    assert bad_id.value.argument == "org_id"  # the data stays
    with pytest.raises(ConfigError) as bad_timeout:
        settings_for(timbal_emulator, timeout=-1.0).get_client()
    assert str(bad_timeout.value) == (
        "Settings.timeout: -1.0 is not a number of seconds above 0 and at most 3600"
    )
    with pytest.raises(QueryError) as bad_retries:
        settings_for(timbal_emulator, max_retries=101).get_client()
    assert str(bad_retries.value) == (
        "Settings.max_retries: 101 is not a whole number from 0 to 100"
    )
    refused = status_error(401, method="GET", path="/runs")
    text = settings_for(timbal_emulator).describe(refused)
    assert text.endswith("(the API key was rejected — check Settings.api_key)")
