"""L2Book: unit tests and a differential property test against naive reference models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bookkeeper.actions import SyncState
from bookkeeper.book import L2Book
from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.errors import IntegrityError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.session import BookSession
from bookkeeper.testing.reference import SortedReferenceBook
from bookkeeper.testing.strategies import book_ops, prices, raw_of, sizes

SETTINGS = settings(max_examples=200, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def make_book(bids=(), asks=(), bids_raw=None, asks_raw=None) -> L2Book:
    book = L2Book()
    book.apply_snapshot(list(bids), list(asks), bids_raw, asks_raw)
    return book


# ---------------------------------------------------------------------- basics
def test_empty_book_has_no_best_levels():
    book = L2Book()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert len(book) == 0
    assert book.top(5) == ([], [])
    assert not book.is_crossed()
    book.check_integrity()


def test_snapshot_sides_are_sorted_best_first():
    book = make_book([(98.0, 2.0), (100.0, 1.0), (99.0, 3.0)], [(103.0, 1.0), (101.0, 5.0), (102.0, 2.0)])
    assert book.bids() == [(100.0, 1.0), (99.0, 3.0), (98.0, 2.0)]
    assert book.asks() == [(101.0, 5.0), (102.0, 2.0), (103.0, 1.0)]
    assert (book.bid_count, book.ask_count, len(book)) == (3, 3, 6)
    book.check_integrity()


def test_snapshot_skips_zero_size_levels():
    book = make_book([(100.0, 0.0), (99.0, 1.0)], [(101.0, 0.0)])
    assert book.bids() == [(99.0, 1.0)]
    assert book.asks() == []


def test_snapshot_replaces_previous_contents():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    book.apply_snapshot([(90.0, 4.0)], [(95.0, 2.0)])
    assert book.bids() == [(90.0, 4.0)]
    assert book.asks() == [(95.0, 2.0)]


def test_delta_inserts_updates_and_keeps_order():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    book.apply_delta([(99.5, 2.0), (100.0, 7.0), (100.5, 3.0)], [(102.0, 4.0), (101.5, 0.5)])
    assert book.bids() == [(100.5, 3.0), (100.0, 7.0), (99.5, 2.0)]
    assert book.asks() == [(101.0, 1.0), (101.5, 0.5), (102.0, 4.0)]
    book.check_integrity()


def test_zero_size_deletes_level_exactly():
    book = make_book([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0), (102.0, 2.0)])
    book.apply_delta([(100.0, 0.0)], [(102.0, 0.0)])
    assert book.bids() == [(99.0, 2.0)]
    assert book.asks() == [(101.0, 1.0)]
    book.check_integrity()


def test_zero_delete_does_not_touch_neighbouring_level():
    # 100.1 and 100.10000000000001 are different floats: only the exact one goes.
    near = math.nextafter(100.1, 200.0)
    book = make_book([(100.1, 1.0), (near, 2.0)], [])
    book.apply_delta([(100.1, 0.0)], [])
    assert book.bids() == [(near, 2.0)]


def test_delete_of_absent_level_is_a_noop():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    book.apply_delta([(50.0, 0.0)], [(150.0, 0.0)])
    assert book.bids() == [(100.0, 1.0)]
    assert book.asks() == [(101.0, 1.0)]
    assert len(book) == 2
    book.check_integrity()


def test_negative_zero_size_deletes():
    book = make_book([(100.0, 1.0)], [])
    book.apply_delta([(100.0, -0.0)], [])
    assert book.bids() == []
    assert book.poisoned is None


def test_top_n_returns_best_levels_per_side():
    book = make_book([(float(p), 1.0) for p in range(90, 100)], [(float(p), 2.0) for p in range(101, 111)])
    assert book.top(3) == ([(99.0, 1.0), (98.0, 1.0), (97.0, 1.0)], [(101.0, 2.0), (102.0, 2.0), (103.0, 2.0)])
    assert book.top(0) == ([], [])
    bids, asks = book.top(50)
    assert len(bids) == 10 and len(asks) == 10
    assert bids[-1] == (90.0, 1.0) and asks[-1] == (110.0, 2.0)


def test_best_bid_and_ask():
    book = make_book([(99.0, 1.0), (100.0, 2.5)], [(101.5, 0.25), (103.0, 1.0)])
    assert book.best_bid() == (100.0, 2.5)
    assert book.best_ask() == (101.5, 0.25)


def test_crossed_book_is_reported_not_repaired():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    book.apply_delta([(102.0, 3.0)], [])
    assert book.is_crossed()
    # Nothing was removed to "uncross" it.
    assert book.bids() == [(102.0, 3.0), (100.0, 1.0)]
    assert book.asks() == [(101.0, 1.0)]
    book.check_integrity()


def test_locked_book_counts_as_crossed():
    book = make_book([(100.0, 1.0)], [(100.0, 1.0)])
    assert book.is_crossed()


def test_one_sided_book_is_not_crossed():
    assert not make_book([(100.0, 1.0)], []).is_crossed()
    assert not make_book([], [(100.0, 1.0)]).is_crossed()


def test_truncate_keeps_best_depth_levels_per_side():
    book = make_book([(float(p), 1.0) for p in range(95, 100)], [(float(p), 1.0) for p in range(101, 106)])
    book.truncate(2)
    assert book.bids() == [(99.0, 1.0), (98.0, 1.0)]
    assert book.asks() == [(101.0, 1.0), (102.0, 1.0)]
    book.check_integrity()


def test_truncate_larger_than_book_is_a_noop():
    book = make_book([(99.0, 1.0)], [(101.0, 1.0)])
    book.truncate(10)
    assert book.bids() == [(99.0, 1.0)] and book.asks() == [(101.0, 1.0)]


def test_truncate_drops_raw_strings_with_levels():
    book = make_book([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 2.0)],
                     [("99", "1"), ("98", "2")], [("101", "1"), ("102", "2")])
    book.truncate(1)
    assert book.top_raw(5) == ([("99", "1")], [("101", "1")])
    book.check_integrity()


# ---------------------------------------------------------------------- raw strings
def test_raw_strings_kept_per_level_best_first():
    book = make_book([(3366.0, 6.0), (3366.1, 7.0)], [(3368.0, 8.0), (3366.8, 9.0)],
                     [("3366", "6"), ("3366.1", "7")], [("3368", "8"), ("3366.8", "9")])
    assert book.top_raw(25) == ([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])


def test_raw_strings_follow_updates_and_deletes():
    book = make_book([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0)], [("100.0", "1.0"), ("99.0", "1.0")], [("101.0", "1.0")])
    book.apply_delta([(100.0, 2.5), (99.0, 0.0), (98.0, 4.0)], [(101.0, 0.0), (102.0, 3.0)],
                     [("100.0", "2.50"), ("99.0", "0"), ("98.0", "4")], [("101.0", "0"), ("102.0", "3")])
    assert book.top_raw(5) == ([("100.0", "2.50"), ("98.0", "4")], [("102.0", "3")])
    book.check_integrity()


def test_top_raw_without_strings_raises_integrity_error():
    book = make_book([(100.0, 1.0)], [])
    with pytest.raises(IntegrityError):
        book.top_raw(5)


def test_delete_without_raw_text_also_drops_raw_string():
    book = make_book([(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0)], [("100", "1"), ("99", "1")], [("101", "1")])
    book.apply_delta([(100.0, 0.0)], [])  # a delete sent without text
    book.check_integrity()  # raises: "raw strings kept for levels that are gone"
    assert book.top_raw(5) == ([("99", "1")], [("101", "1")])


def test_update_without_raw_text_does_not_keep_stale_raw_string():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)], [("100", "1")], [("101", "1")])
    book.apply_delta([(100.0, 2.0)], [])
    # The level's size is 2 now; its only stored text says "1": it must not be served.
    with pytest.raises(IntegrityError):
        book.top_raw(5)


# ---------------------------------------------------------------------- poisoning
@pytest.mark.parametrize("bad", [-1.0, float("nan"), -1e-12])
def test_bad_delta_size_poisons_book_until_snapshot(bad):
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    with pytest.raises(IntegrityError):
        book.apply_delta([(99.0, bad)], [])
    assert book.poisoned is not None
    with pytest.raises(IntegrityError, match="poisoned"):
        book.apply_delta([(98.0, 1.0)], [])
    assert book.best_bid() == (100.0, 1.0)  # the refused delta changed nothing
    book.apply_snapshot([(97.0, 1.0)], [(103.0, 1.0)])
    assert book.poisoned is None
    book.apply_delta([(98.0, 1.0)], [])
    assert book.bids() == [(98.0, 1.0), (97.0, 1.0)]


def test_bad_ask_size_poisons_book():
    book = make_book([], [(101.0, 1.0)])
    with pytest.raises(IntegrityError):
        book.apply_delta([], [(101.0, -2.0)])
    assert book.poisoned is not None


def test_bad_size_in_raw_path_poisons_book():
    book = make_book([(100.0, 1.0)], [], [("100", "1")], [])
    with pytest.raises(IntegrityError):
        book.apply_delta([(100.0, float("nan"))], [], [("100", "nan")], None)
    assert book.poisoned is not None
    with pytest.raises(IntegrityError):
        book.apply_delta([], [], [], [])


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_snapshot_size_leaves_book_unchanged_and_poisoned(bad):
    # [harden] a rejected input changes no level (it used to empty the book).
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    with pytest.raises(IntegrityError):
        book.apply_snapshot([(99.0, 1.0)], [(102.0, bad)])
    assert (book.bids(), book.asks()) == ([(100.0, 1.0)], [(101.0, 1.0)])
    assert book.poisoned is not None
    with pytest.raises(IntegrityError):
        book.apply_delta([(98.0, 1.0)], [])


def test_clear_lifts_poisoning():
    book = L2Book()
    with pytest.raises(IntegrityError):
        book.apply_delta([(1.0, -1.0)], [])
    book.clear()
    assert book.poisoned is None
    book.apply_delta([(1.0, 1.0)], [])
    assert book.bids() == [(1.0, 1.0)]


# ---------------------------------------------------------------------- check_integrity
def test_check_integrity_catches_key_out_of_step_with_sizes():
    book = make_book([(100.0, 1.0)], [(101.0, 1.0)])
    book._bids[99.0] = 1.0  # corrupt: size without a key
    with pytest.raises(IntegrityError, match="bid keys"):
        book.check_integrity()


def test_check_integrity_catches_unsorted_ask_keys():
    book = make_book([], [(101.0, 1.0), (102.0, 1.0)])
    book._akeys.reverse()
    with pytest.raises(IntegrityError, match="ask keys"):
        book.check_integrity()


def test_check_integrity_catches_non_positive_size():
    book = make_book([(100.0, 1.0)], [])
    book._bids[100.0] = 0.0
    with pytest.raises(IntegrityError, match="size 0.0"):
        book.check_integrity()


def test_check_integrity_catches_orphan_raw_string():
    book = make_book([(100.0, 1.0)], [], [("100", "1")], [])
    book._bids_raw[55.0] = ("55", "1")
    with pytest.raises(IntegrityError, match="raw strings"):
        book.check_integrity()


# ---------------------------------------------------------------------- to_numpy / equals
def test_to_numpy_shape_and_nan_padding():
    book = make_book([(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0)])
    arr = book.to_numpy(3)
    assert arr.shape == (2, 3, 2)
    assert arr.dtype == np.float64
    assert arr[0, :2].tolist() == [[100.0, 1.0], [99.0, 2.0]]
    assert np.isnan(arr[0, 2]).all()
    assert arr[1, 0].tolist() == [101.0, 3.0]
    assert np.isnan(arr[1, 1:]).all()


def test_to_numpy_of_empty_book_is_all_nan():
    arr = L2Book().to_numpy(2)
    assert arr.shape == (2, 2, 2)
    assert np.isnan(arr).all()


def test_equals_is_order_insensitive():
    book = make_book([(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0)])
    assert book.equals([(99.0, 2.0), (100.0, 1.0)], [(101.0, 3.0)])
    assert not book.equals([(100.0, 1.0)], [(101.0, 3.0)])


# ---------------------------------------------------------------------- differential
class DictModel:
    """The naive reference: two plain dicts, sorted on read."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def snapshot(self, bids, asks) -> None:
        self.bids = {p: s for p, s in bids if s != 0}
        self.asks = {p: s for p, s in asks if s != 0}

    def delta(self, bids, asks) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s

    def sorted_bids(self):
        return sorted(self.bids.items(), key=lambda lv: -lv[0])

    def sorted_asks(self):
        return sorted(self.asks.items())


@SETTINGS
@given(ops=book_ops(max_ops=40), n=st.integers(0, 12))
@example(ops=[("delta", [(100.0, 0.0)], []), ("snapshot", [(100.0, 1.0)], [(100.0, 1.0)]),
              ("delta", [(100.0, 0.0)], [(100.0, 0.0)])], n=1)
def test_book_matches_dict_and_sorteddict_models(ops, n):
    book = L2Book()
    ref = DictModel()
    sref = SortedReferenceBook()
    for kind, bids, asks in ops:
        if kind == "snapshot":
            book.apply_snapshot(bids, asks)
            ref.snapshot(bids, asks)
        else:
            book.apply_delta(bids, asks)
            ref.delta(bids, asks)
        sref.apply(kind, bids, asks)
        book.check_integrity()
        assert book.bids() == ref.sorted_bids()
        assert book.asks() == ref.sorted_asks()
        assert book.top(n) == sref.top(n)
        assert book.best_bid() == (sref.bids.peekitem(-1) if sref.bids else None)
        assert book.best_ask() == (sref.asks.peekitem(0) if sref.asks else None)
        assert book.is_crossed() == bool(sref.bids and sref.asks and sref.bids.peekitem(-1)[0] >= sref.asks.peekitem(0)[0])
        assert book.equals(ref.bids.items(), ref.asks.items())


@SETTINGS
@given(ops=book_ops(max_ops=30), depth=st.integers(1, 6))
def test_raw_strings_track_levels_and_truncate(ops, depth):
    book = L2Book()
    ref = DictModel()
    for kind, bids, asks in ops:
        braw = [(raw_of(p), raw_of(s)) for p, s in bids]
        araw = [(raw_of(p), raw_of(s)) for p, s in asks]
        if kind == "snapshot":
            book.apply_snapshot(bids, asks, braw, araw)
            ref.snapshot(bids, asks)
        else:
            book.apply_delta(bids, asks, braw, araw)
            ref.delta(bids, asks)
        book.truncate(depth)
        ref.bids = dict(ref.sorted_bids()[:depth])
        ref.asks = dict(ref.sorted_asks()[:depth])
        book.check_integrity()
        rb, ra = book.top_raw(depth)
        assert rb == [(raw_of(p), raw_of(s)) for p, s in ref.sorted_bids()]
        assert ra == [(raw_of(p), raw_of(s)) for p, s in ref.sorted_asks()]


@SETTINGS
@given(bids=st.lists(st.tuples(prices(), sizes()), max_size=30, unique_by=lambda lv: lv[0]),
       asks=st.lists(st.tuples(prices(), sizes()), max_size=30, unique_by=lambda lv: lv[0]))
def test_snapshot_round_trips_through_bids_and_asks(bids, asks):
    book = make_book(bids, asks)
    copy = make_book(book.bids(), book.asks())
    assert copy.bids() == book.bids() and copy.asks() == book.asks()
    assert book.equals(bids, asks)


# ---------------------------------------------------------------------- replays via the session
_RANGE_CAPS = ExchangeCapabilities(venue="t", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                                   splice_rule=SpliceRule.RANGE_NEXT, ws_splice_rule=SpliceRule.RANGE_NEXT,
                                   rest_snapshot=True)


@st.composite
def _chained_deltas(draw):
    narrow = prices(min_ticks=150, max_ticks=199)  # bids only below 100, asks above: never crossed
    high = prices(min_ticks=201, max_ticks=250)
    out = []
    seq = 11
    for _ in range(draw(st.integers(1, 12))):
        span = draw(st.integers(1, 3))
        b = draw(st.lists(st.tuples(narrow, sizes(allow_zero=True)), max_size=5, unique_by=lambda lv: lv[0]))
        a = draw(st.lists(st.tuples(high, sizes(allow_zero=True)), max_size=5, unique_by=lambda lv: lv[0]))
        out.append(BookDelta(symbol="X", bids=b, asks=a, first_seq=seq, last_seq=seq + span - 1))
        seq += span
    return out


@SETTINGS
@given(ds=_chained_deltas(), picks=st.lists(st.integers(0, 100), max_size=10))
def test_stale_and_duplicate_replays_change_nothing(ds, picks):
    s = BookSession("X", _RANGE_CAPS)
    s.on_snapshot(BookSnapshot(symbol="X", bids=[(90.0, 1.0)], asks=[(110.0, 1.0)], seq=10, source=SnapshotSource.WS))
    assert s.state is SyncState.SYNCED
    applied = []
    for d in ds:
        assert s.on_delta(d) == []
        applied.append(d)
        bids, asks = s.book.bids(), s.book.asks()
        last = s.last_seq
        for k in picks:  # re-deliver anything already applied: the last one (dup) or older (stale)
            assert s.on_delta(applied[k % len(applied)]) == []
            s.book.check_integrity()
            assert (s.book.bids(), s.book.asks(), s.last_seq, s.state) == (bids, asks, last, SyncState.SYNCED)
    assert s.stats.deltas_applied == len(ds)
    assert s.stats.gaps == 0
