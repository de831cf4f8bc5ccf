"""Shared helpers for the recorded-capture adapter tests (not a test module).

``drive`` runs records through the same :class:`~bookkeeper.connection.BookConnection` as
:func:`bookkeeper.io.replay.replay` (same decoder, same ``BookSession`` per symbol, REST
records fed where received) but keeps the sessions and remembers which record applied which
delta, so fault-injection tests can drop, duplicate or
reorder exact frames and compare books. ``replay_records`` writes a (modified) record list as a
bookkeeper recording and runs the real replay engine on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookkeeper.adapters import get_adapter

from bookkeeper.actions import Alert
from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.connection import BookConnection, FaultKind, Output
from bookkeeper.events import BookDelta, CloseReason, StreamClosed, StreamOpened
from bookkeeper.io.recording import Record, RecordingWriter, RecordKind, read_records
from bookkeeper.io.replay import ReplayReport, replay
from bookkeeper.session import BookSession

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"
_CACHE: dict[tuple[str, ...], list[Record]] = {}


def records(*names: str) -> list[Record]:
    """The merged records of capture files under ``fixtures/real`` (cached, read-only)."""
    key = tuple(names)
    if key not in _CACHE:
        _CACHE[key] = list(read_records([REAL / n for n in names]))
    return _CACHE[key]


@dataclass
class Run:
    sessions: dict[str, BookSession] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    parse_errors: int = 0
    #: (record index, delta) for every delta applied on arrival (not from the splice buffer)
    applied: list[tuple[int, BookDelta]] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(getattr(s.stats, key) for s in self.sessions.values())

    def book(self, symbol: str) -> tuple[list[Any], list[Any]]:
        b = self.sessions[symbol].book
        return b.bids(), b.asks()

    def gap_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if a.kind == "gap"]


class _Tracked(BookSession):
    """A session that remembers which record applied which delta on arrival (the fused fast
    path is refused so every delta goes through ``handle`` and is seen)."""

    __slots__ = ("index", "run")

    def __init__(self, symbol: str, caps: ExchangeCapabilities, run: Run) -> None:
        super().__init__(symbol, caps)
        self.run = run
        self.index = -1

    def handle(self, event: object) -> list[Any]:
        before = self.stats.deltas_applied
        actions = super().handle(event)
        if type(event) is BookDelta and self.stats.deltas_applied == before + 1:
            self.run.applied.append((self.index, event))
        return actions

    def apply_frame_fast(self, frame: bytes, fused: Callable[..., object]) -> bool:
        return False


def drive(venue: str, recs: list[Record], *, stop: int | None = None) -> Run:
    """Feed ``recs[:stop]`` through a :class:`BookConnection` (the venue's decoder, one
    BookSession per symbol, created on first sight), as the replay does; a session or decoder
    that raises anything but ``AdapterError`` fails the test."""
    adapter = get_adapter(venue)
    caps = adapter.capabilities
    run = Run()
    tracked: dict[str, _Tracked] = {}

    def factory(symbol: str) -> BookSession:
        s = tracked[symbol] = _Tracked(symbol, caps, run)
        return s

    conn = BookConnection(adapter, run.sessions, factory=factory)
    opened = 0

    def settle(out: Output) -> None:
        for e in out.emitted:
            run.alerts += [a for a in e.actions if type(a) is Alert]
        for rej in out.rejected:
            if rej.kind is not FaultKind.MALFORMED:
                raise rej.exc
            run.parse_errors += 1
            run.alerts += [a for a in rej.actions if type(a) is Alert]

    for i, rec in enumerate(recs[:stop]):
        for s in tracked.values():
            s.index = i
        if rec.kind is RecordKind.RECV:
            out = conn.receive_frame(rec.data, rec.ts_recv_ns)
            assert out is not None, "the fast path is refused"
            settle(out)
        elif rec.kind is RecordKind.REST:
            snap = adapter.parse_rest_snapshot(rec.data, url=rec.url, ts_recv_ns=rec.ts_recv_ns)
            s = conn.session(snap.symbol or next(iter(run.sessions)))
            assert s is not None
            run.alerts += [a for a in s.on_snapshot(snap) if type(a) is Alert]
        elif rec.kind is RecordKind.OPEN:
            opened += 1
            if opened > 1:  # a reconnect inside the recording, as the replay treats it
                settle(conn.close(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, ts_ns=rec.ts_recv_ns)))
                settle(conn.open(StreamOpened(ts_ns=rec.ts_recv_ns, attempt=opened - 1)))
    return run


def droppable(run: Run) -> list[tuple[int, BookDelta, BookDelta]]:
    """(record index, delta, next delta of the same symbol) for every delta applied on
    arrival that has a later applied delta of its symbol: dropping it must be a gap."""
    out = []
    last_by_sym: dict[str, tuple[int, BookDelta]] = {}
    for i, d in run.applied:
        prev = last_by_sym.get(d.symbol)
        if prev is not None:
            out.append((prev[0], prev[1], d))
        last_by_sym[d.symbol] = (i, d)
    return out


def without(recs: list[Record], *indices: int) -> list[Record]:
    drop = set(indices)
    return [r for i, r in enumerate(recs) if i not in drop]


def inserted(recs: list[Record], at: int, rec: Record) -> list[Record]:
    """``rec`` placed before ``recs[at]`` (with that record's receive time)."""
    moved = Record(recs[at].ts_recv_ns, rec.kind, rec.data, rec.url, rec.source)
    return recs[:at] + [moved] + recs[at:]


def retimed(recs: list[Record]) -> list[Record]:
    """Make receive times strictly increasing in list order (so a file round-trip keeps it)."""
    out = []
    last = -1
    for r in recs:
        ts = max(r.ts_recv_ns, last + 1)
        out.append(Record(ts, r.kind, r.data, r.url, 0))
        last = ts
    return out


def write_recording(path: Path, venue: str, recs: list[Record]) -> Path:
    w = RecordingWriter(path, venue=venue)
    for r in retimed(recs):
        w.write(r.kind, r.ts_recv_ns, r.data, r.url)
    w.close()
    return path


def replay_records(tmp_path: Path, venue: str, recs: list[Record], name: str = "case") -> ReplayReport:
    """Run the real replay engine on ``recs`` written as a bookkeeper recording."""
    return replay(get_adapter(venue), [write_recording(tmp_path / f"{name}.bkrec.jsonl", venue, recs)])


def rest_with_seq(rec: Record, field_name: str, new_seq: int, *, quoted: bool = False) -> Record:
    """A REST record whose sequence field (``"lastUpdateId"``, ``"id"``, ``"sequence"``) is
    replaced by ``new_seq`` (textually, so nothing else of the body changes)."""
    value = f'"{new_seq}"' if quoted else str(new_seq)
    pattern = rb'"' + field_name.encode() + rb'":\s*("?\d+"?)'
    data, n = re.subn(pattern, b'"' + field_name.encode() + b'":' + value.encode(), rec.data, count=1)
    assert n == 1, f"no {field_name} in REST body"
    return Record(rec.ts_recv_ns, rec.kind, data, rec.url, rec.source)


def first_rest_index(recs: list[Record], symbol_hint: str = "") -> int:
    for i, r in enumerate(recs):
        if r.kind is RecordKind.REST and symbol_hint in (r.url or ""):
            return i
    raise AssertionError(f"no REST record for {symbol_hint!r}")


# ---------------------------------------------------------------- shared fault checks
def check_drop_is_gap(venue: str, recs: list[Record], clean: Run, j: int, dropped: BookDelta, nxt: BookDelta,
                      note: str = "") -> Run:
    """Dropping record ``j`` (delta ``dropped``) yields exactly one gap, raised by ``nxt``;
    the symbol's book stays what it was just before the dropped delta; other symbols and the
    stream before the fault are unaffected."""
    sym = dropped.symbol
    before = drive(venue, recs, stop=j)
    run = drive(venue, without(recs, j))
    gaps = run.gap_alerts()
    assert run.total("gaps") == 1 and len(gaps) == 1, f"{note}: expected one gap, got {gaps}"
    alert = gaps[0]
    local = before.sessions[sym].last_seq
    assert alert.symbol == sym, note
    assert alert.seq == nxt.last_seq, f"{note}: gap reported at {alert.seq}, expected {nxt.last_seq}"
    if nxt.first_seq is not None and nxt.prev_seq is None:
        assert alert.missed == nxt.first_seq - local - 1 >= 1, note
    assert run.sessions[sym].last_seq == local, note
    assert run.book(sym) == before.book(sym), f"{note}: book changed after the gap"
    assert not run.sessions[sym].is_synced, note
    for other, s in run.sessions.items():
        if other != sym:
            assert s.stats.as_dict() == clean.sessions[other].stats.as_dict(), f"{note}: {other} disturbed"
            assert run.book(other) == clean.book(other), f"{note}: {other} book disturbed"
    lost = sum(1 for i, d in clean.applied if d.symbol == sym and i >= j)
    assert run.total("deltas_applied") == clean.total("deltas_applied") - lost, note
    return run


def check_duplicate_is_ignored(venue: str, recs: list[Record], clean: Run, j: int, delta: BookDelta) -> None:
    """The same frame delivered twice in a row is a duplicate: counted, never applied twice."""
    run = drive(venue, inserted(recs, j + 1, recs[j]))
    assert run.total("duplicates") == 1
    assert run.total("gaps") == 0 and not run.gap_alerts()
    assert run.total("deltas_applied") == clean.total("deltas_applied")
    for sym in clean.sessions:
        assert run.book(sym) == clean.book(sym), sym
        assert run.sessions[sym].last_seq == clean.sessions[sym].last_seq


def check_late_copy_is_stale(venue: str, recs: list[Record], clean: Run, j: int, later: int) -> None:
    """An old frame re-delivered after newer ones is stale: counted, never applied."""
    run = drive(venue, inserted(recs, later, recs[j]))
    assert run.total("stale_dropped") == clean.total("stale_dropped") + 1
    assert run.total("gaps") == 0
    assert run.total("deltas_applied") == clean.total("deltas_applied")
    for sym in clean.sessions:
        assert run.book(sym) == clean.book(sym), sym


def check_swap_is_gap(venue: str, recs: list[Record], clean: Run, j: int, k: int) -> None:
    """Two same-symbol deltas swapped (records ``j`` < ``k``): the later one arrives first and
    is a gap; the earlier one then waits in the recovery buffer: nothing is applied twice."""
    swapped = list(recs)
    swapped[j], swapped[k] = recs[k], recs[j]
    before = drive(venue, recs, stop=j)
    run = drive(venue, swapped)
    sym = clean.applied[[i for i, _ in clean.applied].index(j)][1].symbol
    assert run.total("gaps") == 1
    assert run.book(sym) == before.book(sym)
    assert run.total("deltas_applied") < clean.total("deltas_applied")
    assert run.total("duplicates") == 0
