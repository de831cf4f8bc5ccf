"""The C accelerators' shape: one switch, two optional modules, safe init and re-entry.

* ``BOOKKEEPER_PURE_PYTHON`` is read in ONE place (``bookkeeper/_accel.py``) and, set, keeps
  every C module out of the process (checked in a subprocess through ``sys.modules``).
* ``bookkeeper._speedups`` (generic book loops) and ``bookkeeper.adapters.binance._fastdepth``
  (the Binance decoder) use PEP 489 multi-phase init with module state: importing again after
  ``del sys.modules[...]`` gives an independent, working instance, and so does a
  subinterpreter.
* The fused Binance call keeps its decoded levels per call: Python code it runs (a dict
  comparison) may call it again without clobbering the outer call's levels.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import bookkeeper.book as book_mod
from bookkeeper import _accel
from bookkeeper.book import L2Book

SPEEDUPS = "bookkeeper._speedups"
FASTDEPTH = "bookkeeper.adapters.binance._fastdepth"
ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip(SPEEDUPS, reason="C accelerator not built")
pytest.importorskip(FASTDEPTH, reason="C decoder not built")


def _side(levels: Sequence[tuple[str, str]]) -> str:
    return ",".join(f'["{p}","{s}"]' for p, s in levels)


def _frame(first: int, last: int, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]] = ()) -> bytes:
    return (f'{{"e":"depthUpdate","E":1,"s":"X","U":{first},"u":{last},'
            f'"b":[{_side(bids)}],"a":[{_side(asks)}]}}').encode()


def _containers(book: L2Book) -> tuple:
    return book._bids, book._bkeys, book._asks, book._akeys  # type: ignore[attr-defined]


@contextmanager
def _fresh_modules(*names: str) -> Iterator[None]:
    """Drop ``names`` from sys.modules for the block; put the originals back after it."""
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    try:
        yield
    finally:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


# ---------------------------------------------------------------------- the one switch
def _names_the_switch(path: Path) -> bool:
    """``path``'s code (not its prose) holds the variable's name as a string of its own."""
    tree = ast.parse(path.read_text())
    return any(isinstance(n, ast.Constant) and n.value == _accel.ENV_VAR for n in ast.walk(tree))


def test_the_switch_is_read_in_one_place() -> None:
    readers = sorted(str(p.relative_to(ROOT)) for d in ("bookkeeper", "adapters") for p in (ROOT / d).rglob("*.py")
                     if _names_the_switch(p))
    assert readers == ["bookkeeper/_accel.py"]


_PROBE = """
import importlib.machinery, json, sys
import bookkeeper, bookkeeper.book as b, bookkeeper.checksum as c
from bookkeeper.adapters import get_adapter
from bookkeeper.adapters.binance import parse as P
from bookkeeper.session import BookSession
a = get_adapter("binance")
ev = a.new_decoder().decode(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.5","2"]],"a":[]}', 0)
ext = tuple(importlib.machinery.EXTENSION_SUFFIXES)
c_mods = sorted(n for n, m in list(sys.modules.items())
                if n.startswith("bookkeeper") and str(getattr(m, "__file__", "")).endswith(ext))
# the handles of the pure path: no C module, and the fused fast path is the pure-Python twin
print(json.dumps({"c_modules": c_mods, "handles": [b._sp is None, c._sp is None, P._fast_depth is None,
                  P.fused_depth is P.fused_depth_py, a.fused is P.fused_depth_py], "bids": ev[0].bids}))
"""


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("value", ["1", "yes"])
def test_switch_on_imports_no_c_module(value: str) -> None:
    got = _probe(dict(os.environ, BOOKKEEPER_PURE_PYTHON=value))
    assert got == {"c_modules": [], "handles": [True] * 5, "bids": [[1.5, 2.0]]}


@pytest.mark.parametrize("value", [None, "", "0"])
def test_switch_off_loads_both_c_modules(value: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOOKKEEPER_PURE_PYTHON"}
    if value is not None:
        env["BOOKKEEPER_PURE_PYTHON"] = value
    got = _probe(env)
    assert got == {"c_modules": [SPEEDUPS, FASTDEPTH], "handles": [False] * 5, "bids": [[1.5, 2.0]]}


def test_load_honours_the_switch_and_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_accel, "PURE_PYTHON", False)
    assert _accel.load(SPEEDUPS) is importlib.import_module(SPEEDUPS)
    assert _accel.load("bookkeeper._no_such_accelerator") is None
    monkeypatch.setattr(_accel, "PURE_PYTHON", True)
    with _fresh_modules(SPEEDUPS):
        assert _accel.load(SPEEDUPS) is None
        assert SPEEDUPS not in sys.modules  # not even imported


def test_the_binance_decoder_needs_the_generic_module() -> None:
    """Each extension is optional: _fastdepth without _speedups fails to import, and load()
    answers None so the pure path runs (e.g. a build where only one compiled)."""
    with _fresh_modules(SPEEDUPS, FASTDEPTH):
        sys.modules[SPEEDUPS] = None  # type: ignore[assignment]  # "not built"
        with pytest.raises(ImportError):
            importlib.import_module(FASTDEPTH)
        assert _accel.load(FASTDEPTH) is None


# ---------------------------------------------------------------------- module init
def test_speedups_exports_its_c_api_capsule() -> None:
    cap = importlib.import_module(SPEEDUPS)._C_API
    assert type(cap).__name__ == "PyCapsule"
    assert '"bookkeeper._speedups._C_API"' in repr(cap)


def _apply_both_ways(sp: Any) -> tuple:
    """A delta through ``sp.apply_levels`` and through pure Python: identical containers."""
    bids, asks = [(100.0, 1.0), (99.5, 2.0), (99.0, 0.0)], [(101.0, 3.0), (100.5, 0.0)]
    out = []
    for mod in (sp, None):
        book = L2Book()
        book.apply_snapshot([(99.0, 5.0), (98.0, 1.0)], [(100.5, 1.0), (102.0, 1.0)])
        bs, bk, as_, ak = _containers(book)
        if mod is None:
            saved, book_mod._sp = book_mod._sp, None
            try:
                book.apply_delta(bids, asks)
            finally:
                book_mod._sp = saved
        else:
            assert mod.apply_levels(bs, bk, bids, as_, ak, asks) is None
        out.append((list(bs.items()), list(bk), list(as_.items()), list(ak)))
    assert out[0] == out[1]
    return out[0]


def test_reimport_gives_an_independent_working_instance() -> None:
    first_sp = importlib.import_module(SPEEDUPS)
    first_fd = importlib.import_module(FASTDEPTH)
    frame = _frame(11, 12, [("100.5", "2"), ("99", "0")], [("102", "1")])
    with _fresh_modules(SPEEDUPS, FASTDEPTH):
        second_fd = importlib.import_module(FASTDEPTH)  # imports a new _speedups too
        second_sp = sys.modules[SPEEDUPS]
        assert second_sp is not first_sp and second_fd is not first_fd
        assert second_sp._C_API is not first_sp._C_API
        assert _apply_both_ways(second_sp) == _apply_both_ways(first_sp)
        results = []
        for fd in (second_fd, first_fd):
            book = L2Book()
            book.apply_snapshot([(99.0, 1.0)], [(101.0, 1.0)])
            results.append((fd.binance_depth_apply(frame, "X", 1, 10, *_containers(book)), book.top(5)))
        assert results[0] == results[1] == ((11, 12), ([(100.5, 2.0)], [(101.0, 1.0), (102.0, 1.0)]))
    # the second instances are gone from sys.modules and collected: the first ones still work
    del second_fd, second_sp
    gc.collect()
    assert first_fd.binance_depth(frame, 5, importlib.import_module("bookkeeper.events").BookDelta).last_seq == 12
    _apply_both_ways(first_sp)


def test_both_modules_work_in_a_subinterpreter(tmp_path: Path) -> None:
    """Each interpreter gets its own module instances (run in a subprocess: cheap, isolated)."""
    pytest.importorskip("_testcapi")
    out = tmp_path / "sub.json"
    sub = f"""
import json
from bookkeeper.adapters import get_adapter
from bookkeeper.adapters.binance import parse as P
from bookkeeper.book import L2Book
import bookkeeper.book as B
book = L2Book()
book.apply_snapshot([(99.0, 1.0)], [(101.0, 1.0)])
r = P.fused_depth({_frame(11, 12, [("100.5", "2")], [("102", "1")])!r}, "X", 1, 10,
                  book._bids, book._bkeys, book._asks, book._akeys)
book.apply_delta([(98.0, 4.0)], [(101.0, 0.0)])
open({str(out)!r}, "w").write(json.dumps([B._sp is not None, list(r), book.top(5)]))
"""
    main = f"""
import _testcapi, bookkeeper.book
from bookkeeper.adapters.binance import parse
assert _testcapi.run_in_subinterp({sub!r}) == 0
assert _testcapi.run_in_subinterp({sub!r}) == 0  # and again, after the first one ended
"""
    env = {k: v for k, v in os.environ.items() if k != _accel.ENV_VAR}
    subprocess.run([sys.executable, "-c", main], env=env, check=True, capture_output=True, text=True)
    assert json.loads(out.read_text()) == [True, [11, 12], [[[100.5, 2.0], [99.0, 1.0], [98.0, 4.0]], [[102.0, 1.0]]]]


# ---------------------------------------------------------------------- re-entry
def test_fused_call_reentered_from_a_dict_comparison_keeps_its_levels() -> None:
    """The fused call's decoded levels used to sit in a static buffer: a dict comparison that
    runs Python code calling it again (here: a key whose hash collides with a price) made the
    outer call apply the INNER frame's levels. Now each call owns its levels."""
    fused = importlib.import_module(FASTDEPTH).binance_depth_apply
    inner = _frame(1, 2, [(f"{50 + i * 0.01:.2f}", "1") for i in range(300)])  # > the inline buffer
    inner_book: tuple[dict, list, dict, list] = ({}, [], {}, [])

    class Colliding:
        calls = 0

        def __hash__(self) -> int:
            return hash(100.5)

        def __eq__(self, other: object) -> bool:
            Colliding.calls += 1
            if Colliding.calls == 1:
                assert fused(inner, "X", 1, 0, *inner_book) == (1, 2)
            return False

    key = Colliding()
    bsizes: dict = {key: 1.0}
    bkeys: list = []
    asizes: dict = {}
    akeys: list = []
    outer = _frame(11, 12, [("100.5", "2"), ("99", "3")], [("101", "1"), ("102", "4")])
    assert fused(outer, "X", 1, 10, bsizes, bkeys, asizes, akeys) == (11, 12)
    assert Colliding.calls == 1
    assert (bsizes, bkeys, asizes, akeys) == ({key: 1.0, 100.5: 2.0, 99.0: 3.0}, [99.0, 100.5],
                                              {101.0: 1.0, 102.0: 4.0}, [-102.0, -101.0])
    assert len(inner_book[0]) == len(inner_book[1]) == 300
