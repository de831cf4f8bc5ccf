"""The Bybit spot full-book dialect (``bybit_spot``, exchange-protocols.md §6.1, §6.2, §6.4):
``orderbook.full`` messages and the REST ``full_orderbook`` body have the venue's shape, ``u``
goes up by one per message and ``seq`` is the engine's, the REST book sits exactly at a message
(so the splice can match it), a service restart sends ``u = 1``, and the real ingest (``Feed``
through real ccxt, and a seeded chaos run with every applicable fault kind) stays equal to the
simulator's truth across drops and restarts."""

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
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bookkeeper.apps.chaos import APPLICABLE
from bookkeeper.events import BookDelta
from bookkeeper.sim import SimExchange
from bookkeeper.sim.venues import bybit as bybit_dialect

VENUE = "bybit_spot"
SAFETY_TIMEOUT_S = 10.0  # a hung test fails instead of hanging; never used to wait for things
SYM = "MNTUSDT"
FULL_REST = "/v5/market/full_orderbook?category=spot&symbol="


async def _subscribe(ws: Any, *topics: str, req_id: str = "1") -> Any:
    await ws.send(json.dumps({"req_id": req_id, "op": "subscribe", "args": list(topics)}))
    return await recv_json(ws)


def _apply(ref: RefBook, frame: dict[str, Any]) -> None:
    for side, key in (("bid", "b"), ("ask", "a")):
        ref.apply(side, [(float(p), float(q)) for p, q in frame["data"][key]])


async def _rest(sim: SimExchange, symbol: str = SYM) -> dict[str, Any]:
    status, _, body = await http_get(sim.urls(VENUE)["rest"] + FULL_REST + symbol)
    assert status == 200
    result: dict[str, Any] = body["result"]
    return result


async def test_messages_and_rest_have_the_venues_shape_and_ids() -> None:
    async with SimExchange(venues=(VENUE,), seed=1, paused=True) as sim:
        async with connect(sim.urls(VENUE)["ws"]) as ws:
            ack = await _subscribe(ws, f"orderbook.full.{SYM}", req_id="a")
            rest = await _rest(sim)  # no snapshot on subscribe: the book starts from REST
            ref = RefBook()
            ref.reset([(float(p), float(q)) for p, q in rest["b"]], [(float(p), float(q)) for p, q in rest["a"]])
            frames = []
            for n in (3, 1, 5):
                sim.push(updates=n, symbols=[SYM])
                frames.append(await recv_json(ws))
                _apply(ref, frames[-1])
                assert ref.both() == sim.engine.book(SYM)  # the whole book, every level that changed
            after = await _rest(sim)
        _, _, body = await http_get(sim.urls(VENUE)["rest"] + FULL_REST + SYM)
    assert ack == {"success": True, "ret_msg": "subscribe", "conn_id": ack["conn_id"], "req_id": "a", "op": "subscribe"}
    assert list(body) == ["retCode", "retMsg", "result", "retExtInfo", "time"] and body["retCode"] == 0
    assert list(rest) == ["s", "a", "b", "ts", "u", "seq", "cts"]  # the key order of the venue's example
    for frame in frames:
        assert list(frame) == ["topic", "ts", "type", "data", "cts"] and frame["type"] == "delta"
        assert list(frame["data"]) == ["s", "b", "a", "u", "seq"] and frame["topic"] == f"orderbook.full.{SYM}"
        for _, qty in frame["data"]["b"] + frame["data"]["a"]:
            assert qty == "0" or len(qty.split(".")[1]) == 2  # MNTUSDT step 0.01; a delete is a bare "0"
    us = [f["data"]["u"] for f in frames]
    assert us == [rest["u"] + 1, rest["u"] + 2, rest["u"] + 3]  # one id per message (§6.2)
    seqs = [f["data"]["seq"] for f in frames]
    assert seqs == sorted(seqs) and seqs[-1] == bybit_dialect.cross_seq(sim.engine.seq(SYM))
    assert (after["u"], after["seq"]) == (us[-1], seqs[-1])  # REST is at the last message
    deltas = [get_adapter(VENUE).new_decoder().decode(json.dumps(f), 0)[0] for f in frames]
    assert [(d.first_seq, d.last_seq, d.cross_seq) for d in deltas if isinstance(d, BookDelta)] == list(
        zip(us, us, seqs))


async def test_u_counts_messages_whether_or_not_anyone_listens() -> None:
    async with SimExchange(venues=(VENUE,), seed=2, paused=True) as sim:
        first = (await _rest(sim))["u"]
        sim.push(updates=2, symbols=[SYM])
        sim.push(updates=0, symbols=[SYM])  # nothing changed: no message
        sim.push(updates=4, symbols=[SYM])
        rest = await _rest(sim)
    assert rest["u"] == first + 2
    assert rest["seq"] == bybit_dialect.cross_seq(sim.engine.seq(SYM))


async def test_a_stale_rest_answer_is_an_older_message() -> None:
    async with SimExchange(venues=(VENUE,), seed=3, paused=True) as sim:
        start = (await _rest(sim))["u"]
        marks = {}
        for _ in range(12):
            sim.push(updates=40, symbols=[SYM])
            marks[(await _rest(sim))["u"]] = sim.engine.seq(SYM)
        await sim.inject("stale_snapshot", VENUE, lag=100)
        stale = await _rest(sim)
        assert sim.faults_injected["stale_snapshot"] == 1
        truth_bids, truth_asks = sim.engine.book_at(SYM, marks[stale["u"]])
    assert start < stale["u"] < start + 12
    assert stale["seq"] == bybit_dialect.cross_seq(marks[stale["u"]])  # a real message's (u, seq) pair
    assert sim.engine.seq(SYM) - marks[stale["u"]] >= 100
    assert [(float(p), float(q)) for p, q in stale["b"]] == truth_bids
    assert [(float(p), float(q)) for p, q in stale["a"]] == truth_asks


async def test_service_restart_sends_u_1_and_the_rest_book_follows() -> None:
    async with SimExchange(venues=(VENUE,), seed=4, paused=True) as sim:
        server = sim.servers[VENUE]
        async with connect(sim.urls(VENUE)["ws"]) as ws:
            await _subscribe(ws, f"orderbook.full.{SYM}")
            sim.push(updates=2, symbols=[SYM])
            before = await recv_json(ws)
            await sim.inject("service_restart", VENUE)
            sim.push(updates=2, symbols=[SYM])
            restart = await recv_json(ws)
            sim.push(updates=3, symbols=[SYM])
            after = await recv_json(ws)
            rest = await _rest(sim)
    assert sim.faults_injected["service_restart"] == 1
    assert before["data"]["u"] > 1 and (restart["data"]["u"], after["data"]["u"]) == (1, 2)
    assert before["data"]["seq"] < restart["data"]["seq"] < after["data"]["seq"]  # seq never restarts
    assert restart["data"]["b"] or restart["data"]["a"]  # the interval's changes, like any delta
    assert (rest["u"], rest["seq"]) == (2, after["data"]["seq"])
    assert server.truth_seq(SYM, 2, cross_seq=rest["seq"]) == sim.engine.seq(SYM)
    assert server.truth_seq(SYM, 2) is None  # u alone does not say where the book is


async def test_control_dialogue_and_refusals() -> None:
    async with SimExchange(venues=(VENUE,), seed=5, paused=True) as sim:
        root = sim.urls(VENUE)["ws_root"]
        assert root.endswith("/v5/public/spot") and sim.urls(VENUE)["ws"] == root
        with pytest.raises(InvalidStatus) as info:
            async with connect(root.removesuffix("/v5/public/spot") + "/v5/public/linear"):
                pass
        assert info.value.response.status_code == 404
        async with connect(root) as ws:
            n_book = await _subscribe(ws, f"orderbook.50.{SYM}", req_id="n")
            unknown = await _subscribe(ws, "orderbook.full.NOPE", req_id="u")
            await ws.send('{"op":"ping"}')
            pong = await recv_json(ws)
        base = sim.urls(VENUE)["rest"]
        linear = await http_get(base + "/v5/market/full_orderbook?category=linear&symbol=" + SYM)
        nope = await http_get(base + FULL_REST + "NOPE")
    assert n_book["success"] is False and unknown["success"] is False and "NOPE" in unknown["ret_msg"]
    assert pong["ret_msg"] == "pong"
    assert linear[2]["retCode"] == nope[2]["retCode"] == 10001  # the full book is live on spot only


async def test_ccxt_implicit_full_orderbook_call_reads_both_ids() -> None:
    async with SimExchange(venues=(VENUE,), seed=6, paused=True) as sim:
        sim.push(updates=3)
        adapter = get_adapter(VENUE)
        call = adapter.rest_snapshot_call(SYM)
        exchange = getattr(ccxt_async, call.ccxt_id)(sim.ccxt_config(VENUE))
        try:
            raw = await getattr(exchange, call.method)(dict(call.params))
        finally:
            await exchange.close()
        snap = adapter.parse_rest_snapshot(raw, symbol=SYM, ts_recv_ns=0)
        server = sim.servers[VENUE]
    assert (snap.seq, snap.cross_seq) == (server.last_u(SYM), bybit_dialect.cross_seq(sim.engine.seq(SYM)))
    assert (snap.bids, snap.asks) == sim.engine.book(SYM)


async def test_feed_syncs_from_rest_and_resyncs_after_a_drop_and_a_restart() -> None:
    probe = FeedProbe()
    async with SimExchange(venues=(VENUE,), seed=7, paused=True) as sim:
        server = sim.servers[VENUE]
        symbols = list(server.specs)
        feed = probed_feed(sim, VENUE, probe, dialect_feed_config("bybit-spot-test"))

        def equal_truth() -> bool:
            return books_equal_truth(feed, sim, symbols) and all(
                feed.last_seq(s) == server.last_u(s) for s in symbols)

        async with feed:
            await sim.wait_for(lambda: all_subscribed(server, symbols), SAFETY_TIMEOUT_S)
            sim.push(updates=2)  # the first delta of each symbol makes the feed fetch its REST book
            await probe.until(lambda: all(feed.state(s).value == "synced" for s in symbols), "synced from REST")
            sim.push(updates=2)
            await probe.until(equal_truth, "books equal the truth")
            stats = {s: feed.driver.sessions[s].stats for s in symbols}
            assert {s: st.rest_snapshots for s, st in stats.items()} == dict.fromkeys(symbols, 0)

            with sim.drop_frames(1, venue=VENUE):  # one message lost: u skips, a gap
                sim.push(updates=2, symbols=[SYM])
                await sim.wait_for(lambda: sim.faults_injected["drop"] == 1, SAFETY_TIMEOUT_S)
            sim.push(updates=2, symbols=[SYM])
            await probe.until(lambda: stats[SYM].gaps == 1, "the skipped u is a gap")
            sim.push(updates=1)  # the first delta after the REST answer bridges it
            await probe.until(equal_truth, "resynced from REST after the gap")

            await sim.inject("service_restart", VENUE)
            sim.push(updates=2, symbols=[SYM])  # u = 1
            await probe.until(lambda: stats[SYM].seq_restarts == 1, "u = 1 seen as restarted ids")
            sim.push(updates=2)
            await probe.until(lambda: equal_truth() and server.last_u(SYM) == 2, "resynced after the restart")
            sim.push(updates=3)
            await probe.until(equal_truth, "deltas after the restart apply")
    assert stats[SYM].gaps == 1 and stats[SYM].rest_snapshots == 2  # one REST book per resync
    assert stats[SYM].seq_restarts == 1 and feed.driver.sessions[SYM].last_cross_seq == bybit_dialect.cross_seq(
        sim.engine.seq(SYM))
    other = next(s for s in symbols if s != SYM)
    assert (stats[other].gaps, stats[other].seq_restarts, stats[other].rest_snapshots) == (0, 0, 0)


def test_chaos_schedules_losses_and_restarts_on_the_full_book() -> None:
    # u is contiguous (a lost message is visible) and the REST book is spliced: drop, reorder,
    # stale_snapshot and service_restart all apply; nothing re-sends a WS snapshot
    for kind in ("drop", "reorder", "stale_snapshot", "service_restart"):
        assert VENUE in APPLICABLE[kind], kind
    assert VENUE not in APPLICABLE["resent_snapshot"] and VENUE not in APPLICABLE["corrupt_checksum"]


@pytest.mark.realtime
@pytest.mark.timeout(120)
@pytest.mark.background(chaos_child(venues=[VENUE], seed=3, duration_s=16.0, fault_rate_per_s=1.3))
def test_seeded_chaos_with_every_applicable_fault_kind_is_consistent(background: BackgroundResult) -> None:
    # rate 1.3 over the 10.2 s fault window: 13 faults, one of each applicable kind
    seed = 3
    report = check_chaos_report(background, VENUE, seed, ["corrupt_checksum", "resent_snapshot"])
    assert report["recoveries"]["rest_snapshot"] >= 3 and report["gaps"] >= 1, (seed, report["recoveries"])
