"""The DAG run's data interval: the operators' default window, and what to say without one.

A DAG run triggered without a logical date has no data interval, and Airflow 3's cron
strings (``schedule="@daily"``) give zero-width ones: the list operator's window then
needs ``since=``/``until=`` or a data-interval timetable, and :func:`no_interval_advice`
says which, for the DAG at hand. The sync operator only needs an end:
:func:`interval_end`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import CronDataIntervalTimetable, DeltaDataIntervalTimetable

from timbal_integrations.errors import QueryError
from timbal_integrations.query import format_time

from ._arguments import plain_utc

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["INTERVAL_KEYS", "has_interval", "interval_end", "no_interval_advice", "window"]

INTERVAL_KEYS: Final = ("data_interval_start", "data_interval_end")


def has_interval(context: Context) -> bool:
    """Whether the DAG run has a data interval (both of its ends)."""
    return all(context.get(key) is not None for key in INTERVAL_KEYS)


def _has_interval_timetable(dag: Any) -> bool:
    timetable = getattr(dag, "timetable", None)
    return isinstance(timetable, CronDataIntervalTimetable | DeltaDataIntervalTimetable)


def no_interval_advice(context: Context) -> str:
    """How to give a DAG run with no data interval a window, for this DAG."""
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or "<dag_id>"
    trigger = f"airflow dags trigger {dag_id} --logical-date 2025-12-15T00:00:00+00:00"
    if _has_interval_timetable(dag):
        return (
            f"trigger it with a logical date (e.g. `{trigger}`, or the logical date field "
            "of the UI's trigger form), which gives it the interval that ends then"
        )
    return (
        "pass since= and until= (e.g. since='2026-11-01', until='2026-11-02'), or schedule "
        "the DAG with a data-interval timetable such as CronDataIntervalTimetable('0 0 * * *', "
        f"timezone='UTC') and trigger it with a logical date (`{trigger}`)"
    )


def window(context: Context, since: Any, until: Any) -> tuple[Any, Any]:
    """``since``/``until``: the values given (None when not), else the run's data interval.

    Raises :class:`~timbal_integrations.QueryError` naming ``since`` (or ``until``) when
    one is missing and the DAG run has no data interval, or an empty one.
    """
    if since is not None and until is not None:
        return since, until
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    if start is None or end is None:
        missing = " and ".join(
            name for name, value in (("since", since), ("until", until)) if value is None
        )
        raise QueryError(
            "since" if since is None else "until",
            f"this DAG run has no data interval to take {missing} from (it was "
            f"triggered without a logical date): {no_interval_advice(context)}",
        )
    if since is None and until is None and start == end:
        raise QueryError(
            "since",
            f"this DAG run's data interval is empty ({format_time(plain_utc(start))} to "
            "itself): Airflow 3's schedule='@daily' and other cron strings give "
            "zero-width intervals; use schedule=CronDataIntervalTimetable('0 0 * * *', "
            "timezone='UTC') or pass since= and until=",
        )
    return (
        plain_utc(start) if since is None else since,
        plain_utc(end) if until is None else until,
    )


def interval_end(context: Context) -> datetime:
    """The data interval's end, or the wall clock when the run has none (or an empty one)."""
    start = context.get("data_interval_start")
    end = context.get("data_interval_end")
    if start is None or end is None or start == end:
        return datetime.now(UTC)
    return plain_utc(end)
