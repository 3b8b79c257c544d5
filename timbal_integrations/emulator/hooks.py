"""The test hooks and ground truth shared by :class:`~.app.EmulatorApp` and
:class:`~.server.Emulator`: thin, documented doors onto their :class:`~.state.EmulatorState`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from timbal_integrations.emulator.clock import EmulatorClock
from timbal_integrations.emulator.state import DetailsView, EmulatorState

__all__ = ["StateHooks"]


class StateHooks:
    """Ground truth at the current clock and hooks that change runs while serving.

    Every method is thread-safe; see :mod:`.state` for what the hooks mean over time.
    """

    @property
    def state(self) -> EmulatorState:
        """The runs served and the hooks that change them."""
        raise NotImplementedError

    @property
    def clock(self) -> EmulatorClock | None:
        """The clock a live emulator follows (None when frozen)."""
        return self.state.clock

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Ground truth now: every visible run as the list endpoint serves it, newest first.

        In its current state at the clock's time. Shared between calls: treat as read-only.
        """
        return self.state.previews()

    @property
    def details(self) -> DetailsView:
        """Ground truth now: every visible run as the get endpoint serves it (``RunDetail``,
        trace included, built when read), newest first."""
        return self.state.details()

    def reactions(self, run_id: str) -> list[dict[str, Any]]:
        """Ground truth now: a visible run's reactions, newest first.

        Raises:
            KeyError: no such run is visible now.
        """
        return self.state.reactions(run_id)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set fields of a run (``status``, ``duration_ms``, ``cost_usd``, ``cost_credits``,
        ``last_reaction_sentiment``, ``status_detail``, ``trace``, ...); they win over the
        clock from now on.

        Raises:
            KeyError: no such run.
            ValueError: a field is ``id``, ``idempotency_key`` or ``created_at``.
        """
        self.state.update_run(run_id, **fields)

    def add_run(self, record: Mapping[str, Any]) -> None:
        """Add a run (a ``RunDetail``-shaped mapping; a ``trace`` key is served as given).

        Served as given once its ``created_at`` has come (at once when frozen).

        Raises:
            ValueError: a preview field is missing, or the id or idempotency key is taken.
        """
        self.state.add_run(record)

    def remove_run(self, run_id: str) -> None:
        """Remove a run: the list omits it and a get answers 404.

        Raises:
            KeyError: no such run.
        """
        self.state.remove_run(run_id)

    def add_reaction(
        self,
        run_id: str,
        sentiment: str,
        feedback: str | None = None,
        user: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add a reaction; the run's ``last_reaction_sentiment`` follows once it counts.

        ``user``: a ``UserRef`` or a known user's id (default: the first user, the API
        key's owner); ``at``: its time (default: now; a frozen emulator's now is its
        ``end``). Returns the reaction as the reactions endpoint serves it.

        Raises:
            KeyError: no such run, or an unknown user id.
            ValueError: ``sentiment`` is empty, or ``at`` is naive.
        """
        return self.state.add_reaction(run_id, sentiment, feedback, user=user, at=at)

    def hold_running(self, run_id: str, hold: bool = True) -> None:
        """Keep a run ``running`` whatever the clock says (``hold=False`` lets it go).

        Raises:
            KeyError: no such run.
        """
        self.state.hold_running(run_id, hold)
