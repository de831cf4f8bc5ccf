"""Gate (API v4) spot and USDT-futures order-book adapters: parsing, the recorded sessions,
faults.

Counts come from fixtures/real/PROVENANCE.md:
- spot 2021-04-22: instruments 10, with REST snapshot 10, bridged 8 (the 2 others had only
  stale deltas - not a gap); deltas 172 (buffered 10, stale 13, applied 159); gaps 0.
- USDT futures 2023-05-24: instruments 10, bridged 9 (1 had only stale deltas); deltas 352
  (buffered 10, stale 36, applied 316); gaps 0.
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
from bookkeeper.adapters.gateio import spec
from bookkeeper.capabilities import SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, BookTicker, SnapshotSource, Subscribed, VenueNotice
from bookkeeper.io.replay import replay
from bookkeeper.ports import Adapter
from bookkeeper.session import BookSession

SPOT_WS = "gateio/gateio_spot_order_book_update_2021-04-22.ws.cfcap.txt.gz"
SPOT_REST = "gateio/gateio_spot_order_book_update_2021-04-22.rest_order_book.cfcap.txt.gz"
FUT_WS = "gateio/gateio_usdt_futures_order_book_update_2023-05-24.ws.cfcap.txt.gz"
FUT_REST = "gateio/gateio_usdt_futures_order_book_update_2023-05-24.rest_order_book.cfcap.txt.gz"
GATE = get_adapter("gateio")
GATE_FUT = get_adapter("gateio_futures")
SESSIONS = {"gateio": (SPOT_WS, SPOT_REST), "gateio_futures": (FUT_WS, FUT_REST)}


def push(channel: str, result: object, event: str = "update") -> bytes:
    return orjson.dumps({"time": 1619093532, "time_ms": 1619093532978, "channel": channel, "event": event,
                         "result": result})


def spot(U: object, u: object, b: object = (), a: object = (), s: object = "BTC_USDT", **kw) -> bytes:
    return push("spot.order_book_update", {"t": 1619093532978, "e": "depthUpdate", "E": 1619093532, "s": s,
                                            "U": U, "u": u, "b": list(b), "a": list(a), **kw})


def fut(U: object, u: object, b: object = (), a: object = (), s: object = "BTC_USDT") -> bytes:
    return push("futures.order_book_update", {"t": 1684930165217, "s": s, "U": U, "u": u, "b": list(b),
                                               "a": list(a)})


def decode(raw: bytes | str, adapter=GATE) -> list:
    return adapter.new_decoder().decode(raw, 3)


@pytest.fixture(scope="module", params=sorted(SESSIONS))
def venue_recs(request):
    venue = request.param
    recs = records(*SESSIONS[venue])
    return venue, recs, drive(venue, recs)


# ---------------------------------------------------------------- declaration
@pytest.mark.parametrize("adapter", [GATE, GATE_FUT])
def test_adapters_declare_range_model(adapter):
    caps = adapter.capabilities
    assert isinstance(adapter, Adapter) and adapter.name == caps.venue
    assert caps.sequence_model is SequenceModel.CONTIGUOUS_RANGE
    assert caps.splice_rule is SpliceRule.RANGE_NEXT and caps.rest_snapshot


def test_subscribe_frames_take_the_callers_clock():
    [m] = spec.subscribe_messages(["BTC_USDT"], now_s=1700000000)
    assert orjson.loads(m) == {"time": 1700000000, "channel": "spot.order_book_update", "event": "subscribe",
                               "payload": ["BTC_USDT", "100ms"]}
    [f] = spec.unsubscribe_messages(["BTC_USDT"], now_s=1, futures=True)
    assert orjson.loads(f)["channel"] == "futures.order_book_update"
    assert orjson.loads(spec.ping_message(now_s=5))["channel"] == "spot.ping"


# ---------------------------------------------------------------- parsing
def test_spot_update_maps_U_u_and_levels():
    [d] = decode(spot(10, 12, b=[["1.5", "2"], ["1.4", "0"]], a=[["1.6", "0.5"]]))
    assert d == BookDelta(symbol="BTC_USDT", bids=[(1.5, 2.0), (1.4, 0.0)], asks=[(1.6, 0.5)], first_seq=10,
                          last_seq=12, ts_exchange_ns=1619093532978 * 1_000_000, ts_recv_ns=3)


def test_futures_update_levels_are_price_size_objects():
    [d] = decode(fut(5, 5, b=[{"p": "0.2943", "s": 0}], a=[{"p": "0.3004", "s": 36916}]), GATE_FUT)
    assert (d.bids, d.asks, d.first_seq, d.last_seq) == ([(0.2943, 0.0)], [(0.3004, 36916.0)], 5, 5)


def test_contract_may_be_named_c():
    raw = push("futures.order_book_update", {"c": "ETH_USDT", "U": 1, "u": 1, "b": [], "a": []})
    assert decode(raw, GATE_FUT)[0].symbol == "ETH_USDT"


def test_obu_full_is_a_ws_snapshot_and_increments_are_deltas():
    full = push("spot.obu", {"t": 1, "full": True, "s": "ob.BTC_USDT.50", "u": 100,
                             "b": [["9", "1"]], "a": [["11", "1"]]})
    inc = push("spot.obu", {"t": 2, "s": "ob.BTC_USDT.50", "U": 101, "u": 103, "b": [["10", "2"]], "a": []})
    [snap] = decode(full)
    assert snap == BookSnapshot(symbol="BTC_USDT", bids=[(9.0, 1.0)], asks=[(11.0, 1.0)], seq=100,
                                source=SnapshotSource.WS, ts_exchange_ns=1_000_000, ts_recv_ns=3)
    [d] = decode(inc)
    assert (d.first_seq, d.last_seq, d.bids) == (101, 103, [(10.0, 2.0)])
    s = BookSession("BTC_USDT", GATE.capabilities)
    s.handle(snap)
    s.handle(d)
    assert s.is_synced and s.last_seq == 103 and s.book.best_bid() == (10.0, 2.0)
    gap = push("spot.obu", {"t": 3, "s": "ob.BTC_USDT.50", "U": 105, "u": 105, "b": [], "a": []})
    actions = s.handle(decode(gap)[0])
    assert s.stats.gaps == 1 and any(getattr(a, "kind", None) is AlertKind.GAP for a in actions)


def test_book_ticker_becomes_a_ticker_at_the_book_id():
    raw = push("futures.book_ticker", {"t": 1, "u": 6159967, "s": "PHB_USDT", "b": "0.7379", "B": 814,
                                       "a": "0.739", "A": 677})
    assert decode(raw, GATE_FUT) == [BookTicker(symbol="PHB_USDT", seq=6159967, bid_price=0.7379, bid_size=814.0,
                                                ask_price=0.739, ask_size=677.0, ts_recv_ns=3)]
    empty = push("spot.book_ticker", {"t": 1, "u": 5, "s": "X_USDT", "b": "", "B": "", "a": "1", "A": "1"})
    assert decode(empty) == []


@pytest.mark.parametrize("raw", [
    push("spot.trades", {"id": 1, "currency_pair": "BTC_USDT", "price": "1"}),
    push("spot.candlesticks", {"t": "1", "n": "1m_BTC_USDT"}),
    push("futures.order_book_update", {"status": "success"}, event="unsubscribe"),
    b'{"time":1,"channel":"spot.pong","event":"","result":null}',
    b'{"time":1,"channel":"spot.something_new","event":"update","result":{"a":1}}',
])
def test_other_channels_yield_nothing(raw):
    assert decode(raw) == []


def test_subscribe_ack_and_error():
    ack = push("spot.order_book_update", {"status": "success"}, event="subscribe")
    assert decode(ack) == [Subscribed(symbol=None, channel="spot.order_book_update")]
    err = b'{"time":1,"channel":"spot.obu","event":"subscribe","error":{"code":2,"message":"Alert sub ob.BTC_USDT.50"},' \
          b'"result":{"status":"fail"}}'
    [n] = decode(err)
    assert isinstance(n, VenueNotice) and "Alert sub" in n.message


BAD_FRAMES = {
    "truncated json": spot(1, 2)[:-5],
    "not an object": b'"hello"',
    "result not object": push("spot.order_book_update", [1, 2]),
    "no pair": spot(1, 2, s=None),
    "pair not string": spot(1, 2, s=5),
    "U string": spot("1", 2),
    "U float": spot(1.0, 2),
    "u bool": spot(1, True),
    "u negative": spot(-3, -1),
    "u huge": spot(1, 2**63),
    "u < U": spot(5, 4),
    "U missing": push("spot.order_book_update", {"s": "BTC_USDT", "u": 1, "b": [], "a": []}),
    "levels not list": spot(1, 1, b="x"),
    "level too short": spot(1, 1, b=[["1"]]),
    "level object without s": fut(1, 1, b=[{"p": "1"}]),
    "nan size": spot(1, 1, b=[["1", "NaN"]]),
    "inf price": spot(1, 1, a=[["Infinity", "1"]]),
    "negative size": spot(1, 1, a=[["1", "-1"]]),
    "negative futures size": fut(1, 1, a=[{"p": "1", "s": -5}]),
    "zero price": spot(1, 1, a=[["0", "1"]]),
    "huge price": spot(1, 1, a=[["1e300", "1"]]),
    "size is a list": fut(1, 1, b=[{"p": "1", "s": [1]}]),
    "obu bad stream": push("spot.obu", {"s": "BTC_USDT", "u": 1, "U": 1, "b": [], "a": []}),
    "obu full not bool": push("spot.obu", {"s": "ob.BTC_USDT.50", "full": "yes", "u": 1, "U": 1, "b": [], "a": []}),
    "ticker bad size": push("spot.book_ticker", {"u": 1, "s": "X_Y", "b": "1", "B": "nan", "a": "2", "A": "1"}),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_malformed_frames_raise_adapter_error(name):
    with pytest.raises(AdapterError) as info:
        decode(BAD_FRAMES[name])
    assert info.value.exchange == "gateio"


def test_adapter_error_names_the_pair_when_known():
    with pytest.raises(AdapterError) as info:
        decode(fut(1, 1, a=[{"p": "1", "s": float("nan")}]), GATE_FUT)
    assert info.value.symbol == "BTC_USDT" and info.value.exchange == "gateio_futures"


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
                 max_leaves=12).map(orjson.dumps),
    st.builds(lambda ch, U, u, px, sz: push(ch, {"s": "ob.A_B.5" if ch == "spot.obu" else "A_B", "U": U, "u": u,
                                                 "b": [[px, sz]], "a": [{"p": px, "s": sz}]}),
              st.sampled_from(["spot.order_book_update", "futures.order_book_update", "spot.obu"]),
              st.integers(-5, 2**64 - 1), st.integers(-5, 2**64 - 1),
              st.one_of(st.text(max_size=6), st.floats(), st.integers(-(2**63), 2**63)),
              st.one_of(st.text(max_size=6), st.floats(), st.integers(-(2**63), 2**63))),
))
def test_decoder_never_crashes(raw):
    try:
        out = decode(raw)
    except AdapterError:
        return
    for ev in out:
        if isinstance(ev, (BookDelta, BookSnapshot)):
            assert all(p > 0 and s >= 0 for p, s in ev.bids + ev.asks)


# ---------------------------------------------------------------- REST
def test_spot_rest_snapshot():
    body = b'{"id":2691446,"current":1619093533700,"update":1619093533650,"asks":[["0.00010396","5876.967"]],' \
           b'"bids":[["0.0001032","1"]]}'
    url = "https://api.gateio.ws/api/v4/spot/order_book?currency_pair=HAI_ETH&limit=100&with_id=true"
    snap = GATE.parse_rest_snapshot(body, url=url, ts_recv_ns=9)
    assert snap == BookSnapshot(symbol="HAI_ETH", bids=[(0.0001032, 1.0)], asks=[(0.00010396, 5876.967)],
                                seq=2691446, source=SnapshotSource.REST,
                                ts_exchange_ns=1619093533700 * 1_000_000, ts_recv_ns=9)


def test_futures_rest_snapshot_from_ccxt_dict():
    body = {"current": 1684930166.384, "update": 1684930166.35, "id": 203083287,
            "asks": [{"s": 803, "p": "0.2974"}], "bids": [{"s": 5302, "p": "0.2969"}]}
    url = "https://api.gateio.ws/api/v4/futures/usdt/order_book?contract=RDNT_USDT&limit=100&with_id=true"
    snap = GATE_FUT.parse_rest_snapshot(body, url=url)
    assert (snap.symbol, snap.seq, snap.bids, snap.asks) == ("RDNT_USDT", 203083287, [(0.2969, 5302.0)],
                                                             [(0.2974, 803.0)])
    assert abs(snap.ts_exchange_ns - 1684930166384_000_000) < 1_000_000


@pytest.mark.parametrize("body", [
    b'{"asks":[],"bids":[]}',  # asked without with_id=true: cannot be bridged
    b'{"id":"12","asks":[],"bids":[]}',
    b'{"id":12,"asks":[["1","-1"]],"bids":[]}',
    b'{"id":12,"asks":{},"bids":[]}',
    b'{"label":"INVALID_CURRENCY","message":"Invalid currency pair"}',
    b'[]',
    b'{"id":12,',
])
def test_bad_rest_bodies_raise_adapter_error(body):
    with pytest.raises(AdapterError):
        GATE.parse_rest_snapshot(body, symbol="BTC_USDT")


def test_rest_snapshot_without_pair_is_an_error():
    with pytest.raises(AdapterError):
        GATE.parse_rest_snapshot(b'{"id":1,"asks":[],"bids":[]}', url="https://api.gateio.ws/api/v4/spot/order_book")


# ---------------------------------------------------------------- the recorded sessions
def test_spot_session_reproduces_provenance_counts():
    r = replay(GATE, [REAL / SPOT_WS, REAL / SPOT_REST]).as_json()
    assert (r["instruments"], r["snapshots"], r["bridged"]) == (10, 10, 8)
    assert (r["deltas_applied"], r["stale_dropped"], r["buffered"]) == (159, 13, 10)
    assert r["deltas_applied"] + r["stale_dropped"] == 172
    assert (r["gaps"], r["crossed"], r["parse_errors"], r["stale_snapshots"]) == (0, 0, 0, 0)
    assert r["ok"] is True
    unbridged = {k for k, v in r["per_instrument"].items() if v["bridged"] == 0}
    assert unbridged == {"BTC_USDC", "INK_USDT"}
    # only stale deltas arrived for them: not a gap, the book is valid at the snapshot id
    assert all(r["per_instrument"][k]["deltas_applied"] == 0 and r["per_instrument"][k]["state"] == "synced"
               for k in unbridged)


def test_futures_session_reproduces_provenance_counts():
    r = replay(GATE_FUT, [REAL / FUT_WS, REAL / FUT_REST]).as_json()
    assert (r["instruments"], r["snapshots"], r["bridged"]) == (10, 10, 9)
    assert (r["deltas_applied"], r["stale_dropped"], r["buffered"]) == (316, 36, 10)
    assert r["deltas_applied"] + r["stale_dropped"] == 352
    assert (r["gaps"], r["crossed"], r["parse_errors"], r["stale_snapshots"]) == (0, 0, 0, 0)
    assert {k for k, v in r["per_instrument"].items() if v["bridged"] == 0} == {"DIA_USDT"}
    # futures.book_ticker shares the book's id counter: where the ids are equal, tops agree
    assert (r["ticker_checks"], r["ticker_mismatches"]) == (4, 0)
    assert r["ok"] is True


# ---------------------------------------------------------------- faults
def test_dropping_one_delta_is_one_gap_at_that_point(venue_recs):
    venue, recs, clean = venue_recs
    cands = droppable(clean)
    j, d, n = cands[len(cands) // 2]
    check_drop_is_gap(venue, recs, clean, j, d, n, note=f"{venue} middle")


def test_dropping_a_random_delta_always_yields_exactly_one_gap(venue_recs):
    venue, recs, clean = venue_recs
    cands = droppable(clean)
    for seed in range(10):
        j, d, n = random.Random(seed).choice(cands)
        check_drop_is_gap(venue, recs, clean, j, d, n, note=f"{venue} seed={seed} record={j} {d.symbol} {d.first_seq}")


def test_duplicated_frame_is_counted_not_applied(venue_recs):
    venue, recs, clean = venue_recs
    j, d, _ = droppable(clean)[10]
    check_duplicate_is_ignored(venue, recs, clean, j, d)


def test_old_frame_redelivered_later_is_stale(venue_recs):
    venue, recs, clean = venue_recs
    j, _, _ = droppable(clean)[5]
    check_late_copy_is_stale(venue, recs, clean, j, len(recs) - 1)


def test_swapped_frames_are_a_gap_never_applied_twice(venue_recs):
    venue, recs, clean = venue_recs
    j, _, n = droppable(clean)[20]
    k = next(i for i, d in clean.applied if d is n)
    check_swap_is_gap(venue, recs, clean, j, k)


def test_stale_rest_snapshot_is_reported(venue_recs):
    venue, recs, clean = venue_recs
    sym = max(clean.sessions, key=lambda k: clean.sessions[k].stats.deltas_applied)
    key = "contract=" if venue == "gateio_futures" else "currency_pair="
    i = first_rest_index(recs, key + sym)
    old = clean.sessions[sym].last_seq - 10_000_000
    bad = list(recs)
    bad[i] = rest_with_seq(recs[i], "id", old)
    run = drive(venue, bad)
    s = run.sessions[sym]
    assert s.stats.stale_snapshots == 1 and s.stats.deltas_applied == 0
    assert s.state is SyncState.AWAITING_SNAPSHOT
    [alert] = [a for a in run.alerts if a.kind is AlertKind.STALE_SNAPSHOT]
    assert (alert.symbol, alert.seq) == (sym, old)
    assert run.total("gaps") == 0


def test_replay_engine_reports_a_dropped_delta_as_a_gap(tmp_path, venue_recs):
    venue, recs, clean = venue_recs
    j, d, n = droppable(clean)[3]
    r = replay_records(tmp_path, venue, without(recs, j)).as_json()
    assert r["gaps"] == 1 and r["ok"] is False
    [alert] = [a for a in r["alerts"] if a["kind"] == "gap"]
    assert (alert["symbol"], alert["seq"]) == (n.symbol, n.last_seq)
