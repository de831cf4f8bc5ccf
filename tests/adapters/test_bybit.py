"""Bybit adapter: v5 and legacy v2 captures replay (one adapter) with PROVENANCE's exact counts;
``u == 1`` restart snapshots; id-keyed legacy rows; malformed frames; golden frames; REST."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource, Trade, VenueNotice
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession
from bookkeeper.types import TradeSide

ROOT = Path(__file__).resolve().parents[2]
V5 = ROOT / "fixtures/real/bybit/bybit_v5_linear_orderbook500_XRPUSDT_2024-12-01.jsonl.gz"
LEGACY = ROOT / "fixtures/real/bybit/bybit_legacy_inverse_orderBookL2_25_2021-04-17.cfcap.txt.gz"
RESTART = ROOT / "fixtures/bybit/orderbook/restart_u1.jsonl"

ADAPTER = get_adapter("bybit")


def v5_lines() -> list[str]:
    return gzip.decompress(V5.read_bytes()).decode().splitlines()


def replay_lines(tmp_path: Path, lines: list[str], name: str = "bybit_fault.jsonl") -> dict:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return replay(ADAPTER, [path]).as_json()


def test_capabilities_declare_monotonic_u_with_ws_snapshots():
    caps = ADAPTER.capabilities
    assert caps.sequence_model is SequenceModel.MONOTONIC_ONLY
    assert caps.ws_splice_rule is SpliceRule.MONOTONIC
    assert caps.ws_snapshot_on_subscribe is True


def test_v5_capture_reproduces_provenance_counts():
    # PROVENANCE: "u continuity: 49 deltas, u gaps 0, seq non-increasing 0; crossed books 0"
    j = replay(ADAPTER, [V5]).as_json()
    assert j["messages"] == 50
    assert j["instruments"] == 1
    assert j["snapshots"] == 1
    assert j["deltas_applied"] == 49
    assert j["gaps"] == 0
    assert j["crossed"] == 0
    assert j["parse_errors"] == 0
    assert j["stale_dropped"] == 0
    assert j["duplicates"] == 0
    assert j["per_instrument"]["XRPUSDT"] == {**j["per_instrument"]["XRPUSDT"], "state": "synced",
                                              "last_seq": 20254869 + 49}


def test_legacy_capture_reproduces_provenance_counts():
    # PROVENANCE: "snapshots 2, deltas 1016, cross_seq non-increasing 0, crossed books 0"
    j = replay(ADAPTER, [LEGACY]).as_json()
    assert j["messages"] == 1098
    assert j["instruments"] == 2
    assert j["snapshots"] == 2
    assert j["deltas_applied"] == 1016
    assert j["gaps"] == 0
    assert j["crossed"] == 0
    assert j["parse_errors"] == 0
    assert j["stale_dropped"] == 0
    assert j["synced_instruments"] == 2


def test_one_adapter_replays_both_formats_in_one_session():
    j = replay(ADAPTER, [V5, LEGACY]).as_json()
    assert (j["snapshots"], j["deltas_applied"], j["parse_errors"], j["crossed"]) == (3, 1065, 0, 0)
    assert sorted(j["per_instrument"]) == ["BTCUSD", "EOSUSD", "XRPUSDT"]


def test_u_equal_1_on_a_delta_is_a_restart_snapshot():
    events = [ev for ln in RESTART.read_text().splitlines() for ev in ADAPTER.new_decoder().decode(ln)]
    assert [type(e).__name__ for e in events] == ["BookSnapshot", "BookDelta", "BookDelta", "BookSnapshot",
                                                  "BookDelta", "BookDelta"]
    assert events[3] == BookSnapshot(symbol="BTCUSDT", bids=[(97000.0, 4.0)], asks=[(97001.0, 5.0)], seq=1,
                                     ts_exchange_ns=1733011200060_000_000)


def test_restart_snapshot_replaces_the_book_and_u_restarts():
    j = replay(ADAPTER, [RESTART]).as_json()
    assert (j["snapshots"], j["deltas_applied"], j["gaps"], j["stale_dropped"], j["parse_errors"]) == (2, 4, 0, 0, 0)
    assert j["per_instrument"]["BTCUSDT"]["last_seq"] == 3
    session = BookSession("BTCUSDT", ADAPTER.capabilities)
    dec = ADAPTER.new_decoder()
    for ln in RESTART.read_text().splitlines():
        for ev in dec.decode(ln):
            session.handle(ev)
    assert session.book.equals([(97000.0, 4.5)], [(97001.0, 5.0), (97002.0, 1.0)])


def test_without_the_u1_rule_the_restart_would_be_dropped_as_stale():
    # The same frame relabelled "delta" with u != 1 is an ordinary (stale) delta: proves the
    # restart handling is what makes the previous test pass.
    lines = RESTART.read_text().splitlines()
    lines[5] = lines[5].replace('"u":1,', '"u":400,')
    dec = ADAPTER.new_decoder()
    (ev,) = dec.decode(lines[5])
    assert type(ev) is BookDelta and ev.last_seq == 400


def test_duplicate_and_old_v5_deltas_are_never_applied_twice(tmp_path):
    lines = v5_lines()
    lines.insert(11, lines[10])  # duplicate
    lines.append(lines[20])  # late re-delivery
    j = replay_lines(tmp_path, lines)
    assert j["duplicates"] == 1
    assert j["stale_dropped"] == 1
    assert j["deltas_applied"] == 49
    assert j["gaps"] == 0


def test_dropped_v5_delta_is_invisible_by_design(tmp_path):
    # MONOTONIC_ONLY: Bybit does not promise contiguous u on orderbook.N (§6.2), so a skip is
    # not a gap; the 48 remaining deltas all apply.
    lines = v5_lines()
    del lines[25]
    j = replay_lines(tmp_path, lines)
    assert (j["deltas_applied"], j["gaps"]) == (48, 0)


def test_golden_v5_delta():
    frame = v5_lines()[44]
    assert ADAPTER.new_decoder().decode(frame.encode(), 11) == [BookDelta(
        symbol="XRPUSDT", bids=[(1.9147, 90.0), (1.9108, 43.0)], asks=[(1.9538, 3615.0), (1.9542, 15435.0)],
        first_seq=20254913, last_seq=20254913, ts_exchange_ns=1733011204990_000_000, ts_recv_ns=11)]


LEGACY_SNAPSHOT = ('{"topic":"orderBookL2_25.BTCUSD","type":"snapshot","data":['
                   '{"price":"60604.00","symbol":"BTCUSD","id":606040000,"side":"Buy","size":100},'
                   '{"price":"60616.50","symbol":"BTCUSD","id":606165000,"side":"Buy","size":200},'
                   '{"price":"60617.00","symbol":"BTCUSD","id":606170000,"side":"Sell","size":300}],'
                   '"cross_seq":5938954538,"timestamp_e6":1618677785357289}')
# verbatim from the capture (the delete row happens to carry a price; Bybit's did not always)
LEGACY_DELTA = ('{"topic":"orderBookL2_25.BTCUSD","type":"delta","data":{"delete":[{"price":"60604.00",'
                '"symbol":"BTCUSD","id":606040000,"side":"Buy"}],"update":[{"price":"60616.50","symbol":"BTCUSD",'
                '"id":606165000,"side":"Buy","size":8297714}],"insert":[{"price":"60590.50","symbol":"BTCUSD",'
                '"id":605905000,"side":"Buy","size":7500}],"transactTimeE6":0},"cross_seq":5938954563,'
                '"timestamp_e6":1618677785537926}')


def test_golden_legacy_snapshot_and_delta():
    assert LEGACY_DELTA in gzip.decompress(LEGACY.read_bytes()).decode()
    dec = ADAPTER.new_decoder()
    assert dec.decode(LEGACY_SNAPSHOT) == [BookSnapshot(
        symbol="BTCUSD", bids=[(60604.0, 100.0), (60616.5, 200.0)], asks=[(60617.0, 300.0)], seq=5938954538,
        ts_exchange_ns=1618677785357289_000)]
    assert dec.decode(LEGACY_DELTA) == [BookDelta(
        symbol="BTCUSD", bids=[(60604.0, 0.0), (60616.5, 8297714.0), (60590.5, 7500.0)], asks=[],
        first_seq=5938954563, last_seq=5938954563, ts_exchange_ns=1618677785537926_000)]


def _legacy(kind: str, rows: str, seq: int) -> str:
    return (f'{{"topic":"orderBookL2_25.BTCUSD","type":"delta","data":{{"delete":[],"update":[],"insert":[],'
            f'"{kind}":[{rows}]}},"cross_seq":{seq}}}')


def test_legacy_delete_with_only_id_and_side_uses_the_remembered_price():
    dec = ADAPTER.new_decoder()
    dec.decode(LEGACY_SNAPSHOT)
    (d,) = dec.decode(_legacy("delete", '{"id":606170000,"side":"Sell"}', 5938954600))
    assert d.asks == [(60617.0, 0.0)]
    # once deleted, the id is forgotten: a second delete is an inconsistent book
    with pytest.raises(AdapterError, match="unknown id") as info:
        dec.decode(_legacy("delete", '{"id":606170000,"side":"Sell"}', 5938954601))
    assert info.value.symbol == "BTCUSD"


def test_legacy_rows_before_the_snapshot_are_ignored():
    assert ADAPTER.new_decoder().decode(_legacy("update", '{"id":1,"side":"Buy","size":5}', 1)) == []


def test_legacy_update_for_unknown_id_is_counted_by_replay(tmp_path):
    lines = gzip.decompress(LEGACY.read_bytes()).decode().splitlines()
    lines.append("1618677817.0: " + _legacy("update", '{"id":1,"side":"Buy","size":5}', 5938999999))
    j = replay_lines(tmp_path, lines, "bybit_legacy_fault.cfcap.txt")
    assert j["parse_errors"] == 1
    assert j["invalid_inputs"] == 1
    assert j["per_instrument"]["BTCUSD"]["state"] == "recovering"
    assert j["deltas_applied"] == 1016


def test_a_rejected_legacy_frame_leaves_the_id_map_alone():
    dec = ADAPTER.new_decoder()
    dec.decode(LEGACY_SNAPSHOT)
    bad = _legacy("delete", '{"id":606040000,"side":"Buy"},{"id":42,"side":"Buy"}', 5938954600)
    with pytest.raises(AdapterError):
        dec.decode(bad)
    (d,) = dec.decode(_legacy("delete", '{"id":606040000,"side":"Buy"}', 5938954601))
    assert d.bids == [(60604.0, 0.0)]


def test_trades_both_formats():
    dec = ADAPTER.new_decoder()
    v5 = ('{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1672304486865,"s":"BTCUSDT",'
          '"S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af",'
          '"BT":false}]}')
    assert dec.decode(v5) == [Trade(symbol="BTCUSDT", trade_id="20f43950-d8dd-5b31-9112-a178eb6023af",
                                    price=Decimal("16578.50"), qty=Decimal("0.001"), side=TradeSide.BUY,
                                    ts_exchange_ns=1672304486865_000_000)]
    legacy = next(ln for ln in gzip.decompress(LEGACY.read_bytes()).decode().splitlines() if '"topic":"trade.BTCUSD"' in ln
                  and ln[:1].isdigit())
    trades = dec.decode(legacy.split(": ", 1)[1])
    assert trades[0] == Trade(symbol="BTCUSD", trade_id="5ffb8b77-900c-507d-97a2-0922557ffe54",
                              price=Decimal("60621.5"), qty=Decimal("4"), side=TradeSide.SELL,
                              ts_exchange_ns=1618677786614_000_000)


@pytest.mark.parametrize("frame", [
    '{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"","op":"ping"}',
    '{"op":"pong","args":["1672916271846"],"conn_id":"x"}',
    '{"success":true,"ret_msg":"","conn_id":"x","request":{"op":"subscribe","args":["trade.EOSUSD"]}}',
    '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT"}}',
    '{"topic":"kline.5.BTCUSDT","data":[]}',
])
def test_control_and_unknown_topics_yield_nothing(frame):
    assert ADAPTER.new_decoder().decode(frame) == []


def test_failed_subscription_is_a_notice():
    assert ADAPTER.new_decoder().decode('{"success":false,"ret_msg":"error:handler not found","op":"subscribe"}') == [
        VenueNotice(kind="error", message="subscribe failed: error:handler not found")]


def _v5(b: str = '[["1.5","2"]]', u: str = "7", type_: str = "delta") -> str:
    return (f'{{"topic":"orderbook.50.XYZ","type":"{type_}","ts":1,"data":{{"s":"XYZ","b":{b},"a":[],'
            f'"u":{u},"seq":3}}}}')


BAD_FRAMES = {
    "truncated": _v5()[:-9],
    "not JSON": "not json at all",
    "array": "[]",
    "negative size": _v5('[["1.5","-2"]]'),
    "NaN size": _v5('[["1.5","NaN"]]'),
    "inf price": _v5('[["inf","2"]]'),
    "zero price": _v5('[["0","2"]]'),
    "huge size": _v5('[["1.5","1e20"]]'),
    "non-numeric price": _v5('[["abc","2"]]'),
    "bool size": _v5('[["1.5",true]]'),
    "levels not a list": _v5('"x"'),
    "u not an int": _v5(u='"abc"'),
    "u negative": _v5(u="-1"),
    "unknown type": _v5(type_="partial"),
    "legacy size negative": ('{"topic":"orderBookL2_25.BTCUSD","type":"snapshot","data":[{"price":"1","symbol":"BTCUSD",'
                             '"id":1,"side":"Buy","size":-1}],"cross_seq":1}'),
    "legacy bad side": ('{"topic":"orderBookL2_25.BTCUSD","type":"snapshot","data":[{"price":"1","symbol":"BTCUSD",'
                        '"id":1,"side":"Up","size":1}],"cross_seq":1}'),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error_and_leave_the_book_alone(name):
    dec = ADAPTER.new_decoder()
    session = BookSession("XYZ", ADAPTER.capabilities)
    for ev in dec.decode(_v5('[["1.0","1"]]', u="5", type_="snapshot")):
        session.handle(ev)
    with pytest.raises(AdapterError) as info:
        dec.decode(BAD_FRAMES[name])
    assert info.value.exchange == "bybit"
    assert session.book.equals([(1.0, 1.0)], [])
    assert session.last_seq == 5


def test_replay_counts_malformed_frames(tmp_path):
    lines = v5_lines()
    lines.append(lines[-1].replace('"u":20254918', '"u":20254919').replace('"b":[[', '"b":[["1.0","-5"],['))
    lines.append(lines[-2][:40])
    j = replay_lines(tmp_path, lines)
    assert (j["parse_errors"], j["deltas_applied"], j["invalid_inputs"]) == (2, 49, 1)


REST_BODY = (b'{"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","a":[["65557.7","16.606555"]],'
             b'"b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,"cts":1716863718905},'
             b'"retExtInfo":{},"time":1716863719382}')


def test_rest_snapshot_seq_is_u():
    expected = BookSnapshot(symbol="BTCUSDT", bids=[(65485.47, 47.081829)], asks=[(65557.7, 16.606555)], seq=230704,
                            source=SnapshotSource.REST, ts_exchange_ns=1716863719031_000_000, ts_recv_ns=5)
    assert ADAPTER.parse_rest_snapshot(REST_BODY, ts_recv_ns=5) == expected
    assert ADAPTER.parse_rest_snapshot(orjson.loads(REST_BODY), ts_recv_ns=5) == expected  # ccxt's dict


@pytest.mark.parametrize("body", [
    b'{"retCode":10001,"retMsg":"params error","result":{}}',
    b'{"retCode":0,"result":{"s":"X","a":[],"b":[["1","-1"]],"u":1}}',
    b'{"retCode":0',
])
def test_bad_rest_bodies_raise(body):
    with pytest.raises(AdapterError):
        ADAPTER.parse_rest_snapshot(body)


def test_subscribe_dialogue():
    msgs = ADAPTER.subscribe_messages([f"S{i}" for i in range(12)], depth=200)
    assert [len(orjson.loads(m)["args"]) for m in msgs] == [10, 2]
    assert orjson.loads(msgs[0])["args"][0] == "orderbook.200.S0"
    assert orjson.loads(ADAPTER.ping_message()) == {"op": "ping"}
