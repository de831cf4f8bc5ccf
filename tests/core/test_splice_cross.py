"""``SpliceRule.CROSS_NEXT`` (Bybit ``orderbook.full`` + REST ``full_orderbook``, exchange-protocols.md
§2.3, §6.2): a snapshot is placed among the deltas by cross sequence (``seq``) and checked by
update id (``u``); a delta newer by cross sequence but stale by id is the venue restarting its
ids, and the session resyncs instead of dropping it."""

from __future__ import annotations

import pytest

from bookkeeper.actions import Alert, AlertKind, FetchSnapshot, SyncState
from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.events import BookDelta, BookSnapshot, CloseReason, SnapshotSource, StreamClosed
from bookkeeper.sequencer import SeqVerdict
from bookkeeper.session import BookSession, Phase
from bookkeeper.splicing import SpliceOutcome, SpliceResult, bridges, is_stale, judge_bridge, splice

CROSS = SpliceRule.CROSS_NEXT
BR, WAIT, OLD = SpliceOutcome.BRIDGED, SpliceOutcome.WAITING, SpliceOutcome.STALE_SNAPSHOT
CAPS = ExchangeCapabilities(venue="full", sequence_model=SequenceModel.CONTIGUOUS_RANGE, splice_rule=CROSS,
                            ws_splice_rule=CROSS, rest_snapshot=True)


def d(u: int, seq: int | None, bid: float = 10.0, size: float = 1.0) -> BookDelta:
    """One ``orderbook.full`` message: ``u`` and cross sequence ``seq``."""
    return BookDelta(symbol="X", bids=[(bid, size)], asks=[], first_seq=u, last_seq=u, cross_seq=seq)


def snap(u: int, seq: int | None, bid: float = 10.0) -> BookSnapshot:
    return BookSnapshot(symbol="X", bids=[(bid, 1.0)], asks=[(20.0, 1.0)], seq=u, cross_seq=seq,
                        source=SnapshotSource.REST)


# (S = u, C = seq, buffer, outcome, start, dropped)
TABLE = [
    # Bybit's procedure: drop seq < C; at seq == C the u must be S (dropped); then u = S+1
    pytest.param(100, 900, [d(99, 890), d(100, 900), d(101, 907)], BR, 2, 2, id="match-then-next"),
    pytest.param(100, 900, [d(99, 890), d(100, 900)], WAIT, 2, 2, id="match-is-last"),
    pytest.param(100, 950, [d(99, 890), d(100, 900)], WAIT, 2, 2, id="newer-than-all"),
    pytest.param(100, 900, [d(99, 890), d(7, 900), d(8, 907)], OLD, 1, 1, id="same-seq-other-u"),
    pytest.param(100, 900, [d(99, 890), d(100, 900), d(103, 907)], OLD, 2, 2, id="u-skips-after-match"),
    pytest.param(100, 880, [d(99, 890), d(100, 900)], OLD, 0, 0, id="older-than-first-buffered"),
    pytest.param(100, 890, [d(99, 890), d(100, 900)], OLD, 0, 0, id="seq-matches-other-u"),
    # ids restarted (u = 1) after the snapshot's message: only the cross sequence tells
    pytest.param(100, 900, [d(100, 900), d(1, 905), d(2, 909)], OLD, 1, 1, id="restart-after-snapshot"),
    pytest.param(3, 909, [d(120, 880), d(1, 901), d(2, 905), d(3, 909), d(4, 913)], BR, 4, 4,
                 id="snapshot-after-restart"),
    # without cross sequences the rule is RANGE_NEXT
    pytest.param(100, None, [d(99, None), d(100, None), d(101, None)], BR, 2, 2, id="no-cross-is-range-next"),
    pytest.param(100, None, [d(102, 907)], OLD, 0, 0, id="no-snapshot-cross-gap"),
]


@pytest.mark.parametrize("u,seq,buffer,outcome,start,dropped", TABLE)
def test_cross_next_splice_table(u: int, seq: int | None, buffer: list[BookDelta], outcome: SpliceOutcome,
                                 start: int, dropped: int) -> None:
    assert splice(CROSS, u, buffer, snapshot_cross=seq) == SpliceResult(outcome=outcome, start=start,
                                                                          dropped=dropped)


# (delta, stale, bridges) against a snapshot at u=100, seq=900
JUDGE = [
    pytest.param(d(100, 900), True, False, id="the-snapshots-own"),
    pytest.param(d(99, 890), True, False, id="older"),
    pytest.param(d(101, 905), False, True, id="next"),
    pytest.param(d(102, 905), False, False, id="skips"),
    pytest.param(d(1, 905), False, False, id="restarted-ids-are-no-bridge"),
    pytest.param(d(101, 900), False, False, id="same-seq-next-u"),
    pytest.param(d(101, None), False, True, id="no-cross-by-u"),
]


@pytest.mark.parametrize("delta,stale,bridge", JUDGE)
def test_cross_next_stale_bridge_and_judge_agree(delta: BookDelta, stale: bool, bridge: bool) -> None:
    assert is_stale(CROSS, 100, delta, snapshot_cross=900) is stale
    assert bridges(CROSS, 100, delta, snapshot_cross=900) is bridge
    expected = SeqVerdict.STALE if stale else SeqVerdict.APPLY if bridge else SeqVerdict.GAP
    assert judge_bridge(CROSS, 100, delta, snapshot_cross=900) is expected


def test_other_rules_ignore_the_cross_sequence() -> None:
    delta = d(1, 905)
    assert is_stale(SpliceRule.RANGE_NEXT, 100, delta, snapshot_cross=900) is True
    assert splice(SpliceRule.RANGE_NEXT, 100, [d(101, 800)], snapshot_cross=900).outcome is BR


# ---------------------------------------------------------------------- the session
def kinds(actions: list[object]) -> list[str]:
    return [type(a).__name__ for a in actions]


def synced(u: int = 100, seq: int = 900) -> BookSession:
    """A session synced from REST at (u, seq) with one delta bridged (u+1); the snapshot's own
    message, buffered before it, was dropped (``stale_dropped == 1``)."""
    s = BookSession("X", CAPS)
    s.on_delta(d(u, seq))
    s.on_snapshot(snap(u, seq), epoch=1)
    s.on_delta(d(u + 1, seq + 4, bid=11.0))
    assert (s.state, s.phase, s.last_seq, s.last_cross_seq) == (SyncState.SYNCED, Phase.IDLE, u + 1, seq + 4)
    assert (s.stats.stale_dropped, s.stats.bridged) == (1, 1)
    return s


def test_restarted_ids_while_synced_resync_with_the_delta_kept() -> None:
    s = synced()
    actions = s.on_delta(d(1, 910, bid=12.0))  # u = 1: "restart the sync procedure" (§6.2)
    assert kinds(actions) == ["Alert", "FetchSnapshot", "StateChanged"]
    alert, fetch = actions[0], actions[1]
    assert isinstance(alert, Alert) and alert.kind is AlertKind.SEQ_RESTART and alert.seq == 1
    assert isinstance(fetch, FetchSnapshot) and fetch.epoch == 2
    assert (s.state, s.stats.seq_restarts, s.stats.stale_dropped, s.buffered) == (SyncState.RECOVERING, 1, 1, 1)
    s.on_delta(d(2, 914, bid=13.0))
    # the REST book after the restart, at u = 2 (the message with seq 914): u = 3 continues it
    s.on_snapshot(BookSnapshot(symbol="X", bids=[(13.0, 1.0)], asks=[(20.0, 1.0)], seq=2, cross_seq=914,
                               source=SnapshotSource.REST), epoch=2)
    assert s.on_delta(d(3, 920, bid=14.0)) == []
    assert (s.state, s.last_seq, s.last_cross_seq) == (SyncState.SYNCED, 3, 920)
    assert s.book.best_bid() == (14.0, 1.0)


def test_a_stale_delta_without_newer_cross_is_still_only_stale() -> None:
    s = synced()
    assert s.on_delta(d(100, 900)) == [] and s.on_delta(d(101, 904)) == []
    assert (s.stats.stale_dropped, s.stats.duplicates, s.stats.seq_restarts, s.state) == (2, 1, 0, SyncState.SYNCED)


def test_without_cross_sequences_a_restart_would_be_dropped_as_stale() -> None:
    """What the cross sequence buys: the same restart without it is an ordinary stale delta."""
    s = synced()
    s.on_delta(BookDelta(symbol="X", bids=[(12.0, 1.0)], asks=[], first_seq=1, last_seq=1))
    assert (s.state, s.stats.seq_restarts, s.stats.stale_dropped) == (SyncState.SYNCED, 0, 2)


def test_a_snapshot_from_before_a_restart_is_fetched_again() -> None:
    s = synced()
    s.on_delta(d(1, 910, bid=12.0))  # restart: resync
    late = s.on_snapshot(snap(102, 907), epoch=2)  # taken before the restart: older than the buffered u = 1
    assert AlertKind.STALE_SNAPSHOT in [a.kind for a in late if isinstance(a, Alert)]
    assert any(isinstance(a, FetchSnapshot) and a.epoch == 3 for a in late)
    assert s.state is SyncState.RECOVERING and s.stats.stale_snapshots == 1


def test_restart_seen_first_after_a_reconnect_resyncs() -> None:
    s = synced()
    s.on_stream_closed(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE))
    assert s.phase is Phase.RESUME
    actions = s.on_delta(d(1, 930))
    assert "FetchSnapshot" in kinds(actions) and s.stats.seq_restarts == 1 and s.phase is Phase.SNAPSHOT


def test_restart_while_a_bridge_is_owed_resyncs() -> None:
    s = BookSession("X", CAPS)
    s.on_delta(d(100, 900))
    s.on_snapshot(snap(100, 900), epoch=1)  # newer than all buffered: the next delta must bridge
    assert s.phase is Phase.BRIDGE
    actions = s.on_delta(d(1, 905))
    assert "FetchSnapshot" in kinds(actions) and s.stats.seq_restarts == 1 and s.stats.gaps == 0


def test_a_synced_book_takes_a_snapshot_newer_by_cross_sequence() -> None:
    """A snapshot at a lower id but a newer cross sequence (a shared or journal snapshot after a
    restart) is the venue's restarted ids, not an old snapshot."""
    s = synced()
    actions = s.on_snapshot(BookSnapshot(symbol="X", bids=[(15.0, 2.0)], asks=[(20.0, 1.0)], seq=4, cross_seq=990,
                                         source=SnapshotSource.REPLAY))
    assert [a.kind for a in actions if isinstance(a, Alert)] == [AlertKind.SEQ_RESTART]
    assert (s.last_seq, s.last_cross_seq, s.book.best_bid()) == (4, 990, (15.0, 2.0))
    refused = s.on_snapshot(BookSnapshot(symbol="X", bids=[(9.0, 2.0)], asks=[(20.0, 1.0)], seq=3, cross_seq=980,
                                         source=SnapshotSource.REPLAY))
    assert [a.kind for a in refused if isinstance(a, Alert)] == [AlertKind.STALE_SNAPSHOT]
    assert s.book.best_bid() == (15.0, 2.0)


def test_cross_next_sessions_never_take_the_fused_fast_path() -> None:
    # the fast path does not keep the cross sequence: a duplicate after it would look like an
    # id restart (newer cross than the snapshot's, stale u) and resync a good book
    s = BookSession("X", CAPS)
    s.on_delta(d(99, 890))
    s.on_snapshot(snap(100, 900), epoch=s.epoch)
    s.on_delta(d(101, 907))
    assert s.state is SyncState.SYNCED
    assert s.apply_frame_fast(b"{}", lambda *a: (102, 102)) is False
