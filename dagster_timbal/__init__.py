"""Dagster integration for Timbal run history: a resource, a partitioned asset, a sensor.

- :class:`TimbalResource`: the API key, organisation, project and host (each an
  ``EnvVar`` or left to Timbal's environment variables), giving configured clients.
- :func:`timbal_runs_asset`: a daily-partitioned asset; partition ``D`` is the file of the
  runs created on UTC day ``D``, with ``count``, ``path``, ``sha256``, ``error_count`` and
  ``cost_usd`` metadata.
- :func:`timbal_runs_sensor`: requests runs of a job when new Timbal runs match filters
  (say ``status="error"``), each run once.

Both the asset and the sensor expect the resource under the key ``"timbal"``. Everything
is a thin translation onto the core (``timbal_integrations``), which does the HTTP,
paging, retries, filter validation and file writing.
"""

from __future__ import annotations

from .asset import DEFAULT_BACKFILL_POLICY, RESOURCE_KEY, timbal_runs_asset
from .resource import TimbalResource
from .sensor import TimbalSensorCursor, timbal_runs_sensor

__all__ = [
    "DEFAULT_BACKFILL_POLICY",
    "RESOURCE_KEY",
    "TimbalResource",
    "TimbalSensorCursor",
    "timbal_runs_asset",
    "timbal_runs_sensor",
]
