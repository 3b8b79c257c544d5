"""Client configuration: explicit arguments first, then Timbal's environment variables.

``TIMBAL_API_KEY``, ``TIMBAL_API_HOST`` (a bare host such as ``api.timbal.ai``, meaning
https, or a full URL such as ``http://127.0.0.1:8000``), ``TIMBAL_ORG_ID`` and
``TIMBAL_PROJECT_ID``. The key is held in a :class:`Secret`, whose repr never shows it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_HOST",
    "VARIABLES",
    "ClientConfig",
    "Secret",
    "normalize_base_url",
    "resolve_config",
    "shown_host",
]

DEFAULT_HOST = "https://api.timbal.ai"

VARIABLES: Final = {
    "api_key": "TIMBAL_API_KEY",
    "host": "TIMBAL_API_HOST",
    "org_id": "TIMBAL_ORG_ID",
    "project_id": "TIMBAL_PROJECT_ID",
}
"""The environment variable of each setting, by its argument name."""


class Secret:
    """A string that never shows itself in ``repr`` or ``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """Return the secret value itself (for the Authorization header only)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")


def shown_host(host: str) -> str:
    """``host`` as it may be shown in a message: anything up to its last ``@`` (where
    credentials would be, ``user:key@``, whatever characters the key holds) masked, and
    bounded."""
    text = host
    if "@" in text:
        scheme = _SCHEME.match(text)
        start = scheme.end() if scheme else 0
        text = text[:start] + "***" + text[text.rindex("@") :]
    return repr(text if len(text) <= 200 else text[:197] + "...")


def normalize_base_url(host: str) -> str:
    """Turn ``api.timbal.ai`` or ``http://127.0.0.1:8000/`` into a base URL without a slash.

    Raises :class:`ConfigError` about ``TIMBAL_API_HOST`` (argument ``host``). A host
    carrying credentials (``http://user:key@host``) is refused, and never shown: the key
    goes in ``TIMBAL_API_KEY``, and only there.
    """

    def bad(reason: str) -> ConfigError:
        return ConfigError(reason, variable=VARIABLES["host"], argument="host")

    value = host.strip()
    shown = shown_host(host)
    if not value:
        raise bad("empty; expected a host like api.timbal.ai or a URL")
    if "@" in value:
        raise bad(
            f"{shown} carries credentials (user:password@); give the API key in its own "
            "setting, never in the host"
        )
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise bad(f"{shown} holds a space or a control character; expected a host or URL")
    if "://" not in value:
        value = "https://" + value
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", a port out of range or not a number
        problem = "an invalid port" if "port" in str(exc).lower() else "an invalid address"
        raise bad(f"{shown} has {problem}; expected a host like api.timbal.ai or a URL") from None
    if parts.scheme not in ("http", "https"):
        raise bad(f"{shown} has scheme {parts.scheme!r}; expected http or https")
    if not hostname:
        raise bad(f"{shown} has no host name")
    if parts.query or parts.fragment:
        raise bad(f"{shown} must not carry a query or fragment")
    del port  # checked above: urlsplit raises on a bad one
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class ClientConfig:
    """Resolved settings for a client. ``api_key`` is a :class:`Secret`."""

    api_key: Secret = field(repr=False)
    base_url: str
    org_id: str
    project_id: str

    @property
    def runs_path(self) -> str:
        """The path of the runs collection for this org and project."""
        return f"/orgs/{self.org_id}/projects/{self.project_id}/runs"


def _pick(explicit: str | None, env: Mapping[str, str], name: str) -> str | None:
    if explicit is not None:
        return explicit
    value = env.get(name)
    return value if value else None


def resolve_config(
    api_key: str | Secret | None = None,
    *,
    host: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    """Resolve settings from arguments, then ``env`` (default: ``os.environ``).

    Raises :class:`ConfigError` naming the variable to set when the key, org or
    project is missing.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    given = {"api_key": api_key, "host": host, "org_id": org_id, "project_id": project_id}
    for label, value in given.items():
        allowed = (str, Secret) if label == "api_key" else (str,)
        if value is not None and not isinstance(value, allowed):
            kind = type(value).__name__
            raise ConfigError(
                f"a {kind} is not allowed; expected a string",
                variable=VARIABLES[label],
                argument=label,
            )
    key: Secret | None
    if isinstance(api_key, Secret):
        key = api_key
    else:
        raw_key = _pick(api_key, environ, VARIABLES["api_key"])
        key = Secret(raw_key.strip()) if raw_key else None
    if not key:
        raise ConfigError(
            "no API key", variable=VARIABLES["api_key"], argument="api_key", missing=True
        )
    if not all(33 <= ord(c) <= 126 for c in key.get()):
        # Never echo the value: it is (most of) the key. It must fit an HTTP header.
        raise ConfigError(
            "the API key holds a space, a control character (a stray newline?) or a "
            "non-ASCII character; expected the key exactly as Timbal shows it",
            variable=VARIABLES["api_key"],
            argument="api_key",
        )
    ids: dict[str, str] = {}
    for label, explicit, missing in (
        ("org_id", org_id, "no organisation"),
        ("project_id", project_id, "no project"),
    ):
        value = _pick(explicit, environ, VARIABLES[label])
        if not value or not value.strip():
            raise ConfigError(missing, variable=VARIABLES[label], argument=label, missing=True)
        # Ids are path segments: no separators, no escapes, no dot segments (which URL
        # normalization would resolve, sending the request to another path).
        if (
            any(c in value for c in "/?#%\\")
            or any(c.isspace() or ord(c) < 32 for c in value.strip())
            or value.strip() in (".", "..")
        ):
            raise ConfigError(
                f"{value!r} is not a valid id "
                "(no '/', '?', '#', '%', '\\', spaces or control characters, not '.' or '..')",
                variable=VARIABLES[label],
                argument=label,
            )
        ids[label] = value.strip()
    # An empty variable counts as unset, but an explicit host="" is an error, not a
    # silent switch to the public API.
    picked = _pick(host, environ, VARIABLES["host"])
    base = DEFAULT_HOST if picked is None else picked
    return ClientConfig(
        api_key=key,
        base_url=normalize_base_url(base),
        org_id=ids["org_id"],
        project_id=ids["project_id"],
    )
