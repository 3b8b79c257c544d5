"""What a package exports, found by looking rather than by reading ``__all__``.

httpx's ``tests/test_exported_members.py`` asserts that ``httpx.__all__`` is exactly the
public names in the package's namespace. Our packages load their names lazily (through a
module ``__getattr__``), so the namespace is found by asking: every public name of every
module in the package is offered to the package, and the ones it serves (as the same
object) are its exports.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["exposed_members"]

_INCLUDED_PRIVATE = ("__version__",)


def _modules(package: ModuleType) -> list[ModuleType]:
    found = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        found.append(importlib.import_module(info.name))
    return found


def exposed_members(package: ModuleType) -> set[str]:
    """The public names ``package`` itself serves (submodules excluded)."""
    candidates: dict[str, object] = {}
    for module in _modules(package):
        names = getattr(module, "__all__", None) or [n for n in vars(module) if n[:1] != "_"]
        for name in names:
            if hasattr(module, name):
                candidates.setdefault(name, getattr(module, name))
    exposed = set()
    for name in [*candidates, *_INCLUDED_PRIVATE]:
        try:
            value = getattr(package, name)
        except AttributeError:
            continue
        if isinstance(value, ModuleType):
            continue
        if name in _INCLUDED_PRIVATE or name[:1] != "_":
            exposed.add(name)
    return exposed
