"""The modules' names before the layers, for sweeps pickled under them.

Until 2026-12-06 every module sat in te_sweep/ itself (te_sweep.searcher, te_sweep.sweep, ...).
Tune pickles a sweep's searcher, callbacks and trial_dirname function by module path (in
tuner.pkl and searcher-state-*.pkl), so a sweep launched before the move names modules that no
longer exist, and `te-sweep resume` must still restore it. Each old name is an alias of the
module it became, installed lazily: nothing is imported until a pickle (or anyone) asks for it.
te_sweep.sweep was a module and is now the sweep layer's package, which forwards the old
module's names to the modules it became (OLD_SWEEP_PARTS; sweep/__init__.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

LAYERS = {
    "core": (
        "config",
        "presets",
        "models",
        "data",
        "sources",
        "te",
        "te_window",
        "te_compile",
        "feedback",
        "train",
        "timing",
        "metrics",
        "objectives",
        "outcome",
        "preflight",
        "cpu_threads",
        "reporting",
        "space",
        "console",
    ),
    "results": (
        "tune_files",
        "export",
        "param_columns",
        "configs",
        "statistics",
        "optuna_db",
        "summary",
        "figures",
        "report",
        "provenance",
        "outcome_words",
        "storage",
    ),
    "sweep": (
        "searcher",
        "samplers",
        "grid_sampler",
        "concurrency",
        "trainable",
        "trial_session",
        "checkpoints",
        "retention",
        "checkpoint_check",
        "state_fallback",
        "disk_guard",
        "claim",
        "relocate",
        "result_log",
        "tune_log",
        "progress",
        "standin",
        "stopping",
    ),
}
# te_sweep.OLD -> te_sweep.LAYER.OLD (the old te_sweep.sweep is the package's launch module).
OLD_NAMES = {
    f"te_sweep.{name}": f"te_sweep.{layer}.{name}"
    for layer, names in LAYERS.items()
    for name in names
}
# The old te_sweep.sweep module became these three (sweep/__init__.py looks in each).
OLD_SWEEP_PARTS = ("launch", "run", "ray_cluster")


class OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads it as the module it became (the same module object, so
    classes unpickled under either name are the same classes)."""

    def __init__(self) -> None:
        self._specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in OLD_NAMES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(OLD_NAMES[spec.name])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system has just set the alias's spec on the module: give it back its own.
        module.__spec__ = self._specs.pop(
            module.__spec__.name if module.__spec__ else "", module.__spec__
        )


def install() -> None:
    """Answer the old names from now on, after every real finder (once per process)."""
    if not any(isinstance(finder, OldNames) for finder in sys.meta_path):
        sys.meta_path.append(OldNames())
