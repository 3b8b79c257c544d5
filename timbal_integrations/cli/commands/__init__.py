"""The ``timbal-runs`` commands, one module each.

A command module has ``NAME``, ``add_parser(commands, parents)`` (its subparser, with
``run`` as the default to call) and ``run(args, ctx) -> int``. Adding a command is adding
its module and one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
from typing import Final, Protocol

from ..failures import Context
from ..options import Parents
from ..parsing import Subcommands
from . import demo, emulator, export, show, summary, sync
from . import list as list_runs

__all__ = ["COMMANDS", "CommandModule"]


class CommandModule(Protocol):
    """What a command module provides."""

    @property
    def NAME(self) -> str:
        """The command's name on the command line."""

    def add_parser(self, commands: Subcommands, parents: Parents) -> None:
        """Add the command's subparser (``set_defaults(run=run)``)."""

    def run(self, args: argparse.Namespace, ctx: Context) -> int:
        """Run the command; returns the exit code."""


COMMANDS: Final[tuple[CommandModule, ...]] = (
    list_runs,
    export,
    sync,
    summary,
    show,
    emulator,
    demo,
)
"""The commands, in the order ``timbal-runs --help`` lists them."""
