"""Start-up of our own commands (``timbal-runs``, ``timbal-mcp``); not for library use.

A command pays for every module it imports before doing any work: about 0.4 s for
``timbal-runs export`` and over 1 s for ``timbal-mcp`` (the MCP SDK alone builds some 550
pydantic models) on the 2-core benchmark machine. Three things here take a share of that
away without changing behaviour (see benchmarks/RESULTS.md):

- ``import httpx`` also imports httpx's own command-line tool, and with it click, rich
  and pygments when they are installed (about 70 ms; encode/httpx#3547). Our commands
  never run httpx's CLI, so :func:`defer_httpx_cli` puts a stand-in in its place that
  loads the real one if ``httpx.main`` is ever called.
- Importing builds hundreds of thousands of long-lived objects, and the cyclic garbage
  collector keeps re-scanning them while they are being built. :func:`importing` pauses
  it for the imports and, in a command's own process, then freezes what was imported
  (``gc.freeze``), so later collections skip those objects too.
- :func:`without` keeps code from importing an optional module for a while: timbal-mcp
  uses it so that the MCP SDK does not import rich to build a log handler it would
  then discard.

Library users (``import timbal_integrations``) are not affected: only the console
entry points call this module.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["defer_httpx_cli", "importing", "timbal_runs", "without"]


def defer_httpx_cli() -> None:
    """Keep ``import httpx`` from importing httpx's CLI; load it only if it is called."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        del sys.modules["httpx._main"]
        from httpx._main import main as real_main

        return real_main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


@contextmanager
def importing(*, freeze: bool = False) -> Iterator[None]:
    """Pause the garbage collector while importing; with ``freeze``, freeze the result.

    Freeze only in a process of our own: frozen objects are never collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if freeze:
                gc.freeze()
            gc.enable()


@contextmanager
def without(*names: str) -> Iterator[None]:
    """While inside, importing these modules (if not imported yet) raises ImportError.

    For code that imports an optional module only to build something we then discard:
    ``MCPServer()`` imports rich (~35 ms) when it is installed, to make a log handler
    that ``logging.basicConfig`` ignores because timbal-mcp has configured logging first.
    """
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the documented import block
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def timbal_runs() -> int:
    """The ``timbal-runs`` console script."""
    defer_httpx_cli()
    with importing(freeze=True):
        from .cli import main
    return main()
