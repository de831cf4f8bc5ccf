"""okx_checksum: the C fast path (bookkeeper._speedups.okx_crc) against the pure-Python code and
an independent straight-from-the-doc implementation, bit-exact, including inputs the C path
declines (it returns NotImplemented and the Python code runs)."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bookkeeper.checksum as ck
from bookkeeper.checksum import okx_checksum

_speedups = pytest.importorskip("bookkeeper._speedups", reason="C accelerator not built")


@contextlib.contextmanager
def path(sp):
    saved = ck._sp
    ck._sp = sp
    try:
        yield
    finally:
        ck._sp = saved


def reference(bids, asks) -> int:
    fields = []
    for i in range(25):
        if i < len(bids):
            fields += list(bids[i])
        if i < len(asks):
            fields += list(asks[i])
    v = zlib.crc32(":".join(fields).encode())
    return v - 2**32 if v >= 2**31 else v


def both(bids, asks):
    out = []
    for sp in (_speedups, None):
        with path(sp):
            try:
                out.append(("ok", okx_checksum(bids, asks)))
            except Exception as exc:  # noqa: BLE001
                out.append(("raise", type(exc).__name__, str(exc)))
    return out


def test_known_vectors_on_both_paths():
    for sp in (_speedups, None):
        with path(sp):
            assert okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")]) == -1881014294
            assert okx_checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")]) == 831078360
            assert okx_checksum([], []) == 0


text = st.text(alphabet="0123456789.e-", min_size=1, max_size=12)
levels = st.lists(st.tuples(text, text), max_size=40)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(bids=levels, asks=levels, as_lists=st.booleans(), as_tuple=st.booleans())
def test_c_path_is_bit_exact(bids, asks, as_lists, as_tuple):
    if as_lists:
        bids = [list(lv) for lv in bids]
    if as_tuple:
        asks = tuple(asks)
    a, b = both(bids, asks)
    assert a == b == ("ok", reference(bids, asks))


@pytest.mark.parametrize("bids,asks", [
    ([("100", "1", "x")], [("101", "1")]),        # 3 fields: Python extends them all
    ([("10€", "1")], [("101", "1")]),             # non-ASCII text
    ([("100", 1)], [("101", "1")]),               # non-str field -> TypeError from join
    ([("\ud800", "1")], []),                      # lone surrogate -> UnicodeEncodeError
    ([("1", "2")] * 30, [("3", "4")] * 2),        # longer than 25
])
def test_inputs_outside_the_fast_path_match_python(bids, asks):
    a, b = both(bids, asks)
    assert a == b
    if a[0] == "ok":
        assert a[1] == reference(bids, asks)


def test_generator_input_fails_the_same_way():
    outs = []
    for sp in (_speedups, None):
        with path(sp):
            try:
                okx_checksum((lv for lv in [("1", "2")]), [])
            except Exception as exc:  # noqa: BLE001
                outs.append((type(exc).__name__, str(exc)))
    assert outs[0] == outs[1]
