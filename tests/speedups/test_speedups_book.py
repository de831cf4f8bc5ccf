"""The optional C accelerator (bookkeeper/_speedups.c) against the pure-Python L2Book.

Both paths run in one process: ``bookkeeper.book._sp`` is the accelerator module or ``None``,
read at call time, so ``pure()`` switches a call to the pure-Python path. The differential
tests apply the same random operation sequences -- including hostile input: negative, NaN and
``-0.0`` sizes, int prices, non-grid floats, NaN/inf prices, lists/tuples/generators of levels,
malformed levels -- to one book per path and require identical internal state (dict contents
and order, key lists, raw dicts, poisoning), identical read results and identical exceptions
(type and message). A second test checks the accelerated book against the dict / SortedDict
reference models of tests/core.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bookkeeper.book as book_mod
from bookkeeper.book import L2Book
from bookkeeper.errors import IntegrityError
from bookkeeper.testing.reference import SortedReferenceBook
from bookkeeper.testing.strategies import book_ops

_speedups = pytest.importorskip("bookkeeper._speedups", reason="C accelerator not built")

SETTINGS = settings(max_examples=300, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def pure():
    saved = book_mod._sp
    book_mod._sp = None
    try:
        yield
    finally:
        book_mod._sp = saved


@contextlib.contextmanager
def accelerated():
    saved = book_mod._sp
    book_mod._sp = _speedups
    try:
        yield
    finally:
        book_mod._sp = saved


# ---------------------------------------------------------------------- hostile inputs
NAN = float("nan")
_PRICE_POOL = [100.0, 100.5, 101.0, 99.5, 0.1 + 0.2, 0.3, math.nextafter(100.0, 200.0), 100, 101, 7,
               1e-9, 1e15, -5.0, 0.0, -0.0, float("inf"), NAN]
_SIZE_POOL = [1.0, 2.5, 0.001, 3, 1, 0.0, -0.0, 0, -1.0, -1e-12, NAN, float("inf")]

good_prices = st.sampled_from(_PRICE_POOL[:11])
any_prices = st.sampled_from(_PRICE_POOL)
good_sizes = st.sampled_from([1.0, 2.5, 0.001, 3, 1, 0.0, -0.0, 0])
any_sizes = st.one_of(good_sizes, good_sizes, good_sizes, st.sampled_from(_SIZE_POOL))


@st.composite
def level_spec(draw, hostile: bool):
    n = draw(st.integers(0, 8))
    ps = any_prices if hostile else good_prices
    levels = [(draw(ps), draw(any_sizes if hostile else good_sizes)) for _ in range(n)]
    container = draw(st.sampled_from(["list", "list", "tuple", "gen", "listlists"]))
    return levels, container


def materialise(spec: tuple[list, str]):
    levels, container = spec
    if container == "list":
        return list(levels)
    if container == "tuple":
        return tuple(levels)
    if container == "listlists":
        return [list(lv) for lv in levels]
    return (lv for lv in levels)


def raw_for(spec):
    return [(repr(p), repr(s)) for p, s in spec[0]]


@st.composite
def ops(draw, hostile: bool = True):
    out = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["delta"] * 6 + ["delta_raw"] * 2 + ["snapshot", "snapshot_raw", "truncate",
                                                                          "clear", "malformed"]))
        if kind in ("delta", "delta_raw", "snapshot", "snapshot_raw"):
            out.append((kind, draw(level_spec(hostile)), draw(level_spec(hostile)),
                        draw(st.sampled_from(["both", "both", "bids_only", "none"]))))
        elif kind == "truncate":
            out.append((kind, draw(st.integers(0, 6))))
        elif kind == "malformed":
            bad = draw(st.sampled_from([[(1.0,)], [(1.0, 2.0, 3.0)], [1.0], [None], ["ab"], [[1.0, 2.0, 3.0]],
                                        [{"a": 1, "b": 2}], [(1.0, "x")], [([], 1.0)], [range(1)], [range(3)]]))
            out.append((kind, bad))
        else:
            out.append((kind,))
    return out


def outcome(fn) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - we compare exceptions across the two paths
        return ("raise", (type(exc).__name__, str(exc)))


def state(book: L2Book) -> str:
    return repr((list(book._bids.items()), book._bkeys, list(book._asks.items()), book._akeys,
                 None if book._bids_raw is None else list(book._bids_raw.items()),
                 None if book._asks_raw is None else list(book._asks_raw.items()), book._poisoned))


def reads(book: L2Book, n: int) -> str:
    return repr([outcome(lambda: book.top(n)), outcome(lambda: book.top(0)), outcome(lambda: book.top(10 ** 30)),
                 outcome(lambda: book.top_raw(n)), outcome(lambda: book.top_raw(25)), outcome(book.best_bid),
                 outcome(book.best_ask), outcome(book.is_crossed), outcome(book.bids), outcome(book.asks),
                 len(book), book.poisoned])


def step(book: L2Book, op) -> tuple[str, Any]:
    kind = op[0]
    if kind in ("delta", "delta_raw", "snapshot", "snapshot_raw"):
        _, bspec, aspec, which = op
        braw = araw = None
        if kind.endswith("_raw"):
            braw = raw_for(bspec) if which in ("both", "bids_only") else None
            araw = raw_for(aspec) if which == "both" else None
        fn = book.apply_delta if kind.startswith("delta") else book.apply_snapshot
        return outcome(lambda: fn(materialise(bspec), materialise(aspec), braw, araw))
    if kind == "truncate":
        return outcome(lambda: book.truncate(op[1]))
    if kind == "malformed":
        return outcome(lambda: book.apply_delta(list(op[1]), []))
    return outcome(book.clear)


@SETTINGS
@given(seq=ops(hostile=True), n=st.integers(-2, 30))
def test_c_and_pure_paths_agree_on_hostile_sequences(seq, n):
    fast = L2Book()
    slow = L2Book()
    for op in seq:
        with accelerated():
            got = step(fast, op)
            fast_reads = reads(fast, n)
        with pure():
            want = step(slow, op)
            slow_reads = reads(slow, n)
        assert repr(got) == repr(want), op
        assert state(fast) == state(slow), op
        assert fast_reads == slow_reads, op


@SETTINGS
@given(seq=ops(hostile=False), n=st.integers(0, 12))
def test_c_path_keeps_invariants_on_valid_input(seq, n):
    book = L2Book()
    with accelerated():
        for op in seq:
            step(book, op)
            if book.poisoned is None:
                book.check_integrity()


@SETTINGS
@given(ops_=book_ops(max_ops=40), n=st.integers(0, 12))
def test_c_path_matches_reference_models(ops_, n):
    with accelerated():
        book = L2Book()
        ref = SortedReferenceBook()
        for kind, bids, asks in ops_:
            (book.apply_snapshot if kind == "snapshot" else book.apply_delta)(bids, asks)
            ref.apply(kind, bids, asks)
            book.check_integrity()
            assert book.bids() == list(reversed(ref.bids.items()))
            assert book.asks() == list(ref.asks.items())
            assert book.top(n) == (list(reversed(ref.bids.items()))[:n], list(ref.asks.items())[:n])
            assert book.best_bid() == (ref.bids.peekitem(-1) if ref.bids else None)
            assert book.best_ask() == (ref.asks.peekitem(0) if ref.asks else None)
            assert book.equals(ref.bids.items(), ref.asks.items())


# ---------------------------------------------------------------------- targeted cases
def _both(fn):
    with accelerated():
        a = outcome(fn)
    with pure():
        b = outcome(fn)
    return a, b


@pytest.mark.parametrize("bad", [-1.0, NAN, -1e-12, float("-inf")])
def test_bad_size_poisons_with_the_same_message_on_both_paths(bad):
    msgs = []
    for ctx in (accelerated, pure):
        with ctx():
            book = L2Book()
            book.apply_snapshot([(100.0, 1.0)], [(101.0, 1.0)])
            with pytest.raises(IntegrityError) as exc:
                book.apply_delta([(99.0, 2.0), (98.0, bad), (97.0, 1.0)], [(102.0, 1.0)])
            msgs.append((str(exc.value), book.bids(), book.asks(), book.poisoned))
    assert msgs[0] == msgs[1]
    # [harden] every level is checked before any is applied: the rejected delta changed nothing
    # (levels before the bad one used to stay applied).
    assert msgs[0][1] == [(100.0, 1.0)]
    assert msgs[0][2] == [(101.0, 1.0)]


def test_unpack_errors_match_python():
    for make in (lambda: [(1.0,)], lambda: [(1.0, 2.0, 3.0)], lambda: [1.0], lambda: [None],
                 lambda: [iter([1.0])], lambda: [iter([1.0, 2.0, 3.0])], lambda: [[1, 2, 3]], lambda: [range(2)]):
        def run(make=make):
            book = L2Book()
            book.apply_delta(make(), [])
            return state(book)
        a, b = _both(run)
        assert a == b, make()


def test_non_float_sizes_and_prices_use_python_comparisons():
    class Weird(float):
        pass

    for levels in ([(100, 1)], [(Weird(100.0), Weird(2.0))], [(100.0, True)], [(100.0, False)],
                   [(100.0, 1), (100, 0)]):
        def run(levels=levels):
            book = L2Book()
            book.apply_snapshot([(99.0, 1.0)], [(101.0, 1.0)])
            book.apply_delta(levels, levels)
            return state(book), book.top(5)
        a, b = _both(run)
        assert repr(a) == repr(b), levels


def test_size_objects_without_order_raise_the_same_error():
    def run():
        book = L2Book()
        book.apply_delta([(100.0, "1")], [])
    a, b = _both(run)
    assert a == b and a[0] == "raise" and a[1][0] == "TypeError"


def test_unhashable_price_raises_the_same_error():
    def run():
        book = L2Book()
        book.apply_delta([([1.0], 1.0)], [])
    a, b = _both(run)
    assert a == b and a[1][0] == "TypeError"


def test_refcounts_balance_after_inserts_deletes_and_errors():
    p = float("12345.678")
    s = float("1.5")
    base = (sys.getrefcount(p), sys.getrefcount(s))
    with accelerated():
        book = L2Book()
        book.apply_snapshot([(1.0, 1.0)], [(2e9, 1.0)])
        for _ in range(1000):
            book.apply_delta([(p, s)], [(p, s)])
            book.apply_delta([(p, s)], [(p, s)])  # update in place
            book.top(5)
            book.apply_delta([(p, 0.0)], [(p, 0.0)])
            with pytest.raises(IntegrityError):
                book.apply_delta([(p, -s)], [])
            book.clear()
            book.apply_snapshot([(1.0, 1.0)], [(2e9, 1.0)], [("1", "1")], [("2e9", "1")])
            book.apply_delta([(p, s)], [(p, s)], [("x", "y")], [("x", "y")])
            book.top_raw(3)
            book.apply_delta([(p, 0.0)], [(p, 0.0)], None, None)
            book.clear()
        del book
    assert (sys.getrefcount(p), sys.getrefcount(s)) == base


def test_top_raw_without_text_raises_integrity_error_on_both_paths():
    def run():
        book = L2Book()
        book.apply_snapshot([(100.0, 1.0)], [(101.0, 1.0)], [("100", "1")], None)
        return book.top_raw(5)
    a, b = _both(run)
    assert a == b and a[0] == "raise" and a[1][0] == "IntegrityError"


def test_env_var_forces_pure_python():
    code = ("import bookkeeper.book as b, bookkeeper.checksum as c; "
            "print(b.ACCELERATED, b._sp is None, c._sp is None)")
    env = dict(os.environ, BOOKKEEPER_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
    env = {k: v for k, v in os.environ.items() if k != "BOOKKEEPER_PURE_PYTHON"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


@pytest.mark.parametrize("corrupt", ["bid", "ask"])
def test_missing_size_raises_the_same_key_error_on_both_paths(corrupt):
    def run():
        book = L2Book()
        book.apply_snapshot([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)])
        del (book._bids if corrupt == "bid" else book._asks)[99.0 if corrupt == "bid" else 101.0]
        try:
            book.top(5)
        except KeyError as exc:
            return ("KeyError", exc.args)
    a, b = _both(run)
    assert a == b and a[1][0] == "KeyError"


@pytest.mark.parametrize("n", [0, 1, 25, 63, 64, 65, 200, 10**30, -3])
def test_top_reads_agree_beyond_the_stack_snapshot(n):
    """top() snapshots up to 64 keys on the C stack and slices beyond: both agree with pure."""
    bids = [(100.0 - i * 0.5, 1.0 + i) for i in range(150)]
    asks = [(100.5 + i * 0.5, 2.0 + i) for i in range(150)]
    books = []
    for ctx in (pure, accelerated):
        with ctx():
            b = L2Book()
            b.apply_snapshot(bids, asks)
            books.append((b.top(n), b.bids(), b.asks()))
    assert repr(books[0]) == repr(books[1])
