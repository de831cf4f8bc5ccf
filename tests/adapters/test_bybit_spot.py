"""``bybit_spot``: Bybit's spot full book, ``orderbook.full.{symbol}`` deltas bridged with REST
``full_orderbook`` by ``seq`` and ``u`` (exchange-protocols.md §6.1, §6.2, §6.4). The frames
below follow the venue's own examples (``docs/v5/websocket/public/full-ob.mdx``,
``docs/v5/market/full-ob.mdx``)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource, VenueNotice
from bookkeeper.io.recording import RecordingWriter, RecordKind
from bookkeeper.io import replay as replay_mod
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession

ADAPTER = get_adapter("bybit_spot")
SESSION = Path(__file__).resolve().parents[2] / "fixtures/bybit_spot/orderbook_full/sim_session.bkrec.jsonl"


def full(u: int, seq: int, b: list[list[str]] | None = None, a: list[list[str]] | None = None,
         ts: int = 1784103477732, kind: str = "delta") -> str:
    return orjson.dumps({"topic": "orderbook.full.MNTUSDT", "ts": ts, "type": kind,
                         "data": {"s": "MNTUSDT", "b": b or [], "a": a or [], "u": u, "seq": seq},
                         "cts": ts - 2}).decode()


def rest(u: int, seq: int, b: list[list[str]], a: list[list[str]]) -> str:
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"s": "MNTUSDT", "a": a, "b": b,
                         "ts": 1784103578352, "u": u, "seq": seq, "cts": 1784103578350},
                         "retExtInfo": {}, "time": 1784103579732}).decode()


def test_capabilities_declare_a_rest_bridged_contiguous_full_book() -> None:
    caps = ADAPTER.capabilities
    assert caps.venue == "bybit_spot"
    assert caps.sequence_model is SequenceModel.CONTIGUOUS_RANGE
    assert caps.splice_rule is caps.ws_splice_rule is SpliceRule.CROSS_NEXT
    assert (caps.ws_snapshot_on_subscribe, caps.rest_snapshot, caps.rest_snapshot_depth) == (False, True, 10_000)
    assert caps.ping_interval_s == 20.0  # {"op":"ping"} every 20 s (§6.5), as for bybit


def test_live_dialogue_subscribes_the_full_topic_on_spot_and_reads_rest_through_ccxt() -> None:
    assert ADAPTER.default_ws_url() == "wss://stream.bybit.com/v5/public/spot"
    args = [f"S{i}" for i in range(12)]
    frames = [orjson.loads(f) for f in ADAPTER.subscribe_messages(args, 50)]
    assert [f["args"] for f in frames] == [[f"orderbook.full.S{i}" for i in range(10)],
                                           ["orderbook.full.S10", "orderbook.full.S11"]]  # 10 args per request
    assert {f["op"] for f in frames} == {"subscribe"}
    assert orjson.loads(ADAPTER.unsubscribe_messages(["MNTUSDT"])[0])["args"] == ["orderbook.full.MNTUSDT"]
    assert ADAPTER.ping_message() == '{"op":"ping"}'
    call = ADAPTER.rest_snapshot_call("MNTUSDT", 50)
    assert (call.ccxt_id, call.method, dict(call.params)) == (
        "bybit", "public_get_v5_market_full_orderbook", {"category": "spot", "symbol": "MNTUSDT"})
    assert ADAPTER.ccxt_config_for("http://127.0.0.1:9/") == {"urls": {"api": {"public": "http://127.0.0.1:9"}}}


def test_a_full_book_message_is_a_delta_with_u_and_the_cross_sequence() -> None:
    frame = full(278547, 1501100579, b=[["0.4758", "2342.47"], ["0.4757", "0"]])
    assert ADAPTER.new_decoder().decode(frame.encode(), 7) == [BookDelta(
        symbol="MNTUSDT", bids=[(0.4758, 2342.47), (0.4757, 0.0)], asks=[], first_seq=278547, last_seq=278547,
        cross_seq=1501100579, ts_exchange_ns=1784103477732_000_000, ts_recv_ns=7)]


def test_u_equal_1_is_a_delta_with_restarted_ids_not_a_snapshot() -> None:
    # orderbook.N reads u == 1 as a restart snapshot; orderbook.full says "re-sync from REST"
    (ev,) = ADAPTER.new_decoder().decode(full(1, 1501100900, b=[["0.4760", "5"]]), 0)
    assert type(ev) is BookDelta and (ev.first_seq, ev.last_seq, ev.cross_seq) == (1, 1, 1501100900)


@pytest.mark.parametrize("frame", [
    full(5, 6, kind="snapshot"),  # the stream sends deltas only
    full(5, 6).replace(',"seq":6', ""),  # no cross sequence: the splice could not place it
    full(5, 6).replace('"u":5', '"u":-5'),
    full(5, 6).replace('"seq":6', '"seq":%d' % 2**64),
    full(5, 6, b=[["0.4758", "-1"]]),
    full(5, 6, b=[["NaN", "1"]]),
], ids=["snapshot", "no-seq", "negative-u", "seq-beyond-int64", "negative-size", "nan-price"])
def test_malformed_full_book_frames_are_typed_errors_naming_the_venue(frame: str) -> None:
    with pytest.raises(AdapterError) as info:
        ADAPTER.new_decoder().decode(frame, 0)
    assert info.value.exchange == "bybit_spot"


def test_control_frames_and_other_topics() -> None:
    dec = ADAPTER.new_decoder()
    ack = '{"success":true,"ret_msg":"subscribe","conn_id":"c","req_id":"subscribe-0","op":"subscribe"}'
    pong = '{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}'
    refused = '{"success":false,"ret_msg":"Invalid symbol :[orderbook.full.NOPE]","conn_id":"c","op":"subscribe"}'
    assert dec.decode(ack, 0) == [] and dec.decode(pong, 0) == []
    (notice,) = dec.decode(refused, 0)
    assert isinstance(notice, VenueNotice) and "NOPE" in notice.message
    # a legacy v2 frame (inverse, 2021) is no spot topic: nothing
    assert dec.decode('{"topic":"orderBookL2_25.BTCUSD","type":"snapshot","data":[],"cross_seq":1}', 0) == []
    # the orderbook.N topics of the same endpoint still decode as bybit's do
    (snap,) = dec.decode(full(9, 10, b=[["1", "2"]]).replace("orderbook.full.", "orderbook.50.").replace(
        '"type":"delta"', '"type":"snapshot"'), 0)
    assert type(snap) is BookSnapshot and snap.cross_seq is None and snap.seq == 9


def test_rest_full_orderbook_is_a_snapshot_at_u_and_seq() -> None:
    body = rest(439925, 2164890076, b=[["62998.1", "0.396837"]], a=[["62998.2", "0.198738"]])
    expected = BookSnapshot(symbol="MNTUSDT", bids=[(62998.1, 0.396837)], asks=[(62998.2, 0.198738)], seq=439925,
                            cross_seq=2164890076, source=SnapshotSource.REST, ts_exchange_ns=1784103578352_000_000,
                            ts_recv_ns=3)
    assert ADAPTER.parse_rest_snapshot(body, symbol="MNTUSDT", ts_recv_ns=3) == expected
    assert ADAPTER.parse_rest_snapshot(orjson.loads(body), symbol="MNTUSDT", ts_recv_ns=3) == expected  # ccxt's dict


@pytest.mark.parametrize("body", [
    '{"retCode":10001,"retMsg":"Illegal category","result":{},"retExtInfo":{},"time":1}',
    rest(1, 2, [], []).replace(',"seq":2', ""),
    rest(1, 2, [], []).replace('"u":1', '"u":"x"'),
], ids=["error-code", "no-seq", "bad-u"])
def test_bad_rest_bodies_are_typed_errors(body: str) -> None:
    with pytest.raises(AdapterError) as info:
        ADAPTER.parse_rest_snapshot(body, symbol="MNTUSDT")
    assert info.value.exchange == "bybit_spot"


def test_the_bybit_adapter_is_unchanged_by_the_full_book() -> None:
    """bybit keeps reading every ``orderbook.*`` message as ``orderbook.N`` (u == 1: snapshot)."""
    (ev,) = get_adapter("bybit").new_decoder().decode(full(1, 5), 0)
    assert type(ev) is BookSnapshot and ev.cross_seq is None


def _write(path: Path, records: list[tuple[RecordKind, str, str | None]]) -> None:
    w = RecordingWriter(path, venue="bybit_spot")
    for i, (kind, data, url) in enumerate(records):
        w.write(kind, 1_000 + i, data, url=url)
    w.close()


URL = "http://x/v5/market/full_orderbook?category=spot&symbol=MNTUSDT"
WS = "ws://x/v5/public/spot"


def test_replay_splices_rest_and_resyncs_after_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deltas before the REST book are spliced by (seq, u); u = 1 restarts the ids: the next REST
    book (its u counting from 1) is spliced the same way and the book ends as the venue's."""
    path = tmp_path / "restart.bkrec.jsonl"
    _write(path, [
        (RecordKind.OPEN, "", WS),
        (RecordKind.RECV, full(100, 900, b=[["0.4700", "1"]]), None),
        (RecordKind.RECV, full(101, 907, a=[["0.4800", "2"]]), None),
        (RecordKind.REST, rest(100, 900, b=[["0.4700", "1"]], a=[["0.4900", "3"]]), URL),  # at u=100
        (RecordKind.RECV, full(102, 911, b=[["0.4700", "0"], ["0.4710", "4"]]), None),
        (RecordKind.RECV, full(1, 950, b=[["0.4720", "5"]]), None),  # the service restarted
        (RecordKind.RECV, full(2, 953, a=[["0.4800", "0"]]), None),
        (RecordKind.REST, rest(1, 950, b=[["0.4720", "5"], ["0.4710", "4"]], a=[["0.4800", "2"], ["0.4900", "3"]]),
         URL),
        (RecordKind.RECV, full(3, 960, a=[["0.4950", "1"]]), None),
        (RecordKind.CLOSE, "", WS),
    ])
    sessions: dict[str, BookSession] = {}

    def capture(symbol: str, caps: object) -> BookSession:
        sessions[symbol] = s = BookSession(symbol, caps)  # type: ignore[arg-type]
        return s

    monkeypatch.setattr(replay_mod, "BookSession", capture)
    j = replay(ADAPTER, [path]).as_json()
    mnt = j["per_instrument"]["MNTUSDT"]
    # applied: 101, 102 on the first REST book; 2 (the restart REST book is at u=1), 3 on the second
    assert (j["snapshots"], j["deltas_applied"], j["gaps"], j["parse_errors"]) == (2, 4, 0, 0), j
    assert (mnt["state"], mnt["last_seq"], mnt["seq_restarts"]) == ("synced", 3, 1), mnt
    assert sessions["MNTUSDT"].book.equals([(0.4720, 5.0), (0.4710, 4.0)], [(0.4900, 3.0), (0.4950, 1.0)])
    assert j["ok"] is True, j["problems"]


def test_replay_refuses_a_rest_book_from_before_the_restart(tmp_path: Path) -> None:
    """Without the cross sequence the old REST book (u=500 > 1, 2) would be spliced onto the
    restarted ids as if they were older: here it is refused as stale."""
    path = tmp_path / "old.bkrec.jsonl"
    _write(path, [
        (RecordKind.OPEN, "", WS),
        (RecordKind.RECV, full(1, 950, b=[["0.4720", "5"]]), None),
        (RecordKind.RECV, full(2, 953, a=[["0.4800", "2"]]), None),
        (RecordKind.REST, rest(500, 940, b=[["0.4600", "9"]], a=[["0.4900", "3"]]), URL),
        (RecordKind.CLOSE, "", WS),
    ])
    j = replay(ADAPTER, [path]).as_json()
    assert (j["snapshots"], j["stale_snapshots"], j["per_instrument"]["MNTUSDT"]["state"]) == (
        0, 1, "awaiting_snapshot")
    assert [a["kind"] for a in j["alerts"]] == ["stale_snapshot"]


def test_the_simulator_session_fixture_replays_clean() -> None:
    j = replay(ADAPTER, [SESSION]).as_json()
    assert (j["instruments"], j["snapshots"], j["gaps"], j["parse_errors"], j["synced_instruments"]) == (2, 2, 0, 0, 2)
    assert j["ok"] is True and j["deltas_applied"] >= 70
