"""Pytest fixtures that serve the emulator over a real socket.

Register with ``pytest_plugins = ["timbal_integrations.emulator.pytest_plugin"]`` in a
root ``conftest.py``.

- ``timbal_emulator``: one emulator for the whole session (3,000 runs, seed 1,
  ``FIXED_END``, page size 50, no faults). Shared: do not ``configure`` it; use the
  factory for switches, and reset or diff its ``stats`` if you count requests.
- ``timbal_emulator_factory``: a callable taking :func:`run_emulator`'s arguments that
  starts an emulator and stops it when the test ends. For a live emulator on a clock the
  test moves::

      clock = EmulatorClock(FIXED_END)
      emu = timbal_emulator_factory(runs=2000, live=True, clock=clock)
      clock.advance(timedelta(hours=6))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from timbal_integrations.emulator.data import FIXED_END
from timbal_integrations.emulator.server import Emulator, run_emulator

__all__ = ["EmulatorFactory", "timbal_emulator", "timbal_emulator_factory"]


class EmulatorFactory(Protocol):
    """Starts an emulator with :func:`run_emulator`'s arguments; stopped at teardown."""

    def __call__(self, **kwargs: Any) -> Emulator:
        """Start an emulator and return it once it accepts connections."""
        ...


@pytest.fixture(scope="session")
def timbal_emulator() -> Iterator[Emulator]:
    """A session-wide emulator: 3,000 runs, seed 1, ending at FIXED_END, 50 per page."""
    with run_emulator(runs=3000, seed=1, end=FIXED_END, page_size=50) as emulator:
        yield emulator


@pytest.fixture
def timbal_emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with custom arguments; all of them stop when the test ends."""
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> Emulator:
            return stack.enter_context(run_emulator(**kwargs))

        yield start
