"""A layer's public surface: the names the layers above it use, imported on first use.

Each layer's __init__.py lists its surface (EXPORTS, by module) and takes `__all__` and a
module `__getattr__` from `lazy_surface`, so `from te_sweep.core import TrialConfig` works while
importing one module of a layer imports no other (a stand-in trial imports no torch, `te-sweep
--help` no Ray). tests/test_layers.py checks that each surface is exactly what the layers above
import from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_surface(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any]]:
    """`__all__` and a module `__getattr__` for `package` exporting `exports` (module -> names)."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return sorted(module_of), __getattr__
