"""Reads the package's structure from its source: imports between modules and
the length of every function (nothing is imported or run)."""

import ast
import pathlib


def modules(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every `.py` file of the package at `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    assert package in found, f"{root} holds no package {package!r}"
    return found


def _imported(node: ast.AST, module: str, is_package: bool, known: dict) -> list[str]:
    """The modules of the package one import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in _roots(known)]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[:len(anchor) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    if base.split(".")[0] not in _roots(known):
        return []
    names = [f"{base}.{a.name}" for a in node.names]
    return [name if name in known else base for name in names]


def _roots(known: dict) -> set[str]:
    return {name.split(".")[0] for name in known}


def import_edges(known: dict[str, pathlib.Path]) -> set[tuple[str, str]]:
    """`(importer, imported)` for every import of the package's own modules,
    at module level or inside functions."""
    edges = set()
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            for target in _imported(node, module, is_package, known):
                if target != module:
                    edges.add((module, target))
    return edges


def loading_edges(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The edges of what an import runs: importing `a.b.c` also runs the
    `__init__` of `a.b` (and `a`), except those the importer sits inside,
    which are already running."""
    loaded = set()
    for importer, imported in edges:
        parts = imported.split(".")
        for k in range(1, len(parts) + 1):
            package = ".".join(parts[:k])
            if package != importer and not importer.startswith(package + "."):
                loaded.add((importer, package))
    return loaded


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The import cycles of a graph (each as the list of its modules), by Tarjan's
    strongly connected components."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def function_lengths(path: pathlib.Path) -> dict[str, int]:
    """`name:line` -> lines of code of every function in the file: its body
    without its docstring, blank lines and comment-only lines."""
    source = path.read_text()
    lines = source.splitlines()
    lengths = {}
    for node in ast.walk(ast.parse(source, str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body = body[1:]
        if not body:
            continue
        code = [line for line in lines[body[0].lineno - 1:node.end_lineno]
                if line.strip() and not line.strip().startswith("#")]
        lengths[f"{node.name}:{node.lineno}"] = len(code)
    return lengths
