"""The chaos checker across a service restart (Bybit ``u = 1``): restarted ids are mapped back
to the engine seq by the dialect (``truth_seq``), so a book after the restart is compared with
the right truth and its falling ``u`` is no rewind; compared by ``u`` alone it would be both."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from websockets.asyncio.client import connect

from bookkeeper.actions import SyncState
from bookkeeper.apps.chaos import ConsistencyChecker
from bookkeeper.book import L2Book
from bookkeeper.io.stream import BookUpdate
from bookkeeper.sim import SimExchange
from bookkeeper.sim.venues.bybit import cross_seq


class _Feed:
    """A synced book and a session that shows a cross sequence (``None``: the venue has none)."""

    def __init__(self, book: L2Book) -> None:
        self._book = book
        self.driver = SimpleNamespace(sessions={})

    def set(self, symbol: str, cross: int | None) -> None:
        self.driver.sessions[symbol] = SimpleNamespace(last_cross_seq=cross)

    def state(self, symbol: str) -> SyncState:
        return SyncState.SYNCED

    def book(self, symbol: str) -> L2Book:
        return self._book


def _at(symbol: str, u: int, ts_ms: int = 0) -> BookUpdate:
    return BookUpdate(symbol=symbol, seq=u, ts_recv_ns=0, ts_exchange_ns=ts_ms * 1_000_000)


def _book_at(sim: SimExchange, symbol: str, seq: int) -> L2Book:
    book = L2Book()
    book.apply_snapshot(*sim.engine.book_at(symbol, seq))
    return book


async def test_bybit_restarted_u_is_mapped_by_exchange_time() -> None:
    async with SimExchange(venues=("bybit",), seed=4, paused=True) as sim, connect(sim.urls("bybit")["ws"]) as ws:
        server: Any = sim.servers["bybit"]
        sym = "BTCUSDT"
        await ws.send(json.dumps({"op": "subscribe", "args": [f"orderbook.50.{sym}"]}))
        await sim.wait_subscribed("bybit", sym)
        sim.push(updates=5)
        before = sim.engine.seq(sym)
        await sim.inject("service_restart", "bybit")
        sim.push(updates=1, symbols=[sym])  # the restart snapshot (u = 1) goes to the subscriber
        assert sim.faults_injected["service_restart"] == 1
        sim.push(updates=4, symbols=[sym])
        now = sim.engine.seq(sym)
        (restart_ms, base), = server._restarts[sym]
        u = server.wire_u(sym, now)
        assert u == now - base < before  # the id went down
        checker = ConsistencyChecker(sim, min_interval_s=0.0)
        old, new = _Feed(_book_at(sim, sym, before)), _Feed(_book_at(sim, sym, now))
        old.set(sym, None)
        new.set(sym, None)
        # before the restart, stamped before it; after it, stamped at or after it
        assert checker.check(old, "bybit", _at(sym, before, restart_ms - 50)) is True  # type: ignore[arg-type]
        assert checker.check(new, "bybit", _at(sym, u, restart_ms)) is True  # type: ignore[arg-type]
        assert (checker.checks, checker.mismatches, checker.seq_rewinds) == (2, 0, 0)
        # the same book read by its u alone: the truth at engine seq u (outside the history)
        # or, stamped before the restart, a rewind
        assert checker.stream_seq(new, "bybit", sym, u, (restart_ms - 1) * 1_000_000) == u  # type: ignore[arg-type]
        assert checker.check_seq("bybit", sym, u) is False and checker.seq_rewinds == 1


async def test_bybit_spot_book_is_placed_by_its_cross_sequence() -> None:
    async with SimExchange(venues=("bybit_spot",), seed=5, paused=True) as sim:
        sym = "MNTUSDT"
        sim.push(updates=3)
        before = sim.engine.seq(sym)
        await sim.inject("service_restart", "bybit_spot")
        sim.push(updates=2, symbols=[sym])
        now = sim.engine.seq(sym)
        checker = ConsistencyChecker(sim, min_interval_s=0.0)
        old, new = _Feed(_book_at(sim, sym, before)), _Feed(_book_at(sim, sym, now))
        old.set(sym, cross_seq(before))
        new.set(sym, cross_seq(now))
        assert checker.check(old, "bybit_spot", _at(sym, 278_123)) is True  # type: ignore[arg-type]
        assert checker.check(new, "bybit_spot", _at(sym, 1)) is True  # type: ignore[arg-type]
        # a book that claims the newer cross sequence but holds the older levels is caught
        stale = _Feed(_book_at(sim, sym, before))
        stale.set(sym, cross_seq(now))
        assert checker.check(stale, "bybit_spot", _at(sym, 1)) is False  # type: ignore[arg-type]
        assert (checker.checks, checker.mismatches, checker.seq_rewinds) == (3, 1, 0)
        # without a cross sequence the u of the spot stream names no engine seq: not compared
        blind = _Feed(_book_at(sim, sym, now))
        blind.set(sym, None)
        assert checker.check(blind, "bybit_spot", _at(sym, 1)) is None  # type: ignore[arg-type]
        assert checker.skipped == 1
