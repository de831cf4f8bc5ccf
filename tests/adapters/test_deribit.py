"""Deribit adapter: the real capture replays with PROVENANCE's exact counts, injected faults are
classified, malformed frames are AdapterErrors counted by replay, golden frames decode exactly."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, Heartbeat, Subscribed, VenueNotice
from bookkeeper.io.replay import replay
from bookkeeper.session import BookSession

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "fixtures/real/deribit/deribit_book_raw_options_2021-07-22.cfcap.txt.gz"
LIQUID = "BTC-24SEP21-8000-P"  # 1 snapshot + 30 changes in the capture

ADAPTER = get_adapter("deribit")


def capture_lines() -> list[str]:
    return gzip.decompress(CAPTURE.read_bytes()).decode().splitlines()


def payload(line: str) -> dict:
    return orjson.loads(line.split(": ", 1)[1])


def change_indexes(lines: list[str], instrument: str) -> list[int]:
    return [i for i, ln in enumerate(lines)
            if f'"channel":"book.{instrument}.raw"' in ln and '"type":"change"' in ln]


def replay_lines(tmp_path: Path, lines: list[str]) -> dict:
    path = tmp_path / "deribit_fault.cfcap.txt"
    path.write_text("\n".join(lines) + "\n")
    return replay(ADAPTER, [path]).as_json()


def test_capabilities_declare_prev_pointer_with_ws_snapshots_and_no_rest_splice():
    caps = ADAPTER.capabilities
    assert caps.sequence_model is SequenceModel.PREV_POINTER
    assert caps.ws_splice_rule is SpliceRule.PREV_EXACT
    assert caps.ws_snapshot_on_subscribe is True
    assert caps.rest_snapshot is False


def test_real_capture_reproduces_provenance_counts():
    # PROVENANCE: "prev_change_id chain ok 36/36, gaps 0; snapshots 10; crossed books 0"
    j = replay(ADAPTER, [CAPTURE]).as_json()
    assert j["messages"] == 136
    assert j["instruments"] == 10
    assert j["snapshots"] == 10
    assert j["deltas_applied"] == 36
    assert j["gaps"] == 0
    assert j["crossed"] == 0
    assert j["parse_errors"] == 0
    assert j["duplicates"] == 0
    assert j["stale_dropped"] == 0
    assert j["synced_instruments"] == 10
    assert j["ok"] is True
    assert j["per_instrument"][LIQUID]["deltas_applied"] == 30
    assert j["per_instrument"][LIQUID]["last_seq"] == payload(capture_lines()[change_indexes(capture_lines(), LIQUID)[-1]])["params"]["data"]["change_id"]


def test_dropping_one_change_is_a_gap_at_that_point(tmp_path):
    lines = capture_lines()
    idx = change_indexes(lines, LIQUID)
    dropped = idx[10]
    following = payload(lines[idx[11]])["params"]["data"]
    local = payload(lines[idx[9]])["params"]["data"]["change_id"]
    del lines[dropped]
    j = replay_lines(tmp_path, lines)
    assert j["gaps"] == 1
    assert j["resubscribe_requests"] == 1
    assert j["alerts"] == [{
        "kind": "gap", "symbol": LIQUID, "seq": following["change_id"],
        "reason": f"gap: local {local}, got first={following['change_id']} last={following['change_id']} "
                  f"prev={following['prev_change_id']}",
    }]
    # 10 changes applied before the gap; the rest wait for the resubscribe's snapshot.
    assert j["per_instrument"][LIQUID]["deltas_applied"] == 10
    assert j["per_instrument"][LIQUID]["state"] == "recovering"
    assert j["deltas_applied"] == 36 - 30 + 10
    assert j["parse_errors"] == 0


def test_duplicated_change_is_classified_never_applied_twice(tmp_path):
    lines = capture_lines()
    i = change_indexes(lines, LIQUID)[5]
    lines.insert(i + 1, lines[i])
    j = replay_lines(tmp_path, lines)
    assert j["duplicates"] == 1
    assert j["deltas_applied"] == 36
    assert j["gaps"] == 0
    assert j["ok"] is True


def test_late_old_change_is_stale_never_applied(tmp_path):
    lines = capture_lines()
    early = lines[change_indexes(lines, LIQUID)[3]]
    lines.append(early)  # re-delivered after everything newer
    j = replay_lines(tmp_path, lines)
    assert j["stale_dropped"] == 1
    assert j["deltas_applied"] == 36
    assert j["gaps"] == 0


def test_swapped_changes_are_a_gap_not_silently_applied(tmp_path):
    lines = capture_lines()
    a, b = change_indexes(lines, LIQUID)[20:22]
    lines[a], lines[b] = lines[b], lines[a]
    j = replay_lines(tmp_path, lines)
    assert j["gaps"] == 1
    assert j["per_instrument"][LIQUID]["deltas_applied"] == 20


def test_golden_snapshot_and_changes():
    dec = ADAPTER.new_decoder()
    lines = capture_lines()
    snap_line = next(ln for ln in lines if '"channel":"book.ETH-23JUL21-2300-C.raw"' in ln)
    assert dec.decode(snap_line.split(": ", 1)[1].encode(), 7) == [BookSnapshot(
        symbol="ETH-23JUL21-2300-C", bids=[], asks=[(0.001, 274.0), (0.002, 10.0), (0.0025, 19.0), (0.01, 4.0)],
        seq=13168946419, ts_exchange_ns=1626993723632_000_000, ts_recv_ns=7)]
    new = ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-24SEP21-8000-P.raw","data":'
           '{"type":"change","timestamp":1626993724318,"prev_change_id":33195894164,"instrument_name":'
           '"BTC-24SEP21-8000-P","change_id":33195894355,"bids":[],"asks":[["new",0.001,2.6]]}}}')
    delete = ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-24SEP21-8000-P.raw","data":'
              '{"type":"change","timestamp":1626993724337,"prev_change_id":33195894355,"instrument_name":'
              '"BTC-24SEP21-8000-P","change_id":33195894358,"bids":[],"asks":[["delete",0.001,0.0]]}}}')
    assert new in "\n".join(lines) and delete in "\n".join(lines)  # real frames, verbatim
    assert dec.decode(new) == [BookDelta(symbol=LIQUID, bids=[], asks=[(0.001, 2.6)], first_seq=33195894355,
                                         last_seq=33195894355, prev_seq=33195894164,
                                         ts_exchange_ns=1626993724318_000_000)]
    assert dec.decode(delete) == [BookDelta(symbol=LIQUID, bids=[], asks=[(0.001, 0.0)], first_seq=33195894358,
                                            last_seq=33195894358, prev_seq=33195894355,
                                            ts_exchange_ns=1626993724337_000_000)]


def test_delete_action_means_size_zero_whatever_the_amount():
    frame = ('{"method":"subscription","params":{"channel":"book.X-PERP.100ms","data":{"type":"change",'
             '"instrument_name":"X-PERP","change_id":5,"prev_change_id":4,"bids":[["delete",10.5,3.0]],"asks":[]}}}')
    (d,) = ADAPTER.new_decoder().decode(frame)
    assert d.bids == [(10.5, 0.0)]


def test_grouped_channel_is_a_full_snapshot():
    frame = ('{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.none.10.100ms","data":'
             '{"timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":9,"bids":[[100.5,20.0]],'
             '"asks":[[101.0,5.0]]}}}')
    assert ADAPTER.new_decoder().decode(frame) == [BookSnapshot(
        symbol="BTC-PERPETUAL", bids=[(100.5, 20.0)], asks=[(101.0, 5.0)], seq=9, ts_exchange_ns=1_000_000)]


def test_control_messages():
    dec = ADAPTER.new_decoder()
    assert dec.decode('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 3) == [
        Heartbeat(ts_recv_ns=3)]
    assert dec.decode('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}') == [
        Heartbeat(), VenueNotice(kind="test_request", message="answer with public/test")]
    assert dec.decode('{"jsonrpc":"2.0","id":0,"result":["book.BTC-PERPETUAL.raw","ticker.BTC-PERPETUAL.raw"]}') == [
        Subscribed(symbol="BTC-PERPETUAL", channel="book")]
    assert dec.decode('{"jsonrpc":"2.0","id":4,"error":{"code":10028,"message":"too_many_requests"}}') == [
        VenueNotice(kind="rate_limited", message="10028: too_many_requests")]
    assert dec.decode('{"jsonrpc":"2.0","id":9,"result":{"version":"1.2.26"}}') == []


@pytest.mark.parametrize("frame", [
    '{"method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.raw","data":{"x":1}}}',
    '{"method":"subscription","params":{"channel":"user.orders.any.any.raw","data":[]}}',
    '{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.weird","data":{}}}',
    '{"jsonrpc":"2.0","method":"something_new","params":{}}',
])
def test_unknown_channels_yield_nothing(frame):
    assert ADAPTER.new_decoder().decode(frame) == []


def _change(bids: str = '[["new",100.0,1.0]]', extra: str = '"prev_change_id":4,', change_id: str = "5") -> str:
    return ('{"method":"subscription","params":{"channel":"book.X-PERP.raw","data":{"type":"change",'
            f'"instrument_name":"X-PERP",{extra}"change_id":{change_id},"bids":{bids},"asks":[]}}}}}}')


BAD_FRAMES = {
    "truncated": _change()[:-7],
    "not an object": "[1, 2, 3]",
    "empty": "",
    "negative size": _change('[["new",100.0,-1.0]]'),
    "zero price": _change('[["new",0,1.0]]'),
    "negative price": _change('[["new",-5,1.0]]'),
    "huge size": _change('[["new",100.0,1e300]]'),
    "overflowing number": _change('[["new",100.0,1e400]]'),
    "NaN literal": _change('[["new",100.0,NaN]]'),
    "string price": _change('[["new","abc",1.0]]'),
    "bool size": _change('[["new",100.0,true]]'),
    "unknown action": _change('[["modify",100.0,1.0]]'),
    "short level": _change('[["new",100.0]]'),
    "levels not a list": _change('{"a":1}'),
    "change without prev_change_id": _change(extra=""),
    "string change_id": _change(change_id='"5"'),
    "negative change_id": _change(change_id="-5"),
    "subscription without params": '{"jsonrpc":"2.0","method":"subscription"}',
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error_and_leave_the_book_alone(name):
    session = BookSession("X-PERP", ADAPTER.capabilities)
    snap = ('{"method":"subscription","params":{"channel":"book.X-PERP.raw","data":{"type":"snapshot",'
            '"instrument_name":"X-PERP","change_id":4,"bids":[["new",99.0,2.0]],"asks":[["new",101.0,3.0]]}}}')
    dec = ADAPTER.new_decoder()
    for ev in dec.decode(snap):
        session.handle(ev)
    with pytest.raises(AdapterError) as info:
        dec.decode(BAD_FRAMES[name])
    assert info.value.exchange == "deribit"
    assert session.book.equals([(99.0, 2.0)], [(101.0, 3.0)])
    assert session.last_seq == 4
    # the decoder is still usable: the good frame after it applies
    for ev in dec.decode(_change()):
        session.handle(ev)
    assert session.book.equals([(99.0, 2.0), (100.0, 1.0)], [(101.0, 3.0)])


def test_bad_frame_error_names_the_instrument():
    with pytest.raises(AdapterError) as info:
        ADAPTER.new_decoder().decode(_change('[["new",100.0,-1.0]]'))
    assert info.value.symbol == "X-PERP"


def test_replay_counts_bad_frames_as_parse_errors_and_recovers_that_book(tmp_path):
    lines = capture_lines()
    bad = payload(lines[change_indexes(lines, LIQUID)[-1]])
    bad["params"]["data"]["asks"] = [["new", 0.001, -2.6]]
    lines.append("1626993760.0: " + orjson.dumps(bad).decode())
    lines.append("1626993760.1: {\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"chan")
    j = replay_lines(tmp_path, lines)
    assert j["parse_errors"] == 2
    assert j["deltas_applied"] == 36
    assert j["invalid_inputs"] == 1  # the truncated frame names no instrument
    assert j["per_instrument"][LIQUID]["state"] == "recovering"
    assert j["resubscribe_requests"] == 1
    assert j["ok"] is False


def test_rest_snapshots_are_refused_not_spliced():
    with pytest.raises(AdapterError, match="not spliceable"):
        ADAPTER.parse_rest_snapshot(b'{"result":{"change_id":1,"bids":[],"asks":[]}}', symbol="BTC-PERPETUAL")


def test_subscribe_dialogue_turns_heartbeats_on_first():
    msgs = [orjson.loads(m) for m in ADAPTER.subscribe_messages(["BTC-PERPETUAL"])]
    assert [m["method"] for m in msgs] == ["public/set_heartbeat", "public/subscribe"]
    assert msgs[0]["params"] == {"interval": 10}
    assert msgs[1]["params"] == {"channels": ["book.BTC-PERPETUAL.100ms"]}
    assert orjson.loads(ADAPTER.ping_message())["method"] == "public/test"
