"""Provider registration and ``TimbalHook``: what Airflow sees, and connections in both forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import airflow_provider
from tests.airflow.helpers_airflow import REPO, AirflowEnv, connection_json
from timbal_integrations import Run
from timbal_integrations.emulator import Emulator

pytestmark = pytest.mark.airflow


# -- provider info ----------------------------------------------------------------------


def test_importing_the_provider_package_does_not_import_airflow() -> None:
    code = (
        "import sys, airflow_provider; info = airflow_provider.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_provider_info_matches_the_distribution_and_airflows_schema(airflow_db: Path) -> None:
    info = airflow_provider.get_provider_info()
    assert info["package-name"] == "timbal-integrations"
    # Airflow compares package-name with the name of the distribution of the entry point.
    (ours,) = [
        ep
        for ep in metadata.entry_points(group="apache_airflow_provider")
        if ep.value == "airflow_provider:get_provider_info"
    ]
    assert ours.dist is not None
    assert ours.dist.metadata["Name"] == info["package-name"]

    import jsonschema
    from airflow import providers_manager

    schema_path = Path(providers_manager.__file__).with_name("provider_info.schema.json")
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "timbal"
    assert conn["hook-class-name"] == "airflow_provider.hooks.timbal.TimbalHook"
    assert set(conn["conn-fields"]) == {"org_id", "project_id"}


def test_airflow_providers_list_shows_the_provider(airflow_db: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    listed = {p["package_name"]: p for p in json.loads(out.stdout)}
    assert "timbal-integrations" in listed
    assert listed["timbal-integrations"]["version"] == metadata.version("timbal-integrations")


def test_connection_type_and_form_are_registered(airflow_db: Path) -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from airflow_provider.hooks.timbal import TimbalHook

    manager = ProvidersManager()
    assert "timbal-integrations" in manager.providers
    hook = ProvidersManagerTaskRuntime().hooks["timbal"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider.hooks.timbal.TimbalHook"
    assert hook.connection_id_attribute_name == "timbal_conn_id"
    assert hook.package_name == "timbal-integrations"

    behaviour = manager.field_behaviours["timbal"]
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "port", "extra"}
    assert behaviour["relabeling"] == {"host": "API host", "password": "API key"}
    assert behaviour["placeholders"]["host"] == "api.timbal.ai"
    widgets = manager.connection_form_widgets
    assert widgets["extra__timbal__org_id"].field_name == "org_id"
    assert widgets["extra__timbal__project_id"].field_name == "project_id"
    assert not widgets["extra__timbal__org_id"].is_sensitive
    # The form comes from provider info, not from the deprecated hook methods.
    assert "get_connection_form_widgets" not in TimbalHook.__dict__
    assert "get_ui_field_behaviour" not in TimbalHook.__dict__
    assert (TimbalHook.conn_type, TimbalHook.default_conn_name) == ("timbal", "timbal_default")


# -- the hook ---------------------------------------------------------------------------


def _uri_forms(emu: Emulator) -> list[str]:
    query = f"?org_id={emu.org_id}&project_id={emu.project_id}"
    host_port = emu.base_url.removeprefix("http://")
    return [
        # The URL percent-encoded as the host, as Airflow's own HTTP connections do.
        f"timbal://:{quote(emu.api_key, safe='')}@{quote(emu.base_url, safe='')}/{query}",
        # Host and port, with the scheme as the path (the "schema" field).
        f"timbal://:{quote(emu.api_key, safe='')}@{host_port}/http{query}",
    ]


def _first_ids(emu: Emulator, n: int) -> list[str]:
    return [Run.model_validate(raw).id for raw in emu.runs[:n]]


def test_hook_from_a_json_connection(
    airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider.hooks.timbal import TimbalHook

    emu = airflow_env.emu
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_JSON", connection_json(emu))
    hook = TimbalHook("timbal_json")
    try:
        assert [run.id for run in hook.list_runs(limit=3)] == _first_ids(emu, 3)
        detail = hook.get_run(emu.runs[0]["id"])
        assert detail.id == emu.runs[0]["id"]
        config = hook.get_conn().config
        assert (config.base_url, config.org_id, config.project_id) == (
            emu.base_url,
            emu.org_id,
            emu.project_id,
        )
        assert emu.api_key not in repr(hook)
        assert emu.api_key not in repr(hook.get_conn())
    finally:
        hook.close()


@pytest.mark.parametrize("form", [0, 1], ids=["encoded-url-host", "host-port-schema"])
def test_hook_from_a_uri_connection(
    airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch, form: int
) -> None:
    from airflow_provider.hooks.timbal import TimbalHook

    emu = airflow_env.emu
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_URI", _uri_forms(emu)[form])
    hook = TimbalHook(timbal_conn_id="timbal_uri")
    try:
        assert hook.get_conn().config.base_url == emu.base_url
        assert [run.id for run in hook.list_runs(limit=60)] == _first_ids(emu, 60)  # 2 pages
    finally:
        hook.close()


def test_hook_default_connection_and_argument_overrides(airflow_env: AirflowEnv) -> None:
    from airflow_provider.hooks.timbal import TimbalHook

    emu = airflow_env.emu
    with TimbalHook() as with_default:
        assert with_default.timbal_conn_id == "timbal_default"
        assert with_default.get_conn().config.base_url == emu.base_url

    # Arguments override the connection's fields: a project the emulator does not serve.
    other = TimbalHook(project_id="someone-elses-project")
    assert other.resolve_config().project_id == "someone-elses-project"
    ok, message = other.test_connection()
    assert not ok
    assert message.startswith("403 Forbidden from GET /orgs/demo-org/projects/someone-elses-")
    assert "Insufficient permissions" in message  # the API's own words
    # the project came from the hook's argument, the org from the connection's extra
    assert message.endswith(
        "check the org_id extra of connection 'timbal_default' and the project_id argument)"
    )


def test_hook_builds_both_clients_from_one_config_with_the_airflow_retry_policy(
    airflow_env: AirflowEnv,
) -> None:
    import asyncio
    import dataclasses

    from airflow_provider.hooks.timbal import AIRFLOW_RETRY_POLICY, TimbalHook
    from timbal_integrations import RetryPolicy, defaults

    # the policy's numbers are the core's defaults for Airflow: 0.5 + 1 + 2 + 4 = 7.5 s
    assert (
        RetryPolicy(
            max_retries=defaults.AIRFLOW_MAX_RETRIES,
            backoff_base=defaults.AIRFLOW_BACKOFF_BASE,
            backoff_max=defaults.AIRFLOW_BACKOFF_MAX,
        )
        == AIRFLOW_RETRY_POLICY
    )
    assert (AIRFLOW_RETRY_POLICY.max_retries, AIRFLOW_RETRY_POLICY.backoff_max) == (4, 4.0)

    async def async_client(hook: TimbalHook, **kwargs: Any) -> tuple[Any, RetryPolicy, float]:
        client = await hook.get_async_conn(**kwargs)
        try:
            return client.config, client.retry_policy, client.timeout.read
        finally:
            await client.aclose()

    with TimbalHook(timeout=7.0) as hook:
        sync = hook.get_conn()
        config, policy, timeout = asyncio.run(async_client(hook))
        assert config == sync.config  # one resolution path, sync and async
        assert policy == sync.retry_policy == AIRFLOW_RETRY_POLICY
        assert timeout == sync.timeout.read == 7.0
        # a trigger asks for fewer retries: the count changes, the ceilings stay
        _, fewer, _ = asyncio.run(async_client(hook, max_retries=1))
        assert fewer == dataclasses.replace(AIRFLOW_RETRY_POLICY, max_retries=1)
    with TimbalHook(max_retries=9) as hook:
        assert hook.get_conn().retry_policy == dataclasses.replace(
            AIRFLOW_RETRY_POLICY, max_retries=9
        )
        assert asyncio.run(async_client(hook))[1].max_retries == 9


def test_hook_names_the_missing_connection_field(
    airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider.hooks.timbal import TimbalHook
    from timbal_integrations import ConfigError

    emu = airflow_env.emu
    conn = json.loads(connection_json(emu))
    del conn["extra"]["org_id"]
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_NO_ORG", json.dumps(conn))
    with pytest.raises(
        ConfigError, match=r"no organisation: set the org_id extra of connection 'timbal_no_org'"
    ) as missing:
        TimbalHook("timbal_no_org").get_conn()
    assert "TIMBAL_" not in str(missing.value)  # the hook never reads those variables
    assert (missing.value.variable, missing.value.argument) == ("TIMBAL_ORG_ID", "org_id")
    # ... unless given as an argument
    with TimbalHook("timbal_no_org", org_id=emu.org_id) as hook:
        assert hook.get_conn().config.org_id == emu.org_id
    # a bad value is named where it came from: the argument, or the connection's field
    with pytest.raises(ConfigError, match=r"^the host argument: 'ftp://x' has scheme 'ftp'"):
        TimbalHook("timbal_no_org", org_id="o", host="ftp://x").get_conn()
    conn["host"] = "ftp://y"
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_BAD_HOST", json.dumps(conn))
    with pytest.raises(
        ConfigError, match=r"^the host of connection 'timbal_bad_host': 'ftp://y' has scheme"
    ):
        TimbalHook("timbal_bad_host", org_id="o").get_conn()


def test_test_connection_success_and_the_apis_own_message(
    airflow_env: AirflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Connection

    from airflow_provider.hooks.timbal import TimbalHook

    emu = airflow_env.emu
    ok, message = TimbalHook().test_connection()
    assert ok
    assert emu.base_url in message
    assert emu.project_id in message

    wrong_key = "tk-wrong-key-0123456789"
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_BAD", connection_json(emu, api_key=wrong_key))
    ok, message = TimbalHook("timbal_bad").test_connection()
    assert not ok
    assert message.startswith("401 Unauthorized from GET ")
    assert wrong_key not in message

    # The UI's "Test" button goes through Connection.test_connection and the registry.
    conn = Connection(
        conn_id="timbal_ui",
        conn_type="timbal",
        host=emu.base_url,
        password=emu.api_key,
        extra=json.dumps({"org_id": emu.org_id, "project_id": emu.project_id}),
    )
    assert conn.test_connection()[0] is True


def test_test_connection_reports_a_failing_server(
    timbal_emulator_factory: Any, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider.hooks.timbal import TimbalHook

    emu = timbal_emulator_factory(runs=10)
    monkeypatch.setenv("AIRFLOW_CONN_TIMBAL_GONE", connection_json(emu))
    hook = TimbalHook("timbal_gone", max_retries=0)
    emu.configure(fault_rate=1.0, fault_kinds=["500"])
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("500 ")


def test_sensors_and_triggers_are_registered(airflow_db: Path) -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    triggers = {t.package_name: t for t in manager.trigger}
    ours = [t for t in manager.trigger if t.package_name == "timbal-integrations"]
    assert [(t.integration_name, t.trigger_class_name) for t in ours] == [
        ("Timbal", "airflow_provider.triggers.timbal")
    ]
    assert "timbal-integrations" in triggers
    info = manager.providers["timbal-integrations"].data
    assert info["sensors"] == [
        {"integration-name": "Timbal", "python-modules": ["airflow_provider.sensors.timbal"]}
    ]
    # No extra links: Timbal's API has no web address for a project's runs or a run.
    assert "extra-links" not in info

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    out = subprocess.run(
        [airflow, "providers", "triggers", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    listed = [t for t in json.loads(out.stdout) if t["package_name"] == "timbal-integrations"]
    assert [t["class"] for t in listed] == ["airflow_provider.triggers.timbal"]


def test_public_names(airflow_db: Path) -> None:
    from airflow_provider.hooks import timbal as hooks
    from airflow_provider.operators import timbal as operators
    from airflow_provider.sensors import timbal as sensors
    from airflow_provider.triggers import timbal as triggers

    assert airflow_provider.__all__ == [
        "CONN_TYPE",
        "DEFAULT_CONN_ID",
        "PACKAGE_NAME",
        "get_provider_info",
    ]
    assert hooks.__all__ == ["AIRFLOW_RETRY_POLICY", "TimbalHook"]
    assert operators.__all__ == ["DEFAULT_MAX_XCOM_RUNS", "TimbalListRunsOperator", "asset_uri"]
    assert sensors.__all__ == ["TimbalRunSensor"]
    assert triggers.__all__ == [
        "MAX_TRACKED_RUNS",
        "MIN_POKE_INTERVAL",
        "TimbalNewRunsTrigger",
        "TimbalRunTrigger",
    ]
    for module in (airflow_provider, hooks, operators, sensors, triggers):
        for name in module.__all__:
            assert getattr(module, name) is not None
