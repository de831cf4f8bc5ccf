"""Coinbase Advanced Trade market-data WebSocket, public books (exchange-protocols.md §8).

- Endpoint (§8.1): the market-data host serves its feed at the root path, like
  ``wss://advanced-trade-ws.coinbase.com``; other paths are refused (404 on the upgrade). The
  user-order-data host (``user``, ``futures_balance_summary``) is not simulated.
- Subscribe (§8.1): one channel per message, ``{"type":"subscribe","product_ids":[..],
  "channel":"level2"|"heartbeats"[,"jwt":..]}`` (a JWT is optional on public channels and
  ignored here; ``unsubscribe`` alike). Each request is answered with a ``subscriptions``
  message listing every subscription the connection now holds,
  ``{"subscriptions":{"heartbeats":["heartbeats"],"level2":["BTC-USD",..]}}``; a bad request
  (unknown type, channel or product) with ``{"type":"error","message":..}``, which carries no
  ``sequence_num`` (⚠ the error's wording is not documented in our copy). A connection that
  has not subscribed within ``SUBSCRIBE_DEADLINE_S`` (5 s) is closed.
- Level 2 (§8.1): messages on channel ``l2_data``, envelope
  ``{"channel","client_id":"","timestamp","sequence_num","events":[{"type":"snapshot"|"update",
  "product_id","updates":[{"side":"bid"|"offer","event_time","price_level","new_quantity"}]}]}``.
  A subscribe gets one ``snapshot`` message per product (the whole book, bids then offers,
  best first); then one ``update`` message per product and push interval, with the latest
  absolute size of every level the interval touched (``"0"`` removes the level). Prices and
  sizes are strings at the product's increments (``"61837.60"``, ``"0.05000000"``).
- No ids on ``level2`` (§8.2): the envelope ``timestamp`` of an ``l2_data`` message encodes the
  engine seq it brings the book to (``KRAKEN_EPOCH + seq`` µs, written with nine fractional
  digits as Coinbase writes its timestamps), so a client's book can be compared with the
  truth, as for Kraken (:func:`..engine.kraken_timestamp`).
- ``sequence_num`` (§8.2) counts **every** message of the connection, across channels
  (``subscriptions``, ``l2_data``, ``heartbeats``), from 0. It is set when the message is
  queued, before the frame faults act in the writer: a dropped ``l2_data`` frame leaves a
  hole in the numbers, a duplicated one repeats a number and a reordered one arrives after a
  higher number, as a client of the real venue would see a lost, repeated or late message.
- Heartbeats (§8.5): once ``heartbeats`` is subscribed, one message per
  ``HEARTBEAT_INTERVAL_S`` (1 s), ``{"current_time":..,"heartbeat_counter":"N"}`` with the
  counter (a string, as the venue sends it) counting this connection's heartbeats from 1.
- Idle close (§8.5): channels close after 60-90 s without updates unless ``heartbeats`` is
  subscribed. Here a connection that was sent nothing for ``IDLE_CLOSE_S`` (60 s, the start of
  that window) is cut: heartbeats, when subscribed, are sent every second and so keep it open.
  ⚠ The wire form of the close is not documented; clients report timeouts and 1006s on quiet
  books without heartbeats 🔸 (ccxt PR #22892), so the TCP connection is aborted (1006).
- The numbering, the heartbeats and the deadline/idle watchdog are per connection
  (:class:`AtSession`, :func:`send_numbered`, :func:`heartbeat_loop`, :func:`watchdog`) and are
  shared with the user-data host (``coinbase_private.py``), whose connections count the same way.
- REST (§8.4, ccxt 4.5.90 ``coinbase.fetch_markets_v3``): ``GET /api/v3/brokerage/market/products``
  (``product_type=FUTURE``: none) and ``/products/{product_id}`` for ``load_markets`` (ccxt's
  ``fetch_currencies`` is switched off in :meth:`CoinbaseServer.ccxt_config`: it reads the v2
  currencies and exchange-rates endpoints, which the simulator does not serve);
  ``/api/v3/brokerage/market/product_book?product_id=&limit=`` answers ``{"pricebook":{
  "product_id","bids":[{"price","size"}],"asks","time"},..}`` with **no sequence id** (it cannot
  be spliced: the adapter never asks for it; ccxt ``fetch_order_book`` reads it);
  ``/api/v3/brokerage/time``. A 429/418 carries ccxt's ``rate_limit_exceeded`` error id.
- Not simulated: ``-USDC`` products answered with ``-USD`` data (§8.1), the other public
  channels (``ticker``, ``market_trades``, ``candles``, ``status``), connection/message rate
  limits (§8.5). JWT checks and the private ``user`` channel (§8.6): ``coinbase_private.py``,
  served when the account is on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec, kraken_timestamp
from ..server import ClientConn, Frame, RestResult, VenueServer

__all__ = ["AtSession", "CoinbaseServer", "heartbeat_loop", "parse_request", "send_numbered", "seq_timestamp",
           "watchdog"]

#: the market-data feed is served at the host's root (§8.1)
WS_PATH = "/"
#: the channels a subscribe may name here (§8.1, §8.5)
CHANNELS = ("level2", "heartbeats")
#: close a connection that has not subscribed within this long (§8.1)
SUBSCRIBE_DEADLINE_S = 5.0
#: close a connection that was sent nothing for this long (§8.5: 60-90 s)
IDLE_CLOSE_S = 60.0
#: the heartbeats channel's period (§8.5: one message per second)
HEARTBEAT_INTERVAL_S = 1.0
#: the public REST routes (ccxt ``v3PublicGetBrokerageMarket*``)
MARKET_PREFIX = "/api/v3/brokerage/market/"
#: ``event_time`` of the levels of a snapshot: they carry no engine time (⚠ as in Coinbase's
#: examples)
SNAPSHOT_EVENT_TIME = "1970-01-01T00:00:00Z"


def seq_timestamp(seq: int) -> str:
    """The envelope ``timestamp`` that encodes engine ``seq`` (nine fractional digits, as
    Coinbase writes them; the last three are always 0).

    >>> seq_timestamp(1_000_001)
    '2026-01-01T00:00:01.000001000Z'
    """
    return kraken_timestamp(seq)[:-1] + "000Z"


def _now_timestamp() -> str:
    return ns_timestamp(time.time_ns())


def ns_timestamp(ns: int) -> str:
    """ns -> ``2026-01-01T00:00:00.123456789Z`` (nine fractional digits, as Coinbase writes).

    >>> ns_timestamp(1_767_225_600_123_000_000)
    '2026-01-01T00:00:00.123000000Z'
    """
    head = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{ns % 1_000_000_000:09d}Z"


def _current_time() -> str:
    """A heartbeat's ``current_time``, in the Go layout the venue prints
    (``2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105``)."""
    ns = time.time_ns()
    head = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{head}.{ns % 1_000_000_000:09d} +0000 UTC m=+{time.monotonic():.9f}"


def _envelope(channel: str, timestamp: str, sequence_num: int, events: str) -> str:
    """One message in the venue's key order (``events`` already JSON)."""
    return (f'{{"channel":"{channel}","client_id":"","timestamp":"{timestamp}",'
            f'"sequence_num":{sequence_num},"events":{events}}}')


@dataclass(slots=True)
class AtSession:
    """Per connection (either host): the message counter and the channel state."""

    #: the ``sequence_num`` of the next message queued
    next_seq: int = 0
    heartbeats: bool = False
    heartbeat_counter: int = 0
    subscribed: bool = False
    #: loop time of the last message queued (the idle close counts from it)
    last_sent: float = 0.0


def parse_request(text: str, channels: Sequence[str]) -> tuple[str, str, list[str], dict[str, Any]] | str:
    """A ``subscribe``/``unsubscribe`` request as ``(type, channel, product_ids, message)``,
    or the error text to answer it with (either host, §8.1: one channel per message)."""
    try:
        msg = orjson.loads(text)
        kind, channel = msg["type"], msg.get("channel")
        products = msg.get("product_ids", [])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "Failed to parse the request"
    if kind not in ("subscribe", "unsubscribe"):
        return f"Unknown message type {kind!r}"
    if channel not in channels:
        return f"Unsupported channel {channel!r}"
    if type(products) is not list or not all(type(p) is str for p in products):
        return "product_ids must be a list of product ids"
    return kind, channel, products, msg


def send_numbered(server: VenueServer, conn: ClientConn, st: AtSession, channel: str, events: str, *,
                  timestamp: str | None = None, symbol: str | None = None, seq: int | None = None,
                  private: bool = False) -> None:
    """Number and queue one message of ``conn`` (§8.2: the count runs across channels).
    ``l2_data`` messages are data frames (frame faults act on them, after their number was
    taken); ``private`` ones are account events (``private_drop`` may lose one, after its
    number was taken: the client sees ``sequence_num`` jump)."""
    frame = Frame(_envelope(channel, timestamp or _now_timestamp(), st.next_seq, events), symbol, seq,
                  data=channel == "l2_data" and not private, private=private)
    st.next_seq += 1
    st.last_sent = asyncio.get_running_loop().time()
    if frame.data:
        server.emit(conn, frame)
    else:
        conn.send(frame)
    if private:
        server.sim.notify()


async def heartbeat_loop(server: VenueServer, conn: ClientConn, st: AtSession,
                         timestamp: Callable[[], str] | None = None) -> None:
    """Once ``heartbeats`` is subscribed, one message per second (§8.5); ``timestamp`` makes
    the envelope's time (default: the wall clock)."""
    while True:
        await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        if st.heartbeats and not conn.stalled:
            st.heartbeat_counter += 1
            events = orjson.dumps([{"current_time": _current_time(),
                                    "heartbeat_counter": str(st.heartbeat_counter)}]).decode()
            send_numbered(server, conn, st, "heartbeats", events, timestamp=timestamp() if timestamp else None)


async def watchdog(conn: ClientConn, st: AtSession) -> None:
    """Cut a connection that did not subscribe in time (§8.1) or went idle (§8.5)."""
    loop = asyncio.get_running_loop()
    opened = loop.time()
    while True:
        due = st.last_sent + IDLE_CLOSE_S if st.subscribed else opened + SUBSCRIBE_DEADLINE_S
        now = loop.time()
        if now >= due:
            conn.ws.transport.abort()
            return
        await asyncio.sleep(due - now)


class CoinbaseServer(VenueServer):
    """Coinbase Advanced Trade public books on loopback (see the module docstring)."""

    venue = "coinbase"
    #: the products served when the caller names none, at the venue's increments (BTC-USD and
    #: ETH-USD: price 0.01, size 0.00000001)
    default_symbols = (
        SymbolSpec(symbol="BTC-USD", price_decimals=2, qty_decimals=8, mid_price="61837.60", typical_qty="0.05"),
        SymbolSpec(symbol="ETH-USD", price_decimals=2, qty_decimals=8, mid_price="3050.12", typical_qty="0.8"),
    )

    #: the user-order-data host (``user`` channel, JWT auth, signed REST, §8.6), served when
    #: the account is on
    private_dialect = "bookkeeper.sim.venues.coinbase_private:CoinbasePrivate"

    def ws_path_ok(self, path: str) -> bool:
        return path in (WS_PATH, "")

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`: ccxt ``coinbase`` with its REST root here and
        ``fetchCurrencies`` off, so ``load_markets`` makes only the v3 ``market/products``
        calls (spot, then ``product_type=FUTURE``)."""
        return {"enableRateLimit": False, "urls": {"api": {"rest": self.rest_url}},
                "has": {"fetchCurrencies": False}}

    # -- WebSocket ----------------------------------------------------------------------

    def _session(self, conn: ClientConn) -> AtSession:
        st = conn.session
        if st is None:
            st = conn.session = AtSession(last_sent=asyncio.get_running_loop().time())
        assert isinstance(st, AtSession)
        return st

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        if self.private is not None and conn.path == self.private.ws_path:
            return []  # the user host's connections: the private dialect runs them
        st = self._session(conn)
        return [asyncio.create_task(heartbeat_loop(self, conn, st)), asyncio.create_task(watchdog(conn, st))]

    def _send(self, conn: ClientConn, channel: str, events: str, *, timestamp: str | None = None,
              symbol: str | None = None, seq: int | None = None) -> None:
        send_numbered(self, conn, self._session(conn), channel, events, timestamp=timestamp, symbol=symbol, seq=seq)

    def _error(self, conn: ClientConn, message: str) -> None:
        conn.send_json({"type": "error", "message": message})

    def on_text(self, conn: ClientConn, text: str) -> None:
        request = parse_request(text, CHANNELS)
        if isinstance(request, str):
            self._error(conn, request)
            return
        kind, channel, products, _ = request
        st = self._session(conn)
        if channel == "heartbeats":  # no products needed (§8.5); any named are ignored
            st.heartbeats = kind == "subscribe"
        else:
            unknown = [p for p in products if p not in self.specs]
            if unknown or not products:
                self._error(conn, f"Failed to {kind}: invalid product ids {unknown}" if unknown
                            else f"Failed to {kind}: level2 needs product_ids")
                return
            for product in products:
                if kind == "subscribe":
                    conn.subs[product] = True
                else:
                    conn.subs.pop(product, None)
        st.subscribed = st.subscribed or kind == "subscribe"
        self._send_subscriptions(conn)
        if channel == "level2" and kind == "subscribe":
            for product in dict.fromkeys(products):
                self._send_snapshot(conn, product)
        # wake ``SimExchange.wait_subscribed``: it re-checks only on the simulator's notifications
        self.sim.notify()

    def _send_subscriptions(self, conn: ClientConn) -> None:
        subs: dict[str, list[str]] = {}
        if self._session(conn).heartbeats:
            subs["heartbeats"] = ["heartbeats"]
        if conn.subs:
            subs["level2"] = list(conn.subs)
        self._send(conn, "subscriptions", orjson.dumps([{"subscriptions": subs}]).decode())

    def _updates(self, symbol: str, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]],
                 event_time: str) -> str:
        spec = self.specs[symbol]
        rows = [
            {"side": side, "event_time": event_time, "price_level": spec.price_str(p),
             "new_quantity": spec.qty_str(q) if q else "0"}
            for side, levels in (("bid", bids), ("offer", asks)) for p, q in levels
        ]
        return orjson.dumps(rows).decode()

    def _send_snapshot(self, conn: ClientConn, symbol: str) -> None:
        engine = self.sim.engine
        seq = engine.seq(symbol)
        updates = self._updates(symbol, engine.levels(symbol, Side.BID), engine.levels(symbol, Side.ASK),
                                SNAPSHOT_EVENT_TIME)
        conn.processed[symbol] = min(conn.processed.get(symbol, seq - 1), seq - 1)
        self._send(conn, "l2_data", f'[{{"type":"snapshot","product_id":"{symbol}","updates":{updates}}}]',
                   timestamp=seq_timestamp(seq), symbol=symbol, seq=seq)

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        if not batch:
            return
        subs = self.subscribers(symbol)
        if not subs:
            return
        last: dict[Side, dict[int, int]] = {Side.BID: {}, Side.ASK: {}}
        for cs in batch:  # the interval's updates coalesced: the latest size per level wins
            for side, price, qty in cs.changes:
                last[side][price] = qty
        seq = batch[-1].seq
        stamp = seq_timestamp(seq)
        updates = self._updates(symbol, sorted(last[Side.BID].items(), reverse=True), sorted(last[Side.ASK].items()),
                                stamp)
        events = f'[{{"type":"update","product_id":"{symbol}","updates":{updates}}}]'
        for conn in subs:
            self._send(conn, "l2_data", events, timestamp=stamp, symbol=symbol, seq=seq)

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        return {"error": "rate_limit_exceeded", "error_details": "Too many requests", "message": "Too many requests"}

    @staticmethod
    def _not_found(details: str) -> RestResult:
        return RestResult(404, {"error": "NOT_FOUND", "error_details": details, "message": details})

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path == "/api/v3/brokerage/time":
            now = time.time()
            return RestResult(200, {"iso": _now_timestamp(), "epochSeconds": str(int(now)),
                                    "epochMillis": str(int(now * 1000))})
        if not path.startswith(MARKET_PREFIX):
            return self._not_found(f"unknown path {path}")
        route = path.removeprefix(MARKET_PREFIX)
        if route == "products":
            spot = query.get("product_type", "SPOT").upper() == "SPOT"
            products = [self._product(spec) for spec in self.specs.values()] if spot else []
            return RestResult(200, {"products": products, "num_products": len(products)})
        if route.startswith("products/") and route.count("/") == 1:
            spec = self.specs.get(route.removeprefix("products/"))
            return RestResult(200, self._product(spec)) if spec is not None else self._not_found("ProductID is invalid")
        if route == "product_book":
            return self._product_book(query)
        return self._not_found(f"unknown path {path}")

    def _product_book(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("product_id", "")
        if symbol not in self.specs:
            return self._not_found("ProductID is invalid")
        text = query.get("limit")
        if text is not None and not (text.isdigit() and int(text) > 0):
            return RestResult(400, {"error": "INVALID_ARGUMENT", "error_details": "limit must be positive",
                                    "message": "limit must be positive"})
        limit = int(text) if text is not None else None
        _, bids, asks = self.rest_book(symbol)
        spec = self.specs[symbol]
        bid_rows = list(reversed(bids.items()))[:limit]
        ask_rows = list(asks.items())[:limit]
        best_bid, best_ask = bid_rows[0][0], ask_rows[0][0]
        return RestResult(200, {
            "pricebook": {
                "product_id": symbol,
                "bids": [{"price": spec.price_str(p), "size": spec.qty_str(q)} for p, q in bid_rows],
                "asks": [{"price": spec.price_str(p), "size": spec.qty_str(q)} for p, q in ask_rows],
                "time": _now_timestamp(),
            },
            "last": spec.price_str(best_bid),
            "mid_market": spec.price_str((best_bid + best_ask) // 2),
            "spread_bps": f"{(best_ask - best_bid) * 10_000 / best_bid:.4f}",
            "spread_absolute": spec.price_str(best_ask - best_bid),
        })

    def _product(self, spec: SymbolSpec) -> dict[str, Any]:
        base, _, quote = spec.symbol.partition("-")
        tick = spec.price_str(spec.tick_units)
        step = spec.qty_str(spec.lot_units)
        mid = (self.sim.engine.levels(spec.symbol, Side.BID, 1)[0][0]
               + self.sim.engine.levels(spec.symbol, Side.ASK, 1)[0][0]) // 2
        return {
            "product_id": spec.symbol, "price": spec.price_str(mid), "price_percentage_change_24h": "0",
            "volume_24h": "0", "volume_percentage_change_24h": "0", "base_increment": step,
            "quote_increment": tick, "quote_min_size": "1", "quote_max_size": "150000000",
            "base_min_size": step, "base_max_size": "3400", "base_name": base, "quote_name": quote,
            "watched": False, "is_disabled": False, "new": False, "status": "online", "cancel_only": False,
            "limit_only": False, "post_only": False, "trading_disabled": False, "auction_mode": False,
            "product_type": "SPOT", "quote_currency_id": quote, "base_currency_id": base,
            "fcm_trading_session_details": None, "mid_market_price": "", "alias": "", "alias_to": [],
            "base_display_symbol": base, "quote_display_symbol": quote, "view_only": False,
            "price_increment": tick, "display_name": spec.symbol, "product_venue": "CBE",
        }
