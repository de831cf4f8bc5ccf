"""Binance spot wire dialogue (exchange-protocols.md §3).

- Streams (§3.1): ``/ws/<stream>`` (raw payloads) and ``/stream?streams=a/b`` (payloads wrapped
  as ``{"stream":..,"data":..}``); ``<sym>@depth`` and ``<sym>@depth@100ms``; live
  ``SUBSCRIBE``/``UNSUBSCRIBE`` answered ``{"result":null,"id":n}``.
- Diff frames (§3.1, §3.2): ``{"e":"depthUpdate","E":ms,"s":..,"U":first,"u":last,"b":..,"a":..}``;
  one frame per push interval covering every engine id of the interval, so the next ``U`` is
  always the previous ``u + 1``. Levels are ``["price","qty"]`` strings padded to 8 decimals
  (as in the real feed, e.g. ``"0.35130000"``); a qty of 0 deletes. **No snapshot on subscribe.**
- REST (§3.4): ``GET /api/v3/depth?symbol=&limit=`` (default 100, capped at 5000) answers
  ``{"lastUpdateId","bids","asks"}``; ``/api/v3/exchangeInfo`` for ccxt ``load_markets``.
- Keepalive (§3.5): the server sends protocol pings (every 20 s on the real venue; here
  ``binance_ping_interval_s``). The client's websockets answers them automatically.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed

from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec, fixed
from ..server import ClientConn, Frame, RestResult, VenueServer

__all__ = ["BinanceServer"]


def _fmt8(units: int, decimals: int) -> str:
    """Binance prints every price and qty with 8 decimals."""
    return fixed(units * 10 ** (8 - decimals), 8)


class BinanceServer(VenueServer):
    """Binance spot on loopback."""

    venue = "binance"
    #: the WS API user data stream and signed REST (§3.6), served when the account is on
    private_dialect = "bookkeeper.sim.venues.binance_private:BinancePrivate"
    #: the instruments served when the caller names none (precisions as the venue publishes them)
    default_symbols = (
        SymbolSpec(symbol="BTCUSDT", price_decimals=2, qty_decimals=5, mid_price="61837.63", typical_qty="0.05"),
        SymbolSpec(symbol="ETHUSDT", price_decimals=2, qty_decimals=4, mid_price="3050.12", typical_qty="0.8"),
    )
    #: beside Binance USD-M or Bybit in one simulator, listed first (same names): other spot
    #: pairs (BNBUSDT tick 0.01, step 0.001; XRPUSDT tick 0.0001, step 0.1; DOGEUSDT tick
    #: 0.00001, step 1; LTCUSDT tick 0.01, step 0.001)
    alternate_symbols = (
        (SymbolSpec(symbol="BNBUSDT", price_decimals=2, qty_decimals=3, mid_price="590.12", typical_qty="1.500"),
         SymbolSpec(symbol="XRPUSDT", price_decimals=4, qty_decimals=1, mid_price="0.5321", typical_qty="800.0")),
        (SymbolSpec(symbol="DOGEUSDT", price_decimals=5, qty_decimals=0, mid_price="0.12345", typical_qty="3000"),
         SymbolSpec(symbol="LTCUSDT", price_decimals=2, qty_decimals=3, mid_price="71.25", typical_qty="10.000")),
    )

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`."""
        rest = self.rest_url
        return {
            "enableRateLimit": False,
            "urls": {"api": {"public": f"{rest}/api/v3", "private": f"{rest}/api/v3"}},
            # no margin-pair calls (ccxt makes them once credentials are set): spot only
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }

    def __init__(self, sim: Any, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(sim, specs)
        self._by_lower = {s.lower(): s for s in self.specs}

    def ws_path_ok(self, path: str) -> bool:
        return path in ("/ws", "/stream") or path.startswith("/ws/")

    # -- WebSocket ----------------------------------------------------------------------

    def _stream_symbol(self, stream: str) -> str | None:
        name, _, rest = stream.partition("@")
        if rest not in ("depth", "depth@100ms", "depth@1000ms"):
            return None
        return self._by_lower.get(name)

    def on_open(self, conn: ClientConn) -> None:
        streams: list[str] = []
        if conn.path.startswith("/ws/"):
            streams = conn.path[len("/ws/"):].split("/")
        elif conn.path == "/stream" and conn.query.get("streams"):
            streams = conn.query["streams"].split("/")
        for stream in streams:
            self._subscribe(conn, stream)

    def _subscribe(self, conn: ClientConn, stream: str) -> None:
        symbol = self._stream_symbol(stream)
        if symbol is not None:
            conn.subs[symbol] = stream
            # Writer bookkeeping starts at the current id: nothing older is owed to this client.
            conn.processed.setdefault(symbol, self.sim.engine.seq(symbol))

    def on_text(self, conn: ClientConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.send_json({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            return
        method = msg.get("method") if isinstance(msg, dict) else None
        req_id = msg.get("id") if isinstance(msg, dict) else None
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            for stream in params:
                self._subscribe(conn, stream)
            conn.send_json({"result": None, "id": req_id})
        elif method == "UNSUBSCRIBE":
            for stream in params:
                symbol = self._stream_symbol(stream)
                if symbol is not None:
                    conn.subs.pop(symbol, None)
            conn.send_json({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send_json({"result": sorted(conn.subs.values()), "id": req_id})
        else:
            conn.send_json({"error": {"code": 2, "msg": "Invalid request"}, "id": req_id})

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._pinger(conn))]

    async def _pinger(self, conn: ClientConn) -> None:
        interval = self.sim.config.binance_ping_interval_s
        while True:
            await asyncio.sleep(interval)
            if conn.stalled:
                continue
            try:
                waiter = await conn.ws.ping(str(int(time.time() * 1000)))
                async with asyncio.timeout(interval):
                    await waiter
            except (TimeoutError, ConnectionClosed):
                continue
            conn.pongs += 1
            self.sim.notify()

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        subs = self.subscribers(symbol)
        if not batch or not subs:
            return
        spec = self.specs[symbol]
        final: dict[tuple[Side, int], int] = {}
        for cs in batch:
            for side, price, qty in cs.changes:
                final[(side, price)] = qty
        pd, qd = spec.price_decimals, spec.qty_decimals
        bids = [[_fmt8(p, pd), _fmt8(q, qd)] for (s, p), q in sorted(final.items(), key=lambda kv: -kv[0][1]) if s is Side.BID]
        asks = [[_fmt8(p, pd), _fmt8(q, qd)] for (s, p), q in sorted(final.items(), key=lambda kv: kv[0][1]) if s is Side.ASK]
        data = {
            "e": "depthUpdate",
            "E": int(time.time() * 1000),
            "s": symbol,
            "U": batch[0].seq,
            "u": batch[-1].seq,
            "b": bids,
            "a": asks,
        }
        raw = orjson.dumps(data).decode()
        for conn in subs:
            text = raw if conn.path.startswith("/ws") else f'{{"stream":"{conn.subs[symbol]}","data":{raw}}}'
            self.emit(conn, Frame(text, symbol, batch[-1].seq, data=True))

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        if status == 418:
            return {"code": -1003, "msg": "Way too many requests; IP banned until further notice."}
        return {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 request weight per 1 MINUTE."}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path == "/api/v3/depth":
            return self._depth(query)
        if path == "/api/v3/exchangeInfo":
            return RestResult(200, self._exchange_info())
        if path == "/api/v3/ping":
            return RestResult(200, {})
        if path == "/api/v3/time":
            return RestResult(200, {"serverTime": int(time.time() * 1000)})
        return RestResult(404, {"code": -1000, "msg": f"unknown path {path}"})

    def _depth(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol", "")
        if symbol not in self.specs:
            return RestResult(400, {"code": -1121, "msg": "Invalid symbol."})
        limit = min(int(query.get("limit", "100")), 5000)  # §3.4: larger values are capped
        seq, bids, asks = self.rest_book(symbol)
        spec = self.specs[symbol]
        pd, qd = spec.price_decimals, spec.qty_decimals
        bid_items = list(reversed(bids.items()))[:limit]
        ask_items = list(asks.items())[:limit]
        return RestResult(
            200,
            {
                "lastUpdateId": seq,
                "bids": [[_fmt8(p, pd), _fmt8(q, qd)] for p, q in bid_items],
                "asks": [[_fmt8(p, pd), _fmt8(q, qd)] for p, q in ask_items],
            },
        )

    def _exchange_info(self) -> dict[str, Any]:
        symbols = []
        for spec in self.specs.values():
            base, quote = _split_symbol(spec.symbol)
            tick = _fmt8(spec.tick_units, spec.price_decimals)
            step = _fmt8(spec.lot_units, spec.qty_decimals)
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
                        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }


_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]
