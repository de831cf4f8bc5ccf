"""Raw websockets clients against each venue: snapshots, gapless ids, checksums, keepalive."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bookkeeper.checksum import kraken_checksum, okx_checksum
from bookkeeper.sim import SimConfig, SimExchange, seq_from_timestamp
from sim_support import RefBook, drain_until, http_get, kraken_levels, recv_json, recv_text


def _floats(levels: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q, *_ in levels]


async def test_binance_rest_bridge_and_contiguous_ranges() -> None:
    seed = 21
    async with SimExchange(venues=("binance",), seed=seed, paused=True) as sim:
        url = sim.urls("binance")["ws"] + "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
        async with connect(url) as ws:
            await sim.wait_subscribed("binance", "BTCUSDT")
            sim.push(updates=3)  # buffered before the snapshot, as the §3.2 procedure expects
            _, _, snap = await http_get(sim.urls("binance")["rest"] + "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            for n in (1, 4, 0, 7, 2):
                sim.push(updates=n)
            await sim.wait_sent("binance")
            target = sim.engine.seq("BTCUSDT")
            frames = await drain_until(ws, lambda f: f["data"]["s"] == "BTCUSDT" and f["data"]["u"] == target)
    btc = [f for f in frames if f["stream"] == "btcusdt@depth@100ms"]
    assert {f["stream"] for f in frames} == {"btcusdt@depth@100ms", "ethusdt@depth@100ms"}
    assert [f["data"]["u"] - f["data"]["U"] + 1 for f in btc] == [3, 1, 4, 7, 2], f"seed={seed}"
    for prev, cur in zip(btc, btc[1:]):
        assert cur["data"]["U"] == prev["data"]["u"] + 1, f"seed={seed}"
    assert snap["lastUpdateId"] == btc[0]["data"]["u"]
    book = RefBook()
    book.reset(_floats(snap["bids"]), _floats(snap["asks"]))
    for f in btc[1:]:
        book.apply("bid", _floats(f["data"]["b"]))
        book.apply("ask", _floats(f["data"]["a"]))
    assert book.both() == sim.engine.book_at("BTCUSDT", target), f"seed={seed}"
    assert snap["bids"][0][0].endswith("000000") and len(snap["bids"][0][0].split(".")[1]) == 8


async def test_binance_raw_stream_and_live_subscribe() -> None:
    async with SimExchange(venues=("binance",), seed=2, paused=True) as sim:
        async with connect(sim.urls("binance")["ws"] + "/ws/ethusdt@depth") as raw:
            await sim.wait_subscribed("binance", "ETHUSDT")
            sim.push(updates=2, symbols=["ETHUSDT"])
            first = await recv_json(raw)
        assert sorted(first) == ["E", "U", "a", "b", "e", "s", "u"]
        assert (first["e"], first["s"], first["u"] - first["U"]) == ("depthUpdate", "ETHUSDT", 1)
        async with connect(sim.urls("binance")["ws"] + "/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 7}))
            assert await recv_json(ws) == {"result": None, "id": 7}
            sim.push(updates=1, symbols=["BTCUSDT"])
            assert (await recv_json(ws))["s"] == "BTCUSDT"
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 8}))
            assert await recv_json(ws) == {"result": None, "id": 8}
            sim.push(updates=1, symbols=["BTCUSDT"])
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
            # FIFO writer: had a frame been queued after the unsubscribe it would come first.
            assert await recv_json(ws) == {"result": [], "id": 9}


async def test_binance_server_sends_protocol_pings() -> None:
    cfg = SimConfig(binance_ping_interval_s=0.05)
    async with SimExchange(venues=("binance",), seed=2, paused=True, config=cfg) as sim:
        async with connect(sim.urls("binance")["ws"] + "/ws/btcusdt@depth") as ws:
            server_conn = next(iter(sim.servers["binance"].conns))
            await sim.wait_for(lambda: server_conn.pongs >= 2)  # the client answered our pings
            assert ws.state.name == "OPEN"


@pytest.mark.parametrize("real_checksum", [False, True])
async def test_okx_snapshot_then_prev_seq_chain(real_checksum: bool) -> None:
    seed = 33
    cfg = SimConfig(okx_checksum=real_checksum)
    async with SimExchange(venues=("okx",), seed=seed, paused=True, config=cfg) as sim:
        async with connect(sim.urls("okx")["ws"]) as ws:
            await ws.send(json.dumps({"id": "1512", "op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}))
            ack = await recv_json(ws)
            assert ack == {"id": "1512", "event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}, "connId": "okx-1"}
            snap = await recv_json(ws)
            for n in (2, 5, 1, 9):
                sim.push(updates=n)
            target = sim.engine.seq("BTC-USDT")
            frames = await drain_until(ws, lambda f: f["data"][0]["seqId"] == target)
    data = snap["data"][0]
    assert (snap["action"], data["prevSeqId"], data["seqId"]) == ("snapshot", -1, target - 17)
    book = RefBook()
    book.reset(_floats(data["bids"]), _floats(data["asks"]))
    raw = {"bid": {b[0]: b[1] for b in data["bids"]}, "ask": {a[0]: a[1] for a in data["asks"]}}
    prev = data["seqId"]
    for f in frames:
        d = f["data"][0]
        assert (f["action"], d["prevSeqId"]) == ("update", prev), f"seed={seed}"
        prev = d["seqId"]
        book.apply("bid", _floats(d["bids"]))
        book.apply("ask", _floats(d["asks"]))
        for side, key in (("bid", "bids"), ("ask", "asks")):
            for lv in d[key]:
                if lv[1] == "0":
                    raw[side].pop(lv[0], None)
                else:
                    raw[side][lv[0]] = lv[1]
        if real_checksum:
            bids = sorted(raw["bid"].items(), key=lambda kv: -float(kv[0]))[:25]
            asks = sorted(raw["ask"].items(), key=lambda kv: float(kv[0]))[:25]
            assert d["checksum"] == okx_checksum(bids, asks), f"seed={seed} seq={prev}"
        else:
            assert d["checksum"] == 0  # pinned since 2026-06-23 (§5.3)
    assert [f["data"][0]["seqId"] - f["data"][0]["prevSeqId"] for f in frames] == [2, 5, 1, 9]
    assert book.both() == sim.engine.book_at("BTC-USDT", target), f"seed={seed}"


async def test_okx_ping_pong_unsubscribe_and_book_heartbeat() -> None:
    cfg = SimConfig(okx_book_heartbeat_s=0.0)
    async with SimExchange(venues=("okx",), seed=1, paused=True, config=cfg) as sim:
        async with connect(sim.urls("okx")["ws"]) as ws:
            await ws.send("ping")
            assert await recv_text(ws) == "pong"
            await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]}))
            await recv_json(ws)
            snap = await recv_json(ws)
            sim.push(updates=0, symbols=["ETH-USDT"])  # unchanged book: heartbeat update
            hb = await recv_json(ws)
            seq = snap["data"][0]["seqId"]
            assert (hb["action"], hb["data"][0]["prevSeqId"], hb["data"][0]["seqId"]) == ("update", seq, seq)
            assert (hb["data"][0]["asks"], hb["data"][0]["bids"]) == ([], [])
            await ws.send(json.dumps({"op": "unsubscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]}))
            assert (await recv_json(ws))["event"] == "unsubscribe"
            sim.push(updates=3, symbols=["ETH-USDT"])
            await ws.send("ping")
            assert await recv_text(ws) == "pong"  # no update was queued before it
            await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": "NOPE-USDT"}]}))
            err = await recv_json(ws)
            assert (err["event"], err["code"]) == ("error", "60018")


async def test_okx_closes_idle_connection() -> None:
    cfg = SimConfig(okx_idle_timeout_s=0.2)
    async with SimExchange(venues=("okx",), seed=1, paused=True, config=cfg) as sim:
        async with connect(sim.urls("okx")["ws"]) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await recv_text(ws, timeout_s=5.0)
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4004, "No data received in 30s.")


async def test_okx_rest_books_carries_seq_id() -> None:
    async with SimExchange(venues=("okx",), seed=8, paused=True) as sim:
        status, _, body = await http_get(sim.urls("okx")["rest"] + "/api/v5/market/books?instId=BTC-USDT&sz=3")
    assert (status, body["code"], len(body["data"][0]["bids"])) == (200, "0", 3)
    assert body["data"][0]["seqId"] == sim.engine.seq("BTC-USDT")
    assert _floats(body["data"][0]["bids"]) == sim.engine.book("BTC-USDT", 3)[0]


@pytest.mark.parametrize("depth", [10, 25])
async def test_kraken_checksums_and_truncated_book_match_truth(depth: int) -> None:
    seed = 5
    async with SimExchange(venues=("kraken",), seed=seed, paused=True) as sim:
        async with connect(sim.urls("kraken")["ws"]) as ws:
            status = await recv_json(ws)
            assert status["channel"] == "status"
            await ws.send(json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": depth, "snapshot": True}, "req_id": 3}))
            ack = await recv_json(ws)
            assert ack["result"] == {"channel": "book", "depth": depth, "snapshot": True, "symbol": "BTC/USD"}
            assert (ack["method"], ack["success"], ack["req_id"]) == ("subscribe", True, 3)
            for _ in range(40):
                sim.push(updates=None, symbols=["BTC/USD"])
            sim.push(updates=30, symbols=["BTC/USD"])  # a burst deletes top levels
            await sim.wait_sent("kraken")
            target = sim.engine.seq("BTC/USD")
            frames = await drain_until(
                ws,
                lambda f: f.get("channel") == "book" and seq_from_timestamp(f["data"][0]["timestamp"]) == target,
                parse_float=Decimal,  # keep the digits sent, as Kraken advises (§7.3)
            )
    raw: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    checked = 0
    for frame in frames:
        if frame.get("channel") != "book":
            continue
        d = frame["data"][0]
        if frame["type"] == "snapshot":
            raw = {"bids": {}, "asks": {}}
        for key in ("bids", "asks"):
            for lv in d[key]:
                if lv["qty"] == 0:
                    raw[key].pop(lv["price"], None)
                else:
                    raw[key][lv["price"]] = lv["qty"]
        bids = sorted(raw["bids"].items(), reverse=True)[:depth]
        asks = sorted(raw["asks"].items())[:depth]
        raw = {"bids": dict(bids), "asks": dict(asks)}  # truncate to the subscribed depth (§7.1)
        levels = lambda items: kraken_levels([{"price": p, "qty": q} for p, q in items])  # noqa: E731
        assert d["checksum"] == kraken_checksum(levels(asks), levels(bids)), f"seed={seed} depth={depth}"
        truth = sim.engine.book_at("BTC/USD", seq_from_timestamp(d["timestamp"]), depth=depth)
        assert ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks]) == truth
        checked += 1
    assert checked >= 10, f"seed={seed}"
    assert frames[0]["type"] == "snapshot"


async def test_kraken_ping_heartbeat_instrument_and_rest() -> None:
    cfg = SimConfig(kraken_heartbeat_s=0.05)
    async with SimExchange(venues=("kraken",), seed=1, paused=True, config=cfg) as sim:
        async with connect(sim.urls("kraken")["ws"]) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"method": "ping", "req_id": 9}))
            pong = await recv_json(ws)
            assert (pong["method"], pong["req_id"]) == ("pong", 9)
            await ws.send(json.dumps({"method": "subscribe", "params": {"channel": "instrument"}}))
            await recv_json(ws)
            inst = await recv_json(ws)
            pairs = {p["symbol"]: p for p in inst["data"]["pairs"]}
            assert (pairs["BTC/USD"]["price_precision"], pairs["BTC/USD"]["qty_precision"]) == (1, 8)
            await ws.send(json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": ["ETH/USD"]}}))
            frames = await drain_until(ws, lambda f: f.get("channel") == "heartbeat")
            assert frames[-1] == {"channel": "heartbeat"}
        _, _, pairs_rest = await http_get(sim.urls("kraken")["rest"] + "/0/public/AssetPairs")
        _, _, depth = await http_get(sim.urls("kraken")["rest"] + "/0/public/Depth?pair=XETHZUSD&count=2")
    assert (pairs_rest["result"]["XXBTZUSD"]["pair_decimals"], pairs_rest["result"]["XXBTZUSD"]["lot_decimals"]) == (1, 8)
    assert pairs_rest["result"]["XXBTZUSD"]["wsname"] == "XBT/USD"
    bids = [(float(p), float(q)) for p, q, _ in depth["result"]["XETHZUSD"]["bids"]]
    assert bids == sim.engine.book("ETH/USD", 2)[0]
