"""The package's import graph: no module imports, at import time, a module that (directly or not) imports
it back. Read from the source (ast), so it covers every module of `nas`, imported by a test or not.
Imports under `if TYPE_CHECKING:` are for type checkers only and do not count."""
import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def import_time_graph() -> nx.DiGraph:
    modules = {module_name(path): path for path in (ROOT / "nas").rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for statement in ast.parse(path.read_text()).body:
            if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
                continue
            nodes = ast.walk(statement) if isinstance(statement, (ast.If, ast.Try, ast.With)) else [statement]
            for node in nodes:
                for target in imported(node, package):
                    parts = target.split(".")
                    for k in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
                        prefix = ".".join(parts[:k])
                        if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                            graph.add_edge(name, prefix)
    return graph


def test_there_is_no_import_cycle_in_the_package():
    graph = import_time_graph()
    assert graph.number_of_nodes() > 100 and graph.number_of_edges() > 100  # the whole package was read
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], " ; ".join(" -> ".join(cycle + cycle[:1]) for cycle in cycles[:5])
