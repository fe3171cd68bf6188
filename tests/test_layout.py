"""The package's structure: imports run one way, and functions stay short."""

import ast
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "gar_sklearn"
MAX_FUNCTION_LINES = 60


def _module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module, node):
    """The gar_sklearn modules an import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("gar_sklearn")]
    if node.level == 0:
        base = node.module or ""
        if not base.startswith("gar_sklearn"):
            return []
    else:
        package = module.split(".")
        is_package = (PACKAGE.parent / Path(*package) / "__init__.py").exists()
        anchor = package if is_package else package[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    names = []
    for alias in node.names:  # `from . import x` may import a submodule x
        candidate = f"{base}.{alias.name}"
        path = PACKAGE.parent / Path(*candidate.split("."))
        names.append(candidate if path.with_suffix(".py").exists() or path.is_dir() else base)
    return names


def import_graph():
    """``{module: set of gar_sklearn modules it imports}``, function-level imports included."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(m for m in _resolve(name, node) if m in modules and m != name)
        graph[name] = edges
    return graph


def _cycle(graph):
    """A cycle of the graph as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_the_package_have_no_cycle():
    graph = import_graph()
    assert "gar_sklearn._training._net" in graph["gar_sklearn._training._build"]
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize(
    "low, high",
    [
        ("gar_sklearn._persistence", "gar_sklearn._multi_attribute"),
        ("gar_sklearn._persistence", "gar_sklearn._training._net"),
        ("gar_sklearn._training._build", "gar_sklearn._multi_attribute"),
        ("gar_sklearn._training._build", "gar_sklearn._fusion"),
        ("gar_sklearn.backbones._registry", "gar_sklearn._training._net"),
    ],
)
def test_dependencies_run_one_way(low, high):
    """A module never reaches, directly or not, a module built on top of it."""
    graph, seen, todo = import_graph(), set(), [low]
    while todo:
        node = todo.pop()
        for nxt in graph[node] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert high not in seen


def _code_lines(node):
    """Lines of a function that hold code: no docstring, comment or blank line."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    lines = set()
    for stmt in body:
        for sub in ast.walk(stmt):
            if hasattr(sub, "lineno"):
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def test_no_function_is_longer_than_sixty_lines_of_code():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                code = [n for n in _code_lines(node) if source[n - 1].strip()[:1] not in ("#", "")]
                if len(code) > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({len(code)})")
    assert not long, "functions over 60 lines of code: " + ", ".join(long)
