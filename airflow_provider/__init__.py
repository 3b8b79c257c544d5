"""Apache Airflow provider for Timbal run history.

Airflow finds this provider through the ``apache_airflow_provider`` entry point of the
``timbal-integrations`` distribution, which points at :func:`get_provider_info`. It
declares:

- the connection type ``timbal`` (host = API host, password = API key, extra fields
  ``org_id`` and ``project_id``), served by
  :class:`airflow_provider.hooks.timbal.TimbalHook`;
- the operators :class:`airflow_provider.operators.timbal.TimbalListRunsOperator` and
  :class:`airflow_provider.operators.sync.TimbalSyncRunsOperator`;
- the sensor :class:`airflow_provider.sensors.timbal.TimbalRunSensor`;
- the triggers :class:`airflow_provider.triggers.timbal.TimbalRunTrigger` (the sensor's
  deferred wait) and :class:`airflow_provider.triggers.timbal.TimbalNewRunsTrigger` (an
  event trigger for ``AssetWatcher``).

Timbal's API has no web address for a project's runs or for one run (its spec names
only API endpoints), so the provider registers no operator extra link.

Importing this package does not import Airflow (nor the core client): Airflow calls
:func:`get_provider_info` in every process that lists providers, so it stays cheap.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CONN_TYPE", "DEFAULT_CONN_ID", "PACKAGE_NAME", "get_provider_info"]

PACKAGE_NAME: Final = "timbal-integrations"
"""The distribution name; Airflow requires ``package-name`` to equal it exactly."""

CONN_TYPE: Final = "timbal"
"""The Airflow connection type of Timbal connections."""

DEFAULT_CONN_ID: Final = "timbal_default"
"""The connection id hooks and operators use when none is given."""

_INTEGRATION: Final = "Timbal"


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ``ProvidersManager``.

    The connection form is declared here (Airflow 3.2+ ``conn-fields`` and
    ``ui-field-behaviour``), so Airflow never needs the hook's deprecated
    ``get_connection_form_widgets``/``get_ui_field_behaviour`` methods.
    """
    return {
        "package-name": PACKAGE_NAME,
        "name": "Timbal",
        "description": (
            "`Timbal <https://timbal.ai>`__ run history: a connection type, a hook over "
            "the typed runs client, an operator that fetches the runs of each data "
            "interval into XCom or into files (JSON Lines, CSV, Parquet) with asset "
            "events and OpenLineage facets, a deferrable run sensor, and an event "
            "trigger that schedules DAGs on new runs (e.g. new failures).\n"
        ),
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.timbal.ai",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider.hooks.timbal"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_provider.operators.timbal",
                    "airflow_provider.operators.sync",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider.sensors.timbal"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider.triggers.timbal"],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider.hooks.timbal.TimbalHook",
                "hook-name": "Timbal",
                "conn-fields": {
                    "org_id": {
                        "label": "Organisation ID",
                        "description": "The Timbal organisation whose runs are read.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "project_id": {
                        "label": "Project ID",
                        "description": "The Timbal project whose runs are read.",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port", "extra"],
                    "relabeling": {"host": "API host", "password": "API key"},
                    "placeholders": {
                        "host": "api.timbal.ai",
                        "password": "your Timbal API key",
                        "org_id": "your organisation id",
                        "project_id": "your project id",
                    },
                },
            }
        ],
    }
