"""Kraken spot WebSocket v2 book dialogue (exchange-protocols.md §7).

- Endpoint (§7.1): ``/v2``. On connect a ``status`` greeting. ``{"method":"subscribe","params":
  {"channel":"book","symbol":[..],"depth":10,"snapshot":true},"req_id":n}`` gets one ack per
  symbol, then ``type:"snapshot"`` (if ``snapshot`` is true, the default) and ``type:"update"``.
  ``depth`` ∈ {10, 25, 100, 500, 1000}.
- Scope (§7.1): the client truncates to the subscribed depth after each update and Kraken sends
  **no** ``qty: 0`` for a level that merely falls out of scope. So per ``(symbol, depth)`` the
  server keeps the top-``depth`` it last published and sends: ``qty 0`` for levels that left the
  book, the level for every new or resized level now in scope, nothing for levels pushed out.
- Numbers (§7.3): price/qty are JSON *numbers* written at the pair's precision (``45283.5``,
  ``0.50000000``), so a Decimal parser keeps the digits the checksum needs; the same precisions
  are published by REST ``AssetPairs`` (``pair_decimals``/``lot_decimals``) and the v2
  ``instrument`` channel (``price_precision``/``qty_precision``).
- Checksum (§7.3): CRC32 (unsigned) of the top-10 asks then bids, on snapshots and updates,
  via :func:`bookkeeper.checksum.kraken_checksum`.
- No ids on the wire (§7.2): the frame ``timestamp`` encodes the engine seq
  (:func:`..engine.kraken_timestamp`) so a client's book can be compared with the truth.
- Keepalive (§7.5): ``{"channel":"heartbeat"}`` about every second once subscribed;
  ``{"method":"ping"}`` -> ``{"method":"pong"}``.
- REST (§7.4): ``/0/public/Depth?pair=&count=``, ``/0/public/AssetPairs``, ``/0/public/Assets``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from bookkeeper.checksum import kraken_checksum
from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec, fixed, kraken_timestamp
from ..server import ClientConn, Frame, RestResult, VenueServer

__all__ = ["KrakenServer", "kraken_ids"]

DEPTHS = (10, 25, 100, 500, 1000)
_X_ASSETS = {"BTC": ("XXBT", "XBT"), "ETH": ("XETH", "ETH"), "LTC": ("XLTC", "LTC"), "XRP": ("XXRP", "XRP")}
_Z_ASSETS = {"USD", "EUR", "GBP", "JPY", "CAD"}


def _asset_ids(code: str) -> tuple[str, str]:
    """(REST asset id, altname) as Kraken spells them (``BTC`` -> ``XXBT``/``XBT``)."""
    if code in _X_ASSETS:
        return _X_ASSETS[code]
    if code in _Z_ASSETS:
        return "Z" + code, code
    return code, code


def kraken_ids(symbol: str) -> dict[str, str]:
    """REST ids of a v2 symbol: ``BTC/USD`` -> pair ``XXBTZUSD``, altname ``XBTUSD``, wsname ``XBT/USD``."""
    base, _, quote = symbol.partition("/")
    base_id, base_alt = _asset_ids(base)
    quote_id, quote_alt = _asset_ids(quote)
    return {
        "pair": base_id + quote_id,
        "altname": base_alt + quote_alt,
        "wsname": f"{base_alt}/{quote_alt}",
        "base": base_id,
        "quote": quote_id,
        "base_alt": base_alt,
        "quote_alt": quote_alt,
    }


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KrakenServer(VenueServer):
    """Kraken spot v2 public book on loopback."""

    venue = "kraken"
    #: the instruments served when the caller names none (precisions as the venue publishes them)
    default_symbols = (
        SymbolSpec(symbol="BTC/USD", price_decimals=1, qty_decimals=8, mid_price="61837.6", typical_qty="0.05"),
        SymbolSpec(symbol="ETH/USD", price_decimals=2, qty_decimals=8, mid_price="3050.12", typical_qty="0.8"),
    )

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`."""
        rest = self.rest_url
        return {"enableRateLimit": False, "urls": {"api": {"public": rest, "private": rest}}}
    ws_path = "/v2"

    def __init__(self, sim: Any, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(sim, specs)
        #: (symbol, depth) -> last published top-depth (bids, asks) as {price_units: qty_units}.
        self._tops: dict[tuple[str, int], tuple[dict[int, int], dict[int, int]]] = {}
        self._rest_ids: dict[str, str] = {}
        for sym in self.specs:
            ids = kraken_ids(sym)
            for key in (ids["pair"], ids["altname"], ids["wsname"], sym):
                self._rest_ids[key] = sym

    @property
    def ws_url(self) -> str:
        return self.ws_root + self.ws_path

    def ws_path_ok(self, path: str) -> bool:
        return path == self.ws_path

    # -- formatting ---------------------------------------------------------------------

    def _levels_json(self, spec: SymbolSpec, levels: Sequence[tuple[int, int]]) -> str:
        pd, qd = spec.price_decimals, spec.qty_decimals
        return "[" + ",".join(
            f'{{"price":{fixed(p, pd)},"qty":{fixed(q, qd)}}}' for p, q in levels
        ) + "]"

    def _checksum(self, symbol: str) -> int:
        spec = self.specs[symbol]
        engine = self.sim.engine
        pd, qd = spec.price_decimals, spec.qty_decimals
        asks = [(fixed(p, pd), fixed(q, qd)) for p, q in engine.levels(symbol, Side.ASK, 10)]
        bids = [(fixed(p, pd), fixed(q, qd)) for p, q in engine.levels(symbol, Side.BID, 10)]
        return kraken_checksum(asks, bids)

    def _frame(self, symbol: str, kind: str, bids: str, asks: str, checksum: int, seq: int) -> Frame:
        def text(cs: int) -> str:
            return (
                f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{bids},'
                f'"asks":{asks},"checksum":{cs},"timestamp":"{kraken_timestamp(seq)}"}}]}}'
            )

        return Frame(text(checksum), symbol, seq, data=True, corrupt=lambda: text(checksum ^ 0x5A5A5A))

    # -- WebSocket ----------------------------------------------------------------------

    def on_open(self, conn: ClientConn) -> None:
        conn.send_json(
            {
                "channel": "status",
                "data": [{"api_version": "v2", "connection_id": abs(hash(conn.conn_id)) % 10**19,
                          "system": "online", "version": "2.0.10"}],
                "type": "update",
            }
        )

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._heartbeat(conn))]

    async def _heartbeat(self, conn: ClientConn) -> None:
        while True:
            await asyncio.sleep(self.sim.config.kraken_heartbeat_s)
            if conn.subs and not conn.stalled:
                conn.send(Frame('{"channel":"heartbeat"}'))

    def on_text(self, conn: ClientConn, text: str) -> None:
        time_in = _now_rfc3339()
        try:
            msg = orjson.loads(text)
            method = msg["method"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            conn.send_json({"error": "Malformed request", "success": False, "time_in": time_in, "time_out": _now_rfc3339()})
            return
        req_id = msg.get("req_id")
        extra = {"req_id": req_id} if req_id is not None else {}
        if method == "ping":
            conn.send_json({"method": "pong", **extra, "time_in": time_in, "time_out": _now_rfc3339()})
            return
        params = msg.get("params") or {}
        channel = params.get("channel")
        if method not in ("subscribe", "unsubscribe") or channel not in ("book", "instrument"):
            conn.send_json({"error": f"Unsupported request {method}/{channel}", "method": method, **extra,
                            "success": False, "time_in": time_in, "time_out": _now_rfc3339()})
            return
        if channel == "instrument":
            conn.send_json({"method": method, "result": {"channel": "instrument", "snapshot": True}, **extra,
                            "success": True, "time_in": time_in, "time_out": _now_rfc3339()})
            if method == "subscribe":
                conn.send_json({"channel": "instrument", "type": "snapshot", "data": self._instrument_data()})
            return
        depth = int(params.get("depth", 10))
        snapshot = bool(params.get("snapshot", True))
        for symbol in params.get("symbol") or []:
            if symbol not in self.specs or depth not in DEPTHS:
                error = f"Currency pair not supported {symbol}" if symbol not in self.specs else "Invalid depth"
                conn.send_json({"error": error, "method": method, **extra, "success": False, "symbol": symbol,
                                "time_in": time_in, "time_out": _now_rfc3339()})
                continue
            result: dict[str, Any] = {"channel": "book", "depth": depth, "symbol": symbol}
            if method == "subscribe":
                result["snapshot"] = snapshot
            conn.send_json({"method": method, "result": result, **extra, "success": True,
                            "time_in": time_in, "time_out": _now_rfc3339()})
            if method == "subscribe":
                self._subscribe(conn, symbol, depth, snapshot)
            else:
                conn.subs.pop(symbol, None)
                self._gc_tops(symbol)

    def _subscribe(self, conn: ClientConn, symbol: str, depth: int, snapshot: bool) -> None:
        engine = self.sim.engine
        spec = self.specs[symbol]
        seq = engine.seq(symbol)
        bids = engine.levels(symbol, Side.BID, depth)
        asks = engine.levels(symbol, Side.ASK, depth)
        self._tops.setdefault((symbol, depth), (dict(bids), dict(asks)))
        conn.subs[symbol] = depth
        if not snapshot:
            conn.processed[symbol] = seq
            return
        conn.processed[symbol] = min(conn.processed.get(symbol, seq - 1), seq - 1)
        self.emit(conn, self._frame(symbol, "snapshot", self._levels_json(spec, bids),
                                    self._levels_json(spec, asks), self._checksum(symbol), seq))

    def _gc_tops(self, symbol: str) -> None:
        live = {(s, d) for c in self.conns for s, d in c.subs.items()}
        for key in [k for k in self._tops if k[0] == symbol and k not in live]:
            del self._tops[key]

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        if not batch:
            return
        subs = self.subscribers(symbol)
        by_depth: dict[int, list[ClientConn]] = {}
        for conn in subs:
            by_depth.setdefault(conn.subs[symbol], []).append(conn)
        for key in [k for k in self._tops if k[0] == symbol and k[1] not in by_depth]:
            del self._tops[key]
        if not by_depth:
            return
        engine = self.sim.engine
        spec = self.specs[symbol]
        checksum = self._checksum(symbol)
        seq = batch[-1].seq
        for depth, conns in by_depth.items():
            old_bids, old_asks = self._tops[(symbol, depth)]
            new_bids = dict(engine.levels(symbol, Side.BID, depth))
            new_asks = dict(engine.levels(symbol, Side.ASK, depth))
            full_bids = engine.levels(symbol, Side.BID)  # membership test for "left the book"
            full_asks = engine.levels(symbol, Side.ASK)
            bids = _diff(old_bids, new_bids, {p for p, _ in full_bids})
            asks = _diff(old_asks, new_asks, {p for p, _ in full_asks})
            self._tops[(symbol, depth)] = (new_bids, new_asks)
            if not bids and not asks:
                # Nothing changed in scope. Kraken sends nothing; writers are still "done".
                for conn in conns:
                    conn.send(Frame("", symbol, seq))
                continue
            bids.sort(key=lambda lv: -lv[0])
            asks.sort(key=lambda lv: lv[0])
            frame_bids, frame_asks = self._levels_json(spec, bids), self._levels_json(spec, asks)
            for conn in conns:
                self.emit(conn, self._frame(symbol, "update", frame_bids, frame_asks, checksum, seq))

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        return {"error": ["EGeneral:Too many requests"]}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path == "/0/public/Depth":
            return self._depth(query)
        if path == "/0/public/AssetPairs":
            return RestResult(200, {"error": [], "result": self._asset_pairs()})
        if path == "/0/public/Assets":
            return RestResult(200, {"error": [], "result": self._assets()})
        if path == "/0/public/Time":
            now = time.time()
            return RestResult(200, {"error": [], "result": {"unixtime": int(now), "rfc1123": ""}})
        return RestResult(404, {"error": [f"EGeneral:Unknown method {path}"]})

    def _depth(self, query: Mapping[str, str]) -> RestResult:
        symbol = self._rest_ids.get(query.get("pair", ""))
        if symbol is None:
            return RestResult(200, {"error": ["EQuery:Unknown asset pair"]})
        count = max(1, min(int(query.get("count", "100")), 500))
        _, bids, asks = self.rest_book(symbol)
        spec = self.specs[symbol]
        pd, qd = spec.price_decimals, spec.qty_decimals
        ts = int(time.time())
        book = {
            "asks": [[fixed(p, pd), fixed(q, qd), ts] for p, q in list(asks.items())[:count]],
            "bids": [[fixed(p, pd), fixed(q, qd), ts] for p, q in list(reversed(bids.items()))[:count]],
        }
        return RestResult(200, {"error": [], "result": {kraken_ids(symbol)["pair"]: book}})

    def _asset_pairs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for symbol, spec in self.specs.items():
            ids = kraken_ids(symbol)
            out[ids["pair"]] = {
                "altname": ids["altname"], "wsname": ids["wsname"],
                "aclass_base": "currency", "base": ids["base"],
                "aclass_quote": "currency", "quote": ids["quote"],
                "lot": "unit", "cost_decimals": 5,
                "pair_decimals": spec.price_decimals, "lot_decimals": spec.qty_decimals,
                "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [],
                "fees": [[0, 0.4]], "fees_maker": [[0, 0.25]], "fee_volume_currency": "ZUSD",
                "margin_call": 80, "margin_stop": 40,
                "ordermin": fixed(spec.lot_units * 100, spec.qty_decimals), "costmin": "0.5",
                "tick_size": fixed(spec.tick_units, spec.price_decimals), "status": "online",
            }
        return out

    def _assets(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for symbol in self.specs:
            ids = kraken_ids(symbol)
            for asset_id, alt in ((ids["base"], ids["base_alt"]), (ids["quote"], ids["quote_alt"])):
                out[asset_id] = {"aclass": "currency", "altname": alt, "decimals": 10,
                                 "display_decimals": 5, "collateral_value": 1.0, "status": "enabled"}
        return out

    def _instrument_data(self) -> dict[str, Any]:
        pairs = []
        assets: dict[str, dict[str, Any]] = {}
        for symbol, spec in self.specs.items():
            base, _, quote = symbol.partition("/")
            tick = float(fixed(spec.tick_units, spec.price_decimals))
            lot = float(fixed(spec.lot_units, spec.qty_decimals))
            pairs.append({
                "symbol": symbol, "base": base, "quote": quote, "status": "online",
                "qty_precision": spec.qty_decimals, "qty_increment": lot, "qty_min": lot * 100,
                "price_precision": spec.price_decimals, "price_increment": tick,
                "cost_precision": 5, "cost_min": 0.5, "marginable": False, "has_index": True,
                "margin_initial": None, "position_limit_long": None, "position_limit_short": None,
            })
            for code in (base, quote):
                assets[code] = {"id": code, "status": "enabled", "precision": 10, "precision_display": 5,
                                "borrowable": False, "collateral_value": 1.0, "margin_rate": None}
        return {"assets": list(assets.values()), "pairs": pairs}


def _diff(old: dict[int, int], new: dict[int, int], in_book: set[int]) -> list[tuple[int, int]]:
    out = [(p, 0) for p in old if p not in new and p not in in_book]  # left the book: qty 0
    out.extend((p, q) for p, q in new.items() if old.get(p) != q)  # new or resized in scope
    return out
