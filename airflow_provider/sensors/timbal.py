"""``TimbalRunSensor``: wait until a Timbal run is no longer running.

::

    TimbalRunSensor(
        task_id="wait_for_run",
        run_id="{{ ti.xcom_pull(task_ids='start_agent') }}",  # or idempotency_key=...
        poke_interval=30,
        timeout=3600,
    )

It succeeds when the run's status is ``success`` (or one of ``success_statuses``) and
returns a summary of the run (id, status, duration, cost, ``status_detail``...) to XCom.
It fails at once, without retries, when the run ends ``error`` or ``cancelled``, with
one line naming the run, its status and the reason in its ``status_detail``; also when
the run does not exist or vanishes (404), and when the key or the connection is wrong.

With ``deferrable=True`` (the default when Airflow's ``[operators] default_deferrable``
is on) the wait happens in Airflow's triggerer
(:class:`~airflow_provider.triggers.timbal.TimbalRunTrigger`) and takes no worker slot;
otherwise the sensor checks from the worker, in ``mode="poke"`` or ``"reschedule"``.
``poke_interval``, ``timeout`` and ``soft_fail`` mean the same in every mode. API
failures that may pass (no answer, 429, 5xx) never fail the sensor: it checks again
later, until ``timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from timbal_integrations.errors import NotFoundError, QueryError

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
from ..triggers.timbal import TimbalRunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["TimbalRunSensor"]

_DEFERRAL_GRACE_S: Final = 60.0
"""Airflow's own deferral timeout comes this long after the trigger's deadline: a
backstop, so the trigger's clear timeout event normally ends the wait."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class TimbalRunSensor(BaseSensorOperator):
    """Wait until a Timbal run, given by id or idempotency key, is no longer running.

    :param run_id: the run's id (templated). Give this or ``idempotency_key``.
    :param idempotency_key: the run's idempotency key (templated).
    :param success_statuses: statuses that count as success (default ``["success"]``).
    :param failure_statuses: statuses that fail the task (default ``error`` and
        ``cancelled``, less any listed as success). Any other status, ``running`` or one
        Timbal adds later, means "not finished yet".
    :param deferrable: wait in the triggerer instead of a worker (default: Airflow's
        ``[operators] default_deferrable``).
    :param timbal_conn_id: the Timbal connection (default ``timbal_default``).
    :param org_id: overrides the connection's ``org_id`` (templated).
    :param project_id: overrides the connection's ``project_id`` (templated).

    And those of every sensor: ``poke_interval`` (seconds between checks, default 60),
    ``timeout`` (seconds before giving up; default Airflow's ``[sensors]
    default_timeout``), ``mode`` (``poke`` or ``reschedule``; ignored when deferrable),
    ``soft_fail`` (skip instead of failing, on timeout and on a failed run).
    """

    template_fields: Sequence[str] = ("run_id", "idempotency_key", "org_id", "project_id")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        success_statuses: Iterable[str] = ("success",),
        failure_statuses: Iterable[str] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        timbal_conn_id: str = DEFAULT_CONN_ID,
        org_id: str | None = None,
        project_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (run_id is None) == (idempotency_key is None):
            raise QueryError(
                "run_id", "give exactly one of run_id= and idempotency_key= (the run to wait for)"
            )
        self.run_id = run_id
        self.idempotency_key = idempotency_key
        self.success_statuses, self.failure_statuses = check_statuses(
            tuple(success_statuses) if not isinstance(success_statuses, str) else success_statuses,
            failure_statuses,
        )
        self.deferrable = deferrable
        self.timbal_conn_id = timbal_conn_id
        self.org_id = org_id
        self.project_id = project_id
        self._hook: TimbalHook | None = None

    # -- helpers ---------------------------------------------------------------------

    def _asked(self) -> str:
        """The run id or idempotency key, after templating."""
        field = "run_id" if self.run_id is not None else "idempotency_key"
        value = _text(self.run_id if self.run_id is not None else self.idempotency_key)
        if value is None:
            raise AirflowFailException(
                f"{field}: rendered empty; expected a Timbal run id or idempotency key"
            )
        return value

    def _get_hook(self) -> TimbalHook:
        if self._hook is None:
            self._hook = TimbalHook(
                self.timbal_conn_id,
                org_id=_text(self.org_id),
                project_id=_text(self.project_id),
            )
        return self._hook

    def _close(self) -> None:
        if self._hook is not None:
            self._hook.close()
            self._hook = None

    def _fail(self, message: str) -> AirflowFailException | AirflowSkipException:
        """The exception for a failed wait: a skip under ``soft_fail``/``never_fail``."""
        if self.soft_fail or self.never_fail:
            return AirflowSkipException(message)
        return AirflowFailException(message)

    # -- checking --------------------------------------------------------------------

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check: done (with the run's summary), not yet, or a failure raised."""
        asked = self._asked()
        hook = self._get_hook()
        try:
            detail = hook.get_run(asked)
        except NotFoundError as error:
            raise AirflowFailException(not_found_message(asked, hook.describe(error))) from None
        except PERMANENT as error:
            raise AirflowFailException(hook.describe(error)) from None
        except TRANSIENT as error:
            self.log.warning(
                "%s: the API failed (%s); checking again in %.0fs",
                run_name(asked),
                hook.describe(error),
                self.poke_interval,
            )
            return False
        result = outcome(detail.status, self.success_statuses, self.failure_statuses)
        if result == "success":
            self.log.info("%s ended with status %r", run_name(asked, detail), detail.status)
            return PokeReturnValue(is_done=True, xcom_value=run_summary(detail))
        if result == "failure":
            raise AirflowFailException(end_message(asked, detail))
        self.log.info("%s is %r", run_name(asked, detail), detail.status)
        return False

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) from the worker, or defer to :class:`TimbalRunTrigger`."""
        if not self.deferrable:
            try:
                return super().execute(context)
            finally:
                self._close()
        # One check from the worker first: a run that already ended needs no trigger,
        # and a wrong key or connection fails here with its own message.
        try:
            done = self.poke(context)
        except AirflowFailException as error:
            raise self._fail(str(error)) from None
        finally:
            self._close()
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        deadline = time.time() + self.timeout
        self.log.info(
            "%s is not finished; deferring to the triggerer (checks every %.0fs, timeout %.0fs)",
            run_name(self._asked()),
            self.poke_interval,
            self.timeout,
        )
        grace = max(_DEFERRAL_GRACE_S, 2 * self.poke_interval)
        self.defer(
            trigger=TimbalRunTrigger(
                run_id=self._asked(),
                timbal_conn_id=self.timbal_conn_id,
                poke_interval=self.poke_interval,
                deadline=deadline,
                success_statuses=self.success_statuses,
                failure_statuses=self.failure_statuses,
                org_id=_text(self.org_id),
                project_id=_text(self.project_id),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + grace),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into success (the run's summary) or a one-line failure."""
        if not isinstance(event, dict) or "status" not in event:
            raise AirflowFailException(f"the Timbal trigger sent an unexpected event: {event!r}")
        status = event["status"]
        message = str(event.get("message", ""))
        if status == "success":
            self.log.info("%s", message)
            return event.get("run")
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowFailException(message)
