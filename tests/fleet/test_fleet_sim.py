"""Fleet instances against the simulator and a real redis-server: a gap replayed from the
shared journal instead of a REST snapshot (abort, drop), and Redis killed mid-run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from bookkeeper.actions import SyncState  # noqa: E402
from bookkeeper.io.coord import RedisCoordinator  # noqa: E402
from bookkeeper.io.feed import Feed  # noqa: E402
from bookkeeper.io.journal import RedisJournal  # noqa: E402
from bookkeeper.io.stream import DriverConfig  # noqa: E402
from bookkeeper.io.ws import WebsocketsTransport  # noqa: E402
from bookkeeper.policy import BackoffPolicy  # noqa: E402
from bookkeeper.sim import SimExchange  # noqa: E402

from conftest import RedisServer  # noqa: E402
from test_fleet_processes import Child  # noqa: E402

pytestmark = pytest.mark.realtime

SYM = "BTCUSDT"
CFG = DriverConfig(startup_jitter_s=0.0, resync_timeout_s=None,
                   backoff=BackoffPolicy(base_s=0.05, cap_s=0.2, jitter=0.0, max_attempts=5, first_delay_s=0.0))


class GatedTransport(WebsocketsTransport):
    """Connects at once the first time; later connects wait for ``gate`` (the test decides
    when this instance may reconnect)."""

    opened = 0

    def __init__(self, gate: asyncio.Event, **kw: Any) -> None:
        super().__init__(**kw)
        self._gate = gate

    async def connect(self, url: str) -> None:
        if GatedTransport.opened:
            await self._gate.wait()
        GatedTransport.opened += 1
        await super().connect(url)


def matches(feed: Feed, sim: SimExchange, sym: str = SYM) -> bool:
    if feed.state(sym) is not SyncState.SYNCED:
        return False
    bids, asks = sim.engine.book(sym)
    return feed.book(sym).equals(bids, asks)


async def until(sim: SimExchange, pred: Any, timeout_s: float = 20.0) -> None:
    """Wait for ``pred``: re-checked on every simulator change, and on a 10 ms tick for what
    nothing signals (a subscription registered by the simulator, a book state change in the
    feed); the timeout only fails a hung test."""
    async with asyncio.timeout(timeout_s):
        while not pred():
            try:
                await sim.wait_for(pred, timeout_s=0.01)
            except TimeoutError:
                continue


def subscribed(sim: SimExchange, n: int) -> Any:
    return lambda: len(sim.servers["binance"].subscribers(SYM)) >= n


async def journal_top(url: str, at_least: int) -> None:
    """Block (XREAD BLOCK) until the shared journal holds ``at_least``."""
    r = redis.asyncio.Redis.from_url(url)
    key = f"bookkeeper:{{binance}}:journal:{SYM}"
    try:
        async with asyncio.timeout(20):
            while True:
                top = await r.xrevrange(key, count=1)
                if top and int(top[0][0].split(b"-")[0]) >= at_least:
                    return
                await r.xread({key: top[0][0] if top else "0-0"}, block=1000, count=1)
    finally:
        await r.aclose()


async def test_gap_after_abort_is_replayed_from_a_peer_process_journal(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with SimExchange(venues=("binance",), symbols={"binance": [SYM]}, seed=5, paused=True) as sim:
        ws = sim.urls("binance")["ws_root"]
        writer = await Child.start("feed", url, ws, json.dumps(sim.ccxt_config("binance")), SYM)
        try:
            await until(sim, subscribed(sim, 1))
            sim.push(updates=3)
            assert (await writer.line())["synced"]
            gate = asyncio.Event()
            GatedTransport.opened = 0
            co, journal = RedisCoordinator(url), RedisJournal(url, approximate_trim=False)
            feed = Feed("binance", [SYM], ws_url=ws, rest_config=sim.ccxt_config("binance"), config=CFG,
                        coordinator=co, journal=journal, seed=7,
                        transport_factory=lambda: GatedTransport(gate))
            async with feed:
                await until(sim, subscribed(sim, 2))
                sim.push(updates=3)
                await feed.wait_synced(SYM, timeout=20)
                sim.push(updates=2)
                await until(sim, lambda: matches(feed, sim))
                stats = feed.driver.sessions[SYM].stats
                snaps_before = stats.rest_snapshots
                assert await sim.inject("abort", "binance", conn_index=1) == 1  # ours, not the writer's
                await until(sim, lambda: feed.state(SYM) is not SyncState.SYNCED)
                pushed = sim.push(updates=6)[SYM]  # only the writer sees these
                await journal_top(url, pushed)
                gate.set()
                await until(sim, subscribed(sim, 2))
                sim.push(updates=2)
                await until(sim, lambda: matches(feed, sim))
                assert stats.replays >= 1
                assert stats.rest_snapshots == snaps_before, "the gap was closed without a REST snapshot"
                assert feed.metrics.value("bookkeeper_snapshots_avoided_total", kind="replay") >= 1
                assert journal.stats.served >= 1
            report = await writer.ask("stats")
            assert report["written"] > 0
            await co.close()
            await journal.close()
        finally:
            writer.kill()


async def test_dropped_frame_is_replayed_from_the_other_instances_journal(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with SimExchange(venues=("binance",), symbols={"binance": [SYM]}, seed=9, paused=True) as sim:
        ws, rest = sim.urls("binance")["ws_root"], sim.ccxt_config("binance")
        parts = [(RedisCoordinator(url), RedisJournal(url, approximate_trim=False)) for _ in range(2)]
        feeds = [Feed("binance", [SYM], ws_url=ws, rest_config=rest, config=CFG, coordinator=c, journal=j, seed=i)
                 for i, (c, j) in enumerate(parts)]
        async with feeds[0], feeds[1]:
            await until(sim, subscribed(sim, 2))
            sim.push(updates=3)
            for f in feeds:
                await f.wait_synced(SYM, timeout=20)
            sim.push(updates=2)
            await until(sim, lambda: all(matches(f, sim) for f in feeds))
            # the initial sync took one REST snapshot for the fleet, the other instance's was shared
            shared = [f.metrics.value("bookkeeper_shared_snapshots_total", role="shared") for f in feeds]
            fetched = [f.metrics.value("bookkeeper_shared_snapshots_total", role="fetched") for f in feeds]
            assert sum(fetched) + sum(shared) == 2 and sum(fetched) >= 1
            before = [f.driver.sessions[SYM].stats.rest_snapshots for f in feeds]
            with sim.drop_frames(1):
                sim.push(updates=1)
                await sim.wait_sent("binance", SYM)
            sim.push(updates=3)
            await until(sim, lambda: all(matches(f, sim) for f in feeds))
            replays = [f.driver.sessions[SYM].stats.replays for f in feeds]
            assert sum(replays) == 1, replays
            assert [f.driver.sessions[SYM].stats.rest_snapshots for f in feeds] == before
        for c, j in parts:
            await j.close()
            await c.close()


async def test_redis_killed_mid_run_degrades_and_books_stay_consistent(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with SimExchange(venues=("binance",), symbols={"binance": [SYM]}, seed=13, paused=True) as sim:
        co, journal = RedisCoordinator(url, op_timeout_s=0.2), RedisJournal(url, op_timeout_s=0.2)
        feed = Feed("binance", [SYM], ws_url=sim.urls("binance")["ws_root"], rest_config=sim.ccxt_config("binance"),
                    config=CFG, coordinator=co, journal=journal, seed=1)
        async with feed:
            await until(sim, subscribed(sim, 1))
            sim.push(updates=3)
            await feed.wait_synced(SYM, timeout=20)
            assert feed.metrics.value("bookkeeper_coordinator_degraded", component="coordinator") == 0
            redis_server.kill()
            await sim.inject("abort", "binance")
            await until(sim, lambda: feed.state(SYM) is not SyncState.SYNCED)
            sim.push(updates=4)
            await until(sim, lambda: matches(feed, sim))
            sim.push(updates=2)
            await until(sim, lambda: matches(feed, sim))
            assert co.status().degraded and co.status().degradations == 1
            assert feed.metrics.value("bookkeeper_coordinator_degraded", component="coordinator") == 1
            assert feed.metrics.value("bookkeeper_coordinator_degradations_total", component="coordinator") == 1
            assert feed.failure is None and not feed.errors
        await journal.close()
        await co.close()
