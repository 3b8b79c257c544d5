"""How the MCP tools reach the API: :class:`ServerSettings`.

Settings are read when a tool runs, not when the server starts, so a server with
missing settings still starts and each tool call reports what to set. The client is
built with the core's ``AsyncTimbalClient.from_config``; the API client (and httpx) is
imported by the first tool call, not at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from timbal_integrations import defaults
from timbal_integrations.config import VARIABLES, ClientConfig, resolve_config
from timbal_integrations.limits import Bounds
from timbal_integrations.retry import RetryPolicy

if TYPE_CHECKING:  # the client (and httpx) load with the first tool call, not at start-up
    from timbal_integrations.client import AsyncTimbalClient

__all__ = ["DEFAULT_RETRY_POLICY", "FLAG_NAMES", "ServerSettings"]

DEFAULT_RETRY_POLICY: Final = RetryPolicy(
    max_retries=defaults.MCP_MAX_RETRIES,
    backoff_base=defaults.MCP_BACKOFF_BASE,
    backoff_max=defaults.MCP_BACKOFF_MAX,
)
"""The tools' retry policy: fewer, shorter retries than the core's (a model is waiting)."""

FLAG_NAMES: Final = {
    "api_key": "--api-key",
    "host": "--api-host",
    "org_id": "--org-id",
    "project_id": "--project-id",
}
"""The ``timbal-mcp`` flag of each setting (for messages printed by the command)."""


@dataclass(frozen=True)
class ServerSettings:
    """How the tools reach the API. Arguments left as None come from ``env`` at call time.

    ``env`` defaults to ``os.environ``; ``now`` (for relative times such as ``24h``)
    defaults to the wall clock. ``clock`` (a monotonic clock in seconds, for how long
    the recent runs' values are cached: ``recent_ttl``) defaults to
    :func:`time.monotonic`; ``recent_scan_runs`` bounds that scan.
    """

    api_key: str | None = field(default=None, repr=False)
    host: str | None = None
    org_id: str | None = None
    project_id: str | None = None
    env: Mapping[str, str] | None = field(default=None, repr=False)
    now: Callable[[], datetime] | None = None
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY
    timeout: float = defaults.REQUEST_TIMEOUT
    """Seconds each request to the API may take in all (its total deadline)."""
    bounds: Bounds = field(default_factory=Bounds)
    """What the tools accept from the API (response size, page bounds)."""
    max_email_scan: int = defaults.MCP_MAX_EMAIL_SCAN
    summary_top_n: int = defaults.MCP_SUMMARY_TOP_N
    clock: Callable[[], float] | None = None
    recent_scan_runs: int = defaults.MCP_RECENT_SCAN_RUNS
    recent_ttl: float = defaults.MCP_RECENT_TTL

    def resolve(self) -> ClientConfig:
        """The client configuration; :class:`ConfigError` names what is missing."""
        return resolve_config(
            self.api_key,
            host=self.host,
            org_id=self.org_id,
            project_id=self.project_id,
            env=self.env,
        )

    def secret(self) -> str | None:
        """The API key if one is set, even when other settings are missing (to scrub it)."""
        environ = os.environ if self.env is None else self.env
        value = self.api_key if self.api_key is not None else environ.get("TIMBAL_API_KEY")
        return value.strip() or None if value else None

    def current_time(self) -> datetime:
        """The reference time of relative spans."""
        return self.now() if self.now is not None else datetime.now(UTC)

    def setting_names(self) -> dict[str, str]:
        """What messages to an assistant call each setting.

        A setting given to the server (a flag of ``timbal-mcp``, an argument of
        ``create_server``) is "the server's ``org_id`` setting"; others are the
        environment variable. The library's arguments (``pass api_key=...``) do not
        exist here and are left out.
        """
        given = {
            "api_key": self.api_key,
            "host": self.host,
            "org_id": self.org_id,
            "project_id": self.project_id,
        }
        names = {setting: "" for setting in given}
        for setting, value in given.items():
            if value is not None:
                names[VARIABLES[setting]] = f"the server's {setting} setting"
        return names

    def flag_names(self) -> dict[str, str]:
        """What messages printed by ``timbal-mcp`` call each setting: its flag, and a
        variable whose value came from a flag is called by that flag."""
        names = dict(FLAG_NAMES)
        for setting, flag in FLAG_NAMES.items():
            if getattr(self, setting) is not None:
                names[VARIABLES[setting]] = flag
        return names

    def async_client(self) -> AsyncTimbalClient:
        """A new asynchronous client (raises :class:`ConfigError` when unconfigured)."""
        from timbal_integrations.client import AsyncTimbalClient

        return AsyncTimbalClient.from_config(
            self.resolve(), timeout=self.timeout, retry_policy=self.retry_policy, bounds=self.bounds
        )
