"""Feed end to end against the simulator: real sockets, real ccxt (URL override), fake time."""

from __future__ import annotations

from typing import Any

import pytest

from bookkeeper.actions import SyncState
from bookkeeper.errors import InvalidState, UsageError
from bookkeeper.io.feed import Feed
from bookkeeper.io.records import RecordWriter
from bookkeeper.io.rest import CcxtRestClient
from bookkeeper.io.ws import Frame, WebsocketsTransport
from bookkeeper.testing.clock import FakeClock
from bookkeeper.sim import SimExchange

from io_support import AutoSleep, NotifyingList, Probe
from test_driver import config

pytestmark = pytest.mark.realtime

CASES = [("binance", "BTCUSDT", "ETHUSDT"), ("okx", "BTC-USDT", "ETH-USDT"), ("kraken", "BTC/USD", "ETH/USD")]
# What recovery must cost after a 1006 when nothing was missed (architecture.md §2):
# sequenced venues resume (OKX proves it with its WS snapshot at the same id); Kraken has no ids
# and must rebuild from the WS snapshot its resubscribe brings.
PLAN_AFTER_ABORT = {"binance": ["resume"], "okx": ["resume"], "kraken": ["ws_snapshot"]}


class _NotifyingTransport(WebsocketsTransport):
    """Wakes the probe on every received frame (subscription acks included), so tests can
    await server-side conditions such as "subscribed" without polling."""

    def __init__(self, probe: Probe, **kw: Any) -> None:
        super().__init__(**kw)
        self._probe = probe

    async def recv(self) -> Frame:
        try:
            return await super().recv()
        finally:
            self._probe.notify()


def _book_matches(feed: Feed, sim: SimExchange, sym: str) -> bool:
    if feed.state(sym) is not SyncState.SYNCED:
        return False
    book = feed.book(sym)
    bids, asks = sim.engine.book(sym)
    depth = feed.driver.sessions[sym].capabilities.truncate_to_depth
    if depth:
        n = max(book.bid_count, book.ask_count)
        bids, asks = bids[:n], asks[:n]
    return book.equals(bids, asks)


@pytest.mark.parametrize(("venue", "a", "b"), CASES, ids=[c[0] for c in CASES])
async def test_feed_syncs_survives_1006_and_matches_truth(venue: str, a: str, b: str) -> None:
    probe = Probe()
    clock = FakeClock()
    records: list[dict[str, Any]] = NotifyingList(probe)
    async with SimExchange(venues=(venue,), seed=11, paused=True) as sim:
        feed = Feed(venue, [a, b], ws_url=sim.urls(venue)["ws_root"], rest_config=sim.ccxt_config(venue),
                    config=config(), records=RecordWriter(sink=records), clock=clock, sleep=AutoSleep(clock),
                    seed=1, on_state=probe.on_state, on_update=probe.on_update,
                    transport_factory=lambda: _NotifyingTransport(probe, clock=clock))
        server = sim.servers[venue]

        def subscribed(n: int = 1) -> bool:
            return all(len(server.subscribers(s)) >= n for s in (a, b))

        with pytest.raises(UsageError):
            feed.state("NOPE")
        async with feed:
            await probe.until(subscribed, "subscribed")
            sim.push(updates=3)
            for sym in (a, b):
                await feed.wait_synced(sym, timeout=10)
            sim.push(updates=5)
            await probe.until(lambda: all(_book_matches(feed, sim, s) for s in (a, b)), "books equal truth")
            rest_calls = feed._rest.calls if isinstance(feed._rest, CcxtRestClient) else 0  # noqa: SLF001

            await sim.inject("abort", venue)  # 1006 on every connection
            await probe.until(lambda: feed.state(a) is not SyncState.SYNCED, "saw the disconnect")
            with pytest.raises(InvalidState):
                feed.book(a)
            await probe.until(lambda: feed.driver.connections == 2 and subscribed(), "resubscribed")
            sim.push(updates=2)
            await probe.until(lambda: all(_book_matches(feed, sim, s) for s in (a, b)) and len(records) == 1,
                              "recovered")
            assert records[0]["close_cause"] == "abnormal_closure"
            assert records[0]["close_code"] == 1006
            assert records[0]["reconnect_success"] is True
            assert records[0]["plan"] == PLAN_AFTER_ABORT[venue], records[0]
            assert records[0]["missed_messages_count"] == 0
            if venue == "binance":
                assert feed._rest.calls == rest_calls == 2, "a resume takes no snapshot"  # noqa: SLF001
