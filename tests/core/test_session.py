"""BookSession behaviour, fed events and judged by the actions it returns."""

from __future__ import annotations

import pytest

from bookkeeper.actions import (
    Action,
    Alert,
    AlertKind,
    FetchSnapshot,
    Halt,
    PlanKind,
    ReplayDeltas,
    Resubscribe,
    StateChanged,
    SyncState,
)
from bookkeeper.capabilities import ChecksumKind, ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.checksum import kraken_checksum, okx_checksum
from bookkeeper.errors import InvalidState
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    CloseReason,
    Heartbeat,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
    Tick,
)
from bookkeeper.session import TRANSITIONS, BookSession, Phase

SYM = "BTCUSDT"
U, AW, SY, RC, HA = (SyncState.UNSYNCED, SyncState.AWAITING_SNAPSHOT, SyncState.SYNCED,
                     SyncState.RECOVERING, SyncState.HALTED)

BINANCE_SPOT = ExchangeCapabilities(venue="binance", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                                    splice_rule=SpliceRule.RANGE_NEXT, ws_splice_rule=SpliceRule.RANGE_NEXT,
                                    rest_snapshot=True)
BINANCE_USDM = ExchangeCapabilities(venue="binance_usdm", sequence_model=SequenceModel.PREV_POINTER,
                                    splice_rule=SpliceRule.RANGE_AT, ws_splice_rule=SpliceRule.RANGE_AT,
                                    rest_snapshot=True)
OKX = ExchangeCapabilities(venue="okx", sequence_model=SequenceModel.PREV_POINTER,
                           splice_rule=SpliceRule.PREV_BRACKET, ws_splice_rule=SpliceRule.PREV_EXACT,
                           checksum=ChecksumKind.CRC32_INTERLEAVED_25, ws_snapshot_on_subscribe=True)
KRAKEN = ExchangeCapabilities(venue="kraken", sequence_model=SequenceModel.NONE,
                              checksum=ChecksumKind.KRAKEN_CRC32_10, ws_snapshot_on_subscribe=True,
                              truncate_to_depth=True)
KUCOIN = ExchangeCapabilities(venue="kucoin", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                              splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True, level_sequences=True)
BYBIT = ExchangeCapabilities(venue="bybit", sequence_model=SequenceModel.MONOTONIC_ONLY,
                             ws_splice_rule=SpliceRule.MONOTONIC, ws_snapshot_on_subscribe=True)


def feed(session: BookSession, *events: object) -> list[Action]:
    """Feed events in order; return every action they caused, in order."""
    out: list[Action] = []
    for ev in events:
        out.extend(session.handle(ev))
    return out


def delta(first: int | None, last: int | None, bids=(), asks=(), *, prev: int | None = None, sym: str = SYM,
          **kw) -> BookDelta:
    return BookDelta(symbol=sym, bids=list(bids), asks=list(asks), first_seq=first, last_seq=last, prev_seq=prev, **kw)


def rest_snap(seq: int | None, bids=((99.0, 1.0),), asks=((101.0, 1.0),), sym: str = SYM) -> BookSnapshot:
    return BookSnapshot(symbol=sym, bids=list(bids), asks=list(asks), seq=seq, source=SnapshotSource.REST)


def ws_snap(seq: int | None, bids=((99.0, 1.0),), asks=((101.0, 1.0),), sym: str = SYM, **kw) -> BookSnapshot:
    return BookSnapshot(symbol=sym, bids=list(bids), asks=list(asks), seq=seq, source=SnapshotSource.WS, **kw)


def changed(old, new, reason, plan=None) -> StateChanged:
    return StateChanged(symbol=SYM, old=old, new=new, reason=reason, plan=plan)


def synced_spot(last: int = 110) -> BookSession:
    """A Binance-spot session synced at ``last`` with bid 99x1 / ask 101x1."""
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100))
    s.on_snapshot(rest_snap(last), epoch=1)
    assert s.state is SY and s.last_seq == last
    return s


CLOSED = StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, code=1006)


# ---------------------------------------------------------------------- initial sync
def test_first_delta_requests_snapshot_for_rest_venue():
    s = BookSession(SYM, BINANCE_SPOT)
    assert s.state is U
    acts = feed(s, delta(101, 105, [(100.0, 2.0)]))
    assert acts == [
        FetchSnapshot(symbol=SYM, epoch=1, reason="initial sync", depth=1000),
        changed(U, AW, "initial sync: REST snapshot requested"),
    ]
    assert feed(s, delta(106, 107)) == []  # buffered, no second request
    assert (s.state, s.buffered, s.epoch) == (AW, 2, 1)


def test_snapshot_bridges_buffered_deltas():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100, [(98.0, 5.0)]), delta(101, 105, [(100.0, 2.0)]), delta(106, 107, [], [(101.0, 0.0)]))
    acts = s.on_snapshot(rest_snap(102, bids=[(99.0, 1.0)], asks=[(101.0, 1.0), (102.0, 3.0)]), epoch=1)
    assert acts == [changed(AW, SY, "snapshot spliced")]
    assert s.last_seq == 107
    assert s.book.bids() == [(100.0, 2.0), (99.0, 1.0)]  # 95..100 was dropped as inside the snapshot
    assert s.book.asks() == [(102.0, 3.0)]
    assert (s.stats.stale_dropped, s.stats.bridged, s.stats.deltas_applied, s.buffered) == (1, 1, 2, 0)


def test_ws_snapshot_venue_waits_for_snapshot_without_fetching():
    s = BookSession(SYM, OKX)
    assert feed(s, delta(None, 12, prev=10)) == []
    assert s.state is U
    assert feed(s, ws_snap(10)) == [changed(U, SY, "ws snapshot")]
    assert s.last_seq == 12


def test_snapshot_waiting_for_bridge_then_bridges_live_delta():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100))
    assert s.on_snapshot(rest_snap(120), epoch=1) == [changed(AW, SY, "snapshot spliced")]
    assert feed(s, delta(110, 120)) == []  # stale, dropped by the bridge rule
    assert feed(s, delta(118, 125, [(100.0, 1.0)])) == []  # bridges U <= 121 <= u
    assert s.last_seq == 125 and s.stats.bridged == 1
    assert feed(s, delta(126, 126)) == []
    assert s.last_seq == 126


def test_non_bridging_first_live_delta_is_a_gap():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100))
    s.on_snapshot(rest_snap(120), epoch=1)
    acts = feed(s, delta(125, 130))
    assert [type(a) for a in acts] == [Alert, FetchSnapshot, StateChanged]
    assert acts[0].kind is AlertKind.GAP and acts[1].epoch == 2
    assert s.state is RC


def test_stale_snapshot_is_refetched_with_new_epoch():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(105, 110))
    acts = s.on_snapshot(rest_snap(100), epoch=1)
    assert acts == [
        Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=SYM, seq=100,
              reason="snapshot 100 is older than buffered delta 105..110"),
        FetchSnapshot(symbol=SYM, epoch=2, reason="stale snapshot", depth=1000),
    ]
    assert (s.state, s.epoch, s.buffered, s.stats.stale_snapshots) == (AW, 2, 1, 1)
    assert s.on_snapshot(rest_snap(107), epoch=2) == [changed(AW, SY, "snapshot spliced")]
    assert s.last_seq == 110


def test_old_epoch_answer_ignored():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(105, 110))
    s.on_snapshot(rest_snap(100), epoch=1)  # stale: epoch 2 requested
    assert s.on_snapshot(rest_snap(108), epoch=1) == []
    assert (s.state, s.stats.stale_epochs, s.stats.snapshots) == (AW, 1, 0)
    assert s.on_snapshot(rest_snap(108), epoch=2) == [changed(AW, SY, "snapshot spliced")]


def test_repeated_stale_snapshots_halt():
    s = BookSession(SYM, BINANCE_SPOT, max_snapshot_failures=2)
    feed(s, delta(105, 110))
    s.on_snapshot(rest_snap(100), epoch=1)
    acts = s.on_snapshot(rest_snap(100), epoch=2)
    reason = "stale snapshot; 2 snapshot attempts failed"
    assert acts == [
        Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=SYM, seq=100,
              reason="snapshot 100 is older than buffered delta 105..110"),
        changed(AW, HA, reason, PlanKind.HALT),
        Halt(symbol=SYM, reason=reason),
    ]
    assert s.buffered == 0


def test_snapshot_failed_replans_and_exhaustion_halts():
    s = BookSession(SYM, BINANCE_SPOT, max_snapshot_failures=2)
    feed(s, delta(101, 105))
    assert s.on_snapshot_failed(7, "timeout") == []  # not the current epoch
    assert s.on_snapshot_failed(1, "timeout") == [
        FetchSnapshot(symbol=SYM, epoch=2, reason="snapshot failed: timeout", depth=1000)]
    acts = s.on_snapshot_failed(2, "timeout")
    assert [type(a) for a in acts] == [StateChanged, Halt]
    assert s.state is HA and s.stats.halts == 1


# ---------------------------------------------------------------------- gaps
def test_gap_plans_rest_snapshot():
    s = synced_spot(110)
    acts = feed(s, delta(115, 120))
    reason = "gap: local 110, got first=115 last=120 prev=None"
    assert acts == [
        Alert(kind=AlertKind.GAP, symbol=SYM, reason=reason, seq=120, missed=4),
        FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
        changed(SY, RC, reason, PlanKind.SNAPSHOT_REBUILD),
    ]
    assert not s.is_synced and s.buffered == 1
    assert (s.stats.gaps, s.stats.missed_ids, s.stats.rest_snapshots) == (1, 4, 1)
    assert feed(s, delta(121, 122)) == []  # buffered while recovering
    acts = s.on_snapshot(rest_snap(118, bids=[(98.0, 1.0)]), epoch=2)
    assert acts == [changed(RC, SY, "snapshot spliced", PlanKind.SNAPSHOT_REBUILD)]
    assert s.last_seq == 122 and s.book.bids() == [(98.0, 1.0)]


def test_gap_on_ws_snapshot_venue_plans_resubscribe():
    s = BookSession(SYM, OKX)
    feed(s, ws_snap(10), delta(None, 15, prev=10))
    acts = feed(s, delta(None, 20, prev=17))
    reason = "gap: local 15, got first=None last=20 prev=17"
    assert acts == [
        Alert(kind=AlertKind.GAP, symbol=SYM, reason=reason, seq=20, missed=2),
        Resubscribe(symbol=SYM, reason=reason),
        changed(SY, RC, reason, PlanKind.RESUBSCRIBE),
    ]
    assert s.epoch == 0  # no REST request
    acts = feed(s, ws_snap(30, bids=[(97.0, 1.0)]))
    assert acts == [changed(RC, SY, "ws snapshot", PlanKind.RESUBSCRIBE)]
    assert s.last_seq == 30 and s.book.bids() == [(97.0, 1.0)]


def test_okx_heartbeat_and_reset_midstream():
    s = BookSession(SYM, OKX)
    feed(s, ws_snap(10))
    assert feed(s, delta(None, 15, [(99.5, 1.0)], prev=10)) == []
    assert feed(s, delta(None, 15, prev=15)) == []  # heartbeat seqId == prevSeqId == local
    assert s.stats.duplicates == 1
    assert feed(s, delta(None, 3, [(99.5, 2.0)], prev=15)) == []  # reset: seqId < prevSeqId == local
    assert feed(s, delta(None, 5, prev=3)) == []
    assert (s.state, s.last_seq, s.stats.gaps) == (SY, 5, 0)
    assert s.book.best_bid() == (99.5, 2.0)


def test_usdm_bridge_then_pu_chain():
    s = BookSession(SYM, BINANCE_USDM)
    feed(s, delta(80, 90, prev=79), delta(91, 99, prev=90), delta(100, 104, [(100.0, 1.0)], prev=99),
         delta(105, 108, prev=104))
    acts = s.on_snapshot(rest_snap(100), epoch=1)  # drop u < 100; first kept U <= 100 <= u
    assert acts == [changed(AW, SY, "snapshot spliced")]
    assert (s.last_seq, s.stats.stale_dropped, s.stats.bridged) == (108, 2, 1)
    assert feed(s, delta(109, 111, prev=108)) == []
    acts = feed(s, delta(115, 120, prev=113))
    assert acts[0] == Alert(kind=AlertKind.GAP, symbol=SYM, seq=120, missed=2,
                            reason="gap: local 111, got first=115 last=120 prev=113")


# ---------------------------------------------------------------------- disconnects
def test_resume_after_disconnect_without_snapshot_when_chain_holds():
    s = synced_spot(110)
    assert feed(s, CLOSED) == [changed(SY, RC, "disconnected (abnormal_closure); resume pending")]
    assert not s.is_synced
    acts = feed(s, StreamOpened(attempt=1), delta(105, 110), delta(111, 115, [(100.0, 1.0)]))
    assert acts == [changed(RC, SY, "resumed: nothing was missed", PlanKind.RESUME)]
    assert (s.last_seq, s.epoch, s.stats.resumes, s.stats.stale_dropped) == (115, 1, 1, 2)  # 95..100 at sync + 105..110
    assert s.last_plan.kind is PlanKind.RESUME
    assert s.book.best_bid() == (100.0, 1.0)


def test_disconnect_then_gap_rebuilds():
    s = synced_spot(110)
    feed(s, CLOSED)
    acts = feed(s, delta(120, 125))
    reason = "gap: local 110, got first=120 last=125 prev=None"
    assert acts == [
        Alert(kind=AlertKind.GAP, symbol=SYM, reason=reason, seq=125, missed=9),
        FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
    ]  # already RECOVERING: no StateChanged
    assert s.state is RC
    assert s.on_snapshot(rest_snap(122), epoch=2) == [changed(RC, SY, "snapshot spliced", PlanKind.SNAPSHOT_REBUILD)]
    assert s.last_seq == 125


def test_snapshot_at_resume_point_counts_as_resume_and_detects_divergence():
    s = BookSession(SYM, OKX)
    feed(s, ws_snap(10, bids=[(99.0, 1.0)]), CLOSED)
    acts = feed(s, ws_snap(10, bids=[(99.0, 2.0)]))
    assert acts == [
        Alert(kind=AlertKind.CHECKSUM_MISMATCH, symbol=SYM, seq=10,
              reason="book diverged from the venue's snapshot at the same id"),
        changed(RC, SY, "ws snapshot", PlanKind.RESUME),
    ]
    assert (s.stats.diverged, s.stats.resumes) == (1, 1)
    assert s.book.best_bid() == (99.0, 2.0)


def test_disconnect_on_no_ids_venue_plans_resubscribe():
    s = BookSession(SYM, KRAKEN, verify_checksums=False)
    feed(s, ws_snap(None))
    reason = "disconnected (ping_timeout); no sequence ids"
    assert feed(s, StreamClosed(reason=CloseReason.PING_TIMEOUT)) == [changed(SY, RC, reason, PlanKind.RESUBSCRIBE)]
    assert feed(s, delta(None, None, [(98.0, 1.0)])) == []  # buffered, superseded by the snapshot
    assert feed(s, ws_snap(None, bids=[(97.0, 1.0)])) == [changed(RC, SY, "ws snapshot", PlanKind.RESUBSCRIBE)]
    assert s.book.bids() == [(97.0, 1.0)]


def test_disconnect_while_not_synced_does_nothing():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(1, 2))
    assert feed(s, CLOSED) == []
    assert s.state is AW


# ---------------------------------------------------------------------- integrity
def _okx_levels(bids, asks):
    braw = [(str(p), str(q)) for p, q in bids]
    araw = [(str(p), str(q)) for p, q in asks]
    return ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks], braw, araw)


def _okx_snap(seq, bids, asks, checksum=None):
    b, a, br, ar = _okx_levels(bids, asks)
    return BookSnapshot(symbol=SYM, bids=b, asks=a, bids_raw=br, asks_raw=ar, seq=seq, checksum=checksum)


def _okx_delta(prev, last, bids, asks, checksum):
    b, a, br, ar = _okx_levels(bids, asks)
    return BookDelta(symbol=SYM, bids=b, asks=a, bids_raw=br, asks_raw=ar, prev_seq=prev, last_seq=last,
                     checksum=checksum)


def test_okx_checksum_verified_on_snapshot_and_delta():
    s = BookSession(SYM, OKX)
    # §13.1 vector 1 as a snapshot, then the delta that turns it into vector 2.
    assert feed(s, _okx_snap(10, [("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")],
                             -1881014294)) == [changed(U, SY, "ws snapshot")]
    assert feed(s, _okx_delta(10, 11, [("3366", "0")], [("3372", "8")], 831078360)) == []
    assert s.stats.checksums_verified == 2
    assert s.book.top_raw(25) == ([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])


def test_okx_zero_checksum_is_absent_and_not_verified():
    s = BookSession(SYM, OKX)
    feed(s, _okx_snap(10, [("3366.1", "7")], [("3366.8", "9")], 0), _okx_delta(10, 11, [("3366", "6")], [], 0))
    assert (s.state, s.stats.checksums_verified, s.stats.checksum_mismatches) == (SY, 0, 0)


def test_checksum_mismatch_recovers():
    s = BookSession(SYM, OKX)
    feed(s, _okx_snap(10, [("3366.1", "7")], [("3366.8", "9")]))
    acts = feed(s, _okx_delta(10, 11, [("3366", "6")], [("3368", "8")], 12345))
    good = okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9"), ("3368", "8")])
    assert good == -1881014294
    reason = f"checksum mismatch: venue 12345, local {good}"
    assert acts == [
        Alert(kind=AlertKind.CHECKSUM_MISMATCH, symbol=SYM, reason=reason, seq=11),
        Resubscribe(symbol=SYM, reason=reason),
        changed(SY, RC, reason, PlanKind.RESUBSCRIBE),
    ]
    assert s.stats.checksum_mismatches == 1


def test_checksum_verification_can_be_switched_off():
    s = BookSession(SYM, OKX, verify_checksums=False)
    feed(s, _okx_snap(10, [("3366.1", "7")], [("3366.8", "9")]), _okx_delta(10, 11, [], [], 12345))
    assert s.state is SY and s.stats.checksum_mismatches == 0


def test_kraken_truncates_to_depth_before_checksum():
    s = BookSession(SYM, KRAKEN)
    asks = [("45285.2", "0.00100000"), ("45286.4", "1.54582015"), ("45286.6", "1.00000000")]
    bids = [("45283.5", "0.50000000"), ("45283.4", "0.04000000")]
    snap = BookSnapshot(symbol=SYM, bids=[(float(p), float(q)) for p, q in bids],
                        asks=[(float(p), float(q)) for p, q in asks], bids_raw=bids, asks_raw=asks,
                        checksum=1982867381, depth=3)
    assert feed(s, snap) == [changed(U, SY, "ws snapshot")]
    # A new best ask pushes 45286.6 out of depth 3; Kraken sends no delete for it.
    new_ask = ("45285.0", "2.00000000")
    expected = kraken_checksum([new_ask] + asks[:2], bids)
    d = BookDelta(symbol=SYM, bids=[], asks=[(45285.0, 2.0)], asks_raw=[new_ask], checksum=expected)
    assert feed(s, d) == []
    assert s.book.asks() == [(45285.0, 2.0), (45285.2, 0.001), (45286.4, 1.54582015)]
    assert s.stats.checksums_verified == 2


def test_crossed_book_reported_and_not_served():
    s = synced_spot(110)
    acts = feed(s, delta(111, 112, [(101.0, 3.0)]))
    reason = "crossed book: bid (101.0, 3.0) >= ask (101.0, 1.0)"
    assert acts == [
        Alert(kind=AlertKind.CROSSED, symbol=SYM, reason=reason, seq=112),
        FetchSnapshot(symbol=SYM, epoch=2, reason=reason, depth=1000),
        changed(SY, RC, reason, PlanKind.SNAPSHOT_REBUILD),
    ]
    assert not s.is_synced and s.stats.crossed == 1
    assert s.book.is_crossed()  # reported, not silently repaired


def test_crossed_snapshot_is_not_served():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100))
    acts = s.on_snapshot(rest_snap(110, bids=[(102.0, 1.0)], asks=[(101.0, 1.0)]), epoch=1)
    assert any(isinstance(a, Alert) and a.kind is AlertKind.CROSSED for a in acts)
    assert not s.is_synced


def test_invalid_delta_poisons_book_and_recovers():
    s = synced_spot(110)
    acts = feed(s, delta(111, 111, [(98.0, -1.0)]))
    assert [type(a) for a in acts] == [Alert, FetchSnapshot, StateChanged]
    assert acts[0].kind is AlertKind.INVALID_INPUT and acts[0].seq == 111
    assert s.book.poisoned is not None and s.stats.invalid_inputs == 1
    assert s.on_snapshot(rest_snap(115), epoch=2) == [changed(RC, SY, "snapshot spliced", PlanKind.SNAPSHOT_REBUILD)]
    assert s.book.poisoned is None


def test_invalid_input_while_synced_recovers_else_only_alerts():
    s = BookSession(SYM, BINANCE_SPOT)
    assert s.on_invalid_input("bad json") == [Alert(kind=AlertKind.INVALID_INPUT, symbol=SYM, reason="bad json")]
    s = synced_spot()
    acts = s.on_invalid_input("bad json")
    assert [type(a) for a in acts] == [Alert, FetchSnapshot, StateChanged]
    assert acts[1].reason == "invalid input: bad json"


def test_buffer_overflow_is_a_verdict():
    caps = ExchangeCapabilities(venue="t", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                                splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True, max_buffered_deltas=3)
    s = BookSession(SYM, caps)
    feed(s, delta(1, 1), delta(2, 2), delta(3, 3))
    acts = feed(s, delta(4, 4))
    assert acts == [
        Alert(kind=AlertKind.BUFFER_FULL, symbol=SYM, reason="more than 3 deltas buffered"),
        FetchSnapshot(symbol=SYM, epoch=2, reason="buffer overflow", depth=1000),
    ]
    assert (s.buffered, s.state, s.stats.buffer_overflows) == (1, AW, 1)
    assert s.on_snapshot(rest_snap(3), epoch=1) == []  # the answer to the superseded request
    assert s.on_snapshot(rest_snap(3), epoch=2) == [changed(AW, SY, "snapshot spliced")]
    assert s.last_seq == 4


def test_buffer_overflow_before_first_snapshot_never_syncs_from_replay():
    caps = ExchangeCapabilities(venue="t", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                                splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True, max_buffered_deltas=2)
    s = BookSession(SYM, caps, replay_available=True)
    feed(s, delta(50, 50), delta(51, 51))
    acts = feed(s, delta(52, 52, [(99.0, 1.0)]))
    assert not any(isinstance(a, ReplayDeltas) for a in acts)
    s.on_replay([])
    assert not s.is_synced  # no snapshot was ever applied


# ---------------------------------------------------------------------- replay
def test_replay_deltas_closes_gap():
    s = BookSession(SYM, BINANCE_SPOT, replay_available=True)
    feed(s, delta(95, 100))
    s.on_snapshot(rest_snap(110), epoch=1)
    reason = "gap: local 110, got first=120 last=125 prev=None"
    acts = feed(s, delta(120, 125, [(100.0, 3.0)]))
    assert acts == [
        Alert(kind=AlertKind.GAP, symbol=SYM, reason=reason, seq=125, missed=9),
        ReplayDeltas(symbol=SYM, from_seq=111, to_seq=119, reason=reason),
        changed(SY, RC, reason, PlanKind.REPLAY_DELTAS),
    ]
    feed(s, delta(126, 126, [], [(102.0, 1.0)]))
    acts = s.on_replay([delta(111, 115, [(98.0, 1.0)]), delta(116, 119, [(98.0, 2.0)])])
    assert acts == [changed(RC, SY, "gap closed from the journal", PlanKind.REPLAY_DELTAS)]
    assert s.last_seq == 126 and s.epoch == 1 and s.buffered == 0
    assert s.book.bids() == [(100.0, 3.0), (99.0, 1.0), (98.0, 2.0)]
    assert s.book.asks() == [(101.0, 1.0), (102.0, 1.0)]
    assert s.stats.replays == 1


def test_replay_that_cannot_close_gap_falls_back_to_snapshot():
    s = BookSession(SYM, BINANCE_SPOT, replay_available=True)
    feed(s, delta(95, 100))
    s.on_snapshot(rest_snap(110), epoch=1)
    feed(s, delta(120, 125))
    acts = s.on_replay([delta(111, 115)])  # 116..119 still missing
    assert acts == [FetchSnapshot(symbol=SYM, epoch=2, reason="replay could not close the gap", depth=1000)]
    assert s.state is RC
    assert s.on_replay([]) == []  # no replay pending any more


def test_replay_journal_unavailable_falls_back_to_snapshot():
    s = BookSession(SYM, BINANCE_SPOT, replay_available=True)
    feed(s, delta(95, 100))
    s.on_snapshot(rest_snap(110), epoch=1)
    feed(s, delta(120, 125))
    assert s.on_replay(None) == [FetchSnapshot(symbol=SYM, epoch=2, reason="replay could not close the gap",
                                               depth=1000)]


# ---------------------------------------------------------------------- KuCoin level sequences
def test_kucoin_level_seqs_filtered_on_bridge():
    # §10.2 worked example: snapshot S = 16; changes at 16 and 15 ignored, 18 and 19 applied.
    s = BookSession(SYM, KUCOIN)
    d = delta(15, 19, [(99.0, 5.0), (98.0, 7.0)], [(101.0, 0.0), (102.0, 4.0)], bid_seqs=[16, 18], ask_seqs=[15, 19])
    feed(s, d)
    acts = s.on_snapshot(rest_snap(16, bids=[(99.0, 1.0)], asks=[(101.0, 1.0)]), epoch=1)
    assert acts == [changed(AW, SY, "snapshot spliced")]
    assert s.last_seq == 19
    assert s.book.bids() == [(99.0, 1.0), (98.0, 7.0)]
    assert s.book.asks() == [(101.0, 1.0), (102.0, 4.0)]


def test_kucoin_ask_level_seqs_filtered_when_no_bid_changes():
    s = BookSession(SYM, KUCOIN)
    feed(s, delta(15, 19, [], [(101.0, 0.0), (102.0, 4.0)], bid_seqs=None, ask_seqs=[15, 19]))
    s.on_snapshot(rest_snap(16, bids=[(99.0, 1.0)], asks=[(101.0, 1.0)]), epoch=1)
    assert s.book.asks() == [(101.0, 1.0), (102.0, 4.0)]  # the change at seq 15 is older than S


# ---------------------------------------------------------------------- further pinned core bugs
def test_usdm_resume_while_waiting_for_bridge_keeps_chain():
    s = BookSession(SYM, BINANCE_USDM)
    feed(s, delta(90, 95, prev=85))
    s.on_snapshot(rest_snap(100), epoch=1)  # nothing newer buffered: waiting for the bridge
    feed(s, CLOSED)
    feed(s, delta(98, 105, prev=100))  # bridges U <= 100 <= u (and pu == 100)
    assert s.state is SY and s.last_seq == 105
    assert feed(s, delta(106, 110, prev=105)) == []  # pu == previous u: must apply
    assert s.last_seq == 110 and s.stats.gaps == 0


def test_duplicate_rest_answer_does_not_regress_synced_book():
    s = BookSession(SYM, BINANCE_SPOT)
    feed(s, delta(95, 100))
    answer = rest_snap(100)
    s.on_snapshot(answer, epoch=1)
    feed(s, delta(101, 105, [(100.0, 2.0)]))
    s.on_snapshot(answer, epoch=1)  # the driver delivers the same answer again
    assert (s.last_seq, s.book.best_bid()) == (105, (100.0, 2.0))


# ---------------------------------------------------------------------- halt / transitions / misc
def test_halt_and_reset():
    s = synced_spot(110)
    assert s.halt("breaker open") == [changed(SY, HA, "breaker open", PlanKind.HALT),
                                      Halt(symbol=SYM, reason="breaker open")]
    assert s.halt("again") == []
    assert feed(s, delta(111, 112), rest_snap(200), CLOSED) == []
    assert s.on_snapshot(rest_snap(200), epoch=s.epoch) == []
    assert s.state is HA and s.last_seq == 110
    assert s.reset() == [changed(HA, U, "operator reset")]
    assert (s.state, s.last_seq, len(s.book), s.buffered) == (U, None, 0, 0)
    assert feed(s, delta(300, 301))[0] == FetchSnapshot(symbol=SYM, epoch=2, reason="initial sync", depth=1000)


def test_illegal_transition_raises():
    s = synced_spot()
    with pytest.raises(InvalidState):
        s.reset()  # only legal from HALTED
    with pytest.raises(InvalidState):
        s._to(AW, Phase.SNAPSHOT, "no path from SYNCED back to AWAITING_SNAPSHOT", [])  # no public input reaches it
    assert s.state is SY


def test_transition_table():
    # The state-level view of PHASE_TRANSITIONS (tests/core/test_session_phases.py pins that
    # every row is reachable). UNSYNCED -> RECOVERING, AWAITING_SNAPSHOT -> RECOVERING and
    # AWAITING_SNAPSHOT -> UNSYNCED were listed before [shape] but no input ever took them.
    assert TRANSITIONS == {
        U: frozenset({AW, SY, HA}),
        AW: frozenset({SY, HA}),
        SY: frozenset({RC, HA}),
        RC: frozenset({SY, HA}),
        HA: frozenset({U}),
    }


def test_one_symbol_gap_does_not_touch_other_session():
    a = synced_spot(110)
    b = BookSession("ETHUSDT", BINANCE_SPOT)
    feed(b, delta(1, 5, sym="ETHUSDT"))
    b.on_snapshot(rest_snap(10, bids=[(50.0, 2.0)], asks=[(51.0, 2.0)], sym="ETHUSDT"), epoch=1)
    before = (b.state, b.last_seq, b.book.bids(), b.book.asks(), b.epoch, b.stats.as_dict())
    acts = feed(a, delta(200, 201))
    assert all(x.symbol == SYM for x in acts)
    assert a.state is RC
    assert (b.state, b.last_seq, b.book.bids(), b.book.asks(), b.epoch, b.stats.as_dict()) == before


def test_ticker_cross_check():
    s = synced_spot(110)
    ok = BookTicker(symbol=SYM, seq=110, bid_price=99.0, bid_size=1.0, ask_price=101.0, ask_size=1.0)
    assert feed(s, ok) == []
    assert feed(s, BookTicker(symbol=SYM, seq=109, bid_price=1.0, bid_size=1.0, ask_price=2.0, ask_size=1.0)) == []
    bad = BookTicker(symbol=SYM, seq=110, bid_price=99.0, bid_size=2.0, ask_price=101.0, ask_size=1.0)
    assert feed(s, bad) == [Alert(kind=AlertKind.TICKER_MISMATCH, symbol=SYM, seq=110,
                                  reason="ticker 99.0/101.0 vs book (99.0, 1.0)/(101.0, 1.0)")]
    assert (s.stats.ticker_checks, s.stats.ticker_mismatches) == (2, 1)


def test_unknown_events_return_no_actions():
    s = synced_spot()
    assert feed(s, Tick(now_ns=5), Heartbeat(symbol=SYM), StreamOpened()) == []


def test_monotonic_venue_skips_are_invisible():
    s = BookSession(SYM, BYBIT)
    feed(s, ws_snap(100))
    assert feed(s, delta(None, 150, [(100.0, 1.0)]), delta(None, 150), delta(None, 120)) == []
    assert (s.last_seq, s.stats.gaps, s.stats.duplicates, s.stats.stale_dropped) == (150, 0, 1, 1)


def test_midstream_ws_snapshot_replaces_synced_book():
    s = BookSession(SYM, BYBIT)
    feed(s, ws_snap(100), delta(None, 101, [(100.0, 1.0)]))
    assert feed(s, ws_snap(200, bids=[(90.0, 1.0)])) == []
    assert (s.state, s.last_seq, s.book.bids()) == (SY, 200, [(90.0, 1.0)])


# ---------------------------------------------------------------------- stateful property test
import random  # noqa: E402  (the ground truth is seeded; the core never sees it)

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule  # noqa: E402

from bookkeeper.testing.strategies import tick_price  # noqa: E402


class GroundTruth:
    """A seeded exchange: a never-crossed book and gapless ids, each message ``first..last``
    with ``prev`` = the previous message's ``last``. ``books[last]`` is the truth after it."""

    def __init__(self, seed: int, *, fields: str) -> None:
        self.rng = random.Random(seed)
        self.fields = fields  # "range": U/u, "pointer": U/u/pu, "okx": seqId/prevSeqId only
        self.bids = {tick_price(k): 1.0 for k in range(190, 200, 3)}  # 95.0 .. 99.5, below 100
        self.asks = {tick_price(k): 1.0 for k in range(201, 211, 3)}  # 100.5 .. 105, above 100
        self.last = 0
        self.books: dict[int, tuple[dict[float, float], dict[float, float]]] = {0: (dict(self.bids), dict(self.asks))}

    def _levels(self, lo: int, hi: int) -> list[tuple[float, float]]:
        ks = self.rng.sample(range(lo, hi + 1), self.rng.randint(0, 3))
        return [(tick_price(k), 0.0 if self.rng.random() < 0.3 else self.rng.randint(1, 50) / 10) for k in ks]

    def step(self) -> BookDelta:
        first = self.last + 1
        last = self.last + self.rng.randint(1, 3)
        bids, asks = self._levels(180, 199), self._levels(201, 220)
        for side, lv in ((self.bids, bids), (self.asks, asks)):
            for p, q in lv:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        prev = self.last
        self.last = last
        self.books[last] = (dict(self.bids), dict(self.asks))
        if self.fields == "range":
            return BookDelta(symbol=SYM, bids=bids, asks=asks, first_seq=first, last_seq=last)
        if self.fields == "pointer":
            return BookDelta(symbol=SYM, bids=bids, asks=asks, first_seq=first, last_seq=last, prev_seq=prev)
        return BookDelta(symbol=SYM, bids=bids, asks=asks, last_seq=last, prev_seq=prev)

    def snapshot(self, at: int, source: SnapshotSource) -> BookSnapshot:
        bids, asks = self.books[at]
        return BookSnapshot(symbol=SYM, bids=list(bids.items()), asks=list(asks.items()), seq=at, source=source)


class SessionMachine(RuleBasedStateMachine):
    caps: ExchangeCapabilities = BINANCE_SPOT
    fields = "range"

    @initialize(seed=st.integers(0, 2**32 - 1))
    def setup(self, seed: int) -> None:
        self.truth = GroundTruth(seed, fields=self.fields)
        self.session = BookSession(SYM, self.caps, max_snapshot_failures=3)
        self.wire: list[BookDelta] = []  # in flight, oldest first
        self.delivered: list[BookDelta] = []
        self.epochs_requested: list[int] = []
        self.epoch_answered = 0
        # A WS-snapshot venue pushes a snapshot on the first subscribe.
        self.resubscribe_pending = self.caps.ws_snapshot_on_subscribe

    def _feed(self, *events: object) -> list[Action]:
        return self._actions(feed(self.session, *events))

    def _actions(self, acts: list[Action]) -> list[Action]:
        for a in acts:
            assert a.symbol == SYM
            if isinstance(a, FetchSnapshot):
                assert a.epoch == self.session.epoch
                self.epochs_requested.append(a.epoch)
            elif isinstance(a, Resubscribe):
                self.resubscribe_pending = True
            elif isinstance(a, ReplayDeltas):
                raise AssertionError("replay was not offered")
        return acts

    def _ensure_wire(self, n: int) -> None:
        while len(self.wire) < n:
            self.wire.append(self.truth.step())

    @rule()
    def produce(self) -> None:
        self.wire.append(self.truth.step())

    @rule(n=st.integers(1, 6))
    def deliver(self, n: int) -> None:
        self._ensure_wire(n)
        for _ in range(n):
            d = self.wire.pop(0)
            self.delivered.append(d)
            self._feed(d)

    @rule()
    def drop(self) -> None:
        self._ensure_wire(1)
        self.wire.pop(0)

    @precondition(lambda self: self.delivered)
    @rule(k=st.integers(0, 2**16))
    def duplicate(self, k: int) -> None:
        self._feed(self.delivered[-1 - k % min(len(self.delivered), 5)])

    @rule()
    def reorder(self) -> None:
        self._ensure_wire(2)
        self.wire[0], self.wire[1] = self.wire[1], self.wire[0]

    @rule(lost=st.integers(0, 2))
    def disconnect(self, lost: int) -> None:
        del self.wire[:lost]
        self._feed(CLOSED, StreamOpened(attempt=1))
        if self.session.state is RC and not self.session.capabilities.rest_snapshot:
            self.resubscribe_pending = True  # the driver resubscribes on reconnect

    def _answerable(self) -> bool:
        return (self.resubscribe_pending
                or bool(self.epochs_requested and self.epochs_requested[-1] > self.epoch_answered))

    @precondition(lambda self: self._answerable())
    @rule(back=st.integers(0, 3))
    def snapshot_reply(self, back: int) -> None:
        """Answer the newest request with the truth now, or (``back`` > 0) a stale cache."""
        ids = sorted(self.truth.books)
        at = ids[max(0, len(ids) - 1 - back)]
        if self.resubscribe_pending:
            self.resubscribe_pending = False
            self._feed(self.truth.snapshot(self.truth.last, SnapshotSource.WS))
        else:
            epoch = self.epochs_requested[-1]
            self.epoch_answered = epoch
            self._actions(self.session.on_snapshot(self.truth.snapshot(at, SnapshotSource.REST), epoch=epoch))

    @precondition(lambda self: len(self.epochs_requested) > 1)
    @rule()
    def old_epoch_reply(self) -> None:
        epoch = self.epochs_requested[-2]
        if epoch != self.session.epoch:
            before = (self.session.state, self.session.last_seq, self.session.buffered)
            assert self.session.on_snapshot(self.truth.snapshot(self.truth.last, SnapshotSource.REST), epoch=epoch) == []
            assert (self.session.state, self.session.last_seq, self.session.buffered) == before

    @precondition(lambda self: self.epochs_requested and self.epochs_requested[-1] > self.epoch_answered)
    @rule()
    def snapshot_failed(self) -> None:
        epoch = self.epochs_requested[-1]
        self.epoch_answered = epoch
        self._actions(self.session.on_snapshot_failed(epoch, "timeout"))

    @precondition(lambda self: self.session.state is HA)
    @rule()
    def operator_reset(self) -> None:
        assert self.session.reset() == [changed(HA, U, "operator reset")]
        self.resubscribe_pending = False
        self.epoch_answered = self.session.epoch

    @invariant()
    def book_is_well_formed(self) -> None:
        if hasattr(self, "session"):
            self.session.book.check_integrity()

    @invariant()
    def synced_book_equals_truth_and_is_not_crossed(self) -> None:
        s = getattr(self, "session", None)
        if s is None or not s.is_synced:
            return
        bids, asks = self.truth.books[s.last_seq]
        assert s.book.equals(bids.items(), asks.items()), (s.last_seq, s.book.bids(), s.book.asks())
        assert not s.book.is_crossed()


class PointerSessionMachine(SessionMachine):
    caps = BINANCE_USDM
    fields = "pointer"


class WsSnapshotSessionMachine(SessionMachine):
    caps = ExchangeCapabilities(venue="okx", sequence_model=SequenceModel.PREV_POINTER,
                                ws_splice_rule=SpliceRule.PREV_EXACT, ws_snapshot_on_subscribe=True)
    fields = "okx"


_MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=40, derandomize=True, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestRangeSessionMachine = SessionMachine.TestCase
TestRangeSessionMachine.settings = _MACHINE_SETTINGS
TestPointerSessionMachine = PointerSessionMachine.TestCase
TestPointerSessionMachine.settings = _MACHINE_SETTINGS
TestWsSnapshotSessionMachine = WsSnapshotSessionMachine.TestCase
TestWsSnapshotSessionMachine.settings = _MACHINE_SETTINGS
