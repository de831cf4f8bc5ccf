"""Pure Kraken Futures parsers: WS v1 frames -> normalized events.

``seq`` becomes ``first_seq == last_seq`` (and the snapshot's ``seq``) here and nowhere later.
Prices and quantities are JSON numbers: only ``int``/``float`` (never bool or strings) in
range are accepted, so a malformed frame raises :class:`AdapterError` and never changes a book.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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

from .schemas import (
    FEED_BOOK,
    FEED_HEARTBEAT,
    FEED_SNAPSHOT,
    FEED_TRADE,
    SIDE_BUY,
    SIDE_SELL,
)

EXCHANGE = "kraken_futures"
_MAX = 1e15
_SEQ_MAX = 1 << 63


def _fail(msg: str, frame: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(msg, exchange=EXCHANGE, raw=frame, symbol=symbol)


def _num(v: Any) -> bool:
    t = type(v)
    return t is float or t is int


def _level(px: Any, qty: Any, frame: Any, symbol: str) -> tuple[float, float]:
    if not _num(px) or not _num(qty):
        raise _fail(f"price and qty must be numbers: {px!r}, {qty!r}", frame, symbol)
    p = float(px)
    s = float(qty)
    if not (0.0 < p < _MAX) or not (0.0 <= s < _MAX):
        raise _fail(f"level out of range [{px!r}, {qty!r}]", frame, symbol)
    return p, s


def _levels(rows: Any, frame: Any, symbol: str) -> list[tuple[float, float]]:
    if type(rows) is not list:
        raise _fail("levels must be a list", frame, symbol)
    out = []
    for row in rows:
        if type(row) is not dict:
            raise _fail(f"bad level {row!r}", frame, symbol)
        out.append(_level(row.get("price"), row.get("qty"), frame, symbol))
    return out


def _seq(v: Any, frame: Any, symbol: str) -> int:
    if type(v) is not int or not 0 <= v < _SEQ_MAX:
        raise _fail(f"seq must be a non-negative integer, got {v!r}", frame, symbol)
    return v


def _ts_ns(v: Any) -> int:
    return v * 1_000_000 if type(v) is int and 0 <= v < 10**16 else 0


def _symbol(obj: Mapping[str, Any], frame: Any) -> str:
    sym = obj.get("product_id")
    if type(sym) is not str or not sym:
        raise _fail("message without product_id", frame)
    return sym


def parse_snapshot(obj: Mapping[str, Any], frame: Any, ts_recv_ns: int) -> BookSnapshot:
    sym = _symbol(obj, frame)
    return BookSnapshot(symbol=sym, bids=_levels(obj.get("bids"), frame, sym),
                        asks=_levels(obj.get("asks"), frame, sym), seq=_seq(obj.get("seq"), frame, sym),
                        source=SnapshotSource.WS, ts_exchange_ns=_ts_ns(obj.get("timestamp")), ts_recv_ns=ts_recv_ns)


def parse_book(obj: Mapping[str, Any], frame: Any, ts_recv_ns: int) -> BookDelta:
    sym = _symbol(obj, frame)
    seq = _seq(obj.get("seq"), frame, sym)
    lv = [_level(obj.get("price"), obj.get("qty"), frame, sym)]
    side = obj.get("side")
    if side == SIDE_BUY:
        bids, asks = lv, []
    elif side == SIDE_SELL:
        bids, asks = [], lv
    else:
        raise _fail(f"bad side {side!r}", frame, sym)
    return BookDelta(symbol=sym, bids=bids, asks=asks, first_seq=seq, last_seq=seq,
                     ts_exchange_ns=_ts_ns(obj.get("timestamp")), ts_recv_ns=ts_recv_ns)


def parse_trade(frame: bytes | str, ts_recv_ns: int) -> Trade:
    """A live ``trade`` message; re-parsed with ``Decimal`` so money never passes through float."""
    try:
        obj = json.loads(frame, parse_float=Decimal, parse_int=Decimal, parse_constant=_reject)
    except ValueError as exc:
        raise _fail(f"invalid JSON: {exc}", frame) from None
    sym = _symbol(obj, frame)
    px = obj.get("price")
    qty = obj.get("qty")
    if type(px) is not Decimal or type(qty) is not Decimal or not px > 0 or not qty > 0:
        raise _fail("bad trade price/qty", frame, sym)
    side = obj.get("side")
    t = obj.get("time")
    return Trade(symbol=sym, trade_id=str(obj.get("uid", obj.get("seq", ""))), price=px, qty=qty,
                 side=TradeSide.BUY if side == SIDE_BUY else TradeSide.SELL if side == SIDE_SELL else None,
                 ts_exchange_ns=int(t) * 1_000_000 if type(t) is Decimal and 0 <= t < 10**16 else 0,
                 ts_recv_ns=ts_recv_ns)


def _reject(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def parse_event(obj: Mapping[str, Any]) -> list[MarketEvent]:
    event = obj.get("event")
    if event == "subscribed":
        ids = obj.get("product_ids")
        feed = str(obj.get("feed", ""))
        if type(ids) is list and ids:
            return [Subscribed(symbol=str(i), channel=feed) for i in ids]
        return [Subscribed(symbol=None, channel=feed)]
    if event in ("error", "alert"):
        # both are failures the venue reports (an "alert" is e.g. "Bad websocket message")
        return [VenueNotice(kind=NoticeKind.ERROR, message=str(obj.get("message", "")))]
    return []  # info, unsubscribed


def decode(frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
    """Decode any Kraken Futures public frame.

    Raises:
        AdapterError: malformed JSON, wrong types, out-of-range numbers.
    """
    try:
        obj = orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _fail(f"invalid JSON: {exc}", frame) from None
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    feed = obj.get("feed")
    if feed == FEED_BOOK and "event" not in obj:
        return [parse_book(obj, frame, ts_recv_ns)]
    if feed == FEED_SNAPSHOT:
        return [parse_snapshot(obj, frame, ts_recv_ns)]
    if "event" in obj:
        if obj.get("event") == "subscribed_failed":
            return [VenueNotice(kind=NoticeKind.ERROR, message=f"subscribe failed: {obj.get('message', '')}")]
        return parse_event(obj)
    if feed == FEED_HEARTBEAT:
        return [Heartbeat(ts_recv_ns=ts_recv_ns)]
    if feed == FEED_TRADE:
        return [parse_trade(frame, ts_recv_ns)]
    return []  # trade_snapshot, ticker, ticker_lite ...
