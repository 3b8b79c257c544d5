"""``python -m timbal_integrations``: the ``timbal-runs`` command line."""

from __future__ import annotations

import sys

from ._startup import timbal_runs

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(timbal_runs())
