"""The Coinbase Advanced Trade dialect (exchange-protocols.md §8): its messages have the venue's
envelope and decode through the real adapter, ``subscriptions`` acks every request, a level2
subscribe gets a snapshot then updates that keep a book equal to the truth, ``sequence_num``
counts every message of the connection across channels (heartbeats included), a connection
that does not subscribe in time or goes idle without heartbeats is cut, the frame faults show
through ``sequence_num``, ccxt ``coinbase`` loads its markets and the public product book from
it, and the real ingest (``Feed``, and a seeded chaos run with every applicable fault kind)
stays equal to the simulator's truth.

The real-shaped frames below are the first lines of ``fixtures/coinbase/advanced_trade/level2.jsonl``.
"""

from __future__ import annotations

import asyncio
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
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, NoticeKind, VenueNotice
from bookkeeper.sim import SimExchange
from bookkeeper.sim.engine import KRAKEN_EPOCH, seq_from_timestamp
from bookkeeper.sim.venues import coinbase as dialect

VENUE = "coinbase"
REAL_ACK = json.loads(
    '{"channel":"subscriptions","client_id":"","timestamp":"2026-11-20T10:00:00.000000001Z","sequence_num":0,'
    '"events":[{"subscriptions":{"heartbeats":["heartbeats"],"level2":["BTC-USD","ETH-USD"]}}]}'
)
REAL_L2 = json.loads(
    '{"channel":"l2_data","client_id":"","timestamp":"2026-11-20T10:00:00.100000000Z","sequence_num":1,"events":'
    '[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"1970-01-01T00:00:00Z",'
    '"price_level":"91000.01","new_quantity":"0.5"}]}]}'
)
SAFETY_TIMEOUT_S = 10.0  # a hung test fails instead of hanging; never used to wait for things


async def _subscribe(ws: Any, channel: str, *products: str, kind: str = "subscribe") -> None:
    await ws.send(json.dumps({"type": kind, "product_ids": list(products), "channel": channel}))


async def _wait_closed(ws: Any) -> None:
    async with asyncio.timeout(SAFETY_TIMEOUT_S):
        await ws.wait_closed()


def _seq_of(message: dict[str, Any]) -> int:
    """The engine seq an ``l2_data`` timestamp encodes (nine digits, the last three 0)."""
    stamp = message["timestamp"]
    assert stamp.endswith("000Z") and len(stamp.split(".")[1]) == 10, stamp
    return seq_from_timestamp(stamp[:-4] + "Z")


def _apply(ref: RefBook, message: dict[str, Any]) -> None:
    (event,) = message["events"]
    levels = {side: [(float(u["price_level"]), float(u["new_quantity"])) for u in event["updates"] if u["side"] == side]
              for side in ("bid", "offer")}
    if event["type"] == "snapshot":
        ref.reset(levels["bid"], levels["offer"])
    else:
        ref.apply("bid", levels["bid"])
        ref.apply("ask", levels["offer"])


async def test_messages_have_the_real_envelope_and_keep_a_book_equal_to_the_truth() -> None:
    async with SimExchange(venues=(VENUE,), seed=1, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        await _subscribe(ws, "level2", "BTC-USD")
        ack = await recv_json(ws)
        snapshot = await recv_json(ws)
        ref = RefBook()
        _apply(ref, snapshot)
        assert ref.both() == sim.engine.book("BTC-USD") and _seq_of(snapshot) == sim.engine.seq("BTC-USD")
        updates = []
        for _ in range(5):
            sim.push(updates=6, symbols=["BTC-USD"])
            update = await recv_json(ws)
            _apply(ref, update)
            assert ref.both() == sim.engine.book("BTC-USD"), update["sequence_num"]
            assert _seq_of(update) == sim.engine.seq("BTC-USD")
            updates.append(update)
    assert list(ack) == list(REAL_ACK) and ack["channel"] == "subscriptions" and ack["sequence_num"] == 0
    assert ack["events"] == [{"subscriptions": {"level2": ["BTC-USD"]}}]
    for message in (snapshot, *updates):
        assert list(message) == list(REAL_L2) and message["channel"] == "l2_data" and message["client_id"] == ""
        (event,) = message["events"]
        assert list(event) == ["type", "product_id", "updates"] and event["product_id"] == "BTC-USD"
        for u in event["updates"]:
            assert list(u) == list(REAL_L2["events"][0]["updates"][0])
            assert u["side"] in ("bid", "offer")
            assert len(u["price_level"].split(".")[1]) == 2  # the product's increments
            assert u["new_quantity"] == "0" or len(u["new_quantity"].split(".")[1]) == 8
    assert snapshot["events"][0]["type"] == "snapshot"
    assert {u["event_time"] for u in snapshot["events"][0]["updates"]} == {dialect.SNAPSHOT_EVENT_TIME}
    assert [u["events"][0]["type"] for u in updates] == ["update"] * 5
    assert any(u["new_quantity"] == "0" for m in updates for u in m["events"][0]["updates"])  # deletes
    assert [m["sequence_num"] for m in (ack, snapshot, *updates)] == list(range(7))


async def test_adapter_decodes_the_dialect_and_stamps_the_engine_seq() -> None:
    async with SimExchange(venues=(VENUE,), seed=2, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        await _subscribe(ws, "level2", "ETH-USD", "BTC-USD")
        frames = [await recv_text(ws) for _ in range(3)]  # the ack, then one snapshot per product
        sim.push(updates=4)
        frames += [await recv_text(ws) for _ in range(2)]  # one update per product
        seqs = {s: sim.engine.seq(s) for s in ("BTC-USD", "ETH-USD")}
    decoder = get_adapter(VENUE).new_decoder()
    events = [e for f in frames for e in decoder.decode(f.encode(), 0)]
    books = [e for e in events if isinstance(e, (BookSnapshot, BookDelta))]
    assert not [e for e in events if isinstance(e, VenueNotice)]  # the numbers chain
    assert [(type(e), e.symbol) for e in books] == [(BookSnapshot, "ETH-USD"), (BookSnapshot, "BTC-USD"),
                                                     (BookDelta, "BTC-USD"), (BookDelta, "ETH-USD")]
    epoch_ns = int(KRAKEN_EPOCH.timestamp()) * 1_000_000_000
    for delta in books[2:]:
        assert (delta.ts_exchange_ns - epoch_ns) // 1000 == seqs[delta.symbol]  # what chaos compares at


async def test_sequence_num_counts_every_message_across_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialect, "HEARTBEAT_INTERVAL_S", 0.02)
    async with SimExchange(venues=(VENUE,), seed=3, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        await _subscribe(ws, "heartbeats", "BTC-USD")
        await _subscribe(ws, "level2", "BTC-USD", "ETH-USD")
        messages: list[dict[str, Any]] = []
        pushed = 0
        while sum(m["channel"] == "heartbeats" for m in messages) < 8 or pushed < 4:
            message = await recv_json(ws)
            messages.append(message)
            if message["channel"] == "heartbeats" and pushed < 4:
                sim.push(updates=3)  # market data between heartbeats
                pushed += 1
    channels = [m["channel"] for m in messages]
    assert {"subscriptions", "heartbeats", "l2_data"} == set(channels)
    assert [m["sequence_num"] for m in messages] == list(range(len(messages)))  # one counter for all
    assert messages[0]["events"] == [{"subscriptions": {"heartbeats": ["heartbeats"]}}]
    both = {"heartbeats": ["heartbeats"], "level2": ["BTC-USD", "ETH-USD"]}
    assert messages[1]["events"] == [{"subscriptions": both}]
    beats = [m["events"][0] for m in messages if m["channel"] == "heartbeats"]
    assert [b["heartbeat_counter"] for b in beats] == [str(i) for i in range(1, len(beats) + 1)]  # a string
    assert all(list(b) == ["current_time", "heartbeat_counter"] and " +0000 UTC m=+" in b["current_time"]
               for b in beats)
    decoder = get_adapter(VENUE).new_decoder()
    events = [e for m in messages for e in decoder.decode(json.dumps(m), 0)]
    assert not [e for e in events if isinstance(e, VenueNotice)]
    assert [e.seq for e in events if isinstance(e, Heartbeat)] == [m["sequence_num"] for m in messages
                                                                   if m["channel"] == "heartbeats"]


async def test_a_quiet_connection_is_cut_unless_heartbeats_keep_it_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialect, "IDLE_CLOSE_S", 0.5)
    monkeypatch.setattr(dialect, "HEARTBEAT_INTERVAL_S", 0.02)
    async with SimExchange(venues=(VENUE,), seed=4, paused=True) as sim:
        async with connect(sim.urls(VENUE)["ws"]) as kept, connect(sim.urls(VENUE)["ws"]) as quiet:
            await _subscribe(kept, "heartbeats")
            await _subscribe(kept, "level2", "BTC-USD")
            await _subscribe(quiet, "level2", "BTC-USD")
            for _ in range(2):  # ack and snapshot: then the (paused) market sends nothing
                await recv_json(quiet)
            await _wait_closed(quiet)
            # heartbeats every 20 ms over more than twice the idle limit: still open
            beats = 0
            while beats < 55:
                beats += (await recv_json(kept))["channel"] == "heartbeats"
            sim.push(updates=2, symbols=["BTC-USD"])
            while True:  # the update reaches the connection the heartbeats kept open
                message = await recv_json(kept)
                if message["channel"] == "l2_data" and message["events"][0]["type"] == "update":
                    break
    assert quiet.close_code == 1006  # the TCP connection was cut, no close frame (⚠ §8.5)


async def test_no_subscribe_within_the_deadline_closes_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialect, "SUBSCRIBE_DEADLINE_S", 0.2)
    async with SimExchange(venues=(VENUE,), seed=5, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        await _wait_closed(ws)
    assert ws.close_code == 1006


async def test_frame_faults_show_through_sequence_num() -> None:
    async with SimExchange(venues=(VENUE,), seed=6, paused=True) as sim, connect(sim.urls(VENUE)["ws"]) as ws:
        decoder = get_adapter(VENUE).new_decoder()

        async def decoded() -> tuple[int, list[Any]]:
            text = await recv_text(ws)
            return json.loads(text)["sequence_num"], decoder.decode(text.encode(), 0)

        await _subscribe(ws, "level2", "BTC-USD")
        assert [(await decoded())[0] for _ in range(2)] == [0, 1]  # ack, snapshot
        with sim.drop_frames(1, venue=VENUE):
            sim.push(updates=2)
            await sim.wait_sent(VENUE)
        sim.push(updates=2)
        n, events = await decoded()
        assert n == 3 and events[0].kind is NoticeKind.CONNECTION_GAP and isinstance(events[1], BookDelta)

        with sim.duplicate_frames(1, venue=VENUE):
            sim.push(updates=2)
            first, second = await decoded(), await decoded()
        assert first[0] == second[0] == 4 and isinstance(first[1][0], BookDelta)
        assert [e.kind for e in second[1]] == [NoticeKind.NOTICE]  # the copy is dropped, nothing missed

        with sim.reorder_frames(1, venue=VENUE):
            sim.push(updates=2)
            sim.push(updates=2)
            early, late = await decoded(), await decoded()
        assert (early[0], late[0]) == (6, 5)
        assert early[1][0].kind is NoticeKind.CONNECTION_GAP and isinstance(early[1][1], BookDelta)
        assert [e.kind for e in late[1]] == [NoticeKind.CONNECTION_OUT_OF_ORDER]  # late: never applied
    assert sim.faults_injected["drop"] == sim.faults_injected["duplicate"] == sim.faults_injected["reorder"] == 1


def test_chaos_schedules_drop_and_reorder_on_coinbase() -> None:
    # level2 has no ids and no checksum, but the connection's sequence_num shows a lost or late
    # frame (the adapter declares connection_sequence), so these faults apply
    assert get_adapter(VENUE).capabilities.connection_sequence is True
    for kind in ("drop", "reorder"):
        assert VENUE in APPLICABLE[kind]
        assert "bybit" not in APPLICABLE[kind]
    assert VENUE not in APPLICABLE["corrupt_checksum"] and VENUE not in APPLICABLE["stale_snapshot"]


async def test_control_dialogue_errors_and_unsubscribe() -> None:
    async with SimExchange(venues=(VENUE,), seed=7, paused=True) as sim:
        root = sim.urls(VENUE)["ws"]
        assert root == sim.urls(VENUE)["ws_root"]
        for path in ("/ws", "/user", "/v2"):
            with pytest.raises(InvalidStatus) as info:
                async with connect(root + path):
                    pass
            assert info.value.response.status_code == 404, path
        async with connect(root) as ws:
            replies = []
            for request in ('{"type":"subscribe","product_ids":["BTC-USD"],"channel":"ticker"}',
                            '{"type":"subscribe","product_ids":["NOPE-USD"],"channel":"level2"}',
                            '{"type":"subscribe","channel":"level2"}',
                            '{"type":"ping"}', "not json"):
                await ws.send(request)
                replies.append(await recv_json(ws))
            await _subscribe(ws, "level2", "BTC-USD", "ETH-USD")
            ack = await recv_json(ws)
            for _ in range(2):
                await recv_json(ws)
            await sim.wait_subscribed(VENUE, "ETH-USD")
            await _subscribe(ws, "level2", "ETH-USD", kind="unsubscribe")
            unsub = await recv_json(ws)
            await sim.wait_for(lambda: not sim.servers[VENUE].subscribers("ETH-USD"), SAFETY_TIMEOUT_S)
            sim.push(updates=3)
            update = await recv_json(ws)
    assert [set(r) for r in replies] == [{"type", "message"}] * 5 and {r["type"] for r in replies} == {"error"}
    assert "NOPE-USD" in replies[1]["message"]
    decoder = get_adapter(VENUE).new_decoder()
    assert [e.kind for e in decoder.decode(json.dumps(replies[1]), 0)] == [NoticeKind.ERROR]
    # errors carry no sequence_num: the first numbered message is 0
    assert ack["sequence_num"] == 0 and unsub["sequence_num"] == 3
    assert unsub["events"] == [{"subscriptions": {"level2": ["BTC-USD"]}}]
    assert update["events"][0]["product_id"] == "BTC-USD" and update["sequence_num"] == 4


async def test_rest_product_book_and_rate_limit_bodies() -> None:
    async with SimExchange(venues=(VENUE,), seed=8, paused=True) as sim:
        base = sim.urls(VENUE)["rest"] + "/api/v3/brokerage/market/product_book?product_id=ETH-USD"
        status, _, full = await http_get(base)
        _, _, five = await http_get(base + "&limit=5")
        unknown = await http_get(sim.urls(VENUE)["rest"] + "/api/v3/brokerage/market/product_book?product_id=NOPE")
        await sim.inject("http_429", VENUE, retry_after_s=3)
        limited = await http_get(base)
        bids, asks = sim.engine.book("ETH-USD")
    assert status == 200 and list(full) == ["pricebook", "last", "mid_market", "spread_bps", "spread_absolute"]
    assert list(full["pricebook"]) == ["product_id", "bids", "asks", "time"]  # no sequence id (§8.4)
    snap = get_adapter(VENUE).parse_rest_snapshot(full, symbol="ETH-USD", ts_recv_ns=0)
    assert (snap.bids, snap.asks) == (bids, asks) and snap.seq is None
    assert len(five["pricebook"]["bids"]) == len(five["pricebook"]["asks"]) == 5
    assert unknown[0] == 404 and unknown[2]["error"] == "NOT_FOUND"
    assert limited[0] == 429 and limited[1]["Retry-After"] == "3" and limited[2]["error"] == "rate_limit_exceeded"


async def test_ccxt_coinbase_loads_the_served_products_and_their_book() -> None:
    async with SimExchange(venues=(VENUE,), seed=9, paused=True) as sim:
        exchange = ccxt_async.coinbase(sim.ccxt_config(VENUE))
        try:
            markets = await exchange.load_markets()
            book = await exchange.fetch_order_book("BTC/USD", limit=5)
        finally:
            await exchange.close()
        truth_bids, truth_asks = sim.engine.book("BTC-USD", depth=5)
    assert sorted(markets) == ["BTC/USD", "ETH/USD"]
    btc = markets["BTC/USD"]
    assert (btc["id"], btc["type"], btc["spot"], btc["active"]) == ("BTC-USD", "spot", True, True)
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 1e-08)
    assert [tuple(lv[:2]) for lv in book["bids"]] == truth_bids and book["nonce"] is None  # §8.4: no id
    assert [tuple(lv[:2]) for lv in book["asks"]] == truth_asks


@pytest.mark.realtime
async def test_feed_resubscribes_after_a_lost_frame_and_after_1006() -> None:
    probe = FeedProbe()
    config = dialect_feed_config("coinbase-test")
    async with SimExchange(venues=(VENUE,), seed=11, paused=True) as sim:
        server = sim.servers[VENUE]
        symbols = list(server.specs)
        feed = probed_feed(sim, VENUE, probe, config)

        def equal_truth() -> bool:
            return books_equal_truth(feed, sim, symbols)

        def resubscribes() -> int:
            return sum(feed.driver.sessions[s].stats.resubscribes for s in symbols)

        async with feed:
            await sim.wait_for(lambda: all_subscribed(server, symbols), SAFETY_TIMEOUT_S)
            for sym in symbols:
                await feed.wait_synced(sym, timeout=SAFETY_TIMEOUT_S)
            sim.push(updates=5)
            await probe.until(equal_truth, "books equal the truth")
            assert resubscribes() == 0

            # a lost l2_data frame: no book id shows it, the connection's sequence_num does
            with sim.drop_frames(1, venue=VENUE):
                sim.push(updates=3, symbols=["BTC-USD"])
                await sim.wait_sent(VENUE)
            sim.push(updates=2)
            await probe.until(lambda: resubscribes() >= 2 and equal_truth(), "resubscribed after the lost frame")
            assert feed.driver.connections == 1  # recovered on the same connection
            assert all(feed.driver.sessions[s].stats.gaps >= 1 for s in symbols)  # every book on it

            await sim.inject("abort", VENUE)  # a 1006: a new connection, a new count
            sim.push(updates=4)
            await sim.wait_for(lambda: feed.driver.connections == 2 and all_subscribed(server, symbols),
                               SAFETY_TIMEOUT_S)
            sim.push(updates=2)
            await probe.until(equal_truth, "rebuilt from the new connection's snapshots")
            assert all(feed.driver.sessions[s].stats.resumes == 0 for s in symbols)


@pytest.mark.realtime
@pytest.mark.timeout(120)
@pytest.mark.background(chaos_child(venues=[VENUE], seed=1, duration_s=16.0, fault_rate_per_s=1.0))
def test_seeded_chaos_with_every_applicable_fault_kind_is_consistent(background: BackgroundResult) -> None:
    seed = 1
    report = check_chaos_report(background, VENUE, seed,
                                ["corrupt_checksum", "resent_snapshot", "service_restart", "stale_snapshot"])
    assert report["recoveries"]["ws_snapshot"] >= 1 and report["gaps"] >= 1, (seed, report["recoveries"])
