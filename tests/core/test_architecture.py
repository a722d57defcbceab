"""The shape of core/: no Qt anywhere, and the packages import each other in one direction only.

The layers (see core/__init__.py): base modules, then data, runs, modeling, training, cli. A module may
import from its own layer and those before it. `lint-imports` (import-linter, run by `make lint`)
checks the same contract from pyproject.toml; this test keeps it enforced where that tool is absent.
"""

import ast
import pathlib
import subprocess
import sys

CORE = pathlib.Path(__file__).resolve().parents[2] / "core"
REPO = CORE.parent
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "superqt", "gui")
LAYERS = ("data", "runs", "modeling", "training", "cli")  # lowest first; the base modules sit below all
# Packages that import TensorFlow when imported: only core/tf_runtime.py may import them.
TENSORFLOW_PACKAGES = ("tensorflow", "keras", "tf_keras", "tf2onnx")


def core_modules() -> list[pathlib.Path]:
    return sorted(CORE.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer(module: str) -> int:
    """-1 for the base modules (core.errors, core.config, ...), else the index in LAYERS."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def test_no_core_module_imports_qt_or_the_gui():
    offenders = {
        module_name(path): sorted({name.split(".")[0] for name in imports(path)} & set(FORBIDDEN))
        for path in core_modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_core_packages_import_downwards_only():
    upward = []
    for path in core_modules():
        importer = module_name(path)
        for imported in imports(path):
            if imported.startswith("core.") and layer(imported) > layer(importer):
                upward.append(f"{importer} -> {imported}")
    assert upward == []


def test_every_core_package_says_what_it_holds_and_may_import():
    for package in ("core", *(f"core/{name}" for name in LAYERS)):
        docstring = ast.get_docstring(ast.parse((CORE.parent / package / "__init__.py").read_text()))
        assert docstring and "import" in docstring, package


def test_importing_every_core_module_loads_no_qt():
    modules = [module_name(path) for path in core_modules()]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORE.parent
    )
    assert out.stdout.strip() == "[]"


def test_config_import_does_not_load_tensorflow():
    modules = "core.config, core.training.driver, core.data.dataset, core.runs.run_folder"
    code = f"import sys, {modules}; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORE.parent
    )
    assert out.stdout.strip() == "False"


def test_only_the_runtime_loader_imports_tensorflow():
    """Two threads importing TensorFlow at once break it, so every module asks core.tf_runtime, which
    imports it once under a lock, instead of importing it (at any depth) itself."""
    sources = [*core_modules(), *sorted((REPO / "gui").rglob("*.py")), REPO / "main.py"]
    heavy = set(TENSORFLOW_PACKAGES)
    offenders = {
        str(path.relative_to(REPO)): sorted({name.split(".")[0] for name in imports(path)} & heavy)
        for path in sources
        if path != CORE / "tf_runtime.py"
    }
    assert {name: found for name, found in offenders.items() if found} == {}
