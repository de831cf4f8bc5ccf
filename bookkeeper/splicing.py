"""Splicing: where a snapshot goes among the deltas, by the venue's splice rule.

Theory of operation
-------------------
After a snapshot at id ``S``, buffered deltas are dropped when they are already inside the
snapshot (:func:`is_stale`), and the first delta kept must *bridge* ``S`` by the venue's
:class:`~bookkeeper.capabilities.SpliceRule` (:func:`bridges`, exchange-protocols.md §2.3).
:func:`splice` applies both to a buffer: a first kept delta that starts beyond ``S`` means the
snapshot is older than everything held (fetch it again). No delta newer than ``S`` yet is
fine: the book is valid at ``S`` and the next live delta must bridge it
(:func:`needs_bridge`, :func:`judge_bridge`). After the bridge the deltas chain by the
sequence model (the session checks that with its :class:`~bookkeeper.sequencer.Sequencer`).

A venue may number its messages twice: update ids that restart (Bybit ``u`` resets to 1) and
a cross sequence that never goes back (``cross_seq``, Bybit ``seq``). Its rule
(``CROSS_NEXT``) orders a snapshot among the deltas by the cross sequence and checks the
update ids only where the cross sequence says they belong together, so a snapshot from
before a restart can never be bridged by deltas after it; every function takes the
snapshot's cross sequence as ``snapshot_cross`` (``None``: placed by the ids alone).

Which rule applies depends on where the snapshot came from (a REST answer or the venue's WS
push: :func:`rule_for`). The id rules (:data:`ID_RULES`) can only place a snapshot by its id:
one without an id cannot be bridged there (:func:`unbridgeable`).

Everything here is pure; :class:`~bookkeeper.session.BookSession` composes it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .capabilities import ExchangeCapabilities, SpliceRule
from .events import BookDelta, BookSnapshot, SnapshotSource
from .sequencer import SeqVerdict

__all__ = [
    "ID_RULES",
    "SpliceOutcome",
    "SpliceResult",
    "bridges",
    "is_stale",
    "judge_bridge",
    "needs_bridge",
    "rule_for",
    "splice",
    "unbridgeable",
]

#: The splice rules that can only place a snapshot by its id.
ID_RULES: frozenset[SpliceRule] = frozenset(
    {SpliceRule.RANGE_NEXT, SpliceRule.RANGE_AT, SpliceRule.PREV_BRACKET, SpliceRule.PREV_EXACT,
     SpliceRule.CROSS_NEXT}
)


def _cross_order(rule: SpliceRule, snapshot_cross: int | None, delta: BookDelta) -> int | None:
    """Under ``CROSS_NEXT``, where ``delta`` stands to the snapshot by cross sequence (-1 older,
    0 the snapshot's own message, 1 newer); ``None`` when the ids alone must decide."""
    if rule is not SpliceRule.CROSS_NEXT or snapshot_cross is None:
        return None
    cross = delta.cross_seq
    if cross is None:
        return None
    return -1 if cross < snapshot_cross else 0 if cross == snapshot_cross else 1


def is_stale(rule: SpliceRule, snapshot_seq: int | None, delta: BookDelta, *,
             snapshot_cross: int | None = None) -> bool:
    """True when ``delta`` is already contained in a snapshot at ``snapshot_seq``.

    Args:
        rule: the splice rule the snapshot is placed by.
        snapshot_seq: the snapshot's id (``None``: it has none).
        delta: a delta received before or after the snapshot.
        snapshot_cross: the snapshot's cross sequence (``CROSS_NEXT`` only).

    Returns:
        Whether the snapshot already holds the delta's changes (drop it).

    >>> d = BookDelta(symbol="X", bids=[], asks=[], first_seq=3, last_seq=3, cross_seq=900)
    >>> is_stale(SpliceRule.CROSS_NEXT, 50, d, snapshot_cross=800)  # after a restart (u = 1, 2, 3 ...)
    False
    """
    last = delta.last_seq
    if rule is SpliceRule.NONE:
        return True  # no ids: everything received before the snapshot is superseded by it
    if snapshot_seq is None or last is None:
        return False
    order = _cross_order(rule, snapshot_cross, delta)
    if order is not None:
        # Bybit §6.2: drop seq < snapshot.seq; at an equal seq the u must be the snapshot's
        # (else it is no stale delta: bridges() refuses it and the snapshot is fetched again)
        return order < 0 or (order == 0 and last == snapshot_seq)
    if rule is SpliceRule.RANGE_AT:
        return last < snapshot_seq
    if rule is SpliceRule.PREV_EXACT and delta.prev_seq == snapshot_seq and last != snapshot_seq:
        return False  # OKX sequence reset right after a snapshot: seqId < prevSeqId == S
    return last <= snapshot_seq


def bridges(rule: SpliceRule, snapshot_seq: int | None, delta: BookDelta, *,
            snapshot_cross: int | None = None) -> bool:
    """True when ``delta`` (not stale) may be the first applied on a snapshot at ``S``.

    Args:
        rule: the splice rule the snapshot is placed by.
        snapshot_seq: the snapshot's id (``None``: it has none, anything bridges).
        delta: the first delta newer than the snapshot.
        snapshot_cross: the snapshot's cross sequence (``CROSS_NEXT`` only).

    Returns:
        Whether the delta continues the snapshot with nothing missed in between.

    Raises:
        ValueError: ``rule`` is not a :class:`SpliceRule` this function knows.

    >>> d = BookDelta(symbol="X", bids=[], asks=[], first_seq=101, last_seq=105)
    >>> bridges(SpliceRule.RANGE_NEXT, 100, d), bridges(SpliceRule.RANGE_NEXT, 99, d)
    (True, False)
    """
    S = snapshot_seq
    first, last, prev = delta.first_seq, delta.last_seq, delta.prev_seq
    if rule is SpliceRule.NONE or rule is SpliceRule.MONOTONIC or S is None:
        return True
    if rule is SpliceRule.RANGE_NEXT or rule is SpliceRule.CROSS_NEXT:
        if first is None or last is None:
            return False
        order = _cross_order(rule, snapshot_cross, delta)
        if order is not None and order < 1:
            return False  # not newer than the snapshot by cross sequence: it cannot follow it
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


def splice(rule: SpliceRule, snapshot_seq: int | None, buffered: Sequence[BookDelta], *,
           snapshot_cross: int | None = None) -> SpliceResult:
    """Splice a snapshot at ``snapshot_seq`` with ``buffered`` deltas (oldest first).

    Args:
        rule: the splice rule the snapshot is placed by.
        snapshot_seq: the snapshot's id.
        buffered: the deltas held while the snapshot was awaited, oldest first.
        snapshot_cross: the snapshot's cross sequence (``CROSS_NEXT``: a snapshot older than
            the first buffered delta by it is fetched again, Bybit §6.2).

    Returns:
        Where the snapshot goes: how many deltas it already holds, and whether the next one
        bridges it (or none is newer yet, or the snapshot is older than the first kept one).

    >>> ds = [BookDelta(symbol="X", bids=[], asks=[], first_seq=a, last_seq=b)
    ...       for a, b in [(90, 99), (100, 104), (105, 110)]]
    >>> splice(SpliceRule.RANGE_NEXT, 101, ds)
    SpliceResult(outcome=<SpliceOutcome.BRIDGED: 'bridged'>, start=1, dropped=1)
    >>> splice(SpliceRule.RANGE_NEXT, 80, ds).outcome
    <SpliceOutcome.STALE_SNAPSHOT: 'stale_snapshot'>
    """
    i = 0
    n = len(buffered)
    if n and snapshot_seq is not None and _cross_order(rule, snapshot_cross, buffered[0]) == 1:
        return SpliceResult(outcome=SpliceOutcome.STALE_SNAPSHOT, start=0, dropped=0)
    while i < n and is_stale(rule, snapshot_seq, buffered[i], snapshot_cross=snapshot_cross):
        i += 1
    if i == n:
        return SpliceResult(outcome=SpliceOutcome.WAITING, start=n, dropped=i)
    if bridges(rule, snapshot_seq, buffered[i], snapshot_cross=snapshot_cross):
        return SpliceResult(outcome=SpliceOutcome.BRIDGED, start=i, dropped=i)
    return SpliceResult(outcome=SpliceOutcome.STALE_SNAPSHOT, start=i, dropped=i)


def rule_for(caps: ExchangeCapabilities, source: SnapshotSource) -> SpliceRule:
    """The rule a snapshot from ``source`` is placed by: a venue may splice its REST snapshot
    and its own WS snapshot differently (a pointer venue: PREV_BRACKET vs PREV_EXACT).

    Args:
        caps: the venue's declaration.
        source: where the snapshot came from.

    Returns:
        ``caps.ws_splice_rule`` for a WS-pushed snapshot, else ``caps.splice_rule``.

    >>> from bookkeeper.capabilities import SequenceModel
    >>> caps = ExchangeCapabilities(venue="v", sequence_model=SequenceModel.PREV_POINTER,
    ...     splice_rule=SpliceRule.PREV_BRACKET, ws_splice_rule=SpliceRule.PREV_EXACT)
    >>> rule_for(caps, SnapshotSource.REST), rule_for(caps, SnapshotSource.WS)
    (<SpliceRule.PREV_BRACKET: 'prev_bracket'>, <SpliceRule.PREV_EXACT: 'prev_exact'>)
    """
    return caps.ws_splice_rule if source is SnapshotSource.WS else caps.splice_rule


def unbridgeable(rule: SpliceRule, snap: BookSnapshot, last_seq: int | None, buffered: Sequence[BookDelta]) -> bool:
    """True when ``snap`` has no id although ``rule`` places snapshots by id, on a stream that
    has ids: splicing it would apply every buffered delta unchecked (they may be older than
    the snapshot or leave a gap after it).

    A REST snapshot always needs its id under an id rule; a WS snapshot needs one once the
    stream has shown ids (``last_seq`` applied, or a buffered delta carrying one): before
    that, a venue that sends no ids at all is simply spliced by its rule.

    Args:
        rule: the rule the snapshot would be placed by (:func:`rule_for`).
        snap: the snapshot.
        last_seq: the id last applied to the book (``None``: none yet).
        buffered: the deltas held for the splice.

    Returns:
        Whether the snapshot must be refused.

    >>> snap = BookSnapshot(symbol="X", bids=[], asks=[], seq=None, source=SnapshotSource.REST)
    >>> unbridgeable(SpliceRule.RANGE_NEXT, snap, None, []), unbridgeable(SpliceRule.NONE, snap, None, [])
    (True, False)
    """
    if snap.seq is not None or rule not in ID_RULES:
        return False
    if snap.source is not SnapshotSource.WS or last_seq is not None:
        return True
    return any(d.last_seq is not None or d.prev_seq is not None for d in buffered)


def needs_bridge(rule: SpliceRule, snapshot_seq: int | None) -> bool:
    """True when the first delta newer than a snapshot at ``snapshot_seq`` must bridge it by
    ``rule`` (:func:`judge_bridge`) rather than merely chain by the sequence model.

    Args:
        rule: the rule the snapshot was placed by.
        snapshot_seq: its id.

    Returns:
        ``False`` when no id places the snapshot (no ids, a monotonic venue, or no id given).
    """
    return not (rule is SpliceRule.NONE or rule is SpliceRule.MONOTONIC or snapshot_seq is None)


def judge_bridge(rule: SpliceRule, snapshot_seq: int | None, delta: BookDelta, *,
                 snapshot_cross: int | None = None) -> SeqVerdict:
    """Judge a live delta that must bridge a snapshot at ``snapshot_seq`` (nothing applied
    since the snapshot).

    Args:
        rule: the rule the snapshot was placed by.
        snapshot_seq: the snapshot's id.
        delta: the delta just received.
        snapshot_cross: the snapshot's cross sequence (``CROSS_NEXT`` only).

    Returns:
        ``STALE`` (already inside the snapshot: drop it), ``APPLY`` (it bridges the snapshot)
        or ``GAP`` (it starts beyond the snapshot: something was missed).

    >>> d = BookDelta(symbol="X", bids=[], asks=[], first_seq=101, last_seq=105)
    >>> [judge_bridge(SpliceRule.RANGE_NEXT, s, d).name for s in (105, 100, 90)]
    ['STALE', 'APPLY', 'GAP']
    """
    if is_stale(rule, snapshot_seq, delta, snapshot_cross=snapshot_cross):
        return SeqVerdict.STALE
    return SeqVerdict.APPLY if bridges(rule, snapshot_seq, delta, snapshot_cross=snapshot_cross) else SeqVerdict.GAP
