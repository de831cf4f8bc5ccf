"""Pure Bybit parsers: v5 ``orderbook.N``, ``orderbook.full`` and legacy v2
``orderBookL2_25`` frames -> events.

v5 ``u`` becomes ``first_seq = last_seq = u`` (``MONOTONIC_ONLY``: Bybit does not promise
contiguous ``u`` on ``orderbook.N``, exchange-protocols.md §6.2) and a message with ``u == 1``
is a full snapshot after a service restart whatever its ``type`` says (Bybit: "overwrite the
book"). Legacy ``cross_seq`` (increasing per topic) plays the same role for the v2 format.

``orderbook.full`` (spot, :func:`decode_full`) is deltas only, ``u`` contiguous per message,
and ``seq`` (the matching engine's version) goes to ``cross_seq`` of the delta and of the REST
``full_orderbook`` snapshot: the splice matches both (§2.3, §6.2). There ``u == 1`` is *not*
a snapshot: it is a delta with restarted ids, after which the book must be synced from REST
again (the session sees a delta newer by ``cross_seq`` but stale by ``u``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Trade,
    VenueNotice,
)
from bookkeeper.types import TradeSide

from .._common import id_keyed_rows
from .schemas import (
    Envelope,
    LegacyDelta,
    LegacyLinearSnapshot,
    LegacyRow,
    LegacyTrade,
    V5BookData,
    V5FullBook,
    V5FullRestBody,
    V5RestBody,
    V5Trade,
)

EXCHANGE = "bybit"

_envelope = msgspec.json.Decoder(Envelope)
_v5_book = msgspec.json.Decoder(V5BookData, strict=False)
_v5_trades = msgspec.json.Decoder(list[V5Trade], strict=False)
_rest = msgspec.json.Decoder(V5RestBody, strict=False)
_full_book = msgspec.json.Decoder(V5FullBook, strict=False)
_full_rest = msgspec.json.Decoder(V5FullRestBody, strict=False)
#: the full-book stream's topic prefix (§6.1)
FULL_PREFIX = "orderbook.full."
_legacy_snapshot = msgspec.json.Decoder(list[LegacyRow] | LegacyLinearSnapshot, strict=False)
_legacy_delta = msgspec.json.Decoder(LegacyDelta, strict=False)
_legacy_trades = msgspec.json.Decoder(list[LegacyTrade], strict=False)

_SIDE = {"Buy": TradeSide.BUY, "Sell": TradeSide.SELL}
_LEGACY_BOOK_PREFIXES = ("orderBookL2_25.", "orderBook_200.")
_Errors = (msgspec.DecodeError, msgspec.ValidationError)


def _money_ok(*values: Decimal) -> bool:
    return all(v.is_finite() and v > 0 for v in values)


def parse_v5_book(env: Envelope, frame: bytes | str, ts_recv_ns: int,
                  exchange: str = EXCHANGE) -> BookSnapshot | BookDelta:
    """One ``orderbook.{depth}.{symbol}`` message.

    Raises:
        AdapterError: wrong types or out-of-range numbers, unknown ``type``.
    """
    topic = env.topic or ""
    symbol = topic.rsplit(".", 1)[-1] or None
    try:
        d = _v5_book.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad {topic} data: {exc}", exchange=exchange, raw=frame, symbol=symbol) from None
    ts = env.ts * 1_000_000
    if env.type == "snapshot" or (env.type == "delta" and d.u == 1):
        # u == 1: the service restarted and this message is a full book (Bybit §6.2).
        return BookSnapshot(symbol=d.s, bids=d.b, asks=d.a, seq=d.u, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)
    if env.type == "delta":
        return BookDelta(symbol=d.s, bids=d.b, asks=d.a, first_seq=d.u, last_seq=d.u, ts_exchange_ns=ts,
                         ts_recv_ns=ts_recv_ns)
    raise AdapterError(f"unknown orderbook message type {env.type!r}", exchange=exchange, raw=frame, symbol=d.s)


def parse_full_book(env: Envelope, frame: bytes | str, ts_recv_ns: int, exchange: str) -> BookDelta:
    """One ``orderbook.full.{symbol}`` message: ``BookDelta(first_seq = last_seq = u,
    cross_seq = seq)``, ``u == 1`` included (restarted ids: the session resyncs, §6.2).

    Raises:
        AdapterError: wrong types or out-of-range numbers, no ``u``/``seq``, or a ``type``
            other than ``delta`` (the stream sends no snapshots).
    """
    topic = env.topic or ""
    symbol = topic[len(FULL_PREFIX):] or None
    try:
        d = _full_book.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad {topic} data: {exc}", exchange=exchange, raw=frame, symbol=symbol) from None
    if env.type != "delta":
        raise AdapterError(f"orderbook.full sends deltas only, not {env.type!r}", exchange=exchange, raw=frame,
                           symbol=d.s)
    return BookDelta(symbol=d.s, bids=d.b, asks=d.a, first_seq=d.u, last_seq=d.u, cross_seq=d.seq,
                     ts_exchange_ns=env.ts * 1_000_000, ts_recv_ns=ts_recv_ns)


def parse_v5_trades(env: Envelope, frame: bytes | str, ts_recv_ns: int,
                    exchange: str = EXCHANGE) -> list[MarketEvent]:
    try:
        rows = _v5_trades.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad {env.topic} data: {exc}", exchange=exchange, raw=frame) from None
    out: list[MarketEvent] = []
    for t in rows:
        if not _money_ok(t.p, t.v):
            raise AdapterError(f"bad trade {t.i}: price {t.p} qty {t.v}", exchange=exchange, raw=frame, symbol=t.s)
        out.append(Trade(symbol=t.s, trade_id=t.i, price=t.p, qty=t.v, side=_SIDE[t.S],
                         ts_exchange_ns=t.T * 1_000_000, ts_recv_ns=ts_recv_ns))
    return out


def parse_legacy_trades(env: Envelope, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        rows = _legacy_trades.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad {env.topic} data: {exc}", exchange=EXCHANGE, raw=frame) from None
    out: list[MarketEvent] = []
    for t in rows:
        if not _money_ok(t.price, t.size):
            raise AdapterError(f"bad trade {t.trade_id}: price {t.price} size {t.size}", exchange=EXCHANGE,
                               raw=frame, symbol=t.symbol)
        out.append(Trade(symbol=t.symbol, trade_id=t.trade_id, price=t.price, qty=t.size, side=_SIDE[t.side],
                         ts_exchange_ns=t.trade_time_ms * 1_000_000, ts_recv_ns=ts_recv_ns))
    return out


class LegacyBooks:
    """The ``id -> price`` memory the legacy id-keyed format forces on a parser.

    Keyed per symbol by ``(id, side)``. A symbol's map exists only after its snapshot; deltas
    for other symbols are ignored (nothing to apply them to). Every message is validated in
    full before the map changes, so a rejected frame leaves the decoder as it was.
    """

    __slots__ = ("_prices",)

    def __init__(self) -> None:
        self._prices: dict[str, dict[tuple[int, str], float]] = {}

    def parse(self, env: Envelope, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
        topic = env.topic or ""
        symbol = topic.rsplit(".", 1)[-1]
        if not symbol:
            raise AdapterError(f"no symbol in topic {topic!r}", exchange=EXCHANGE, raw=frame)
        ts = (env.timestamp_e6 or 0) * 1_000
        seq = env.cross_seq
        if seq is not None and seq < 0:
            raise AdapterError(f"negative cross_seq {seq}", exchange=EXCHANGE, raw=frame, symbol=symbol)
        if env.type == "snapshot":
            return [self._snapshot(env, symbol, seq, ts, frame, ts_recv_ns)]
        if env.type == "delta":
            return self._delta(env, symbol, seq, ts, frame, ts_recv_ns)
        raise AdapterError(f"unknown {topic} type {env.type!r}", exchange=EXCHANGE, raw=frame, symbol=symbol)

    def _snapshot(self, env: Envelope, symbol: str, seq: int | None, ts: int, frame: bytes | str,
                  ts_recv_ns: int) -> BookSnapshot:
        try:
            data = _legacy_snapshot.decode(env.data)
        except _Errors as exc:
            raise AdapterError(f"bad snapshot data: {exc}", exchange=EXCHANGE, raw=frame, symbol=symbol) from None
        rows = data.order_book if isinstance(data, LegacyLinearSnapshot) else data
        prices, bids, asks = id_keyed_rows(rows, "snapshot", EXCHANGE, frame, symbol)
        self._prices[symbol] = prices
        return BookSnapshot(symbol=symbol, bids=bids, asks=asks, seq=seq, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)

    def _delta(self, env: Envelope, symbol: str, seq: int | None, ts: int, frame: bytes | str,
               ts_recv_ns: int) -> list[MarketEvent]:
        try:
            d = _legacy_delta.decode(env.data)
        except _Errors as exc:
            raise AdapterError(f"bad delta data: {exc}", exchange=EXCHANGE, raw=frame, symbol=symbol) from None
        known = self._prices.get(symbol)
        if known is None:
            return []  # no snapshot yet for this symbol: nothing to apply the rows to
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        removed: list[tuple[int, str]] = []
        added: list[tuple[tuple[int, str], float]] = []
        for r in d.delete:
            key = (r.id, r.side)
            price = known.get(key)
            if price is None:
                raise AdapterError(f"delete for unknown id {r.id} ({r.side})", exchange=EXCHANGE, raw=frame,
                                   symbol=symbol)
            removed.append(key)
            (bids if r.side == "Buy" else asks).append((price, 0.0))
        for r in d.update:
            key = (r.id, r.side)
            price = known.get(key)
            if price is None or r.size is None:
                raise AdapterError(f"update for unknown id {r.id} ({r.side}) or without size", exchange=EXCHANGE,
                                   raw=frame, symbol=symbol)
            if r.price is not None and r.price != price:
                raise AdapterError(f"update moves id {r.id} from {price} to {r.price}", exchange=EXCHANGE,
                                   raw=frame, symbol=symbol)
            (bids if r.side == "Buy" else asks).append((price, r.size))
        for r in d.insert:
            if r.price is None or r.size is None:
                raise AdapterError(f"insert row {r.id} without price or size", exchange=EXCHANGE, raw=frame,
                                   symbol=symbol)
            added.append(((r.id, r.side), r.price))
            (bids if r.side == "Buy" else asks).append((r.price, r.size))
        for key in removed:
            del known[key]
        for key, price in added:
            known[key] = price
        return [BookDelta(symbol=symbol, bids=bids, asks=asks, first_seq=seq, last_seq=seq, ts_exchange_ns=ts,
                          ts_recv_ns=ts_recv_ns)]


def _envelope_of(frame: bytes | str, exchange: str) -> Envelope:
    try:
        return _envelope.decode(frame)
    except _Errors as exc:
        raise AdapterError(f"bad frame: {exc}", exchange=exchange, raw=frame) from None


def decode(frame: bytes | str, ts_recv_ns: int, legacy: LegacyBooks) -> list[MarketEvent]:
    """Decode any Bybit public frame (v5 or legacy v2; unknown topics ``[]``).

    Raises:
        AdapterError: not a JSON object, or a book/trade body is malformed.
    """
    return _dispatch(_envelope_of(frame, EXCHANGE), frame, ts_recv_ns, legacy, EXCHANGE)


def decode_full(frame: bytes | str, ts_recv_ns: int, exchange: str) -> list[MarketEvent]:
    """Decode a Bybit spot frame where books come from ``orderbook.full.{symbol}``
    (:func:`parse_full_book`); other v5 frames as :func:`decode` does, and the legacy v2
    (inverse) topics not at all. Errors name ``exchange`` (the venue's registry name).

    Raises:
        AdapterError: not a JSON object, or a book/trade body is malformed.
    """
    env = _envelope_of(frame, exchange)
    topic = env.topic
    if topic is not None and topic.startswith(FULL_PREFIX):
        return [parse_full_book(env, frame, ts_recv_ns, exchange)]
    return _dispatch(env, frame, ts_recv_ns, None, exchange)


def _dispatch(env: Envelope, frame: bytes | str, ts_recv_ns: int, legacy: LegacyBooks | None,
              exchange: str) -> list[MarketEvent]:
    """One decoded envelope -> events (``legacy``: the v2 format's memory; ``None``: a decoder
    that does not read the v2 format, its topics are unknown)."""
    topic = env.topic
    if topic is None:
        if env.success is False:
            return [VenueNotice(kind=NoticeKind.ERROR, message=f"{env.op or 'request'} failed: {env.ret_msg}")]
        return []  # subscribe acks and pongs (both shapes, §6.5)
    if topic.startswith("orderbook."):
        return [parse_v5_book(env, frame, ts_recv_ns, exchange)]
    if topic.startswith("publicTrade."):
        return parse_v5_trades(env, frame, ts_recv_ns, exchange)
    if legacy is None:
        return []
    if topic.startswith(_LEGACY_BOOK_PREFIXES):
        return legacy.parse(env, frame, ts_recv_ns)
    if topic.startswith("trade."):
        return parse_legacy_trades(env, frame, ts_recv_ns)
    return []


def parse_rest_snapshot(body: bytes | str | Mapping[str, Any], symbol: str | None, ts_recv_ns: int) -> BookSnapshot:
    """``GET /v5/market/orderbook`` body (raw, or the dict ccxt's
    ``public_get_v5_market_orderbook`` returns) -> ``BookSnapshot(seq=u, source=REST)``.

    Raises:
        AdapterError: malformed body or ``retCode != 0``.
    """
    r = _rest_result(body, symbol, _rest, V5RestBody, EXCHANGE)
    return BookSnapshot(symbol=r.s or symbol or "", bids=r.b, asks=r.a, seq=r.u, source=SnapshotSource.REST,
                        ts_exchange_ns=r.ts * 1_000_000, ts_recv_ns=ts_recv_ns)


def parse_rest_full_snapshot(body: bytes | str | Mapping[str, Any], symbol: str | None, ts_recv_ns: int,
                             exchange: str) -> BookSnapshot:
    """``GET /v5/market/full_orderbook`` body (raw, or the dict ccxt's
    ``public_get_v5_market_full_orderbook`` returns) -> ``BookSnapshot(seq=u, cross_seq=seq,
    source=REST)``: both ids are what the splice matches with the ``orderbook.full`` deltas
    (§2.3, §6.2).

    Raises:
        AdapterError: malformed body (``u`` or ``seq`` missing included) or ``retCode != 0``.
    """
    r = _rest_result(body, symbol, _full_rest, V5FullRestBody, exchange)
    return BookSnapshot(symbol=r.s or symbol or "", bids=r.b, asks=r.a, seq=r.u, cross_seq=r.seq,
                        source=SnapshotSource.REST, ts_exchange_ns=r.ts * 1_000_000, ts_recv_ns=ts_recv_ns)


def _rest_result(body: bytes | str | Mapping[str, Any], symbol: str | None, decoder: msgspec.json.Decoder,
                 shape: type[Any], exchange: str) -> Any:
    """The ``result`` of a Bybit market REST body, decoded as ``shape``.

    Raises:
        AdapterError: malformed body or ``retCode != 0``.
    """
    try:
        if isinstance(body, (bytes, str)):
            parsed = decoder.decode(body)
        else:
            parsed = msgspec.convert(body, shape, strict=False)
    except _Errors as exc:
        raise AdapterError(f"bad orderbook body: {exc}", exchange=exchange, raw=str(body), symbol=symbol) from None
    if parsed.retCode != 0 or parsed.result is None:
        raise AdapterError(f"orderbook request failed: {parsed.retCode} {parsed.retMsg}", exchange=exchange,
                           raw=str(body), symbol=symbol)
    return parsed.result
