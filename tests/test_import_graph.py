"""The package's import graph: no module imports, at import time, a module that (directly or not) imports
it back. Read from the source (ast), so it covers every module of `nas`, imported by a test or not.
Imports under `if TYPE_CHECKING:` are for type checkers only and do not count. A module's own packages
are imported before it, so importing them is no edge, except for a name their __init__ defines.

Below the graph: every import inside a function says why it is not at the top (`unexplained_imports`)."""
import ast
import re
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
                if isinstance(node, ast.ImportFrom):  # a name of an enclosing package's __init__ (not a submodule):
                    base = imported(node, package)[0]  # that __init__ must have run, so it must not import us back
                    if name.startswith(base + ".") and base in modules and \
                            any(f"{base}.{alias.name}" not in modules for alias in node.names):
                        graph.add_edge(name, base)
    return graph


def test_there_is_no_import_cycle_in_the_package():
    graph = import_time_graph()
    assert graph.number_of_nodes() > 100 and graph.number_of_edges() > 100  # the whole package was read
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], " ; ".join(" -> ".join(cycle + cycle[:1]) for cycle in cycles[:5])


# ----- imports inside functions: each one says why it is not at the top -----
# A function-local import is kept only where it defers a heavy module from a fast path (`nas --help`, the
# argument checks, `import nas`), breaks an import cycle, or is optional (an extra that may be missing); its
# reason is a comment on its line or on the line just above ("# deferred: torch (...)", "# a cycle: ...").
BARE = re.compile(r"\bnoqa\b(:\s*[A-Z]+\d+(\s*,\s*[A-Z]+\d+)*)?|\btype:\s*ignore(\[[^]]*\])?", re.I)


def reason(comment: str) -> bool:
    """Does `comment` (the text after '#') say something beyond a linter directive?"""
    return bool(re.search(r"[a-z]{3}", BARE.sub("", comment), re.I))


def unexplained_imports(source: str) -> list[int]:
    """Line numbers of the imports inside functions of `source` with no reason on their line or the line above."""
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                line = lines[child.lineno - 1]
                above = lines[child.lineno - 2].strip() if child.lineno > 1 else ""
                said = "#" in line and reason(line.split("#", 1)[1])
                if not said and not (above.startswith("#") and reason(above[1:])):
                    found.append(child.lineno)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source), False)
    return found


def test_the_check_finds_an_unexplained_import_and_accepts_a_reason():
    source = ("import os\n\n\ndef f():\n    import json\n    import torch  # deferred: torch (keeps --help fast)\n"
              "    # a cycle: nas.b imports this module\n    from nas import b\n    import onnx  # noqa: F401\n\n"
              "    def g():\n        from pathlib import Path\n        return Path\n")
    assert unexplained_imports(source) == [5, 9, 12]


def test_every_function_local_import_in_the_package_says_why():
    missing = [f"{path.relative_to(ROOT)}:{line}: {path.read_text().splitlines()[line - 1].strip()}"
               for path in sorted((ROOT / "nas").rglob("*.py")) for line in unexplained_imports(path.read_text())]
    assert not missing, ("imports inside functions with no reason (a comment on the line or the line above); move "
                         "each to the top of its module unless it defers a heavy module, breaks a cycle or is "
                         "optional:\n" + "\n".join(missing))
