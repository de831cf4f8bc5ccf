"""Kraken spot adapter: the real WS v1 capture reproduces PROVENANCE's counts; republished
levels, hand-made WS v2 frames (checksums per §7.3 / §13.2), faults and bad input."""

from __future__ import annotations

import orjson
import pytest
from _recorded import REAL, drive, inserted, records, replay_records, without

from bookkeeper.actions import AlertKind, SyncState
from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import ChecksumKind, SequenceModel
from bookkeeper.checksum import kraken_checksum
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, SnapshotSource, Subscribed, VenueNotice
from bookkeeper.io.recording import Record, RecordKind
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession

KRAKEN = get_adapter("kraken")
CAPTURE = "kraken/kraken_spot_v1_book1000_10pairs_2021-04-17.cfcap.txt.gz"


def decode(frame: bytes | str, dec=None) -> list:
    return (dec or KRAKEN.new_decoder()).decode(frame, 9)


# ------------------------------------------------------------------ v1: the real capture
def test_real_capture_reproduces_provenance_counts():
    # PROVENANCE: "checksums reproduced 4269/4269 (bad 0); snapshots 10, updates 4269; crossed books 0"
    j = replay(KRAKEN, [REAL / CAPTURE]).as_json()
    assert (j["messages"], j["instruments"], j["snapshots"], j["deltas_applied"]) == (4321, 10, 10, 4269)
    assert (j["checksums_verified"], j["checksum_mismatches"]) == (4269, 0)
    assert (j["gaps"], j["crossed"], j["parse_errors"]) == (0, 0, 0)
    assert j["synced_instruments"] == 10 and j["ok"] is True


def test_golden_v1_frames():
    recs = records(CAPTURE)
    assert recs[24].data == (b'[992,{"b":[["354.15000000","5.00000000","1618678133.365913"]],"c":"2583817756"},'
                             b'"book-1000","XMR/USD"]')
    assert decode(recs[24].data) == [BookDelta(
        symbol="XMR/USD", bids=[(354.15, 5.0)], asks=[], checksum=2583817756,
        bids_raw=[("354.15000000", "5.00000000")], asks_raw=[],
        ts_exchange_ns=int(1618678133.365913 * 1e9), ts_recv_ns=9)]
    two = recs[1429].data  # both sides in one frame, checksum in the last object
    assert two.startswith(b'[1920,{"a":') and b'},{"b":' in two
    assert decode(two) == [BookDelta(
        symbol="SC/EUR", bids=[(0.04299, 0.0)], asks=[(0.04299, 364630.28272081)], checksum=4105471083,
        bids_raw=[("0.042990", "0.00000000")], asks_raw=[("0.042990", "364630.28272081")],
        ts_exchange_ns=int(1618678145.920708 * 1e9), ts_recv_ns=9)]
    status = next(r.data for r in recs if b"subscriptionStatus" in r.data)
    assert decode(status) == [Subscribed(symbol="WAVES/EUR", channel="book-1000", depth=1000)]
    assert decode(b'{"event":"heartbeat"}') == [Heartbeat()]
    assert decode(b'{"connectionID":1,"event":"systemStatus","status":"online","version":"1.8.3"}') == []
    assert decode(b'{"errorMessage":"Currency pair not supported","event":"subscriptionStatus","pair":"X/Y",'
                  b'"status":"error","subscription":{"name":"book"}}') == [
        VenueNotice(kind="error", message="Currency pair not supported", symbol="X/Y")]
    snap = next(r.data for r in recs if b'"as":' in r.data)
    (ev,) = decode(snap)
    assert type(ev) is BookSnapshot and ev.depth == 1000 and ev.checksum is None and ev.source is SnapshotSource.WS
    assert (ev.symbol, len(ev.bids), len(ev.asks), len(ev.bids_raw)) == ("ADA/XBT", 707, 841, 707)
    assert (ev.bids[0], ev.bids_raw[0]) == ((2.289e-05, 31.75709827), ("0.000022890", "31.75709827"))
    assert (ev.asks[0], ev.asks_raw[0]) == ((2.29e-05, 13355.87450757), ("0.000022900", "13355.87450757"))


def test_republished_levels_are_applied_like_any_other(tmp_path):
    """Mark every update level as republished (``"r"``): the counts must not move."""
    recs = records(CAPTURE)
    out = []
    for r in recs:
        if r.kind is RecordKind.RECV and r.data.startswith(b"[") and b'"c":' in r.data:
            arr = orjson.loads(r.data)
            for part in arr[1:-2]:
                for key in ("a", "b"):
                    for row in part.get(key, []):
                        row.append("r")
            r = Record(r.ts_recv_ns, r.kind, orjson.dumps(arr), r.url, r.source)
        out.append(r)
    assert out[24].data.endswith(b'"1618678133.365913","r"]],"c":"2583817756"},"book-1000","XMR/USD"]')
    j = replay_records(tmp_path, "kraken", out).as_json()
    assert (j["snapshots"], j["deltas_applied"], j["checksums_verified"]) == (10, 4269, 4269)
    assert (j["checksum_mismatches"], j["gaps"], j["crossed"], j["parse_errors"]) == (0, 0, 0, 0)


def test_dropping_a_top10_delete_surfaces_as_a_mismatch_at_the_next_update():
    recs = records(CAPTURE)
    base = drive("kraken", recs)
    for idx, d in base.applied[300:]:
        b, a = drive("kraken", recs, stop=idx).book(d.symbol)
        top_b, top_a = {p for p, _ in b[:10]}, {p for p, _ in a[:10]}
        if any(s == 0 and p in top_b for p, s in d.bids) or any(s == 0 and p in top_a for p, s in d.asks):
            break
    mine = [i for i, x in base.applied if x.symbol == d.symbol]
    nxt = next(i for i in mine if i > idx)
    run = drive("kraken", without(recs, idx))
    alerts = [x for x in run.alerts if x.kind is AlertKind.CHECKSUM_MISMATCH]
    assert len(alerts) >= 1 and alerts[0].symbol == d.symbol and alerts[0].seq is None
    s = run.sessions[d.symbol]
    assert s.stats.checksum_mismatches == 1 and s.state is SyncState.RECOVERING
    assert s.stats.checksums_verified == sum(1 for i in mine if i < nxt and i != idx)


def test_corrupting_one_volume_is_a_mismatch_at_that_frame():
    recs = records(CAPTURE)
    base = drive("kraken", recs)
    for idx, d in base.applied[200:]:  # the first update from the 201st on that sets a top-10 bid
        if d.bids and d.bids[0][1] > 0:
            top = [p for p, _ in drive("kraken", recs, stop=idx).book(d.symbol)[0][:10]]
            if d.bids[0][0] >= top[-1]:
                break
    arr = orjson.loads(recs[idx].data)
    part = next(p for p in arr[1:-2] if "b" in p)
    part["b"][0][1] = f"{float(part['b'][0][1]) + 0.5:.8f}"
    bad = recs[:idx] + [Record(recs[idx].ts_recv_ns, RecordKind.RECV, orjson.dumps(arr))] + recs[idx + 1:]
    s = drive("kraken", bad).sessions[d.symbol]
    assert s.stats.checksum_mismatches == 1
    assert s.stats.checksums_verified == sum(1 for i, x in base.applied if x.symbol == d.symbol and i < idx)


# ------------------------------------------------------------------ v2 (hand-made, §7.3 / §13.2)
INSTRUMENT = (b'{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/USD",'
              b'"base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,'
              b'"price_precision":1,"price_increment":0.1,"cost_precision":5}]}}')
ACK = (b'{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},'
       b'"success":true,"time_in":"2023-10-06T17:35:55.000000Z","time_out":"2023-10-06T17:35:55.000100Z"}')
# §13.2's levels, written as JSON numbers the way a float encoder would (trailing zeros lost)
SNAPSHOT = (b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD",'
            b'"bids":[{"price":45283.5,"qty":0.5},{"price":45283.4,"qty":0.04}],'
            b'"asks":[{"price":45285.2,"qty":0.001},{"price":45286.4,"qty":1.54582015},{"price":45286.6,"qty":1.0}],'
            b'"checksum":1982867381,"timestamp":"2023-10-06T17:35:55.440295Z"}]}')


def v2_update(bids, asks, checksum) -> bytes:
    return orjson.dumps({"channel": "book", "type": "update", "data": [{
        "symbol": "BTC/USD", "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks], "checksum": checksum,
        "timestamp": "2023-10-06T17:35:56.000001Z"}]})


def feed(session: BookSession, dec, *frames: bytes) -> list:
    out = []
    for f in frames:
        for ev in dec.decode(f):
            out.append(ev)
            session.handle(ev)
    return out


def test_v2_golden_snapshot_uses_the_instrument_precision():
    dec = KRAKEN.new_decoder()
    assert dec.decode(INSTRUMENT) == []
    assert dec.decode(ACK) == [Subscribed(symbol="BTC/USD", channel="book", depth=10)]
    assert dec.decode(SNAPSHOT, 9) == [BookSnapshot(
        symbol="BTC/USD", bids=[(45283.5, 0.5), (45283.4, 0.04)],
        asks=[(45285.2, 0.001), (45286.4, 1.54582015), (45286.6, 1.0)], checksum=1982867381,
        bids_raw=[("45283.5", "0.50000000"), ("45283.4", "0.04000000")],
        asks_raw=[("45285.2", "0.00100000"), ("45286.4", "1.54582015"), ("45286.6", "1.00000000")],
        depth=10, source=SnapshotSource.WS, ts_exchange_ns=1696613755_440295_000)]
    assert dec.precisions == {"BTC/USD": (1, 8)}


def test_v2_snapshot_and_updates_verify_the_13_2_vector_and_later_checksums():
    dec = KRAKEN.new_decoder()
    s = BookSession("BTC/USD", KRAKEN.capabilities)
    feed(s, dec, INSTRUMENT, ACK, SNAPSHOT)
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (1, 0)
    # delete the best ask, add a bid: checksum per §7.3 over the expected strings
    want = kraken_checksum([("45286.4", "1.54582015"), ("45286.6", "1.00000000")],
                           [("45284.0", "2.25000000"), ("45283.5", "0.50000000"), ("45283.4", "0.04000000")])
    feed(s, dec, v2_update([(45284.0, 2.25)], [(45285.2, 0.0)], want))
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (2, 0)
    assert s.book.best_ask() == (45286.4, 1.54582015) and s.book.best_bid() == (45284.0, 2.25)
    # a wrong checksum is a mismatch
    feed(s, dec, v2_update([(45284.0, 2.5)], [], want))
    assert s.stats.checksum_mismatches == 1 and s.state is SyncState.RECOVERING


def test_v2_precision_from_the_constructor_and_fallback_to_the_sent_text():
    s = BookSession("BTC/USD", KRAKEN.capabilities)
    feed(s, KRAKEN.new_decoder(precisions={"BTC/USD": (1, 8)}), SNAPSHOT)
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (1, 0)
    # unknown precision, short numbers: the text cannot be rebuilt -> mismatch (never silently ok)
    s = BookSession("BTC/USD", KRAKEN.capabilities)
    feed(s, KRAKEN.new_decoder(), SNAPSHOT)
    assert s.stats.checksum_mismatches == 1
    # unknown precision, zero-padded numbers: the digits as sent are kept exactly
    padded = (SNAPSHOT.replace(b'"qty":0.5}', b'"qty":0.50000000}').replace(b"0.04}", b"0.04000000}")
              .replace(b"0.001}", b"0.00100000}").replace(b'"qty":1.0}', b'"qty":1.00000000}'))
    s = BookSession("BTC/USD", KRAKEN.capabilities)
    feed(s, KRAKEN.new_decoder(), padded)
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (1, 0)


def test_v2_book_is_truncated_to_the_subscribed_depth():
    dec = KRAKEN.new_decoder()
    bids = [(100.0 - i, 1.0 + i) for i in range(12)]
    asks = [(101.0 + i, 2.0) for i in range(12)]
    fmt = lambda p, q: (f"{p:.1f}", f"{q:.8f}")  # noqa: E731
    cs = kraken_checksum([fmt(*a) for a in asks[:10]], [fmt(*b) for b in bids[:10]])
    snap = orjson.dumps({"channel": "book", "type": "snapshot", "data": [{
        "symbol": "BTC/USD", "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks], "checksum": cs, "timestamp": "2023-10-06T17:35:55Z"}]})
    s = BookSession("BTC/USD", KRAKEN.capabilities)
    feed(s, dec, INSTRUMENT, ACK, snap)
    assert (s.book.bid_count, s.book.ask_count) == (10, 10)
    assert s.stats.checksums_verified == 1
    # a better bid pushes the 10th out: no qty 0 is sent for it (§7.1)
    new_bids = [(100.5, 3.0)] + bids[:9]
    cs2 = kraken_checksum([fmt(*a) for a in asks[:10]], [fmt(*b) for b in new_bids])
    feed(s, dec, v2_update([(100.5, 3.0)], [], cs2))
    assert s.book.bid_count == 10 and s.book.bids()[-1] == bids[8]
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (2, 0)


def test_v2_control_frames():
    assert decode(b'{"channel":"heartbeat"}') == [Heartbeat()]
    assert decode(b'{"method":"pong","req_id":1,"time_in":"x","time_out":"y"}') == []
    assert decode(b'{"channel":"status","type":"update","data":[{"api_version":"v2","system":"online"}]}') == []
    assert decode(b'{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":1}]}') == []
    assert decode(b'{"method":"subscribe","error":"Currency pair not supported","success":false,'
                  b'"symbol":"X/Y","req_id":1}') == [VenueNotice(kind="error", message="Currency pair not supported")]


# ------------------------------------------------------------------ bad input
V1 = b'[992,{"b":[%s],"c":"1"},"book-1000","XMR/USD"]'
V2 = b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[%s],"asks":[],"checksum":1}]}'


@pytest.mark.parametrize(
    "frame",
    [
        b'[992,{"b":[["354.15000000","5.0',
        b"42",
        V1 % b'[354.15,"5.0","1"]',
        V1 % b'["354.15","NaN","1"]',
        V1 % b'["354.15","-5.0","1"]',
        V1 % b'["0","5.0","1"]',
        V1 % b'["354.15","1e20","1"]',
        V1 % b'["354.15"]',
        b'[992,{"b":[["354.15","5.0","1"]],"c":"abc"},"book-1000","XMR/USD"]',
        b'[992,{"b":[["354.15","5.0","1"]],"c":"99999999999"},"book-1000","XMR/USD"]',
        b'[992,{"b":[]},"book-x","XMR/USD"]',
        b'[992,"x","book-1000","XMR/USD"]',
        b'[992,{},"book-1000","XMR/USD"]',
        V2 % b'{"price":"45283.5","qty":0.5}',
        V2 % b'{"price":45283.5,"qty":NaN}',
        V2 % b'{"price":45283.5,"qty":Infinity}',
        V2 % b'{"price":45283.5,"qty":-0.5}',
        V2 % b'{"price":45283.5,"qty":1e400}',
        V2 % b'{"price":0,"qty":1}',
        V2 % b'{"price":45283.5,"qty":true}',
        V2 % b'{"price":45283.5}',
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"checksum":-1}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"asks":[],"timestamp":"yesterday"}]}',
        b'{"channel":"book","type":"refresh","data":[]}',
        b'{"channel":"book","type":"update","data":[{"bids":[]}]}',
        b'{"channel":"instrument","type":"snapshot","data":[]}',
    ],
)
def test_bad_input_raises_adapter_error(frame):
    with pytest.raises(AdapterError) as info:
        decode(frame)
    assert info.value.exchange == "kraken"


def test_unknown_channels_yield_nothing():
    assert decode(b'[321,[["5541.2","0.0100","1534614057.3","s","l",""]],"trade","XBT/USD"]') == []
    assert decode(b'[0,["5698.4","5700.0","1542057299.5","1.0","2.0"],"spread","XBT/USD"]') == []
    assert decode(b'{"event":"pong","reqid":42}') == []


def test_bad_frame_is_counted_and_leaves_the_book_unchanged(tmp_path):
    recs = records(CAPTURE)
    base = drive("kraken", recs)
    idx, d = base.applied[700]
    bad = (V1 % b'["354.15","-5.0","1"]').replace(b"XMR/USD", d.symbol.encode())
    before = drive("kraken", recs, stop=idx)
    after = drive("kraken", inserted(recs, idx, Record(0, RecordKind.RECV, bad)), stop=idx + 1)
    assert after.parse_errors == 1 and after.book(d.symbol) == before.book(d.symbol)
    j = replay_records(tmp_path, "kraken", inserted(recs, idx, Record(0, RecordKind.RECV, bad))).as_json()
    assert j["parse_errors"] == 1


# ------------------------------------------------------------------ REST, capabilities, live dialogue
def test_rest_depth_snapshot():
    body = {"error": [], "result": {"XXBTZUSD": {"asks": [["30000.10000", "1.000", 1616663113]],
                                                 "bids": [["29999.90000", "2.500", 1616663112]]}}}
    snap = KRAKEN.parse_rest_snapshot(body)
    assert snap == BookSnapshot(symbol="XXBTZUSD", bids=[(29999.9, 2.5)], asks=[(30000.1, 1.0)],
                                bids_raw=[("29999.90000", "2.500")], asks_raw=[("30000.10000", "1.000")],
                                seq=None, source=SnapshotSource.REST)
    assert KRAKEN.parse_rest_snapshot(orjson.dumps(body), symbol="XBT/USD").symbol == "XBT/USD"
    with pytest.raises(AdapterError):
        KRAKEN.parse_rest_snapshot({"error": ["EQuery:Unknown asset pair"], "result": {}})


def test_capabilities_and_live_spec():
    caps = KRAKEN.capabilities
    assert KRAKEN.name == "kraken"
    assert caps.sequence_model is SequenceModel.NONE and caps.checksum is ChecksumKind.KRAKEN_CRC32_10
    assert caps.truncate_to_depth and caps.ws_snapshot_on_subscribe and not caps.rest_snapshot
    assert KRAKEN.ws_url("wss://ws.kraken.com", ["BTC/USD"]) == "wss://ws.kraken.com/v2"
    assert [orjson.loads(m) for m in KRAKEN.subscribe_messages(["BTC/USD", "ETH/USD"], depth=25)] == [
        {"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}},
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"], "depth": 25,
                                           "snapshot": True}}]
    assert orjson.loads(KRAKEN.unsubscribe_messages(["BTC/USD"])[0]) == {
        "method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}}
    assert orjson.loads(KRAKEN.ping_message()) == {"method": "ping"}
