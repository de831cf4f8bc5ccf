"""BookConnection: one connection's book logic, fed frames synchronously (no I/O, no mocks of
the core: real sessions, the real Binance decoder, or a scripted decoder for control frames)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from bookkeeper.adapters import get_adapter

from bookkeeper.actions import Alert, AlertKind, FetchSnapshot, SyncState
from bookkeeper.connection import BookConnection, BookUpdate, FaultKind, Output
from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookSnapshot,
    CloseReason,
    Heartbeat,
    NoticeKind,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
    Trade,
    VenueNotice,
)
from bookkeeper.session import BookSession

BN = get_adapter("binance")
BTC, ETH = "BTCUSDT", "ETHUSDT"


def delta(first: int, last: int, sym: str = BTC, bid: str = "10") -> bytes:
    return orjson.dumps({"e": "depthUpdate", "E": 1, "s": sym, "U": first, "u": last,
                         "b": [[bid, "1"]], "a": [["12", "1"]]})


def rest(seq: int, sym: str = BTC) -> BookSnapshot:
    return BookSnapshot(symbol=sym, bids=[(9.0, 1.0)], asks=[(11.0, 1.0)], seq=seq, source=SnapshotSource.REST)


def factory(sym: str) -> BookSession:
    return BookSession(sym, BN.capabilities)


def synced(conn: BookConnection, sym: str = BTC) -> BookSession:
    """``sym`` synced at id 6 through the normal path (first delta, REST snapshot at 5)."""
    out = conn.receive_frame(delta(5, 6, sym), 1)
    assert out is not None and next(type(a) for e in out.emitted for a in e.actions) is FetchSnapshot
    s = conn.sessions[sym]
    s.on_snapshot(rest(5, sym), epoch=s.epoch)
    assert s.is_synced and s.last_seq == 6
    return s


class _Script:
    """A decoder answering each frame from a table (or raising what the table holds)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[Any]:
        answer = self.table[frame if isinstance(frame, str) else frame.decode()]
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)


class _ScriptedVenue:
    """An adapter with the Binance capabilities and a scripted decoder (control frames)."""

    name = "scripted"
    capabilities = BN.capabilities

    def __init__(self, table: dict[str, Any], replies: dict[NoticeKind, str] | None = None) -> None:
        self.table = table
        self.replies = replies or {}
        self.decoders = 0

    def new_decoder(self) -> _Script:
        self.decoders += 1
        return _Script(self.table)

    def parse_rest_snapshot(self, body: Any, **kw: Any) -> BookSnapshot:
        raise NotImplementedError

    def reply_to(self, notice: VenueNotice) -> str | None:
        return self.replies.get(notice.kind)


# ---------------------------------------------------------------------------- demultiplexing
def test_factory_creates_sessions_on_first_sight_and_routes_each_symbol() -> None:
    conn = BookConnection(BN, factory=factory)
    out = conn.receive_frame(delta(5, 6, BTC), 1)
    assert out is not None and out.data and out.data_symbols == [BTC] and list(conn.sessions) == [BTC]
    conn.receive_frame(delta(50, 60, ETH), 2)
    assert list(conn.sessions) == [BTC, ETH]
    assert [e.symbol for e in out.emitted] == [BTC]
    assert conn.sessions[ETH].state is SyncState.AWAITING_SNAPSHOT


def test_without_factory_unknown_symbols_are_ignored() -> None:
    sessions = {BTC: factory(BTC)}
    conn = BookConnection(BN, sessions)
    out = conn.receive_frame(delta(5, 6, ETH), 1)
    assert out is not None and out.data and out.data_symbols == [ETH] and out.emitted == ()
    assert list(conn.sessions) == [BTC] and conn.sessions is not None and sessions[BTC].state is SyncState.UNSYNCED


# ---------------------------------------------------------------------------- fast path
@pytest.mark.skipif(BN.fused is None, reason="no C accelerator")  # type: ignore[attr-defined]
def test_fast_path_frame_returns_none_and_names_the_book() -> None:
    conn = BookConnection(BN, factory=factory)
    s = synced(conn)  # its first delta went the normal way: the fast path tries this book first
    assert conn.last_symbol == BTC and conn.last_session is s
    assert conn.receive_frame(delta(7, 7), 3) is None
    assert conn.receive_frame(delta(8, 8, bid="10.5"), 4) is None
    assert conn.receive_frame(delta(9, 9).decode(), 5) is None, "text frames take the fast path too"
    assert s.last_seq == 9 and s.book.best_bid() == (10.5, 1.0)
    out = conn.receive_frame(delta(12, 12), 6)  # a gap: the fast path declines, the normal path decides
    assert out is not None and s.state is SyncState.RECOVERING


def test_book_updates_only_when_tracked_and_only_for_synced_books() -> None:
    conn = BookConnection(BN, {BTC: BookSession(BTC, BN.capabilities)}, track_updates=True)
    out = conn.receive_frame(delta(5, 6), 1)
    assert out is not None and out.updates == (), "not synced: no update"
    s = conn.sessions[BTC]
    s.on_snapshot(rest(5), epoch=s.epoch)
    out = conn.receive_frame(b'{"e":"depthUpdate","E":2,"s":"ETHUSDT","U":1,"u":1,"b":[],"a":[]}', 2)
    assert out is not None and out.updates == (), "another book: not ours"
    conn.refuse(BTC, "test: take the normal path")  # the fast path returns no update object at all
    s.on_snapshot(rest(6), epoch=s.epoch)
    out = conn.receive_frame(delta(7, 7), 3)
    assert out is not None and out.updates == [BookUpdate(symbol=BTC, seq=7, ts_recv_ns=3, ts_exchange_ns=1_000_000)]
    untracked = BookConnection(BN, factory=factory)
    synced(untracked)
    untracked.refuse(BTC, "test: take the normal path")
    untracked.sessions[BTC].on_snapshot(rest(6), epoch=untracked.sessions[BTC].epoch)
    out = untracked.receive_frame(delta(7, 7), 3)
    assert out is not None and out.updates == () and untracked.sessions[BTC].last_seq == 7


# ---------------------------------------------------------------------------- bad input
def test_malformed_frame_for_a_known_book_is_invalid_input_for_it() -> None:
    bad = AdapterError("bad size", exchange="scripted", raw="{...}", symbol=BTC)
    venue = _ScriptedVenue({"bad": bad})
    s = factory(BTC)
    synced(BookConnection(BN, {BTC: s}))
    conn = BookConnection(venue, {BTC: s})  # type: ignore[arg-type]
    out = conn.receive_frame("bad", 2)
    assert out is not None and out.events is None and not out.data
    (rej,) = out.rejected
    assert (rej.kind, rej.symbol, rej.exc, rej.reason, rej.trusted) == (FaultKind.MALFORMED, BTC, bad, "bad size", True)
    assert [a.kind for a in rej.actions if type(a) is Alert] == [AlertKind.INVALID_INPUT]
    assert s.state is SyncState.RECOVERING and s.stats.invalid_inputs == 1


def test_malformed_frame_naming_no_book_changes_nothing() -> None:
    conn = BookConnection(BN, factory=factory)
    s = synced(conn)
    out = conn.receive_frame(b"{not json", 2)
    assert out is not None
    (rej,) = out.rejected
    assert (rej.kind, rej.symbol, rej.actions, rej.trusted) == (FaultKind.MALFORMED, None, [], True)
    assert s.is_synced


def test_decoder_bug_with_no_symbol_makes_the_connection_untrusted() -> None:
    venue = _ScriptedVenue({"boom": RecursionError("deep")})
    conn = BookConnection(venue, {BTC: factory(BTC)})  # type: ignore[arg-type]
    out = conn.receive_frame("boom", 1)
    assert out is not None
    (rej,) = out.rejected
    assert (rej.kind, rej.symbol, rej.trusted) == (FaultKind.FAULT, None, False)
    assert rej.reason == "RecursionError: deep"


class _Flaky(BookSession):
    """Raises from ``handle`` on the delta ending at ``bad``; optionally from recovery too."""

    __slots__ = ("bad", "fail_halt", "fail_recovery")

    def __init__(self, sym: str, bad: int, *, fail_recovery: bool = False, fail_halt: bool = False) -> None:
        super().__init__(sym, BN.capabilities)
        self.bad = bad
        self.fail_recovery = fail_recovery
        self.fail_halt = fail_halt

    def handle(self, event: object) -> list[Any]:
        if getattr(event, "last_seq", None) == self.bad:
            raise ZeroDivisionError("session bug")
        return super().handle(event)

    def apply_frame_fast(self, frame: bytes, fused: Any) -> bool:
        return False

    def on_invalid_input(self, reason: str) -> list[Any]:
        if self.fail_recovery:
            raise KeyError("recovery bug")
        return super().on_invalid_input(reason)

    def halt(self, reason: str) -> list[Any]:
        if self.fail_halt:
            raise ValueError("halt bug")
        return super().halt(reason)


@pytest.mark.parametrize(("fail_recovery", "fail_halt", "state", "errors", "trusted"), [
    (False, False, SyncState.RECOVERING, [], True),
    (True, False, SyncState.HALTED, [KeyError], True),
    (True, True, SyncState.SYNCED, [KeyError, ValueError], False),
], ids=["recovers", "halts", "untrusted"])
def test_session_raising_is_bad_input_for_its_book(fail_recovery: bool, fail_halt: bool, state: SyncState,
                                                  errors: list[type], trusted: bool) -> None:
    s = _Flaky(BTC, bad=7, fail_recovery=fail_recovery, fail_halt=fail_halt)
    other = factory(ETH)
    conn = BookConnection(BN, {BTC: s, ETH: other})
    synced(conn)
    out = conn.receive_frame(delta(7, 7), 2)
    assert out is not None and out.data
    (rej,) = out.rejected
    assert (rej.kind, rej.symbol, rej.reason, rej.trusted) == (FaultKind.FAULT, BTC, "ZeroDivisionError: session bug",
                                                               trusted)
    assert [type(e) for e in rej.errors] == errors
    assert s.state is state
    assert other.state is SyncState.UNSYNCED, "another book is never touched"


# ---------------------------------------------------------------------------- control frames
def test_heartbeats_and_pongs_are_not_data() -> None:
    okx = BookConnection(get_adapter("okx"), factory=lambda s: BookSession(s, get_adapter("okx").capabilities))
    out = okx.receive_frame("pong", 1)
    assert out is not None and not out.data and out.events == []
    venue = _ScriptedVenue({"hb": [Heartbeat()], "trade": [Trade(symbol=BTC, trade_id="1", price=1, qty=1)]})
    conn = BookConnection(venue, {BTC: factory(BTC)})  # type: ignore[arg-type]
    hb = conn.receive_frame("hb", 1)
    assert hb is not None and not hb.data and hb.data_symbols == []
    trade = conn.receive_frame("trade", 2)
    assert trade is not None and trade.data and trade.data_symbols == [BTC]


def test_connection_gap_notice_reaches_every_book_and_any_notice_gets_the_adapters_reply() -> None:
    gap = VenueNotice(kind=NoticeKind.CONNECTION_GAP, message="sequence_num 5 -> 9")
    ask = VenueNotice(kind=NoticeKind.TEST_REQUEST, message="answer")
    venue = _ScriptedVenue({"gap": [gap], "ask": [ask], "err": [VenueNotice(kind=NoticeKind.ERROR, message="x")]},
                           replies={NoticeKind.TEST_REQUEST: "pong!"})
    a, b = factory(BTC), factory(ETH)
    conn = BookConnection(venue, {BTC: a, ETH: b})  # type: ignore[arg-type]
    for s, sym in ((a, BTC), (b, ETH)):
        s.on_delta(BN.new_decoder().decode(delta(5, 6, sym))[0])  # type: ignore[arg-type]
        s.on_snapshot(rest(5, sym), epoch=s.epoch)
    out = conn.receive_frame("gap", 1)
    assert out is not None and out.connection_gaps == 1 and out.notices == [gap] and out.send == ()
    assert sorted(e.symbol for e in out.emitted) == [BTC, ETH]
    assert a.state is SyncState.RECOVERING and b.state is SyncState.RECOVERING
    out = conn.receive_frame("ask", 2)
    assert out is not None and out.send == ["pong!"] and out.connection_gaps == 0 and not out.data
    out = conn.receive_frame("err", 3)
    assert out is not None and out.send == () and out.notices[0].kind is NoticeKind.ERROR


def test_an_adapter_without_reply_to_answers_nothing() -> None:
    class NoReply(_ScriptedVenue):
        reply_to = None  # type: ignore[assignment]

    conn = BookConnection(NoReply({"ask": [VenueNotice(kind=NoticeKind.TEST_REQUEST, message="")]}))  # type: ignore[arg-type]
    out = conn.receive_frame("ask", 1)
    assert out is not None and out.send == ()


# ---------------------------------------------------------------------------- open / close
def test_open_starts_a_fresh_decoder_and_close_takes_every_book_out_of_synced() -> None:
    venue = _ScriptedVenue({})
    a, b = factory(BTC), factory(ETH)
    conn = BookConnection(venue, {BTC: a, ETH: b})  # type: ignore[arg-type]
    assert venue.decoders == 1
    out = conn.open(StreamOpened(ts_ns=1, attempt=1))
    assert venue.decoders == 2 and out == Output(emitted=[], rejected=[])
    synced_conn = BookConnection(BN, {BTC: a})
    synced(synced_conn)
    out = conn.close(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, ts_ns=2))
    assert [e.symbol for e in out.emitted] == [BTC], "only the synced book had something to do"
    assert a.state is SyncState.RECOVERING and conn.last_symbol is None


def test_close_fan_out_contains_a_session_that_raises() -> None:
    class Broken(BookSession):
        __slots__ = ()

        def handle(self, event: object) -> list[Any]:
            raise RuntimeError("close bug")

    good, bad = factory(ETH), Broken(BTC, BN.capabilities)
    conn = BookConnection(BN, {BTC: bad, ETH: good})
    out = conn.close(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE))
    (rej,) = out.rejected
    assert rej.symbol == BTC and rej.trusted and rej.reason == "RuntimeError: close bug"
    assert bad.stats.invalid_inputs == 1
