"""Helpers of the CLI tests: ``timbal-runs`` on a pseudo-terminal, and what was drawn."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Mapping, Sequence
from typing import Final

from tests.support.processes import BIN

__all__ = ["SGR", "on_terminal", "plain", "visible_width"]

SGR: Final = re.compile(r"\x1b\[[0-9;]*m")
"""A colour (Select Graphic Rendition) sequence: the only escapes ``timbal-runs`` writes."""


def on_terminal(
    args: Sequence[str], env: Mapping[str, str], *, columns: int = 100, timeout: float = 120
) -> tuple[int, str, str]:
    """``timbal-runs ARGS`` with stdout on a pseudo-terminal ``columns`` wide; the exit
    code, what the terminal received, and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [str(BIN), *args],
        env={**env, "COLUMNS": str(columns)},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=timeout)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return code, b"".join(chunks).decode().replace("\r\n", "\n"), err


def plain(text: str) -> str:
    """``text`` without its colour sequences."""
    return SGR.sub("", text)


def visible_width(line: str) -> int:
    """Columns a line takes once its colour sequences are removed."""
    return len(plain(line))
