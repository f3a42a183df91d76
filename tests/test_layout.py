"""The package's structure: layers that import only those below them, no import
cycle, and functions short enough to read at once."""

import pathlib

import pytest

from tests.support import layout

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfp_tnaf"

# Each part of the package and its layer: a module may import only parts of a
# lower layer (or, inside a sub-package, its siblings).
LAYERS = {
    "checks": 0, "numerics": 0, "fused": 0, "files": 0, "logs": 0,
    "roots": 1,
    "transforms": 2,
    "nn": 3,
    "bijectors": 4,
    "baselines": 5, "data": 5, "distribute": 5, "plotting": 5, "training": 5,
    "models": 6, "serving": 6,
    "comparison": 7, "distillation": 7,
    "runs": 8,
    "cli": 9,
    "__main__": 10,
}


def part(module: str) -> str | None:
    """`tfp_tnaf.nn.made` -> `nn`; the package root -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(known, layers) -> list[str]:
    found = []
    for importer, imported in sorted(layout.import_edges(known)):
        source, target = part(importer), part(imported)
        if source is None or source == target:
            continue  # the root re-exports everything; a sub-package imports itself
        if target is None or layers[target] >= layers[source]:
            found.append(f"{importer} imports {imported}")
    return found


def test_every_part_of_the_package_has_a_layer():
    parts = {part(m) for m in layout.modules(PACKAGE, "tfp_tnaf")} - {None}
    assert parts == set(LAYERS)


def test_modules_import_only_lower_layers():
    assert violations(layout.modules(PACKAGE, "tfp_tnaf"), LAYERS) == []


def test_there_is_no_import_cycle():
    edges = layout.import_edges(layout.modules(PACKAGE, "tfp_tnaf"))
    assert layout.cycles(layout.loading_edges(edges)) == []


def test_no_function_is_longer_than_50_lines_of_code():
    long = {f"{path.relative_to(PACKAGE.parent)}:{name}": n
            for path in sorted(PACKAGE.rglob("*.py"))
            for name, n in layout.function_lengths(path).items() if n > 50}
    assert long == {}


@pytest.fixture
def tangled(tmp_path):
    """A package with the faults these tests exist for: `nn` importing from
    `bijectors` while `bijectors/__init__` imports `nn` (a cycle only import
    order hides), and a 51-line function."""
    root = tmp_path / "pkg"
    for folder in ("nn", "bijectors"):
        (root / folder).mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "nn" / "__init__.py").write_text("")
    (root / "nn" / "block.py").write_text("from pkg.bijectors.monotone import f\n")
    (root / "bijectors" / "__init__.py").write_text("from pkg.bijectors import flow\n")
    (root / "bijectors" / "monotone.py").write_text(
        "def f():\n    '''Doc.'''\n" + "".join(f"    x{i} = {i}\n" for i in range(51)))
    (root / "bijectors" / "flow.py").write_text("from .. import nn\nfrom ..nn import block\n")
    return root


def test_the_checks_find_upward_imports_cycles_and_long_functions(tangled):
    known = layout.modules(tangled, "pkg")
    assert violations(known, {"nn": 3, "bijectors": 4}) == [
        "pkg.nn.block imports pkg.bijectors.monotone"]
    assert layout.cycles(layout.loading_edges(layout.import_edges(known))) == [
        ["pkg.bijectors", "pkg.bijectors.flow", "pkg.nn.block"]]
    assert layout.function_lengths(tangled / "bijectors" / "monotone.py") == {"f:1": 51}
