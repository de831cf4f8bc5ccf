"""Pure OKX parsers: wire frames and REST bodies -> normalized events.

``seqId``/``prevSeqId`` become ``last_seq``/``prev_seq`` here and nowhere later (one message is
one id, so ``first_seq == last_seq == seqId``). Levels keep OKX's own strings (``bids_raw``/
``asks_raw``) because the checksum is defined on the text received (§5.3). Every number is
validated before an event is built: a frame either translates completely or raises
:class:`AdapterError`, so a bad frame can never change a book.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Subscribed,
    Trade,
    VenueNotice,
)
from bookkeeper.types import TradeSide

from .._common import ms_ts_ns, okx_style_book_push, string_levels
from .schemas import ACTION_SNAPSHOT, ACTION_UPDATE, BOOK_CHANNELS, TRADE_CHANNELS

EXCHANGE = "okx"
_INT32 = 1 << 31
_SEQ_MAX = 1 << 63


def _fail(msg: str, frame: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(msg, exchange=EXCHANGE, raw=frame, symbol=symbol)


def parse_levels(rows: Any, frame: Any, symbol: str | None) -> tuple[list[tuple[float, float]], list[tuple[str, str]]]:
    """Validate ``[[px, sz, ...], ...]`` (strings) into float levels and their wire strings.

    Raises:
        AdapterError: not a list of string rows, NaN/inf, negative size, non-positive price
            or absurdly large values.
    """
    return string_levels(rows, EXCHANGE, frame, symbol)


def _opt_int(d: Mapping[str, Any], key: str, frame: Any, symbol: str | None, lo: int, hi: int) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not int or not (lo <= v < hi):
        raise _fail(f"{key} must be an integer in range, got {v!r}", frame, symbol)
    return v


def _ts_ns(v: Any, frame: Any, symbol: str | None) -> int:
    return ms_ts_ns(v, EXCHANGE, frame, symbol)


def parse_book_entry(
    entry: Any, action: str, symbol: str, frame: Any, ts_recv_ns: int
) -> BookSnapshot | BookDelta | Heartbeat:
    """One element of a book push's ``data`` array."""
    if type(entry) is not dict:
        raise _fail("book data entry is not an object", frame, symbol)
    bids, bids_raw = parse_levels(entry.get("bids", []), frame, symbol)
    asks, asks_raw = parse_levels(entry.get("asks", []), frame, symbol)
    checksum = _opt_int(entry, "checksum", frame, symbol, -_INT32, _INT32)
    seq = _opt_int(entry, "seqId", frame, symbol, -1, _SEQ_MAX)
    prev = _opt_int(entry, "prevSeqId", frame, symbol, -1, _SEQ_MAX)
    ts = _ts_ns(entry.get("ts"), frame, symbol)
    if action == ACTION_SNAPSHOT:
        return BookSnapshot(symbol=symbol, bids=bids, asks=asks, seq=seq, checksum=checksum, bids_raw=bids_raw,
                            asks_raw=asks_raw, source=SnapshotSource.WS, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)
    if seq is not None and seq == prev and not bids and not asks:
        # §5.2: no change for ~60 s -> empty update with seqId == prevSeqId: a no-op.
        return Heartbeat(symbol=symbol, seq=seq, ts_recv_ns=ts_recv_ns)
    if (seq is None) != (prev is None):
        raise _fail("seqId and prevSeqId must come together", frame, symbol)
    return BookDelta(symbol=symbol, bids=bids, asks=asks, first_seq=seq, last_seq=seq, prev_seq=prev,
                     checksum=checksum, bids_raw=bids_raw, asks_raw=asks_raw, ts_exchange_ns=ts,
                     ts_recv_ns=ts_recv_ns)


def _decimal(v: Any, frame: Any, symbol: str | None) -> Decimal:
    if type(v) is not str:
        raise _fail(f"expected a decimal string, got {v!r}", frame, symbol)
    try:
        d = Decimal(v)
    except InvalidOperation:
        raise _fail(f"bad decimal {v!r}", frame, symbol) from None
    if not d.is_finite() or d <= 0:
        raise _fail(f"bad decimal {v!r}", frame, symbol)
    return d


def parse_trades(data: list[Any], symbol: str, frame: Any, ts_recv_ns: int) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    for t in data:
        if type(t) is not dict:
            raise _fail("trade entry is not an object", frame, symbol)
        side = t.get("side")
        out.append(Trade(symbol=str(t.get("instId", symbol)), trade_id=str(t.get("tradeId", "")),
                         price=_decimal(t.get("px"), frame, symbol), qty=_decimal(t.get("sz"), frame, symbol),
                         side=TradeSide.BUY if side == "buy" else TradeSide.SELL if side == "sell" else None,
                         ts_exchange_ns=_ts_ns(t.get("ts"), frame, symbol), ts_recv_ns=ts_recv_ns))
    return out


def parse_event(obj: dict[str, Any], frame: Any) -> list[MarketEvent]:
    """``{"event": ...}`` control frames."""
    event = obj.get("event")
    arg = obj.get("arg") if type(obj.get("arg")) is dict else {}
    sym = arg.get("instId") if type(arg.get("instId")) is str else None
    if event == "subscribe":
        return [Subscribed(symbol=sym, channel=str(arg.get("channel", "")))]
    if event == "error":
        return [VenueNotice(kind=NoticeKind.ERROR, message=f"{obj.get('code')}: {obj.get('msg')}", symbol=sym)]
    if event == "notice":
        return [VenueNotice(kind=NoticeKind.NOTICE, message=f"{obj.get('code')}: {obj.get('msg')}", symbol=sym)]
    return []  # unsubscribe, login, channel-conn-count ...


def decode(frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
    """Decode any OKX public frame.

    Raises:
        AdapterError: malformed JSON, wrong types, out-of-range numbers.
    """
    if frame in (b"pong", "pong"):
        return []  # answer to our text ``ping`` (§5.5); the transport's timer already saw a frame
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _fail(f"invalid JSON: {exc}", frame) from None
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    if "event" in obj:
        return parse_event(obj, frame)
    arg = obj.get("arg")
    if type(arg) is not dict:
        return []
    channel = arg.get("channel")
    if channel is not None and type(channel) is not str:
        # an unhashable value (``[]``) would make the set lookups below raise TypeError
        raise _fail(f"arg.channel must be a string, got {type(channel).__name__}", frame)
    if channel in BOOK_CHANNELS:
        symbol, action, data = okx_style_book_push(obj, arg, (ACTION_SNAPSHOT, ACTION_UPDATE), EXCHANGE, frame)
        return [parse_book_entry(e, action, symbol, frame, ts_recv_ns) for e in data]
    if channel in TRADE_CHANNELS:
        symbol = arg.get("instId")
        data = obj.get("data")
        if type(symbol) is not str or type(data) is not list:
            raise _fail("bad trades push", frame)
        return parse_trades(data, symbol, frame, ts_recv_ns)
    return []


def symbol_from_url(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("instId")
    return values[0] if values else None


def parse_rest_books(
    body: bytes | str | Mapping[str, Any], symbol: str | None = None, url: str | None = None, ts_recv_ns: int = 0
) -> BookSnapshot:
    """REST ``GET /api/v5/market/books`` body (raw, or the dict ccxt's ``public_get_market_books``
    returns) -> ``BookSnapshot(source=REST)``; ``seq`` is the body's ``seqId`` when present.

    Raises:
        AdapterError: malformed body, an error ``code``, or no way to tell the symbol.
    """
    sym = symbol or symbol_from_url(url)
    if isinstance(body, (bytes, str)):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _fail(f"invalid JSON: {exc}", body, sym) from None
    else:
        obj = body
    if not isinstance(obj, Mapping):
        raise _fail("REST body is not an object", str(body), sym)
    code = obj.get("code")
    if code not in ("0", 0):
        raise _fail(f"REST error code {code!r}: {obj.get('msg')!r}", str(body)[:200], sym)
    data = obj.get("data")
    if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], Mapping):
        raise _fail("REST books body must carry exactly one data entry", str(body)[:200], sym)
    entry = data[0]
    if not sym:
        sym = entry.get("instId") if isinstance(entry.get("instId"), str) else None
    if not sym:
        raise _fail("REST books body names no instrument (pass symbol= or url=)", str(body)[:200])
    bids, bids_raw = parse_levels(list(entry.get("bids", [])), str(body)[:200], sym)
    asks, asks_raw = parse_levels(list(entry.get("asks", [])), str(body)[:200], sym)
    seq = entry.get("seqId")
    if isinstance(seq, str) and seq.isdigit():
        seq = int(seq)  # ccxt hands the body through as parsed JSON; be lenient on the spelling
    if seq is not None and (type(seq) is not int or not 0 <= seq < _SEQ_MAX):
        raise _fail(f"bad seqId {seq!r}", str(body)[:200], sym)
    return BookSnapshot(symbol=sym, bids=bids, asks=asks, seq=seq, bids_raw=bids_raw, asks_raw=asks_raw,
                        source=SnapshotSource.REST, ts_exchange_ns=_ts_ns(entry.get("ts"), body, sym),
                        ts_recv_ns=ts_recv_ns)
