"""Pure Bitget parsers: wire frames -> normalized events.

Levels keep Bitget's own strings (``bids_raw``/``asks_raw``) for the checksum. Every number
is validated before an event is built, so a bad frame raises :class:`AdapterError` and never
changes a book.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Subscribed,
    VenueNotice,
)

from .._common import ms_ts_ns, okx_style_book_push, string_levels
from .schemas import ACTION_SNAPSHOT, ACTION_UPDATE, BOOK_CHANNELS

EXCHANGE = "bitget"
_INT32 = 1 << 31


def _fail(msg: str, frame: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(msg, exchange=EXCHANGE, raw=frame, symbol=symbol)


def parse_levels(rows: Any, frame: Any, symbol: str | None) -> tuple[list[tuple[float, float]], list[tuple[str, str]]]:
    """Validate ``[[px, sz], ...]`` (strings) into float levels and their wire strings.

    Raises:
        AdapterError: wrong types, NaN/inf, negative size, non-positive price, huge values.
    """
    return string_levels(rows, EXCHANGE, frame, symbol)


def _ts_ns(v: Any, frame: Any, symbol: str | None) -> int:
    return ms_ts_ns(v, EXCHANGE, frame, symbol)


def parse_book_entry(entry: Any, action: str, symbol: str, frame: Any, ts_recv_ns: int) -> BookSnapshot | BookDelta:
    if type(entry) is not dict:
        raise _fail("book data entry is not an object", frame, symbol)
    bids, bids_raw = parse_levels(entry.get("bids", []), frame, symbol)
    asks, asks_raw = parse_levels(entry.get("asks", []), frame, symbol)
    checksum = entry.get("checksum")
    if checksum is not None and (type(checksum) is not int or not (-_INT32 <= checksum < _INT32)):
        raise _fail(f"bad checksum {checksum!r}", frame, symbol)
    ts = _ts_ns(entry.get("ts"), frame, symbol)
    if action == ACTION_SNAPSHOT:
        return BookSnapshot(symbol=symbol, bids=bids, asks=asks, checksum=checksum, bids_raw=bids_raw,
                            asks_raw=asks_raw, source=SnapshotSource.WS, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)
    return BookDelta(symbol=symbol, bids=bids, asks=asks, checksum=checksum, bids_raw=bids_raw, asks_raw=asks_raw,
                     ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)


def parse_event(obj: Mapping[str, Any]) -> list[MarketEvent]:
    event = obj.get("event")
    arg = obj.get("arg") if isinstance(obj.get("arg"), dict) else {}
    sym = arg.get("instId") if isinstance(arg.get("instId"), str) else None
    if event == "subscribe":
        return [Subscribed(symbol=sym, channel=str(arg.get("channel", "")))]
    if event == "error":
        return [VenueNotice(kind=NoticeKind.ERROR, message=f"{obj.get('code')}: {obj.get('msg')}", symbol=sym)]
    return []


def decode(frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
    """Decode any Bitget public frame.

    Raises:
        AdapterError: malformed JSON, wrong types, out-of-range numbers.
    """
    if frame in (b"pong", "pong"):
        return []
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _fail(f"invalid JSON: {exc}", frame) from None
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    if "event" in obj:
        return parse_event(obj)
    arg = obj.get("arg")
    if type(arg) is not dict:
        return []
    channel = arg.get("channel")
    if channel is not None and type(channel) is not str:
        # an unhashable value (``[1]``) would make the set lookup raise TypeError
        raise _fail(f"arg.channel must be a string, got {type(channel).__name__}", frame)
    if channel not in BOOK_CHANNELS:
        return []  # ticker, trade, candles ...
    symbol, action, data = okx_style_book_push(obj, arg, (ACTION_SNAPSHOT, ACTION_UPDATE), EXCHANGE, frame)
    return [parse_book_entry(e, action, symbol, frame, ts_recv_ns) for e in data]


def parse_rest_depth(
    body: bytes | str | Mapping[str, Any], symbol: str | None = None, url: str | None = None, ts_recv_ns: int = 0
) -> BookSnapshot:
    """REST order book (``{"code":"00000","data":{"asks":[[px,sz]],"bids":...,"ts":...}}``;
    v1 and v2 spot ``orderbook`` answers) -> ``BookSnapshot(source=REST, seq=None)``.

    Raises:
        AdapterError: malformed body or no symbol.
    """
    from urllib.parse import parse_qs, urlsplit

    sym = symbol
    if not sym and url:
        q = parse_qs(urlsplit(url).query)
        sym = (q.get("symbol") or q.get("instId") or [None])[0]
    if isinstance(body, (bytes, str)):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _fail(f"invalid JSON: {exc}", body, sym) from None
    else:
        obj = body
    if not isinstance(obj, Mapping) or not isinstance(obj.get("data"), Mapping):
        raise _fail("REST body must be an object with a data object", str(body)[:200], sym)
    if str(obj.get("code", "00000")) != "00000":
        raise _fail(f"REST error code {obj.get('code')!r}: {obj.get('msg')!r}", str(body)[:200], sym)
    if not sym:
        raise _fail("REST depth body names no symbol (pass symbol= or url=)", str(body)[:200])
    data = obj["data"]
    bids, bids_raw = parse_levels(list(data.get("bids", [])), str(body)[:200], sym)
    asks, asks_raw = parse_levels(list(data.get("asks", [])), str(body)[:200], sym)
    ts = data.get("ts")
    return BookSnapshot(symbol=sym, bids=bids, asks=asks, bids_raw=bids_raw, asks_raw=asks_raw,
                        source=SnapshotSource.REST, ts_exchange_ns=_ts_ns(ts, body, sym) if ts is not None else 0,
                        ts_recv_ns=ts_recv_ns)
