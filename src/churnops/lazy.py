"""A module imported on first attribute access, for libraries only some paths of a module use;
and packages whose exported names import their submodule on first use (`lazy_exports`).

`pd = lazy_module("pandas")` keeps `pd.DataFrame(...)` readable while a process that never
touches a frame (an API worker: plain records end to end) never pays pandas' ~0.4 s and ~85 MB.
Type checkers see the real import (`if TYPE_CHECKING: import pandas as pd`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module; the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    return LazyModule(name)


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` (PEP 562) for `package`: each exported name is read from its
    submodule (`exports` maps name -> submodule) when first asked for; AttributeError for any
    other name. `__getattr__ = lazy_exports(__name__, _EXPORTS)` in the package."""

    def exported(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return exported
