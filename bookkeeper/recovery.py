"""Recovery: the splice rule and the recovery ladder, as pure functions.

Theory of operation
-------------------
**Splice.** After a snapshot at id ``S``, buffered deltas are dropped when they are already
inside the snapshot, and the first delta kept must *bridge* ``S`` by the venue's
:class:`~bookkeeper.capabilities.SpliceRule` (exchange-protocols.md §2.3). A first delta that
starts beyond ``S`` means the snapshot is older than everything we hold: fetch it again. No
delta newer than ``S`` yet is fine: the book is valid at ``S`` and the next delta must bridge.
After the bridge, the remaining deltas must chain by the sequence model (the session checks
that with its :class:`~bookkeeper.sequencer.Sequencer`).

**Ladder.** :func:`plan_recovery` picks the cheapest rung that can provably close a gap:
replay from a journal / redundant line when one holds the ids, a WS re-snapshot when the
venue pushes one on subscribe, a REST snapshot bridged with buffered deltas, else halt.
(Rung 1, *resume*, needs no plan: it is the sequencer saying APPLY after a reconnect.)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .actions import PlanKind
from .capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from .events import BookDelta

__all__ = ["SpliceOutcome", "SpliceResult", "bridges", "is_stale", "splice", "RecoveryPlan", "plan_recovery"]


def is_stale(rule: SpliceRule, snapshot_seq: int | None, delta: BookDelta) -> bool:
    """True when ``delta`` is already contained in a snapshot at ``snapshot_seq``."""
    last = delta.last_seq
    if rule is SpliceRule.NONE:
        return True  # no ids: everything received before the snapshot is superseded by it
    if snapshot_seq is None or last is None:
        return False
    if rule is SpliceRule.RANGE_AT:
        return last < snapshot_seq
    if rule is SpliceRule.PREV_EXACT and delta.prev_seq == snapshot_seq and last != snapshot_seq:
        return False  # OKX sequence reset right after a snapshot: seqId < prevSeqId == S
    return last <= snapshot_seq


def bridges(rule: SpliceRule, snapshot_seq: int | None, delta: BookDelta) -> bool:
    """True when ``delta`` (not stale) may be the first applied on a snapshot at ``S``.

    >>> d = BookDelta(symbol="X", bids=[], asks=[], first_seq=101, last_seq=105)
    >>> bridges(SpliceRule.RANGE_NEXT, 100, d), bridges(SpliceRule.RANGE_NEXT, 99, d)
    (True, False)
    """
    S = snapshot_seq
    first, last, prev = delta.first_seq, delta.last_seq, delta.prev_seq
    if rule is SpliceRule.NONE or rule is SpliceRule.MONOTONIC or S is None:
        return True
    if rule is SpliceRule.RANGE_NEXT:
        if first is None or last is None:
            return False
        return first <= S + 1 <= last
    if rule is SpliceRule.RANGE_AT:
        if first is None or last is None:
            return False
        return first <= S <= last
    if rule is SpliceRule.PREV_BRACKET:
        if prev is None or last is None:
            return False
        return prev <= S < last
    if rule is SpliceRule.PREV_EXACT:
        return prev == S
    raise ValueError(f"unknown splice rule {rule}")


class SpliceOutcome(enum.Enum):
    BRIDGED = "bridged"  # buffer[start:] applies on the snapshot, the first one bridging
    WAITING = "waiting"  # nothing newer than the snapshot yet: the next delta must bridge
    STALE_SNAPSHOT = "stale_snapshot"  # the snapshot is older than the deltas held: refetch


@dataclass(frozen=True, slots=True, kw_only=True)
class SpliceResult:
    outcome: SpliceOutcome
    start: int  # index of the first delta to apply
    dropped: int  # deltas dropped as already inside the snapshot


def splice(rule: SpliceRule, snapshot_seq: int | None, buffered: Sequence[BookDelta]) -> SpliceResult:
    """Splice a snapshot at ``snapshot_seq`` with ``buffered`` deltas (oldest first).

    >>> ds = [BookDelta(symbol="X", bids=[], asks=[], first_seq=a, last_seq=b)
    ...       for a, b in [(90, 99), (100, 104), (105, 110)]]
    >>> splice(SpliceRule.RANGE_NEXT, 101, ds)
    SpliceResult(outcome=<SpliceOutcome.BRIDGED: 'bridged'>, start=1, dropped=1)
    >>> splice(SpliceRule.RANGE_NEXT, 80, ds).outcome
    <SpliceOutcome.STALE_SNAPSHOT: 'stale_snapshot'>
    """
    i = 0
    n = len(buffered)
    while i < n and is_stale(rule, snapshot_seq, buffered[i]):
        i += 1
    if i == n:
        return SpliceResult(outcome=SpliceOutcome.WAITING, start=n, dropped=i)
    if bridges(rule, snapshot_seq, buffered[i]):
        return SpliceResult(outcome=SpliceOutcome.BRIDGED, start=i, dropped=i)
    return SpliceResult(outcome=SpliceOutcome.STALE_SNAPSHOT, start=i, dropped=i)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryPlan:
    """A decision of the ladder, with its reason (logged, counted, put in records)."""

    kind: PlanKind
    reason: str


def plan_recovery(
    caps: ExchangeCapabilities,
    *,
    reason: str,
    replay_available: bool = False,
    snapshot_failures: int = 0,
    max_snapshot_failures: int = 5,
    halted: bool = False,
) -> RecoveryPlan:
    """Pick the cheapest rung that can provably close a gap.

    >>> from bookkeeper.capabilities import ExchangeCapabilities
    >>> caps = ExchangeCapabilities(venue="v", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    ...                             rest_snapshot=True)
    >>> plan_recovery(caps, reason="gap").kind
    <PlanKind.SNAPSHOT_REBUILD: 'rest_snapshot'>
    >>> plan_recovery(caps, reason="gap", replay_available=True).kind
    <PlanKind.REPLAY_DELTAS: 'replay_deltas'>
    """
    if halted:
        return RecoveryPlan(kind=PlanKind.HALT, reason=f"{reason}; breaker open")
    if snapshot_failures >= max_snapshot_failures:
        return RecoveryPlan(kind=PlanKind.HALT, reason=f"{reason}; {snapshot_failures} snapshot attempts failed")
    sequenced = caps.sequence_model in (SequenceModel.CONTIGUOUS_RANGE, SequenceModel.PREV_POINTER)
    if replay_available and sequenced:
        return RecoveryPlan(kind=PlanKind.REPLAY_DELTAS, reason=reason)
    if caps.ws_snapshot_on_subscribe:
        return RecoveryPlan(kind=PlanKind.RESUBSCRIBE, reason=reason)
    if caps.rest_snapshot:
        return RecoveryPlan(kind=PlanKind.SNAPSHOT_REBUILD, reason=reason)
    return RecoveryPlan(kind=PlanKind.HALT, reason=f"{reason}; venue offers no snapshot path")
