"""The package's import graph: no module imports a module that imports it back, and no module imports another
module's private (``_x``) names.

Every ``.py`` file under ``bontheory/`` is parsed with :mod:`ast` (nothing is imported). Every import statement
counts, at module level or inside a function (a lazy import hides a circle from Python, not from a reader).
An edge goes to the module that defines the imported name: ``from bontheory.a import b`` points at
``bontheory.a.b`` when that is a module, else at ``bontheory.a``. Importing a submodule does not add an edge
to its parent packages (Python runs their ``__init__`` first, but ``__init__`` files are re-export lists).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "bontheory"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` under the package (a symlinked folder is followed)."""
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _absolute(module: str, level: int, name: str | None, is_package: bool) -> str:
    """The absolute module named by a (possibly relative) ``from ... import``."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(modules: dict[str, Path]):
    """Yield ``(importer, imported_module, imported_name or None, line)`` for every bontheory import."""
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        yield module, alias.name, None, node.lineno
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, node.level, node.module, is_package)
                if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in modules:
                        yield module, sub, None, node.lineno
                    else:
                        yield module, source, alias.name, node.lineno


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for importer, imported, _, _ in _imports(modules):
        if imported != importer:
            graph[importer].add(imported)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_walker_sees_the_package():
    modules = _modules()
    graph = _graph(modules)
    # the walker must find the layers and their edges (a walker that finds nothing passes vacuously)
    assert {"bontheory", "bontheory.exact.bon", "bontheory.mc.kernels", "bontheory.policies.policy"} <= set(modules)
    assert "bontheory.exact.levels" in graph["bontheory.exact.bon"]
    assert "bontheory.policies.policy" in graph["bontheory"]


def test_cycle_detector_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve():
    assert _absolute("bontheory.mc.kernels", 1, "samplers", False) == "bontheory.mc.samplers"
    assert _absolute("bontheory.mc", 1, "kernels", True) == "bontheory.mc.kernels"
    assert _absolute("bontheory.mc.kernels", 2, "exact.bon", False) == "bontheory.exact.bon"


def _private_imports(modules: dict[str, Path]) -> list[str]:
    return sorted(
        f"{importer}:{line} imports {name} from {imported}"
        for importer, imported, name, line in _imports(modules)
        if name is not None and name.startswith("_") and not name.startswith("__") and imported != importer
    )


def _cycle_message(cycles) -> str:
    return "modules that import each other (directly or through others): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles():
    cycles = _cycles(_graph(_modules()))
    assert not cycles, _cycle_message(cycles)


def test_no_private_names_across_modules():
    offenders = _private_imports(_modules())
    assert not offenders, "private names imported across modules (name them as interface):\n" + "\n".join(offenders)
