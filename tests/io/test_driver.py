"""StreamDriver / Feed against a local Binance-format WebSocket server (real sockets on
127.0.0.1), a fake REST client and fake time. Nothing sleeps to synchronise: tests await
conditions (Probe.until) and advance the fake clock."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from bookkeeper.adapters import get_adapter
from io_support import (
    AutoSleep,
    FakeBinance,
    FakeRest,
    ManualSleep,
    NotifyingList,
    Probe,
    ScriptedLink,
    okx_books,
    rate_limited,
)

from bookkeeper.actions import SyncState
from bookkeeper.errors import InvalidState
from bookkeeper.events import CloseReason, NoticeKind, VenueNotice
from bookkeeper.io.feed import Feed
from bookkeeper.io.records import RECORD_KEYS, RecordWriter
from bookkeeper.io.stream import DriverConfig, StreamDriver
from bookkeeper.policy import (
    BackoffPolicy,
    BreakerPolicy,
    BreakerState,
    KeepalivePolicy,
)
from bookkeeper.testing.clock import FakeClock

BTC, ETH = "BTCUSDT", "ETHUSDT"
NO_KEEPALIVE = KeepalivePolicy(ping_interval_s=None, pong_timeout_s=None, idle_timeout_s=None)
TS0 = "2026-01-01T00:00:00.000Z"  # FakeClock's wall origin


def config(**kw: Any) -> DriverConfig:
    base: dict[str, Any] = dict(
        backoff=BackoffPolicy(base_s=1.0, cap_s=30.0, jitter=0.0, max_attempts=3, first_delay_s=0.0),
        breaker=BreakerPolicy(max_failures=10, window_s=300.0, cooldown_s=30.0),
        keepalive=NO_KEEPALIVE,
        snapshot_backoff=BackoffPolicy(base_s=0.5, cap_s=5.0, jitter=0.0, max_attempts=3, first_delay_s=0.0),
        startup_jitter_s=0.0,
        resync_timeout_s=None,  # per-symbol timers are tested on their own (fake time races ahead)
        bot_instance_id="bot-test",
    )
    base.update(kw)
    return DriverConfig(**base)


class Rig:
    """One server + one feed wired to a probe, fake clock, fake sleep and in-memory records."""

    def __init__(self, server: FakeBinance, probe: Probe, symbols: tuple[str, ...] = (BTC,), *,
                 manual: bool = False, cfg: DriverConfig | None = None) -> None:
        self.server = server
        self.probe = probe
        self.clock = FakeClock()
        self.sleep: Any = ManualSleep(self.clock, probe) if manual else AutoSleep(self.clock)
        self.records: list[dict[str, Any]] = NotifyingList(probe)
        self.rest = FakeRest(server, probe)
        self.feed = Feed("binance", list(symbols), ws_url=server.url, rest=self.rest, config=cfg or config(),
                         records=RecordWriter(sink=self.records), clock=self.clock, sleep=self.sleep, seed=7,
                         on_state=probe.on_state, on_update=probe.on_update)

    async def sync(self, *symbols: str) -> None:
        """First connection, subscribed, each symbol synced from one delta + REST snapshot."""
        await self.feed.start()
        await self.probe.until(lambda: len(self.server.received) >= 1, "subscribed")
        for sym in symbols:
            await self.server.push(sym)
        for sym in symbols:
            await self.probe.until(lambda s=sym: self.feed.state(s) is SyncState.SYNCED, f"{sym} synced")

    async def caught_up(self, sym: str = BTC) -> None:
        await self.probe.until(lambda: self.feed.state(sym) is SyncState.SYNCED
                               and self.feed.last_seq(sym) == self.server.seq[sym], f"{sym} caught up")

    async def reconnected(self, n_conns: int) -> None:
        await self.probe.until(lambda: len(self.server.conns) == n_conns and self.server.open_connections() == 1
                               and len(self.server.received) >= n_conns, f"connection {n_conns} subscribed")

    def assert_book_is_truth(self, sym: str = BTC) -> None:
        book = self.feed.book(sym)
        assert book.equals(self.server.bids[sym].items(), self.server.asks[sym].items()), (book, sym)


def record(**kw: Any) -> dict[str, Any]:
    base = dict(ts=TS0, bot_instance_id="bot-test", exchange="binance", channel="public", close_code=1006,
                close_cause="abnormal_closure", last_message_ago_ms=0, uptime_seconds=0.0, reconnect_attempt=1,
                reconnect_success=True, reconnect_latency_ms=0, missed_messages_count=0, plan=["resume"])
    base.update(kw)
    assert tuple(base) == RECORD_KEYS
    return base


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def test_initial_sync_via_rest_snapshot_then_deltas(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        with pytest.raises(InvalidState):
            rig.feed.book(BTC)  # never presented as valid before it is synced
        await rig.sync(BTC)
        await server.push(BTC, n=4)
        await rig.caught_up()
        rig.assert_book_is_truth()
        assert rig.rest.calls == [BTC]
        assert rig.feed.last_seq(BTC) == 105
        assert [u.seq for u in probe.updates][-4:] == [102, 103, 104, 105]
        await rig.feed.close()
    assert rig.records == [record(close_code=1000, close_cause="local_shutdown", reconnect_attempt=0,
                                  reconnect_success=False, reconnect_latency_ms=None, plan=[])]


async def test_abort_gives_1006_record_and_resumes_without_snapshot(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        await rig.sync(BTC)
        server.abort()  # TCP dies without a close frame
        await rig.reconnected(2)
        await server.push(BTC, n=2)  # still chains to the last applied id: nothing was missed
        await rig.caught_up()
        await probe.until(lambda: len(rig.records) == 1, "record written")
        assert rig.records[0] == record()
        assert rig.rest.calls == [BTC], "resume must not take a REST snapshot"
        rig.assert_book_is_truth()
        m = rig.feed.metrics
        assert m.value("bookkeeper_snapshots_avoided_total", exchange="binance", kind="resume") == 1.0
        assert m.value("bookkeeper_disconnects_total", exchange="binance", cause="abnormal_closure") == 1.0
        assert m.value("bookkeeper_reconnect_successes_total", exchange="binance") == 1.0
        assert m.value("bookkeeper_book_state", exchange="binance", symbol=BTC) == 2.0
        await rig.feed.close()


async def test_gap_after_reconnect_takes_one_rest_snapshot(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        await rig.sync(BTC)
        server.abort()
        await rig.reconnected(2)
        await server.push(BTC, n=3, skip=5)  # ids 102..106 never reached us
        await rig.caught_up()
        await probe.until(lambda: len(rig.records) == 1, "record written")
        assert rig.records[0] == record(missed_messages_count=5, plan=["rest_snapshot"])
        assert rig.rest.calls == [BTC, BTC]
        rig.assert_book_is_truth()
        assert rig.feed.metrics.value("bookkeeper_message_gaps_total", exchange="binance", symbol=BTC) == 1.0
        await rig.feed.close()


async def test_server_close_1001_is_server_close(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        await rig.sync(BTC)
        await server.current.close(1001, "going away")
        await rig.reconnected(2)
        await server.push(BTC)
        await probe.until(lambda: len(rig.records) == 1, "record written")
        assert rig.records[0] == record(close_code=1001, close_cause="server_close")
        await rig.feed.close()


async def test_429_on_upgrade_is_rate_limited_and_next_delay_honours_retry_after(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        await rig.sync(BTC)
        server.reject.append((429, {"Retry-After": "7"}))
        server.abort()
        await rig.reconnected(2)
        await server.push(BTC)
        await probe.until(lambda: len(rig.records) == 2, "records written")
        # base 1 s, no jitter: without Retry-After the delay would be 1.0
        assert rig.sleep.delays == [7.0]
        assert rig.records[0] == record(close_code=429, close_cause="rate_limited", reconnect_attempt=1,
                                        reconnect_success=False, reconnect_latency_ms=None, plan=[])
        assert rig.records[1] == record(reconnect_attempt=2, reconnect_latency_ms=7000)
        assert server.handshakes == 3
        await rig.feed.close()


async def test_rest_snapshot_retry_honours_retry_after(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        rig.rest.fail.append(rate_limited(3.0))
        await rig.sync(BTC)
        assert rig.rest.calls == [BTC, BTC]
        assert rig.sleep.delays == [3.0]  # snapshot backoff is 0.5 s; Retry-After is the floor
        rig.assert_book_is_truth()
        await rig.feed.close()


async def test_concurrent_reconnect_triggers_collapse_into_one_attempt(probe: Probe) -> None:
    import asyncio

    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        await rig.sync(BTC)
        driver = rig.feed.driver
        results = await asyncio.gather(driver.reconnect(CloseReason.IDLE_TIMEOUT),
                                       driver.reconnect(CloseReason.PING_TIMEOUT))
        assert results == [True, True]
        assert server.handshakes == 2 and len(server.conns) == 2
        assert driver.attempts == 2 and driver.connections == 2
        await rig.reconnected(2)
        await server.push(BTC)
        await probe.until(lambda: len(rig.records) == 1, "record written")
        # the first trigger's reason is the one recorded
        assert rig.records[0] == record(close_cause="idle_timeout")
        await rig.feed.close()


async def test_one_symbols_gap_never_resets_another(probe: Probe) -> None:
    async with FakeBinance(probe, symbols=(BTC, ETH)) as server:
        rig = Rig(server, probe, (BTC, ETH))
        await rig.sync(BTC, ETH)
        btc_changes = [c for c in probe.states if c.symbol == BTC]
        await server.push(ETH, n=2, skip=3)
        await server.push(BTC, n=2)
        await rig.caught_up(ETH)
        await rig.caught_up(BTC)
        assert [c for c in probe.states if c.symbol == BTC] == btc_changes, "BTC must not change state"
        assert sorted(rig.rest.calls) == [BTC, ETH, ETH]
        rig.assert_book_is_truth(BTC)
        rig.assert_book_is_truth(ETH)
        await rig.feed.close()


async def test_exhausted_attempts_open_breaker_halt_books_then_probe_recovers(probe: Probe) -> None:
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe, manual=True)
        sleep: ManualSleep = rig.sleep
        await rig.sync(BTC)
        server.reject_all = (503, {})
        server.abort()
        for expected in (1.0, 2.0):  # backoff between attempts, never a tight loop
            await probe.until(lambda: sleep.sleeping == 1, "backing off")
            assert sleep.delays[-1] == expected
            sleep.advance(expected)
        await probe.until(lambda: sleep.sleeping == 1 and len(sleep.delays) == 3, "breaker cool-down")
        assert sleep.delays == [1.0, 2.0, 30.0]
        assert rig.feed.breaker_state is BreakerState.OPEN
        assert rig.feed.state(BTC) is SyncState.HALTED
        with pytest.raises(InvalidState):
            rig.feed.book(BTC)
        assert rig.feed.metrics.value("bookkeeper_breaker_open", exchange="binance") == 1.0
        failed = [record(ts=ts, close_code=503, close_cause="tcp_error", last_message_ago_ms=ago,
                         reconnect_attempt=n, reconnect_success=False, reconnect_latency_ms=None, plan=[])
                  for n, ts, ago in ((1, TS0, 0), (2, "2026-01-01T00:00:01.000Z", 1000),
                                     (3, "2026-01-01T00:00:03.000Z", 3000))]
        assert rig.records == [*failed, record(reconnect_attempt=3, reconnect_success=False,
                                               reconnect_latency_ms=None, plan=["halt"])]
        server.reject_all = None
        sleep.advance(30.0)
        await rig.reconnected(2)
        assert rig.feed.breaker_state is BreakerState.HALF_OPEN
        await server.push(BTC)  # the probe delivers data: breaker closes, the book resyncs
        await rig.caught_up()
        assert rig.feed.breaker_state is BreakerState.CLOSED
        assert rig.rest.calls == [BTC, BTC]
        rig.assert_book_is_truth()
        await rig.feed.close()


async def test_breaker_opens_after_n_disconnects_within_window(probe: Probe) -> None:
    cfg = config(breaker=BreakerPolicy(max_failures=2, window_s=60.0, cooldown_s=20.0))
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe, manual=True, cfg=cfg)
        sleep: ManualSleep = rig.sleep
        await rig.sync(BTC)
        server.abort()
        await rig.reconnected(2)
        server.abort()  # second disconnect within the window
        await probe.until(lambda: sleep.sleeping == 1, "cool-down")
        assert sleep.delays == [20.0]
        assert rig.feed.state(BTC) is SyncState.HALTED
        assert rig.feed.breaker_state is BreakerState.OPEN
        await rig.feed.close()


class _TextPingBinance:
    """Binance wire format, but with an OKX-style app-level text ping (to test pong timeouts:
    the local server never answers it)."""

    def __init__(self) -> None:
        self._inner = get_adapter("binance")
        self.name = self._inner.name
        self.capabilities = self._inner.capabilities

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)

    def new_decoder(self) -> Any:
        return self._inner.new_decoder()

    def parse_rest_snapshot(self, body: Any, **kw: Any) -> Any:
        return self._inner.parse_rest_snapshot(body, **kw)

    def ws_url(self, base: str, symbols: Any) -> str:
        return self._inner.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Any, depth: int | None = None) -> list[str]:
        return self._inner.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Any) -> list[str]:
        return self._inner.unsubscribe_messages(symbols)

    def ping_message(self) -> str:
        return "ping"


async def _driver_rig(server: FakeBinance, probe: Probe, keepalive: KeepalivePolicy, adapter: Any) -> tuple[
        StreamDriver, ManualSleep, list[dict[str, Any]]]:
    import asyncio

    clock = FakeClock()
    sleep = ManualSleep(clock, probe)
    records: list[dict[str, Any]] = NotifyingList(probe)
    driver = StreamDriver(adapter, [BTC], ws_base=server.url, rest=FakeRest(server, probe), clock=clock,
                          sleep=sleep, seed=3, config=config(keepalive=keepalive),
                          records=RecordWriter(sink=records), on_state=probe.on_state)
    asyncio.get_running_loop().create_task(driver.run())
    await probe.until(lambda: len(server.received) >= 1, "subscribed")
    await server.push(BTC)
    await probe.until(lambda: driver.sessions[BTC].is_synced, "synced")
    return driver, sleep, records


async def test_missing_pong_is_ping_timeout(probe: Probe) -> None:
    ka = KeepalivePolicy(ping_interval_s=10.0, pong_timeout_s=5.0, idle_timeout_s=None)
    async with FakeBinance(probe) as server:
        driver, sleep, records = await _driver_rig(server, probe, ka, _TextPingBinance())
        await probe.until(lambda: sleep.sleeping == 1, "watchdog waiting")
        assert sleep.delays == [10.0]
        sleep.advance(10.0)
        await probe.until(lambda: "ping" in server.received and sleep.sleeping == 1, "ping sent")
        assert sleep.delays == [10.0, 5.0]
        sleep.advance(5.0)  # the server never answers: the peer is presumed dead
        await probe.until(lambda: len(server.conns) == 2 and len(server.received) >= 3, "reconnected")
        await server.push(BTC)
        await probe.until(lambda: len(records) == 1, "record written")
        assert records[0] == record(ts="2026-01-01T00:00:15.000Z", close_cause="ping_timeout", close_code=1006, last_message_ago_ms=15000,
                                    uptime_seconds=15.0)
        await driver.close()


async def test_no_data_is_idle_timeout_even_when_pings_would_be_answered(probe: Probe) -> None:
    ka = KeepalivePolicy(ping_interval_s=None, pong_timeout_s=None, idle_timeout_s=12.0)
    async with FakeBinance(probe) as server:
        driver, sleep, records = await _driver_rig(server, probe, ka, get_adapter("binance"))
        await probe.until(lambda: sleep.sleeping == 1, "watchdog waiting")
        assert sleep.delays == [12.0]
        sleep.advance(12.0)
        await probe.until(lambda: len(server.conns) == 2 and len(server.received) >= 2, "reconnected")
        await server.push(BTC)
        await probe.until(lambda: len(records) == 1, "record written")
        assert records[0] == record(ts="2026-01-01T00:00:12.000Z", close_cause="idle_timeout", close_code=1006, last_message_ago_ms=12000,
                                    uptime_seconds=12.0)
        await driver.close()


async def test_updates_iterator_yields_synced_changes_and_ends_on_close(probe: Probe) -> None:
    import asyncio

    async with FakeBinance(probe) as server:
        rig = Rig(server, probe)
        seen: list[int | None] = []

        async def consume() -> None:
            async for update in rig.feed.updates():
                assert rig.feed.state(update.symbol) is SyncState.SYNCED
                seen.append(update.seq)
                probe.notify()

        task = asyncio.get_running_loop().create_task(consume())
        await rig.sync(BTC)
        await server.push(BTC, n=2)
        await probe.until(lambda: seen[-1:] == [103], "consumer saw 103")
        await rig.feed.close()
        await task  # the iterator ends when the feed closes
    assert seen == [101, 102, 103]


# ---------------------------------------------------------------------------- scripted venues
async def _scripted(probe: Probe, venue: str, symbols: list[str], **cfg: Any) -> tuple[
        StreamDriver, ScriptedLink, ManualSleep, Any]:
    """A driver on an in-memory scripted transport, fake clock, gated sleep (nothing but the
    per-symbol timers sleeps: no keepalive, no startup jitter), subscribed."""
    import asyncio

    clock = FakeClock()
    link = ScriptedLink(clock, probe)
    sleep = ManualSleep(clock, probe)
    driver = StreamDriver(get_adapter(venue), symbols, ws_base="ws://scripted", rest=FakeRest(None, probe),  # type: ignore[arg-type]
                          transport_factory=link, clock=clock, sleep=sleep, seed=1, config=config(**cfg),
                          on_state=probe.on_state)
    task = asyncio.get_running_loop().create_task(driver.run())
    await probe.until(lambda: bool(link.transports) and bool(link.current.sent), "subscribed")
    return driver, link, sleep, task


async def _closed(driver: StreamDriver, task: Any) -> None:
    await driver.close()
    assert task.done() and task.exception() is None


async def test_kraken_resubscribe_unsubscribes_at_the_subscribed_depth(probe: Probe) -> None:
    # defect 2: the resubscribe unsubscribed at depth 10 a book subscribed at depth 25, so the
    # venue kept the old subscription and refused the new one
    sym = "BTC/USD"
    driver, link, sleep, task = await _scripted(probe, "kraken", [sym], depth=25, resync_timeout_s=5.0)
    ws = link.current
    subscribed = [orjson.loads(m) for m in ws.sent]
    assert subscribed[-1]["params"]["depth"] == 25
    await probe.until(lambda: sleep.sleeping == 1, "per-symbol timer armed")
    assert sleep.delays == [5.0]
    sleep.advance(5.0)  # no snapshot came: no progress, next rung: resubscribe this symbol
    await probe.until(lambda: len(ws.sent) == 5, "resubscribed")
    unsub, _instrument, sub = (orjson.loads(m) for m in ws.sent[2:])
    assert unsub == {"method": "unsubscribe", "params": {"channel": "book", "symbol": [sym], "depth": 25}}
    assert sub == {"method": "subscribe", "params": {"channel": "book", "symbol": [sym], "depth": 25,
                                                     "snapshot": True}}
    await _closed(driver, task)


async def test_stalled_book_takes_next_rung_after_resync_timeout_on_the_fake_clock(probe: Probe) -> None:
    sym = "BTC-USDT"
    driver, link, sleep, task = await _scripted(probe, "okx", [sym], resync_timeout_s=5.0)
    ws = link.current
    session = driver.sessions[sym]
    await probe.until(lambda: sleep.sleeping == 1, "per-symbol timer armed")
    sleep.advance(4.0)
    assert len(ws.sent) == 1 and session.state is SyncState.UNSYNCED, "not due before 5 s"
    sleep.advance(1.0)  # 5 s without progress: resubscribe
    await probe.until(lambda: len(ws.sent) == 3 and sleep.sleeping == 1, "resubscribed, timer re-armed")
    assert session.state is SyncState.AWAITING_SNAPSHOT
    assert sleep.delays == [5.0, 5.0], "the next deadline counts from the resubscribe"
    ws.push(okx_books("snapshot", 100, -1, [["99", "1", "0", "1"]], [["101", "1", "0", "1"]]))
    await probe.until(lambda: session.is_synced, "synced")
    await _closed(driver, task)


async def test_idle_synced_book_is_resynced_and_data_restarts_its_timer(probe: Probe) -> None:
    sym = "BTC-USDT"
    driver, link, sleep, task = await _scripted(probe, "okx", [sym], resync_timeout_s=None,
                                                symbol_idle_timeout_s=10.0)
    ws = link.current
    session = driver.sessions[sym]
    ws.push(okx_books("snapshot", 100, -1, [["99", "1", "0", "1"]], [["101", "1", "0", "1"]]))
    await probe.until(lambda: session.is_synced and sleep.sleeping == 1, "synced, idle timer armed")
    assert sleep.delays == [10.0]
    sleep.advance(6.0)
    ws.push(okx_books("update", 101, 100, [["99", "2", "0", "1"]], []))  # data at 6 s
    ws.push("pong")  # a control frame is not data: it restarts nothing
    await probe.until(lambda: session.last_seq == 101, "update applied")
    sleep.advance(4.0)  # 10 s after the start, 4 s after the data: not due yet
    await probe.until(lambda: len(sleep.delays) == 2 and sleep.sleeping == 1, "re-armed")
    assert sleep.delays == [10.0, 6.0] and len(ws.sent) == 1
    sleep.advance(6.0)  # 10 s without data: resync
    await probe.until(lambda: len(ws.sent) == 3, "resubscribed")
    assert session.state is SyncState.RECOVERING
    assert [c.reason for c in probe.states][-1].startswith("stale stream: no data for 10.0s")
    await _closed(driver, task)


async def test_venue_notice_is_answered_with_the_adapters_reply(probe: Probe) -> None:
    sym = "BTC-PERPETUAL"
    driver, link, _sleep, task = await _scripted(probe, "deribit", [sym])
    ws = link.current
    n = len(ws.sent)
    ws.push('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
    await probe.until(lambda: len(ws.sent) == n + 1, "answered")
    assert ws.sent[-1] == get_adapter("deribit").reply_to(  # type: ignore[attr-defined]
        VenueNotice(kind=NoticeKind.TEST_REQUEST, message=""))
    assert orjson.loads(ws.sent[-1])["method"] == "public/test"
    await _closed(driver, task)
