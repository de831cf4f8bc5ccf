"""Bybit v5 public order-book dialogue, spot and linear (exchange-protocols.md §6).

- Endpoints (§6.1): ``/v5/public/spot`` and ``/v5/public/linear`` (the same instruments on
  both; :attr:`ws_root` is the linear one, which the adapter dials as is). Other paths are
  refused (404 on the upgrade).
- Subscribe (§6.1): ``{"req_id":..,"op":"subscribe","args":["orderbook.50.BTCUSDT",..]}`` is
  acked once per request, ``{"success":true,"ret_msg":"","conn_id":..,"req_id":..,"op":..}``
  (spot echoes ``ret_msg:"subscribe"``); an unknown topic or more than 10 args on spot is
  refused with ``success:false``. ``unsubscribe`` is acked the same way.
- Books (§6.1, §6.2): topic ``orderbook.{1|50|200|1000}.{symbol}``; a ``type:"snapshot"`` on
  subscribe, then ``type:"delta"`` pushes ``{topic,type,ts,data:{s,b,a,u,seq},cts}``. ``u`` is
  the engine seq the push brings the book to (it skips: ``MONOTONIC_ONLY``) and ``seq`` a
  cross sequence derived from it (increasing, with gaps). The book is *windowed* at the
  subscribed depth as the venue does it: a delta is the difference between the top ``depth``
  levels before and after the interval, so a level pushed out of the window is deleted
  (size ``"0"``) and one moving into it is sent, and changes below the window are not sent at
  all (no push when nothing inside it changed). Depth 1 sends only snapshots, re-sent every
  ``DEPTH1_RESEND_S`` with an unchanged ``u`` while the top does not change.
- Service restart (§6.2, fault ``service_restart``): at the next push of a symbol every
  subscriber gets a ``snapshot`` with ``u = 1`` (stamped later than any frame of the symbol
  before it), then deltas whose ``u`` counts on from it (the engine seq minus the restart's
  base; ``seq`` keeps increasing: ⚠ whether Bybit resets ``seq`` too is not documented). New
  subscribers and the REST book use the restarted ids. A symbol's ``ts`` never goes back, so
  the restart a frame belongs to is told by its ``ts`` alone: :meth:`BybitServer.truth_seq`
  maps a client's restarted ``u`` back to the engine seq (the chaos checker's truth point).
- Re-sent snapshot (§6.1 "may send a fresh snapshot at any time", fault ``resent_snapshot``):
  at the next push that carries a delta, the same ``u``'s snapshot follows it (same levels).
- Keepalive (§6.5): ``{"op":"ping"}`` -> ``{"success":true,"ret_msg":"pong",..,"op":"ping"}``.
- REST (§6.4): ``GET /v5/market/orderbook?category=spot|linear&symbol=&limit=`` (spot limit
  1-1000, default 1; linear 1-1000, default 25) answers ``{"retCode":0,"retMsg":"OK",
  "result":{s,b,a,ts,u,seq,cts},"retExtInfo":{},"time":..}``; ``/v5/market/instruments-info``
  for ccxt ``bybit.load_markets`` (spot and linear); ``/v5/market/time``. A 429/418 answers
  with Bybit's ``10006`` rate-limit body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec
from ..faults import FaultKind
from ..server import ClientConn, Frame, RestResult, VenueServer
from .binance import _split_symbol

__all__ = ["BybitServer"]

#: the public stream paths served, by category (§6.1)
WS_PATHS: Mapping[str, str] = {"spot": "/v5/public/spot", "linear": "/v5/public/linear"}
#: the depths of ``orderbook.{depth}.{symbol}`` on spot and linear (§6.1)
DEPTHS = (1, 50, 200, 1000)
#: spot refuses a subscribe request with more args than this (§6.1)
SPOT_MAX_ARGS = 10
#: depth 1 re-sends its snapshot this often while the top does not change (§6.1)
DEPTH1_RESEND_S = 3.0
#: ``GET /v5/market/orderbook`` limits per category: (largest, default) (§6.4)
REST_LIMITS: Mapping[str, tuple[int, int]] = {"spot": (1000, 1), "linear": (1000, 25)}
#: the cross sequence ``seq`` is comparable but not contiguous (§6.2): ``u`` scaled, offset
_CROSS_SEQ_BASE = 40_000_000_000
_CROSS_SEQ_STEP = 3

Levels = list[tuple[int, int]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def cross_seq(u: int) -> int:
    """The ``seq`` sent with update id ``u`` (increasing with ``u``, with gaps).

    >>> cross_seq(2) - cross_seq(1)
    3
    """
    return _CROSS_SEQ_BASE + _CROSS_SEQ_STEP * u


def seq_of_cross(cross: int) -> int:
    """The engine seq a ``seq`` was sent with (the inverse of :func:`cross_seq`).

    >>> seq_of_cross(cross_seq(1_234_567))
    1234567
    """
    return (cross - _CROSS_SEQ_BASE) // _CROSS_SEQ_STEP


def _wire(spec: SymbolSpec, levels: Levels) -> list[list[str]]:
    """``[["price","size"], ...]`` at the instrument's precision (``"61837.60"``, ``"0.125"``);
    a deleted level's size is a bare ``"0"``, as Bybit prints it (§6.1)."""
    return [[spec.price_str(p), spec.qty_str(q) if q else "0"] for p, q in levels]


def window_diff(before: Levels, after: Levels, side: Side) -> Levels:
    """The levels a windowed delta carries for one side: every level of ``after`` that is new
    or changed, and every level of ``before`` that left (size 0), best first.

    >>> window_diff([(10, 1), (9, 2)], [(11, 5), (10, 1)], Side.BID)
    [(11, 5), (9, 0)]
    """
    old = dict(before)
    new = dict(after)
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out.extend((p, 0) for p in old if p not in new)
    out.sort(reverse=side is Side.BID)
    return out


def parse_topic(topic: Any) -> tuple[int, str] | None:
    """``orderbook.{depth}.{symbol}`` -> ``(depth, symbol)``; ``None`` for anything else.

    >>> parse_topic("orderbook.50.BTCUSDT"), parse_topic("orderbook.7.BTCUSDT")
    ((50, 'BTCUSDT'), None)
    """
    if type(topic) is not str:
        return None
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "orderbook" or not parts[1].isdigit() or int(parts[1]) not in DEPTHS:
        return None
    return int(parts[1]), parts[2]


class BybitServer(VenueServer):
    """Bybit v5 spot and linear public books on loopback (see the module docstring)."""

    venue = "bybit"
    #: the private WebSocket and signed REST of a linear account (§6.6), served when the account is on
    private_dialect = "bookkeeper.sim.venues.bybit_private:BybitPrivate"
    #: the instruments served when the caller names none, at the linear contracts' precision
    #: (BTCUSDT tick 0.10, step 0.001; ETHUSDT tick 0.01, step 0.01). ``depth=40`` keeps each
    #: side within 48 levels, inside the 50-level window the adapter subscribes by default,
    #: so a client's windowed book is the whole truth (deeper books: see the tests).
    default_symbols = (
        SymbolSpec(symbol="BTCUSDT", price_decimals=2, qty_decimals=3, mid_price="61837.60", typical_qty="0.250",
                   tick_units=10, depth=40),
        SymbolSpec(symbol="ETHUSDT", price_decimals=2, qty_decimals=2, mid_price="3050.12", typical_qty="2.50",
                   depth=40),
    )
    #: beside Binance's venues in one simulator (same names): other linear contracts
    #: (DOGEUSDT tick 0.00001, step 1; LTCUSDT tick 0.01, step 0.1; BNBUSDT tick 0.01, step
    #: 0.01; XRPUSDT tick 0.0001, step 1)
    alternate_symbols = (
        (SymbolSpec(symbol="DOGEUSDT", price_decimals=5, qty_decimals=0, mid_price="0.12345", typical_qty="5000",
                    depth=40),
         SymbolSpec(symbol="LTCUSDT", price_decimals=2, qty_decimals=1, mid_price="71.25", typical_qty="25.0",
                    depth=40)),
        (SymbolSpec(symbol="BNBUSDT", price_decimals=2, qty_decimals=2, mid_price="590.12", typical_qty="5.00",
                    depth=40),
         SymbolSpec(symbol="XRPUSDT", price_decimals=4, qty_decimals=0, mid_price="0.5321", typical_qty="2500",
                    depth=40)),
    )

    def __init__(self, sim: Any, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(sim, specs)
        #: symbol -> loop time of the last depth-1 snapshot push
        self._depth1_at: dict[str, float] = {}
        #: symbol -> engine seq a service restart counted ``u`` from (wire ``u`` = seq - base)
        self._u_base: dict[str, int] = {}
        #: symbol -> the latest ``ts`` (ms) stamped on one of its frames (``ts`` never goes back)
        self._last_ms: dict[str, int] = {}
        #: symbol -> ``(ts_ms, base)`` of each service restart, oldest first (:meth:`truth_seq`)
        self._restarts: dict[str, list[tuple[int, int]]] = {}

    @property
    def ws_root(self) -> str:
        """The linear stream endpoint, ``ws://127.0.0.1:<port>/v5/public/linear`` (the adapter
        dials its root as is, like ``wss://stream.bybit.com/v5/public/linear``)."""
        return f"ws://127.0.0.1:{self.port}{WS_PATHS['linear']}"

    @property
    def ws_url(self) -> str:
        return self.ws_root

    def ws_path_ok(self, path: str) -> bool:
        return path in WS_PATHS.values()

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`: ccxt ``bybit`` with every API URL here and
        only spot and linear markets loaded (``/v5/market/instruments-info``)."""
        host = "http://{hostname}"
        config: dict[str, Any] = {
            "enableRateLimit": False,
            "hostname": self.rest_url.removeprefix("http://"),
            "urls": {"api": {k: host for k in ("spot", "futures", "v2", "public", "private")}},
            "options": {"fetchMarkets": {"types": ["spot", "linear"]}},
        }
        if self.private is not None:
            # no signed /v5/asset/coin/query-info in load_markets (ccxt calls it once credentials
            # are set; the simulator has no asset API)
            config["has"] = {"fetchCurrencies": False}
        return config

    # -- WebSocket ----------------------------------------------------------------------

    @staticmethod
    def _category(conn: ClientConn) -> str:
        return "spot" if conn.path == WS_PATHS["spot"] else "linear"

    def on_text(self, conn: ClientConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
            op = msg.get("op")
            req_id = msg.get("req_id", "")
            args = msg.get("args") or []
        except (orjson.JSONDecodeError, AttributeError):
            conn.send_json({"success": False, "ret_msg": f"error:request not valid, {text[:100]}",
                            "conn_id": conn.conn_id, "op": ""})
            return
        spot = self._category(conn) == "spot"
        if op == "ping":  # §6.5: spot and linear answer in the subscribe-ack shape
            conn.send_json({"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, "req_id": req_id, "op": "ping"})
            return
        if op not in ("subscribe", "unsubscribe") or type(args) is not list:
            conn.send_json({"success": False, "ret_msg": f"error:handler not found,op:{op}", "conn_id": conn.conn_id,
                            "req_id": req_id, "op": op})
            return
        if spot and len(args) > SPOT_MAX_ARGS:
            conn.send_json({"success": False, "ret_msg": f"args size >{SPOT_MAX_ARGS}", "conn_id": conn.conn_id,
                            "req_id": req_id, "op": op})
            return
        topics = [(arg, self.parse_topic(arg)) for arg in args]
        bad = [str(arg) for arg, parsed in topics if parsed is None or parsed[1] not in self.specs]
        if bad:  # the venue refuses the whole request
            conn.send_json({"success": False, "ret_msg": f"Invalid symbol :[{','.join(bad)}]", "conn_id": conn.conn_id,
                            "req_id": req_id, "op": op})
            return
        conn.send_json({"success": True, "ret_msg": op if spot else "", "conn_id": conn.conn_id, "req_id": req_id,
                        "op": op})
        for _, parsed in topics:
            assert parsed is not None
            depth, symbol = parsed
            if op == "subscribe":
                conn.subs[symbol] = depth
                self.on_subscribed(conn, symbol, depth)
            else:
                conn.subs.pop(symbol, None)
        # wake ``SimExchange.wait_subscribed``: it re-checks only on the simulator's notifications
        self.sim.notify()

    @staticmethod
    def parse_topic(topic: Any) -> tuple[int, str] | None:
        """A subscribe arg -> ``(depth, symbol)`` (``None``: a topic this dialect refuses)."""
        return parse_topic(topic)

    def on_subscribed(self, conn: ClientConn, symbol: str, depth: int) -> None:
        """A symbol was just subscribed: ``orderbook.N`` sends its snapshot (§6.1)."""
        self._send_snapshot(conn, symbol, depth)

    def wire_u(self, symbol: str, seq: int) -> int:
        """The ``u`` sent for engine seq ``seq`` (restarted ids count from the restart's base)."""
        base = self._u_base.get(symbol, 0)
        return seq - base if seq > base else seq

    def truth_seq(self, symbol: str, seq: int | None, *, ts_exchange_ns: int = 0,
                  cross_seq: int | None = None) -> int | None:
        """The engine seq of a client book that shows ``u`` = ``seq`` (the checker's truth point).

        Args:
            symbol: the book.
            seq: its ``u`` (``None``: unknown).
            ts_exchange_ns: the exchange time of the frame that brought the book there (0:
                unknown, the latest restart is assumed): it names the restart ``u`` counts from.
            cross_seq: the book's ``seq`` where the client keeps it: exact, whatever ``u`` says.

        Returns:
            The engine seq (``u`` itself until the first ``service_restart``).
        """
        if cross_seq is not None:
            return seq_of_cross(cross_seq)
        if seq is None:
            return None
        base = 0
        ms = ts_exchange_ns // 1_000_000
        for at_ms, restart_base in self._restarts.get(symbol, ()):
            if ms and at_ms > ms:
                break
            base = restart_base
        return seq + base

    def _stamp(self, symbol: str, ts_ms: int | None = None) -> int:
        """The ``ts`` of the symbol's next frame: now (or ``ts_ms``), never before the last."""
        now = max(_now_ms() if ts_ms is None else ts_ms, self._last_ms.get(symbol, 0))
        self._last_ms[symbol] = now
        return now

    def _book_frame(self, symbol: str, depth: int, kind: str, u: int, bids: Levels, asks: Levels,
                    ts_ms: int | None = None) -> Frame:
        spec = self.specs[symbol]
        now = self._stamp(symbol, ts_ms)
        msg = {"topic": f"orderbook.{depth}.{symbol}", "type": kind, "ts": now,
               "data": {"s": symbol, "b": _wire(spec, bids), "a": _wire(spec, asks), "u": self.wire_u(symbol, u),
                        "seq": cross_seq(u)},
               "cts": now}
        return Frame(orjson.dumps(msg).decode(), symbol, u, data=True)

    def _snapshot_frame(self, symbol: str, depth: int, ts_ms: int | None = None) -> Frame:
        engine = self.sim.engine
        u = engine.seq(symbol)
        return self._book_frame(symbol, depth, "snapshot", u, engine.levels(symbol, Side.BID, depth),
                                engine.levels(symbol, Side.ASK, depth), ts_ms)

    def _send_snapshot(self, conn: ClientConn, symbol: str, depth: int) -> None:
        frame = self._snapshot_frame(symbol, depth)
        assert frame.seq is not None
        conn.processed[symbol] = min(conn.processed.get(symbol, frame.seq - 1), frame.seq - 1)
        self.emit(conn, frame)

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        subs = self.subscribers(symbol)
        if not subs:
            return
        if batch and self.budget.take(FaultKind.SERVICE_RESTART):
            # the book service restarted: ids count from 1 again at this push, and every
            # subscriber is sent the whole book (no delta for this interval: the snapshot has it)
            self.sim.count_fault(FaultKind.SERVICE_RESTART)
            base = self._u_base[symbol] = self.sim.engine.seq(symbol) - 1
            ts = self._restart_ms(symbol, base)
            snapshots = {depth: self._snapshot_frame(symbol, depth, ts) for depth in {c.subs[symbol] for c in subs}}
            for conn in subs:
                self.emit(conn, snapshots[conn.subs[symbol]])
            return
        frames: dict[int, Frame | None] = {}
        for conn in subs:
            depth = conn.subs[symbol]
            if depth not in frames:
                frames[depth] = self._push(symbol, depth, batch)
            frame = frames[depth]
            if frame is not None:
                self.emit(conn, frame)
        deltas = [d for d, f in frames.items() if f is not None and d != 1]
        if deltas and self.budget.take(FaultKind.RESENT_SNAPSHOT):
            # the venue re-sends the book it just brought us to: same u, same levels
            self.sim.count_fault(FaultKind.RESENT_SNAPSHOT)
            again = {depth: self._snapshot_frame(symbol, depth) for depth in deltas}
            for conn in subs:
                if conn.subs[symbol] in again:
                    self.emit(conn, again[conn.subs[symbol]])

    def _restart_ms(self, symbol: str, base: int) -> int:
        """Record a service restart of ``symbol`` whose ids count from ``base``: its ``ts`` is
        later than every frame of the symbol before it (and no later frame is stamped before it)."""
        ts = max(_now_ms(), self._last_ms.get(symbol, 0) + 1)
        self._last_ms[symbol] = ts
        self._restarts.setdefault(symbol, []).append((ts, base))
        return ts

    def _push(self, symbol: str, depth: int, batch: Sequence[ChangeSet]) -> Frame | None:
        """The frame one interval sends to the subscribers of ``orderbook.{depth}.{symbol}``
        (``None``: nothing inside the window changed)."""
        engine = self.sim.engine
        if depth == 1:
            now = asyncio.get_running_loop().time()
            changed = bool(batch) and self._window_changed(symbol, 1, batch)
            if not changed and now - self._depth1_at.get(symbol, now) < DEPTH1_RESEND_S:
                self._depth1_at.setdefault(symbol, now)
                return None
            self._depth1_at[symbol] = now
            return self._snapshot_frame(symbol, 1)
        if not batch:
            return None
        first, last = batch[0].seq - 1, batch[-1].seq
        sides = []
        for at in (first, last):
            bids, asks = engine.units_at(symbol, at)
            sides.append((_top(bids, Side.BID, depth), _top(asks, Side.ASK, depth)))
        (b0, a0), (b1, a1) = sides
        bids_diff, asks_diff = window_diff(b0, b1, Side.BID), window_diff(a0, a1, Side.ASK)
        if not bids_diff and not asks_diff:
            return None
        return self._book_frame(symbol, depth, "delta", last, bids_diff, asks_diff)

    def _window_changed(self, symbol: str, depth: int, batch: Sequence[ChangeSet]) -> bool:
        engine = self.sim.engine
        before = engine.units_at(symbol, batch[0].seq - 1)
        after = engine.units_at(symbol, batch[-1].seq)
        return any(_top(b, side, depth) != _top(a, side, depth)
                   for side, b, a in ((Side.BID, before[0], after[0]), (Side.ASK, before[1], after[1])))

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        return {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}, "time": _now_ms()}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path == "/v5/market/orderbook":
            return self._orderbook(query)
        if path == "/v5/market/instruments-info":
            return self._ok(self._instruments(query))
        if path == "/v5/market/time":
            now = _now_ms()
            return self._ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})
        return RestResult(404, {"retCode": 10001, "retMsg": f"unknown path {path}", "result": {}, "retExtInfo": {},
                                "time": _now_ms()})

    @staticmethod
    def _ok(result: Any) -> RestResult:
        return RestResult(200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now_ms()})

    @staticmethod
    def _error(code: int, msg: str) -> RestResult:
        # Bybit answers parameter errors with HTTP 200 and a non-zero retCode
        return RestResult(200, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": _now_ms()})

    def _orderbook(self, query: Mapping[str, str]) -> RestResult:
        category = query.get("category", "")
        if category not in REST_LIMITS:
            return self._error(10001, "Illegal category")
        symbol = query.get("symbol", "")
        if symbol not in self.specs:
            return self._error(10001, "The requested symbol is invalid.")
        cap, default = REST_LIMITS[category]
        text = query.get("limit", str(default))
        if not text.isdigit() or not 1 <= int(text) <= cap:
            return self._error(10001, "The number of limit is invalid.")
        u, bids, asks = self.rest_book(symbol)
        return self._ok(self.book_result(symbol, self.wire_u(symbol, u), u, bids, asks, int(text)))

    def book_result(self, symbol: str, u: int, seq: int, bids: Any, asks: Any, limit: int,
                    keys: tuple[str, ...] = ("s", "b", "a", "ts", "u", "seq", "cts")) -> dict[str, Any]:
        """A REST book ``result`` at wire ``u`` and engine seq ``seq`` (its ``seq`` field is the
        cross sequence), the best ``limit`` levels a side, its fields in ``keys`` order (each
        endpoint's example orders them its own way, §6.4)."""
        spec = self.specs[symbol]
        now = _now_ms()
        body = {"s": symbol, "b": _wire(spec, _top(bids, Side.BID, limit)),
                "a": _wire(spec, _top(asks, Side.ASK, limit)), "ts": now, "u": u, "seq": cross_seq(seq), "cts": now}
        return {k: body[k] for k in keys}

    def _instruments(self, query: Mapping[str, str]) -> dict[str, Any]:
        category = query.get("category", "")
        if category not in REST_LIMITS or query.get("status") == "PreLaunch":
            return {"category": category, "list": [], "nextPageCursor": ""}
        rows: list[dict[str, Any]] = []
        for spec in self.specs.values():
            base, quote = _split_symbol(spec.symbol)
            tick = spec.price_str(spec.tick_units)
            step = spec.qty_str(spec.lot_units)
            common: dict[str, Any] = {"symbol": spec.symbol, "baseCoin": base, "quoteCoin": quote, "status": "Trading",
                      "priceFilter": {"tickSize": tick, "minPrice": tick, "maxPrice": "1999999.80"}}
            if category == "spot":
                rows.append({**common, "innovation": "0", "marginTrading": "utaOnly", "stTag": "0",
                             "lotSizeFilter": {"basePrecision": step, "quotePrecision": "0.00000001",
                                               "minOrderQty": step, "maxOrderQty": "1000", "minOrderAmt": "1",
                                               "maxOrderAmt": "4000000"},
                             "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}})
            else:
                rows.append({**common, "contractType": "LinearPerpetual", "launchTime": "1584230400000",
                             "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(spec.price_decimals),
                             "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                             "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": step, "qtyStep": step,
                                               "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                                               "minNotionalValue": "5"},
                             "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": quote,
                             "copyTrading": "both", "upperFundingRate": "0.005", "lowerFundingRate": "-0.005",
                             "isPreListing": False, "preListingInfo": None})
        return {"category": category, "list": rows, "nextPageCursor": ""}


def _top(book: Any, side: Side, n: int) -> Levels:
    """The best ``n`` ``(price, qty)`` of one side of a ``SortedDict`` book, best first."""
    keys = book.keys()
    chosen = list(reversed(keys[-n:])) if side is Side.BID else list(keys[:n])
    return [(p, book[p]) for p in chosen]
