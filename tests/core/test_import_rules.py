"""The core imports only the stdlib, msgspec and sortedcontainers (style.md §1).

An AST walk over every top-level ``bookkeeper/*.py`` core module: no I/O libraries, no clock
or randomness, no drivers or adapters.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import bookkeeper

PKG = Path(bookkeeper.__file__).parent
CORE = ["types", "errors", "capabilities", "events", "actions", "book", "checksum", "sequencer", "splicing",
        "integrity", "recovery", "session", "view", "ports", "policy", "ledger", "account", "connection", "timers"]
CORE_FILES = [PKG / f"{name}.py" for name in CORE if (PKG / f"{name}.py").exists()]
THIRD_PARTY_ALLOWED = {"msgspec", "sortedcontainers"}
#: Function-scoped (lazy) imports tolerated off the hot path, by (module, import). ``L2Book.to_numpy``
#: imports numpy lazily by design; a *module-level* numpy import is still a failure.
LAZY_ALLOWED = {("book", "numpy")}
BANNED = {"asyncio", "time", "random", "ccxt", "websockets", "bookkeeper.io", "bookkeeper.adapters",
          "bookkeeper.testing", "bookkeeper.sim", "adapters"}


def _function_scoped(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ids.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return ids


def imported_modules(path: Path, *, lazy: bool | None = None) -> list[tuple[int, str]]:
    """Absolute dotted names of every import in ``path`` (relative ones resolved).
    ``lazy=True``: only imports inside functions; ``False``: only the others; ``None``: all."""
    tree = ast.parse(path.read_text(), filename=str(path))
    scoped = _function_scoped(tree)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if lazy is not None and isinstance(node, (ast.Import, ast.ImportFrom)) and (id(node) in scoped) != lazy:
            continue
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "bookkeeper" if node.level == 1 else "<outside bookkeeper>"
                mod = f"{base}.{node.module}" if node.module else base
                if node.module is None:
                    out.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
                    continue
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
    return out


def is_banned(name: str) -> bool:
    return any(name == b or name.startswith(b + ".") for b in BANNED)


def is_allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top == "bookkeeper":
        return not is_banned(name)
    return top in sys.stdlib_module_names or top in THIRD_PARTY_ALLOWED or top == "__future__"


def test_core_modules_found():
    names = {p.stem for p in CORE_FILES}
    assert {"types", "errors", "capabilities", "events", "actions", "book", "checksum", "sequencer", "recovery",
            "session", "ports"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.stem)
def test_core_module_imports_only_stdlib_msgspec_sortedcontainers(path):
    bad = [(line, name) for line, name in imported_modules(path, lazy=False) if is_banned(name) or not is_allowed(name)]
    bad += [(line, name) for line, name in imported_modules(path, lazy=True)
            if is_banned(name) or not (is_allowed(name) or (path.stem, name.split(".")[0]) in LAZY_ALLOWED)]
    assert bad == [], f"{path.name} imports forbidden modules: {bad}"


def test_lazy_allowlist_entries_are_still_needed():
    for stem, name in LAZY_ALLOWED:
        lazy = [n for _, n in imported_modules(PKG / f"{stem}.py", lazy=True)]
        assert name in lazy, f"drop ({stem!r}, {name!r}) from LAZY_ALLOWED"
        assert name not in [n for _, n in imported_modules(PKG / f"{stem}.py", lazy=False)]


def test_checker_flags_forbidden_imports(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("import asyncio\nfrom time import monotonic\nimport ccxt.async_support\n"
                   "from .io import stream\nfrom . import adapters\nimport numpy\nimport random as r\n"
                   "import json\nfrom sortedcontainers import SortedDict\nfrom .book import L2Book\n")
    bad = [name for _, name in imported_modules(src) if is_banned(name) or not is_allowed(name)]
    assert bad == ["asyncio", "time", "ccxt.async_support", "bookkeeper.io", "bookkeeper.adapters", "numpy", "random"]
