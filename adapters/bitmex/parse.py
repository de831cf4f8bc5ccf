"""Pure BitMEX parsers (replay only: the exchange closed on 2026-09-23).

Theory of operation: BitMEX numbers nothing (``SequenceModel.NONE``); a book's consistency
rests on the row ids. :class:`L2Tables` keeps, per symbol, ``(id, side) -> price`` from the
``partial`` and ``insert`` rows. Table data for a symbol is ignored until its ``partial``
(exchange-protocols.md §12.2); after it, an ``update``/``delete`` for an id never seen means
the local book is inconsistent, reported as :class:`AdapterError` carrying the symbol (the
session resubscribes). Every message is validated in full before the id map changes, so a
rejected frame leaves the decoder and the book as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Trade,
    VenueNotice,
)
from bookkeeper.types import TradeSide

from .._common import id_keyed_rows
from .schemas import Book10Row, Envelope, L2Row, TradeRow

EXCHANGE = "bitmex"
_Errors = (msgspec.DecodeError, msgspec.ValidationError)

_envelope = msgspec.json.Decoder(Envelope)
_l2_rows = msgspec.json.Decoder(list[L2Row])
_book10_rows = msgspec.json.Decoder(list[Book10Row])
_trade_rows = msgspec.json.Decoder(list[TradeRow])
_L2_TABLES = frozenset({"orderBookL2", "orderBookL2_25"})
_SIDE = {"Buy": TradeSide.BUY, "Sell": TradeSide.SELL}
_Key = tuple[int, str]


def iso_to_ns(text: str) -> int:
    """``2021-07-22T22:36:10.014Z`` -> ns (ms precision, as BitMEX sends); 0 if unreadable."""
    if not text:
        return 0
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return 0
    return int(dt.timestamp() * 1_000_000) * 1_000


def _group(rows: list[L2Row]) -> dict[str, list[L2Row]]:
    by_symbol: dict[str, list[L2Row]] = {}
    for r in rows:
        by_symbol.setdefault(r.symbol, []).append(r)
    return by_symbol


class L2Tables:
    """Per-connection memory of ``orderBookL2`` row ids (see module docstring)."""

    __slots__ = ("_prices",)

    def __init__(self) -> None:
        self._prices: dict[str, dict[_Key, float]] = {}

    def has(self, symbol: str) -> bool:
        return symbol in self._prices

    def parse(self, env: Envelope, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
        action = env.action
        fsym = env.filter.symbol if env.filter is not None else None
        try:
            rows = _l2_rows.decode(env.data) if len(env.data) else []
        except _Errors as exc:
            raise AdapterError(f"bad {env.table} {action} rows: {exc}", exchange=EXCHANGE, raw=frame,
                               symbol=fsym) from None
        groups = _group(rows)
        if action == "partial":
            if fsym is not None and fsym not in groups:
                groups[fsym] = []  # an empty book is still a book
            return self._partial(groups, frame, ts_recv_ns)
        if action not in ("insert", "update", "delete"):
            raise AdapterError(f"unknown {env.table} action {action!r}", exchange=EXCHANGE, raw=frame)
        return self._changes(action, groups, frame, ts_recv_ns)

    def _partial(self, groups: dict[str, list[L2Row]], frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
        staged: list[tuple[str, dict[_Key, float], BookSnapshot]] = []
        for symbol, rows in groups.items():
            prices, bids, asks = id_keyed_rows(rows, "partial", EXCHANGE, frame, symbol)
            ts = iso_to_ns(rows[0].timestamp) if rows else 0
            staged.append((symbol, prices, BookSnapshot(symbol=symbol, bids=bids, asks=asks, ts_exchange_ns=ts,
                                                        ts_recv_ns=ts_recv_ns)))
        for symbol, prices, _ in staged:
            self._prices[symbol] = prices
        return [snap for _, _, snap in staged]

    def _changes(self, action: str, groups: dict[str, list[L2Row]], frame: bytes | str,
                 ts_recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        commits: list[tuple[dict[_Key, float], list[tuple[_Key, float | None]]]] = []
        for symbol, rows in groups.items():
            known = self._prices.get(symbol)
            if known is None:
                continue  # before this symbol's partial: ignored (§12.2)
            bids: list[tuple[float, float]] = []
            asks: list[tuple[float, float]] = []
            edits: list[tuple[_Key, float | None]] = []
            for r in rows:
                key = (r.id, r.side)
                if action == "insert":
                    if r.price is None or r.size is None:
                        raise AdapterError(f"insert row {r.id} without price or size", exchange=EXCHANGE,
                                           raw=frame, symbol=symbol)
                    price, size = r.price, r.size
                    edits.append((key, price))
                else:
                    price = known.get(key)  # type: ignore[assignment]
                    if price is None:
                        raise AdapterError(f"{action} for unknown id {r.id} ({r.side}): book inconsistent",
                                           exchange=EXCHANGE, raw=frame, symbol=symbol)
                    if action == "delete":
                        size = 0.0
                        edits.append((key, None))
                    else:
                        if r.size is None:
                            raise AdapterError(f"update row {r.id} without size", exchange=EXCHANGE, raw=frame,
                                               symbol=symbol)
                        if r.price is not None and r.price != price:
                            raise AdapterError(f"update moves id {r.id} from {price} to {r.price}",
                                               exchange=EXCHANGE, raw=frame, symbol=symbol)
                        size = r.size
                (bids if r.side == "Buy" else asks).append((price, size))
            commits.append((known, edits))
            out.append(BookDelta(symbol=symbol, bids=bids, asks=asks, ts_exchange_ns=iso_to_ns(rows[0].timestamp),
                                 ts_recv_ns=ts_recv_ns))
        for known, edits in commits:
            for key, price in edits:
                if price is None:
                    known.pop(key, None)
                else:
                    known[key] = price
        return out


def _book10(env: Envelope, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        rows = _book10_rows.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad orderBook10 rows: {exc}", exchange=EXCHANGE, raw=frame) from None
    return [BookSnapshot(symbol=r.symbol, bids=r.bids, asks=r.asks, ts_exchange_ns=iso_to_ns(r.timestamp),
                         ts_recv_ns=ts_recv_ns) for r in rows]


def _trades(env: Envelope, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        rows = _trade_rows.decode(env.data)
    except _Errors as exc:
        raise AdapterError(f"bad trade rows: {exc}", exchange=EXCHANGE, raw=frame) from None
    out: list[MarketEvent] = []
    for t in rows:
        if not (t.price.is_finite() and t.size.is_finite() and t.price > 0 and t.size > 0):
            raise AdapterError(f"bad trade {t.trdMatchID}", exchange=EXCHANGE, raw=frame, symbol=t.symbol)
        out.append(Trade(symbol=t.symbol, trade_id=t.trdMatchID, price=t.price, qty=t.size, side=_SIDE[t.side],
                         ts_exchange_ns=iso_to_ns(t.timestamp), ts_recv_ns=ts_recv_ns))
    return out


def decode(frame: bytes | str, ts_recv_ns: int, tables: L2Tables) -> list[MarketEvent]:
    """Decode any BitMEX public frame (book tables, trades, control; others ``[]``).

    Raises:
        AdapterError: not a JSON object, malformed rows, or an update/delete for an unknown id.
    """
    if frame in (b"pong", "pong"):
        return [Heartbeat(ts_recv_ns=ts_recv_ns)]
    try:
        env = _envelope.decode(frame)
    except _Errors as exc:
        raise AdapterError(f"bad frame: {exc}", exchange=EXCHANGE, raw=frame) from None
    table = env.table
    if table is None:
        if env.error is not None:
            return [VenueNotice(kind=NoticeKind.RATE_LIMITED if env.status == 429 else NoticeKind.ERROR,
                                message=f"{env.status}: {env.error}")]
        return []  # welcome (info), subscribe acks
    if not env.action:
        raise AdapterError(f"{table} message without action", exchange=EXCHANGE, raw=frame)
    if table in _L2_TABLES:
        return tables.parse(env, frame, ts_recv_ns)
    if table == "orderBook10":
        return _book10(env, frame, ts_recv_ns)
    if table == "trade" and env.action == "insert":
        return _trades(env, frame, ts_recv_ns)
    return []  # quote, trade partial (history), instrument...


def parse_rest_snapshot(
    body: bytes | str | Mapping[str, Any], symbol: str | None, ts_recv_ns: int
) -> BookSnapshot:
    """``GET /api/v1/orderBook/L2?symbol=&depth=0``: a list of L2 rows. No sequence id
    (``seq=None``), so it cannot be spliced with WS rows; use the WS ``partial``.

    Raises:
        AdapterError: malformed rows or several symbols.
    """
    try:
        if isinstance(body, (bytes, str)):
            rows = _l2_rows.decode(body)
        else:
            rows = msgspec.convert(body, list[L2Row])
    except _Errors as exc:
        raise AdapterError(f"bad orderBook/L2 body: {exc}", exchange=EXCHANGE, raw=str(body), symbol=symbol) from None
    groups = _group(rows)
    if len(groups) > 1:
        raise AdapterError(f"REST book holds {len(groups)} symbols", exchange=EXCHANGE, raw=str(body), symbol=symbol)
    sym = next(iter(groups), symbol or "")
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    for r in rows:
        if r.price is None or r.size is None:
            raise AdapterError(f"row {r.id} without price or size", exchange=EXCHANGE, raw=str(body), symbol=sym)
        (bids if r.side == "Buy" else asks).append((r.price, r.size))
    return BookSnapshot(symbol=sym, bids=bids, asks=asks, source=SnapshotSource.REST, ts_recv_ns=ts_recv_ns)
