"""Configuration: explicit arguments, then TIMBAL_* variables; the key stays hidden."""

from __future__ import annotations

import pytest

from tests.core.helpers_core import KEY
from timbal_integrations import (
    AsyncTimbalClient,
    ClientConfig,
    ConfigError,
    Secret,
    TimbalClient,
)
from timbal_integrations.config import DEFAULT_HOST, normalize_base_url, resolve_config

ENV = {
    "TIMBAL_API_KEY": "env-key-999",
    "TIMBAL_API_HOST": "env.example.test",
    "TIMBAL_ORG_ID": "env_org",
    "TIMBAL_PROJECT_ID": "env_proj",
}


def test_explicit_arguments_beat_environment() -> None:
    config = resolve_config(
        KEY, host="http://127.0.0.1:9", org_id="org_x", project_id="proj_x", env=ENV
    )
    assert config.api_key.get() == KEY
    assert config.base_url == "http://127.0.0.1:9"
    assert config.org_id == "org_x"
    assert config.project_id == "proj_x"


def test_environment_used_when_arguments_left_out() -> None:
    config = resolve_config(env=ENV)
    assert config.api_key.get() == "env-key-999"
    assert config.base_url == "https://env.example.test"
    assert config.org_id == "env_org"
    assert config.project_id == "env_proj"
    assert config.runs_path == "/orgs/env_org/projects/env_proj/runs"


def test_each_argument_overrides_only_itself() -> None:
    config = resolve_config(org_id="org_only", env=ENV)
    assert config.org_id == "org_only"
    assert config.project_id == "env_proj"
    assert config.api_key.get() == "env-key-999"


def test_os_environ_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = resolve_config()
    assert config.api_key.get() == "env-key-999"
    assert config.org_id == "env_org"
    with TimbalClient() as client:
        assert client.config == config


def test_secret_passed_as_secret() -> None:
    config = resolve_config(Secret(KEY), org_id="o", project_id="p", env={})
    assert config.api_key == Secret(KEY)


def test_default_host_when_unset() -> None:
    config = resolve_config(KEY, org_id="o", project_id="p", env={})
    assert config.base_url == DEFAULT_HOST == "https://api.timbal.ai"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("api.timbal.ai", "https://api.timbal.ai"),
        ("  api.timbal.ai  ", "https://api.timbal.ai"),
        ("api.timbal.ai/", "https://api.timbal.ai"),
        ("localhost:8000", "https://localhost:8000"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://api.timbal.ai", "https://api.timbal.ai"),
        ("https://proxy.example.test/timbal/", "https://proxy.example.test/timbal"),
    ],
)
def test_host_normalisation(host: str, expected: str) -> None:
    assert normalize_base_url(host) == expected
    assert resolve_config(KEY, host=host, org_id="o", project_id="p", env={}).base_url == expected


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("ftp://api.timbal.ai", "scheme"),
        ("ws://api.timbal.ai", "scheme"),
        ("http://", "no host"),
        ("   ", "empty"),
        ("", "empty"),
        ("https://api.timbal.ai/?x=1", "query"),
        ("https://api.timbal.ai:99999", "port"),
    ],
)
def test_bad_host_is_a_config_error_naming_the_variable(host: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(KEY, host=host, org_id="o", project_id="p", env={})
    message = str(info.value)
    assert "TIMBAL_API_HOST" in message
    assert fragment in message
    assert KEY not in message


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("TIMBAL_API_KEY", "TIMBAL_API_KEY"),
        ("TIMBAL_ORG_ID", "TIMBAL_ORG_ID"),
        ("TIMBAL_PROJECT_ID", "TIMBAL_PROJECT_ID"),
    ],
)
def test_missing_setting_names_the_variable(missing: str, variable: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=variable):
        resolve_config(env=env)
    blank = dict(ENV, **{missing: ""})
    with pytest.raises(ConfigError, match=variable):
        resolve_config(env=blank)


def test_whitespace_key_is_missing() -> None:
    with pytest.raises(ConfigError, match="TIMBAL_API_KEY"):
        resolve_config(env=dict(ENV, TIMBAL_API_KEY="   "))


@pytest.mark.parametrize("bad", ["a/b", "a?b", "a#b", "a b"])
def test_ids_that_would_break_the_path_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="TIMBAL_ORG_ID"):
        resolve_config(KEY, org_id=bad, project_id="p", env={})
    with pytest.raises(ConfigError, match="TIMBAL_PROJECT_ID"):
        resolve_config(KEY, org_id="o", project_id=bad, env={})


def test_clients_raise_config_error_without_settings() -> None:
    with pytest.raises(ConfigError, match="TIMBAL_API_KEY"):
        TimbalClient(env={})
    with pytest.raises(ConfigError, match="TIMBAL_ORG_ID"):
        AsyncTimbalClient(KEY, env={})


def test_key_never_in_reprs() -> None:
    config = resolve_config(KEY, org_id="o", project_id="p", env={})
    assert isinstance(config, ClientConfig)
    for text in (repr(config), str(config), repr(config.api_key), str(config.api_key)):
        assert KEY not in text
    assert repr(Secret(KEY)) == "Secret('********')"
    assert f"{Secret(KEY)}" == "Secret('********')"
    with TimbalClient(KEY, org_id="o", project_id="p", env={}) as client:
        assert KEY not in repr(client)
        assert KEY not in repr(client.config)
        assert "https://api.timbal.ai" in repr(client)
    client_a = AsyncTimbalClient(KEY, org_id="o", project_id="p", env={})
    assert KEY not in repr(client_a)


def test_secret_behaviour() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert not Secret("")
    assert Secret("x").get() == "x"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"env": {}},
        {"org_id": "o", "env": {}},
        {"org_id": "o/x", "project_id": "p", "env": {}},
        {"org_id": "o", "project_id": "p", "host": "ftp://h", "env": {}},
        {"env": {"TIMBAL_ORG_ID": "o", "TIMBAL_PROJECT_ID": "p?", "TIMBAL_API_KEY": "ignored"}},
    ],
)
def test_key_never_in_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(KEY, **kwargs)  # type: ignore[arg-type]
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


def test_an_empty_host_variable_means_the_default_but_an_empty_argument_is_an_error() -> None:
    env = {"TIMBAL_API_HOST": ""}
    assert resolve_config(KEY, org_id="o", project_id="p", env=env).base_url == DEFAULT_HOST
    with pytest.raises(ConfigError, match="TIMBAL_API_HOST: empty"):
        resolve_config(KEY, host="", org_id="o", project_id="p", env=env)
