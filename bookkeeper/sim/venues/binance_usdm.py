"""Binance USD-M futures public-book wire dialogue (exchange-protocols.md §4).

The spot dialect (:mod:`.binance`) is reused where the wire is the same (live ``SUBSCRIBE`` /
``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` answers, the server's protocol pings); what differs:

- Endpoints (§0, §4.1): since 2026-04-23 depth streams are served only under ``/public``:
  ``/public/ws/<stream>`` (raw payloads) and ``/public/stream?streams=a/b`` (payloads wrapped
  as ``{"stream":..,"data":..}``). The legacy ``/ws`` and ``/stream`` paths are retired and
  refused (404 on the upgrade), as is ``/market`` (not served here); ``/private/ws?listenKey=``
  is the account's stream when the account is on (:mod:`.binance_usdm_private`). So
  :attr:`ws_root` ends in ``/public``, like the production root ``wss://fstream.binance.com/public``.
- Diff streams (§4.1): ``<sym>@depth`` (250 ms), ``@depth@500ms``, ``@depth@100ms``.
- Frames (§4.1, §4.2): ``{"e":"depthUpdate","E":ms,"T":ms,"s":..,"U":first,"u":last,"pu":..,
  "b":..,"a":..}`` in the venue's key order. ``pu`` is the ``u`` of the frame before on the
  stream: every interval's frame goes to every subscriber, so on each connection it is the
  previous frame's ``u`` (or, for the first frame after subscribing, the id the stream stood at
  then). The server's frame faults act after ``pu`` is set, so a dropped frame makes the next
  ``pu`` point at an ``u`` the client never saw, and a reordered one arrives with a ``pu``
  behind the client's last ``u``, as on the real venue. Levels are ``["price","qty"]`` strings
  at the contract's own precision (``"61837.60"``, ``"0.125"``), not spot's 8 decimals.
  **No snapshot on subscribe.**
- REST on a port of its own (``rest_url``): the account's listenKey takes ``POST``/``PUT``/
  ``DELETE`` (§4.6), which the WebSocket port's HTTP parser cannot serve (``server.py``).
  ``GET /fapi/v1/depth?symbol=&limit=`` with ``limit`` one of 5, 10, 20, 50, 100,
  500, 1000 (default 500; another value is refused with ``-1130``) answers
  ``{"lastUpdateId","E","T","bids","asks"}``; ``/fapi/v1/exchangeInfo`` (perpetual contracts)
  for ccxt ``binanceusdm.load_markets``; ``/fapi/v1/ping`` and ``/fapi/v1/time``.
- Rate limits (§4.4): 429 and 418 answers carry the futures ``-1003`` bodies.
- Keepalive (§4.5): protocol pings from the server (every 3 min on the real venue; here
  ``binance_ping_interval_s``), answered by the client's websockets automatically.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec
from ..server import ClientConn, Frame, RestResult
from .binance import BinanceServer, _split_symbol

__all__ = ["BinanceUsdmServer"]

#: where the 2026 split put the public (depth) streams (§0, §4.1)
PUBLIC_PREFIX = "/public"
#: the public REST routes served (``/fapi/v1/<endpoint>``)
REST_PREFIX = "/fapi/v1/"
#: ``GET /fapi/v1/depth`` accepts only these limits (§4.4)
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
#: stream suffixes of the diff-depth streams (§4.1)
DIFF_STREAMS = ("depth", "depth@100ms", "depth@500ms")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _levels(spec: SymbolSpec, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
    """``[[price, qty], ...]`` strings at the contract's precision."""
    return [[spec.price_str(p), spec.qty_str(q)] for p, q in levels]


def _final_levels(batch: Sequence[ChangeSet]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The last quantity of every level the batch touched, bids best first, asks best first
    (the venue coalesces an interval's updates: the latest per price wins, §4.2)."""
    last: dict[Side, dict[int, int]] = {Side.BID: {}, Side.ASK: {}}
    for cs in batch:
        for side, price, qty in cs.changes:
            last[side][price] = qty
    return sorted(last[Side.BID].items(), reverse=True), sorted(last[Side.ASK].items())


def _depth_update(spec: SymbolSpec, batch: Sequence[ChangeSet]) -> dict[str, Any]:
    """The ``depthUpdate`` payload of one push interval, keys in the venue's order (§4.1)."""
    bids, asks = _final_levels(batch)
    now = _now_ms()
    return {
        "e": "depthUpdate",
        "E": now,
        "T": now,
        "s": spec.symbol,
        "U": batch[0].seq,
        "u": batch[-1].seq,
        # the stream's previous frame ended right before this one: every interval's frame
        # reaches every subscriber, so this is the previous frame's u on each connection
        "pu": batch[0].seq - 1,
        "b": _levels(spec, bids),
        "a": _levels(spec, asks),
    }


class BinanceUsdmServer(BinanceServer):
    """Binance USD-M futures public books on loopback (see the module docstring)."""

    venue = "binance_usdm"
    #: USD-M user data is listenKey-based (exchange-protocols.md §4.6), not the spot WS API the
    #: parent dialect serves
    private_dialect = "bookkeeper.sim.venues.binance_usdm_private:BinanceUsdmPrivate"
    #: ``POST``/``PUT``/``DELETE /fapi/v1/listenKey`` (§4.6): REST gets an HTTP server of its own
    rest_methods = frozenset({"GET", "POST", "PUT", "DELETE"})
    #: the perpetuals served when the caller names none (precisions as the venue publishes
    #: them: BTCUSDT tick 0.10, step 0.001; ETHUSDT tick 0.01, step 0.001)
    default_symbols = (
        SymbolSpec(symbol="BTCUSDT", price_decimals=2, qty_decimals=3, mid_price="61837.60", typical_qty="0.250",
                   tick_units=10),
        SymbolSpec(symbol="ETHUSDT", price_decimals=2, qty_decimals=3, mid_price="3050.12", typical_qty="2.500"),
    )
    #: beside Binance spot or Bybit in one simulator (same names): other perpetuals (BNBUSDT
    #: tick 0.010, step 0.01; XRPUSDT tick 0.0001, step 0.1; DOGEUSDT tick 0.00001, step 1;
    #: LTCUSDT tick 0.01, step 0.001)
    alternate_symbols = (
        (SymbolSpec(symbol="BNBUSDT", price_decimals=3, qty_decimals=2, mid_price="590.120", typical_qty="5.00",
                    tick_units=10),
         SymbolSpec(symbol="XRPUSDT", price_decimals=4, qty_decimals=1, mid_price="0.5321", typical_qty="2500.0")),
        (SymbolSpec(symbol="DOGEUSDT", price_decimals=5, qty_decimals=0, mid_price="0.12345", typical_qty="5000"),
         SymbolSpec(symbol="LTCUSDT", price_decimals=2, qty_decimals=3, mid_price="71.25", typical_qty="25.000")),
    )

    @property
    def ws_root(self) -> str:
        """The public stream root, ``ws://127.0.0.1:<port>/public`` (the adapter appends
        ``/stream?streams=..`` or ``/ws/<stream>``, as to ``wss://fstream.binance.com/public``)."""
        return f"ws://127.0.0.1:{self.port}{PUBLIC_PREFIX}"

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`: ccxt ``binanceusdm`` with its public and private
        ``fapi`` URLs here and only linear markets loaded (``load_markets`` calls
        ``/fapi/v1/exchangeInfo`` alone)."""
        rest = self.rest_url
        return {
            "enableRateLimit": False,
            "urls": {"api": {f"fapi{kind}{v}": f"{rest}/fapi/{v.lower() or 'v1'}"
                             for kind in ("Public", "Private") for v in ("", "V2", "V3")}},
            "options": {"fetchMarkets": {"types": ["linear"]}, "fetchCurrencies": False},
        }

    def ws_path_ok(self, path: str) -> bool:
        return path in (f"{PUBLIC_PREFIX}/ws", f"{PUBLIC_PREFIX}/stream") or path.startswith(f"{PUBLIC_PREFIX}/ws/")

    # -- WebSocket ----------------------------------------------------------------------

    def _stream_symbol(self, stream: str) -> str | None:
        name, _, speed = stream.partition("@")
        return self._by_lower.get(name) if speed in DIFF_STREAMS else None

    def on_open(self, conn: ClientConn) -> None:
        # the streams named in the URL: /public/ws/<a>/<b> or /public/stream?streams=<a>/<b>
        path = conn.path.removeprefix(PUBLIC_PREFIX)
        named = path.removeprefix("/ws/") if path.startswith("/ws/") else conn.query.get("streams", "")
        for stream in filter(None, named.split("/") if path != "/ws" else ()):
            self._subscribe(conn, stream)

    def _subscribe(self, conn: ClientConn, stream: str) -> None:
        super()._subscribe(conn, stream)
        # wake ``SimExchange.wait_subscribed``: it re-checks only on the simulator's notifications
        self.sim.notify()

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        if not batch:
            return
        raw = orjson.dumps(_depth_update(self.specs[symbol], batch)).decode()
        for conn in self.subscribers(symbol):
            raw_path = conn.path.startswith(f"{PUBLIC_PREFIX}/ws")
            text = raw if raw_path else f'{{"stream":"{conn.subs[symbol]}","data":{raw}}}'
            self.emit(conn, Frame(text, symbol, batch[-1].seq, data=True))

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        if status == 418:
            return {"code": -1003, "msg": f"Way too much request weight used; IP banned until {_now_ms() + 120_000}. "
                                          "Please use the websocket for live updates to avoid bans."}
        return {"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per "
                                      "minute. Please use the websocket for live updates to avoid polling the API."}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        endpoint = path.removeprefix(REST_PREFIX) if path.startswith(REST_PREFIX) else ""
        if endpoint == "depth":
            return self._depth(query)
        bodies: dict[str, Callable[[], Any]] = {
            "exchangeInfo": self._exchange_info,
            "ping": dict,
            "time": lambda: {"serverTime": _now_ms()},
        }
        answer = bodies.get(endpoint)
        if answer is None:
            return RestResult(404, {"code": -1000, "msg": f"unknown path {path}"})
        return RestResult(200, answer())

    def _depth(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol", "")
        if symbol not in self.specs:
            return RestResult(400, {"code": -1121, "msg": "Invalid symbol."})
        limit_text = query.get("limit", "500")
        if not limit_text.isdigit() or int(limit_text) not in DEPTH_LIMITS:
            return RestResult(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
        limit = int(limit_text)
        seq, bids, asks = self.rest_book(symbol)
        spec = self.specs[symbol]
        now = _now_ms()
        return RestResult(
            200,
            {
                "lastUpdateId": seq,
                "E": now,
                "T": now,
                "bids": _levels(spec, list(reversed(bids.items()))[:limit]),
                "asks": _levels(spec, list(asks.items())[:limit]),
            },
        )

    def _exchange_info(self) -> dict[str, Any]:
        symbols = []
        for spec in self.specs.values():
            base, quote = _split_symbol(spec.symbol)
            tick = spec.price_str(spec.tick_units)
            step = spec.qty_str(spec.lot_units)
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "pair": spec.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": base,
                    "quoteAsset": quote,
                    "marginAsset": quote,
                    "pricePrecision": spec.price_decimals,
                    "quantityPrecision": spec.qty_decimals,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
                        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "1000", "stepSize": step},
                        {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "120", "stepSize": step},
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": "100"},
                        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                         "multiplierDecimal": "4"},
                    ],
                    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                                   "TRAILING_STOP_MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    "permissionSets": ["GRID", "COPY"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }
