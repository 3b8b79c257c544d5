"""Airflow operators of the Timbal provider.

- :class:`~airflow_provider.operators.timbal.TimbalListRunsOperator`: the runs of each
  data interval, into XCom or a file;
- :class:`~airflow_provider.operators.sync.TimbalSyncRunsOperator`: a dataset of runs,
  partitioned by day, kept exact by a sync per DAG run.

Both load on first use: ``from airflow_provider.operators import TimbalSyncRunsOperator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timbal_integrations._lazy import lazy_names as _lazy_names

if TYPE_CHECKING:
    from .sync import TimbalSyncRunsOperator
    from .timbal import TimbalListRunsOperator

__all__ = ["TimbalListRunsOperator", "TimbalSyncRunsOperator"]

_HOME: dict[str, str] = {"TimbalListRunsOperator": "timbal", "TimbalSyncRunsOperator": "sync"}

__getattr__, __dir__ = _lazy_names(__name__, _HOME, __all__)
