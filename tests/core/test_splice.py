"""The splice rule (exchange-protocols.md §2.3) per SpliceRule, and the recovery ladder."""

from __future__ import annotations

import doctest

import pytest

from bookkeeper import recovery, splicing
from bookkeeper.actions import PlanKind
from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.recovery import RecoveryPlan, plan_recovery
from bookkeeper.sequencer import SeqVerdict
from bookkeeper.splicing import (
    ID_RULES,
    SpliceOutcome,
    SpliceResult,
    bridges,
    is_stale,
    judge_bridge,
    needs_bridge,
    rule_for,
    splice,
    unbridgeable,
)

BR, WAIT, OLD = SpliceOutcome.BRIDGED, SpliceOutcome.WAITING, SpliceOutcome.STALE_SNAPSHOT


def rng(first: int, last: int) -> BookDelta:
    return BookDelta(symbol="X", bids=[], asks=[], first_seq=first, last_seq=last)


def ptr(prev: int, last: int, first: int | None = None) -> BookDelta:
    return BookDelta(symbol="X", bids=[], asks=[], first_seq=first, last_seq=last, prev_seq=prev)


def mono(last: int) -> BookDelta:
    return BookDelta(symbol="X", bids=[], asks=[], last_seq=last)


NOIDS = BookDelta(symbol="X", bids=[], asks=[])

# (rule, S, buffer, outcome, start, dropped)
SPLICE_TABLE = [
    # RANGE_NEXT, Binance spot / Gate / KuCoin: drop u <= S; first kept U <= S+1 <= u.
    pytest.param(SpliceRule.RANGE_NEXT, 100, [rng(90, 95), rng(96, 100), rng(101, 104)], BR, 2, 2, id="next-exact"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, [rng(90, 99), rng(100, 104)], BR, 1, 1, id="next-straddle"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, [rng(96, 100)], WAIT, 1, 1, id="next-all-stale"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, [], WAIT, 0, 0, id="next-empty"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, [rng(102, 105)], OLD, 0, 0, id="next-snapshot-too-old"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, [rng(95, 100), rng(102, 104)], OLD, 1, 1, id="next-hole-after-stale"),
    # RANGE_AT, Binance USD-M: drop u < S; first kept U <= S <= u.
    pytest.param(SpliceRule.RANGE_AT, 100, [rng(90, 99), rng(100, 104)], BR, 1, 1, id="at-starts-at-S"),
    pytest.param(SpliceRule.RANGE_AT, 100, [rng(95, 100), rng(101, 104)], BR, 0, 0, id="at-ends-at-S-kept"),
    pytest.param(SpliceRule.RANGE_AT, 100, [rng(90, 99)], WAIT, 1, 1, id="at-all-stale"),
    pytest.param(SpliceRule.RANGE_AT, 100, [rng(90, 99), rng(101, 104)], OLD, 1, 1, id="at-first-above-S"),
    # PREV_BRACKET, OKX announced REST flow: drop seqId <= S; first kept prevSeqId <= S < seqId.
    pytest.param(SpliceRule.PREV_BRACKET, 100, [ptr(90, 95), ptr(95, 100), ptr(100, 104)], BR, 2, 2, id="bracket-prev-eq-S"),
    pytest.param(SpliceRule.PREV_BRACKET, 100, [ptr(95, 98), ptr(98, 104)], BR, 1, 1, id="bracket-prev-below-S"),
    pytest.param(SpliceRule.PREV_BRACKET, 100, [ptr(95, 100)], WAIT, 1, 1, id="bracket-all-stale"),
    pytest.param(SpliceRule.PREV_BRACKET, 100, [ptr(101, 104)], OLD, 0, 0, id="bracket-prev-above-S"),
    # PREV_EXACT, WS snapshot of pointer venues: drop last <= S; first kept prev == S.
    pytest.param(SpliceRule.PREV_EXACT, 10, [ptr(5, 10), ptr(10, 15)], BR, 1, 1, id="exact-bridges"),
    pytest.param(SpliceRule.PREV_EXACT, 10, [ptr(10, 10)], WAIT, 1, 1, id="exact-heartbeat-stale"),
    pytest.param(SpliceRule.PREV_EXACT, 10, [ptr(12, 15)], OLD, 0, 0, id="exact-prev-mismatch"),
    # MONOTONIC: drop last <= S; anything newer applies.
    pytest.param(SpliceRule.MONOTONIC, 100, [mono(99), mono(100), mono(150)], BR, 2, 2, id="mono-newer"),
    pytest.param(SpliceRule.MONOTONIC, 100, [mono(100)], WAIT, 1, 1, id="mono-all-stale"),
    # NONE: the snapshot supersedes everything buffered.
    pytest.param(SpliceRule.NONE, None, [NOIDS, NOIDS], WAIT, 2, 2, id="none-drops-all"),
    pytest.param(SpliceRule.NONE, 5, [rng(6, 7)], WAIT, 1, 1, id="none-ignores-ids"),
]


@pytest.mark.parametrize("rule,snap,buffer,outcome,start,dropped", SPLICE_TABLE)
def test_splice_table(rule, snap, buffer, outcome, start, dropped):
    assert splice(rule, snap, buffer) == SpliceResult(outcome=outcome, start=start, dropped=dropped)


# (rule, S, delta, stale, bridges)
BRIDGE_TABLE = [
    pytest.param(SpliceRule.RANGE_NEXT, 100, rng(101, 101), False, True, id="next-S+1-only"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, rng(100, 100), True, False, id="next-S-only"),
    pytest.param(SpliceRule.RANGE_NEXT, 100, rng(102, 110), False, False, id="next-skips-S+1"),
    pytest.param(SpliceRule.RANGE_AT, 100, rng(100, 100), False, True, id="at-S-only"),
    pytest.param(SpliceRule.RANGE_AT, 100, rng(99, 99), True, False, id="at-below-S"),
    pytest.param(SpliceRule.RANGE_AT, 100, rng(101, 105), False, False, id="at-above-S"),
    pytest.param(SpliceRule.PREV_BRACKET, 100, ptr(100, 101), False, True, id="bracket-edge"),
    pytest.param(SpliceRule.PREV_BRACKET, 100, ptr(99, 100), True, False, id="bracket-ends-at-S"),
    pytest.param(SpliceRule.MONOTONIC, 100, mono(101), False, True, id="mono"),
    pytest.param(SpliceRule.NONE, 100, mono(101), True, True, id="none"),
]


@pytest.mark.parametrize("rule,snap,delta,stale,bridge", BRIDGE_TABLE)
def test_is_stale_and_bridges_table(rule, snap, delta, stale, bridge):
    assert is_stale(rule, snap, delta) is stale
    assert bridges(rule, snap, delta) is bridge


@pytest.mark.parametrize("rule", [SpliceRule.RANGE_NEXT, SpliceRule.RANGE_AT, SpliceRule.PREV_BRACKET])
def test_delta_without_ids_never_bridges_a_sequenced_rule(rule):
    assert bridges(rule, 100, NOIDS) is False
    assert is_stale(rule, 100, NOIDS) is False


def test_snapshot_without_id_bridges_anything():
    for rule in SpliceRule:
        if rule is not SpliceRule.NONE:
            assert bridges(rule, None, rng(5, 9)) is True
            assert is_stale(rule, None, rng(5, 9)) is False


# ---------------------------------------------------------------------- plan_recovery ladder
def caps(*, model=SequenceModel.CONTIGUOUS_RANGE, ws=False, rest=False) -> ExchangeCapabilities:
    return ExchangeCapabilities(venue="t", sequence_model=model, ws_snapshot_on_subscribe=ws, rest_snapshot=rest)


LADDER = [
    pytest.param(caps(rest=True), {}, PlanKind.SNAPSHOT_REBUILD, "gap", id="rest-venue"),
    pytest.param(caps(rest=True), {"replay_available": True}, PlanKind.REPLAY_DELTAS, "gap", id="replay-first"),
    pytest.param(caps(ws=True, rest=True), {}, PlanKind.RESUBSCRIBE, "gap", id="ws-snapshot-before-rest"),
    pytest.param(caps(model=SequenceModel.PREV_POINTER, ws=True), {"replay_available": True},
                 PlanKind.REPLAY_DELTAS, "gap", id="pointer-replay"),
    pytest.param(caps(model=SequenceModel.MONOTONIC_ONLY, ws=True), {"replay_available": True},
                 PlanKind.RESUBSCRIBE, "gap", id="monotonic-cannot-replay"),
    pytest.param(caps(model=SequenceModel.NONE, rest=True), {"replay_available": True},
                 PlanKind.SNAPSHOT_REBUILD, "gap", id="no-ids-cannot-replay"),
    pytest.param(caps(), {}, PlanKind.HALT, "gap; venue offers no snapshot path", id="no-path-halts"),
    pytest.param(caps(rest=True), {"snapshot_failures": 5}, PlanKind.HALT, "gap; 5 snapshot attempts failed",
                 id="failures-exhausted"),
    pytest.param(caps(rest=True), {"snapshot_failures": 4}, PlanKind.SNAPSHOT_REBUILD, "gap", id="one-try-left"),
    pytest.param(caps(rest=True), {"snapshot_failures": 2, "max_snapshot_failures": 2}, PlanKind.HALT,
                 "gap; 2 snapshot attempts failed", id="custom-max"),
    pytest.param(caps(rest=True), {"halted": True, "replay_available": True}, PlanKind.HALT, "gap; breaker open",
                 id="breaker-open"),
]


@pytest.mark.parametrize("c,kw,kind,reason", LADDER)
def test_plan_recovery_ladder(c, kw, kind, reason):
    assert plan_recovery(c, reason="gap", **kw) == RecoveryPlan(kind=kind, reason=reason)


def test_okx_reset_right_after_ws_snapshot_bridges():
    # §5.2: a reset keeps prevSeqId == local while seqId drops below it; it must be applied.
    buffer = [ptr(10, 3), ptr(3, 5)]
    assert splice(SpliceRule.PREV_EXACT, 10, buffer) == SpliceResult(outcome=BR, start=0, dropped=0)


# ---------------------------------------------------------------------- splicing as the session composes it
@pytest.mark.parametrize("rule,snap,delta,stale,bridge", BRIDGE_TABLE)
def test_judge_bridge_agrees_with_is_stale_and_bridges(rule, snap, delta, stale, bridge):
    expected = SeqVerdict.STALE if stale else SeqVerdict.APPLY if bridge else SeqVerdict.GAP
    assert judge_bridge(rule, snap, delta) is expected


@pytest.mark.parametrize("rule", list(SpliceRule))
def test_needs_bridge_only_for_id_rules_with_an_id(rule):
    assert needs_bridge(rule, 100) is (rule in ID_RULES)
    assert needs_bridge(rule, None) is False


def _snap(seq, source):
    return BookSnapshot(symbol="X", bids=[], asks=[], seq=seq, source=source)


REST, WS = SnapshotSource.REST, SnapshotSource.WS
# (rule, snapshot seq, source, last applied id, buffered, refused)
UNBRIDGEABLE_TABLE = [
    pytest.param(SpliceRule.RANGE_NEXT, 5, REST, None, [], False, id="has-id"),
    pytest.param(SpliceRule.RANGE_NEXT, None, REST, None, [], True, id="rest-without-id-always"),
    pytest.param(SpliceRule.PREV_EXACT, None, WS, None, [], False, id="ws-no-ids-seen-yet"),
    pytest.param(SpliceRule.PREV_EXACT, None, WS, None, [NOIDS], False, id="ws-buffer-without-ids"),
    pytest.param(SpliceRule.PREV_EXACT, None, WS, None, [NOIDS, ptr(4, 5)], True, id="ws-buffer-shows-ids"),
    pytest.param(SpliceRule.PREV_EXACT, None, WS, None, [mono(5)], True, id="ws-buffer-shows-last-id"),
    pytest.param(SpliceRule.PREV_EXACT, None, WS, 7, [], True, id="ws-ids-applied"),
    pytest.param(SpliceRule.MONOTONIC, None, REST, 7, [mono(8)], False, id="monotonic-never"),
    pytest.param(SpliceRule.NONE, None, REST, 7, [mono(8)], False, id="none-never"),
]


@pytest.mark.parametrize("rule,seq,source,local,buffered,refused", UNBRIDGEABLE_TABLE)
def test_unbridgeable_table(rule, seq, source, local, buffered, refused):
    assert unbridgeable(rule, _snap(seq, source), local, buffered) is refused


def test_rule_for_picks_the_rule_by_snapshot_source():
    c = ExchangeCapabilities(venue="t", sequence_model=SequenceModel.PREV_POINTER,
                             splice_rule=SpliceRule.PREV_BRACKET, ws_splice_rule=SpliceRule.PREV_EXACT)
    assert [rule_for(c, src) for src in SnapshotSource] == [
        SpliceRule.PREV_EXACT if src is WS else SpliceRule.PREV_BRACKET for src in SnapshotSource]


def test_recovery_still_exports_the_splice_names():
    # ``bookkeeper.recovery.splice`` is the documented path (bookkeeper/__init__.py): the same
    # objects, moved to bookkeeper.splicing, not copies.
    for name in ("SpliceOutcome", "SpliceResult", "bridges", "is_stale", "splice"):
        assert getattr(recovery, name) is getattr(splicing, name)


@pytest.mark.parametrize("module", [splicing, recovery], ids=lambda m: m.__name__)
def test_module_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert (result.failed, result.attempted > 0) == (0, True)
