"""``timbal_runs_sensor``: run a Dagster job when new Timbal runs match filters.

::

    from dagster_timbal import timbal_runs_sensor

    new_errors = timbal_runs_sensor(triage_job, status="error")

Each evaluation lists the runs that match the filters, oldest first, and requests one
Dagster run per batch of new ones (``batch_size``, default 100; ``batch_size=1`` gives
one Dagster run per Timbal run). Every request carries the batch in its tags:
``timbal/run_ids`` (comma-separated), ``timbal/run_count``, ``timbal/first_created_at``
and ``timbal/last_created_at``; ``run_config=`` can put the runs into the run config as
well. Its run key is made from the batch, so Dagster never launches the same batch twice.

The cursor (:class:`TimbalSensorCursor`, JSON) holds:

- ``floor``: where the next listing starts (``since``, a ``created_at``);
- ``seen``: the id and ``created_at`` of every run already requested that is at or after
  ``floor``.

Runs are found by ``created_at``, but a run can start to match long after it was created:
it fails an hour after it started (``status="error"``), or a user reacts the next day
(``sentiment="negative"``); and the API may show a run a little after it was created.
So each evaluation lists from ``floor``, which trails the newest matching run seen so far
by ``lookback`` (default 24 hours), and skips the ids in ``seen``: a run is requested
exactly once, however often it is listed, and a run that starts to match within
``lookback`` of the newest matching run already seen is still found. A run that starts to
match later than that is not: widen ``lookback`` if your runs can. The cost of an
evaluation is the listing of the matching runs of the last ``lookback`` (for
``status="error"``, usually one page).

The listing asks for ``created_at`` ascending, so when an evaluation stops at
``max_runs`` new runs, it has taken the oldest, and the next evaluation continues after
them. The first evaluation starts at ``start`` (default: ``lookback`` before it).
"""

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from dagster import (
    DefaultSensorStatus,
    RunConfig,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from timbal_integrations import QueryError, Run, RunQuery, TimbalError, defaults, parse_time

from .asset import RESOURCE_KEY
from .resource import TimbalResource

if TYPE_CHECKING:
    from dagster._core.definitions.target import ExecutableDefinition

__all__ = ["DEFAULT_LOOKBACK", "TimbalSensorCursor", "timbal_runs_sensor"]

DEFAULT_LOOKBACK: Final = timedelta(hours=defaults.SENSOR_LOOKBACK_HOURS)
"""How far before the newest matching run seen each evaluation looks again."""

_CURSOR_VERSION: Final = 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_OWN_FILTERS: Final = ("since", "until", "sort_by", "sort_order")


def _ms(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _EPOCH) // _ONE_MS


def _iso(ms: int) -> str:
    return (_EPOCH + ms * _ONE_MS).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class TimbalSensorCursor:
    """Where a :func:`timbal_runs_sensor` stands (see the module docs for the semantics).

    ``floor_ms`` is the ``since`` of the next listing (epoch milliseconds); ``seen`` maps
    each run already requested, created at or after ``floor_ms``, to its ``created_at``
    in epoch milliseconds.
    """

    floor_ms: int
    seen: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """The cursor as Dagster stores it (compact JSON, ids sorted)."""
        return json.dumps(
            {
                "v": _CURSOR_VERSION,
                "floor": _iso(self.floor_ms),
                "seen": dict(sorted(self.seen.items())),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "TimbalSensorCursor":
        """Read a cursor written by :meth:`to_json`; a :class:`QueryError` names ``cursor``."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
                raise ValueError("not a version-1 Timbal sensor cursor")
            seen = data["seen"]
            if not isinstance(seen, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in seen.items()
            ):
                raise ValueError("'seen' is not a map of run ids to epoch milliseconds")
            floor = _ms(parse_time(data["floor"], field="floor"))
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"it has no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else exc
            raise QueryError(
                "cursor",
                f"{problem}; reset the sensor's cursor (Dagster UI or "
                "`dagster sensor cursor <name> --delete`) to start again",
            ) from None
        return cls(floor, seen)

    def advance(self, listed: Sequence[Run], lookback: timedelta) -> "TimbalSensorCursor":
        """The cursor after an evaluation that listed ``listed`` and requested its new runs."""
        newest = max((_ms(run.created_at) for run in listed), default=None)
        floor = self.floor_ms
        if newest is not None:
            floor = max(floor, newest - lookback // _ONE_MS)
        seen = {**self.seen, **{run.id: _ms(run.created_at) for run in listed}}
        return TimbalSensorCursor(floor, {k: v for k, v in seen.items() if v >= floor})


def _positive(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QueryError(argument, f"{value!r} is not a whole number, 1 or more")
    return value


def _request(
    batch: Sequence[Run],
    run_config: Callable[[Sequence[Run]], RunConfig | Mapping[str, Any]] | None,
) -> RunRequest:
    ids = [run.id for run in batch]
    first, last = batch[0], batch[-1]
    key = hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
    return RunRequest(
        run_key=f"timbal:{first.id}:{len(ids)}:{key}",
        run_config=run_config(batch) if run_config is not None else None,
        tags={
            "timbal/run_ids": ",".join(ids),
            "timbal/run_count": str(len(ids)),
            "timbal/first_created_at": _iso(_ms(first.created_at)),
            "timbal/last_created_at": _iso(_ms(last.created_at)),
        },
    )


def timbal_runs_sensor(
    job: "ExecutableDefinition",
    *,
    name: str = "timbal_runs_sensor",
    lookback: timedelta = DEFAULT_LOOKBACK,
    start: datetime | str | None = None,
    batch_size: int = defaults.SENSOR_BATCH_SIZE,
    max_runs: int = defaults.SENSOR_MAX_RUNS,
    run_config: Callable[[Sequence[Run]], RunConfig | Mapping[str, Any]] | None = None,
    minimum_interval_seconds: int = defaults.SENSOR_INTERVAL_SECONDS,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = RESOURCE_KEY,
    **filters: Any,
) -> SensorDefinition:
    """A sensor that requests runs of ``job`` for new Timbal runs matching ``filters``.

    :param job: the job to run (a job, a graph, or ``define_asset_job(...)``).
    :param name: the sensor's name (unique in a code location).
    :param lookback: how far before the newest matching run each evaluation looks again
        for runs that started to match late (default 24 hours).
    :param start: where the first evaluation starts (a time as everywhere; default:
        ``lookback`` before the first evaluation).
    :param batch_size: Timbal runs per requested Dagster run (1: one each).
    :param max_runs: new Timbal runs taken per evaluation at most; the rest wait for the
        next evaluation, oldest first.
    :param run_config: turns a batch of :class:`~timbal_integrations.Run` into the
        requested run's config (default: none; the tags carry the batch).
    :param minimum_interval_seconds: seconds between evaluations (default 60).
    :param default_status: whether the sensor starts running (default: stopped).
    :param description: the sensor's description.
    :param resource_key: the key of the :class:`~dagster_timbal.TimbalResource`.
    :param filters: ``status``, ``user_id``, ``sentiment``, ``group_id``,
        ``workforce_id``, ``rev``, ``metadata``, ``roots``: the same names as everywhere.
        The sensor owns ``since``, ``until`` and the sort.

    Raises :class:`~timbal_integrations.QueryError` naming the argument when one is bad.
    """
    for own in _OWN_FILTERS:
        if own in filters:
            raise QueryError(
                own,
                "the sensor sets the window and the order itself (created_at ascending, "
                "from its cursor); use start= and lookback= to choose where it looks",
            )
    base = RunQuery.from_filters(filters).replace(sort_by="created_at", sort_order="asc")
    if not isinstance(lookback, timedelta) or lookback <= timedelta(0):
        raise QueryError("lookback", f"{lookback!r} is not a positive timedelta")
    first_floor = None if start is None else _ms(parse_time(start, field="start"))
    size = _positive("batch_size", batch_size)
    limit = _positive("max_runs", max_runs)
    shown = ", ".join(f"{k}={v}" for k, v in base.as_dict().items() if not k.startswith("sort"))

    @sensor(
        job=job,
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description or f"Runs the job for new Timbal runs ({shown or 'any run'})",
        required_resource_keys={resource_key},
    )
    def _timbal_sensor(context: SensorEvaluationContext) -> SensorResult:
        if context.cursor:
            cursor = TimbalSensorCursor.from_json(context.cursor)
        else:
            floor = first_floor
            if floor is None:
                floor = _ms(datetime.now(UTC) - lookback)
            cursor = TimbalSensorCursor(floor)
        query = base.replace(since=_EPOCH + cursor.floor_ms * _ONE_MS)
        listed: list[Run] = []
        new: list[Run] = []
        # A failure (configuration, the API after retries) fails the tick with the core's
        # one-line error in the resource's terms, and leaves the cursor as it was: the
        # next tick tries again.
        resource: TimbalResource = getattr(context.resources, resource_key)
        try:
            with resource.get_client() as client:
                for run in client.list_runs(query):
                    listed.append(run)
                    if run.id in cursor.seen:
                        continue
                    new.append(run)
                    if len(new) >= limit:
                        break
        except TimbalError as error:
            raise resource.restate(error) from None
        after = cursor.advance(listed, lookback)
        if not new:
            return SensorResult(
                skip_reason=SkipReason(f"no new Timbal runs since {_iso(cursor.floor_ms)}"),
                cursor=after.to_json(),
            )
        requests = [_request(new[i : i + size], run_config) for i in range(0, len(new), size)]
        context.log.info(
            f"{len(new)} new Timbal run(s) ({shown or 'any run'}): {len(requests)} run request(s)"
        )
        return SensorResult(run_requests=requests, cursor=after.to_json())

    return _timbal_sensor
