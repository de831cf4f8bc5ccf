"""The import directions of style.md §1: import-linter contracts (pyproject.toml) plus an
AST scan for adapters/, which lives outside the bookkeeper/ directory."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_import_linter_contracts_hold() -> None:
    out = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


@pytest.mark.parametrize("path", sorted((ROOT / "adapters").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_import_only_the_core(path: pathlib.Path) -> None:
    bad = {
        name for name in _imports(path)
        if name.startswith(("bookkeeper.io", "bookkeeper.testing", "bookkeeper.sim", "bookkeeper.cli", "asyncio", "websockets", "ccxt"))
        or name == "adapters" or name.startswith("adapters.")
    }
    assert not bad, f"{path} imports {sorted(bad)}"


@pytest.mark.parametrize("kit", ["testing", "sim"])
def test_testing_kit_and_simulator_never_import_adapters(kit: str) -> None:
    # The simulator is an independent implementation of the venues' wire formats: running our
    # adapters against it is only a real test if it shares no code with them.
    for path in (ROOT / "bookkeeper" / kit).rglob("*.py"):
        bad = {n for n in _imports(path) if n.startswith("bookkeeper.adapters")}
        assert not bad, f"{path} imports {sorted(bad)}"
