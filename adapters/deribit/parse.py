"""Pure Deribit parsers: JSON-RPC frames -> normalized events.

``change_id``/``prev_change_id`` become ``first_seq = last_seq = change_id`` and
``prev_seq = prev_change_id`` here and nowhere later (exchange-protocols.md §9.2: the check is
``prev_change_id == local``; ``change_id`` values are not consecutive, so never ``local + 1``).
A ``delete`` level becomes size 0 whatever amount it carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    NoticeKind,
    Subscribed,
    Trade,
    VenueNotice,
)
from bookkeeper.types import TradeSide

from .schemas import (
    BookData,
    Envelope,
    GroupedBookData,
    HeartbeatParams,
    Notification,
    RpcError,
    TradeData,
)

EXCHANGE = "deribit"

_envelope = msgspec.json.Decoder(Envelope)
_notification = msgspec.json.Decoder(Notification)
_heartbeat = msgspec.json.Decoder(HeartbeatParams)
_book = msgspec.json.Decoder(BookData)
_grouped = msgspec.json.Decoder(GroupedBookData)
_trades = msgspec.json.Decoder(list[TradeData])
_error = msgspec.json.Decoder(RpcError)
_result_channels = msgspec.json.Decoder(list[str])

_BOOK_INTERVALS = frozenset({"raw", "100ms", "agg2"})
#: Deribit error code 10028 ``too_many_requests`` terminates the session (§9.5).
_RATE_LIMIT_CODE = 10028
_DIRECTION = {"buy": TradeSide.BUY, "sell": TradeSide.SELL}


def _levels(rows: list[tuple[str, float, float]]) -> list[tuple[float, float]]:
    # One comprehension per side (no per-level calls): ``delete`` -> 0 whatever the amount.
    return [(p, 0.0 if a == "delete" else s) for a, p, s in rows]


def parse_book(data: msgspec.Raw, channel: str, frame: bytes | str, ts_recv_ns: int) -> BookSnapshot | BookDelta:
    """One ``book.{instrument}.{interval}`` notification body.

    Raises:
        AdapterError: wrong types, NaN/negative/out-of-range numbers, a change without
            ``prev_change_id``.
    """
    parts = channel.split(".")
    symbol = parts[1] if len(parts) > 1 else None
    try:
        if len(parts) == 5:  # grouped: book.{instrument}.{group}.{depth}.{interval}
            g = _grouped.decode(data)
            return BookSnapshot(symbol=g.instrument_name, bids=g.bids, asks=g.asks, seq=g.change_id,
                                ts_exchange_ns=g.timestamp * 1_000_000, ts_recv_ns=ts_recv_ns)
        d = _book.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AdapterError(f"bad {channel} data: {exc}", exchange=EXCHANGE, raw=frame, symbol=symbol) from None
    ts = d.timestamp * 1_000_000
    if d.type == "snapshot":
        return BookSnapshot(symbol=d.instrument_name, bids=_levels(d.bids), asks=_levels(d.asks), seq=d.change_id,
                            ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)
    if d.prev_change_id is None:
        raise AdapterError("book change without prev_change_id", exchange=EXCHANGE, raw=frame,
                           symbol=d.instrument_name)
    return BookDelta(symbol=d.instrument_name, bids=_levels(d.bids), asks=_levels(d.asks), first_seq=d.change_id,
                     last_seq=d.change_id, prev_seq=d.prev_change_id, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)


def parse_trades(data: msgspec.Raw, channel: str, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        rows = _trades.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AdapterError(f"bad {channel} data: {exc}", exchange=EXCHANGE, raw=frame) from None
    out: list[MarketEvent] = []
    for t in rows:
        if not (t.price.is_finite() and t.amount.is_finite() and t.price > 0 and t.amount > 0):
            raise AdapterError(f"bad trade {t.trade_id}: price {t.price} amount {t.amount}", exchange=EXCHANGE,
                               raw=frame, symbol=t.instrument_name)
        out.append(Trade(symbol=t.instrument_name, trade_id=t.trade_id, price=t.price, qty=t.amount,
                         side=_DIRECTION[t.direction], ts_exchange_ns=t.timestamp * 1_000_000,
                         ts_recv_ns=ts_recv_ns))
    return out


def _response(env: Envelope, frame: bytes | str) -> list[MarketEvent]:
    if len(env.error):
        try:
            err = _error.decode(env.error)
        except (msgspec.DecodeError, msgspec.ValidationError):
            err = RpcError(message=bytes(env.error).decode("utf-8", "replace"))
        return [VenueNotice(kind=NoticeKind.RATE_LIMITED if err.code == _RATE_LIMIT_CODE else NoticeKind.ERROR,
                            message=f"{err.code}: {err.message}")]
    if not len(env.result):
        return []
    try:
        channels = _result_channels.decode(env.result)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []  # the answer to public/test, set_heartbeat, auth...: nothing for the core
    out: list[MarketEvent] = []
    for ch in channels:
        parts = ch.split(".")
        if parts[0] == "book" and len(parts) >= 3:
            out.append(Subscribed(symbol=parts[1], channel="book"))
    return out


def decode(frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    """Decode any Deribit frame (book, trades, heartbeats, responses; others ``[]``).

    Raises:
        AdapterError: the frame is not a JSON-RPC object or a book/trade body is malformed.
    """
    try:
        env = _envelope.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AdapterError(f"bad JSON-RPC frame: {exc}", exchange=EXCHANGE, raw=frame) from None
    method = env.method
    if method == "subscription":
        if not len(env.params):
            raise AdapterError("subscription without params", exchange=EXCHANGE, raw=frame)
        try:
            note = _notification.decode(env.params)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise AdapterError(f"bad subscription params: {exc}", exchange=EXCHANGE, raw=frame) from None
        channel = note.channel
        head = channel.split(".", 1)[0]
        if head == "book":
            parts = channel.split(".")
            if len(parts) == 5 or (len(parts) == 3 and parts[2] in _BOOK_INTERVALS):
                return [parse_book(note.data, channel, frame, ts_recv_ns)]
            return []
        if head == "trades":
            return parse_trades(note.data, channel, frame, ts_recv_ns)
        return []  # ticker, user.*, ...: not this adapter's business
    if method == "heartbeat":
        kind = None
        if len(env.params):
            try:
                kind = _heartbeat.decode(env.params).type
            except (msgspec.DecodeError, msgspec.ValidationError):
                kind = None
        if kind == "test_request":
            # Deribit closes the connection unless a ``public/test`` answers this (§9.5);
            # the notice tells the driver to send spec.test_message().
            return [Heartbeat(ts_recv_ns=ts_recv_ns),
                    VenueNotice(kind=NoticeKind.TEST_REQUEST, message="answer with public/test")]
        return [Heartbeat(ts_recv_ns=ts_recv_ns)]
    if method is None and env.id is not None:
        return _response(env, frame)
    return []


NO_REST = ("deribit REST order-book snapshots are not spliceable (exchange-protocols.md §9.2); "
           "resubscribe for a WS snapshot")


def parse_rest_snapshot(body: bytes | str | Mapping[str, Any], symbol: str | None = None) -> BookSnapshot:
    """Deribit REST books are deliberately not supported.

    ``public/get_order_book`` returns a ``change_id``, but splicing it with buffered WS
    changes is undocumented, and with ``100ms`` aggregation the REST id can fall inside one
    aggregated message (exchange-protocols.md §9.2 ⚠). Recovery is a WS resubscribe, whose
    first notification is a full snapshot.

    Raises:
        AdapterError: always.
    """
    raise AdapterError(NO_REST, exchange=EXCHANGE, raw=str(body)[:200], symbol=symbol)
