"""BookSession: one (venue, symbol, channel) stream's sync state machine.

Theory of operation
-------------------
A session owns an :class:`~bookkeeper.book.L2Book` and a
:class:`~bookkeeper.sequencer.Sequencer` and is fed events; every input returns the actions
it caused (``FetchSnapshot``, ``Resubscribe``, ``ReplayDeltas``, ``Halt``, ``Alert``,
``StateChanged``). It never reads a clock, touches a socket or retries: the driver does.

A session is in a :class:`~bookkeeper.actions.SyncState` (public: only SYNCED books are
valid to read) and a :class:`Phase` (what it awaits: a snapshot, the delta that bridges one,
the first delta after a reconnect, a journal replay). Every legal change of the pair is a
row of :data:`PHASE_TRANSITIONS`; anything else raises ``InvalidState``. The diagram below is
that table, as :func:`transition_diagram` renders it (a test keeps them equal). *Trouble* is
a gap, a checksum mismatch, a crossed book, invalid input, no progress (``on_stale``), a local
id ahead, a buffer overflow or a refused snapshot (stale, unbridgeable, invalid, diverged);
the *next rung* is a REST snapshot or a resubscribe (``plan_recovery``); *halt* is the breaker
opening or the snapshot attempts running out; a *bridge owed* means the first newer delta
must bridge the snapshot by the venue's splice rule (:mod:`bookkeeper.splicing`)::

    UNSYNCED / idle
      ──▶ AWAITING_SNAPSHOT / snapshot  first delta on a REST venue, or trouble: next rung
      ──▶ SYNCED / idle                 snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ HALTED / idle                 halt
    AWAITING_SNAPSHOT / snapshot
      ──▶ SYNCED / idle                 snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ HALTED / idle                 halt
    SYNCED / idle
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ RECOVERING / snapshot         trouble, or disconnect without ids: next rung
      ──▶ RECOVERING / replay           gap: replay requested
      ──▶ RECOVERING / resume           disconnect: resume pending
      ──▶ HALTED / idle                 halt
    SYNCED / bridge
      ──▶ SYNCED / idle                 the bridging delta applied
      ──▶ RECOVERING / snapshot         trouble: next rung
      ──▶ RECOVERING / replay           gap: replay requested
      ──▶ RECOVERING / resume_bridge    disconnect: resume pending
      ──▶ HALTED / idle                 halt
    RECOVERING / snapshot
      ──▶ SYNCED / idle                 snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ HALTED / idle                 halt
    RECOVERING / resume
      ──▶ SYNCED / idle                 the first delta chains (resumed), or snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ RECOVERING / snapshot         trouble: next rung
      ──▶ RECOVERING / replay           gap: replay requested
      ──▶ HALTED / idle                 halt
    RECOVERING / resume_bridge
      ──▶ SYNCED / idle                 the first delta bridges (resumed), or snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ RECOVERING / snapshot         trouble: next rung
      ──▶ RECOVERING / replay           gap: replay requested
      ──▶ HALTED / idle                 halt
    RECOVERING / replay
      ──▶ SYNCED / idle                 the replay closed the gap, or snapshot applied
      ──▶ SYNCED / bridge               snapshot applied, bridge owed
      ──▶ RECOVERING / snapshot         the replay failed, or trouble: next rung
      ──▶ HALTED / idle                 halt
    HALTED / idle
      ──▶ UNSYNCED / idle               operator reset

While not SYNCED, deltas are buffered (bounded) for the splice. After a disconnect a
sequenced stream first tries to *resume*: if the first delta on the new connection still
chains to the last applied id, nothing was missed and no snapshot is taken. Only a SYNCED
book is valid to read; a crossed book or a checksum mismatch is reported (``Alert``) and
sends the book to RECOVERING, never silently repaired. Input the book rejects (a NaN,
infinite, negative or zero price, a bad size) changes no level and starts a recovery.

A synced book never moves back silently:

- A REST answer counts only for the newest request (its ``epoch``), once. A snapshot that
  syncs the book (a WS one that beat the REST answer) retires the outstanding request: its
  late answer is ignored (``stale_epochs``); :attr:`BookSession.awaited_epoch` tells the
  driver which fetch still matters.
- On a stream with ids, a snapshot older than a SYNCED book's last id is not applied
  (``stale_snapshots`` + ``Alert``: a late REST answer, a capture replayed twice); one at the
  same id must hold the same levels, or the book diverged (``diverged`` + ``Alert`` +
  recovery). One exception: a monotonic-id venue's own WS snapshot that is newer in exchange
  time than the last snapshot applied is the venue restarting its ids (Bybit ``u = 1``):
  applied, counted (``seq_restarts``) and alerted.
- On a stream that also numbers its messages with a cross sequence (``cross_seq``, Bybit
  ``seq``: it keeps increasing when the update ids restart), a delta the ids judge stale or
  not bridging although its cross sequence is newer than the book's is the venue restarting
  its ids (Bybit ``orderbook.full`` ``u = 1``, exchange-protocols.md §6.2: "restart the sync
  procedure"): counted (``seq_restarts``), alerted, and the book is resynced with the delta
  buffered, never dropped as stale. Snapshots are then placed by cross sequence
  (``SpliceRule.CROSS_NEXT``).
- A snapshot without an id where the splice rule needs one (a REST snapshot always; a WS
  snapshot once the stream has shown ids) cannot be bridged: refused
  (``unbridgeable_snapshots`` + ``Alert``, book untouched) and the next rung is planned.
- A synced book that keeps judging stale deltas newer than the id it held before its last
  applied delta (:data:`STALE_RUN_LIMIT` in a row, none applied) holds a corrupt id ahead of
  the venue: ``Alert(LOCAL_AHEAD)`` and recovery, instead of dropping every later delta.
  Ordinary late copies are at or below that id and never count.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

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
from .capabilities import ChecksumKind, ExchangeCapabilities, SequenceModel, SpliceRule
from .checksum import checksum_absent
from .errors import IntegrityError, InvalidState
from .events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
)
from .integrity import (
    STALE_RUN_LIMIT,
    ChecksumVerifier,
    StaleRunDetector,
    crossed_evidence,
)
from .recovery import RecoveryPlan, plan_recovery
from .sequencer import Sequencer, SeqVerdict
from .splicing import (
    SpliceOutcome,
    judge_bridge,
    needs_bridge,
    rule_for,
    splice,
    unbridgeable,
)

__all__ = [
    "PHASE_TRANSITIONS",
    "STALE_RUN_LIMIT",
    "TRANSITIONS",
    "BookSession",
    "Phase",
    "SessionStats",
    "transition_diagram",
]


class Phase(enum.Enum):
    """What a session awaits beside its :class:`~bookkeeper.actions.SyncState`."""

    IDLE = "idle"  # nothing: fresh (UNSYNCED), steady (SYNCED), or HALTED
    SNAPSHOT = "snapshot"  # the REST answer to the newest epoch, or the venue's WS snapshot
    BRIDGE = "bridge"  # synced on a snapshot; the first newer delta must bridge it (splice rule)
    RESUME = "resume"  # reconnected: does the first delta still chain to the last id?
    RESUME_BRIDGE = "resume_bridge"  # reconnected before the bridging delta: it must still bridge
    REPLAY = "replay"  # the journal's / redundant line's answer to ReplayDeltas


S = SyncState
P = Phase
#: A session's (state, phase).
Mode = tuple[SyncState, Phase]
_FRESH: Mode = (S.UNSYNCED, P.IDLE)
_FETCHING: Mode = (S.AWAITING_SNAPSHOT, P.SNAPSHOT)
_STEADY: Mode = (S.SYNCED, P.IDLE)
_BRIDGING: Mode = (S.SYNCED, P.BRIDGE)
_REBUILDING: Mode = (S.RECOVERING, P.SNAPSHOT)
_RESUMING: Mode = (S.RECOVERING, P.RESUME)
_RESUMING_BRIDGE: Mode = (S.RECOVERING, P.RESUME_BRIDGE)
_REPLAYING: Mode = (S.RECOVERING, P.REPLAY)
_HALTED: Mode = (S.HALTED, P.IDLE)
_APPLIED = "snapshot applied"
_APPLIED_BRIDGE = "snapshot applied, bridge owed"
_HALT = "halt"
_RUNG = "trouble: next rung"
_TO_REPLAY = "gap: replay requested"
_TO_RESUME = "disconnect: resume pending"

#: Every legal change of (state, phase), with what causes it (h11-style table: ``_to`` checks
#: it, :func:`transition_diagram` draws it; the words are explained in the module docstring).
#: Staying in the same (state, phase) is no change.
PHASE_TRANSITIONS: Mapping[Mode, Mapping[Mode, str]] = {
    _FRESH: {
        _FETCHING: "first delta on a REST venue, or trouble: next rung",
        _STEADY: _APPLIED,
        _BRIDGING: _APPLIED_BRIDGE,
        _HALTED: _HALT,
    },
    _FETCHING: {_STEADY: _APPLIED, _BRIDGING: _APPLIED_BRIDGE, _HALTED: _HALT},
    _STEADY: {
        _BRIDGING: _APPLIED_BRIDGE,
        _REBUILDING: "trouble, or disconnect without ids: next rung",
        _REPLAYING: _TO_REPLAY,
        _RESUMING: _TO_RESUME,
        _HALTED: _HALT,
    },
    _BRIDGING: {
        _STEADY: "the bridging delta applied",
        _REBUILDING: _RUNG,
        _REPLAYING: _TO_REPLAY,
        _RESUMING_BRIDGE: _TO_RESUME,
        _HALTED: _HALT,
    },
    _REBUILDING: {_STEADY: _APPLIED, _BRIDGING: _APPLIED_BRIDGE, _HALTED: _HALT},
    _RESUMING: {
        _STEADY: "the first delta chains (resumed), or snapshot applied",
        _BRIDGING: _APPLIED_BRIDGE,
        _REBUILDING: _RUNG,
        _REPLAYING: _TO_REPLAY,
        _HALTED: _HALT,
    },
    _RESUMING_BRIDGE: {
        _STEADY: "the first delta bridges (resumed), or snapshot applied",
        _BRIDGING: _APPLIED_BRIDGE,
        _REBUILDING: _RUNG,
        _REPLAYING: _TO_REPLAY,
        _HALTED: _HALT,
    },
    _REPLAYING: {
        _STEADY: "the replay closed the gap, or snapshot applied",
        _BRIDGING: _APPLIED_BRIDGE,
        _REBUILDING: "the replay failed, or trouble: next rung",
        _HALTED: _HALT,
    },
    _HALTED: {_FRESH: "operator reset"},
}

#: The state-level view of :data:`PHASE_TRANSITIONS`: every legal :class:`SyncState` change
#: (what ``StateChanged`` actions can report). Same-state "changes" are not transitions.
TRANSITIONS: Mapping[SyncState, frozenset[SyncState]] = {
    state: frozenset(new_state for (old_state, _), row in PHASE_TRANSITIONS.items() if old_state is state
                     for (new_state, _) in row if new_state is not state)
    for state in SyncState
}


def transition_diagram() -> str:
    """Draw :data:`PHASE_TRANSITIONS`: each (state, phase), then one line per legal change.

    Returns:
        The diagram the module docstring shows (indented by 4, without trailing spaces).
    """
    def name(mode: Mode) -> str:
        return f"{mode[0].name} / {mode[1].value}"

    width = max(len(name(new)) for row in PHASE_TRANSITIONS.values() for new in row)
    lines: list[str] = []
    for old, row in PHASE_TRANSITIONS.items():
        lines.append(f"    {name(old)}")
        lines.extend(f"      ──▶ {name(new):<{width}}  {why}" for new, why in row.items())
    return "\n".join(lines)


_APPLY = SeqVerdict.APPLY
_STALE = SeqVerdict.STALE
_DUP = SeqVerdict.DUPLICATE
_SYNCED = SyncState.SYNCED
_IDLE = Phase.IDLE
#: deltas buffered without the promised WS snapshot before a REST snapshot is requested
_WS_SNAPSHOT_GRACE = 50


class SessionStats:
    """Counters of one session (all ints; read them, don't write them)."""

    __slots__ = (
        "snapshots", "deltas_applied", "stale_dropped", "duplicates", "gaps", "missed_ids",
        "checksums_verified", "checksum_mismatches", "crossed", "invalid_inputs", "unsequenced",
        "buffered", "buffer_overflows", "stale_snapshots", "stale_epochs", "bridged",
        "resumes", "replays", "resubscribes", "rest_snapshots", "halts", "diverged",
        "ticker_checks", "ticker_mismatches", "unbridgeable_snapshots", "local_ahead", "seq_restarts",
        "resume_misses",
    )  # fmt: skip
    # declared for type checkers (the slots are the storage; __init__ zeroes them all)
    snapshots: int
    deltas_applied: int
    stale_dropped: int
    duplicates: int
    gaps: int
    missed_ids: int
    checksums_verified: int
    checksum_mismatches: int
    crossed: int
    invalid_inputs: int
    unsequenced: int
    buffered: int
    buffer_overflows: int
    stale_snapshots: int
    stale_epochs: int
    bridged: int
    resumes: int
    replays: int
    resubscribes: int
    rest_snapshots: int
    halts: int
    diverged: int
    ticker_checks: int
    ticker_mismatches: int
    unbridgeable_snapshots: int
    local_ahead: int
    seq_restarts: int
    #: gaps found by the first delta after a reconnect (ids were missed while disconnected:
    #: the normal path to a resync, also counted in ``gaps``)
    resume_misses: int

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
        depth: the subscribed depth (for venues that truncate, see ``truncate_to_depth``).
        max_stale_run: see :data:`STALE_RUN_LIMIT`.

    Raises:
        ValueError: ``max_stale_run`` < 1.

    >>> from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
    >>> caps = ExchangeCapabilities(venue="demo", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    ...                             splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True)
    >>> s = BookSession("BTCUSDT", caps)
    >>> [type(a).__name__ for a in s.on_delta(BookDelta(symbol="BTCUSDT", bids=[(10.0, 1.0)],
    ...                                                  asks=[], first_seq=5, last_seq=6))]
    ['FetchSnapshot', 'StateChanged']
    >>> s.state, s.phase
    (<SyncState.AWAITING_SNAPSHOT: 'awaiting_snapshot'>, <Phase.SNAPSHOT: 'snapshot'>)
    >>> _ = s.on_snapshot(BookSnapshot(symbol="BTCUSDT", bids=[(9.0, 1.0)], asks=[(11.0, 1.0)],
    ...                                seq=5, source=SnapshotSource.REST), epoch=1)
    >>> s.state, s.phase, s.last_seq, s.book.best_bid()
    (<SyncState.SYNCED: 'synced'>, <Phase.IDLE: 'idle'>, 6, (10.0, 1.0))
    """

    __slots__ = (
        "_symbol", "_caps", "_book", "_seq", "_state", "_phase", "_buffer", "_epoch",
        "_splice_rule", "_snapshot_failures", "_depth", "_verify", "_max_failures",
        "_max_buffer", "_replay_available", "_last_plan", "_stats", "_checksum_kind", "_checksum",
        "_truncate", "_answered_epoch", "_fast_model", "_has_ids", "_stale_run", "_snapshot_ts", "_cross",
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
        max_stale_run: int = STALE_RUN_LIMIT,
    ) -> None:
        self._stale_run = StaleRunDetector(max_stale_run)
        self._symbol = symbol
        self._caps = capabilities
        self._book = L2Book()
        self._seq = Sequencer(capabilities.sequence_model)
        self._state = SyncState.UNSYNCED
        self._phase = Phase.IDLE
        self._buffer: list[BookDelta] = []
        self._epoch = 0
        # The rule that placed the last snapshot applied: what the BRIDGE phases judge by.
        self._splice_rule = capabilities.splice_rule
        self._snapshot_failures = 0
        self._depth = depth
        self._checksum_kind = capabilities.checksum
        self._verify = verify_checksums and capabilities.checksum is not ChecksumKind.NONE
        self._checksum = ChecksumVerifier(capabilities.checksum) if self._verify else None
        self._truncate = capabilities.truncate_to_depth
        self._max_failures = max_snapshot_failures
        self._max_buffer = capabilities.max_buffered_deltas
        self._replay_available = replay_available
        self._last_plan: RecoveryPlan | None = None
        self._stats = SessionStats()
        self._answered_epoch = -1
        self._has_ids = capabilities.sequence_model is not SequenceModel.NONE
        self._snapshot_ts = 0  # ts_exchange_ns of the last snapshot applied
        self._cross: int | None = None  # cross_seq of the last delta or snapshot applied
        # apply_frame_fast's model code (0: never fast): sequenced by range or pointer, and
        # nothing per delta beyond apply + crossed check (no checksum, no truncation).
        model = capabilities.sequence_model
        fast = 1 if model is SequenceModel.CONTIGUOUS_RANGE else 2 if model is SequenceModel.PREV_POINTER else 0
        # CROSS_NEXT keeps the last cross sequence per delta (restart detection): never fast
        cross = SpliceRule.CROSS_NEXT in (capabilities.splice_rule, capabilities.ws_splice_rule)
        self._fast_model = 0 if self._verify or self._truncate or cross else fast

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
    def phase(self) -> Phase:
        """What the session awaits (see :data:`PHASE_TRANSITIONS`); read-only, for observers."""
        return self._phase

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
    def last_cross_seq(self) -> int | None:
        """The cross sequence of the last delta or snapshot applied (``None``: the venue sends
        none). It orders the book's state across restarts of the update ids."""
        return self._cross

    @property
    def epoch(self) -> int:
        """The tag of the newest snapshot request; older answers are ignored."""
        return self._epoch

    @property
    def awaited_epoch(self) -> int | None:
        """The epoch of the REST snapshot request whose answer is still wanted, or ``None``.

        A fetch in flight for any other epoch is useless (its answer would only be counted as
        ``stale_epochs``): a driver may cancel it. ``None`` once the newest request was
        answered or failed, or a snapshot synced the book first (a WS snapshot that beat the
        REST answer), and while HALTED.
        """
        if self._state is SyncState.HALTED or self._epoch == 0 or self._answered_epoch == self._epoch:
            return None
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
    def _to(self, state: SyncState, phase: Phase, reason: str, actions: list[Action],
            plan: PlanKind | None = None) -> None:
        """Move to (``state``, ``phase``) if :data:`PHASE_TRANSITIONS` allows it; a change of
        state is reported as ``StateChanged``, a change of phase alone is not."""
        old, old_phase = self._state, self._phase
        if state is old and phase is old_phase:
            return
        if (state, phase) not in PHASE_TRANSITIONS[(old, old_phase)]:
            raise InvalidState(f"illegal transition {old}/{old_phase.value} -> {state}/{phase.value} ({reason})",
                               symbol=self._symbol)
        self._state = state
        self._phase = phase
        if state is not old:
            actions.append(StateChanged(symbol=self._symbol, old=old, new=state, reason=reason, plan=plan))

    # ------------------------------------------------------------------ inputs
    def handle(self, event: object) -> list[Action]:
        """Dispatch any event this session understands; others return ``[]``.

        Args:
            event: a ``BookDelta``, ``BookSnapshot``, ``BookTicker``, ``StreamClosed`` (or
                anything else, ignored).

        Returns:
            The actions it caused.
        """
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
        """Feed one delta.

        Args:
            d: the delta.

        Returns:
            The actions it caused (usually none).
        """
        if self._state is _SYNCED:
            if self._phase is not _IDLE:  # BRIDGE: the first delta after a snapshot
                return self._bridge(d)
            v = self._seq.check(d.first_seq, d.last_seq, d.prev_seq)
            if v is _APPLY:
                return self._apply(d)
            if v is _STALE:
                if d.cross_seq is not None and self._ids_restarted(d):
                    return self._restart(d)
                self._stats.stale_dropped += 1
                floor = self._seq.previous
                # Only a stale delta newer than the id held before the last applied one counts
                # towards LOCAL_AHEAD; late copies at or below it are ordinary (no call for them).
                if (floor is not None and d.last_seq > floor  # type: ignore[operator]  # STALE has ids
                        and self._stale_run.count(self._stats.deltas_applied)):
                    return self._local_ahead(d)
                return []
            if v is _DUP:
                if d.cross_seq is not None and self._ids_restarted(d):
                    return self._restart(d)
                self._stats.duplicates += 1
                return []
            return self._gap(d)
        phase = self._phase
        if phase is Phase.RESUME:
            return self._resume(d, self._seq.check(d.first_seq, d.last_seq, d.prev_seq))
        if phase is Phase.RESUME_BRIDGE:  # disconnected before the snapshot's bridging delta came
            return self._resume(d, judge_bridge(self._splice_rule, self._seq.local, d, snapshot_cross=self._cross))
        if self._state is SyncState.HALTED:
            return []
        return self._buffer_delta(d)

    def _resume(self, d: BookDelta, v: SeqVerdict) -> list[Action]:
        """The first delta after a reconnect, judged ``v``: APPLY proves nothing was missed."""
        if v is _APPLY:
            actions: list[Action] = []
            st = self._stats
            if self._phase is Phase.RESUME_BRIDGE:
                st.bridged += 1
            st.resumes += 1
            self._last_plan = RecoveryPlan(kind=PlanKind.RESUME, reason="first delta after reconnect chains")
            self._to(_SYNCED, _IDLE, "resumed: nothing was missed", actions, PlanKind.RESUME)
            actions.extend(self._apply(d))
            return actions
        if d.cross_seq is not None and self._ids_restarted(d):
            return self._restart(d)
        if v is _STALE or v is _DUP:
            self._stats.stale_dropped += 1
            return []
        self._stats.resume_misses += 1
        return self._gap(d)

    def _ids_restarted(self, d: BookDelta) -> bool:
        """``d`` is newer than the book by cross sequence but not by update id: the venue
        restarted its ids (Bybit ``u = 1``, §6.2)."""
        cross, local = self._cross, self._seq.local
        return (cross is not None and d.cross_seq is not None and d.cross_seq > cross
                and local is not None and d.last_seq is not None and d.last_seq <= local)

    def _restart(self, d: BookDelta) -> list[Action]:
        """The venue restarted its ids: resync, keeping ``d`` (the new ids' first) for the splice."""
        self._stats.seq_restarts += 1
        reason = (f"the venue's ids restarted: delta {d.last_seq} (cross {d.cross_seq}) after {self._seq.local} "
                  f"(cross {self._cross})")
        actions: list[Action] = [Alert(kind=AlertKind.SEQ_RESTART, symbol=self._symbol, reason=reason,
                                       seq=d.last_seq)]
        actions.extend(self._start(self._plan(reason, allow_replay=False), d))
        return actions

    def apply_frame_fast(self, frame: bytes, fused: Callable[..., object]) -> bool:
        """Apply one raw frame in the SYNCED steady state without building a ``BookDelta``.

        ``fused(frame, symbol, model, local, bsizes, bkeys, asizes, akeys)`` is a venue's fused
        decode + apply (``adapters.binance.parse.fused_depth``). True: the frame's delta was
        applied, exactly as ``on_delta(decode(frame))`` would have (which then returns no
        actions). False: nothing was touched and the caller MUST take the normal path for this
        frame (``decoder.decode()`` -> ``handle()``), which decides everything else: stale,
        duplicate, gap, crossed, bad or foreign frames, every (state, phase) but SYNCED/idle.
        ``fused`` may only answer the single APPLY case of
        :class:`~bookkeeper.sequencer.Sequencer`'s rule.

        Args:
            frame: the raw frame.
            fused: the venue's fused decode + apply.

        Returns:
            Whether the frame was applied.
        """
        model = self._fast_model
        if not model or self._state is not _SYNCED or self._phase is not _IDLE:
            return False
        seq = self._seq
        r = self._book.apply_frame(frame, fused, self._symbol, model, seq.local)
        if type(r) is not tuple:
            return False
        seq.advance(r[0], r[1])
        self._stats.deltas_applied += 1
        return True

    def _local_ahead(self, d: BookDelta) -> list[Action]:
        """The stale-run detector's verdict: our last id is corrupt (e.g. ``u = 2**70`` on a
        monotonic venue) and every later delta would be dropped. Alert and recover."""
        self._stats.local_ahead += 1
        limit = self._stale_run.max_stale_run
        reason = (f"local id {self._seq.local} is ahead of the venue: {limit} deltas in a row "
                  f"newer than {self._seq.previous} judged stale (last {d.last_seq})")
        return self._recover(reason, AlertKind.LOCAL_AHEAD, d.last_seq)

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
            actions.append(FetchSnapshot(symbol=self._symbol, epoch=self._epoch, reason="initial sync",
                                         depth=self._caps.rest_snapshot_depth))
            self._to(SyncState.AWAITING_SNAPSHOT, Phase.SNAPSHOT, "initial sync: REST snapshot requested", actions)
        return actions

    def _bridge(self, d: BookDelta) -> list[Action]:
        v = judge_bridge(self._splice_rule, self._seq.local, d, snapshot_cross=self._cross)
        if v is _STALE:
            self._stats.stale_dropped += 1
            return []
        if v is _APPLY:
            self._stats.bridged += 1
            self._to(_SYNCED, _IDLE, "bridged", [])  # a phase change only: nothing to report
            return self._apply(d)
        if d.cross_seq is not None and self._ids_restarted(d):
            return self._restart(d)
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
        cross = d.cross_seq
        if cross is not None:
            self._cross = cross
        st = self._stats
        st.deltas_applied += 1
        if last is None and self._has_ids:
            st.unsequenced += 1
        if self._truncate and self._depth:
            book.truncate(self._depth)
        if self._verify and not checksum_absent(self._checksum_kind, d.checksum):
            mismatch = self._checksum.mismatch(book, d.checksum)  # type: ignore[union-attr,arg-type]
            if mismatch is not None:
                st.checksum_mismatches += 1
                return self._recover(mismatch, AlertKind.CHECKSUM_MISMATCH, last)
            st.checksums_verified += 1
        if book.is_crossed():
            st.crossed += 1
            return self._recover(f"crossed book: {crossed_evidence(book)}", AlertKind.CROSSED, last)
        return []

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
        actions.extend(self._start(self._plan(reason), d))
        return actions

    def _recover(self, reason: str, kind: AlertKind, seq: int | None) -> list[Action]:
        actions: list[Action] = [Alert(kind=kind, symbol=self._symbol, reason=reason, seq=seq)]
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
            self._buffer.clear()
            self._to(SyncState.HALTED, _IDLE, plan.reason, actions, kind)
            actions.append(Halt(symbol=self._symbol, reason=plan.reason))
            return actions
        target = SyncState.RECOVERING if self._state in (_SYNCED, SyncState.RECOVERING) else self._state
        if target is SyncState.UNSYNCED:
            target = SyncState.AWAITING_SNAPSHOT
        if trigger is not None:
            self._buffer.append(trigger)
        phase = Phase.SNAPSHOT
        if kind is PlanKind.REPLAY_DELTAS:
            st.replays += 1
            phase = Phase.REPLAY
            local = self._seq.local
            to_seq = None
            if trigger is not None:
                to_seq = (trigger.first_seq - 1) if trigger.first_seq is not None else trigger.prev_seq
            actions.append(ReplayDeltas(symbol=self._symbol, from_seq=(local or 0) + 1, to_seq=to_seq,
                                        reason=plan.reason))
        elif kind is PlanKind.RESUBSCRIBE:
            st.resubscribes += 1
            actions.append(Resubscribe(symbol=self._symbol, reason=plan.reason))
        else:  # SNAPSHOT_REBUILD
            st.rest_snapshots += 1
            self._epoch += 1
            actions.append(FetchSnapshot(symbol=self._symbol, epoch=self._epoch, reason=plan.reason,
                                         depth=self._caps.rest_snapshot_depth))
        self._to(target, phase, plan.reason, actions, kind)
        return actions

    def on_snapshot(self, snap: BookSnapshot, *, epoch: int | None = None) -> list[Action]:
        """Feed a snapshot (WS-pushed, or the REST answer to ``FetchSnapshot(epoch)``).

        Args:
            snap: the snapshot.
            epoch: the request it answers (``None``: not an answer, e.g. WS-pushed or replayed).

        Returns:
            The actions it caused. Nothing happens for an answer to an older request, a second
            answer to the newest, or one retired by a snapshot that synced the book first
            (``stale_epochs``). A snapshot that would move a SYNCED book back, or that has no
            id where the splice needs one, is not applied (see the module docstring).
        """
        st = self._stats
        if self._state is SyncState.HALTED:
            return []
        if epoch is not None:
            if epoch != self._epoch or epoch == self._answered_epoch:
                st.stale_epochs += 1  # an older request's answer, a second answer, or retired
                return []
            self._answered_epoch = epoch  # answered, whatever becomes of it
        rest = snap.source is not SnapshotSource.WS
        rule = rule_for(self._caps, snap.source)
        actions: list[Action] = []
        if snap.seq is None:
            if unbridgeable(rule, snap, self._seq.local, self._buffer):
                return self._refuse_unbridgeable(snap, rule)
        elif self._state is _SYNCED and self._has_ids:
            local = self._seq.local
            if local is not None and snap.seq <= local:
                refused = self._old_snapshot(snap, rest, local)
                if refused is not None:
                    return refused
                st.seq_restarts += 1
                actions.append(Alert(kind=AlertKind.SEQ_RESTART, symbol=self._symbol, seq=snap.seq,
                                     reason=f"the venue's ids restarted: snapshot {snap.seq} after {local}"))
        result = splice(rule, snap.seq, self._buffer, snapshot_cross=snap.cross_seq)
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
        was_resume = self._phase is Phase.RESUME or self._phase is Phase.RESUME_BRIDGE
        resumed = (
            was_resume
            and snap.seq is not None
            and snap.seq == self._seq.local
            and (snap.cross_seq is None or snap.cross_seq == self._cross)  # else the ids restarted in between
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
        self._snapshot_ts = snap.ts_exchange_ns
        if snap.depth is not None:
            self._depth = snap.depth
        if self._truncate and self._depth:
            self._book.truncate(self._depth)
        self._seq.reset(snap.seq)
        self._cross = snap.cross_seq
        st.stale_dropped += result.dropped
        pending = self._buffer[result.start:]
        self._buffer = []
        self._snapshot_failures = 0
        if self._verify and not checksum_absent(self._checksum_kind, snap.checksum):
            mismatch = self._checksum.mismatch(self._book, snap.checksum)  # type: ignore[union-attr,arg-type]
            if mismatch is not None:
                st.checksum_mismatches += 1
                actions.extend(self._recover(mismatch, AlertKind.CHECKSUM_MISMATCH, snap.seq))
                return actions
            st.checksums_verified += 1
        if self._book.is_crossed():
            st.crossed += 1
            self._snapshot_failures += 1
            actions.extend(self._recover(f"crossed snapshot: {crossed_evidence(self._book)}", AlertKind.CROSSED,
                                         snap.seq))
            return actions
        # The book is synced by this snapshot: an outstanding REST request (a WS snapshot beat
        # its answer) is retired, so that older answer can never rewind the book.
        self._answered_epoch = self._epoch
        self._splice_rule = rule
        phase = Phase.BRIDGE if needs_bridge(rule, snap.seq) else _IDLE
        was = self._state
        plan = None
        if was is SyncState.RECOVERING:
            if resumed:
                st.resumes += 1
                self._last_plan = RecoveryPlan(kind=PlanKind.RESUME, reason="snapshot id equals last applied")
            elif was_resume:
                # Reconnected, and the venue's own snapshot arrived before any delta could prove
                # a resume: this recovery is the WS snapshot (no request of ours was needed).
                st.resubscribes += 1
                self._last_plan = RecoveryPlan(kind=PlanKind.RESUBSCRIBE, reason="ws snapshot after reconnect")
            plan = self._last_plan.kind if self._last_plan else None
        # A venue-pushed snapshot mid-stream (OKX, Bybit) replaces a SYNCED book: a phase change at most.
        self._to(_SYNCED, phase, "snapshot spliced" if rest else "ws snapshot", actions, plan)
        for d in pending:
            if self._state is not _SYNCED:
                self._buffer.append(d)
                continue
            actions.extend(self.on_delta(d))
        return actions

    def _refuse_unbridgeable(self, snap: BookSnapshot, rule: SpliceRule) -> list[Action]:
        """A snapshot without an id where ``rule`` places snapshots by id: splicing it would
        apply every buffered delta unchecked (they may be older or leave a gap). Refused; a
        failed snapshot attempt; the next rung (a resubscribe where the venue pushes one)."""
        self._stats.unbridgeable_snapshots += 1
        self._snapshot_failures += 1
        reason = (f"{snap.source.value} snapshot without a sequence id cannot be bridged "
                  f"({rule.value} splice needs one)")
        actions: list[Action] = [Alert(kind=AlertKind.UNBRIDGEABLE_SNAPSHOT, symbol=self._symbol, reason=reason)]
        actions.extend(self._start(self._plan(reason, allow_replay=False), None))
        return actions

    def _old_snapshot(self, snap: BookSnapshot, rest: bool, local: int) -> list[Action] | None:
        """A snapshot at or below a SYNCED book's last id: the actions refusing it, or ``None``
        when it must be applied (the venue restarted its ids: a monotonic-id venue's newer WS
        snapshot, or any snapshot newer by cross sequence)."""
        st = self._stats
        seq = snap.seq
        if snap.cross_seq is not None and self._cross is not None and snap.cross_seq > self._cross:
            return None  # newer by cross sequence: the venue restarted its ids since (§6.2)
        if seq == local:
            if self._book.equals(snap.bids, snap.asks):
                st.stale_snapshots += 1
                return [Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=self._symbol, seq=seq,
                              reason=f"snapshot at the synced book's own id {seq} (same levels): not applied")]
            st.diverged += 1
            return self._recover(f"book diverged from the venue's snapshot at the same id {seq}",
                                 AlertKind.CHECKSUM_MISMATCH, seq)
        # Older. On a sequenced stream the venue pushes snapshots only on subscribe, so this is
        # late (a REST answer, a capture replayed twice). A monotonic-id venue may restart its
        # ids and push its book (Bybit u = 1, exchange-protocols.md §6.2): its own WS snapshot
        # is a restart unless it is no newer in exchange time than the last snapshot applied.
        ts = snap.ts_exchange_ns
        if (not rest and self._caps.sequence_model is SequenceModel.MONOTONIC_ONLY
                and not (ts and ts <= self._snapshot_ts)):
            return None
        st.stale_snapshots += 1
        return [Alert(kind=AlertKind.STALE_SNAPSHOT, symbol=self._symbol, seq=seq,
                      reason=f"snapshot {seq} is older than the synced book ({local}): not applied")]

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
                # Still owed the snapshot's bridging delta: the first delta must bridge, not chain.
                phase = Phase.RESUME_BRIDGE if self._phase is Phase.BRIDGE else Phase.RESUME
                self._last_plan = None  # decided by what arrives first on the new connection
                self._to(SyncState.RECOVERING, phase, f"disconnected ({ev.reason}); resume pending", actions)
            else:
                # No ids: nothing can prove that nothing was missed. The driver resubscribes
                # on reconnect and the venue pushes a fresh snapshot.
                plan = self._plan(f"disconnected ({ev.reason}); no sequence ids", allow_replay=False)
                if plan.kind is PlanKind.RESUBSCRIBE:
                    self._last_plan = plan
                    self._stats.resubscribes += 1
                    self._to(SyncState.RECOVERING, Phase.SNAPSHOT, plan.reason, actions, plan.kind)
                else:
                    actions.extend(self._start(plan, None))
        return actions

    def on_snapshot_failed(self, epoch: int, reason: str) -> list[Action]:
        """The REST request for ``epoch`` failed (after the driver's own retries).

        Ignored (``[]``) unless ``epoch`` is :attr:`awaited_epoch`: an older request, or one
        retired because a snapshot synced the book first, no longer matters.
        """
        if epoch != self._epoch or epoch == self._answered_epoch or self._state is SyncState.HALTED:
            return []
        self._answered_epoch = epoch
        self._snapshot_failures += 1
        return self._start(self._plan(f"snapshot failed: {reason}", allow_replay=False), None)

    def on_replay(self, deltas: list[BookDelta] | None) -> list[Action]:
        """The journal's answer to ``ReplayDeltas`` (``None``: it could not serve them)."""
        if self._phase is not Phase.REPLAY:
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
                self._to(_SYNCED, _IDLE, "gap closed from the journal", actions, PlanKind.REPLAY_DELTAS)
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
        self._snapshot_ts = 0
        self._cross = None
        self._to(SyncState.UNSYNCED, _IDLE, "operator reset", actions)
        return actions

    def __repr__(self) -> str:
        return f"BookSession({self._symbol!r}, {self._state}, last_seq={self._seq.local})"
