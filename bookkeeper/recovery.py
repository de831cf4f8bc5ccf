"""Recovery: the recovery ladder, as a pure function.

Theory of operation
-------------------
**Ladder.** :func:`plan_recovery` picks the cheapest rung that can provably close a gap:
replay from a journal / redundant line when one holds the ids, a WS re-snapshot when the
venue pushes one on subscribe, a REST snapshot bridged with buffered deltas, else halt.
(Rung 1, *resume*, needs no plan: it is the sequencer saying APPLY after a reconnect.)

**Splice.** How a snapshot is placed among buffered deltas lives in
:mod:`bookkeeper.splicing`; its names stay importable from here (``bookkeeper.recovery.splice``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import PlanKind
from .capabilities import ExchangeCapabilities, SequenceModel
from .splicing import SpliceOutcome, SpliceResult, bridges, is_stale, splice

__all__ = ["RecoveryPlan", "SpliceOutcome", "SpliceResult", "bridges", "is_stale", "plan_recovery", "splice"]


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

    Args:
        caps: the venue's declaration (sequence model, snapshot paths).
        reason: why a recovery is needed (carried into the plan).
        replay_available: a journal or redundant line can serve the missed ids.
        snapshot_failures: snapshot attempts that failed in a row.
        max_snapshot_failures: failures after which the plan is HALT.
        halted: the breaker is open.

    Returns:
        The plan: replay, WS re-snapshot, REST snapshot, or halt (with the reason why).

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
