"""Pure Coinbase parsers: Advanced Trade and legacy Pro ``level2`` frames -> events.

**Connection-level sequencing (Advanced Trade).** ``sequence_num`` counts every message on
the connection, across channels and products (exchange-protocols.md §8.2), so no per-product
session can check it. The per-connection :class:`AtSequence` does, and reports a break as a
value, not an exception: the frame's events are preceded by
``VenueNotice(kind=NoticeKind.CONNECTION_GAP)`` when numbers were skipped, and replaced by
``VenueNotice(kind=NoticeKind.CONNECTION_OUT_OF_ORDER)`` when a number goes back (a late frame
must not overwrite newer absolute sizes). Either notice means every book on that connection is
suspect: the driver resubscribes ``level2`` (or reconnects). A frame that repeats the last
number is the same message delivered twice: it is dropped with an informational
``NoticeKind.NOTICE`` and nothing is suspect (nothing was missed, and the copy never reaches a
book), as a duplicate delta is ignored on venues whose books carry ids.
A frame rejected with :class:`AdapterError` does not advance the counter, so the next good
frame reports the lost one as a connection gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

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

from .._common import levels as checked_levels
from .._common import loads
from .schemas import (
    AtEnvelope,
    AtL2Event,
    AtSubscriptionsEvent,
    AtTradeEvent,
    Envelope,
    ErrorMessage,
    LegacyHeartbeat,
    LegacyL2Update,
    LegacyMatch,
    LegacySnapshot,
    LegacySubscriptionChannel,
    LegacySubscriptions,
)

EXCHANGE = "coinbase"
_Errors = (msgspec.DecodeError, msgspec.ValidationError)

_envelope = msgspec.json.Decoder(Envelope)
_at_envelope = msgspec.json.Decoder(AtEnvelope)
_at_l2 = msgspec.json.Decoder(list[AtL2Event], strict=False)
_at_trades = msgspec.json.Decoder(list[AtTradeEvent], strict=False)
_at_subs = msgspec.json.Decoder(list[AtSubscriptionsEvent])
_snapshot = msgspec.json.Decoder(LegacySnapshot, strict=False)
_l2update = msgspec.json.Decoder(LegacyL2Update, strict=False)
_match = msgspec.json.Decoder(LegacyMatch, strict=False)
_heartbeat = msgspec.json.Decoder(LegacyHeartbeat)
_subscriptions = msgspec.json.Decoder(LegacySubscriptions)
_error = msgspec.json.Decoder(ErrorMessage)

# Coinbase Pro "match": ``side`` is the maker's side, so the aggressor is the other one.
_AGGRESSOR = {"buy": TradeSide.SELL, "sell": TradeSide.BUY}


def iso_to_ns(text: str) -> int:
    """``2023-02-09T20:32:50.714964855Z`` -> ns since the epoch (all nine digits kept);
    0 when absent or unreadable (timestamps are informational here)."""
    if not text:
        return 0
    head, dot, frac = text.partition(".")
    tz = ""
    if dot:
        digits = frac.rstrip("Z")
        i = 0
        while i < len(digits) and digits[i].isdigit():
            i += 1
        tz, digits = digits[i:], digits[:i]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
    else:
        frac_ns = 0
        if head.endswith("Z"):
            head = head[:-1]
    try:
        dt = datetime.fromisoformat(head + (tz or "+00:00"))
    except ValueError:
        return 0
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


class AtSequence:
    """The per-connection ``sequence_num`` check (one per decoder, i.e. per connection)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: int | None = None

    @property
    def last(self) -> int | None:
        return self._last

    def check(self, n: int) -> VenueNotice | None:
        """Classify ``n`` against the last number seen and advance; a notice on a break."""
        last = self._last
        if last is None or n == last + 1:
            self._last = n
            return None
        if n > last:
            self._last = n
            return VenueNotice(kind=NoticeKind.CONNECTION_GAP,
                               message=f"sequence_num {last} -> {n}: {n - last - 1} message(s) missed on this "
                                       "connection; every book on it is suspect")
        if n == last:  # delivered twice: the first copy was handled, nothing was missed
            return VenueNotice(kind=NoticeKind.NOTICE,
                               message=f"sequence_num {n} repeated: duplicate frame dropped")
        return VenueNotice(kind=NoticeKind.CONNECTION_OUT_OF_ORDER,
                           message=f"sequence_num {n} after {last}: late frame dropped")


# --------------------------------------------------------------------- Advanced Trade
def _at_l2_events(raw: msgspec.Raw, frame: bytes | str, ts: int, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        events = _at_l2.decode(raw)
    except _Errors as exc:
        raise AdapterError(f"bad l2_data events: {exc}", exchange=EXCHANGE, raw=frame) from None
    out: list[MarketEvent] = []
    for ev in events:
        bids = [(u.price_level, u.new_quantity) for u in ev.updates if u.side == "bid"]
        asks = [(u.price_level, u.new_quantity) for u in ev.updates if u.side == "offer"]
        if ev.type == "snapshot":
            out.append(BookSnapshot(symbol=ev.product_id, bids=bids, asks=asks, ts_exchange_ns=ts,
                                    ts_recv_ns=ts_recv_ns))
        else:
            out.append(BookDelta(symbol=ev.product_id, bids=bids, asks=asks, ts_exchange_ns=ts,
                                 ts_recv_ns=ts_recv_ns))
    return out


def _at_trade_events(raw: msgspec.Raw, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    try:
        events = _at_trades.decode(raw)
    except _Errors as exc:
        raise AdapterError(f"bad market_trades events: {exc}", exchange=EXCHANGE, raw=frame) from None
    out: list[MarketEvent] = []
    for ev in events:
        for t in ev.trades:
            if not (t.price.is_finite() and t.size.is_finite() and t.price > 0 and t.size > 0):
                raise AdapterError(f"bad trade {t.trade_id}", exchange=EXCHANGE, raw=frame, symbol=t.product_id)
            # ⚠ AT does not document whether ``side`` is the maker's or the taker's: left unset.
            out.append(Trade(symbol=t.product_id, trade_id=t.trade_id, price=t.price, qty=t.size,
                             ts_exchange_ns=iso_to_ns(t.time), ts_recv_ns=ts_recv_ns))
    return out


def decode_advanced(frame: bytes | str, ts_recv_ns: int, seq: AtSequence) -> list[MarketEvent]:
    """One Advanced Trade frame (any channel). The sequence check runs only after the frame
    was parsed in full, so a rejected frame changes nothing.

    Raises:
        AdapterError: malformed envelope or ``l2_data`` / ``market_trades`` events.
    """
    try:
        env = _at_envelope.decode(frame)
    except _Errors as exc:
        raise AdapterError(f"bad Advanced Trade frame: {exc}", exchange=EXCHANGE, raw=frame) from None
    channel = env.channel
    ts = iso_to_ns(env.timestamp)
    if channel == "l2_data":
        events = _at_l2_events(env.events, frame, ts, ts_recv_ns)
    elif channel == "market_trades":
        events = _at_trade_events(env.events, frame, ts_recv_ns)
    elif channel == "heartbeats":
        events = [Heartbeat(seq=env.sequence_num, ts_recv_ns=ts_recv_ns)]
    elif channel == "subscriptions":
        try:
            subs = _at_subs.decode(env.events) if len(env.events) else []
        except _Errors:
            subs = []
        events = [Subscribed(symbol=p, channel=ch) for s in subs for ch, products in s.subscriptions.items()
                  for p in products]
    else:
        events = []  # ticker, candles, status, user...: numbered, but not ours
    notice = seq.check(env.sequence_num)
    if notice is None:
        return events
    if notice.kind is not NoticeKind.CONNECTION_GAP:  # a duplicate or late frame: dropped
        return [notice]
    return [notice, *events]


# --------------------------------------------------------------------- legacy Pro feed
def decode_legacy(kind: str | None, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    """One legacy Pro feed frame.

    Raises:
        AdapterError: malformed ``snapshot`` / ``l2update`` / ``match``.
    """
    try:
        if kind == "l2update":
            u = _l2update.decode(frame)
            bids = [(p, s) for side, p, s in u.changes if side == "buy"]
            asks = [(p, s) for side, p, s in u.changes if side == "sell"]
            return [BookDelta(symbol=u.product_id, bids=bids, asks=asks, ts_exchange_ns=iso_to_ns(u.time),
                              ts_recv_ns=ts_recv_ns)]
        if kind == "snapshot":
            s = _snapshot.decode(frame)
            return [BookSnapshot(symbol=s.product_id, bids=s.bids, asks=s.asks, ts_recv_ns=ts_recv_ns)]
        if kind in ("match", "last_match"):
            m = _match.decode(frame)
            if not (m.price.is_finite() and m.size.is_finite() and m.price > 0 and m.size > 0):
                raise AdapterError(f"bad match {m.trade_id}", exchange=EXCHANGE, raw=frame, symbol=m.product_id)
            return [Trade(symbol=m.product_id, trade_id=str(m.trade_id), price=m.price, qty=m.size,
                          side=_AGGRESSOR[m.side], ts_exchange_ns=iso_to_ns(m.time), ts_recv_ns=ts_recv_ns)]
    except _Errors as exc:
        symbol = _product_id(frame)
        raise AdapterError(f"bad {kind}: {exc}", exchange=EXCHANGE, raw=frame, symbol=symbol) from None
    if kind == "heartbeat":
        try:
            h = _heartbeat.decode(frame)
        except _Errors:
            h = LegacyHeartbeat()
        return [Heartbeat(symbol=h.product_id, seq=h.sequence, ts_recv_ns=ts_recv_ns)]
    if kind == "subscriptions":
        try:
            subs = _subscriptions.decode(frame)
        except _Errors:
            return []
        return [Subscribed(symbol=p, channel=c.name) for c in subs.channels
                if isinstance(c, LegacySubscriptionChannel) for p in c.product_ids]
    return []  # ticker, received/open/done, status...


def _product_id(frame: bytes | str) -> str | None:
    try:
        obj = loads(frame, EXCHANGE)
    except AdapterError:
        return None
    pid = obj.get("product_id") if isinstance(obj, dict) else None
    return pid if isinstance(pid, str) else None


def decode(frame: bytes | str, ts_recv_ns: int, seq: AtSequence) -> list[MarketEvent]:
    """Decode any Coinbase market-data frame (Advanced Trade or legacy Pro).

    Raises:
        AdapterError: not a JSON object, or a book/trade body is malformed.
    """
    try:
        env = _envelope.decode(frame)
    except _Errors as exc:
        raise AdapterError(f"bad frame: {exc}", exchange=EXCHANGE, raw=frame) from None
    if env.type == "error":
        try:
            err = _error.decode(frame)
        except _Errors:
            err = ErrorMessage()
        return [VenueNotice(kind=NoticeKind.ERROR, message=f"{err.message} {err.reason}".strip())]
    if env.channel is not None:
        return decode_advanced(frame, ts_recv_ns, seq)
    return decode_legacy(env.type, frame, ts_recv_ns)


# --------------------------------------------------------------------- REST
def _rest_rows(rows: Any, raw: Any) -> list[tuple[float, float]]:
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        try:
            rows = [[r["price"], r["size"]] for r in rows]
        except (KeyError, TypeError):
            raise AdapterError("pricebook rows need price and size", exchange=EXCHANGE, raw=raw) from None
    return checked_levels(rows, EXCHANGE, raw)


def parse_rest_snapshot(
    body: bytes | str | Mapping[str, Any], symbol: str | None, url: str | None, ts_recv_ns: int
) -> BookSnapshot:
    """REST books: Advanced Trade ``{"pricebook": {"product_id", "bids": [{"price","size"}],
    "asks", "time"}}`` or the legacy ``/products/{id}/book`` ``{"bids": [[px, sz, n]], ...}``.
    Neither carries a level2 sequence id, so ``seq`` is ``None`` (not spliceable, §8.4).

    Raises:
        AdapterError: malformed body or no way to tell the product.
    """
    obj: Any = loads(body, EXCHANGE) if isinstance(body, (bytes, str)) else body
    if not isinstance(obj, Mapping):
        raise AdapterError("book body is not an object", exchange=EXCHANGE, raw=str(body))
    book = obj.get("pricebook", obj)
    if not isinstance(book, Mapping):
        raise AdapterError("pricebook is not an object", exchange=EXCHANGE, raw=str(body))
    sym = book.get("product_id") or symbol
    if not sym and url:
        parts = urlsplit(url).path.strip("/").split("/")
        if "products" in parts and parts.index("products") + 1 < len(parts):
            sym = parts[parts.index("products") + 1]
    if not isinstance(sym, str) or not sym:
        raise AdapterError("cannot tell the product of a REST book", exchange=EXCHANGE, raw=str(body))
    return BookSnapshot(symbol=sym, bids=_rest_rows(book.get("bids"), str(body)),
                        asks=_rest_rows(book.get("asks"), str(body)), source=SnapshotSource.REST,
                        ts_exchange_ns=iso_to_ns(str(book.get("time") or "")), ts_recv_ns=ts_recv_ns)

