"""Coinbase adapter: the legacy Pro capture replays with PROVENANCE's exact counts; Advanced
Trade frames (hand-written: no public capture exists) decode, and the per-connection
``sequence_num`` check reports skips; malformed frames; golden frames; REST books."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, SnapshotSource, Subscribed, Trade, VenueNotice
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession
from bookkeeper.types import TradeSide

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "fixtures/real/coinbase/coinbase_pro_legacy_level2_2021-04-17.cfcap.txt.gz"
AT = ROOT / "fixtures/coinbase/advanced_trade/level2.jsonl"

ADAPTER = get_adapter("coinbase")


def at_lines() -> list[str]:
    return AT.read_text().splitlines()


def test_capabilities_declare_no_ids_and_ws_snapshots():
    caps = ADAPTER.capabilities
    assert caps.sequence_model is SequenceModel.NONE
    assert caps.ws_snapshot_on_subscribe is True
    assert caps.rest_snapshot is False


def test_legacy_capture_reproduces_provenance_counts():
    # PROVENANCE: "snapshots 10, l2updates 9719, crossed books 0" (one BookDelta per l2update)
    j = replay(ADAPTER, [LEGACY]).as_json()
    assert j["messages"] == 9946
    assert j["instruments"] == 10
    assert j["snapshots"] == 10
    assert j["deltas_applied"] == 9719
    assert j["crossed"] == 0
    assert j["gaps"] == 0
    assert j["parse_errors"] == 0
    assert j["stale_dropped"] == 0
    assert j["synced_instruments"] == 10


def test_golden_legacy_frames():
    text = gzip.decompress(LEGACY.read_bytes()).decode()
    update = ('{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],'
              '"time":"2021-04-17T16:43:37.075687Z"}')
    assert update in text
    dec = ADAPTER.new_decoder()
    assert dec.decode(update.encode(), 9) == [BookDelta(symbol="SKL-BTC", bids=[], asks=[(0.00001306, 660.5)],
                                                        ts_exchange_ns=1618677817075687000, ts_recv_ns=9)]
    assert dec.decode('{"type":"snapshot","product_id":"SKL-GBP","asks":[["0.5762","2865.9"]],'
                      '"bids":[["0.5750","10.0"],["0.5749","0.5"]]}') == [BookSnapshot(
        symbol="SKL-GBP", bids=[(0.575, 10.0), (0.5749, 0.5)], asks=[(0.5762, 2865.9)])]
    match = next(ln for ln in text.splitlines() if '"type":"match"' in ln).split(": ", 1)[1]
    assert dec.decode(match) == [Trade(symbol="SKL-BTC", trade_id="280232", price=Decimal("0.00001305"),
                                       qty=Decimal("985"), side=TradeSide.BUY,  # maker sold: taker bought
                                       ts_exchange_ns=1618677817089723000)]
    subs = text.splitlines()[4].split(": ", 1)[1]
    assert len(dec.decode(subs)) == 10 and dec.decode(subs)[0] == Subscribed(symbol="BAND-GBP", channel="level2")


def test_advanced_trade_frames_replay():
    j = replay(ADAPTER, [AT]).as_json()
    assert (j["snapshots"], j["deltas_applied"], j["parse_errors"], j["crossed"], j["instruments"]) == (2, 3, 0, 0, 2)
    session = BookSession("BTC-USD", ADAPTER.capabilities)
    dec = ADAPTER.new_decoder()
    for ln in at_lines():
        for ev in dec.decode(ln):
            if getattr(ev, "symbol", None) == "BTC-USD" and type(ev) in (BookSnapshot, BookDelta):
                session.handle(ev)
    assert session.book.equals([(90999.5, 2.0)], [(91000.25, 0.1), (91000.5, 0.75), (91002.0, 3.0)])
    assert dec.last_sequence_num == 7


def test_golden_advanced_trade_frames():
    dec = ADAPTER.new_decoder()
    lines = at_lines()
    assert dec.decode(lines[0]) == [Subscribed(symbol="heartbeats", channel="heartbeats"),
                                    Subscribed(symbol="BTC-USD", channel="level2"),
                                    Subscribed(symbol="ETH-USD", channel="level2")]
    assert dec.decode(lines[1], 4) == [BookSnapshot(
        symbol="BTC-USD", bids=[(91000.01, 0.5), (90999.5, 1.25)], asks=[(91000.5, 0.75), (91002.0, 3.0)],
        ts_exchange_ns=1795168800100000000, ts_recv_ns=4)]
    assert dec.decode(lines[2], 5) == [Heartbeat(seq=2, ts_recv_ns=5)]
    assert dec.decode(lines[3]) == [BookDelta(symbol="BTC-USD", bids=[(91000.01, 0.0)], asks=[(91000.25, 0.1)],
                                              ts_exchange_ns=1795168801200000000)]
    dec.decode(lines[4])
    assert [e.symbol for e in dec.decode(lines[5])] == ["ETH-USD", "BTC-USD"]
    assert dec.decode(lines[6]) == [Trade(symbol="BTC-USD", trade_id="12345", price=Decimal("91000.25"),
                                          qty=Decimal("0.05"), ts_exchange_ns=1795168801499999999)]


def test_sequence_skip_on_the_connection_is_reported():
    dec = ADAPTER.new_decoder()
    lines = at_lines()
    for ln in lines[:3]:
        dec.decode(ln)
    out = dec.decode(lines[4])  # sequence_num 4 after 2: message 3 was lost
    assert out[0] == VenueNotice(kind="connection_gap", message="sequence_num 2 -> 4: 1 message(s) missed on this "
                                                                "connection; every book on it is suspect")
    assert type(out[1]) is BookSnapshot and out[1].symbol == "ETH-USD"
    assert [type(e) for e in dec.decode(lines[5])] == [BookDelta, BookDelta]  # chained again: no notice


def test_skip_detected_across_channels():
    # a lost heartbeat is a lost message too: the counter is per connection, not per product
    dec = ADAPTER.new_decoder()
    lines = at_lines()
    dec.decode(lines[0])
    dec.decode(lines[1])
    out = dec.decode(lines[3])
    assert out[0].kind == "connection_gap"


def test_duplicate_or_late_frame_is_dropped_with_a_notice():
    dec = ADAPTER.new_decoder()
    lines = at_lines()
    for ln in lines[:4]:
        dec.decode(ln)
    # the same message twice: dropped, but nothing was missed (not a connection break)
    assert dec.decode(lines[3]) == [VenueNotice(kind="notice",
                                                message="sequence_num 3 repeated: duplicate frame dropped")]
    # a number going back: a late frame, dropped, and the connection's books are suspect
    assert dec.decode(lines[1]) == [VenueNotice(kind="connection_out_of_order",
                                                message="sequence_num 1 after 3: late frame dropped")]
    assert dec.last_sequence_num == 3


def test_a_new_connection_starts_a_new_count():
    dec = ADAPTER.new_decoder()
    dec.decode(at_lines()[5])
    assert ADAPTER.new_decoder().decode(at_lines()[1])[0].symbol == "BTC-USD"


def test_rejected_frame_does_not_advance_the_counter():
    dec = ADAPTER.new_decoder()
    lines = at_lines()
    for ln in lines[:3]:
        dec.decode(ln)
    with pytest.raises(AdapterError):
        dec.decode(lines[3].replace('"new_quantity":"0.1"', '"new_quantity":"-0.1"'))
    assert dec.last_sequence_num == 2
    assert dec.decode(lines[4])[0].kind == "connection_gap"  # the rejected message is reported lost


@pytest.mark.parametrize("frame", [
    '{"type":"ticker","sequence":1,"product_id":"BAND-GBP","price":"14.7775"}',
    '{"type":"received","product_id":"X"}',
    '{"type":"status","products":[]}',
    '{"channel":"ticker","client_id":"","timestamp":"","sequence_num":0,"events":[]}',
    '{"channel":"candles","client_id":"","timestamp":"","sequence_num":0,"events":[]}',
])
def test_unknown_channels_yield_nothing(frame):
    assert ADAPTER.new_decoder().decode(frame) == []


def test_error_and_legacy_heartbeat():
    dec = ADAPTER.new_decoder()
    assert dec.decode('{"type":"error","message":"Failed to subscribe","reason":"bad product"}') == [
        VenueNotice(kind="error", message="Failed to subscribe bad product")]
    assert dec.decode('{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",'
                      '"time":"2014-11-07T08:19:28.464459Z"}') == [Heartbeat(symbol="BTC-USD", seq=90)]


def _at(qty: str = '"1"', price: str = '"100"', side: str = '"bid"', seq: str = "1") -> str:
    return ('{"channel":"l2_data","client_id":"","timestamp":"2026-11-20T10:00:00Z","sequence_num":' + seq +
            ',"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":' + side +
            ',"event_time":"","price_level":' + price + ',"new_quantity":' + qty + '}]}]}')


def _legacy(change: str) -> str:
    return '{"type":"l2update","product_id":"BTC-USD","changes":[' + change + '],"time":"2021-04-17T16:43:37Z"}'


BAD_FRAMES = {
    "truncated": _at()[:-5],
    "not JSON": "{nope",
    "array": "[1]",
    "at negative size": _at(qty='"-1"'),
    "at NaN size": _at(qty='"NaN"'),
    "at inf price": _at(price='"Infinity"'),
    "at zero price": _at(price='"0"'),
    "at huge size": _at(qty='"1e18"'),
    "at bool size": _at(qty="true"),
    "at unknown side": _at(side='"ask"'),
    "at sequence_num negative": _at(seq="-1"),
    "at sequence_num string": _at(seq='"x"'),
    "legacy negative size": _legacy('["buy","100","-1"]'),
    "legacy nan price": _legacy('["buy","nan","1"]'),
    "legacy bad side": _legacy('["up","100","1"]'),
    "legacy short change": _legacy('["buy","100"]'),
    "legacy snapshot wrong type": '{"type":"snapshot","product_id":"BTC-USD","bids":"x","asks":[]}',
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error_and_leave_the_book_alone(name):
    dec = ADAPTER.new_decoder()
    session = BookSession("BTC-USD", ADAPTER.capabilities)
    for ev in dec.decode('{"type":"snapshot","product_id":"BTC-USD","bids":[["99","1"]],"asks":[["101","2"]]}'):
        session.handle(ev)
    with pytest.raises(AdapterError) as info:
        dec.decode(BAD_FRAMES[name])
    assert info.value.exchange == "coinbase"
    assert session.book.equals([(99.0, 1.0)], [(101.0, 2.0)])


def test_replay_counts_malformed_frames(tmp_path):
    lines = gzip.decompress(LEGACY.read_bytes()).decode().splitlines()
    lines.append("1618677850.0: " + _legacy('["buy","0.00001","-5"]').replace("BTC-USD", "SKL-BTC"))
    lines.append("1618677850.1: {\"type\":\"l2upd")
    path = tmp_path / "cb.cfcap.txt"
    path.write_text("\n".join(lines) + "\n")
    j = replay(ADAPTER, [path]).as_json()
    assert (j["parse_errors"], j["deltas_applied"], j["invalid_inputs"]) == (2, 9719, 1)
    assert j["per_instrument"]["SKL-BTC"]["state"] == "recovering"


def test_rest_books_have_no_sequence():
    at = (b'{"pricebook":{"product_id":"BTC-USD","bids":[{"price":"91000","size":"1.5"}],'
          b'"asks":[{"price":"91001","size":"0.5"}],"time":"2026-11-20T10:00:00Z"}}')
    assert ADAPTER.parse_rest_snapshot(at) == BookSnapshot(symbol="BTC-USD", bids=[(91000.0, 1.5)],
                                                           asks=[(91001.0, 0.5)], source=SnapshotSource.REST,
                                                           ts_exchange_ns=1795168800000000000)
    legacy = b'{"sequence":3,"bids":[["295.96","4.39088265",2]],"asks":[["295.97","25.23542881",12]]}'
    snap = ADAPTER.parse_rest_snapshot(legacy, url="https://api.pro.coinbase.com/products/ETH-USD/book?level=2")
    assert (snap.symbol, snap.seq, snap.bids) == ("ETH-USD", None, [(295.96, 4.39088265)])
    with pytest.raises(AdapterError):
        ADAPTER.parse_rest_snapshot(b'{"bids":[["1","-1"]],"asks":[]}', symbol="X")
    with pytest.raises(AdapterError):
        ADAPTER.parse_rest_snapshot(b'{"bids":[],"asks":[]}')


def test_subscribe_dialogue_includes_heartbeats():
    import orjson

    msgs = [orjson.loads(m) for m in ADAPTER.subscribe_messages(["BTC-USD"])]
    assert [m["channel"] for m in msgs] == ["heartbeats", "level2"]
