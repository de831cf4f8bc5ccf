"""The Bybit v5 dialect (exchange-protocols.md §6): its frames and REST bodies have the venue's
shape and decode through the real adapter to the right ids, the book is windowed at the
subscribed depth as the venue does it (levels leaving the window are deleted, entering ones
sent), depth 1 sends only snapshots, the control dialogue (acks, errors, ping) is Bybit's, ccxt
``bybit`` loads its markets from it, and the real ingest (``Feed``, and a seeded chaos run with
every applicable fault kind) stays equal to the simulator's truth.

The real frame below is the first line of the shared capture
``fixtures/real/bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz`` (see its PROVENANCE).
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
    RefBook,
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

from bookkeeper.apps.chaos import APPLICABLE
from bookkeeper.events import BookDelta, BookSnapshot
from bookkeeper.sim import SimExchange, SymbolSpec
from bookkeeper.sim.venues import bybit as dialect

VENUE = "bybit"
REAL_WS = json.loads(
    '{"topic":"orderbook.500.XRPUSDT","type":"snapshot","ts":1733011200691,"data":{"s":"XRPUSDT",'
    '"b":[["1.9531","6203"]],"a":[["1.9532","7548"]],"u":20254869,"seq":130020238981},"cts":1733011200589}'
)
SAFETY_TIMEOUT_S = 10.0  # a hung test fails instead of hanging; never used to wait for things
#: a book deeper than the 50-level window (the default instruments fit inside it)
DEEP = SymbolSpec(symbol="SOLUSDT", price_decimals=3, qty_decimals=1, mid_price="150.000", typical_qty="40.0",
                  depth=100)


def _decode(frame: str) -> BookSnapshot | BookDelta:
    events = get_adapter(VENUE).new_decoder().decode(frame.encode(), 0)
    assert len(events) == 1 and isinstance(events[0], (BookSnapshot, BookDelta)), events
    return events[0]


async def _subscribe(ws: Any, *topics: str, req_id: str = "1") -> Any:
    await ws.send(json.dumps({"req_id": req_id, "op": "subscribe", "args": list(topics)}))
    return await recv_json(ws)


def _apply(ref: RefBook, frame: dict[str, Any]) -> None:
    levels = {side: [(float(p), float(q)) for p, q in frame["data"][key]] for side, key in (("bid", "b"), ("ask", "a"))}
    if frame["type"] == "snapshot":
        ref.reset(levels["bid"], levels["ask"])
    else:
        ref.apply("bid", levels["bid"])
        ref.apply("ask", levels["ask"])


async def test_frames_and_rest_have_the_real_shape_and_precision() -> None:
    async with SimExchange(venues=(VENUE,), seed=1, paused=True) as sim:
        async with connect(sim.urls(VENUE)["ws"]) as ws:
            ack = await _subscribe(ws, "orderbook.50.BTCUSDT", req_id="a1")
            snapshot = await recv_json(ws)
            sim.push(updates=6, symbols=["BTCUSDT"])
            delta = await recv_json(ws)
        status, headers, rest = await http_get(sim.urls(VENUE)["rest"]
                                               + "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=5")
    assert ack == {"success": True, "ret_msg": "", "conn_id": "bybit-1", "req_id": "a1", "op": "subscribe"}
    for frame, kind in ((snapshot, "snapshot"), (delta, "delta")):
        assert list(frame) == list(REAL_WS) and list(frame["data"]) == list(REAL_WS["data"])  # the venue's key order
        assert frame["topic"] == "orderbook.50.BTCUSDT" and frame["type"] == kind
        for key in ("ts", "cts"):
            assert type(frame[key]) is int
        for key in ("u", "seq"):
            assert type(frame["data"][key]) is int
    assert len(snapshot["data"]["b"]) == len(snapshot["data"]["a"]) == 40  # the whole book: depth 40 < 50
    for price, qty in snapshot["data"]["b"] + snapshot["data"]["a"]:
        # the linear contract's precision (BTCUSDT: tick 0.10, step 0.001)
        assert len(price.split(".")[1]) == 2 and price.endswith("0") and len(qty.split(".")[1]) == 3
    for _, qty in delta["data"]["b"] + delta["data"]["a"]:
        assert qty == "0" or len(qty.split(".")[1]) == 3  # a delete is a bare "0", as Bybit prints it
    assert delta["data"]["seq"] > snapshot["data"]["seq"]
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert list(rest) == ["retCode", "retMsg", "result", "retExtInfo", "time"]
    assert (rest["retCode"], rest["retMsg"]) == (0, "OK")
    assert list(rest["result"]) == ["s", "b", "a", "ts", "u", "seq", "cts"]
    assert len(rest["result"]["b"]) == len(rest["result"]["a"]) == 5


async def test_adapter_decodes_the_dialect_with_the_right_ids() -> None:
    async with SimExchange(venues=(VENUE,), seed=2, paused=True) as sim:
        async with connect(sim.urls(VENUE)["ws"]) as ws:
            await _subscribe(ws, "orderbook.200.ETHUSDT")
            start = sim.engine.seq("ETHUSDT")
            frames = [await recv_text(ws)]
            sim.push(updates=4, symbols=["ETHUSDT"])
            frames.append(await recv_text(ws))
            sim.push(updates=3, symbols=["ETHUSDT"])
            frames.append(await recv_text(ws))
        _, _, body = await http_get(sim.urls(VENUE)["rest"]
                                    + "/v5/market/orderbook?category=linear&symbol=ETHUSDT&limit=1000")
        bids, asks = sim.engine.book("ETHUSDT")
    snap, *deltas = [_decode(f) for f in frames]
    assert isinstance(snap, BookSnapshot) and snap.seq == start
    assert all(isinstance(d, BookDelta) for d in deltas)
    ids = [(d.first_seq, d.last_seq) for d in deltas if isinstance(d, BookDelta)]
    assert ids == [(start + 4, start + 4), (start + 7, start + 7)], (start, ids)  # u = the engine seq
    assert {e.symbol for e in (snap, *deltas)} == {"ETHUSDT"}
    rest = get_adapter(VENUE).parse_rest_snapshot(body, symbol="ETHUSDT", ts_recv_ns=0)
    assert rest.seq == start + 7 and rest.ts_exchange_ns == body["result"]["ts"] * 1_000_000
    assert (rest.bids, rest.asks) == (bids, asks)
    assert body["result"]["seq"] == dialect.cross_seq(start + 7)


async def test_the_book_is_windowed_at_the_subscribed_depth() -> None:
    seed = 3
    async with SimExchange(venues=(VENUE,), seed=seed, paused=True, symbols={VENUE: [DEEP]}) as sim, \
            connect(sim.urls(VENUE)["ws"]) as ws:
        await _subscribe(ws, "orderbook.50.SOLUSDT")
        ref = RefBook()
        _apply(ref, await recv_json(ws))
        assert ref.both() == sim.engine.book("SOLUSDT", depth=50)
        entered = left = 0
        for _ in range(40):
            window = {p for p, _ in sim.engine.book("SOLUSDT", depth=50)[0]}
            deeper = {p for p, _ in sim.engine.book("SOLUSDT")[0]} - window
            sent_at = sim.engine.seq("SOLUSDT")
            sim.push(updates=5, symbols=["SOLUSDT"])
            truth = sim.engine.book("SOLUSDT", depth=50)
            if truth == sim.engine.book_at("SOLUSDT", sent_at, depth=50):
                continue  # nothing changed inside the window: the venue pushes nothing
            frame = await recv_json(ws)
            assert frame["data"]["u"] == sim.engine.seq("SOLUSDT"), seed
            _apply(ref, frame)
            assert ref.both() == truth, (seed, frame["data"]["u"])  # exactly the top 50, never deeper
            still_there = {p for p, _ in sim.engine.book("SOLUSDT")[0]}
            bids = [(float(p), q) for p, q in frame["data"]["b"]]
            # pushed out of the window (deleted on the wire) while still in the book below it
            left += sum(1 for p, q in bids if q == "0" and p in window and p in still_there)
            # a level that was deeper moved into the window
            entered += sum(1 for p, q in bids if q != "0" and p in deeper)
    assert len(sim.engine.book("SOLUSDT")[0]) > 50  # the truth is deeper than the window
    assert entered >= 1 and left >= 1, (seed, entered, left)  # levels moved into and out of it


async def test_depth_1_sends_only_snapshots_and_resends_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialect, "DEPTH1_RESEND_S", 0.0)  # re-send at every interval, not every 3 s
    async with SimExchange(venues=(VENUE,), seed=4, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        await _subscribe(ws, "orderbook.1.BTCUSDT")
        first = await recv_json(ws)
        sim.push(updates=0, symbols=["BTCUSDT"])  # an interval with no change
        resent = await recv_json(ws)
        sim.push(updates=30, symbols=["BTCUSDT"])
        moved = await recv_json(ws)
        bids, asks = sim.engine.book("BTCUSDT", depth=1)
    assert [f["type"] for f in (first, resent, moved)] == ["snapshot"] * 3
    assert resent["data"]["u"] == first["data"]["u"] and resent["data"]["b"] == first["data"]["b"]
    assert moved["data"]["u"] == sim.engine.seq("BTCUSDT")
    assert [[float(p), float(q)] for p, q in moved["data"]["b"]] == [list(lv) for lv in bids]
    assert [[float(p), float(q)] for p, q in moved["data"]["a"]] == [list(lv) for lv in asks]


async def test_control_dialogue_spot_and_linear() -> None:
    async with SimExchange(venues=(VENUE,), seed=5, paused=True) as sim:
        root = sim.urls(VENUE)["ws_root"]
        assert root.endswith("/v5/public/linear") and sim.urls(VENUE)["ws"] == root
        host = root.removesuffix("/v5/public/linear")
        for path in ("/v5/public/inverse", "/v5/private", "/realtime", "/"):
            with pytest.raises(InvalidStatus) as info:
                async with connect(host + path):
                    pass
            assert info.value.response.status_code == 404, path
        async with connect(host + "/v5/public/spot") as spot, connect(root) as linear:
            spot_ack = await _subscribe(spot, "orderbook.50.ETHUSDT", req_id="s")
            spot_snapshot = await recv_json(spot)
            too_many = await _subscribe(spot, *[f"orderbook.50.ETHUSDT{i}" for i in range(11)], req_id="m")
            bad = await _subscribe(linear, "orderbook.7.BTCUSDT", "orderbook.50.NOPE", req_id="b")
            await linear.send('{"op":"ping"}')
            pong = await recv_json(linear)
            await spot.send(json.dumps({"req_id": "u", "op": "unsubscribe", "args": ["orderbook.50.ETHUSDT"]}))
            unsub = await recv_json(spot)
            await sim.wait_for(lambda: not sim.servers[VENUE].subscribers("ETHUSDT"), SAFETY_TIMEOUT_S)
    assert spot_ack == {"success": True, "ret_msg": "subscribe", "conn_id": spot_ack["conn_id"], "req_id": "s",
                        "op": "subscribe"}  # spot echoes the op in ret_msg (§6.1)
    assert spot_snapshot["type"] == "snapshot" and spot_snapshot["topic"] == "orderbook.50.ETHUSDT"
    assert too_many["success"] is False and too_many["req_id"] == "m"  # spot: at most 10 args
    assert bad["success"] is False and "orderbook.7.BTCUSDT" in bad["ret_msg"] and "NOPE" in bad["ret_msg"]
    assert pong == {"success": True, "ret_msg": "pong", "conn_id": pong["conn_id"], "req_id": "", "op": "ping"}
    assert unsub["success"] is True and unsub["op"] == "unsubscribe"
    # the adapter reads a refused request as an error notice and acks/pongs as nothing
    decoder = get_adapter(VENUE).new_decoder()
    assert decoder.decode(json.dumps(spot_ack), 0) == [] and decoder.decode(json.dumps(pong), 0) == []
    assert "failed" in decoder.decode(json.dumps(bad), 0)[0].message


async def test_rest_limits_and_rate_limit_bodies() -> None:
    async with SimExchange(venues=(VENUE,), seed=6, paused=True) as sim:
        base = sim.urls(VENUE)["rest"] + "/v5/market/orderbook?symbol=ETHUSDT"
        answers = {q: await http_get(f"{base}&{q}") for q in ("category=spot", "category=linear",
                                                               "category=spot&limit=1000", "category=linear&limit=0",
                                                               "category=linear&limit=1001", "category=option")}
        unknown = await http_get(sim.urls(VENUE)["rest"] + "/v5/market/orderbook?category=linear&symbol=NOPE")
        await sim.inject("http_429", VENUE, retry_after_s=3)
        limited = await http_get(base + "&category=linear")
    assert len(answers["category=spot"][2]["result"]["b"]) == 1  # spot's default limit (§6.4)
    assert len(answers["category=linear"][2]["result"]["b"]) == 25  # linear's default limit
    assert len(answers["category=spot&limit=1000"][2]["result"]["a"]) == len(sim.engine.book("ETHUSDT")[1])
    for bad in ("category=linear&limit=0", "category=linear&limit=1001", "category=option"):
        assert answers[bad][0] == 200 and answers[bad][2]["retCode"] == 10001, bad
    assert unknown[2]["retCode"] == 10001
    assert limited[0] == 429 and limited[1]["Retry-After"] == "3" and limited[2]["retCode"] == 10006


async def test_ccxt_bybit_loads_only_the_served_markets() -> None:
    async with SimExchange(venues=(VENUE,), seed=7, paused=True) as sim:
        exchange = ccxt_async.bybit(sim.ccxt_config(VENUE))
        try:
            markets = await exchange.load_markets()
            book = await exchange.fetch_order_book("BTC/USDT:USDT", limit=5)
            spot_book = await exchange.fetch_order_book("ETH/USDT", limit=3)
            raw = await exchange.public_get_v5_market_orderbook({"category": "linear", "symbol": "ETHUSDT", "limit": 10})
        finally:
            await exchange.close()
        truth_bids, _ = sim.engine.book("BTCUSDT", depth=5)
        _, eth_asks = sim.engine.book("ETHUSDT", depth=3)
    assert sorted(markets) == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT", "ETH/USDT:USDT"]
    btc = markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["type"], btc["linear"], btc["settle"], btc["active"]) == ("BTCUSDT", "swap", True, "USDT", True)
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.1, 0.001)
    assert markets["ETH/USDT"]["spot"] is True and markets["ETH/USDT"]["precision"]["price"] == 0.01
    assert [tuple(lv[:2]) for lv in book["bids"]] == truth_bids and book["nonce"] is None  # §6.4: ccxt sets none
    assert [tuple(lv[:2]) for lv in spot_book["asks"]] == eth_asks
    assert get_adapter(VENUE).parse_rest_snapshot(raw, symbol="ETHUSDT", ts_recv_ns=0).seq == sim.engine.seq("ETHUSDT")


def test_chaos_does_not_schedule_invisible_losses_on_bybit() -> None:
    # Bybit orderbook.N ids may skip (MONOTONIC_ONLY) and it has no checksum: a dropped or
    # reordered frame leaves no trace a client could act on, so those kinds do not apply.
    for kind in ("drop", "reorder"):
        assert VENUE not in APPLICABLE[kind]
        assert {"binance", "binance_usdm", "okx", "kraken"} <= APPLICABLE[kind]


@pytest.mark.realtime
async def test_feed_syncs_resubscribes_after_1006_and_equals_the_truth() -> None:
    probe = FeedProbe()
    config = dialect_feed_config("bybit-test")
    async with SimExchange(venues=(VENUE,), seed=11, paused=True) as sim:
        server = sim.servers[VENUE]
        symbols = list(server.specs)
        feed = probed_feed(sim, VENUE, probe, config)

        def subscribed() -> bool:
            return all_subscribed(server, symbols)

        def equal_truth() -> bool:
            return books_equal_truth(feed, sim, symbols)

        async with feed:
            await sim.wait_for(subscribed, SAFETY_TIMEOUT_S)
            for sym in symbols:
                await feed.wait_synced(sym, timeout=SAFETY_TIMEOUT_S)
            sim.push(updates=5)
            await probe.until(equal_truth, "books equal the truth")
            assert {s: feed.last_seq(s) for s in symbols} == {s: sim.engine.seq(s) for s in symbols}
            assert {s: feed.driver.sessions[s].stats.resubscribes for s in symbols} == dict.fromkeys(symbols, 0)

            await sim.inject("abort", VENUE)  # a 1006: no id can prove nothing was missed
            sim.push(updates=4)  # moves while the client is away
            await sim.wait_for(lambda: feed.driver.connections == 2 and subscribed(), SAFETY_TIMEOUT_S)
            sim.push(updates=2)
            await probe.until(equal_truth, "rebuilt from the new snapshot and equal to the truth")
            assert {s: feed.last_seq(s) for s in symbols} == {s: sim.engine.seq(s) for s in symbols}
            # the new connection's snapshots rebuilt the books (a resubscribe, never a resume)
            assert all(feed.driver.sessions[s].stats.resumes == 0 for s in symbols)


@pytest.mark.realtime
@pytest.mark.timeout(120)
@pytest.mark.background(chaos_child(venues=[VENUE], seed=3, duration_s=16.0, fault_rate_per_s=1.0))
def test_seeded_chaos_with_every_applicable_fault_kind_is_consistent(background: BackgroundResult) -> None:
    # seed 3: a schedule in which every applicable kind (resent_snapshot and service_restart
    # included) finds a connection to act on (seed 1's bans and refusals left the close/stall
    # kinds nothing; seed 2's stall lands between connections since service_restart joined)
    seed = 3
    # service_restart applies: the checker maps restarted ids back to the engine (truth_seq)
    report = check_chaos_report(background, VENUE, seed, ["corrupt_checksum", "drop", "reorder", "stale_snapshot"])
    assert report["recoveries"]["ws_snapshot"] >= 1, (seed, report["recoveries"])


@pytest.mark.realtime
async def test_service_restart_and_a_resent_snapshot_keep_the_feed_equal_to_the_truth() -> None:
    """§6.2: ``u == 1`` is the service restarting, a full snapshot that overwrites the book,
    then deltas counting from there; §6.1: a snapshot re-sent mid-stream with the same ``u``
    and levels changes nothing. A real ``Feed`` stays equal to the truth through both, with no
    resubscribe and no new connection."""
    probe = FeedProbe()
    config = dialect_feed_config("bybit-restart")
    async with SimExchange(venues=(VENUE,), seed=13, paused=True) as sim:
        server = sim.servers[VENUE]
        symbols = list(server.specs)
        feed = probed_feed(sim, VENUE, probe, config)

        def equal_truth() -> bool:
            return books_equal_truth(feed, sim, symbols)

        async with feed:
            await sim.wait_for(lambda: all_subscribed(server, symbols), SAFETY_TIMEOUT_S)
            for sym in symbols:
                await feed.wait_synced(sym, timeout=SAFETY_TIMEOUT_S)
            sim.push(updates=3)
            await probe.until(equal_truth, "books equal the truth")
            before = {s: feed.last_seq(s) for s in symbols}
            assert before == {s: sim.engine.seq(s) for s in symbols}

            # the next push of each symbol is the restart snapshot (u = 1), then deltas from it
            assert await sim.inject("service_restart", VENUE, count=len(symbols)) == len(symbols)
            sim.push(updates=1)
            await sim.wait_for(lambda: sim.faults_injected["service_restart"] == len(symbols), SAFETY_TIMEOUT_S)
            await probe.until(lambda: equal_truth() and all(feed.last_seq(s) == 1 for s in symbols),
                              "the restart snapshot overwrote every book")
            sim.push(updates=4)
            await probe.until(lambda: equal_truth() and all(
                feed.last_seq(s) == server.wire_u(s, sim.engine.seq(s)) > 1 for s in symbols),
                "deltas after the restart count on from u = 1")
            assert all(server.wire_u(s, sim.engine.seq(s)) < before[s] for s in symbols)  # really restarted
            stats = {s: feed.driver.sessions[s].stats for s in symbols}
            assert {s: st.seq_restarts for s, st in stats.items()} == dict.fromkeys(symbols, 1)
            assert {s: st.resubscribes for s, st in stats.items()} == dict.fromkeys(symbols, 0)

            # a re-sent snapshot after a delta: the same u and levels, recognised and skipped
            stale = {s: st.stale_snapshots for s, st in stats.items()}
            await sim.inject("resent_snapshot", VENUE, count=len(symbols))
            sim.push(updates=3)
            await sim.wait_for(lambda: sim.faults_injected["resent_snapshot"] == len(symbols), SAFETY_TIMEOUT_S)
            await probe.until(lambda: equal_truth() and sum(feed.driver.sessions[s].stats.stale_snapshots
                                                            for s in symbols) == sum(stale.values()) + len(symbols),
                              "each re-sent snapshot seen and skipped")
            assert {s: feed.last_seq(s) for s in symbols} == {s: server.wire_u(s, sim.engine.seq(s)) for s in symbols}
            assert {s: st.resubscribes for s, st in stats.items()} == dict.fromkeys(symbols, 0)
            assert feed.driver.connections == 1
