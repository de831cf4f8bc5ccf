"""KuCoin spot ``/market/level2`` adapter: parsing, the recorded 2021-04-25 session, faults.

Counts come from fixtures/real/PROVENANCE.md (``kucoin/kucoin_spot_level2_2021-04-25``):
instruments 9, with REST snapshot 9, bridged 9; deltas 3853 (buffered before snapshot 9,
stale dropped 48, applied 3805); gaps 0; crossed 0.
"""

from __future__ import annotations

import random

import orjson
import pytest
from _recorded import (
    REAL,
    check_drop_is_gap,
    check_duplicate_is_ignored,
    check_late_copy_is_stale,
    check_swap_is_gap,
    droppable,
    drive,
    first_rest_index,
    records,
    replay_records,
    rest_with_seq,
    without,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from bookkeeper.actions import AlertKind, SyncState
from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource, Subscribed, VenueNotice
from bookkeeper.io.recording import Record, RecordKind
from bookkeeper.io.replay import replay
from bookkeeper.ports import Adapter, LiveSpec
from bookkeeper.session import BookSession

WS = "kucoin/kucoin_spot_level2_2021-04-25.ws.cfcap.txt.gz"
REST = "kucoin/kucoin_spot_level2_2021-04-25.rest_level2.cfcap.txt.gz"
KUCOIN = get_adapter("kucoin")


def frame(data: dict, *, topic: str = "/market/level2:BTC-USDT", subject: str = "trade.l2update") -> bytes:
    return orjson.dumps({"type": "message", "topic": topic, "subject": subject, "data": data})


def l2(first: int, last: int, asks: list | None = None, bids: list | None = None, **extra) -> bytes:
    data = {"sequenceStart": first, "sequenceEnd": last, "symbol": "BTC-USDT",
            "changes": {"asks": asks or [], "bids": bids or []}, **extra}
    return frame(data)


def decode(raw: bytes | str) -> list:
    return KUCOIN.new_decoder().decode(raw, 7)


@pytest.fixture(scope="module")
def recs() -> list[Record]:
    return records(WS, REST)


@pytest.fixture(scope="module")
def clean(recs):
    return drive("kucoin", recs)


# ---------------------------------------------------------------- declaration
def test_adapter_declares_range_model_with_level_sequences():
    caps = KUCOIN.capabilities
    assert isinstance(KUCOIN, Adapter) and isinstance(KUCOIN, LiveSpec)
    assert KUCOIN.name == caps.venue == "kucoin"
    assert caps.sequence_model is SequenceModel.CONTIGUOUS_RANGE
    assert caps.splice_rule is SpliceRule.RANGE_NEXT
    assert caps.level_sequences is True and caps.rest_snapshot is True
    assert not caps.ws_snapshot_on_subscribe


def test_live_spec_subscribes_level2_topics_in_chunks_of_100():
    syms = [f"S{i}-USDT" for i in range(150)]
    subs = [orjson.loads(m) for m in KUCOIN.subscribe_messages(syms)]
    assert [s["topic"].count(",") + 1 for s in subs] == [100, 50]
    assert subs[0]["topic"].startswith("/market/level2:S0-USDT,S1-USDT")
    assert subs[0]["type"] == "subscribe" and subs[0]["response"] is True
    assert orjson.loads(KUCOIN.unsubscribe_messages(["A-B"])[0])["type"] == "unsubscribe"
    assert orjson.loads(KUCOIN.ping_message())["type"] == "ping"


# ---------------------------------------------------------------- parsing
def test_l2update_maps_range_levels_and_level_sequences():
    [d] = decode(l2(101, 104, asks=[["10.5", "2", "102"], ["11", "0", "104"]], bids=[["9.5", "1.25", "103"]],
                    time=1_700_000_000_123))
    assert d == BookDelta(symbol="BTC-USDT", bids=[(9.5, 1.25)], asks=[(10.5, 2.0), (11.0, 0.0)], first_seq=101,
                          last_seq=104, bid_seqs=[103], ask_seqs=[102, 104],
                          ts_exchange_ns=1_700_000_000_123_000_000, ts_recv_ns=7)


def test_price_zero_is_a_sequence_placeholder_not_a_level():
    [d] = decode(l2(5, 7, asks=[["0", "0", "5"], ["2", "1", "6"]], bids=[["0", "0", "7"]]))
    assert d.asks == [(2.0, 1.0)] and d.ask_seqs == [6]
    assert d.bids == [] and d.bid_seqs == []
    assert (d.first_seq, d.last_seq) == (5, 7)  # the range still counts for continuity


def test_symbol_falls_back_to_topic():
    raw = frame({"sequenceStart": 1, "sequenceEnd": 1, "changes": {"asks": [], "bids": []}},
                topic="/market/level2:ETH-BTC")
    assert decode(raw)[0].symbol == "ETH-BTC"


@pytest.mark.parametrize("raw", [
    b'{"type":"welcome","id":"x"}',
    b'{"type":"pong","id":"1"}',
    b'{"type":"message","topic":"/market/ticker:BTC-USDT","subject":"trade.ticker","data":{"price":"1"}}',
    b'{"type":"message","topic":"/market/match:BTC-USDT","subject":"trade.l3match","data":{}}',
    b'{"type":"somethingnew","data":1}',
])
def test_control_frames_and_unknown_channels_yield_nothing(raw):
    assert decode(raw) == []


def test_ack_and_error_frames():
    assert decode(b'{"type":"ack","id":"1"}') == [Subscribed(symbol=None, channel="level2")]
    [n] = decode(b'{"type":"error","id":"1","code":404,"data":"topic /market/level2:X not found"}')
    assert isinstance(n, VenueNotice) and "404" in n.message


BAD_FRAMES = {
    "truncated json": l2(1, 2, asks=[["1", "1", "2"]])[:-7],
    "not an object": b'[1,2,3]',
    "empty": b"",
    "no type": b'{"data":{}}',
    "data not object": frame([1, 2]),  # type: ignore[arg-type]
    "start float": l2(1.5, 2),  # type: ignore[arg-type]
    "start bool": l2(True, 2),  # type: ignore[arg-type]
    "start garbage string": l2("12a", 13),  # type: ignore[arg-type]
    "start negative": l2(-1, 2),
    "start huge": l2(2**63, 2**63 + 1),
    "start beyond u64": b'{"type":"message","subject":"trade.l2update","data":{"sequenceStart":'
                        b'123456789012345678901234567890,"sequenceEnd":1,"changes":{}}}',
    "end missing": frame({"sequenceStart": 1, "symbol": "BTC-USDT", "changes": {"asks": [], "bids": []}}),
    "end before start": l2(10, 9),
    "changes not object": frame({"sequenceStart": 1, "sequenceEnd": 1, "symbol": "BTC-USDT", "changes": []}),
    "side not list": l2(1, 1, asks={"1": "2"}),  # type: ignore[arg-type]
    "short change": l2(1, 1, asks=[["1", "2"]]),
    "nan size": l2(1, 1, asks=[["1", "NaN", "1"]]),
    "inf price": l2(1, 1, asks=[["inf", "1", "1"]]),
    "negative size": l2(1, 1, bids=[["1", "-2", "1"]]),
    "negative price": l2(1, 1, bids=[["-1", "2", "1"]]),
    "huge size": l2(1, 1, bids=[["1", "1e20", "1"]]),
    "price list": l2(1, 1, bids=[[["1"], "1", "1"]]),
    "size bool": l2(1, 1, bids=[["1", True, "1"]]),
    "change seq beyond end": l2(1, 2, bids=[["1", "1", "3"]]),
    "change seq not a number": l2(1, 2, bids=[["1", "1", "x"]]),
    "symbol not string": frame({"sequenceStart": 1, "sequenceEnd": 1, "symbol": 5,
                                "changes": {"asks": [], "bids": []}}, topic="/market/level2:"),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error(name):
    raw = BAD_FRAMES[name]
    with pytest.raises(AdapterError) as info:
        decode(raw)
    err = info.value
    assert err.exchange == "kucoin"
    assert isinstance(err.excerpt, str) and len(err.excerpt) <= 200


def test_adapter_error_names_the_symbol_when_known():
    with pytest.raises(AdapterError) as info:
        decode(l2(1, 1, asks=[["1", "nan", "1"]]))
    assert info.value.symbol == "BTC-USDT"


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                 max_leaves=12).map(orjson.dumps),
    st.builds(lambda a, b, px, sz, q: l2(a, b, asks=[[px, sz, q]]),
              st.integers(-5, 2**64 - 1), st.integers(-5, 2**64 - 1),
              st.one_of(st.text(max_size=6), st.floats(), st.integers(-(2**63), 2**63)),
              st.one_of(st.text(max_size=6), st.floats(), st.integers(-(2**63), 2**63)),
              st.one_of(st.text(max_size=6), st.integers(-(2**63), 2**63))),
))
def test_decoder_never_crashes(raw):
    """Any input yields a list of events or an AdapterError, nothing else."""
    try:
        out = decode(raw)
    except AdapterError:
        return
    assert isinstance(out, list)
    for ev in out:
        if isinstance(ev, BookDelta):
            assert all(p > 0 and s >= 0 for p, s in ev.bids + ev.asks)
            assert len(ev.bid_seqs) == len(ev.bids) and len(ev.ask_seqs) == len(ev.asks)


# ---------------------------------------------------------------- REST
BODY = b'{"code":"200000","data":{"time":1619378326628,"sequence":"1613277183892",' \
       b'"bids":[["242.649","5"]],"asks":[["243.0","1.5"],["244","2"]]}}'


def test_rest_snapshot_from_body_and_url():
    snap = KUCOIN.parse_rest_snapshot(BODY, url="https://api.kucoin.com/api/v3/market/orderbook/level2?symbol=BCHSV-USDT",
                                      ts_recv_ns=5)
    assert snap == BookSnapshot(symbol="BCHSV-USDT", bids=[(242.649, 5.0)], asks=[(243.0, 1.5), (244.0, 2.0)],
                                seq=1613277183892, source=SnapshotSource.REST,
                                ts_exchange_ns=1619378326628 * 1_000_000, ts_recv_ns=5)


def test_rest_snapshot_from_ccxt_dict():
    snap = KUCOIN.parse_rest_snapshot(orjson.loads(BODY), symbol="BTC-USDT")
    assert snap.symbol == "BTC-USDT" and snap.seq == 1613277183892


@pytest.mark.parametrize("body", [
    b'{"code":"400100","msg":"symbol not exists"}',
    b'{"code":"200000","data":{"sequence":"12x","bids":[],"asks":[]}}',
    b'{"code":"200000","data":{"sequence":1.5,"bids":[],"asks":[]}}',
    b'{"code":"200000","data":{"sequence":"5","bids":[["1","nan"]],"asks":[]}}',
    b'{"code":"200000","data":{"sequence":"5","bids":"x","asks":[]}}',
    b'{"code":"200000","data":[]}',
    b'{"code":"200000","data":{"sequence":"5"',
])
def test_bad_rest_bodies_raise_adapter_error(body):
    with pytest.raises(AdapterError):
        KUCOIN.parse_rest_snapshot(body, symbol="BTC-USDT")


def test_rest_snapshot_without_symbol_is_an_error():
    with pytest.raises(AdapterError):
        KUCOIN.parse_rest_snapshot(BODY)


# ---------------------------------------------------------------- calibration (§10.2)
def test_bridging_message_keeps_only_changes_newer_than_the_snapshot():
    """KuCoin's worked example: snapshot S=16; a message 15..19 whose changes carry ids 15, 16,
    18, 19: the changes at 15 and 16 are ignored, 18 and 19 applied, local = 19."""
    s = BookSession("BTC-USDT", KUCOIN.capabilities)
    [d] = decode(l2(15, 19, asks=[["101", "9", "15"], ["102", "7", "18"]], bids=[["99", "0", "16"], ["98", "4", "19"]]))
    s.on_delta(d)
    s.on_snapshot(BookSnapshot(symbol="BTC-USDT", bids=[(99.0, 1.0)], asks=[(101.0, 1.0)], seq=16,
                               source=SnapshotSource.REST), epoch=s.epoch)
    assert s.state is SyncState.SYNCED and s.last_seq == 19
    assert s.book.bids() == [(99.0, 1.0), (98.0, 4.0)]  # the delete at 16 is inside the snapshot
    assert s.book.asks() == [(101.0, 1.0), (102.0, 7.0)]  # the size at 15 is inside the snapshot
    [nxt] = decode(l2(20, 20, bids=[["99", "0", "20"]]))
    s.on_delta(nxt)
    assert s.book.bids() == [(98.0, 4.0)] and s.stats.gaps == 0


# ---------------------------------------------------------------- the recorded session
def test_recorded_session_reproduces_provenance_counts():
    r = replay(KUCOIN, [REAL / WS, REAL / REST]).as_json()
    assert (r["instruments"], r["snapshots"], r["bridged"], r["synced_instruments"]) == (9, 9, 9, 9)
    assert (r["deltas_applied"], r["stale_dropped"], r["buffered"]) == (3805, 48, 9)
    assert (r["gaps"], r["crossed"], r["parse_errors"], r["duplicates"], r["stale_snapshots"]) == (0, 0, 0, 0, 0)
    assert r["ok"] is True and r["rest_records"] == 9
    # PROVENANCE "deltas 3853": every l2update is either applied or dropped as stale
    assert r["deltas_applied"] + r["stale_dropped"] == 3853
    per = r["per_instrument"]
    assert all(v["state"] == "synced" and v["snapshots"] == 1 and v["buffered"] == 1 for v in per.values())
    assert per["BCHSV-USDT"]["deltas_applied"] == 2342


def test_recorded_books_are_never_crossed_and_match_the_drive_helper(clean):
    assert clean.total("deltas_applied") == 3805 and clean.parse_errors == 0
    for s in clean.sessions.values():
        s.book.check_integrity()
        assert not s.book.is_crossed()


# ---------------------------------------------------------------- faults
def test_dropping_one_delta_is_one_gap_at_that_point(recs, clean):
    cands = [c for c in droppable(clean) if c[1].symbol == "SNX-BTC"]
    j, d, n = cands[len(cands) // 2]
    check_drop_is_gap("kucoin", recs, clean, j, d, n, note="SNX-BTC middle")


def test_dropping_a_random_delta_always_yields_exactly_one_gap(recs, clean):
    cands = droppable(clean)
    for seed in range(12):
        j, d, n = random.Random(seed).choice(cands)
        check_drop_is_gap("kucoin", recs, clean, j, d, n, note=f"seed={seed} record={j} {d.symbol} {d.first_seq}")


def test_duplicated_frame_is_counted_not_applied(recs, clean):
    j, d, _ = droppable(clean)[100]
    check_duplicate_is_ignored("kucoin", recs, clean, j, d)


def test_old_frame_redelivered_later_is_stale(recs, clean):
    j, d, _ = droppable(clean)[50]
    check_late_copy_is_stale("kucoin", recs, clean, j, len(recs) - 1)


def test_swapped_frames_are_a_gap_never_applied_twice(recs, clean):
    j, _, n = droppable(clean)[200]
    k = next(i for i, d in clean.applied if d is n)
    check_swap_is_gap("kucoin", recs, clean, j, k)


def test_stale_rest_snapshot_is_reported_and_refetched(recs, clean):
    i = first_rest_index(recs, "symbol=SNX-BTC")
    s = clean.sessions["SNX-BTC"]
    assert s.stats.bridged == 1
    bad = list(recs)
    bad[i] = rest_with_seq(recs[i], "sequence", 1612844051000, quoted=True)  # far below the buffered delta
    run = drive("kucoin", bad)
    snx = run.sessions["SNX-BTC"]
    assert snx.stats.stale_snapshots == 1 and snx.stats.bridged == 0 and snx.stats.deltas_applied == 0
    assert snx.state is SyncState.AWAITING_SNAPSHOT
    [alert] = [a for a in run.alerts if a.kind is AlertKind.STALE_SNAPSHOT]
    assert alert.symbol == "SNX-BTC" and alert.seq == 1612844051000
    assert run.total("gaps") == 0
    assert sum(x.stats.bridged for x in run.sessions.values()) == 8


def test_replay_engine_reports_a_dropped_delta_as_a_gap(tmp_path, recs, clean):
    j, d, n = droppable(clean)[1000]
    r = replay_records(tmp_path, "kucoin", without(recs, j)).as_json()
    assert r["gaps"] == 1 and r["ok"] is False
    [alert] = [a for a in r["alerts"] if a["kind"] == "gap"]
    assert (alert["symbol"], alert["seq"]) == (n.symbol, n.last_seq)
    assert r["missed_ids"] == n.first_seq - d.first_seq


def test_replay_engine_counts_bad_frames_and_keeps_going(tmp_path, recs, clean):
    """Bad frames mid-stream are parse errors: no crash, the rest of the session replays."""
    j, d, _ = droppable(clean)[500]
    good = recs[j].data
    bad_frames = [good[: len(good) // 2], b"\x00\xff garbage", b'{"type":"message","subject":"trade.l2update"}']
    bad = list(recs)
    for k, payload in enumerate(bad_frames):
        bad.insert(j + k, Record(recs[j].ts_recv_ns, RecordKind.RECV, payload, None, 0))
    r = replay_records(tmp_path, "kucoin", bad).as_json()
    assert r["parse_errors"] == 3 and r["ok"] is False
    assert r["deltas_applied"] == 3805 and r["gaps"] == 0


def test_bad_frame_for_a_synced_symbol_leaves_its_book_unchanged(recs, clean):
    j, d, _ = droppable(clean)[300]
    obj = orjson.loads(recs[j].data)
    obj["data"]["changes"]["bids"] = [["1", "NaN", str(d.last_seq)]]
    corrupt = orjson.dumps(obj)
    bad = list(recs)
    bad[j] = Record(recs[j].ts_recv_ns, RecordKind.RECV, corrupt, None, 0)
    before = drive("kucoin", recs, stop=j)
    run = drive("kucoin", bad, stop=j + 1)
    assert run.parse_errors == 1
    assert run.book(d.symbol) == before.book(d.symbol)
    assert run.sessions[d.symbol].last_seq == before.sessions[d.symbol].last_seq
    # the frame may have been a delta: the book is no longer served as valid
    assert not run.sessions[d.symbol].is_synced
    assert run.sessions[d.symbol].stats.invalid_inputs == 1
