"""Venue knowledge lives only in ``adapters/<venue>/`` (and the simulator's venue dialects).

The scan reads every module of ``bookkeeper/`` (the installed ``bookkeeper.adapters`` is the
``adapters/`` tree, not under it; ``bookkeeper/sim/venues/`` are the simulator's dialects) and
flags, in *code*, any string literal equal to a registered venue name or starting with one
(``"kraken"``, ``"binance_usdm"``, ``"okx:..."``): a comparison ``venue == "kraken"``, a table
keyed by venue, a default venue list. Docstrings (doctests included) and comments may name
venues; ``__all__`` lists names of code, and an enum member's value names an algorithm
(``ChecksumKind.KRAKEN_CRC32_10``), not a venue.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bookkeeper.adapters import VENUES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bookkeeper"
#: the simulator's dialects speak one venue each, by design
EXEMPT_DIRS = (PACKAGE / "sim" / "venues",)
#: Files another engineer is reshaping right now ([shape]: the connection core, replay, the
#: simulator's exchange/engine). Known pending: remove each entry as its file is cleaned; a
#: listed file that is already clean fails the test, so this list only shrinks.
PENDING: frozenset[str] = frozenset()

_VENUE = re.compile(r"^(?:" + "|".join(sorted(map(re.escape, VENUES), key=len, reverse=True)) + r")(?![a-z0-9])")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of string constants that are docstrings or bare string statements."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(id(node.value))
    return out


def _all_nodes(tree: ast.AST) -> set[int]:
    """ids of string constants in ``__all__`` (names of code) and enum member values (names
    of an algorithm, like ``ChecksumKind.KRAKEN_CRC32_10``: the core branches on the member)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Enum") for b in node.bases):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
                    out.add(id(stmt.value))
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                out.update(id(c) for c in ast.walk(node.value))
    return out


def venue_literals(path: Path) -> list[str]:
    """``file:line: 'literal'`` for each venue name used in code in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstring_nodes(tree) | _all_nodes(tree)
    rel = path.relative_to(ROOT).as_posix()
    hits = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                and _VENUE.match(node.value)):
            hits.append(f"{rel}:{node.lineno}: {node.value!r}")
    return hits


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not any(d in p.parents for d in EXEMPT_DIRS))


def test_no_venue_names_in_code_outside_adapters() -> None:
    hits = [h for p in _modules() if p.relative_to(ROOT).as_posix() not in PENDING for h in venue_literals(p)]
    assert not hits, "venue knowledge outside adapters/ (move it into the venue's spec.py):\n" + "\n".join(hits)


def test_pending_files_still_have_venue_names() -> None:
    """A pending entry whose file is clean must leave the list (the list only shrinks)."""
    for rel in sorted(PENDING):
        path = ROOT / rel
        assert not path.exists() or venue_literals(path), f"{rel} is clean now: remove it from PENDING"


def test_scan_finds_a_venue_comparison_and_ignores_docstrings(tmp_path: Path) -> None:
    mod = tmp_path / "bookkeeper_probe.py"
    mod.write_text('"""Mentions "kraken" in a docstring."""\n'
                   '__all__ = ["okx_checksum"]\n'
                   'def depth(venue):\n'
                   '    """binance"""\n'
                   '    return 10 if venue == "kraken" else {"binance_usdm": 1}.get(venue)  # okx\n'
                   'X = "krakenish"\n')
    tree_hits = [h.split(": ", 1)[1] for h in _scan_outside_root(mod)]
    assert tree_hits == ["'kraken'", "'binance_usdm'"]


def _scan_outside_root(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = _docstring_nodes(tree) | _all_nodes(tree)
    return [f"{path.name}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip and _VENUE.match(n.value)]


def _is_notice_kind(node: ast.expr | None) -> bool:
    """``NoticeKind.X``, or a conditional choosing between such members."""
    if isinstance(node, ast.IfExp):
        return _is_notice_kind(node.body) and _is_notice_kind(node.orelse)
    return isinstance(node, ast.Attribute) and ast.unparse(node.value) == "NoticeKind"


def test_adapters_build_venue_notices_with_the_notice_kind_enum() -> None:
    """A notice's kind is a :class:`~bookkeeper.events.NoticeKind` member, never a string or a
    venue's own event name (unknown venue events map to ``NOTICE``/``ERROR``)."""
    bad = []
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("VenueNotice"):
                kind = next((k.value for k in node.keywords if k.arg == "kind"), None)
                ok = _is_notice_kind(kind)
                if not ok:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: kind={ast.unparse(kind) if kind else None}")
    assert not bad, "\n".join(bad)
