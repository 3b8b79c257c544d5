"""Watching an export's files: what a reader of the target could ever have seen."""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["TargetWatcher", "part_size"]


class TargetWatcher:
    """Records every size at which the target path was seen, from another thread."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.sightings: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.001):
            try:
                size = self.target.stat().st_size
            except FileNotFoundError:
                continue
            self.sightings.append(size)

    def __enter__(self) -> TargetWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def part_size(target: Path) -> int:
    """Bytes written so far: ``PATH.part``, plus the window spools of a parallel export
    (``PATH.part.w<N>``, appended to ``PATH.part`` only at the end)."""
    total = 0
    for path in (Path(f"{target}.part"), *target.parent.glob(f"{target.name}.part.w*")):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total
