"""``timbal-runs emulator``: the emulator's own command line, under ``timbal-runs``.

``main`` hands ``timbal-runs emulator ARGS`` to :func:`timbal_integrations.emulator.main`
before parsing (the emulator has flags of its own, ``--host`` and ``--port`` among them),
so this module only lists the command in ``timbal-runs --help``.
"""

from __future__ import annotations

import argparse
from typing import Final

from ..failures import Context
from ..options import Parents
from ..parsing import Subcommands

__all__ = ["NAME", "add_parser", "run"]

NAME: Final = "emulator"


def add_parser(commands: Subcommands, parents: Parents) -> None:
    """List ``emulator`` (its flags are the emulator's: see ``timbal-runs emulator --help``)."""
    p = commands.add_parser(
        NAME,
        help="serve a local Timbal-compatible runs API (see 'timbal-runs emulator --help')",
        add_help=False,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Serve the emulator with its defaults (``main`` normally hands over before parsing)."""
    from ...emulator import main

    return main([])
