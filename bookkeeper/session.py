"""BookSession: one (venue, symbol, channel) stream's sync state machine.

Theory of operation
-------------------
A session owns an :class:`~bookkeeper.book.L2Book` and a
:class:`~bookkeeper.sequencer.Sequencer` and is fed events; every input returns the actions
it caused (``FetchSnapshot``, ``Resubscribe``, ``ReplayDeltas``, ``Halt``, ``Alert``,
``StateChanged``). It never reads a clock, touches a socket or retries: the driver does.

States (legal transitions in :data:`TRANSITIONS`; anything else raises ``InvalidState``)::

    UNSYNCED ──first delta (REST venue)──▶ AWAITING_SNAPSHOT ──snapshot spliced──▶ SYNCED
    UNSYNCED ──WS snapshot──────────────────────────────────────────────────────▶ SYNCED
    SYNCED ──gap / checksum mismatch / crossed / bad input / disconnect──▶ RECOVERING
    RECOVERING ──resume proven / replay closed the gap / snapshot spliced──▶ SYNCED
    any ──breaker open, snapshot attempts exhausted──▶ HALTED ──operator reset──▶ UNSYNCED

While not SYNCED, deltas are buffered (bounded) for the splice. After a disconnect a
sequenced stream first tries to *resume*: if the first delta on the new connection still
chains to the last applied id, nothing was missed and no snapshot is taken. Only a SYNCED
book is valid to read; a crossed book or a checksum mismatch is reported (``Alert``) and
sends the book to RECOVERING, never silently repaired.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from .actions import (
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
from .book import L2Book
from .capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from .checksum import checksum_absent, compute_checksum
from .errors import IntegrityError, InvalidState
from .events import BookDelta, BookSnapshot, BookTicker, SnapshotSource, StreamClosed, StreamOpened
from .recovery import RecoveryPlan, SpliceOutcome, bridges, is_stale, plan_recovery, splice
from .sequencer import SeqVerdict, Sequencer

__all__ = ["BookSession", "SessionStats", "TRANSITIONS"]

S = SyncState
#: Every legal state change (h11-style table). Same-state "changes" are not transitions.
TRANSITIONS: dict[SyncState, frozenset[SyncState]] = {
    S.UNSYNCED: frozenset({S.AWAITING_SNAPSHOT, S.SYNCED, S.RECOVERING, S.HALTED}),
    S.AWAITING_SNAPSHOT: frozenset({S.SYNCED, S.RECOVERING, S.HALTED, S.UNSYNCED}),
    S.SYNCED: frozenset({S.RECOVERING, S.HALTED}),
    S.RECOVERING: frozenset({S.SYNCED, S.HALTED}),
    S.HALTED: frozenset({S.UNSYNCED}),
}

_APPLY = SeqVerdict.APPLY
_STALE = SeqVerdict.STALE
_DUP = SeqVerdict.DUPLICATE
_SYNCED = SyncState.SYNCED
_CHECKSUM_DEPTH = 25
#: deltas buffered without the promised WS snapshot before a REST snapshot is requested
_WS_SNAPSHOT_GRACE = 50


class _Pending(enum.Enum):
    NOTHING = "nothing"
    SNAPSHOT = "snapshot"  # a REST answer or a WS snapshot after resubscribe
    RESUME = "resume"  # reconnected: does the first delta still chain?
    REPLAY = "replay"  # waiting for journal / redundant-line deltas


class SessionStats:
    """Counters of one session (all ints; read them, don't write them)."""

    __slots__ = (
        "snapshots", "deltas_applied", "stale_dropped", "duplicates", "gaps", "missed_ids",
        "checksums_verified", "checksum_mismatches", "crossed", "invalid_inputs", "unsequenced",
        "buffered", "buffer_overflows", "stale_snapshots", "stale_epochs", "bridged",
        "resumes", "replays", "resubscribes", "rest_snapshots", "halts", "diverged",
        "ticker_checks", "ticker_mismatches",
    )  # fmt: skip

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class BookSession:
    """The sync state machine of one book stream.

    Args:
        symbol: the venue's spelling of the instrument.
        capabilities: the venue's declaration (sequence model, splice rule, checksum ...).
        verify_checksums: compare the venue's checksum after every delta that carries one.
        max_snapshot_failures: stale or failed snapshots in a row before HALTED.
        replay_available: a journal or redundant line can serve missed ids (rung 2).

    >>> from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
    >>> caps = ExchangeCapabilities(venue="demo", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    ...                             splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True)
    >>> s = BookSession("BTCUSDT", caps)
    >>> [type(a).__name__ for a in s.on_delta(BookDelta(symbol="BTCUSDT", bids=[(10.0, 1.0)],
    ...                                                  asks=[], first_seq=5, last_seq=6))]
    ['FetchSnapshot', 'StateChanged']
    >>> _ = s.on_snapshot(BookSnapshot(symbol="BTCUSDT", bids=[(9.0, 1.0)], asks=[(11.0, 1.0)],
    ...                                seq=5, source=SnapshotSource.REST), epoch=1)
    >>> s.state, s.last_seq, s.book.best_bid()
    (<SyncState.SYNCED: 'synced'>, 6, (10.0, 1.0))
    """

    __slots__ = (
        "_symbol", "_caps", "_book", "_seq", "_state", "_buffer", "_epoch", "_pending",
        "_bridge_rule", "_snapshot_failures", "_depth", "_verify", "_max_failures",
        "_max_buffer", "_replay_available", "_last_plan", "_stats", "_checksum_kind",
        "_truncate", "_answered_epoch", "_fast_model",
    )  # fmt: skip

    def __init__(
        self,
        symbol: str,
        capabilities: ExchangeCapabilities,
        *,
        verify_checksums: bool = True,
        max_snapshot_failures: int = 5,
        replay_available: bool = False,
        depth: int | None = None,
    ) -> None:
        self._symbol = symbol
        self._caps = capabilities
        self._book = L2Book()
        self._seq = Sequencer(capabilities.sequence_model)
        self._state = SyncState.UNSYNCED
        self._buffer: list[BookDelta] = []
        self._epoch = 0
        self._pending = _Pending.NOTHING
        self._bridge_rule: SpliceRule | None = None
        self._snapshot_failures = 0
        self._depth = depth
        self._verify = verify_checksums and capabilities.checksum.value != "none"
        self._checksum_kind = capabilities.checksum
        self._truncate = capabilities.truncate_to_depth
        self._max_failures = max_snapshot_failures
        self._max_buffer = capabilities.max_buffered_deltas
        self._replay_available = replay_available
        self._last_plan: RecoveryPlan | None = None
        self._stats = SessionStats()
        self._answered_epoch = -1
        # apply_frame_fast's model code (0: never fast): sequenced by range or pointer, and
        # nothing per delta beyond apply + crossed check (no checksum, no truncation).
        model = capabilities.sequence_model
        fast = 1 if model is SequenceModel.CONTIGUOUS_RANGE else 2 if model is SequenceModel.PREV_POINTER else 0
        self._fast_model = 0 if self._verify or self._truncate else fast

    # ------------------------------------------------------------------ observers
    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def capabilities(self) -> ExchangeCapabilities:
        return self._caps

    @property
    def state(self) -> SyncState:
        return self._state

    @property
    def is_synced(self) -> bool:
        """True only when the book is valid to read."""
        return self._state is _SYNCED

    @property
    def book(self) -> L2Book:
        """The local book. Read it only when :attr:`is_synced` is True."""
        return self._book

    @property
    def last_seq(self) -> int | None:
        """The last sequence id applied to the book."""
        return self._seq.local

    @property
    def epoch(self) -> int:
        """The tag of the newest snapshot request; older answers are ignored."""
        return self._epoch

    @property
    def stats(self) -> SessionStats:
        return self._stats

    @property
    def last_plan(self) -> RecoveryPlan | None:
        return self._last_plan

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def set_replay_available(self, available: bool) -> None:
        """Declare whether a journal / redundant line can serve missed ids."""
        self._replay_available = available

    # ------------------------------------------------------------------ transitions
    def _to(self, new: SyncState, reason: str, actions: list[Action], plan: PlanKind | None = None) -> None:
        old = self._state
        if new is old:
            return
        if new not in TRANSITIONS[old]:
            raise InvalidState(f"illegal transition {old} -> {new} ({reason})", symbol=self._symbol)
        self._state = new
        actions.append(StateChanged(symbol=self._symbol, old=old, new=new, reason=reason, plan=plan))

    # ------------------------------------------------------------------ inputs
    def handle(self, event: object) -> list[Action]:
        """Dispatch any event this session understands; others return ``[]``."""
        t = type(event)
        if t is BookDelta:
            return self.on_delta(event)  # type: ignore[arg-type]
        if t is BookSnapshot:
            return self.on_snapshot(event)  # type: ignore[arg-type]
        if t is BookTicker:
            return self.on_ticker(event)  # type: ignore[arg-type]
        if t is StreamClosed:
            return self.on_stream_closed(event)  # type: ignore[arg-type]
        if t is StreamOpened:
            return []
        return []

    def on_delta(self, d: BookDelta) -> list[Action]:
        """Feed one delta. Returns the actions it caused (usually none)."""
        if self._state is _SYNCED:
            if self._bridge_rule is not None:
                return self._bridge(d)
            v = self._seq.check(d.first_seq, d.last_seq, d.prev_seq)
            if v is _APPLY:
                return self._apply(d)
            if v is _STALE:
                self._stats.stale_dropped += 1
                return []
            if v is _DUP:
                self._stats.duplicates += 1
                return []
            return self._gap(d)
        if self._state is SyncState.HALTED:
            return []
        if self._pending is _Pending.RESUME:
            rule = self._bridge_rule
            if rule is not None:  # disconnected before the snapshot's bridging delta came
                local = self._seq.local
                v = _STALE if is_stale(rule, local, d) else _APPLY if bridges(rule, local, d) else SeqVerdict.GAP
                if v is _APPLY:
                    self._bridge_rule = None
                    self._stats.bridged += 1
            else:
                v = self._seq.check(d.first_seq, d.last_seq, d.prev_seq)
            if v is _APPLY:
                actions: list[Action] = []
                self._stats.resumes += 1
                self._last_plan = RecoveryPlan(kind=PlanKind.RESUME, reason="first delta after reconnect chains")
                self._pending = _Pending.NOTHING
                self._to(_SYNCED, "resumed: nothing was missed", actions, PlanKind.RESUME)
                actions.extend(self._apply(d))
                return actions
            if v is _STALE or v is _DUP:
                self._stats.stale_dropped += 1
                return []
            return self._gap(d)
        return self._buffer_delta(d)

    def apply_frame_fast(self, frame: bytes, fused: Callable[..., object]) -> bool:
        """Apply one raw frame in the SYNCED steady state without building a ``BookDelta``.

        ``fused(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)`` is a venue's fused
        decode + apply (``adapters.binance.parse.fused_depth``). True: the frame's delta was
        applied, exactly as ``on_delta(decode(frame))`` would have (which then returns no
        actions). False: nothing was touched and the caller MUST take the normal path for this
        frame (``decoder.decode()`` -> ``handle()``), which decides everything else: stale,
        duplicate, gap, crossed, bad or foreign frames, every state but SYNCED. ``fused`` may
        only answer the single APPLY case of :class:`~bookkeeper.sequencer.Sequencer`'s rule.
        """
        model = self._fast_model
        if not model or self._state is not _SYNCED or self._bridge_rule is not None:
            return False
        seq = self._seq
        r = self._book.apply_frame(frame, fused, self._symbol, model, seq.local)
        if type(r) is not tuple:
            return False
        seq.advance(r[0], r[1])
        self._stats.deltas_applied += 1
        return True

    def _buffer_delta(self, d: BookDelta) -> list[Action]:
        actions: list[Action] = []
        if len(self._buffer) >= self._max_buffer:
            self._stats.buffer_overflows += 1
            self._buffer.clear()
            actions.append(Alert(kind=AlertKind.BUFFER_FULL, symbol=self._symbol,
                                 reason=f"more than {self._max_buffer} deltas buffered"))
            actions.extend(self._start(self._plan("buffer overflow", allow_replay=False), None))
        self._buffer.append(d)
        self._stats.buffered += 1
        caps = self._caps
        if self._state is SyncState.UNSYNCED and caps.rest_snapshot and (
            not caps.ws_snapshot_on_subscribe or len(self._buffer) >= _WS_SNAPSHOT_GRACE
        ):
            # Wait for the first buffered delta before asking (Binance's own procedure), so the
            # snapshot can be bridged. A venue that should push a snapshot on subscribe but sends
            # only updates (OKX announced removing its WS snapshot, exchange-protocols.md §5.1)
            # falls back to REST after a grace of buffered deltas.
            self._epoch += 1
            self._pending = _Pending.SNAPSHOT
            actions.append(FetchSnapshot(symbol=self._symbol, epoch=self._epoch, reason="initial sync",
                                         depth=self._caps.rest_snapshot_depth))
            self._to(SyncState.AWAITING_SNAPSHOT, "initial sync: REST snapshot requested", actions)
        return actions

    def _bridge(self, d: BookDelta) -> list[Action]:
        rule = self._bridge_rule
        local = self._seq.local
        if is_stale(rule, local, d):  # type: ignore[arg-type]
            self._stats.stale_dropped += 1
            return []
        if bridges(rule, local, d):  # type: ignore[arg-type]
            self._bridge_rule = None
            self._stats.bridged += 1
            return self._apply(d)
        return self._gap(d)

    def _apply(self, d: BookDelta) -> list[Action]:
        # The steady-state hot path (every applied delta): locals instead of repeated
        # attribute loads; the sequencer is only asked for ``local`` when per-level ids exist.
        bids = d.bids
        asks = d.asks
        first = d.first_seq
        if d.bid_seqs is not None or d.ask_seqs is not None:
            local = self._seq.local
            if local is not None and first is not None and first <= local:
                # Per-level ids (KuCoin): a message overlapping what is applied keeps only newer levels.
                if d.bid_seqs is not None:
                    bids = [lv for lv, q in zip(bids, d.bid_seqs) if q > local]
                if d.ask_seqs is not None:
                    asks = [lv for lv, q in zip(asks, d.ask_seqs) if q > local]
        book = self._book
        last = d.last_seq
        try:
            book.apply_delta(bids, asks, d.bids_raw, d.asks_raw)
        except IntegrityError as exc:
            self._stats.invalid_inputs += 1
            return self._recover(f"invalid delta: {exc}", AlertKind.INVALID_INPUT, last)
        self._seq.advance(first, last)
        st = self._stats
        st.deltas_applied += 1
        if last is None and self._caps.sequence_model is not SequenceModel.NONE:
            st.unsequenced += 1
        if self._truncate and self._depth:
            book.truncate(self._depth)
        if self._verify and not checksum_absent(self._checksum_kind, d.checksum):
            mismatch = self._verify_checksum(d.checksum)  # type: ignore[arg-type]
            if mismatch is not None:
                return self._recover(mismatch, AlertKind.CHECKSUM_MISMATCH, d.last_seq)
        if book.is_crossed():
            st.crossed += 1
            return self._recover(f"crossed book: bid {book.best_bid()} >= ask {book.best_ask()}",
                                 AlertKind.CROSSED, d.last_seq)
        return []

    def _verify_checksum(self, expected: int) -> str | None:
        try:
            bids, asks = self._book.top_raw(_CHECKSUM_DEPTH)
            got = compute_checksum(self._checksum_kind, bids, asks)
        except IntegrityError as exc:
            got = None
            detail = str(exc)
        else:
            detail = ""
        if got == expected:
            self._stats.checksums_verified += 1
            return None
        self._stats.checksum_mismatches += 1
        return f"checksum mismatch: venue {expected}, local {got} {detail}".rstrip()

    def _gap(self, d: BookDelta) -> list[Action]:
        st = self._stats
        st.gaps += 1
        missed = self._seq.missed(d.first_seq, d.last_seq, d.prev_seq)
        if missed:
            st.missed_ids += missed
        reason = (f"gap: local {self._seq.local}, got first={d.first_seq} last={d.last_seq} "
                  f"prev={d.prev_seq}")
        actions: list[Action] = [Alert(kind=AlertKind.GAP, symbol=self._symbol, reason=reason,
                                       seq=d.last_seq, missed=missed)]
        self._bridge_rule = None
        actions.extend(self._start(self._plan(reason), d))
        return actions

    def _recover(self, reason: str, kind: AlertKind, seq: int | None) -> list[Action]:
        actions: list[Action] = [Alert(kind=kind, symbol=self._symbol, reason=reason, seq=seq)]
        self._bridge_rule = None
        actions.extend(self._start(self._plan(reason, allow_replay=False), None))
        return actions

    def _plan(self, reason: str, *, allow_replay: bool = True) -> RecoveryPlan:
        return plan_recovery(
            self._caps,
            reason=reason,
            replay_available=self._replay_available and allow_replay,
            snapshot_failures=self._snapshot_failures,
            max_snapshot_failures=self._max_failures,
        )

    def _start(self, plan: RecoveryPlan, trigger: BookDelta | None) -> list[Action]:
        """Execute a plan's state side and return the driver's actions."""
        actions: list[Action] = []
        self._last_plan = plan
        st = self._stats
        kind = plan.kind
        if kind is PlanKind.HALT:
            st.halts += 1
            self._pending = _Pending.NOTHING
            self._buffer.clear()
            self._to(SyncState.HALTED, plan.reason, actions, kind)
            actions.append(Halt(symbol=self._symbol, reason=plan.reason))
            return actions
        target = SyncState.RECOVERING if self._state in (_SYNCED, SyncState.RECOVERING) else self._state
        if target is SyncState.UNSYNCED:
            target = SyncState.AWAITING_SNAPSHOT
        if trigger is not None:
            self._buffer.append(trigger)
        if kind is PlanKind.REPLAY_DELTAS:
            st.replays += 1
            self._pending = _Pending.REPLAY
            local = self._seq.local
            to_seq = None
            if trigger is not None:
                to_seq = (trigger.first_seq - 1) if trigger.first_seq is not None else trigger.prev_seq
            actions.append(ReplayDeltas(symbol=self._symbol, from_seq=(local or 0) + 1, to_seq=to_seq,
                                        reason=plan.reason))
        elif kind is PlanKind.RESUBSCRIBE:
            st.resubscribes += 1
            self._pending = _Pending.SNAPSHOT
            actions.append(Resubscribe(symbol=self._symbol, reason=plan.reason))
        else:  # SNAPSHOT_REBUILD
            st.rest_snapshots += 1
            self._pending = _Pending.SNAPSHOT
            self._epoch += 1
            actions.append(FetchSnapshot(symbol=self._symbol, epoch=self._epoch, reason=plan.reason,
                                         depth=self._caps.rest_snapshot_depth))
        self._to(target, plan.reason, actions, kind)
        return actions

    def on_snapshot(self, snap: BookSnapshot, *, epoch: int | None = None) -> list[Action]:
        """Feed a snapshot (WS-pushed, or the REST answer to ``FetchSnapshot(epoch)``).

        A REST answer tagged with an older epoch than the newest request is ignored.
        """
        st = self._stats
        if self._state is SyncState.HALTED:
            return []
        if epoch is not None and (epoch != self._epoch or epoch == self._answered_epoch):
            st.stale_epochs += 1  # an answer to an older request, or a second answer to this one
            return []
        rest = snap.source is not SnapshotSource.WS
        rule = self._caps.splice_rule if rest else self._caps.ws_splice_rule
        actions: list[Action] = []
        result = splice(rule, snap.seq, self._buffer)
        if result.outcome is SpliceOutcome.STALE_SNAPSHOT:
            st.stale_snapshots += 1
            self._snapshot_failures += 1
            st.stale_dropped += result.dropped
            del self._buffer[: result.start]
            actions.append(Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=self._symbol, seq=snap.seq,
                                 reason=f"snapshot {snap.seq} is older than buffered delta "
                                        f"{self._buffer[0].first_seq}..{self._buffer[0].last_seq}"))
            actions.extend(self._start(self._plan("stale snapshot", allow_replay=False), None))
            return actions
        was_resume = self._pending is _Pending.RESUME
        resumed = (
            was_resume
            and snap.seq is not None
            and snap.seq == self._seq.local
            and self._caps.sequence_model in (SequenceModel.CONTIGUOUS_RANGE, SequenceModel.PREV_POINTER)
        )
        if resumed and not self._book.equals(snap.bids, snap.asks):
            st.diverged += 1
            actions.append(Alert(kind=AlertKind.CHECKSUM_MISMATCH, symbol=self._symbol, seq=snap.seq,
                                 reason="book diverged from the venue's snapshot at the same id"))
        try:
            self._book.apply_snapshot(snap.bids, snap.asks, snap.bids_raw, snap.asks_raw)
        except IntegrityError as exc:
            st.invalid_inputs += 1
            self._snapshot_failures += 1
            actions.extend(self._recover(f"invalid snapshot: {exc}", AlertKind.INVALID_INPUT, snap.seq))
            return actions
        st.snapshots += 1
        if epoch is not None:
            self._answered_epoch = epoch
        if snap.depth is not None:
            self._depth = snap.depth
        if self._truncate and self._depth:
            self._book.truncate(self._depth)
        self._seq.reset(snap.seq)
        st.stale_dropped += result.dropped
        pending = self._buffer[result.start:]
        self._buffer = []
        self._snapshot_failures = 0
        was = self._state
        self._pending = _Pending.NOTHING
        if self._verify and not checksum_absent(self._checksum_kind, snap.checksum):
            mismatch = self._verify_checksum(snap.checksum)  # type: ignore[arg-type]
            if mismatch is not None:
                actions.extend(self._recover(mismatch, AlertKind.CHECKSUM_MISMATCH, snap.seq))
                return actions
        if self._book.is_crossed():
            st.crossed += 1
            self._snapshot_failures += 1
            actions.extend(self._recover(f"crossed snapshot: bid {self._book.best_bid()} >= ask "
                                         f"{self._book.best_ask()}", AlertKind.CROSSED, snap.seq))
            return actions
        if was is _SYNCED:
            pass  # a venue-pushed snapshot mid-stream replaces the book (OKX, Bybit)
        else:
            if resumed:
                st.resumes += 1
                self._last_plan = RecoveryPlan(kind=PlanKind.RESUME, reason="snapshot id equals last applied")
            elif was is SyncState.RECOVERING and was_resume:
                # Reconnected, and the venue's own snapshot arrived before any delta could prove
                # a resume: this recovery is the WS snapshot (no request of ours was needed).
                st.resubscribes += 1
                self._last_plan = RecoveryPlan(kind=PlanKind.RESUBSCRIBE, reason="ws snapshot after reconnect")
            reason = "snapshot spliced" if rest else "ws snapshot"
            self._to(_SYNCED, reason, actions, self._last_plan.kind if was is SyncState.RECOVERING and self._last_plan else None)
        no_ids = rule is SpliceRule.NONE or rule is SpliceRule.MONOTONIC or snap.seq is None
        self._bridge_rule = None if no_ids else rule
        for d in pending:
            if self._state is not _SYNCED:
                self._buffer.append(d)
                continue
            actions.extend(self.on_delta(d))
        return actions

    def on_ticker(self, t: BookTicker) -> list[Action]:
        """Cross-check the top of book with a venue ticker at the same id."""
        if self._state is not _SYNCED or t.seq is None or t.seq != self._seq.local:
            return []
        self._stats.ticker_checks += 1
        bb, ba = self._book.best_bid(), self._book.best_ask()
        if bb == (t.bid_price, t.bid_size) and ba == (t.ask_price, t.ask_size):
            return []
        self._stats.ticker_mismatches += 1
        return [Alert(kind=AlertKind.TICKER_MISMATCH, symbol=self._symbol, seq=t.seq,
                      reason=f"ticker {t.bid_price}/{t.ask_price} vs book {bb}/{ba}")]

    def on_stream_closed(self, ev: StreamClosed) -> list[Action]:
        """The connection died: the book stops being valid until resumed or rebuilt."""
        actions: list[Action] = []
        if self._state is _SYNCED:
            if self._caps.sequence_model in (SequenceModel.CONTIGUOUS_RANGE, SequenceModel.PREV_POINTER):
                self._pending = _Pending.RESUME
                self._last_plan = None  # decided by what arrives first on the new connection
                self._to(SyncState.RECOVERING, f"disconnected ({ev.reason}); resume pending", actions)
            else:
                # No ids: nothing can prove that nothing was missed. The driver resubscribes
                # on reconnect and the venue pushes a fresh snapshot.
                plan = self._plan(f"disconnected ({ev.reason}); no sequence ids", allow_replay=False)
                if plan.kind is PlanKind.RESUBSCRIBE:
                    self._last_plan = plan
                    self._stats.resubscribes += 1
                    self._pending = _Pending.SNAPSHOT
                    self._to(SyncState.RECOVERING, plan.reason, actions, plan.kind)
                else:
                    actions.extend(self._start(plan, None))
        return actions

    def on_snapshot_failed(self, epoch: int, reason: str) -> list[Action]:
        """The REST request for ``epoch`` failed (after the driver's own retries)."""
        if epoch != self._epoch or self._state is SyncState.HALTED:
            return []
        self._snapshot_failures += 1
        return self._start(self._plan(f"snapshot failed: {reason}", allow_replay=False), None)

    def on_replay(self, deltas: list[BookDelta] | None) -> list[Action]:
        """The journal's answer to ``ReplayDeltas`` (``None``: it could not serve them)."""
        if self._pending is not _Pending.REPLAY:
            return []
        actions: list[Action] = []
        if deltas is not None and self._seq.local is not None:
            staged = list(deltas) + self._buffer
            self._buffer = []
            ok = True
            for i, d in enumerate(staged):
                v = self._seq.check(d.first_seq, d.last_seq, d.prev_seq)
                if v is _APPLY:
                    failed = self._apply(d)  # same checks as live: checksum, truncation, crossed
                    if failed:
                        return failed  # _apply already planned the next rung
                elif v is SeqVerdict.GAP:
                    ok = False
                    self._buffer = staged[i:]
                    break
            if ok:
                self._pending = _Pending.NOTHING
                self._to(_SYNCED, "gap closed from the journal", actions, PlanKind.REPLAY_DELTAS)
                return actions
        plan = plan_recovery(self._caps, reason="replay could not close the gap", replay_available=False,
                             snapshot_failures=self._snapshot_failures, max_snapshot_failures=self._max_failures)
        actions.extend(self._start(plan, None))
        return actions

    def on_connection_gap(self, reason: str) -> list[Action]:
        """The connection's own sequence skipped (Coinbase Advanced Trade ``sequence_num``
        counts per connection across channels): any book on it may have missed a delta."""
        if self._state is not _SYNCED:
            return []
        self._stats.gaps += 1
        return self._recover(reason, AlertKind.GAP, None)

    def on_stale(self, reason: str) -> list[Action]:
        """The driver's per-symbol timer fired: a synced book got no data for too long, or a
        recovery made no progress (a lost WS snapshot, a resume that never got its delta).
        Plans the next rung; a recovery that keeps timing out counts as failed snapshots and
        ends HALTED."""
        if self._state is SyncState.HALTED:
            return []
        if self._state is _SYNCED:
            return self._recover(f"stale stream: {reason}", AlertKind.STALE_STREAM, self._seq.local)
        self._snapshot_failures += 1
        self._bridge_rule = None
        return self._start(self._plan(f"no progress: {reason}", allow_replay=False), None)

    def on_invalid_input(self, reason: str) -> list[Action]:
        """A frame for this symbol could not be parsed: it may have been a delta."""
        self._stats.invalid_inputs += 1
        if self._state is _SYNCED:
            return self._recover(f"invalid input: {reason}", AlertKind.INVALID_INPUT, None)
        return [Alert(kind=AlertKind.INVALID_INPUT, symbol=self._symbol, reason=reason)]

    def halt(self, reason: str) -> list[Action]:
        """Stop serving this book (breaker open). Idempotent."""
        if self._state is SyncState.HALTED:
            return []
        return self._start(RecoveryPlan(kind=PlanKind.HALT, reason=reason), None)

    def reset(self) -> list[Action]:
        """Operator reset from HALTED: start over from UNSYNCED."""
        actions: list[Action] = []
        if self._state is not SyncState.HALTED:
            raise InvalidState(f"reset() needs HALTED, not {self._state}", symbol=self._symbol)
        self._book.clear()
        self._seq.reset(None)
        self._buffer = []
        self._snapshot_failures = 0
        self._bridge_rule = None
        self._pending = _Pending.NOTHING
        self._to(SyncState.UNSYNCED, "operator reset", actions)
        return actions

    def __repr__(self) -> str:
        return f"BookSession({self._symbol!r}, {self._state}, last_seq={self._seq.local})"
