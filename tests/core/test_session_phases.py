"""BookSession's (SyncState, Phase) table: drawn in the docstring, checked by ``_to``, and every
row reachable from public inputs (a seeded random walk over several venues' capabilities)."""

from __future__ import annotations

import random
import re

import pytest
from bookkeeper.adapters import get_adapter

import bookkeeper.session as session_mod
from bookkeeper.actions import (
    Action,
    FetchSnapshot,
    PlanKind,
    ReplayDeltas,
    StateChanged,
    SyncState,
)
from bookkeeper.capabilities import (
    ExchangeCapabilities,
    SequenceModel,
    SpliceRule,
)
from bookkeeper.errors import InvalidState
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    CloseReason,
    SnapshotSource,
    StreamClosed,
)
from bookkeeper.session import (
    PHASE_TRANSITIONS,
    TRANSITIONS,
    BookSession,
    Phase,
    transition_diagram,
)

SYM = "BTCUSDT"
U, AW, SY, RC, HA = (SyncState.UNSYNCED, SyncState.AWAITING_SNAPSHOT, SyncState.SYNCED,
                     SyncState.RECOVERING, SyncState.HALTED)
IDLE, SNAP, BRIDGE, RESUME, RESUME_BRIDGE, REPLAY = (Phase.IDLE, Phase.SNAPSHOT, Phase.BRIDGE, Phase.RESUME,
                                                     Phase.RESUME_BRIDGE, Phase.REPLAY)
CLOSED = StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, code=1006)

SPOT, USDM, OKX, KRAKEN, BYBIT, KUCOIN, COINBASE, DERIBIT = (
    get_adapter(v).capabilities
    for v in ("binance", "binance_usdm", "okx", "kraken", "bybit", "kucoin", "coinbase", "deribit"))
NO_PATH = ExchangeCapabilities(venue="none", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
                               splice_rule=SpliceRule.RANGE_NEXT, max_buffered_deltas=8)


def delta(first: int | None, last: int | None, bids=(), asks=(), *, prev: int | None = None) -> BookDelta:
    return BookDelta(symbol=SYM, bids=list(bids), asks=list(asks), first_seq=first, last_seq=last, prev_seq=prev)


def snap(seq: int | None, source: SnapshotSource, bids=((99.0, 1.0),), asks=((101.0, 1.0),)) -> BookSnapshot:
    return BookSnapshot(symbol=SYM, bids=list(bids), asks=list(asks), seq=seq, source=source)


def mode(s: BookSession) -> tuple[SyncState, Phase]:
    return s.state, s.phase


# ---------------------------------------------------------------------- the table and its drawing
EDGES = {(old, new) for old, row in PHASE_TRANSITIONS.items() for new in row}


def test_docstring_diagram_is_the_table():
    doc = session_mod.__doc__
    assert doc is not None and transition_diagram() in doc, (
        "bookkeeper/session.py's docstring diagram is out of date: paste transition_diagram()")


def test_diagram_draws_every_row_and_nothing_else():
    names = {f"{s.name} / {p.value}": (s, p) for s in SyncState for p in Phase}
    drawn: set[tuple[object, object]] = set()
    source = None
    for line in transition_diagram().splitlines():
        m = re.fullmatch(r" {6}──▶ (\S+ / \S+) +(.+)", line)
        if m is None:
            source = names[line.strip()]
            continue
        assert PHASE_TRANSITIONS[source][names[m.group(1)]] == m.group(2)  # type: ignore[index]
        drawn.add((source, names[m.group(1)]))
    assert drawn == EDGES


def test_state_transitions_are_the_state_view_of_the_phase_table():
    view = {s: {new[0] for (old, new) in EDGES if old[0] is s and new[0] is not s} for s in SyncState}
    assert TRANSITIONS == {s: frozenset(v) for s, v in view.items()}


def test_no_row_stays_in_place_and_every_mode_has_a_way_out():
    assert all(old != new for old, new in EDGES)
    assert {old for old, _ in EDGES} == {new for _, new in EDGES} == set(PHASE_TRANSITIONS)


@pytest.mark.parametrize("start,target", [
    ((U, IDLE), (RC, SNAP)),  # listed in TRANSITIONS before [shape], never reached
    ((AW, SNAP), (RC, SNAP)),
    ((AW, SNAP), (U, IDLE)),
    ((SY, IDLE), (AW, SNAP)),
    ((SY, IDLE), (RC, RESUME_BRIDGE)),  # a bridge is only owed after a snapshot
    ((RC, SNAP), (RC, REPLAY)),
    ((HA, IDLE), (SY, IDLE)),
])
def test_a_change_outside_the_table_raises_and_changes_nothing(start, target):
    s = BookSession(SYM, SPOT)
    s._state, s._phase = start  # placed directly: only the check of _to is under test
    acts: list[Action] = []
    with pytest.raises(InvalidState, match="illegal transition"):
        s._to(target[0], target[1], "test", acts)
    assert (mode(s), acts) == (start, [])


def test_a_phase_change_alone_reports_no_state_change():
    s = BookSession(SYM, SPOT)
    feed = s.on_delta(delta(95, 100))
    assert [type(a) for a in feed] == [FetchSnapshot, StateChanged]
    assert s.on_snapshot(snap(120, SnapshotSource.REST), epoch=1)[0].new is SY
    assert mode(s) == (SY, BRIDGE)
    assert s.on_delta(delta(121, 121)) == [] and mode(s) == (SY, IDLE)


def test_phase_is_read_only():
    s = BookSession(SYM, SPOT)
    with pytest.raises(AttributeError):
        s.phase = Phase.REPLAY  # type: ignore[misc]
    assert s.phase is IDLE


# ---------------------------------------------------------------------- phases through public inputs
def test_rest_sync_awaits_snapshot_then_bridge_then_steady():
    s = BookSession(SYM, SPOT)
    assert mode(s) == (U, IDLE)
    s.on_delta(delta(95, 100))
    assert mode(s) == (AW, SNAP)
    s.on_snapshot(snap(100, SnapshotSource.REST), epoch=1)
    assert mode(s) == (SY, BRIDGE)  # nothing newer buffered: the next delta must bridge 100
    s.on_delta(delta(101, 102))
    assert mode(s) == (SY, IDLE)


def test_disconnect_while_a_bridge_is_owed_resumes_by_the_bridge_rule():
    s = BookSession(SYM, USDM)
    s.on_delta(delta(90, 95, prev=85))
    s.on_snapshot(snap(100, SnapshotSource.REST), epoch=1)
    s.handle(CLOSED)
    assert mode(s) == (RC, RESUME_BRIDGE)
    s.on_delta(delta(98, 105, prev=97))  # U <= 100 <= u bridges, though pu != 100
    assert (mode(s), s.last_seq, s.stats.bridged, s.stats.resumes) == ((SY, IDLE), 105, 1, 1)


def test_disconnect_when_steady_resumes_by_the_chain():
    s = BookSession(SYM, SPOT)
    s.on_delta(delta(95, 100))
    s.on_snapshot(snap(100, SnapshotSource.REST), epoch=1)
    s.on_delta(delta(101, 101))
    s.handle(CLOSED)
    assert mode(s) == (RC, RESUME)
    s.on_delta(delta(103, 104))  # a gap: the next rung
    assert mode(s) == (RC, SNAP) and s.last_plan.kind is PlanKind.SNAPSHOT_REBUILD


def test_replay_phase_until_the_journal_answers():
    s = BookSession(SYM, SPOT, replay_available=True)
    s.on_delta(delta(95, 100))
    s.on_snapshot(snap(100, SnapshotSource.REST), epoch=1)
    s.on_delta(delta(101, 101))
    acts = s.on_delta(delta(105, 105))
    assert any(type(a) is ReplayDeltas for a in acts) and mode(s) == (RC, REPLAY)
    s.on_replay([delta(102, 104)])
    assert (mode(s), s.last_seq) == ((SY, IDLE), 105)
    assert s.on_replay([delta(106, 106)]) == [] and s.last_seq == 105  # no replay awaited now


def test_halt_and_reset_leave_no_phase_behind():
    s = BookSession(SYM, SPOT)
    s.on_delta(delta(95, 100))
    s.halt("breaker open")
    assert mode(s) == (HA, IDLE)
    s.reset()
    assert mode(s) == (U, IDLE)


# ---------------------------------------------------------------------- every row reachable, none other
class RecordingSession(BookSession):
    """A BookSession that records every (state, phase) change ``_to`` makes."""

    __slots__ = ("changes",)

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.changes: set[tuple[tuple[SyncState, Phase], tuple[SyncState, Phase]]] = set()

    def _to(self, state, phase, reason, actions, plan=None) -> None:  # type: ignore[no-untyped-def]
        old = mode(self)
        super()._to(state, phase, reason, actions, plan)
        if mode(self) != old:
            self.changes.add((old, mode(self)))


class Walk:
    """One seeded random walk: a venue whose ids advance by one per message, and a driver that
    delivers, drops, repeats, corrupts, disconnects, answers (or fails) requests at random."""

    def __init__(self, seed: int, caps: ExchangeCapabilities, replay: bool) -> None:
        self.rng = random.Random(seed)
        self.caps = caps
        self.ids = caps.sequence_model is not SequenceModel.NONE
        self.pointer = caps.sequence_model is SequenceModel.PREV_POINTER
        self.s = RecordingSession(SYM, caps, replay_available=replay, max_snapshot_failures=4, max_stale_run=3)
        self.last = 100  # the venue's newest id
        self.sent: dict[int, BookDelta] = {}
        self.replay_asked: ReplayDeltas | None = None

    def make(self, i: int, *, first: int | None = None, bids=None, asks=None) -> BookDelta:
        r = self.rng
        bids = [(90.0 + r.randint(0, 18) * 0.5, float(r.randint(0, 3)))] if bids is None else bids
        asks = [(101.0 + r.randint(0, 18) * 0.5, float(r.randint(0, 3)))] if asks is None else asks
        if not self.ids:
            return delta(None, None, bids, asks)
        return delta(i if first is None else first, i, bids, asks, prev=(i - 1) if self.pointer else None)

    def next_delta(self) -> BookDelta:
        self.last += 1
        d = self.make(self.last)
        self.sent[self.last] = d
        return d

    def snapshot(self, source: SnapshotSource, back: int = 0) -> BookSnapshot:
        seq = (self.last - back) if self.ids else None
        return snap(seq, source)

    def step(self) -> None:
        r, s = self.rng, self.s
        roll = r.random()
        acts: list[Action]
        if roll < 0.40:
            acts = s.on_delta(self.next_delta())
        elif roll < 0.45:
            self.next_delta()  # dropped on the way: a gap
            acts = []
        elif roll < 0.49 and self.sent:
            acts = s.on_delta(self.sent[r.choice(list(self.sent)[-6:])])  # a late copy
        elif roll < 0.51 and self.ids:
            acts = s.on_delta(self.make(10**12, first=self.last + 1))  # a corrupt id far ahead
            self.last += 1
        elif roll < 0.53:
            acts = s.on_delta(self.make(self.last + 1, bids=[(99.0, -1.0)]))  # invalid size
        elif roll < 0.55:
            acts = s.on_delta(self.make(self.last + 1, bids=[(150.0, 1.0)]))  # crosses the book
        elif roll < 0.61:
            acts = s.handle(CLOSED)
        elif roll < 0.68:
            acts = s.on_snapshot(self.snapshot(SnapshotSource.WS, back=r.choice([0, 0, 0, 1, 50])))
        elif roll < 0.78:
            epoch = s.awaited_epoch if r.random() < 0.8 else None
            if r.random() < 0.1:
                answer = snap(None, SnapshotSource.REST)  # no id: unbridgeable where ids matter
            elif r.random() < 0.1:
                answer = snap(self.last, SnapshotSource.REST, bids=[(102.0, 1.0)])  # crossed
            elif r.random() < 0.1:
                answer = snap(self.last, SnapshotSource.REST, bids=[(float("nan"), 1.0)])  # invalid
            else:
                answer = self.snapshot(SnapshotSource.REST, back=r.choice([0, 0, 1, 3]))
            acts = s.on_snapshot(answer, epoch=epoch)
        elif roll < 0.81 and s.awaited_epoch is not None:
            acts = s.on_snapshot_failed(s.awaited_epoch, "timeout")
        elif roll < 0.86 and self.replay_asked is not None:
            ask, self.replay_asked = self.replay_asked, None
            upto = ask.to_seq if ask.to_seq is not None else self.last
            served = [self.sent[i] for i in range(ask.from_seq, upto + 1) if i in self.sent]
            acts = s.on_replay(r.choice([served, served, served[:-1], None]))
        elif roll < 0.90:
            acts = s.on_stale("timer")
        elif roll < 0.92:
            acts = s.on_invalid_input("bad frame")
        elif roll < 0.93:
            acts = s.on_connection_gap("connection sequence skipped")
        elif roll < 0.95:
            acts = s.halt("breaker open")
        elif s.state is HA:
            acts = s.reset()
        else:
            acts = []
        for a in acts:
            if type(a) is ReplayDeltas:
                self.replay_asked = a
            elif type(a) is StateChanged:
                assert a.new in TRANSITIONS[a.old], a


CONFIGS = [(SPOT, False), (SPOT, True), (USDM, False), (USDM, True), (OKX, False), (OKX, True), (KRAKEN, False),
           (BYBIT, False), (KUCOIN, False), (COINBASE, False), (DERIBIT, True), (NO_PATH, False)]


def test_random_walks_reach_every_row_and_no_other():
    reached: set[tuple[tuple[SyncState, Phase], tuple[SyncState, Phase]]] = set()
    for seed in range(60):
        for caps, replay in CONFIGS:
            walk = Walk(seed, caps, replay)
            for step in range(300):
                try:
                    walk.step()
                except InvalidState as exc:  # pragma: no cover - the failure report
                    pytest.fail(f"seed={seed} venue={caps.venue} replay={replay} step={step}: {exc}")
                walk.s.book.check_integrity()
            reached |= walk.s.changes
    assert reached <= EDGES
    assert EDGES - reached == set(), "rows no input reached (drop them, or make the walk reach them)"
