"""BitMEX adapter (replay only): the real capture replays with PROVENANCE's exact counts; the
id -> price memory; unknown ids are inconsistent books; malformed frames; golden frames."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, SnapshotSource, Trade, VenueNotice
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession
from bookkeeper.types import TradeSide

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "fixtures/real/bitmex/bitmex_orderBookL2_2021-07-22.cfcap.txt.gz"

ADAPTER = get_adapter("bitmex")


def capture_lines() -> list[str]:
    return gzip.decompress(CAPTURE.read_bytes()).decode().splitlines()


def replay_lines(tmp_path: Path, lines: list[str]) -> dict:
    path = tmp_path / "bitmex_fault.cfcap.txt"
    path.write_text("\n".join(lines) + "\n")
    return replay(ADAPTER, [path]).as_json()


def test_capabilities_declare_no_ids_and_ws_partials():
    caps = ADAPTER.capabilities
    assert caps.sequence_model is SequenceModel.NONE
    assert caps.ws_snapshot_on_subscribe is True
    assert caps.rest_snapshot is False


def test_real_capture_reproduces_provenance_counts():
    # PROVENANCE: "partials 10, inserts 445, updates 1090, deletes 434, unknown ids 0, crossed books 0"
    # (the summary's "1979 actions" = 10 partials + 1969 insert/update/delete messages; each of
    # those messages holds one symbol, so one BookDelta each).
    j = replay(ADAPTER, [CAPTURE]).as_json()
    assert j["messages"] == 2120
    assert j["instruments"] == 10
    assert j["snapshots"] == 10
    assert j["deltas_applied"] == 445 + 1090 + 434
    assert j["snapshots"] + j["deltas_applied"] == 1979
    assert j["parse_errors"] == 0  # no unknown ids
    assert j["crossed"] == 0
    assert j["gaps"] == 0
    assert j["synced_instruments"] == 10


PARTIAL = ('{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],"filter":{"symbol":"XBTUSD"},'
           '"data":[{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":100,"price":32000.5},'
           '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":2500,"price":32000}]}')


def _rows(action: str, rows: str) -> str:
    return '{"table":"orderBookL2","action":"' + action + '","data":[' + rows + ']}'


def test_update_and_delete_without_price_use_the_remembered_price():
    dec = ADAPTER.new_decoder()
    assert dec.decode(PARTIAL) == [BookSnapshot(symbol="XBTUSD", bids=[(32000.0, 2500.0)], asks=[(32000.5, 100.0)])]
    assert dec.decode(_rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":700}')) == [
        BookDelta(symbol="XBTUSD", bids=[(32000.0, 700.0)], asks=[])]
    assert dec.decode(_rows("delete", '{"symbol":"XBTUSD","id":8796323950,"side":"Sell"}')) == [
        BookDelta(symbol="XBTUSD", bids=[], asks=[(32000.5, 0.0)])]
    assert dec.decode(_rows("insert", '{"symbol":"XBTUSD","id":8796323900,"side":"Sell","size":5,"price":32001}')) == [
        BookDelta(symbol="XBTUSD", bids=[], asks=[(32001.0, 5.0)])]
    assert dec.decode(_rows("update", '{"symbol":"XBTUSD","id":8796323900,"side":"Sell","size":6}'))[0].asks == [
        (32001.0, 6.0)]


def test_golden_real_frames():
    lines = [ln.split(": ", 1)[1] for ln in capture_lines() if ln[:1].isdigit()]
    dec = ADAPTER.new_decoder()
    out = [dec.decode(ln) for ln in lines]
    update = '{"table":"orderBookL2","action":"update","data":[{"symbol":"UNIUSDT","id":51999982703,"side":"Sell","size":123}]}'
    i = lines.index(update)
    assert out[i] == [BookDelta(symbol="UNIUSDT", bids=[], asks=[(17.297, 123.0)])]
    insert = '{"table":"orderBookL2","action":"insert","data":[{"symbol":"SOLUSDT","id":54899972480,"side":"Sell","size":991,"price":27.52}]}'
    assert out[lines.index(insert)] == [BookDelta(symbol="SOLUSDT", bids=[], asks=[(27.52, 991.0)])]
    delete = '{"table":"orderBookL2","action":"delete","data":[{"symbol":"BCHUSD","id":40199991245,"side":"Buy"}]}'
    (d,) = out[lines.index(delete)]
    assert d.asks == [] and len(d.bids) == 1 and d.bids[0][1] == 0.0
    trade = next(k for k, ln in enumerate(lines) if ln.startswith('{"table":"trade","action":"insert"'))
    assert out[trade] == [Trade(symbol="UNIUSDT", trade_id="39744121-c20e-44ba-8cc8-a6b8cdf72885",
                                price=Decimal("17.297"), qty=Decimal("52"), side=TradeSide.BUY,
                                ts_exchange_ns=1626993370014000000)]
    assert out[0] == []  # welcome
    assert out[1] == []  # subscribe ack
    assert all(o == [] for ln, o in zip(lines, out) if '"table":"quote"' in ln)


def test_update_for_unknown_id_is_an_inconsistent_book():
    dec = ADAPTER.new_decoder()
    dec.decode(PARTIAL)
    with pytest.raises(AdapterError, match="unknown id") as info:
        dec.decode(_rows("update", '{"symbol":"XBTUSD","id":1,"side":"Buy","size":1}'))
    assert info.value.symbol == "XBTUSD"
    with pytest.raises(AdapterError, match="unknown id"):
        dec.decode(_rows("delete", '{"symbol":"XBTUSD","id":8796324000,"side":"Sell"}'))  # right id, wrong side


def test_replay_counts_unknown_id_as_parse_error_and_recovers_that_book(tmp_path):
    lines = capture_lines()
    lines.append('1626993400.0: ' + _rows("update", '{"symbol":"XBTUSD","id":12345,"side":"Buy","size":10}'))
    j = replay_lines(tmp_path, lines)
    assert j["parse_errors"] == 1
    assert j["invalid_inputs"] == 1
    assert j["deltas_applied"] == 1969
    assert j["per_instrument"]["XBTUSD"]["state"] == "recovering"
    assert j["resubscribe_requests"] == 1


def test_table_data_before_the_partial_is_ignored():
    dec = ADAPTER.new_decoder()
    assert dec.decode(_rows("update", '{"symbol":"XBTUSD","id":1,"side":"Buy","size":1}')) == []
    assert dec.decode(_rows("insert", '{"symbol":"XBTUSD","id":1,"side":"Buy","size":1,"price":5}')) == []
    dec.decode(PARTIAL)
    with pytest.raises(AdapterError):  # the pre-partial insert was not remembered
        dec.decode(_rows("delete", '{"symbol":"XBTUSD","id":1,"side":"Buy"}'))


def test_rejected_message_changes_nothing():
    dec = ADAPTER.new_decoder()
    dec.decode(PARTIAL)
    with pytest.raises(AdapterError):
        dec.decode(_rows("delete", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy"},'
                                   '{"symbol":"XBTUSD","id":99,"side":"Buy"}'))
    # the first row's id is still known
    assert dec.decode(_rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":1}'))[0].bids == [
        (32000.0, 1.0)]


def test_empty_partial_still_opens_the_book():
    dec = ADAPTER.new_decoder()
    empty = '{"table":"orderBookL2_25","action":"partial","keys":["symbol","id","side"],"filter":{"symbol":"ETHUSD"},"data":[]}'
    assert dec.decode(empty) == [BookSnapshot(symbol="ETHUSD", bids=[], asks=[])]
    assert dec.decode(_rows("insert", '{"symbol":"ETHUSD","id":7,"side":"Buy","size":1,"price":2000}')
                      .replace("orderBookL2", "orderBookL2_25")) == [BookDelta(symbol="ETHUSD", bids=[(2000.0, 1.0)],
                                                                                asks=[])]


def test_control_frames():
    dec = ADAPTER.new_decoder()
    assert dec.decode(b"pong") == [Heartbeat()]
    assert dec.decode('{"info":"Welcome to the BitMEX Realtime API.","version":"x","limit":{"remaining":39}}') == []
    assert dec.decode('{"success":true,"subscribe":"orderBookL2:XBTUSD","request":{}}') == []
    assert dec.decode('{"status":429,"error":"Rate limit exceeded, retry in 1 seconds.","meta":{"retryAfter":1}}') == [
        VenueNotice(kind="rate_limited", message="429: Rate limit exceeded, retry in 1 seconds.")]
    assert dec.decode('{"status":400,"error":"Unknown table: foo"}') == [
        VenueNotice(kind="error", message="400: Unknown table: foo")]


@pytest.mark.parametrize("frame", [
    '{"table":"quote","action":"insert","data":[]}',
    '{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD"}]}',
    '{"table":"funding","action":"partial","data":[]}',
])
def test_unknown_tables_yield_nothing(frame):
    assert ADAPTER.new_decoder().decode(frame) == []


BAD_FRAMES = {
    "truncated": PARTIAL[:-10],
    "not JSON": "ping?",
    "array": "[]",
    "negative size": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":-1}'),
    "huge size": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":1e30}'),
    "overflow": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":1e999}'),
    "string size": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":"ten"}'),
    "bool size": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":false}'),
    "update without size": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy"}'),
    "update moving a price": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":1,"price":5}'),
    "insert zero price": _rows("insert", '{"symbol":"XBTUSD","id":5,"side":"Buy","size":1,"price":0}'),
    "insert without price": _rows("insert", '{"symbol":"XBTUSD","id":5,"side":"Buy","size":1}'),
    "bad side": _rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Long","size":1}'),
    "id negative": _rows("update", '{"symbol":"XBTUSD","id":-1,"side":"Buy","size":1}'),
    "data not a list": '{"table":"orderBookL2","action":"update","data":{"a":1}}',
    "unknown action": _rows("upsert", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":1}'),
    "no action": '{"table":"orderBookL2","data":[]}',
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error_and_leave_the_book_alone(name):
    dec = ADAPTER.new_decoder()
    session = BookSession("XBTUSD", ADAPTER.capabilities)
    for ev in dec.decode(PARTIAL):
        session.handle(ev)
    with pytest.raises(AdapterError) as info:
        dec.decode(BAD_FRAMES[name])
    assert info.value.exchange == "bitmex"
    assert session.book.equals([(32000.0, 2500.0)], [(32000.5, 100.0)])
    for ev in dec.decode(_rows("update", '{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":9}')):
        session.handle(ev)
    assert session.book.best_bid() == (32000.0, 9.0)


def test_rest_book_has_no_sequence():
    body = (b'[{"symbol":"XBTUSD","id":8796323950,"side":"Sell","size":100,"price":32000.5},'
            b'{"symbol":"XBTUSD","id":8796324000,"side":"Buy","size":2500,"price":32000}]')
    assert ADAPTER.parse_rest_snapshot(body) == BookSnapshot(symbol="XBTUSD", bids=[(32000.0, 2500.0)],
                                                             asks=[(32000.5, 100.0)], source=SnapshotSource.REST)
    with pytest.raises(AdapterError):
        ADAPTER.parse_rest_snapshot(b'[{"symbol":"XBTUSD","id":1,"side":"Buy","size":-1,"price":1}]')
