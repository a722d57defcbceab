"""The shape of core/: no Qt anywhere, the packages import each other in one direction only, and no
module of the project (core/, gui/, main.py) takes part in an import cycle.

The layers (see core/__init__.py): base modules, then data, runs, modeling, training, cli. A module may
import from its own layer and those before it. `lint-imports` (import-linter, run by `make lint`)
checks the same contract from pyproject.toml; this test keeps it enforced where that tool is absent.
Import-linter's layers do not see cycles between modules of one package, hence the cycle test.
"""

import ast
import itertools
import pathlib
import subprocess
import sys
from collections.abc import Iterator

CORE = pathlib.Path(__file__).resolve().parents[2] / "core"
REPO = CORE.parent
GUI = REPO / "gui"
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


def project_modules() -> dict[str, pathlib.Path]:
    """Module name -> file, for every module of core/, gui/ and main.py."""
    paths = [*sorted(CORE.rglob("*.py")), *sorted(GUI.rglob("*.py")), REPO / "main.py"]
    return {module_name(path): path for path in paths}


def runtime_imports(path: pathlib.Path, importer: str) -> Iterator[tuple[str, int]]:
    """(module name, line) of every import `path` runs: at module level and inside functions alike,
    since a lazy import closes a cycle as surely as a top-level one once the function runs. Imports
    under `if TYPE_CHECKING:` never run and are left out. Relative imports are resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for child in ast.walk(statement)
    }
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


def import_graph() -> dict[str, dict[str, int]]:
    """importer -> {imported project module: line of the first such import}."""
    modules = project_modules()
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for importer, path in modules.items():
        for imported, line in runtime_imports(path, importer):
            if imported in modules and imported != importer:
                graph[importer].setdefault(imported, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle through each group of modules that import one another (each strongly
    connected component of more than one module), as [a, b, ..., a]."""
    found, seen = [], set()
    for start in sorted(graph):
        if start in seen:
            continue
        path = _shortest_path_back(graph, start)
        if path:
            found.append(path)
            seen.update(_component(graph, start))
    return found


def _shortest_path_back(graph: dict[str, dict[str, int]], start: str) -> list[str] | None:
    parents, frontier = {start: None}, [start]
    while frontier:
        following = []
        for module in frontier:
            for imported in sorted(graph[module]):
                if imported == start:
                    chain = [module]
                    while parents[chain[-1]] is not None:
                        chain.append(parents[chain[-1]])
                    return [*reversed(chain), start]
                if imported not in parents:
                    parents[imported] = module
                    following.append(imported)
        frontier = following
    return None


def _component(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    """The modules reachable from `start` that reach it back."""
    reachable = _reachable(graph, start)
    reverse: dict[str, dict[str, int]] = {name: {} for name in graph}
    for importer, imported in graph.items():
        for name in imported:
            reverse[name][importer] = 0
    return reachable & _reachable(reverse, start)


def _reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    reached, stack = {start}, [start]
    while stack:
        for imported in graph[stack.pop()]:
            if imported not in reached:
                reached.add(imported)
                stack.append(imported)
    return reached


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    """'a -> b (a:12) -> a (b:40)': each arrow with the importer's line that makes it."""
    steps = [cycle[0]]
    for importer, imported in itertools.pairwise(cycle):
        steps.append(f"{imported} ({importer}:{graph[importer][imported]})")
    return " -> ".join(steps)


def test_no_module_of_the_project_is_in_an_import_cycle():
    graph = import_graph()
    assert [describe(cycle, graph) for cycle in cycles(graph)] == []


def test_the_cycle_check_sees_a_cycle_inside_a_package_through_a_lazy_import():
    graph = {
        "core.training.driver": {"core.training.launcher": 3},
        "core.training.launcher": {"core.training.worker": 5},
        "core.training.worker": {"core.training.driver": 9},  # inside a function
        "core.cli.train": {"core.training.driver": 1},
    }
    assert cycles(graph) == [
        ["core.training.driver", "core.training.launcher", "core.training.worker", "core.training.driver"]
    ]
    assert describe(cycles(graph)[0], graph) == (
        "core.training.driver -> core.training.launcher (core.training.driver:3) -> "
        "core.training.worker (core.training.launcher:5) -> core.training.driver (core.training.worker:9)"
    )


def test_the_graph_counts_imports_inside_functions_and_resolves_relative_ones(tmp_path):
    source = tmp_path / "worker.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import launcher\n"
        "if TYPE_CHECKING:\n"
        "    from core.training import typing_only\n"
        "def main():\n"
        "    from core.training.driver import train\n"
    )
    found = {name for name, _ in runtime_imports(source, "core.training.worker")}
    assert {"core.training.launcher", "core.training.driver"} <= found
    assert "core.training.typing_only" not in found
