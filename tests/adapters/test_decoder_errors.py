"""Every decoder and REST parser raises only ``AdapterError`` on a malformed frame ([harden]
defect 1: one malformed frame used to kill the live feed with a TypeError, OverflowError or
RecursionError while its books stayed SYNCED).

Covers the frames named in the issue per venue, JSON nested 1000 deep for every registered
venue (decoder and REST parser), ids beyond int64, and the Binance C fast path.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from bookkeeper.adapters import VENUES, get_adapter
from test_fuzz import seed_frames

from bookkeeper.capabilities import SequenceModel
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.session import BookSession

DEPTH = 1000


def decode_error(venue: str, frame: bytes | str) -> AdapterError:
    """The AdapterError ``frame`` raises (anything else, or no error, fails the test)."""
    decoder = get_adapter(venue).new_decoder()
    with pytest.raises(AdapterError) as info:
        events = decoder.decode(frame, 0)
        pytest.fail(f"{venue}: decode accepted a malformed frame: {events!r:.200}")
    assert info.value.exchange == venue
    return info.value


def rest_error(venue: str, body: Any) -> AdapterError:
    with pytest.raises(AdapterError) as info:
        snap = get_adapter(venue).parse_rest_snapshot(body, symbol="X")
        pytest.fail(f"{venue}: parse_rest_snapshot accepted a malformed body: {snap!r:.200}")
    assert info.value.exchange == venue
    return info.value


def deep_list(depth: int = DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int = DEPTH) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def deep_dict(depth: int = DEPTH) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


# ------------------------------------------------------------------ the frames named in the issue
@pytest.mark.parametrize(("venue", "frame", "cause"), [
    ("okx", b'{"arg":{"channel":[]}}', TypeError),
    ("okx", b'{"arg":{"channel":{"a":1},"instId":"BTC-USDT"},"action":"update","data":[]}', TypeError),
    ("bitget", b'{"action":"update","arg":{"instType":"sp","channel":[1],"instId":"BTCUSDT"},"data":[]}', TypeError),
    ("kucoin", b'{"type":[1]}', TypeError),
    ("kucoin", b'{"type":{"a":1},"topic":"/market/level2:BTC-USDT"}', TypeError),
    ("gateio", b'{"time":1,"channel":["spot.order_book_update"],"event":"update","result":{}}', TypeError),
    ("gateio_futures", b'{"time":1,"channel":[[]],"event":"update","result":{}}', TypeError),
    ("gateio_futures", b'{"time":1,"channel":{},"event":"update","result":{}}', TypeError),
    ("gateio", (b'{"time":1,"channel":"spot.order_book_update","event":"update","result":'
               b'{"t":1e308,"s":"BTC_USDT","U":1,"u":2,"b":[],"a":[]}}'), OverflowError),
    ("gateio_futures", (b'{"time":1,"channel":"futures.order_book_update","event":"update","result":'
                       b'{"t":1e308,"s":"BTC_USD","U":1,"u":2,"b":[],"a":[]}}'), OverflowError),
    ("gateio", (b'{"time":1,"channel":"spot.obu","event":"update","result":'
               b'{"t":-1e308,"s":"ob.BTC_USDT.50","u":2,"full":true,"b":[],"a":[]}}'), OverflowError),
])  # fmt: skip
def test_issue_frames_raise_adapter_error(venue: str, frame: bytes, cause: type[Exception]) -> None:
    err = decode_error(venue, frame)
    # the root cause is fixed where it was: a plain check, not the generic guard
    assert not isinstance(err.__cause__, cause), f"{venue}: still a guarded {cause.__name__}"


def test_gate_rest_snapshot_with_infinite_current_is_adapter_error() -> None:
    body = b'{"id":5,"current":1e308,"update":1,"bids":[["1","1"]],"asks":[["2","1"]]}'
    with pytest.raises(AdapterError, match="timestamp out of range"):
        get_adapter("gateio").parse_rest_snapshot(body, symbol="BTC_USDT")
    with pytest.raises(AdapterError, match="timestamp out of range"):
        get_adapter("gateio_futures").parse_rest_snapshot(body, symbol="BTC_USDT")


@pytest.mark.parametrize("depth", [990, 992, 1000, 1010, 1022])
def test_kraken_v2_book_nested_deeper_than_json_loads_allows(depth: int) -> None:
    # orjson (the router) accepts up to 1024 levels; the v2 book path re-parses with
    # json.loads (Decimal numbers for the checksum text), which gives up earlier.
    frame = b'{"channel":"book","type":"update","data":' + deep_list(depth) + b"}"
    err = decode_error("kraken", frame)
    assert not isinstance(err.__cause__, RecursionError)


@pytest.mark.parametrize("venue", ["binance", "binance_usdm", "binance_coinm"])
def test_binance_depth_update_nested_1000_deep(venue: str) -> None:
    for frame in (
        b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":' + deep_list() + b',"a":[]}',
        b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],'
        b'"x":' + deep_list() + b"}}",
    ):
        decode_error(venue, frame)
        decode_error(venue, frame.decode())


# ------------------------------------------------------------------ 1000-deep JSON, every venue
def _nest_levels(frame: bytes) -> bytes | None:
    """``frame`` with its first list of containers (levels, data) replaced by a 1000-deep list."""
    try:
        root = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    stack = [root]
    while stack:
        node = stack.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
                node[key] = "@@deep@@"
                return orjson.dumps(root).replace(b'"@@deep@@"', deep_list(), 1)
            if isinstance(value, (dict, list)):
                stack.append(value)
    return None


def _book_frame(venue: str) -> bytes:
    """The first real frame of the venue's capture that decodes to a book event."""
    decoder = get_adapter(venue).new_decoder()
    for sf in seed_frames(venue):
        if sf.kind.name != "WS":
            continue
        try:
            events = decoder.decode(sf.data, 0)
        except AdapterError:
            continue
        if any(type(e) in (BookDelta, BookSnapshot) for e in events) and _nest_levels(sf.data):
            return sf.data
    raise AssertionError(f"{venue}: no book frame in the seed capture")


@pytest.mark.parametrize("venue", VENUES)
def test_decoder_on_json_nested_1000_deep_raises_only_adapter_error(venue: str) -> None:
    decoder = get_adapter(venue).new_decoder()
    for frame in (deep_list(), deep_object(), deep_list(1100), deep_object(5000)):
        for variant in (frame, frame.decode()):
            try:
                events = decoder.decode(variant, 0)
            except AdapterError:
                continue
            assert events == [], f"{venue}: a deep frame decoded to {events!r:.200}"
    # a real book frame whose levels are nested 1000 deep: must be refused, never partly used
    deep = _nest_levels(_book_frame(venue))
    assert deep is not None
    decode_error(venue, deep)


@pytest.mark.parametrize("venue", VENUES)
def test_rest_parser_on_json_nested_1000_deep_raises_only_adapter_error(venue: str) -> None:
    for body in (deep_list(), deep_object(), deep_dict(), [deep_dict()],
                 {"lastUpdateId": 1, "bids": orjson.loads(deep_list()), "asks": []},
                 b'{"lastUpdateId":1,"bids":' + deep_list() + b',"asks":[]}',
                 b'{"code":"0","data":[{"bids":' + deep_list() + b',"asks":[],"seqId":1}]}',
                 b'{"result":{"XXBTZUSD":{"bids":' + deep_list() + b',"asks":[]}},"error":[]}'):
        rest_error(venue, body)


# ------------------------------------------------------------------ ids beyond int64
HUGE = (2**63, 2**64 - 1, 2**70)


@pytest.mark.parametrize("u", HUGE)
@pytest.mark.parametrize("venue", ["binance", "binance_usdm", "binance_coinm"])
def test_binance_ids_beyond_int64_are_refused(venue: str, u: int) -> None:
    decode_error(venue, b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":%d,"b":[],"a":[]}' % u)
    decode_error(venue, b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":%d,"u":%d,"b":[],"a":[]}' % (u, u))
    decode_error(venue, b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":-5,"u":2,"b":[],"a":[]}')
    decode_error(venue, b'{"e":"bookTicker","u":%d,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}' % u)
    decode_error(venue, b'{"e":"bookTicker","u":"12","s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}')
    rest_error(venue, b'{"lastUpdateId":%d,"bids":[],"asks":[]}' % u)


def test_binance_futures_pu_may_be_minus_one_but_not_beyond_int64() -> None:
    ok = b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":-1,"b":[],"a":[]}'
    [delta] = get_adapter("binance_usdm").new_decoder().decode(ok, 0)
    assert delta.prev_seq == -1
    decode_error("binance_usdm", ok.replace(b'"pu":-1', b'"pu":%d' % 2**64))


@pytest.mark.parametrize("u", HUGE)
def test_other_venues_refuse_ids_beyond_int64(u: int) -> None:
    decode_error("bybit", b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,'
                          b'"data":{"s":"BTCUSDT","b":[],"a":[],"u":%d,"seq":1}}' % u)
    decode_error("deribit", b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw",'
                            b'"data":{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL",'
                            b'"change_id":%d,"prev_change_id":1,"bids":[],"asks":[]}}}' % u)
    decode_error("okx", b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",'
                        b'"data":[{"asks":[],"bids":[],"ts":"1","seqId":%d,"prevSeqId":1}]}' % u)
    decode_error("gateio", b'{"time":1,"channel":"spot.order_book_update","event":"update","result":'
                           b'{"t":1,"s":"BTC_USDT","U":1,"u":%d,"b":[],"a":[]}}' % u)
    decode_error("kucoin", b'{"type":"message","topic":"/market/level2:BTC-USDT","subject":"trade.l2update",'
                           b'"data":{"sequenceStart":1,"sequenceEnd":%d,"symbol":"BTC-USDT",'
                           b'"changes":{"asks":[],"bids":[]}}}' % u)
    decode_error("kraken_futures", b'{"feed":"book","product_id":"PI_XBTUSD","side":"buy","seq":%d,'
                                   b'"price":1.0,"qty":1.0,"timestamp":1}' % u)
    with pytest.raises(AdapterError):
        get_adapter("okx").parse_rest_snapshot(
            b'{"code":"0","data":[{"bids":[],"asks":[],"ts":"1","seqId":%d}]}' % u, symbol="BTC-USDT")


# ------------------------------------------------------------------ the guard itself
def test_guard_names_the_original_exception_and_chains_it() -> None:
    err = decode_error("bybit", deep_object())
    assert isinstance(err.__cause__, RecursionError)
    assert "RecursionError" in str(err)
    assert err.symbol is None


def test_guard_never_swallows_base_exceptions() -> None:
    adapter = get_adapter("okx")

    class Boom(BaseException):
        pass

    def explode(frame: Any, ts: int) -> list[Any]:
        raise Boom

    from bookkeeper.adapters._common import FrameDecoder

    with pytest.raises(Boom):
        FrameDecoder(explode, exchange=adapter.name).decode(b"{}", 0)


def test_third_party_decoder_objects_get_the_guard() -> None:
    from bookkeeper.adapters._common import VenueAdapter

    class Fragile:
        def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[Any]:
            return [{}["missing"]]

    base = get_adapter("okx")
    adapter = VenueAdapter("fragile", base.capabilities, decoder=Fragile)
    with pytest.raises(AdapterError, match="KeyError") as info:
        adapter.new_decoder().decode(b"{}", 0)
    assert info.value.exchange == "fragile"


def test_coinbase_and_kraken_decoders_keep_their_attributes() -> None:
    assert get_adapter("coinbase").new_decoder().last_sequence_num is None  # type: ignore[attr-defined]
    dec = get_adapter("kraken").new_decoder(precisions={"BTC/USD": (1, 8)})
    assert dec.precisions == {"BTC/USD": (1, 8)}  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the Binance C fast path
def _synced_binance(venue: str) -> BookSession:
    adapter = get_adapter(venue)
    s = BookSession("BTCUSDT", adapter.capabilities)
    pointer = adapter.capabilities.sequence_model is SequenceModel.PREV_POINTER
    s.on_delta(BookDelta(symbol="BTCUSDT", bids=[(10.0, 1.0)], asks=[], first_seq=5, last_seq=6,
                         prev_seq=4 if pointer else None))
    s.on_snapshot(BookSnapshot(symbol="BTCUSDT", bids=[(9.0, 1.0)], asks=[(11.0, 1.0)], seq=5,
                               source=SnapshotSource.REST), epoch=s.epoch)
    assert s.is_synced and s.last_seq == 6
    return s


ODD_FAST_FRAMES = (
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":%d,"b":[["10.5","1"]],"a":[]}' % 2**63,
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":99999999999999999999,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":-8,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":' + deep_list() + b',"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[["NaN","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[["1e308","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[["-10.5","1"]],"a":[]}',
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[["10.5","1"]],"a":[],"x":' + deep_object() + b"}",
    b'{"e":"depthUpdate","E":1,"s":"BTC\xffUSDT","U":7,"u":8,"b":[],"a":[]}',
    b'{"e":"depthUpdate","E":1e308,"s":"BTCUSDT","U":7,"u":8,"b":[],"a":[]',
)


@pytest.mark.parametrize("venue", ["binance", "binance_usdm", "binance_coinm"])
@pytest.mark.parametrize("frame", ODD_FAST_FRAMES, ids=range(len(ODD_FAST_FRAMES)))
def test_fused_fast_path_never_applies_odd_frames(venue: str, frame: bytes) -> None:
    fused = get_adapter(venue).fused  # type: ignore[attr-defined]
    if fused is None:
        pytest.skip("C accelerator not built")
    if venue != "binance":
        frame = frame.replace(b'"U":7,', b'"U":7,"pu":6,')
    s = _synced_binance(venue)
    before = (s.book.bids(), s.book.asks(), s.last_seq)
    assert s.apply_frame_fast(frame, fused) is False
    assert (s.book.bids(), s.book.asks(), s.last_seq) == before
    decode_error(venue, frame)


def test_fused_fast_path_applies_a_good_frame() -> None:
    # the control for the test above: the same session takes a well-formed next delta
    fused = get_adapter("binance").fused  # type: ignore[attr-defined]
    if fused is None:
        pytest.skip("C accelerator not built")
    s = _synced_binance("binance")
    assert s.apply_frame_fast(b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":7,"u":8,"b":[["10.5","1"]],"a":[]}',
                              fused) is True
    assert s.last_seq == 8 and s.book.best_bid() == (10.5, 1.0)
