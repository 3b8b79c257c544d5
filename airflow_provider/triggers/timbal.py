"""Triggers of the Timbal provider: waiting for one run, and watching for new runs.

- :class:`TimbalRunTrigger` waits, in Airflow's triggerer, until a run is no longer
  running; :class:`~airflow_provider.sensors.timbal.TimbalRunSensor` defers to it.
- :class:`TimbalNewRunsTrigger` is an event trigger for ``AssetWatcher``: it fires when
  new runs match its filters (``status="error"``, ``sentiment="negative"``, ...), so a
  DAG can be scheduled on "new failures".

Both use the core's :class:`~timbal_integrations.AsyncTimbalClient` and read the Airflow
connection inside the triggerer, from its id: the API key is never among the trigger's
serialised arguments (which Airflow stores in its metadata database).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from timbal_integrations import AsyncTimbalClient, RunQuery
from timbal_integrations.errors import NotFoundError, QueryError, RateLimitError
from timbal_integrations.models import Run
from timbal_integrations.query import format_time

from .. import DEFAULT_CONN_ID
from .._failures import PERMANENT, TRANSIENT
from .._runs import (
    check_statuses,
    end_message,
    not_found_message,
    outcome,
    run_name,
    run_summary,
)
from ..hooks.timbal import TimbalHook

__all__ = [
    "MAX_TRACKED_RUNS",
    "MIN_POKE_INTERVAL",
    "TimbalNewRunsTrigger",
    "TimbalRunTrigger",
]

MIN_POKE_INTERVAL: Final = 0.1
"""Seconds: the shortest wait between two checks, whatever ``poke_interval`` says."""

MAX_BACKOFF: Final = 300.0
"""Seconds: the longest wait after repeated API failures (unless ``poke_interval`` is longer)."""

MAX_TRACKED_RUNS: Final = 20_000
"""The most run ids :class:`TimbalNewRunsTrigger` remembers (see its notes)."""

_CLIENT_RETRIES: Final = 1  # the triggers retry on their own, slower schedule


def _seconds(field: str, value: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise QueryError(field, f"{value!r} is not a number of seconds (at least {minimum})")
    if value == float("inf"):
        raise QueryError(field, "expected a finite number of seconds")
    return float(value)


def _backoff(poke_interval: float, failures: int, retry_after: float | None = None) -> float:
    """The wait after ``failures`` failures in a row: doubling, capped, at least Retry-After."""
    ceiling = max(poke_interval, MAX_BACKOFF)
    delay = min(ceiling, poke_interval * 2 ** min(failures, 30))
    if retry_after is not None:
        delay = max(delay, min(retry_after, ceiling))
    return float(max(delay, MIN_POKE_INTERVAL))


class TimbalRunTrigger(BaseTrigger):
    """Wait until a Timbal run is no longer running, then fire one event.

    :param run_id: the run's id or its idempotency key.
    :param timbal_conn_id: the Airflow connection (read inside the triggerer).
    :param poke_interval: seconds between two checks (at least 0.1).
    :param deadline: when to give up, as epoch seconds (None: never). An absolute time,
        so a triggerer restart does not restart the clock.
    :param success_statuses: statuses that end the wait successfully.
    :param failure_statuses: statuses that end it with a failure.
    :param org_id: overrides the connection's ``org_id``.
    :param project_id: overrides the connection's ``project_id``.

    The event's payload is a dict whose ``status`` is one of ``success``, ``failed``
    (the run ended in a failure status), ``not_found`` (the run does not exist, or
    vanished while waited on), ``timeout`` or ``error`` (a failure no retry can fix,
    such as a rejected key), with a one-line ``message``; ``success`` also carries the
    run's summary as ``run``.

    API failures that may pass (no answer, 429, 5xx) never end the wait and never make
    it spin: the next check waits twice as long each time (up to 5 minutes, at least
    the server's ``Retry-After``), until the API answers or the deadline passes. The
    client is closed however the trigger ends, cancellation included.
    """

    def __init__(
        self,
        *,
        run_id: str,
        timbal_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        deadline: float | None = None,
        success_statuses: Iterable[str] = ("success",),
        failure_statuses: Iterable[str] | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not isinstance(run_id, str) or not run_id.strip():
            raise QueryError("run_id", "expected a run id or idempotency key")
        self.run_id = run_id.strip()
        self.timbal_conn_id = timbal_conn_id
        self.poke_interval = max(_seconds("poke_interval", poke_interval), MIN_POKE_INTERVAL)
        self.deadline = None if deadline is None else _seconds("deadline", deadline)
        self.success_statuses, self.failure_statuses = check_statuses(
            tuple(success_statuses), None if failure_statuses is None else tuple(failure_statuses)
        )
        self.org_id = org_id
        self.project_id = project_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that rebuild this trigger (no secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "run_id": self.run_id,
                "timbal_conn_id": self.timbal_conn_id,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "success_statuses": list(self.success_statuses),
                "failure_statuses": list(self.failure_statuses),
                "org_id": self.org_id,
                "project_id": self.project_id,
            },
        )

    def _event(self, status: str, message: str, **more: Any) -> TriggerEvent:
        payload = {"status": status, "run_id": self.run_id, "message": message, **more}
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check the run every ``poke_interval`` seconds until it ends or time runs out."""
        hook = TimbalHook(self.timbal_conn_id, org_id=self.org_id, project_id=self.project_id)
        client: AsyncTimbalClient | None = None
        failures = 0
        seen = False
        last_problem = ""
        try:
            while True:
                delay = self.poke_interval
                try:
                    if client is None:
                        client = await hook.get_async_conn(max_retries=_CLIENT_RETRIES)
                    detail = await client.get_run(self.run_id)
                except NotFoundError as error:
                    if seen and client is not None:
                        where = self._where(client)
                        message = f"{run_name(self.run_id)} vanished from {where} (404): deleted?"
                    else:
                        message = not_found_message(self.run_id, hook.describe(error))
                    yield self._event("not_found", message)
                    return
                except PERMANENT as error:
                    yield self._event("error", hook.describe(error))
                    return
                except TRANSIENT as error:
                    failures += 1
                    last_problem = hook.describe(error)
                    retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                    delay = _backoff(self.poke_interval, failures, retry_after)
                    self.log.warning(
                        "%s: the API failed (%s); checking again in %.1fs",
                        run_name(self.run_id),
                        last_problem,
                        delay,
                    )
                else:
                    seen = True
                    failures = 0
                    last_problem = ""
                    result = outcome(detail.status, self.success_statuses, self.failure_statuses)
                    if result == "success":
                        yield self._event(
                            "success",
                            f"{run_name(self.run_id, detail)} ended with status {detail.status!r}",
                            run=run_summary(detail),
                        )
                        return
                    if result == "failure":
                        yield self._event(
                            "failed",
                            end_message(self.run_id, detail),
                            run_status=detail.status,
                        )
                        return
                    self.log.info(
                        "%s is %r; checking again in %.1fs",
                        run_name(self.run_id, detail),
                        detail.status,
                        delay,
                    )
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    yield self._event("timeout", self._timeout_message(last_problem))
                    return
                await asyncio.sleep(delay if remaining is None else min(delay, remaining))
        finally:
            if client is not None:
                await client.aclose()

    @staticmethod
    def _where(client: AsyncTimbalClient) -> str:
        config = client.config
        return f"project {config.project_id!r} of org {config.org_id!r}"

    def _timeout_message(self, last_problem: str) -> str:
        text = f"{run_name(self.run_id)} was still not finished at the sensor's timeout"
        if self.deadline is not None:
            ended = datetime.fromtimestamp(self.deadline, UTC)
            text += f" ({format_time(ended)})"
        if last_problem:
            text += f"; the last check failed: {last_problem}"
        return text


class TimbalNewRunsTrigger(BaseEventTrigger):
    """Fire an event each time new runs match the filters (for ``AssetWatcher``).

    :param timbal_conn_id: the Airflow connection (read inside the triggerer).
    :param status: e.g. ``"error"`` for failures. The other filters are those of
        everything else in timbal-integrations: ``user_id``, ``sentiment`` (e.g.
        ``"negative"``), ``group_id``, ``workforce_id``, ``rev``, ``metadata``, ``roots``.
    :param poke_interval: seconds between two listings (default 60).
    :param lookback: seconds; how late a run may start matching and still be reported
        (default 3600, see below).
    :param max_run_ids: the most run ids one event carries (default 100; the count is
        always exact).
    :param org_id: overrides the connection's ``org_id``.
    :param project_id: overrides the connection's ``project_id``.

    Each event's payload (the asset event's ``extra["payload"]``) holds ``count``,
    ``run_ids`` (newest first, at most ``max_run_ids``; ``run_ids_truncated`` says when
    there were more), ``by_status`` and ``by_workforce`` counts, ``first_created_at``,
    ``last_created_at`` and the ``filters``.

    Semantics:

    - *New* means: not reported before by this watcher. When the watcher starts for the
      first time, the runs that already match are its baseline and are not reported.
    - One event per batch: every listing that finds new runs fires exactly one event
      with all of them; a listing with none fires nothing.
    - Never twice: the ids reported are remembered in the asset's state store (Airflow
      3.3's per-asset store, which outlives triggerer restarts; per filter set, so
      watchers with other filters do not interfere). A restarted triggerer resumes where
      it left off: runs that appeared while it was down are reported once, in its first
      event. The state is saved *before* the event is handed to Airflow, so a crash in
      that instant loses that one event rather than repeating it (at most once).
    - Late runs: a run may start matching well after it was created (``created_at`` is
      when it started; it turns ``error`` only when it ends). Every listing covers the
      last ``lookback`` seconds by ``created_at``, so a run is reported if it starts
      matching within ``lookback`` of its start; later than that, it is not reported.
    - Two assets whose watchers have identical arguments share one trigger, which then
      has no single state store: it keeps its state in memory (and says so in the log),
      so give each watcher its own arguments.
    - Memory: at most :data:`MAX_TRACKED_RUNS` ids are remembered; beyond that the
      oldest are dropped and runs created before them are no longer considered (so
      still never reported twice). Choose filters that select the runs you act on.
    - API failures back off (doubling, up to 5 minutes) and never end the watcher; a
      rejected key or a missing connection is logged as an error on every attempt, so
      fixing the connection resumes the watcher.
    """

    def __init__(
        self,
        *,
        timbal_conn_id: str = DEFAULT_CONN_ID,
        status: str | None = None,
        user_id: str | None = None,
        sentiment: str | None = None,
        group_id: str | None = None,
        workforce_id: str | None = None,
        rev: str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        roots: bool | None = None,
        poke_interval: float = 60.0,
        lookback: float = 3600.0,
        max_run_ids: int = 100,
        org_id: str | None = None,
        project_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.timbal_conn_id = timbal_conn_id
        self.filters: dict[str, Any] = {
            name: value
            for name, value in (
                ("status", status),
                ("user_id", user_id),
                ("sentiment", sentiment),
                ("group_id", group_id),
                ("workforce_id", workforce_id),
                ("rev", rev),
                ("metadata", dict(metadata) if isinstance(metadata, Mapping) else metadata),
                ("roots", roots),
            )
            if value is not None
        }
        self.query = RunQuery.from_filters(self.filters)  # bad filters fail at parse time
        self.poke_interval = max(_seconds("poke_interval", poke_interval), MIN_POKE_INTERVAL)
        self.lookback = _seconds("lookback", lookback, minimum=1.0)
        if isinstance(max_run_ids, bool) or not isinstance(max_run_ids, int):
            raise QueryError("max_run_ids", f"{max_run_ids!r} is not a whole number")
        if not 1 <= max_run_ids <= 1000:
            raise QueryError("max_run_ids", f"{max_run_ids} is not from 1 to 1000")
        self.max_run_ids = max_run_ids
        self.org_id = org_id
        self.project_id = project_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that rebuild this trigger (no secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "timbal_conn_id": self.timbal_conn_id,
                **self.filters,
                "poke_interval": self.poke_interval,
                "lookback": self.lookback,
                "max_run_ids": self.max_run_ids,
                "org_id": self.org_id,
                "project_id": self.project_id,
            },
        )

    @property
    def state_key(self) -> str:
        """The key of this watcher's state in the asset's state store."""
        identity = json.dumps(
            [self.timbal_conn_id, self.org_id, self.project_id, self.query.as_dict()],
            sort_keys=True,
        )
        return "timbal_new_runs:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    def _store(self) -> Any:
        """The asset's state store, or None (outside a triggerer, or shared by assets)."""
        store = self.asset_state_store
        if store is None or getattr(self, "_store_unusable", False):
            return None
        return store

    def _store_failed(self, error: ValueError) -> None:
        # Two assets watched by identical triggers share one trigger, and so have no
        # single store: keep the state in memory, and say how to get it back.
        self._store_unusable = True
        self.log.warning(
            "This watcher serves several assets (%s): its state is kept in memory only, "
            "so a triggerer restart starts a new baseline. Give each asset's watcher its "
            "own arguments (e.g. another poke_interval) to keep it across restarts.",
            error,
        )

    async def _load(self) -> dict[str, Any] | None:
        store = self._store()
        if store is None:
            return None
        try:
            value = await store.aget(self.state_key)
        except ValueError as error:
            self._store_failed(error)
            return None
        if not isinstance(value, dict) or value.get("version") != 1:
            return None
        seen = value.get("seen")
        floor = value.get("floor_ms")
        if not isinstance(seen, dict) or not isinstance(floor, int):
            return None
        return {"version": 1, "floor_ms": floor, "seen": seen}

    async def _save(self, state: dict[str, Any]) -> None:
        store = self._store()
        if store is not None:
            try:
                await store.aset(self.state_key, state)
            except ValueError as error:
                self._store_failed(error)

    async def _list(self, client: AsyncTimbalClient, since_ms: int) -> list[Run]:
        query = self.query.replace(since=since_ms, sort_by=None, sort_order=None)
        return [run async for run in client.list_runs(query, limit=MAX_TRACKED_RUNS)]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """List the matching runs every ``poke_interval`` seconds; fire for new ones."""
        state = await self._load()
        hook = TimbalHook(self.timbal_conn_id, org_id=self.org_id, project_id=self.project_id)
        client: AsyncTimbalClient | None = None
        failures = 0
        try:
            while True:
                delay = self.poke_interval
                now_ms = int(time.time() * 1000)
                floor_ms = state["floor_ms"] if state else now_ms - int(self.lookback * 1000)
                try:
                    if client is None:
                        client = await hook.get_async_conn(max_retries=_CLIENT_RETRIES)
                    runs = await self._list(client, floor_ms)
                except (*PERMANENT, *TRANSIENT) as error:
                    failures += 1
                    retry_after = error.retry_after if isinstance(error, RateLimitError) else None
                    delay = _backoff(self.poke_interval, failures, retry_after)
                    log = self.log.error if isinstance(error, PERMANENT) else self.log.warning
                    log(
                        "Listing Timbal runs failed: %s; trying again in %.1fs",
                        hook.describe(error),
                        delay,
                    )
                    if isinstance(error, PERMANENT) and client is not None:
                        await client.aclose()  # read the connection afresh next time
                        client = None
                else:
                    failures = 0
                    event, state = self._advance(state, runs, floor_ms, now_ms)
                    await self._save(state)  # before the event: at most once
                    if event is not None:
                        yield event
                await asyncio.sleep(delay)
        finally:
            if client is not None:
                await client.aclose()

    def _advance(
        self, state: dict[str, Any] | None, runs: list[Run], floor_ms: int, now_ms: int
    ) -> tuple[TriggerEvent | None, dict[str, Any]]:
        """The event for the runs not seen before (None if none), and the new state."""
        created = {run.id: int(run.created_at.timestamp() * 1000) for run in runs}
        if state is None:
            self.log.info(
                "Watching for new Timbal runs where %s; %d run(s) already match and are "
                "the baseline (not reported)",
                self._shown_filters(),
                len(created),
            )
            seen: dict[str, int] = dict(created)
            new: list[Run] = []
        else:
            seen = dict(state["seen"])
            new = [run for run in runs if run.id not in seen]
            seen.update({run.id: created[run.id] for run in new})
        floor = max(floor_ms, now_ms - int(self.lookback * 1000))
        if len(seen) > MAX_TRACKED_RUNS:
            kept = sorted(seen.values(), reverse=True)[MAX_TRACKED_RUNS - 1]
            floor = max(floor, kept)
        seen = {run_id: at for run_id, at in seen.items() if at >= floor}
        next_state = {"version": 1, "floor_ms": floor, "seen": seen}
        if not new:
            return None, next_state
        return TriggerEvent(self._payload(new)), next_state  # type: ignore[no-untyped-call]

    def _shown_filters(self) -> str:
        shown = self.query.as_dict()
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "no filter"

    def _payload(self, new: list[Run]) -> dict[str, Any]:
        ordered = sorted(new, key=lambda run: (run.created_at, run.id), reverse=True)
        return {
            "count": len(ordered),
            "run_ids": [run.id for run in ordered[: self.max_run_ids]],
            "run_ids_truncated": len(ordered) > self.max_run_ids,
            "by_status": dict(Counter(run.status for run in ordered).most_common()),
            "by_workforce": dict(Counter(run.workforce.name for run in ordered).most_common()),
            "first_created_at": format_time(ordered[-1].created_at),
            "last_created_at": format_time(ordered[0].created_at),
            "filters": self.query.as_dict(),
        }
