"""Kraken Futures adapter: the real capture reproduces PROVENANCE's counts; dropped,
duplicated and re-delivered ``book`` messages are gaps / duplicates / stale, never applied twice."""

from __future__ import annotations

import pytest
from _recorded import REAL, drive, inserted, records, replay_records, without

from bookkeeper.actions import SyncState
from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, SnapshotSource, Subscribed, VenueNotice
from bookkeeper.io.recording import Record, RecordKind
from bookkeeper.io.replay import replay

KF = get_adapter("kraken_futures")
CAPTURE = "kraken_futures/kraken_futures_book_2021-07-22.cfcap.txt.gz"


def decode(frame: bytes | str) -> list:
    return KF.new_decoder().decode(frame, 5)


def test_real_capture_reproduces_provenance_counts():
    # PROVENANCE: "seq +1 continuity ok 7014/7014, gaps 0; snapshots 10; crossed books 0"
    j = replay(KF, [REAL / CAPTURE]).as_json()
    assert (j["messages"], j["instruments"], j["snapshots"], j["deltas_applied"]) == (7175, 10, 10, 7014)
    assert (j["gaps"], j["crossed"], j["parse_errors"], j["stale_dropped"], j["duplicates"]) == (0, 0, 0, 0, 0)
    assert j["bridged"] == 10 and j["synced_instruments"] == 10 and j["ok"] is True


def test_golden_frames():
    assert decode(b'{"feed":"book","product_id":"PI_ETHUSD","side":"sell","seq":26660860,"price":2004.85,'
                  b'"qty":4787.0,"timestamp":1626994927744}') == [BookDelta(
        symbol="PI_ETHUSD", bids=[], asks=[(2004.85, 4787.0)], first_seq=26660860, last_seq=26660860,
        ts_exchange_ns=1626994927744_000_000, ts_recv_ns=5)]
    assert decode(b'{"feed":"book","product_id":"PI_ETHUSD","side":"buy","seq":7,"price":2000,"qty":0.0,'
                  b'"timestamp":1}') == [BookDelta(symbol="PI_ETHUSD", bids=[(2000.0, 0.0)], asks=[], first_seq=7,
                                                   last_seq=7, ts_exchange_ns=1_000_000, ts_recv_ns=5)]
    assert decode(b'{"feed":"book_snapshot","product_id":"FI_BCHUSD_210730","timestamp":1626994925378,'
                  b'"seq":91192,"tickSize":null,"bids":[{"price":439.3,"qty":20108.0}],'
                  b'"asks":[{"price":439.6,"qty":1.0}]}') == [BookSnapshot(
        symbol="FI_BCHUSD_210730", bids=[(439.3, 20108.0)], asks=[(439.6, 1.0)], seq=91192,
        source=SnapshotSource.WS, ts_exchange_ns=1626994925378_000_000, ts_recv_ns=5)]
    assert decode(b'{"event":"subscribed","feed":"book","product_ids":["FI_ETHUSD_211231"]}') == [
        Subscribed(symbol="FI_ETHUSD_211231", channel="book")]
    assert decode(b'{"event":"info","version":1}') == []
    assert decode(b'{"feed":"heartbeat","time":1534262350627}') == [Heartbeat(ts_recv_ns=5)]
    assert decode(b'{"event":"error","message":"Invalid product id"}') == [
        VenueNotice(kind="error", message="Invalid product id")]
    ticker = next(r.data for r in records(CAPTURE) if b'"feed":"ticker_lite"' in r.data)
    assert decode(ticker) == []
    trade_snapshot = next(r.data for r in records(CAPTURE) if b'"feed":"trade_snapshot"' in r.data)
    assert decode(trade_snapshot) == []


def test_real_capture_first_snapshot_and_its_first_delta_chain():
    recs = records(CAPTURE)
    run = drive("kraken_futures", recs)
    sym, first = run.applied[0][1].symbol, run.applied[0][1]
    snaps = [e for r in recs if b'"book_snapshot"' in r.data for e in decode(r.data) if e.symbol == sym]
    assert len(snaps) == 1 and first.first_seq == snaps[0].seq + 1


def test_dropped_book_message_is_a_gap_at_the_next_seq():
    recs = records(CAPTURE)
    base = drive("kraken_futures", recs)
    idx, d = base.applied[1000]
    nxt = next(x for i, x in base.applied if i > idx and x.symbol == d.symbol)
    run = drive("kraken_futures", without(recs, idx))
    gaps = run.gap_alerts()
    assert len(gaps) == 1
    assert (gaps[0].symbol, gaps[0].seq, gaps[0].missed) == (d.symbol, d.last_seq + 1, 1)
    assert nxt.first_seq == d.last_seq + 1
    assert run.sessions[d.symbol].state is SyncState.RECOVERING


def test_duplicates_and_stale_messages_are_never_applied_twice():
    recs = records(CAPTURE)
    base = drive("kraken_futures", recs)
    idx, d = base.applied[2000]
    dup = drive("kraken_futures", inserted(recs, idx + 1, recs[idx]))
    assert dup.total("duplicates") == 1 and dup.total("gaps") == 0
    assert dup.total("deltas_applied") == base.total("deltas_applied")
    assert dup.book(d.symbol) == base.book(d.symbol)
    later = max(i for i, x in base.applied if x.symbol == d.symbol)
    stale = drive("kraken_futures", inserted(recs, later + 1, recs[idx]))
    assert stale.total("stale_dropped") == 1 and stale.total("gaps") == 0
    assert stale.book(d.symbol) == base.book(d.symbol)


BOOK = b'{"feed":"book","product_id":"PI_XBTUSD","side":"%s","seq":%s,"price":%s,"qty":%s,"timestamp":1}'


@pytest.mark.parametrize(
    "frame",
    [
        b'{"feed":"book","product_id":"PI_XBTUSD","side":"buy","seq":1,"pri',
        b"[]",
        BOOK % (b"buy", b"1", b'"32000.5"', b"1.0"),  # string price
        BOOK % (b"buy", b"1", b"32000.5", b"true"),
        BOOK % (b"buy", b"1", b"32000.5", b"-1.0"),
        BOOK % (b"buy", b"1", b"0", b"1.0"),
        BOOK % (b"buy", b"1", b"32000.5", b"1e300"),
        BOOK % (b"buy", b"1", b"1e400", b"1"),
        BOOK % (b"buy", b"1", b"32000.5", b"NaN"),
        BOOK % (b"hold", b"1", b"32000.5", b"1.0"),
        BOOK % (b"buy", b"1.5", b"32000.5", b"1.0"),
        BOOK % (b"buy", b'"1"', b"32000.5", b"1.0"),
        BOOK % (b"buy", b"-3", b"32000.5", b"1.0"),
        b'{"feed":"book","side":"buy","seq":1,"price":1.0,"qty":1.0}',
        b'{"feed":"book_snapshot","product_id":"PI_XBTUSD","seq":1,"bids":[{"price":1.0}],"asks":[]}',
        b'{"feed":"book_snapshot","product_id":"PI_XBTUSD","seq":1,"bids":{},"asks":[]}',
    ],
)
def test_bad_input_raises_adapter_error(frame):
    with pytest.raises(AdapterError) as info:
        decode(frame)
    assert info.value.exchange == "kraken_futures"


def test_bad_frame_is_counted_and_leaves_the_book_unchanged(tmp_path):
    recs = records(CAPTURE)
    base = drive("kraken_futures", recs)
    idx, d = base.applied[500]
    bad = BOOK.replace(b"PI_XBTUSD", d.symbol.encode()) % (b"buy", str(d.last_seq).encode(), b"100.0", b"-5.0")
    before = drive("kraken_futures", recs, stop=idx)
    after = drive("kraken_futures", inserted(recs, idx, Record(0, RecordKind.RECV, bad)), stop=idx + 1)
    assert after.parse_errors == 1 and after.book(d.symbol) == before.book(d.symbol)
    j = replay_records(tmp_path, "kraken_futures", inserted(recs, idx, Record(0, RecordKind.RECV, bad))).as_json()
    assert j["parse_errors"] == 1


def test_capabilities_and_live_spec():
    caps = KF.capabilities
    assert KF.name == "kraken_futures"
    assert caps.sequence_model is SequenceModel.CONTIGUOUS_RANGE and caps.ws_splice_rule is SpliceRule.RANGE_NEXT
    assert caps.ws_snapshot_on_subscribe and not caps.rest_snapshot
    assert KF.ws_url("wss://futures.kraken.com", ["PI_XBTUSD"]) == "wss://futures.kraken.com/ws/v1"
    assert KF.subscribe_messages(["PI_XBTUSD"])[0] == '{"event":"subscribe","feed":"book","product_ids":["PI_XBTUSD"]}'
    assert KF.unsubscribe_messages(["PI_XBTUSD"]) == [
        '{"event":"unsubscribe","feed":"book","product_ids":["PI_XBTUSD"]}']
    with pytest.raises(AdapterError):
        KF.parse_rest_snapshot(b'{"result":"success","orderBook":{}}', symbol="PI_XBTUSD")
