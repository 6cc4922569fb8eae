"""The package's layers, read from the imports of every module (te_sweep/__init__.py says what
each layer is): a layer imports only itself and the layers below it, the shared modules import
no layer, and the two lower layers never import Ray, not even inside a function. Every import
counts, at the top of a file or inside a function, so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "te_sweep"
# Bottom to top: each may import the ones before it. cli.py and __main__.py are the top.
LAYERS = ("core", "results", "sweep")
SHARED = (
    "errors",
    "exit_codes",
    "moved",
    "surface",
)  # imported by every layer; they import no layer
TOP = ("cli", "__main__", "__init__")
WITHOUT_RAY = ("core", "results")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    """core, results or sweep for a module in a subpackage; its own name at the top."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported(path: Path) -> set[str]:
    """Every module name `path` imports, at any depth of the file, absolute."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (te_sweep uses absolute ones)"
            assert node.module is not None
            names.add(node.module)
            # `from te_sweep.core import config` imports the module te_sweep.core.config
            names.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if node.module.startswith("te_sweep")
            )
    return names


def te_sweep_layers(path: Path) -> set[str]:
    """The layers (or top-level modules) of te_sweep that `path` imports."""
    found = set()
    for name in imported(path):
        parts = name.split(".")
        if parts[0] == "te_sweep" and len(parts) > 1:
            found.add(parts[1])
    return found


def allowed(layer: str) -> set[str]:
    if layer in SHARED:
        return set()
    if layer in LAYERS:
        return set(LAYERS[: LAYERS.index(layer) + 1]) | set(SHARED)
    return set(LAYERS) | set(SHARED) | set(TOP)


def test_every_module_is_in_a_layer_or_named_at_the_top():
    for path in modules():
        layer = layer_of(path)
        assert layer in LAYERS + SHARED + TOP, (
            f"{path.relative_to(PACKAGE)}: a new top-level module; put it in a layer's folder"
        )


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_those_below(path):
    layer = layer_of(path)
    wrong = te_sweep_layers(path) - allowed(layer)
    assert not wrong, (
        f"te_sweep/{path.relative_to(PACKAGE)} ({layer}) imports "
        f"te_sweep.{', te_sweep.'.join(sorted(wrong))}, above it"
    )


@pytest.mark.parametrize("layer", WITHOUT_RAY)
def test_the_lower_layers_never_import_ray(layer):
    for path in sorted((PACKAGE / layer).glob("*.py")):
        ray = sorted(n for n in imported(path) if n == "ray" or n.startswith("ray."))
        assert not ray, f"te_sweep/{layer}/{path.name} imports {ray}: Ray belongs to sweep/"


def test_the_check_sees_a_wrong_import(tmp_path):
    """The reader of imports finds one inside a function, and the rule refuses it."""
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from te_sweep.sweep.launch import run_sweep\n    import ray.tune\n"
    )
    assert te_sweep_layers(module) == {"sweep"}
    assert "sweep" not in allowed("results") and "results" in allowed("sweep")
    assert "ray.tune" in imported(module)


MAX_LINES = 360  # "about 350"


def test_a_module_over_about_350_lines_is_named_in_readmes_layout_with_its_reason():
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout") : readme.index("## ", readme.index("## Layout") + 3)]
    long = [
        path.relative_to(PACKAGE).as_posix()
        for path in modules()
        if len(path.read_text().splitlines()) > MAX_LINES
    ]
    unexplained = [name for name in long if f"`{name}`" not in layout]
    assert not unexplained, (
        f"over {MAX_LINES} lines, not explained in README's Layout: {unexplained}"
    )


def imported_names_from(layer: str) -> set[tuple[str, str]]:
    """(module, name) of every `from te_sweep.LAYER.MODULE import NAME` in the layers above
    `layer` and at the top."""
    found = set()
    for path in modules():
        here = layer_of(path)
        if here == layer or (here in LAYERS and LAYERS.index(here) < LAYERS.index(layer)):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["te_sweep", layer] and len(parts) == 3:
                    found.update((parts[2], alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layers_surface_is_exactly_what_the_layers_above_use(layer):
    import importlib

    package = importlib.import_module(f"te_sweep.{layer}")
    exported = {(module, name) for module, names in package.EXPORTS.items() for name in names}
    assert exported == imported_names_from(layer), "update EXPORTS in its __init__.py"
    for module, name in exported:  # each resolves to the module's own object
        assert getattr(package, name) is getattr(
            importlib.import_module(f"te_sweep.{layer}.{module}"), name
        )
    assert sorted(package.__all__) == sorted(name for _, name in exported)


def test_a_surface_imports_nothing_until_asked():
    """Importing a layer imports none of its modules: a stand-in trial's worker imports
    core.reporting without torch (in a fresh interpreter, as a worker is)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import te_sweep.core, te_sweep.results, te_sweep.sweep\n"
        "from te_sweep.core.reporting import tune_result\n"
        "from te_sweep.core import TrialConfig\n"
        "print('torch' in sys.modules, 'ray' in sys.modules, 'pyarrow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]
