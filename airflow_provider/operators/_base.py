"""What the provider's operators share: the connection, the filters, and failing fast.

:class:`TimbalRunsOperatorBase` holds the arguments every Timbal operator takes (the
filters that choose runs, ``parallel``, ``max_retries``, the connection and its
``org_id``/``project_id`` overrides), reads them after templating
(:meth:`~TimbalRunsOperatorBase.filter_values`), opens the hook, and turns the errors a
retry cannot fix into ``AirflowFailException`` with the hook's one line
(:meth:`~TimbalRunsOperatorBase.failing_for_good`). Each operator adds its own
arguments and its ``execute``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from timbal_integrations.filters import filter_fields
from timbal_integrations.limits import check_max_retries
from timbal_integrations.query import RunQuery

from .. import DEFAULT_CONN_ID
from .._failures import PERMANENT
from ..hooks.timbal import TimbalHook
from ._arguments import given, plain_utc

__all__ = ["RUN_FILTERS", "TimbalRunsOperatorBase", "template_name"]

# ``roots`` is a read-only property of ``BaseOperator`` (the DAG's root tasks), so that
# filter is kept as ``roots_only``.
_FIELDS: Final = filter_fields(rename={"roots": "roots_only"})

RUN_FILTERS: Final = tuple(name for name in _FIELDS if name not in ("sort_by", "sort_order"))
"""The filters that choose runs (every filter but the sort), taken by every operator."""


def template_name(name: str) -> str:
    """The operator attribute (and template field) that holds filter ``name``."""
    return _FIELDS[name]


class TimbalRunsOperatorBase(BaseOperator):
    """The arguments and steps every Timbal operator shares (not an operator itself).

    :param status: ... ``roots``: the filters (templated), the same names as everywhere
        in timbal-integrations.
    :param parallel: how many requests to keep in flight, or ``"auto"`` (templated).
    :param max_retries: retries of a request that failed with 429, 5xx or a network error.
    :param timbal_conn_id: the Timbal connection (default ``timbal_default``).
    :param org_id: overrides the connection's ``org_id`` (templated).
    :param project_id: overrides the connection's ``project_id`` (templated).
    """

    filter_fields: ClassVar[tuple[str, ...]] = tuple(template_name(n) for n in RUN_FILTERS)
    """The template fields of :data:`RUN_FILTERS`."""
    shared_fields: ClassVar[tuple[str, ...]] = ("parallel", "org_id", "project_id")
    """The other template fields of every operator."""
    template_fields_renderers: ClassVar[dict[str, str]] = {"metadata": "json"}

    def __init__(
        self,
        *,
        status: str | None = None,
        user_id: str | None = None,
        sentiment: str | None = None,
        group_id: str | None = None,
        workforce_id: str | None = None,
        rev: str | None = None,
        since: datetime | str | int | None = None,
        until: datetime | str | int | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        roots: bool | str | None = None,
        parallel: int | str | None = None,
        max_retries: int | None = None,
        timbal_conn_id: str = DEFAULT_CONN_ID,
        org_id: str | None = None,
        project_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.user_id = user_id
        self.sentiment = sentiment
        self.group_id = group_id
        self.workforce_id = workforce_id
        self.rev = rev
        self.since = since
        self.until = until
        if isinstance(metadata, Mapping):
            # Checked now: Airflow walks a templated dict when the DAG is parsed, and one
            # nested thousands deep would crash it there (a string is checked at run time).
            RunQuery(metadata=metadata)
        self.metadata = metadata
        self.roots_only = roots
        self.parallel = parallel
        self.max_retries = check_max_retries(max_retries)
        self.timbal_conn_id = timbal_conn_id
        self.org_id = org_id
        self.project_id = project_id

    def filter_values(self, names: tuple[str, ...] = RUN_FILTERS) -> dict[str, Any]:
        """The filters ``names`` after templating: unset ones None, datetimes plain UTC."""
        values = {name: given(getattr(self, template_name(name))) for name in names}
        for name in ("since", "until"):
            if isinstance(values.get(name), datetime):
                values[name] = plain_utc(values[name])
        return values

    def make_hook(self) -> TimbalHook:
        """The hook of the task's connection, with its overrides (after templating)."""
        return TimbalHook(
            self.timbal_conn_id,
            org_id=given(self.org_id),
            project_id=given(self.project_id),
            max_retries=self.max_retries,
        )

    @staticmethod
    @contextlib.contextmanager
    def failing_for_good(
        hook: TimbalHook, errors: tuple[type[BaseException], ...] = PERMANENT
    ) -> Iterator[None]:
        """``errors`` raised inside (by default those a retry cannot fix) fail the task
        at once, without retries, with the hook's one line."""
        try:
            yield
        except errors as error:
            raise AirflowFailException(hook.describe(error)) from None
