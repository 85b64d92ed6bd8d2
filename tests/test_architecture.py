"""The layout holds: dependencies flow service -> recommender -> index, no import cycles, no oversized modules.

Imports are read from the source (module level and inside functions; ``if TYPE_CHECKING:`` blocks are left out,
they never run), so a lazy import counts like any other: it is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

PACKAGES = ("index", "recommender", "service")
#: What each package may import from the others.
ALLOWED = {"index": set(), "recommender": {"index"}, "service": {"recommender", "index"}}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> set[str]:
    """Modules of this repository that ``module`` imports when it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x` imports module x
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = {}
    for module, path in files.items():
        graph[module] = {m for m in _imports(path, module) if m in files and m != module}
    return graph


GRAPH = _graph()


def test_dependencies_flow_one_way() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0] and target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    )
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_no_import_cycles() -> None:
    # A package's __init__ that re-exports its modules is not part of a cycle its modules form among themselves:
    # leave the edges *into* package __init__ modules out (importing ``pkg.mod`` runs ``pkg`` first anyway).
    packages = {m for m, p in GRAPH.items() if p and m in {_module_name(x) for x in REPO.glob("*/__init__.py")}}
    graph = {m: {t for t in targets if not (t in GRAPH and _is_package(t))} for m, targets in GRAPH.items()}
    del packages
    assert _cycles(graph) == []


def _is_package(module: str) -> bool:
    return (REPO / Path(*module.split(".")) / "__init__.py").exists()


@pytest.mark.parametrize("package", ["recommender", "service"])
def test_no_module_over_500_lines(package: str) -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in (REPO / package).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_cli_imports_no_heavy_library() -> None:
    """``recommender --help`` must be instant: the CLI module may not pull in torch, scikit-learn, FAISS or SciPy."""
    import subprocess
    import sys

    code = (
        "import sys, recommender.cli; "
        "print(','.join(m for m in ('torch', 'sklearn', 'faiss', 'scipy', 'sentence_transformers', 'fastapi') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert loaded.stdout.strip() == ""
