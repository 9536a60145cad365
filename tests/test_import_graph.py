"""The floor plan holds: no import loops between modules or folders, and no floor imports one above it.

The graph is read with ``ast`` from src/parp: module-level AND function-level imports (a lazy import is still a
dependency); only imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src" / "parp"

# bottom to top; see docs/ARCHITECTURE.md. A module may import its own floor's folders (without loops) and lower ones.
FLOORS = [
    {"errors", "config", "records", "results"},
    {"data", "sparsity", "models", "synth"},
    {"evaluation", "training", "inference", "export"},
    {"methods", "pretrain", "integrations"},
    {"reports"},
    {"experiments"},
    {"parp", "api", "cli", "commands", "__main__"},
]
RANK = {folder: rank for rank, floor in enumerate(FLOORS) for folder in floor}
# reports/ reads results tables and mask files: never models, training, methods or sweeps
REPORTS_MAY_IMPORT = {"reports", "errors", "results", "records", "sparsity"}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _runtime_imports(tree: ast.AST):
    """Import nodes anywhere in the tree, except inside ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in _runtime_imports(child))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def import_graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, (path, is_package) in modules.items():
        graph.add_node(name)
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "parp"]
            elif node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                package = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{package}.{a.name}" if f"{package}.{a.name}" in modules else package for a in node.names]
            elif (node.module or "").split(".")[0] == "parp":
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    graph.add_edge(name, target)
    return graph


def folder(module: str) -> str:
    """``parp.training.loop`` -> ``training``; ``parp.cli`` -> ``cli``; ``parp`` -> ``parp``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "parp"


def _loops(graph: nx.DiGraph) -> list[list[str]]:
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert graph.has_edge("parp.commands", "parp.methods")  # imported inside a function only
    assert graph.has_edge("parp.experiments.sweep", "parp.cells") is False
    assert graph.has_edge("parp.experiments.sweep", "parp.experiments.cells")


def test_the_sweep_is_split_by_job():
    """grid (what to run) and claims (who runs it) never reach for the scheduler; claims need only the stdlib."""
    graph = import_graph()
    assert {"parp.experiments.grid", "parp.experiments.claims"} <= set(graph.successors("parp.experiments.sweep"))
    assert not nx.has_path(graph, "parp.experiments.grid", "parp.experiments.sweep")
    assert set(graph.successors("parp.experiments.claims")) == set()


def test_no_import_loops_between_modules():
    assert _loops(import_graph()) == []


def test_no_import_loops_between_folders():
    graph = import_graph()
    folders = nx.DiGraph((folder(a), folder(b)) for a, b in graph.edges if folder(a) != folder(b))
    assert _loops(folders) == []


def test_every_folder_has_a_floor_and_no_floor_imports_one_above_it():
    graph = import_graph()
    assert {folder(m) for m in graph} <= set(RANK), "a new folder needs its place in FLOORS (and ARCHITECTURE.md)"
    upward = sorted((a, b) for a, b in graph.edges if RANK[folder(b)] > RANK[folder(a)])
    assert upward == []


def test_reports_read_results_and_masks_only():
    graph = import_graph()
    outside = sorted((a, b) for a, b in graph.edges
                     if folder(a) == "reports" and folder(b) not in REPORTS_MAY_IMPORT)
    assert outside == []
