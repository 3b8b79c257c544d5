"""Asset events of a written file: its asset URI, and the events on the task's outlets.

Through each ``AssetAlias`` outlet the file's asset (:func:`asset_uri` of
``output_path``) gets an event; an ``Asset`` outlet with that same URI gets the extra on
the event Airflow emits for it. The extra: ``count``, ``sha256``, ``bytes``, ``format``,
``since`` and ``until``. (OpenLineage facets are :mod:`airflow_provider._lineage`'s.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote, urlsplit

from airflow.sdk import Asset, AssetAlias

from ._output import is_local, local_path

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["EXTRA_KEYS", "asset_uri", "emit_asset_events"]

EXTRA_KEYS: Final = ("count", "sha256", "bytes", "format", "since", "until")
"""The manifest's keys that an asset event carries in its extra."""

_URI_PATH_SAFE: Final = "/:@!$&'()*+,;=~"


def asset_uri(output_path: str) -> str:
    """The asset URI of a file the operator writes: ``file://`` and an absolute path for
    a local file, the URI itself (less any ``conn_id@``) for object storage."""
    if is_local(output_path):
        # Percent-encode only what a URI path cannot hold: dt=2025-12-14 stays readable.
        return "file://" + quote(str(local_path(output_path).absolute()), safe=_URI_PATH_SAFE)
    parts = urlsplit(output_path)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def emit_asset_events(
    outlets: Iterable[object], context: Context, manifest: Mapping[str, Any], log: Any
) -> None:
    """Attach the file of ``manifest`` to the task's ``Asset``/``AssetAlias`` outlets."""
    assets = [o for o in outlets if isinstance(o, Asset | AssetAlias)]
    if not assets:
        return
    uri = asset_uri(str(manifest["path"]))
    extra = {key: manifest[key] for key in EXTRA_KEYS}
    events = context["outlet_events"]
    for outlet in assets:
        if isinstance(outlet, AssetAlias):
            events[outlet].add(Asset(uri), extra=extra)
            log.info("Asset event for %s through the alias %r", uri, outlet.name)
        elif unquote(outlet.uri) == unquote(uri):
            events[outlet].extra.update(extra)
            log.info("Asset event for %s", uri)
