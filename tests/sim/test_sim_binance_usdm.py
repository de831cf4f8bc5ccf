"""The Binance USD-M futures dialect (exchange-protocols.md §4): its frames and REST bodies have
the venue's shape and decode through the real adapter to the right ids, ``pu`` chains per
connection and a dropped frame breaks the chain, the legacy (pre-2026) stream paths are
refused, ccxt ``binanceusdm`` loads its markets from it, and the real ingest (``Feed``, and a
seeded chaos run with every applicable fault kind) stays equal to the simulator's truth.

The real frames below are copied from the shared capture
``fixtures/real/binance_usdm/binance_usdm_depth100ms_4sym_2021-07-22.*`` (see its PROVENANCE).
"""

from __future__ import annotations

import json
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from _background import BackgroundResult, chaos_child
from bookkeeper.adapters import get_adapter
from sim_support import (
    FeedProbe,
    all_subscribed,
    books_equal_truth,
    check_chaos_report,
    dialect_feed_config,
    http_get,
    probed_feed,
    recv_json,
    recv_text,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bookkeeper.events import BookDelta, BookSnapshot
from bookkeeper.io.records import RecordWriter
from bookkeeper.sim import SimConfig, SimExchange

VENUE = "binance_usdm"
REAL_WS = json.loads(
    '{"stream":"sushiusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741037,"T":1626992741024,'
    '"s":"SUSHIUSDT","U":600859599090,"u":600859600917,"pu":600859598061,"b":[["7.5040","813"],["7.6090","0"],'
    '["7.6110","2"]],"a":[["7.6150","1563"],["7.6220","3284"]]}}'
)
REAL_REST = json.loads(
    '{"lastUpdateId":600859605926,"E":1626992741264,"T":1626992741261,"bids":[["7.6110","6"]],'
    '"asks":[["7.6120","297"]]}'
)
SAFETY_TIMEOUT_S = 10.0  # a hung test fails instead of hanging; never used to wait for things


def _decode(frame: str) -> BookDelta:
    events = get_adapter(VENUE).new_decoder().decode(frame.encode(), 0)
    assert len(events) == 1 and isinstance(events[0], BookDelta), events
    return events[0]


async def test_frames_and_rest_have_the_real_shape_and_precision() -> None:
    async with SimExchange(venues=(VENUE,), seed=1, paused=True) as sim:
        async with connect(sim.urls(VENUE)["ws"] + "/stream?streams=btcusdt@depth@100ms") as ws:
            await sim.wait_subscribed(VENUE, "BTCUSDT")
            sim.push(updates=6)
            frame = await recv_json(ws)
        status, headers, rest = await http_get(sim.urls(VENUE)["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert list(frame) == list(REAL_WS)
    assert list(frame["data"]) == list(REAL_WS["data"])  # the venue's key order, pu and T included
    for key in ("e", "E", "T", "s", "U", "u", "pu"):
        assert type(frame["data"][key]) is type(REAL_WS["data"][key])
    for price, qty in frame["data"]["b"] + frame["data"]["a"]:
        # the contract's precision (BTCUSDT: tick 0.10, step 0.001), not spot's 8 decimals
        assert len(price.split(".")[1]) == 2 and price.endswith("0") and len(qty.split(".")[1]) == 3
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert list(rest) == list(REAL_REST)
    assert len(rest["bids"]) == len(rest["asks"]) == 5


async def test_adapter_decodes_the_dialect_with_the_right_ids() -> None:
    async with SimExchange(venues=(VENUE,), seed=2, paused=True) as sim:
        url = sim.urls(VENUE)["ws"]
        async with connect(url + "/stream?streams=btcusdt@depth@100ms") as combined, \
                connect(url + "/ws/btcusdt@depth@100ms") as raw:
            await sim.wait_subscribed(VENUE, "BTCUSDT", count=2)
            start = sim.engine.seq("BTCUSDT")
            sim.push(updates=4, symbols=["BTCUSDT"])
            sim.push(updates=3, symbols=["BTCUSDT"])
            frames = [await recv_text(ws) for ws in (combined, combined, raw, raw)]
        _, _, body = await http_get(sim.urls(VENUE)["rest"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
        bids, asks = sim.engine.book("BTCUSDT")
    assert not frames[2].startswith('{"stream"') and frames[0].startswith('{"stream"')
    deltas = [_decode(f) for f in frames]
    ids = [(d.first_seq, d.last_seq, d.prev_seq) for d in deltas]
    expected = [(start + 1, start + 4, start), (start + 5, start + 7, start + 4)]
    assert ids == expected * 2, (start, ids)
    assert {d.symbol for d in deltas} == {"BTCUSDT"}
    snap = get_adapter(VENUE).parse_rest_snapshot(body, symbol="BTCUSDT", ts_recv_ns=0)
    assert isinstance(snap, BookSnapshot)
    assert snap.seq == start + 7 and snap.ts_exchange_ns == body["T"] * 1_000_000
    assert [tuple(map(float, lv)) for lv in body["bids"]] == bids[:1000]
    assert [tuple(map(float, lv)) for lv in body["asks"]] == asks[:1000]


async def test_pu_chains_per_connection_and_a_dropped_frame_breaks_it() -> None:
    async with SimExchange(venues=(VENUE,), seed=3, paused=True) as sim, \
            connect(sim.urls(VENUE)["ws"] + "/ws/ethusdt@depth@100ms") as ws:
        await sim.wait_subscribed(VENUE, "ETHUSDT")
        subscribed_at = sim.engine.seq("ETHUSDT")
        sim.push(updates=2, symbols=["ETHUSDT"])
        first = await recv_json(ws)
        sim.push(updates=2, symbols=["ETHUSDT"])
        second = await recv_json(ws)
        assert await sim.inject("drop", VENUE) == 1
        sim.push(updates=2, symbols=["ETHUSDT"])  # dropped by the server's writer
        sim.push(updates=2, symbols=["ETHUSDT"])
        after_drop = await recv_json(ws)
    assert first["pu"] == subscribed_at and second["pu"] == first["u"]
    assert sim.faults_injected["drop"] == 1
    # what a real client sees after a lost frame: a pu that does not chain to its last u
    assert after_drop["pu"] == second["u"] + 2 and after_drop["U"] == after_drop["pu"] + 1


async def test_live_subscribe_and_retired_paths() -> None:
    async with SimExchange(venues=(VENUE,), seed=4, paused=True) as sim:
        root = sim.urls(VENUE)["ws_root"]
        assert root.endswith("/public") and sim.urls(VENUE)["ws"] == root
        host = root.removesuffix("/public")
        for legacy in ("/stream?streams=btcusdt@depth@100ms", "/ws/btcusdt@depth@100ms",
                       "/market/ws/btcusdt@depth@100ms", "/private/ws?listenKey=x"):
            with pytest.raises(InvalidStatus) as info:
                async with connect(host + legacy):
                    pass
            assert info.value.response.status_code == 404, legacy
        async with connect(root + "/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@500ms", "btcusdt@trade"],
                                      "id": 7}))
            assert await recv_json(ws) == {"result": None, "id": 7}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            assert await recv_json(ws) == {"result": ["btcusdt@depth@500ms"], "id": 8}
            sim.push(updates=1, symbols=["BTCUSDT"])
            frame = await recv_json(ws)
    assert frame["e"] == "depthUpdate" and frame["u"] == frame["U"] == frame["pu"] + 1


async def test_rest_depth_limits_and_rate_limit_bodies() -> None:
    async with SimExchange(venues=(VENUE,), seed=5, paused=True) as sim:
        base = sim.urls(VENUE)["rest"] + "/fapi/v1/depth?symbol=ETHUSDT"
        answers = {limit: await http_get(f"{base}&limit={limit}") for limit in ("20", "1000", "7", "5000")}
        default = await http_get(base)
        unknown = await http_get(sim.urls(VENUE)["rest"] + "/fapi/v1/depth?symbol=NOPE")
        await sim.inject("http_429", VENUE, retry_after_s=3)
        limited = await http_get(base)
        await sim.inject("http_418", VENUE)
        banned = await http_get(base)
    assert len(answers["20"][2]["bids"]) == 20
    assert len(answers["1000"][2]["bids"]) == len(answers["1000"][2]["asks"]) == 100  # the whole book (depth 100)
    for bad in ("7", "5000"):  # §4.4: only 5, 10, 20, 50, 100, 500, 1000
        assert answers[bad][0] == 400 and answers[bad][2]["code"] == -1130
    assert default[0] == 200 and len(default[2]["bids"]) == 100
    assert unknown[0] == 400 and unknown[2]["code"] == -1121
    assert limited[0] == 429 and limited[1]["Retry-After"] == "3" and limited[2]["code"] == -1003
    assert "2400 requests per minute" in limited[2]["msg"]
    assert banned[0] == 418 and banned[2]["code"] == -1003 and "banned until" in banned[2]["msg"]


async def test_ccxt_binanceusdm_loads_only_the_served_perpetuals() -> None:
    async with SimExchange(venues=(VENUE,), seed=6, paused=True) as sim:
        exchange = ccxt_async.binanceusdm(sim.ccxt_config(VENUE))
        try:
            markets = await exchange.load_markets()
            book = await exchange.fetch_order_book("BTC/USDT:USDT", limit=5)
            raw = await exchange.fapipublic_get_depth({"symbol": "ETHUSDT", "limit": 10})
        finally:
            await exchange.close()
        btc_seq, eth_seq = sim.engine.seq("BTCUSDT"), sim.engine.seq("ETHUSDT")
        truth_bids, _ = sim.engine.book("BTCUSDT", depth=5)
    assert sorted(markets) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    btc = markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["type"], btc["linear"], btc["settle"], btc["active"]) == ("BTCUSDT", "swap", True, "USDT", True)
    # ccxt reads the tick and step from the filters: BTCUSDT tick 0.10, step 0.001
    assert btc["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
    assert markets["ETH/USDT:USDT"]["precision"]["price"] == 0.01
    assert book["nonce"] == btc_seq and [tuple(lv[:2]) for lv in book["bids"]] == truth_bids
    assert int(raw["lastUpdateId"]) == eth_seq


async def test_server_pings_are_answered_by_the_client() -> None:
    config = SimConfig(binance_ping_interval_s=0.05)
    async with SimExchange(venues=(VENUE,), seed=7, paused=True, config=config) as sim, \
            connect(sim.urls(VENUE)["ws"] + "/ws/btcusdt@depth"):
        await sim.wait_subscribed(VENUE, "BTCUSDT")
        (conn,) = sim.servers[VENUE].conns
        await sim.wait_for(lambda: conn.pongs >= 2, SAFETY_TIMEOUT_S)
    assert conn.pongs >= 2


class _NotifyingList(list):  # type: ignore[type-arg]
    """A record sink that wakes the probe on append."""

    def __init__(self, probe: FeedProbe) -> None:
        super().__init__()
        self._probe = probe

    def append(self, item: Any) -> None:
        super().append(item)
        self._probe.notify()


@pytest.mark.realtime
async def test_feed_syncs_resumes_after_1006_and_equals_the_truth() -> None:
    probe = FeedProbe()
    records = _NotifyingList(probe)
    config = dialect_feed_config("usdm-test")
    async with SimExchange(venues=(VENUE,), seed=11, paused=True) as sim:
        server = sim.servers[VENUE]
        symbols = list(server.specs)
        feed = probed_feed(sim, VENUE, probe, config, records=RecordWriter(sink=records))

        def subscribed() -> bool:
            return all_subscribed(server, symbols)

        def equal_truth() -> bool:
            return books_equal_truth(feed, sim, symbols)

        async with feed:
            await sim.wait_for(subscribed, SAFETY_TIMEOUT_S)
            sim.push(updates=3)
            for sym in symbols:
                await feed.wait_synced(sym, timeout=SAFETY_TIMEOUT_S)
            sim.push(updates=5)
            await probe.until(equal_truth, "books equal the truth")
            assert {s: feed.last_seq(s) for s in symbols} == {s: sim.engine.seq(s) for s in symbols}

            await sim.inject("abort", VENUE)  # a 1006 in a quiet market: nothing is missed
            await sim.wait_for(lambda: feed.driver.connections == 2 and subscribed(), SAFETY_TIMEOUT_S)
            sim.push(updates=2)
            await probe.until(lambda: equal_truth() and len(records) == 1, "resumed and equal to the truth")
    assert records[0]["close_code"] == 1006 and records[0]["plan"] == ["resume"], records[0]
    assert records[0]["missed_messages_count"] == 0


@pytest.mark.realtime
@pytest.mark.timeout(120)
@pytest.mark.background(chaos_child(venues=[VENUE], seed=4, duration_s=16.0, fault_rate_per_s=1.0))
def test_seeded_chaos_with_every_applicable_fault_kind_is_consistent(background: BackgroundResult) -> None:
    seed = 4
    report = check_chaos_report(background, VENUE, seed, ["corrupt_checksum", "resent_snapshot", "service_restart"])
    assert report["gaps"] >= 1 and report["stale_snapshots"] >= 1, (seed, report)
