"""[harden] core fixes: no silent rewind, no silent freeze, no impossible level.

- Defect 3: a snapshot never moves a SYNCED book back (late REST answer, capture replayed twice);
  a WS snapshot that syncs the book retires the outstanding REST request.
- Defect 4: a snapshot without an id cannot be bridged where the splice needs one.
- Defect 7 (core): prices are validated like sizes, and a rejected input changes no level (pure
  Python and C alike); a duplicate price whose later snapshot entry is 0 is deleted; a corrupt
  id ahead of the venue makes a synced book recover instead of dropping every delta as stale.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator

import pytest
from bookkeeper.adapters import get_adapter

import bookkeeper.book as book_mod
import bookkeeper.session as session_mod
from bookkeeper.actions import (
    Action,
    Alert,
    AlertKind,
    FetchSnapshot,
    PlanKind,
    Resubscribe,
    StateChanged,
    SyncState,
)
from bookkeeper.book import L2Book
from bookkeeper.errors import IntegrityError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.session import TRANSITIONS, BookSession
from bookkeeper.testing.reference import SortedReferenceBook

try:
    from bookkeeper import _speedups
except ImportError:  # no compiler at install time
    _speedups = None

SYM = "BTC-USDT"
U, AW, SY, RC, HA = (SyncState.UNSYNCED, SyncState.AWAITING_SNAPSHOT, SyncState.SYNCED,
                     SyncState.RECOVERING, SyncState.HALTED)
OKX = get_adapter("okx").capabilities
BINANCE = get_adapter("binance").capabilities
BINANCE_USDM = get_adapter("binance_usdm").capabilities
BYBIT = get_adapter("bybit").capabilities
NAN = float("nan")
INF = float("inf")


# ---------------------------------------------------------------------- helpers
def feed(session: BookSession, *events: object) -> list[Action]:
    """Feed events in order; every state change must be a row of TRANSITIONS."""
    out: list[Action] = []
    for ev in events:
        acts = session.handle(ev)
        for a in acts:
            if type(a) is StateChanged:
                assert a.new in TRANSITIONS[a.old], a
        out.extend(acts)
    return out


def changed(old, new, reason, plan=None) -> StateChanged:
    return StateChanged(symbol=SYM, old=old, new=new, reason=reason, plan=plan)


def okx_delta(seq: int, prev: int, bids=(), asks=(), **kw) -> BookDelta:
    """An OKX update as the adapter maps it: one message is one id (seqId), prevSeqId."""
    return BookDelta(symbol=SYM, bids=list(bids), asks=list(asks), first_seq=seq, last_seq=seq, prev_seq=prev, **kw)


def rng_delta(first: int, last: int, bids=(), asks=(), **kw) -> BookDelta:
    return BookDelta(symbol=SYM, bids=list(bids), asks=list(asks), first_seq=first, last_seq=last, **kw)


def snap(seq: int | None, source: SnapshotSource = SnapshotSource.WS, bids=((99.0, 1.0),), asks=((101.0, 1.0),),
         **kw) -> BookSnapshot:
    return BookSnapshot(symbol=SYM, bids=list(bids), asks=list(asks), seq=seq, source=source, **kw)


def levels(s: BookSession) -> tuple[list, list]:
    return s.book.bids(), s.book.asks()


def okx_synced(upto: int = 20) -> BookSession:
    """An OKX session synced by a WS snapshot at 10, then updates 11..``upto`` applied."""
    s = BookSession(SYM, OKX)
    feed(s, snap(10))
    for i in range(11, upto + 1):
        feed(s, okx_delta(i, i - 1, [(98.0, float(i))]))
    assert (s.state, s.last_seq) == (SY, upto)
    return s


def binance_synced(upto: int = 120) -> BookSession:
    """A Binance spot session synced by a REST snapshot at 110, then deltas to ``upto``."""
    s = BookSession(SYM, BINANCE)
    feed(s, rng_delta(95, 100))
    s.on_snapshot(snap(110, SnapshotSource.REST), epoch=1)
    for i in range(111, upto + 1):
        feed(s, rng_delta(i, i, [(98.0, float(i))]))
    assert (s.state, s.last_seq) == (SY, upto)
    return s


@contextlib.contextmanager
def book_path(accelerated: bool) -> Iterator[None]:
    """Run L2Book calls on the C accelerator or on the pure-Python path."""
    if accelerated and _speedups is None:
        pytest.skip("C accelerator not built")
    saved = book_mod._sp
    book_mod._sp = _speedups if accelerated else None
    try:
        yield
    finally:
        book_mod._sp = saved


PATHS = pytest.mark.parametrize("accelerated", [False, True], ids=["pure", "C"])


# ====================================================================== defect 3
def test_okx_late_rest_answer_after_ws_snapshot_synced_is_ignored():
    """The issue's OKX scenario: deltas buffered, REST requested, the WS snapshot syncs first at
    150, 10 more deltas apply, then the REST answer (older, 120) arrives for the current epoch."""
    s = BookSession(SYM, OKX)
    acts = []
    for i in range(101, 151):  # no WS snapshot yet: after the grace a REST snapshot is asked for
        acts += feed(s, okx_delta(i, i - 1, [(97.0, float(i))]))
    assert acts == [FetchSnapshot(symbol=SYM, epoch=1, reason="initial sync", depth=400),
                    changed(U, AW, "initial sync: REST snapshot requested")]
    assert feed(s, snap(150)) == [changed(AW, SY, "ws snapshot")]
    for i in range(151, 161):
        assert feed(s, okx_delta(i, i - 1, [(98.0, float(i))])) == []
    assert s.last_seq == 160
    before = levels(s)
    assert s.on_snapshot(snap(120, SnapshotSource.REST, bids=[(96.0, 5.0)]), epoch=1) == []
    assert (s.state, s.last_seq, levels(s)) == (SY, 160, before)
    assert (s.stats.stale_epochs, s.stats.snapshots, s.stats.gaps) == (1, 1, 0)
    assert feed(s, okx_delta(161, 160, [(98.0, 1.0)])) == []  # no false gap
    assert (s.state, s.last_seq, s.stats.gaps) == (SY, 161, 0)


def test_snapshot_retires_the_outstanding_rest_request():
    s = BookSession(SYM, OKX)
    for i in range(101, 151):
        feed(s, okx_delta(i, i - 1))
    assert s.awaited_epoch == 1
    feed(s, snap(150))
    assert s.awaited_epoch is None  # the driver may cancel the fetch of epoch 1
    # The fetch then fails (or is cancelled): nothing to recover, the book is synced.
    assert s.on_snapshot_failed(1, "cancelled") == []
    assert (s.state, s.last_seq) == (SY, 150)


def test_awaited_epoch_follows_requests_answers_and_failures():
    s = BookSession(SYM, BINANCE, max_snapshot_failures=3)
    assert s.awaited_epoch is None
    feed(s, rng_delta(101, 105))
    assert s.awaited_epoch == 1
    s.on_snapshot_failed(1, "timeout")  # replanned: epoch 2 requested
    assert s.awaited_epoch == 2
    s.on_snapshot(snap(103, SnapshotSource.REST), epoch=2)
    assert (s.state, s.awaited_epoch) == (SY, None)
    s.halt("breaker open")
    assert s.awaited_epoch is None


@pytest.mark.parametrize("source", list(SnapshotSource), ids=lambda x: x.value)
@pytest.mark.parametrize("venue", ["okx", "binance"])
def test_snapshot_older_than_a_synced_book_is_never_applied(venue, source):
    # Fed without an epoch, as replay feeds a capture's REST records and WS snapshots.
    s = okx_synced(20) if venue == "okx" else binance_synced(120)
    local = s.last_seq
    before = levels(s)
    acts = s.on_snapshot(snap(local - 5, source, bids=[(50.0, 1.0)]))
    assert acts == [Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=SYM, seq=local - 5,
                          reason=f"snapshot {local - 5} is older than the synced book ({local}): not applied")]
    assert (s.state, s.last_seq, levels(s), s.stats.stale_snapshots, s.stats.snapshots) == (SY, local, before, 1, 1)
    nxt = okx_delta(local + 1, local) if venue == "okx" else rng_delta(local + 1, local + 1)
    assert feed(s, nxt) == [] and (s.last_seq, s.stats.gaps) == (local + 1, 0)


def test_snapshot_at_the_synced_id_with_the_same_levels_is_not_applied():
    s = okx_synced(20)
    bids, asks = levels(s)
    acts = s.on_snapshot(snap(20, bids=list(reversed(bids)), asks=asks))
    assert acts == [Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=SYM, seq=20,
                          reason="snapshot at the synced book's own id 20 (same levels): not applied")]
    assert (s.state, s.last_seq, s.stats.snapshots, s.stats.stale_snapshots, s.stats.diverged) == (SY, 20, 1, 1, 0)


@pytest.mark.parametrize("venue", ["okx", "binance"])
def test_snapshot_at_the_synced_id_with_other_levels_is_a_divergence(venue):
    s = okx_synced(20) if venue == "okx" else binance_synced(120)
    local = s.last_seq
    before = levels(s)
    acts = s.on_snapshot(snap(local, bids=[(99.0, 3.0)]))
    reason = f"book diverged from the venue's snapshot at the same id {local}"
    alert = Alert(kind=AlertKind.CHECKSUM_MISMATCH, symbol=SYM, seq=local, reason=reason)
    if venue == "okx":
        assert acts == [alert, Resubscribe(symbol=SYM, reason=reason), changed(SY, RC, reason, PlanKind.RESUBSCRIBE)]
    else:
        assert acts == [alert, FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
                        changed(SY, RC, reason, PlanKind.SNAPSHOT_REBUILD)]
    assert (s.state, s.last_seq, levels(s), s.stats.diverged, s.stats.snapshots) == (RC, local, before, 1, 1)


def _capture(venue: str, seed: int) -> list[object]:
    """A seeded capture as replay feeds it: OKX (WS snapshot + pointer updates), Binance spot
    (deltas, the REST snapshot record fed without an epoch, deltas) or Bybit (WS snapshot +
    monotonic updates with exchange times)."""
    rng = random.Random(seed)

    def lv() -> list[tuple[float, float]]:
        return [(float(rng.randint(90, 99)), float(rng.choice([0, 1, 2, 3]))) for _ in range(rng.randint(0, 3))]

    ts = 1_700_000_000_000_000_000
    if venue == "okx":
        events: list[object] = [snap(1000, ts_exchange_ns=ts)]
        events += [okx_delta(i, i - 1, lv(), ts_exchange_ns=ts + i) for i in range(1001, 1081)]
    elif venue == "binance":
        events = [rng_delta(990 + k, 990 + k, lv()) for k in range(8)]
        events.append(snap(994, SnapshotSource.REST))
        events += [rng_delta(i, i, lv()) for i in range(998, 1081)]
    else:
        events = [snap(1000, ts_exchange_ns=ts)]
        u = 1000
        for _ in range(80):
            u += rng.randint(1, 4)  # Bybit's u may skip
            events.append(rng_delta(u, u, lv(), ts_exchange_ns=ts + u))
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("venue", ["okx", "binance", "bybit"])
def test_capture_replayed_twice_never_rewinds_nor_gaps(venue, seed):
    caps = {"okx": OKX, "binance": BINANCE, "bybit": BYBIT}[venue]
    s = BookSession(SYM, caps)
    events = _capture(venue, seed)
    feed(s, *events)
    end = (s.state, s.last_seq, levels(s))
    assert end[0] is SY, f"seed={seed}"
    applied = s.stats.deltas_applied
    for i, ev in enumerate(events):  # the same capture again, after the book synced past it
        acts = feed(s, ev)
        assert (s.state, s.last_seq, levels(s)) == end, f"seed={seed}: event {i} {ev!r} moved the book: {acts}"
        assert all(type(a) is Alert and a.kind is AlertKind.STALE_SNAPSHOT for a in acts), f"seed={seed}: {acts}"
    st = s.stats
    assert (st.gaps, st.local_ahead, st.deltas_applied, st.stale_snapshots, s.buffered) == (0, 0, applied, 1, 0), \
        f"seed={seed}"


def test_monotonic_venue_restart_snapshot_is_applied_and_alerted():
    # Bybit restarts its ids and pushes its book (u = 1): newer in exchange time, so applied.
    s = BookSession(SYM, BYBIT)
    feed(s, snap(100, ts_exchange_ns=1000), rng_delta(105, 105, [(98.0, 1.0)], ts_exchange_ns=1100))
    acts = feed(s, snap(1, bids=[(97.0, 4.0)], ts_exchange_ns=2000))
    assert acts == [Alert(kind=AlertKind.SEQ_RESTART, symbol=SYM, seq=1,
                          reason="the venue's ids restarted: snapshot 1 after 105")]
    assert (s.state, s.last_seq, s.book.bids(), s.stats.seq_restarts) == (SY, 1, [(97.0, 4.0)], 1)
    assert feed(s, rng_delta(2, 2, [(97.0, 5.0)])) == [] and s.book.bids() == [(97.0, 5.0)]


def test_monotonic_venue_snapshot_no_newer_in_time_is_stale():
    s = BookSession(SYM, BYBIT)
    feed(s, snap(100, ts_exchange_ns=1000), rng_delta(105, 105, [(98.0, 1.0)], ts_exchange_ns=1100))
    acts = feed(s, snap(90, bids=[(97.0, 4.0)], ts_exchange_ns=900))
    assert [a.kind for a in acts] == [AlertKind.STALE_SNAPSHOT]
    assert (s.last_seq, s.book.best_bid(), s.stats.seq_restarts) == (105, (99.0, 1.0), 0)


# ====================================================================== defect 4
def test_okx_rest_snapshot_without_seq_is_refused_then_resubscribed():
    s = BookSession(SYM, OKX)
    for i in range(101, 151):
        feed(s, okx_delta(i, i - 1, [(97.0, float(i))]))
    assert s.epoch == 1
    acts = s.on_snapshot(snap(None, SnapshotSource.REST, bids=[(96.0, 1.0)]), epoch=1)
    reason = "rest snapshot without a sequence id cannot be bridged (prev_bracket splice needs one)"
    assert acts == [Alert(kind=AlertKind.UNBRIDGEABLE_SNAPSHOT, symbol=SYM, reason=reason),
                    Resubscribe(symbol=SYM, reason=reason)]
    assert (s.state, s.last_seq, len(s.book), s.buffered) == (AW, None, 0, 50)
    assert (s.stats.unbridgeable_snapshots, s.stats.snapshots, s.stats.deltas_applied) == (1, 0, 0)
    # The resubscribe's WS snapshot splices the buffer by its id.
    assert feed(s, snap(148)) == [changed(AW, SY, "ws snapshot")]
    assert (s.last_seq, s.stats.deltas_applied, s.stats.gaps) == (150, 2, 0)


def test_rest_snapshot_without_seq_on_a_rest_only_venue_is_refetched():
    s = BookSession(SYM, BINANCE)
    feed(s, rng_delta(101, 105))
    reason = "rest snapshot without a sequence id cannot be bridged (range_next splice needs one)"
    assert s.on_snapshot(snap(None, SnapshotSource.REST), epoch=1) == [
        Alert(kind=AlertKind.UNBRIDGEABLE_SNAPSHOT, symbol=SYM, reason=reason),
        FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
    ]
    assert (s.state, len(s.book), s.buffered, s.stats.snapshots) == (AW, 0, 1, 0)


def test_ws_snapshot_without_seq_on_a_stream_with_ids_is_refused():
    s = BookSession(SYM, OKX)
    feed(s, okx_delta(11, 10))  # buffered: the stream carries ids
    reason = "ws snapshot without a sequence id cannot be bridged (prev_exact splice needs one)"
    assert feed(s, snap(None)) == [Alert(kind=AlertKind.UNBRIDGEABLE_SNAPSHOT, symbol=SYM, reason=reason),
                                   Resubscribe(symbol=SYM, reason=reason),
                                   changed(U, AW, reason, PlanKind.RESUBSCRIBE)]
    assert (len(s.book), s.buffered) == (0, 1)
    s = okx_synced(20)
    before = levels(s)
    assert feed(s, snap(None, bids=[(50.0, 1.0)])) == [
        Alert(kind=AlertKind.UNBRIDGEABLE_SNAPSHOT, symbol=SYM, reason=reason),
        Resubscribe(symbol=SYM, reason=reason), changed(SY, RC, reason, PlanKind.RESUBSCRIBE)]
    assert (s.last_seq, levels(s)) == (20, before)


def test_ws_snapshot_without_seq_on_a_stream_without_ids_is_applied():
    # OKX captures from before seqId existed carry no ids at all (fixtures/real/okx): the stream's
    # own order is the only bridge there is, as before.
    s = BookSession(SYM, OKX)
    assert feed(s, snap(None)) == [changed(U, SY, "ws snapshot")]
    assert feed(s, BookDelta(symbol=SYM, bids=[(99.5, 1.0)], asks=[])) == []
    assert (s.state, s.book.best_bid(), s.stats.unbridgeable_snapshots) == (SY, (99.5, 1.0), 0)


# ====================================================================== defect 7: prices
BAD_PRICES = [NAN, INF, -INF, -1.0, 0.0, -0.0, -1e-300]


def _book(raw: bool) -> L2Book:
    b = L2Book()
    if raw:
        b.apply_snapshot([(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)], [("99", "1"), ("98", "1")], [("101", "1")])
    else:
        b.apply_snapshot([(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)])
    return b


def _dump(b: L2Book) -> tuple:
    return (list(b._bids.items()), b._bkeys, list(b._asks.items()), b._akeys,
            None if b._bids_raw is None else list(b._bids_raw.items()),
            None if b._asks_raw is None else list(b._asks_raw.items()))


@PATHS
@pytest.mark.parametrize("op", ["delta", "delta_raw", "snapshot"])
@pytest.mark.parametrize("side", ["bid", "ask"])
@pytest.mark.parametrize("price", BAD_PRICES, ids=repr)
def test_bad_price_is_rejected_and_changes_nothing(accelerated, op, side, price):
    with book_path(accelerated):
        b = _book(raw=op == "delta_raw")
        before = _dump(b)
        bad = [(97.0, 1.0), (price, 2.0), (96.0, 1.0)]
        good = [(102.0, 1.0)]
        bids, asks = (bad, good) if side == "bid" else (good, bad)
        with pytest.raises(IntegrityError, match=f"bad {side} price"):
            if op == "snapshot":
                b.apply_snapshot(bids, asks)
            elif op == "delta":
                b.apply_delta(iter(bids), asks)  # an iterator too: nothing applied before the bad one
            else:
                b.apply_delta(bids, asks, [("x", "y")] * len(bids), [("x", "y")] * len(asks))
        assert _dump(b) == before
        assert b.poisoned is not None
        with pytest.raises(IntegrityError, match="poisoned"):
            b.apply_delta([(97.0, 1.0)], [])


@PATHS
@pytest.mark.parametrize("size", [NAN, INF, -INF, -1.0, -1e-300], ids=repr)
def test_bad_size_is_rejected_and_changes_nothing(accelerated, size):
    with book_path(accelerated):
        b = _book(raw=False)
        before = _dump(b)
        with pytest.raises(IntegrityError, match="bad ask size"):
            b.apply_delta([(97.0, 1.0)], [(102.0, 1.0), (103.0, size)])
        assert _dump(b) == before and b.poisoned is not None


@PATHS
def test_negative_ask_is_rejected_not_hidden_from_is_crossed(accelerated):
    with book_path(accelerated):
        b = L2Book()
        b.apply_snapshot([], [(101.0, 1.0)])
        with pytest.raises(IntegrityError, match=r"bad ask price -5\.0"):
            b.apply_delta([], [(-5.0, 1.0)])
        assert (b.best_ask(), b.is_crossed()) == ((101.0, 1.0), False)


@PATHS
def test_snapshot_duplicate_price_later_zero_deletes_like_the_reference(accelerated):
    bids = [(100.0, 1.0), (99.0, 2.0), (100.0, 0.0), (98.0, 0.0)]
    asks = [(101.0, 1.0), (101.0, 3.0), (102.0, 1.0), (102.0, 0.0), (102.0, 4.0)]
    with book_path(accelerated):
        b = L2Book()
        b.apply_snapshot(bids, asks, [(str(p), str(s)) for p, s in bids], [(str(p), str(s)) for p, s in asks])
        b.check_integrity()
        ref = SortedReferenceBook()
        ref.apply("snapshot", bids, asks)
        assert (b.bids(), b.asks()) == (list(reversed(ref.bids.items())), list(ref.asks.items()))
        assert (b.bids(), b.asks()) == ([(99.0, 2.0)], [(101.0, 3.0), (102.0, 4.0)])
        assert b.top_raw(5) == ([("99.0", "2.0")], [("101.0", "3.0"), ("102.0", "4.0")])
        assert b.equals(bids, asks)  # equals() reads levels by the snapshot rule


def test_session_rejects_a_nan_price_delta_and_keeps_the_book():
    s = binance_synced(120)
    before = levels(s)
    acts = feed(s, rng_delta(121, 121, [(NAN, 1.0)]))
    assert [type(a) for a in acts] == [Alert, FetchSnapshot, StateChanged]
    assert acts[0].kind is AlertKind.INVALID_INPUT and "bad bid price nan" in acts[0].reason
    assert (s.state, s.last_seq, levels(s), s.stats.invalid_inputs) == (RC, 120, before, 1)


def test_session_rejects_a_negative_price_snapshot():
    s = BookSession(SYM, OKX)
    acts = feed(s, snap(10, asks=[(101.0, 1.0), (-3.0, 1.0)]))
    assert [type(a) for a in acts] == [Alert, Resubscribe, StateChanged]
    assert acts[0].kind is AlertKind.INVALID_INPUT and "bad ask price -3.0" in acts[0].reason
    assert (s.state, len(s.book), s.stats.snapshots, s.stats.invalid_inputs) == (AW, 0, 0, 1)


_POOL_P = [100.0, 100.5, 99.0, 101.0, 7, 1e-9, NAN, INF, -INF, -5.0, 0.0, -0.0]
_POOL_S = [1.0, 2.5, 3, 0.0, -0.0, 0, NAN, INF, -1.0]


@PATHS
@pytest.mark.parametrize("seed", range(40))
def test_book_agrees_with_the_reference_on_hostile_input(accelerated, seed):
    """Random deltas/snapshots, a third hostile: the book accepts exactly what the reference
    accepts, and holds the same levels after every step (a rejection changes nothing)."""
    rng = random.Random(seed)

    def side() -> list:
        pool_p = _POOL_P if rng.random() < 0.3 else _POOL_P[:6]
        pool_s = _POOL_S if rng.random() < 0.3 else _POOL_S[:6]
        return [(rng.choice(pool_p), rng.choice(pool_s)) for _ in range(rng.randint(0, 5))]

    with book_path(accelerated):
        b = L2Book()
        ref = SortedReferenceBook()
        for step in range(60):
            kind = rng.choice(["delta", "delta", "delta", "snapshot"])
            bids, asks = side(), side()
            outcomes = []
            for target in (b, ref):
                try:
                    if target is ref:
                        ref.apply(kind, bids, asks)
                    else:
                        (b.apply_snapshot if kind == "snapshot" else b.apply_delta)(bids, asks)
                    outcomes.append("ok")
                except IntegrityError:
                    outcomes.append("rejected")
            msg = f"seed={seed} step={step} {kind} {bids} {asks}"
            assert outcomes[0] == outcomes[1], msg
            assert b.bids() == list(reversed(ref.bids.items())) and b.asks() == list(ref.asks.items()), msg
            if outcomes[0] == "rejected":  # lift the poisoning the same way on both
                good_b, good_a = list(reversed(ref.bids.items())), list(ref.asks.items())
                b.apply_snapshot(good_b, good_a)
                ref.apply("snapshot", good_b, good_a)
            b.check_integrity()


# ====================================================================== defect 7: local id ahead
@pytest.mark.parametrize("venue", ["bybit", "binance", "binance_usdm"])
def test_corrupt_huge_id_makes_a_synced_book_recover_not_freeze(venue):
    limit = session_mod.STALE_RUN_LIMIT
    assert limit == 10
    caps = {"bybit": BYBIT, "binance": BINANCE, "binance_usdm": BINANCE_USDM}[venue]

    def d(i: int, last: int | None = None, **kw) -> BookDelta:
        last = i if last is None else last
        if venue == "binance_usdm":
            return BookDelta(symbol=SYM, bids=[(98.0, float(i % 7 + 1))], asks=[], first_seq=i, last_seq=last,
                             prev_seq=i - 1, **kw)
        return rng_delta(i, last, [(98.0, float(i % 7 + 1))], **kw)

    s = BookSession(SYM, caps)
    if venue == "bybit":
        feed(s, snap(100))
    else:
        feed(s, d(100))
        s.on_snapshot(snap(100, SnapshotSource.REST), epoch=1)
    feed(s, *[d(i) for i in range(101, 111)])
    assert (s.state, s.last_seq) == (SY, 110)
    stale_before = s.stats.stale_dropped
    corrupt = 2**70
    assert feed(s, d(111, corrupt)) == []  # newer than local: the sequencer applies it
    for i in range(112, 112 + limit - 1):
        assert feed(s, d(i)) == [] and s.is_synced  # each one alone could be a late copy
    acts = feed(s, d(112 + limit - 1))
    last = 112 + limit - 1
    reason = f"local id {corrupt} is ahead of the venue: {limit} deltas in a row newer than 110 judged stale (last {last})"
    alert = Alert(kind=AlertKind.LOCAL_AHEAD, symbol=SYM, reason=reason, seq=last)
    if venue == "bybit":
        assert acts == [alert, Resubscribe(symbol=SYM, reason=reason), changed(SY, RC, reason, PlanKind.RESUBSCRIBE)]
    else:
        assert acts == [alert, FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
                        changed(SY, RC, reason, PlanKind.SNAPSHOT_REBUILD)]
    assert (s.stats.local_ahead, s.stats.stale_dropped - stale_before) == (1, limit)
    # The next rung resyncs below the corrupt id.
    feed(s, d(last + 1), d(last + 2))
    if venue == "bybit":
        assert feed(s, snap(last + 1)) == [changed(RC, SY, "ws snapshot", PlanKind.RESUBSCRIBE)]
    else:
        assert s.on_snapshot(snap(last + 1, SnapshotSource.REST), epoch=2) == [
            changed(RC, SY, "snapshot spliced", PlanKind.SNAPSHOT_REBUILD)]
    assert (s.state, s.last_seq) == (SY, last + 2)
    assert feed(s, d(last + 3)) == [] and s.last_seq == last + 3


def test_late_copies_below_the_previous_id_never_count_as_local_ahead():
    s = BookSession(SYM, BYBIT, max_stale_run=3)
    feed(s, snap(100))
    feed(s, *[rng_delta(i, i, [(98.0, 1.0)]) for i in range(101, 301)])
    for i in range(100, 299):  # 199 late copies, each at or below 299 (the id before 300)
        assert feed(s, rng_delta(i, i)) == []
    assert (s.state, s.last_seq, s.stats.stale_dropped, s.stats.local_ahead) == (SY, 300, 199, 0)


def test_an_applied_delta_restarts_the_stale_run():
    s = BookSession(SYM, BYBIT, max_stale_run=3)
    feed(s, snap(100), rng_delta(101, 101), rng_delta(110, 110))
    assert feed(s, rng_delta(105, 105), rng_delta(106, 106)) == []  # 2 stale above 101
    feed(s, rng_delta(111, 111))  # applied: the run starts over (and 110 is the floor now)
    assert feed(s, rng_delta(105, 105), rng_delta(106, 106), rng_delta(107, 107)) == []
    assert (s.state, s.stats.local_ahead) == (SY, 0)
    s2 = BookSession(SYM, BYBIT, max_stale_run=3)
    feed(s2, snap(100), rng_delta(101, 101), rng_delta(110, 110))
    acts = feed(s2, rng_delta(105, 105), rng_delta(106, 106), rng_delta(107, 107))
    assert [a.kind for a in acts if type(a) is Alert] == [AlertKind.LOCAL_AHEAD]


def test_max_stale_run_must_be_positive():
    with pytest.raises(ValueError, match="max_stale_run"):
        BookSession(SYM, BYBIT, max_stale_run=0)


def test_reference_book_rejects_what_l2book_rejects():
    ref = SortedReferenceBook()
    ref.apply("snapshot", [(99.0, 1.0)], [(101.0, 1.0)])
    for bad in ([(NAN, 1.0)], [(0.0, 1.0)], [(99.5, -1.0)], [(99.5, INF)]):
        with pytest.raises(IntegrityError):
            ref.apply("delta", [(98.0, 1.0)] + bad, [])
        assert (list(ref.bids.items()), list(ref.asks.items())) == ([(99.0, 1.0)], [(101.0, 1.0)])
    assert math.isnan(NAN)
