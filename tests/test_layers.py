"""The layers hold: no module imports a layer above its own, and product code never imports the
fakes or the tests. Read from the source (every import statement, also those inside functions),
so a new backward import fails here before a reader trips over it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import its own package and any package of a lower layer.
# `core` (API conventions, shared helpers) and `httpengine` (the request engine) are both at the
# bottom and independent of each other; `cryptosatx` (settings, urls, celery app, runner, health)
# is the top, which alone may import every app; `web` (the dashboard) sits just below it.
LAYERS: dict[str, int] = {
    "core": 0,
    "httpengine": 0,
    "market": 1,
    "scanners": 2,
    "scoring": 3,
    "tracking": 4,
    "alerts": 5,
    "web": 6,
    "cryptosatx": 7,
}
NOT_PRODUCT = ("fakes", "tests", "bench")


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
    return found


def product_modules() -> list[Path]:
    return sorted(
        path
        for package in LAYERS
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_the_layer_table_names_every_product_package() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - set(LAYERS) - set(NOT_PRODUCT) == set()


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    upward = [
        f"line {line}: {package} imports {imported}"
        for line, imported in imported_packages(path)
        if imported != package
        and imported in LAYERS
        and (LAYERS[imported] > LAYERS[package] or LAYERS[imported] == LAYERS[package])
    ]
    assert upward == []


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_product_code_never_imports_the_fakes_or_the_tests(path: Path) -> None:
    assert [
        f"line {line}: imports {imported}"
        for line, imported in imported_packages(path)
        if imported in NOT_PRODUCT
    ] == []
