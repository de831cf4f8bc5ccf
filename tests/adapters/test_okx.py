"""OKX adapter: real captures reproduce PROVENANCE's counts; synthesised seqId streams,
faults and bad input are classified, never applied twice, never crash."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pytest
from _recorded import REAL, Run, drive, inserted, records, replay_records, without

from bookkeeper.actions import AlertKind, SyncState
from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import ChecksumKind, SequenceModel, SpliceRule
from bookkeeper.checksum import okx_checksum
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, SnapshotSource, Subscribed, Trade, VenueNotice
from bookkeeper.io.recording import Record, RecordKind
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession
from bookkeeper.types import TradeSide

OKX = get_adapter("okx")
BOOKS_3INST = "okx/okx_v5_books_3inst_2022-05-13.cfcap.txt.gz"
TBT_1 = "okx/okex_v5_books-l2-tbt_2021-07-22.cfcap.txt.gz"
TBT_3 = "okx/okex_v5_books-l2-tbt_2021-07-22_conn3.cfcap.txt.gz"


def decode(frame: bytes | str) -> list:
    return OKX.new_decoder().decode(frame, 7)


# ------------------------------------------------------------------ real captures (PROVENANCE)
@pytest.mark.parametrize(
    ("name", "messages", "instruments", "snapshots", "updates", "verified"),
    [
        (BOOKS_3INST, 410, 3, 3, 287, 290),  # "checksums reproduced 290/290; snapshots 3, updates 287"
        (TBT_1, 1616, 10, 10, 1494, 1504),  # "1504/1504; snapshots 10, updates 1494"
        (TBT_3, 1534, 10, 10, 1412, 1422),  # "1422/1422; snapshots 10, updates 1412"
    ],
)
def test_real_capture_reproduces_provenance_counts(name, messages, instruments, snapshots, updates, verified):
    j = replay(OKX, [REAL / name]).as_json()
    assert j["messages"] == messages
    assert j["instruments"] == instruments
    assert j["snapshots"] == snapshots
    assert j["deltas_applied"] == updates
    assert j["checksums_verified"] == verified
    assert j["checksum_mismatches"] == 0
    assert j["gaps"] == 0
    assert j["crossed"] == 0
    assert j["parse_errors"] == 0
    assert j["synced_instruments"] == instruments
    assert j["ok"] is True


# ------------------------------------------------------------------ golden frames
def test_golden_update_frame():
    frame = (b'{"arg":{"channel":"books","instId":"BTC-USD-220527"},"action":"update","data":[{"asks":'
             b'[["30249.4","0","0","0"],["30261","4","0","1"],["30310.3","19","0","1"]],"bids":'
             b'[["30182.6","452","0","1"]],"ts":"1652459225464","checksum":-914047754}]}')
    assert decode(frame) == [BookDelta(
        symbol="BTC-USD-220527",
        bids=[(30182.6, 452.0)], asks=[(30249.4, 0.0), (30261.0, 4.0), (30310.3, 19.0)],
        first_seq=None, last_seq=None, prev_seq=None, checksum=-914047754,
        bids_raw=[("30182.6", "452")], asks_raw=[("30249.4", "0"), ("30261", "4"), ("30310.3", "19")],
        ts_exchange_ns=1652459225464_000_000, ts_recv_ns=7,
    )]


def test_golden_snapshot_frame():
    frame = records(TBT_1)[51].data  # the BTC-USD-210924-42000-P snapshot, as received
    assert frame.startswith(b'{"arg":{"channel":"books-l2-tbt","instId":"BTC-USD-210924-42000-P"}')
    assert decode(frame) == [BookSnapshot(
        symbol="BTC-USD-210924-42000-P",
        bids=[(0.335, 5.0), (0.3345, 300.0), (0.334, 301.0), (0.3295, 305.0), (0.0005, 10.0)],
        asks=[(0.3415, 5.0), (0.342, 300.0), (0.3425, 301.0), (0.3445, 305.0)],
        seq=None, checksum=-1431042442,
        bids_raw=[("0.335", "5"), ("0.3345", "300"), ("0.334", "301"), ("0.3295", "305"), ("0.0005", "10")],
        asks_raw=[("0.3415", "5"), ("0.342", "300"), ("0.3425", "301"), ("0.3445", "305")],
        source=SnapshotSource.WS, ts_exchange_ns=1626995750044_000_000, ts_recv_ns=7,
    )]


def test_golden_control_and_other_channels():
    assert decode(b"pong") == []
    assert decode(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}') == [
        Subscribed(symbol="BTC-USDT", channel="books")]
    assert decode(b'{"event":"error","code":"60012","msg":"Invalid request","connId":"a4d3ae55"}') == [
        VenueNotice(kind="error", message="60012: Invalid request")]
    tickers = records(BOOKS_3INST)
    ticker = next(r.data for r in tickers if b'"channel":"tickers"' in r.data and b'"data"' in r.data)
    assert decode(ticker) == []
    assert decode(b'{"arg":{"channel":"books5","instId":"BTC-USDT"},"data":[]}') == []
    assert decode(b'{"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":"BTC-USD-220527",'
                  b'"tradeId":"7849","px":"30218.8","sz":"1","side":"buy","ts":"1652459199958"}]}') == [
        Trade(symbol="BTC-USD-220527", trade_id="7849", price=Decimal("30218.8"), qty=Decimal("1"),
              side=TradeSide.BUY,
              ts_exchange_ns=1652459199958_000_000, ts_recv_ns=7)]


def test_seq_fields_map_to_first_last_prev_and_heartbeat():
    base = {"arg": {"channel": "books", "instId": "BTC-USDT"}}
    snap = decode(orjson.dumps({**base, "action": "snapshot", "data": [
        {"asks": [["101", "1", "0", "1"]], "bids": [["99", "2", "0", "1"]], "ts": "1", "checksum": 0,
         "seqId": 10, "prevSeqId": -1}]}))
    assert snap[0].seq == 10 and snap[0].checksum == 0
    upd = decode(orjson.dumps({**base, "action": "update", "data": [
        {"asks": [], "bids": [["99", "3", "0", "1"]], "ts": "2", "checksum": 0, "seqId": 15, "prevSeqId": 10}]}))
    assert (upd[0].first_seq, upd[0].last_seq, upd[0].prev_seq) == (15, 15, 10)
    hb = decode(orjson.dumps({**base, "action": "update", "data": [
        {"asks": [], "bids": [], "ts": "3", "checksum": 0, "seqId": 15, "prevSeqId": 15}]}))
    assert hb == [Heartbeat(symbol="BTC-USDT", seq=15, ts_recv_ns=7)]
    reset = decode(orjson.dumps({**base, "action": "update", "data": [
        {"asks": [], "bids": [["98", "1", "0", "1"]], "ts": "4", "checksum": 0, "seqId": 3, "prevSeqId": 15}]}))
    assert (reset[0].first_seq, reset[0].last_seq, reset[0].prev_seq) == (3, 3, 15)


def test_docs_sequence_example_applies_without_gaps():
    """§5.2's example: snapshot (-1 -> 10), update (10 -> 15), no-change (15 -> 15),
    reset (15 -> 3), update (3 -> 5)."""
    s = BookSession("BTC-USDT", OKX.capabilities)
    dec = OKX.new_decoder()
    chain = [("snapshot", -1, 10, [["99", "1", "0", "1"]]), ("update", 10, 15, [["98", "1", "0", "1"]]),
             ("update", 15, 15, []), ("update", 15, 3, [["97", "1", "0", "1"]]),
             ("update", 3, 5, [["96", "1", "0", "1"]])]
    for action, prev, seq, bids in chain:
        frame = orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action, "data": [
            {"asks": [["101", "1", "0", "1"]] if action == "snapshot" else [], "bids": bids, "ts": "1",
             "checksum": 0, "seqId": seq, "prevSeqId": prev}]})
        for ev in dec.decode(frame):
            s.handle(ev)
    assert s.state is SyncState.SYNCED
    assert s.last_seq == 5
    assert (s.stats.gaps, s.stats.deltas_applied, s.stats.unsequenced) == (0, 3, 0)
    assert s.book.bids() == [(99.0, 1.0), (98.0, 1.0), (97.0, 1.0), (96.0, 1.0)]


def test_checksum_vector_13_1():
    frame = orjson.dumps({"arg": {"channel": "books", "instId": "ETH-USDT"}, "action": "snapshot", "data": [
        {"asks": [["3366.8", "9", "0", "1"], ["3368", "8", "0", "1"]],
         "bids": [["3366.1", "7", "0", "1"], ["3366", "6", "0", "1"]], "ts": "1", "checksum": -1881014294}]})
    s = BookSession("ETH-USDT", OKX.capabilities)
    for ev in decode(frame):
        s.handle(ev)
    assert (s.stats.checksums_verified, s.stats.checksum_mismatches) == (1, 0)


# ------------------------------------------------------------------ synthesised seqId streams
def with_seq_chain(recs: list[Record], seed: int = 7) -> tuple[list[Record], dict[int, tuple[int, int]]]:
    """Add a consistent seqId/prevSeqId chain (random steps, per instrument) to every book push.
    Returns the new records and {record index: (prevSeqId, seqId)}."""
    rng = random.Random(seed)
    last: dict[str, int] = {}
    out: list[Record] = []
    ids: dict[int, tuple[int, int]] = {}
    for i, r in enumerate(recs):
        if r.kind is RecordKind.RECV and b'"action"' in r.data:
            obj = orjson.loads(r.data)
            sym = obj["arg"]["instId"]
            if obj["action"] == "snapshot":
                prev, seq = -1, rng.randrange(1_000, 1_000_000)
            else:
                prev, seq = last[sym], last[sym] + rng.randrange(1, 5)
            last[sym] = seq
            obj["data"][0]["prevSeqId"] = prev
            obj["data"][0]["seqId"] = seq
            ids[i] = (prev, seq)
            r = Record(r.ts_recv_ns, r.kind, orjson.dumps(obj), r.url, r.source)
        out.append(r)
    return out, ids


@pytest.fixture(scope="module")
def seq_stream() -> tuple[list[Record], dict[int, tuple[int, int]]]:
    return with_seq_chain(records(TBT_1))


def test_seq_chain_stream_replays_with_zero_gaps(tmp_path, seq_stream):
    recs, ids = seq_stream
    j = replay_records(tmp_path, "okx", recs).as_json()
    assert (j["snapshots"], j["deltas_applied"], j["checksums_verified"]) == (10, 1494, 1504)
    assert (j["gaps"], j["checksum_mismatches"], j["duplicates"], j["stale_dropped"], j["parse_errors"]) == (0,) * 5
    assert sum(v["unsequenced"] for v in j["per_instrument"].values()) == 0
    final = {}
    for i, (_, seq) in ids.items():
        final[orjson.loads(recs[i].data)["arg"]["instId"]] = seq
    assert {k: v["last_seq"] for k, v in j["per_instrument"].items()} == final


def test_heartbeats_and_reset_in_seq_stream_change_nothing(seq_stream):
    recs, ids = seq_stream
    base = drive("okx", recs)
    idx, d = next((i, d) for i, d in base.applied if i > 400)
    hb = orjson.dumps({"arg": {"channel": "books-l2-tbt", "instId": d.symbol}, "action": "update",
                       "data": [{"asks": [], "bids": [], "ts": "1", "checksum": 0, "seqId": d.last_seq,
                                 "prevSeqId": d.last_seq}]})
    run = drive("okx", inserted(recs, idx + 1, Record(0, RecordKind.RECV, hb)))
    assert run.total("gaps") == 0 and run.total("deltas_applied") == base.total("deltas_applied")
    assert run.book(d.symbol) == base.book(d.symbol)


def test_dropped_frame_in_seq_stream_is_a_gap_at_that_point(seq_stream):
    recs, ids = seq_stream
    base = drive("okx", recs)
    # the 200th applied delta; its successor of the same symbol must report the gap
    idx, dropped = base.applied[200]
    nxt_idx, nxt = next((i, d) for i, d in base.applied if i > idx and d.symbol == dropped.symbol)
    run = drive("okx", without(recs, idx))
    gaps = run.gap_alerts()
    assert len(gaps) == 1
    assert gaps[0].symbol == dropped.symbol
    assert gaps[0].seq == nxt.last_seq == ids[nxt_idx][1]
    assert nxt.prev_seq == dropped.last_seq  # the pointer names exactly the missing message
    assert run.sessions[dropped.symbol].state is SyncState.RECOVERING
    assert run.total("checksum_mismatches") == 0  # caught by ids before any checksum could


def test_duplicated_and_stale_seq_frames_are_never_applied_twice(seq_stream):
    recs, _ = seq_stream
    base = drive("okx", recs)
    idx, d = base.applied[300]
    dup = drive("okx", inserted(recs, idx + 1, recs[idx]))
    assert dup.total("duplicates") == 1
    assert dup.total("deltas_applied") == base.total("deltas_applied")
    assert dup.total("checksums_verified") == base.total("checksums_verified")
    assert (dup.total("gaps"), dup.total("checksum_mismatches")) == (0, 0)
    assert dup.book(d.symbol) == base.book(d.symbol)
    # an old frame re-delivered much later is stale
    later = max(i for i, x in base.applied if x.symbol == d.symbol)
    stale = drive("okx", inserted(recs, later + 1, recs[idx]))
    assert stale.total("stale_dropped") == 1
    assert stale.total("deltas_applied") == base.total("deltas_applied")
    assert (stale.total("gaps"), stale.total("checksum_mismatches")) == (0, 0)
    assert stale.book(d.symbol) == base.book(d.symbol)


def test_reordered_seq_frames_are_a_gap_not_a_double_apply(seq_stream):
    recs, _ = seq_stream
    base = drive("okx", recs)
    (i1, d1), (i2, d2) = next(((a, b) for a, b in zip(base.applied, base.applied[1:])
                               if a[1].symbol == b[1].symbol and a[0] > 500), (None, None))
    swapped = recs[:i1] + [recs[i2]] + recs[i1 + 1:i2] + [recs[i1]] + recs[i2 + 1:]
    run = drive("okx", swapped)
    gaps = run.gap_alerts()
    assert len(gaps) == 1 and gaps[0].symbol == d1.symbol and gaps[0].seq == d2.last_seq
    assert run.total("deltas_applied") < base.total("deltas_applied")
    assert run.total("checksum_mismatches") == 0


def test_rest_snapshot_bridges_by_prev_bracket():
    """REST flow (§5.2 ⚠): deltas buffered, REST seqId S, first kept has prevSeqId <= S < seqId."""
    s = BookSession("BTC-USDT", OKX.capabilities)
    dec = OKX.new_decoder()
    for prev, seq, px in [(90, 95, "98"), (95, 103, "97"), (103, 110, "96")]:
        for ev in dec.decode(orjson.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                                           "data": [{"asks": [], "bids": [[px, "1", "0", "1"]], "ts": "1",
                                                     "checksum": 0, "seqId": seq, "prevSeqId": prev}]})):
            s.handle(ev)
    body = {"code": "0", "msg": "", "data": [{"asks": [["101", "2", "0", "1"]], "bids": [["99", "1", "0", "1"]],
                                              "ts": "1652459225464", "seqId": 100}]}
    snap = OKX.parse_rest_snapshot(body, url="https://www.okx.com/api/v5/market/books?instId=BTC-USDT&sz=400")
    assert snap.symbol == "BTC-USDT" and snap.seq == 100 and snap.source is SnapshotSource.REST
    assert snap.bids_raw == [("99", "1")] and snap.ts_exchange_ns == 1652459225464_000_000
    s.on_snapshot(snap)
    assert s.state is SyncState.SYNCED and s.last_seq == 110
    assert (s.stats.bridged, s.stats.stale_dropped, s.stats.gaps) == (1, 1, 0)
    assert s.book.bids() == [(99.0, 1.0), (97.0, 1.0), (96.0, 1.0)]


def test_rest_snapshot_errors():
    with pytest.raises(AdapterError):
        OKX.parse_rest_snapshot({"code": "51001", "msg": "Instrument ID does not exist", "data": []},
                                symbol="NOPE-USDT")
    with pytest.raises(AdapterError):
        OKX.parse_rest_snapshot(b'{"code":"0","data":[{"asks":[],"bids":[],"ts":"1"}]}')  # no symbol
    snap = OKX.parse_rest_snapshot(b'{"code":"0","data":[{"asks":[],"bids":[["1","2","0","1"]],"ts":"1"}]}',
                                   symbol="X-Y")
    assert snap.seq is None and snap.bids == [(1.0, 2.0)]


# ------------------------------------------------------------------ checksum faults (no ids)
def test_second_snapshot_mid_stream_replaces_the_book():
    recs = records(BOOKS_3INST)
    base = drive("okx", recs)
    sym = "BTC-USDT"
    assert len(base.book(sym)[0]) > 3
    bids = [["29000.1", "0.5", "0", "1"], ["29000", "1.25", "0", "2"]]
    asks = [["29001", "0.75", "0", "1"]]
    cs = okx_checksum([(b[0], b[1]) for b in bids], [(a[0], a[1]) for a in asks])
    snap = orjson.dumps({"arg": {"channel": "books", "instId": sym}, "action": "snapshot",
                         "data": [{"asks": asks, "bids": bids, "ts": "1652459236000", "checksum": cs}]})
    run = drive("okx", recs + [Record(recs[-1].ts_recv_ns + 1, RecordKind.RECV, snap)])
    s = run.sessions[sym]
    assert s.stats.snapshots == 2 and s.state is SyncState.SYNCED
    assert run.book(sym) == ([(29000.1, 0.5), (29000.0, 1.25)], [(29001.0, 0.75)])
    assert run.total("checksums_verified") == base.total("checksums_verified") + 1
    assert run.total("checksum_mismatches") == 0


def first_mismatch(run: Run) -> list:
    return [a for a in run.alerts if a.kind is AlertKind.CHECKSUM_MISMATCH]


def test_dropping_an_update_that_touches_top_levels_surfaces_as_a_mismatch():
    recs = records(BOOKS_3INST)
    base = drive("okx", recs)
    sym = "BTC-USDT"
    mine = [(i, d) for i, d in base.applied if d.symbol == sym]
    # an update that changes the best bid (inside the top 25 by construction)
    idx, d = next((i, d) for i, d in mine[5:] if d.bids and d.bids[0][0] >= base.sessions[sym].book.best_bid()[0] * 0.999)
    nxt_idx = next(i for i, _ in mine if i > idx)
    run = drive("okx", without(recs, idx))
    alerts = first_mismatch(run)
    assert len(alerts) >= 1
    assert alerts[0].symbol == sym and alerts[0].seq is None  # no ids on this 2022 stream
    assert run.sessions[sym].stats.checksum_mismatches == 1
    # it surfaced at the very next update of that symbol: everything before it still verified
    assert run.sessions[sym].stats.checksums_verified == 1 + sum(1 for i, _ in mine if i < nxt_idx and i != idx)
    assert run.sessions[sym].state is SyncState.RECOVERING


def test_corrupting_one_level_size_is_a_mismatch_at_that_frame():
    recs = records(BOOKS_3INST)
    base = drive("okx", recs)
    idx, d = base.applied[100]
    obj = orjson.loads(recs[idx].data)
    side = "bids" if obj["data"][0]["bids"] else "asks"
    row = obj["data"][0][side][0]
    row[1] = str(float(row[1]) + 1) if row[1] != "0" else "1"
    bad = recs[:idx] + [Record(recs[idx].ts_recv_ns, RecordKind.RECV, orjson.dumps(obj))] + recs[idx + 1:]
    run = drive("okx", bad)
    alerts = first_mismatch(run)
    assert len(alerts) == 1 and alerts[0].symbol == d.symbol
    verified_before = sum(1 for i, x in base.applied if x.symbol == d.symbol and i < idx) + 1
    assert run.sessions[d.symbol].stats.checksums_verified == verified_before


# ------------------------------------------------------------------ bad input
BOOK = b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[%s],"bids":[],"ts":"1","checksum":5}]}'


@pytest.mark.parametrize(
    "frame",
    [
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"upd',  # truncated JSON
        b"\xff\xfe",
        b"[1,2,3]",
        BOOK % b'[30000.5,"1","0","1"]',  # number instead of the wire string
        BOOK % b'["30000.5",1,"0","1"]',
        BOOK % b'["30000.5","NaN","0","1"]',
        BOOK % b'["30000.5","-1","0","1"]',
        BOOK % b'["30000.5","inf","0","1"]',
        BOOK % b'["0","1","0","1"]',  # non-positive price
        BOOK % b'["-5","1","0","1"]',
        BOOK % b'["30000.5","1e300","0","1"]',  # absurd size
        BOOK % b'["1e20","1","0","1"]',
        BOOK % b'["abc","1","0","1"]',
        BOOK % b'["30000.5"]',
        BOOK % b'"x"',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"checksum":"5"}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"seqId":1.5,"prevSeqId":1}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"seqId":true,"prevSeqId":1}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"seqId":99999999999999999999999,"prevSeqId":1}]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"partial","data":[]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":{"asks":[]}}',
        b'{"arg":{"channel":"books"},"action":"update","data":[]}',
    ],
)
def test_bad_input_raises_adapter_error(frame):
    with pytest.raises(AdapterError) as info:
        decode(frame)
    assert info.value.exchange == "okx"


def test_unknown_channels_yield_nothing():
    assert decode(b'{"arg":{"channel":"mark-price","instId":"BTC-USDT"},"data":[{"markPx":"1"}]}') == []
    assert decode(b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["1","1","0","1"]]}]}') == []
    assert decode(b'{"op":"something"}') == []
    assert decode(b'{"event":"unsubscribe","arg":{"channel":"books","instId":"BTC-USDT"}}') == []


def test_bad_frame_is_counted_by_replay_and_leaves_the_book_unchanged(tmp_path):
    recs = records(BOOKS_3INST)
    base = drive("okx", recs)
    idx, d = base.applied[120]
    before = drive("okx", recs, stop=idx)
    bad = BOOK.replace(b"BTC-USDT", d.symbol.encode()) % b'["30000.5","NaN","0","1"]'
    after = drive("okx", inserted(recs, idx, Record(0, RecordKind.RECV, bad)), stop=idx + 1)
    assert after.parse_errors == 1
    assert after.book(d.symbol) == before.book(d.symbol)
    assert after.sessions[d.symbol].stats.invalid_inputs == 1
    j = replay_records(tmp_path, "okx", inserted(recs, idx, Record(0, RecordKind.RECV, bad))).as_json()
    assert j["parse_errors"] == 1
    assert j["ok"] is False


# ------------------------------------------------------------------ capabilities and live dialogue
def test_capabilities_and_live_spec():
    caps = OKX.capabilities
    assert OKX.name == "okx"
    assert caps.sequence_model is SequenceModel.PREV_POINTER
    assert caps.ws_splice_rule is SpliceRule.PREV_EXACT and caps.splice_rule is SpliceRule.PREV_BRACKET
    assert caps.checksum is ChecksumKind.CRC32_INTERLEAVED_25
    assert caps.ws_snapshot_on_subscribe and caps.rest_snapshot
    assert caps.ping_interval_s is not None and caps.ping_interval_s < 30
    assert OKX.ws_url("wss://ws.okx.com:8443", ["BTC-USDT"]) == "wss://ws.okx.com:8443/ws/v5/public"
    assert [orjson.loads(m) for m in OKX.subscribe_messages(["BTC-USDT", "ETH-USDT"])] == [
        {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"},
                                     {"channel": "books", "instId": "ETH-USDT"}]}]
    assert [orjson.loads(m) for m in OKX.unsubscribe_messages(["BTC-USDT"])] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]}]
    assert OKX.ping_message() == "ping"
