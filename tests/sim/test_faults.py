"""Every fault kind, observed by a raw client; counters; plans."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bookkeeper.sim import FaultKind, FaultPlan, FaultSpec, SimExchange
from sim_support import drain_until, http_get, recv_json, recv_text

BTC_STREAM = "/stream?streams=btcusdt@depth@100ms"


async def _binance_client(sim: SimExchange):
    ws = await connect(sim.urls("binance")["ws"] + BTC_STREAM)
    await sim.wait_subscribed("binance", "BTCUSDT")
    return ws


async def _ranges(sim: SimExchange, ws, pushes: int) -> list[tuple[int, int]]:
    for _ in range(pushes):
        sim.push(updates=2, symbols=["BTCUSDT"])
    await sim.wait_sent("binance")
    target = sim.engine.seq("BTCUSDT")
    frames = await drain_until(ws, lambda f: f["data"]["u"] == target)
    return [(f["data"]["U"], f["data"]["u"]) for f in frames]


@pytest.mark.parametrize(("kind", "code"), [("abort", 1006), ("close_1001", 1001), ("close_1000", 1000)])
async def test_connection_faults_give_the_expected_close_code(kind: str, code: int) -> None:
    async with SimExchange(venues=("binance",), seed=1, paused=True) as sim:
        ws = await _binance_client(sim)
        assert await sim.inject(kind, "binance") == 1
        with pytest.raises(ConnectionClosed) as info:
            await recv_text(ws)
        await ws.close()
    exc = info.value
    seen = exc.rcvd.code if exc.rcvd is not None else 1006  # no close frame: 1006
    assert seen == code
    assert sim.faults_injected[kind] == 1


async def test_http_429_on_upgrade_has_retry_after() -> None:
    async with SimExchange(venues=("okx",), seed=1, paused=True) as sim:
        with sim.rate_limited(1, status=429, retry_after_s=3, venue="okx"):
            with pytest.raises(InvalidStatus) as info:
                await connect(sim.urls("okx")["ws"])
        async with connect(sim.urls("okx")["ws"]) as ws:  # served again after the budget
            await ws.send("ping")
            assert await recv_text(ws) == "pong"
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "3"
    assert sim.faults_injected["http_429"] == 1


async def test_http_418_on_rest() -> None:
    async with SimExchange(venues=("kraken",), seed=1, paused=True) as sim:
        await sim.inject("http_418", "kraken", retry_after_s=120)
        status, headers, body = await http_get(sim.urls("kraken")["rest"] + "/0/public/Depth?pair=XXBTZUSD")
    assert (status, headers["Retry-After"], body) == (418, "120", {"error": ["EGeneral:Too many requests"]})


async def test_refuse_resets_next_connection() -> None:
    async with SimExchange(venues=("binance",), seed=1, paused=True) as sim:
        await sim.inject("refuse", "binance", count=1)
        with pytest.raises((OSError, ConnectionError, Exception)) as info:
            await connect(sim.urls("binance")["ws"] + BTC_STREAM, open_timeout=5)
        assert not isinstance(info.value, InvalidStatus)
        ws = await _binance_client(sim)  # only one refusal was armed
        await ws.close()
    assert sim.faults_injected["refuse"] == 1


async def test_outage_refuses_every_connection_until_it_ends() -> None:
    async with SimExchange(venues=("okx",), seed=1, paused=True) as sim:
        live = await connect(sim.urls("okx")["ws"])
        await sim.outage("okx")
        with pytest.raises(ConnectionClosed):
            await recv_text(live)
        for _ in range(3):
            with pytest.raises(ConnectionRefusedError):
                await connect(sim.urls("okx")["ws"])
        with pytest.raises(aiohttp.ClientConnectorError):
            await http_get(sim.urls("okx")["rest"] + "/api/v5/public/instruments?instType=SPOT")
        await sim.end_outage("okx")
        async with connect(sim.urls("okx")["ws"]) as ws:
            await ws.send("ping")
            assert await recv_text(ws) == "pong"
    assert sim.faults_injected["refuse"] == 1


async def test_conn_limit_rejects_extra_connections() -> None:
    async with SimExchange(venues=("kraken",), seed=1, paused=True) as sim:
        await sim.inject("conn_limit", "kraken", max=2)
        a = await connect(sim.urls("kraken")["ws"])
        b = await connect(sim.urls("kraken")["ws"])
        await sim.wait_for(lambda: sim.connections("kraken") == 2)
        with pytest.raises(InvalidStatus) as info:
            await connect(sim.urls("kraken")["ws"])
        await a.close()
        await sim.wait_for(lambda: sim.connections("kraken") == 1)
        c = await connect(sim.urls("kraken")["ws"])
        await b.close()
        await c.close()
    assert info.value.response.status_code == 429
    assert sim.faults_injected["conn_limit"] == 1


async def test_stale_snapshot_is_older_than_the_stream() -> None:
    async with SimExchange(venues=("binance",), seed=3, paused=True) as sim:
        sim.push(updates=150, symbols=["BTCUSDT"])  # history before the client connects
        ws = await _binance_client(sim)
        sim.push(updates=50, symbols=["BTCUSDT"])
        first = await recv_json(ws)
        await sim.inject("stale_snapshot", "binance", lag=120)
        _, _, stale = await http_get(sim.urls("binance")["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        _, _, fresh = await http_get(sim.urls("binance")["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        await ws.close()
    assert stale["lastUpdateId"] == sim.engine.seq("BTCUSDT") - 120
    assert stale["lastUpdateId"] < first["data"]["U"]  # §3.2: "fetch the snapshot again"
    assert fresh["lastUpdateId"] == sim.engine.seq("BTCUSDT")
    bids, asks = sim.engine.book_at("BTCUSDT", stale["lastUpdateId"])
    assert [(float(p), float(q)) for p, q in stale["bids"]] == bids
    assert sim.faults_injected["stale_snapshot"] == 1


async def test_drop_duplicate_reorder_show_as_id_anomalies() -> None:
    async with SimExchange(venues=("binance",), seed=4, paused=True) as sim:
        ws = await _binance_client(sim)
        start = sim.engine.seq("BTCUSDT")
        r = lambda k: (start + 2 * k - 1, start + 2 * k)  # noqa: E731  (U, u) of push k
        with sim.drop_frames(1):
            dropped = await _ranges(sim, ws, 3)
        with sim.duplicate_frames(1):
            duplicated = await _ranges(sim, ws, 2)
        with sim.reorder_frames(1):
            reordered = await _ranges(sim, ws, 3)
        clean = await _ranges(sim, ws, 1)
        await ws.close()
    assert dropped == [r(2), r(3)]  # gap: U of the first > start + 1
    assert duplicated == [r(4), r(4), r(5)]
    assert reordered == [r(7), r(6), r(8)]
    assert clean == [r(9)]
    assert {k: sim.faults_injected[k] for k in ("drop", "duplicate", "reorder")} == {"drop": 1, "duplicate": 1, "reorder": 1}


async def test_corrupt_checksum_kraken() -> None:
    async with SimExchange(venues=("kraken",), seed=6, paused=True) as sim:
        async with connect(sim.urls("kraken")["ws"]) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}}))
            await recv_json(ws)
            good = await recv_json(ws)
            await sim.inject("corrupt_checksum", "kraken")
            sim.push(updates=40, symbols=["BTC/USD"])
            bad = await recv_json(ws)
    sym = "BTC/USD"
    assert good["type"] == "snapshot" and bad["type"] == "update"
    from bookkeeper.checksum import kraken_checksum
    from bookkeeper.types import Side
    spec = sim.engine.spec(sym)
    levels = lambda side: [(spec.price_str(p), spec.qty_str(q)) for p, q in sim.engine.levels(sym, side, 10)]  # noqa: E731
    truth = kraken_checksum(levels(Side.ASK), levels(Side.BID))
    assert bad["data"][0]["checksum"] == truth ^ 0x5A5A5A
    assert sim.faults_injected["corrupt_checksum"] == 1


async def test_stall_goes_silent_and_stops_answering_pings() -> None:
    async with SimExchange(venues=("okx",), seed=1, paused=True) as sim:
        async with connect(sim.urls("okx")["ws"], ping_interval=None, close_timeout=0.1) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}))
            await recv_json(ws)
            await recv_json(ws)
            assert await sim.inject("stall", "okx") == 1
            sim.push(updates=5)
            await ws.send("ping")
            pong_waiter = await ws.ping()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):  # bounded wait for something that must not come
                    await ws.recv()
            assert not pong_waiter.done()
            assert ws.state.name == "OPEN"
    assert sim.faults_injected["stall"] == 1


async def test_fault_plan_by_frame_count_and_random_plans() -> None:
    plan = FaultPlan((FaultSpec(kind=FaultKind.CLOSE_1001, after_frames=3, venue="binance"),))
    async with SimExchange(venues=("binance",), seed=1, paused=True, fault_plan=plan) as sim:
        ws = await _binance_client(sim)
        for _ in range(3):
            sim.push(updates=1, symbols=["BTCUSDT"])
        frames = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                frames.append(await recv_json(ws))
    assert len(frames) == 3 and info.value.rcvd.code == 1001
    a = FaultPlan.random(11, kinds=["drop", "abort", "stall"], rate_per_s=2.0, duration_s=10.0)
    assert a == FaultPlan.random(11, kinds=["drop", "abort", "stall"], rate_per_s=2.0, duration_s=10.0)
    assert a != FaultPlan.random(12, kinds=["drop", "abort", "stall"], rate_per_s=2.0, duration_s=10.0)
    assert {f.kind for f in a.faults} == {FaultKind.DROP, FaultKind.ABORT, FaultKind.STALL}
    assert all(0.5 <= f.at_s < 10.5 for f in a.faults)


async def test_scripted_time_plan_aborts() -> None:
    plan = FaultPlan.scripted([(0.0, "abort")])
    async with SimExchange(venues=("okx",), seed=1, paused=True, fault_plan=plan) as sim:
        await sim.wait_for(lambda: True)
        ws = await connect(sim.urls("okx")["ws"])
        await sim.wait_for(lambda: sim.connections("okx") == 1)
        # The plan fired at start with no connection: it acted on nothing and counted nothing.
        await ws.send("ping")
        assert await recv_text(ws) == "pong"
        await ws.close()
    assert sim.faults_injected["abort"] == 0
