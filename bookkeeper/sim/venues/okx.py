"""OKX v5 public order-book dialogue (exchange-protocols.md §5).

- Endpoint (§5.1): ``/ws/v5/public``. ``{"op":"subscribe","args":[{"channel":"books",
  "instId":..}]}`` is acked ``{"event":"subscribe","arg":..,"connId":..}`` (with the request's
  ``id`` echoed when given), then a ``action:"snapshot"`` push (``prevSeqId:-1``), then
  ``action:"update"`` pushes whose ``prevSeqId`` is the previous push's ``seqId`` (§5.2).
  Levels are ``[px, sz, "0", orderCount]`` strings as OKX prints them (trailing zeros trimmed).
- Heartbeat (§5.2): when a book has not changed for ``okx_book_heartbeat_s`` (≈60 s real), an
  update with empty sides and ``seqId == prevSeqId`` is pushed.
- Checksum (§5.3): pinned to 0 since 2026-06-23, so 0 is sent by default; with
  ``okx_checksum=True`` the historical signed CRC32 over the top-25 interleaved levels is sent.
- Keepalive (§5.5): text ``ping`` -> text ``pong``; a connection that sent nothing for
  ``okx_idle_timeout_s`` (30 s real) is closed (code 4004, OKX's "No data received in 30s").
- REST (§5.4): ``/api/v5/market/books`` (``sz`` ≤ 400), ``/api/v5/market/books-full`` (≤ 5000),
  ``/api/v5/public/instruments?instType=SPOT`` for ccxt ``load_markets``. The book answers also
  carry the announced ``seqId`` field (§5.2, "Announced REST procedure").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.checksum import okx_checksum
from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec, fixed, trim
from ..server import ClientConn, Frame, RestResult, VenueServer

__all__ = ["OkxServer"]


class OkxServer(VenueServer):
    """OKX spot public books on loopback."""

    venue = "okx"
    #: the private WebSocket and signed REST (§5.6), served when the account is on
    private_dialect = "bookkeeper.sim.venues.okx_private:OkxPrivate"
    #: the instruments served when the caller names none (precisions as the venue publishes them)
    default_symbols = (
        SymbolSpec(symbol="BTC-USDT", price_decimals=1, qty_decimals=8, mid_price="61837.6", typical_qty="0.05"),
        SymbolSpec(symbol="ETH-USDT", price_decimals=2, qty_decimals=6, mid_price="3050.12", typical_qty="0.8"),
    )

    def ccxt_config(self) -> dict[str, Any]:
        """See :meth:`VenueServer.ccxt_config`."""
        config: dict[str, Any] = {
            "enableRateLimit": False,
            "hostname": self.rest_url.removeprefix("http://"),
            "urls": {"api": {"rest": "http://{hostname}"}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
        if self.private is not None:
            # the account's SWAP instruments too; and no signed /asset/currencies call in
            # load_markets (ccxt makes it once credentials are set; the simulator has no funding API)
            config["options"]["fetchMarkets"]["types"] = ["spot", "swap"]
            config["has"] = {"fetchCurrencies": False}
        return config
    ws_path = "/ws/v5/public"

    def __init__(self, sim: Any, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(sim, specs)
        self._last_push: dict[str, float] = {}

    @property
    def ws_url(self) -> str:
        return self.ws_root + self.ws_path

    def ws_path_ok(self, path: str) -> bool:
        return path == self.ws_path

    # -- formatting ---------------------------------------------------------------------

    def _px(self, spec: SymbolSpec, units: int) -> str:
        return trim(fixed(units, spec.price_decimals))

    def _sz(self, spec: SymbolSpec, units: int) -> str:
        return trim(fixed(units, spec.qty_decimals))

    def _level(self, spec: SymbolSpec, price: int, qty: int) -> list[str]:
        # Order count is deterministic from the level so equal seeds give equal frames.
        count = "0" if qty == 0 else str(1 + (price + qty) % 4)
        return [self._px(spec, price), self._sz(spec, qty), "0", count]

    def _checksum(self, symbol: str) -> int:
        if not self.sim.config.okx_checksum:
            return 0  # §5.3: pinned to 0 in production since 2026-06-23
        spec = self.specs[symbol]
        engine = self.sim.engine
        bids = [(self._px(spec, p), self._sz(spec, q)) for p, q in engine.levels(symbol, Side.BID, 25)]
        asks = [(self._px(spec, p), self._sz(spec, q)) for p, q in engine.levels(symbol, Side.ASK, 25)]
        return okx_checksum(bids, asks)

    def _frame(self, symbol: str, data: dict[str, Any], action: str, seq: int) -> Frame:
        msg = {"arg": {"channel": "books", "instId": symbol}, "action": action, "data": [data]}
        text = orjson.dumps(msg).decode()
        corrupt = None
        if data["checksum"] != 0:
            def corrupt() -> str:
                bad = dict(data, checksum=data["checksum"] ^ 0x5A5A)
                return orjson.dumps(dict(msg, data=[bad])).decode()
        return Frame(text, symbol, seq, data=True, corrupt=corrupt)

    # -- WebSocket ----------------------------------------------------------------------

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._watchdog(conn))]

    async def _watchdog(self, conn: ClientConn) -> None:
        idle = self.sim.config.okx_idle_timeout_s
        loop = asyncio.get_running_loop()
        while True:
            # §5.5: OKX drops a connection when nothing has been pushed for more than 30 s;
            # a client ``ping`` (answered with ``pong``) is what keeps a quiet one open.
            deadline = max(conn.last_rx, conn.last_tx) + idle
            now = loop.time()
            if now < deadline:
                await asyncio.sleep(deadline - now)
                continue
            if conn.stalled:  # a stalled server does nothing at all, not even this
                await asyncio.sleep(idle)
                continue
            await conn.ws.close(4004, "No data received in 30s.")
            return

    def on_text(self, conn: ClientConn, text: str) -> None:
        if text == "ping":  # §5.5: text ping, text pong (not protocol frames)
            conn.send(Frame("pong"))
            return
        try:
            msg = orjson.loads(text)
            op = msg["op"]
            args = msg.get("args") or []
        except (orjson.JSONDecodeError, KeyError, TypeError):
            conn.send_json({"event": "error", "code": "60012", "msg": f"Invalid request: {text[:200]}", "connId": conn.conn_id})
            return
        req_id = msg.get("id")
        extra = {"id": req_id} if req_id is not None else {}
        if op not in ("subscribe", "unsubscribe"):
            conn.send_json({**extra, "event": "error", "code": "60012", "msg": f"Invalid request: {text[:200]}", "connId": conn.conn_id})
            return
        for arg in args:
            channel, inst = arg.get("channel"), arg.get("instId")
            if channel != "books" or inst not in self.specs:
                conn.send_json({**extra, "event": "error", "code": "60018",
                                "msg": f"Wrong URL or channel:{channel},instId:{inst} doesn't exist.",
                                "connId": conn.conn_id})
                continue
            conn.send_json({**extra, "event": op, "arg": {"channel": channel, "instId": inst}, "connId": conn.conn_id})
            if op == "subscribe":
                self._send_snapshot(conn, inst)
            else:
                conn.subs.pop(inst, None)

    def _send_snapshot(self, conn: ClientConn, symbol: str) -> None:
        engine = self.sim.engine
        spec = self.specs[symbol]
        seq = engine.seq(symbol)
        data = {
            "asks": [self._level(spec, p, q) for p, q in engine.levels(symbol, Side.ASK, 400)],
            "bids": [self._level(spec, p, q) for p, q in engine.levels(symbol, Side.BID, 400)],
            "ts": str(int(time.time() * 1000)),
            "checksum": self._checksum(symbol),
            "prevSeqId": -1,
            "seqId": seq,
        }
        conn.subs[symbol] = seq
        conn.processed[symbol] = min(conn.processed.get(symbol, seq - 1), seq - 1)
        self.emit(conn, self._frame(symbol, data, "snapshot", seq))

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        subs = self.subscribers(symbol)
        now = asyncio.get_running_loop().time()
        if not subs:
            self._last_push[symbol] = now
            return
        spec = self.specs[symbol]
        if not batch:
            if now - self._last_push.get(symbol, now) < self.sim.config.okx_book_heartbeat_s:
                self._last_push.setdefault(symbol, now)
                return
            asks: list[list[str]] = []
            bids: list[list[str]] = []
            last = None
        else:
            final: dict[tuple[Side, int], int] = {}
            for cs in batch:
                for side, price, qty in cs.changes:
                    final[(side, price)] = qty
            asks = [self._level(spec, p, q) for (s, p), q in sorted(final.items(), key=lambda kv: kv[0][1]) if s is Side.ASK]
            bids = [self._level(spec, p, q) for (s, p), q in sorted(final.items(), key=lambda kv: -kv[0][1]) if s is Side.BID]
            last = batch[-1].seq
        self._last_push[symbol] = now
        checksum = self._checksum(symbol)
        ts = str(int(time.time() * 1000))
        for conn in subs:
            prev = conn.subs[symbol]
            seq = prev if last is None else last  # heartbeat: seqId == prevSeqId (§5.2)
            data = {"asks": asks, "bids": bids, "ts": ts, "checksum": checksum, "prevSeqId": prev, "seqId": seq}
            conn.subs[symbol] = seq
            self.emit(conn, self._frame(symbol, data, "update", seq))

    # -- REST ---------------------------------------------------------------------------

    def rate_limit_body(self, status: int) -> Any:
        return {"code": "50011", "msg": "Rate limit reached. Please refer to API documentation and throttle requests accordingly.", "data": []}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path in ("/api/v5/market/books", "/api/v5/market/books-full"):
            cap = 400 if path.endswith("books") else 5000
            return self._books(query, cap)
        if path == "/api/v5/public/instruments":
            return self._instruments(query)
        if path == "/api/v5/public/time":
            return RestResult(200, {"code": "0", "msg": "", "data": [{"ts": str(int(time.time() * 1000))}]})
        return RestResult(404, {"code": "50000", "msg": f"unknown path {path}", "data": []})

    def _books(self, query: Mapping[str, str], cap: int) -> RestResult:
        symbol = query.get("instId", "")
        if symbol not in self.specs:
            return RestResult(200, {"code": "51001", "msg": "Instrument ID does not exist", "data": []})
        sz = int(query.get("sz", "1"))
        if sz > cap:
            return RestResult(200, {"code": "51000", "msg": "Parameter sz error", "data": []})
        seq, bids, asks = self.rest_book(symbol)
        spec = self.specs[symbol]
        data = {
            "asks": [self._level(spec, p, q) for p, q in list(asks.items())[:sz]],
            "bids": [self._level(spec, p, q) for p, q in list(reversed(bids.items()))[:sz]],
            "ts": str(int(time.time() * 1000)),
            "seqId": seq,
        }
        return RestResult(200, {"code": "0", "msg": "", "data": [data]})

    def _instruments(self, query: Mapping[str, str]) -> RestResult:
        if query.get("instType", "SPOT") != "SPOT":
            swaps = getattr(self.private, "swap_instruments", None)  # the account's swaps (§5.6)
            data_ = swaps() if swaps is not None and query.get("instType") == "SWAP" else []
            return RestResult(200, {"code": "0", "msg": "", "data": data_})
        data = []
        for spec in self.specs.values():
            base, _, quote = spec.symbol.partition("-")
            data.append(
                {
                    "alias": "", "auctionEndTime": "", "baseCcy": base, "category": "1",
                    "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "", "expTime": "",
                    "instFamily": "", "instId": spec.symbol, "instType": "SPOT", "lever": "10",
                    "listTime": "1548133413000", "lotSz": trim(fixed(spec.lot_units, spec.qty_decimals)),
                    "maxIcebergSz": "9999999999", "maxLmtAmt": "20000000", "maxLmtSz": "9999999999",
                    "maxMktAmt": "1000000", "maxMktSz": "1000000", "maxStopSz": "1000000",
                    "maxTriggerSz": "9999999999", "maxTwapSz": "9999999999",
                    "minSz": trim(fixed(spec.lot_units, spec.qty_decimals)), "optType": "",
                    "quoteCcy": quote, "settleCcy": "", "state": "live", "stk": "",
                    "tickSz": trim(fixed(spec.tick_units, spec.price_decimals)), "uly": "",
                }
            )
        return RestResult(200, {"code": "0", "msg": "", "data": data})
