"""OKX v5 private side: the private WebSocket and the signed REST routes (§5.6).

- WebSocket (§5.6): ``/ws/v5/private`` on the okx server's port (real
  ``wss://ws.okx.com:8443/ws/v5/private``). ``{"op":"login","args":[{apiKey, passphrase,
  timestamp (unix s), sign}]}`` with ``sign = base64(HMAC_SHA256(secret, timestamp + "GET" +
  "/users/self/verify"))`` answers ``{"event":"login","code":"0","msg":"","connId":..}``, or
  ``{"event":"error","code":..}``: ``60005`` unknown key, ``60004`` timestamp more than 30 s
  away, ``60024`` wrong passphrase, ``60009`` bad sign. ``subscribe`` before login gets
  ``60011`` "Please log in". Channels ``orders`` (no snapshot on subscribe; one push per order
  change, a fill carries ``tradeId``/``fillSz``/``fillPx``/``fillFee`` (negative = charged)),
  ``positions`` and ``account`` (``eventType`` ``snapshot`` on subscribe, ``event_update`` on
  change), one ack per arg. Text ``ping`` -> ``pong``; the public dialect's watchdog closes a
  connection idle for 30 s (§5.5), private ones included. OKX documents no session lifetime
  (⚠); the ``auth_expiry`` fault drops the login and sends ``60011``, after which nothing is
  pushed until a new login and subscribe.
- REST (§5.6, §2.4), signed as ccxt 4.5.90 ``okx.sign()`` does: ``OK-ACCESS-SIGN =
  base64(HMAC_SHA256(secret, iso_ts + "GET" + path_with_query))`` with ``OK-ACCESS-KEY``,
  ``OK-ACCESS-TIMESTAMP``, ``OK-ACCESS-PASSPHRASE``; errors HTTP 401 ``50113`` / ``50111`` /
  ``50105`` / ``50102``. ``/api/v5/trade/fills-history`` (instType required, ``limit`` ≤ 100,
  newest first, ``after``/``before`` by billId, ``begin``/``end`` on ``ts``, last 3 months),
  ``/api/v5/trade/fills`` (last 3 days), ``/api/v5/account/balance`` (``uTime`` = last
  change), ``/api/v5/account/positions``, ``/api/v5/trade/orders-pending``; SWAP instruments
  for ``/api/v5/public/instruments?instType=SWAP`` (:meth:`OkxPrivate.swap_instruments`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from websockets.datastructures import Headers

from ..account import (
    AccountChange,
    AccountInstrument,
    AccountProfile,
    BalancesChanged,
    InstrumentKind,
    OrderChanged,
    PositionChanged,
    SimFill,
    SimOrder,
    wall_ms,
)
from ..private import DAY_MS, PrivateDialect, trimmed
from ..server import ClientConn, Frame, RestResult

__all__ = ["OKX_ACCOUNT", "OkxPrivate"]

#: §5.6 OKX: spot buys pay the fee in the base ccy, sells in USDT; the linear swap (net mode,
#: ctVal 0.01 BTC) settles fees and realized PnL in USDT; billIds increase per account
OKX_ACCOUNT = AccountProfile(
    venue="okx",
    instruments=(
        AccountInstrument(symbol="BTC-USDT", kind=InstrumentKind.SPOT, base="BTC", quote="USDT", price_decimals=1,
                          lot="0.00000001", typical_qty="0.01", ref_symbol="BTC-USDT", ref_price="61837.6",
                          taker_fee="0.001", maker_fee="0.0008"),
        AccountInstrument(symbol="BTC-USDT-SWAP", kind=InstrumentKind.LINEAR_SWAP, base="BTC", quote="USDT",
                          price_decimals=1, lot="1", typical_qty="2", ref_symbol="BTC-USDT", ref_price="61837.6",
                          ct_val="0.01", taker_fee="0.0005", maker_fee="0.0002"),
    ),
    balances={"BTC": "2", "USDT": "250000"},
    uid="448762135718912",
    first_trade_id=530_000_001,
    first_order_id=700_000_000_000_000_001,
    first_bill_id=900_000_000_000_000_001,
    buy_fee_in_base=True,
    passphrase=True,
)

#: §5.6: fills-history covers 3 months, fills 3 days
HISTORY_WINDOW_MS = 90 * DAY_MS
RECENT_WINDOW_MS = 3 * DAY_MS
_INST_TYPES = frozenset({"SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"})
_CHANNELS = frozenset({"orders", "positions", "account"})


def num(value: Decimal | None) -> str:
    """OKX prints numbers without trailing zeros; no value is ``""``."""
    return trimmed(value, none="")


def _inst_type(inst: AccountInstrument) -> str:
    return "SWAP" if inst.kind is InstrumentKind.LINEAR_SWAP else "SPOT"


class _Session:
    __slots__ = ("logged_in", "subs")

    def __init__(self) -> None:
        self.logged_in = False
        self.subs: list[dict[str, Any]] = []


def _ok(data: list[Any]) -> RestResult:
    return RestResult(200, {"code": "0", "msg": "", "data": data})


def _fail(status: int, code: str, msg: str) -> RestResult:
    return RestResult(status, {"code": code, "msg": msg, "data": []})


class OkxPrivate(PrivateDialect):
    """OKX account stream and signed REST (see the module docstring)."""

    ws_path = "/ws/v5/private"
    profile = OKX_ACCOUNT
    rest_paths = frozenset({
        "/api/v5/trade/fills-history", "/api/v5/trade/fills", "/api/v5/account/balance",
        "/api/v5/account/positions", "/api/v5/trade/orders-pending",
    })

    # -- WebSocket ----------------------------------------------------------------------------

    def on_open(self, conn: ClientConn) -> None:
        conn.session = _Session()

    def _error(self, conn: ClientConn, code: str, msg: str, extra: Mapping[str, Any]) -> None:
        self.send_control(conn, {**extra, "event": "error", "code": code, "msg": msg, "connId": conn.conn_id})

    def on_text(self, conn: ClientConn, text: str) -> None:
        if text == "ping":  # §5.5: text ping, text pong
            conn.send(Frame("pong"))
            return
        try:
            msg = orjson.loads(text)
            op = msg["op"]
            args = msg.get("args") or []
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self._error(conn, "60012", f"Invalid request: {text[:200]}", {})
            return
        extra = {"id": msg["id"]} if msg.get("id") is not None else {}
        session: _Session = conn.session
        if op == "login":
            self._login(conn, session, args, extra)
        elif op in ("subscribe", "unsubscribe"):
            if not session.logged_in:
                self._error(conn, "60011", "Please log in", extra)
                return
            for arg in args:
                self._subscribe(conn, session, op, arg, extra)
        else:
            self._error(conn, "60012", f"Invalid request: {text[:200]}", extra)

    def _login(self, conn: ClientConn, session: _Session, args: Any, extra: Mapping[str, Any]) -> None:
        arg = args[0] if isinstance(args, list) and args and isinstance(args[0], dict) else {}
        creds = self.account.credentials
        if arg.get("apiKey") != creds.api_key:
            self._error(conn, "60005", "Invalid OK-ACCESS-KEY", extra)
            return
        ts = str(arg.get("timestamp", ""))
        try:
            skew = abs(float(ts) - wall_ms() / 1000)
        except ValueError:
            skew = float("inf")
        if skew > 30:
            self._error(conn, "60004", "Invalid timestamp", extra)
            return
        if arg.get("passphrase") != creds.passphrase:
            self._error(conn, "60024", "Wrong passphrase", extra)
            return
        if not _sign_ok(creds.reveal_secret(), ts + "GET" + "/users/self/verify", str(arg.get("sign", ""))):
            self._error(conn, "60009", "Login failed.", extra)
            return
        session.logged_in = True
        self.send_control(conn, {**extra, "event": "login", "code": "0", "msg": "", "connId": conn.conn_id})

    def _subscribe(self, conn: ClientConn, session: _Session, op: str, arg: Any, extra: Mapping[str, Any]) -> None:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        if channel not in _CHANNELS or (channel != "account" and arg.get("instType") not in {"ANY", *_INST_TYPES}):
            self._error(conn, "60018", f"Wrong URL or channel:{channel} doesn't exist.", extra)
            return
        clean = {k: v for k, v in arg.items() if k in ("channel", "instType", "instId", "instFamily", "ccy")}
        if op == "unsubscribe":
            session.subs = [s for s in session.subs if s != clean]
            self.send_control(conn, {**extra, "event": "unsubscribe", "arg": clean, "connId": conn.conn_id})
            return
        if clean not in session.subs:
            session.subs.append(clean)
        self.send_control(conn, {**extra, "event": "subscribe", "arg": clean, "connId": conn.conn_id})
        # §5.6: positions and account push a snapshot on subscribe; orders do not
        if channel == "positions":
            rows = [self._position_row(s) for s in self._position_symbols(clean) if self.account.position(s)[0] != 0]
            self.send_control(conn, {"arg": {**clean, "uid": self.account.uid}, "eventType": "snapshot", "data": rows})
        elif channel == "account":
            self.send_control(conn, {"arg": {**clean, "uid": self.account.uid}, "eventType": "snapshot",
                                     "data": [self._balance_data(None)]})

    def end_session(self, conn: ClientConn) -> bool:
        """``auth_expiry`` (simulated, ⚠ no documented lifetime): the login is dropped and the
        client told "Please log in"; nothing more is pushed until it logs in and subscribes."""
        session: _Session | None = conn.session
        if session is None or not session.logged_in:
            return False
        session.logged_in = False
        session.subs.clear()
        self._error(conn, "60011", "Please log in", {})
        return True

    # -- pushes ---------------------------------------------------------------------------------

    def receives(self, session: _Session) -> bool:
        return session.logged_in and bool(session.subs)

    def push(self, conn: ClientConn, session: _Session, change: AccountChange) -> None:
        for sub in session.subs:
            self._push_sub(conn, sub, change)

    def _push_sub(self, conn: ClientConn, sub: Mapping[str, Any], change: AccountChange) -> None:
        channel = sub["channel"]
        arg = {**sub, "uid": self.account.uid}
        if isinstance(change, OrderChanged) and channel == "orders":
            if self._matches(sub, self.account.instruments[change.order.symbol]):
                self.send_event(conn, {"arg": arg, "data": [self._order_row(change.order, change.fill)]})
        elif isinstance(change, PositionChanged) and channel == "positions":
            if self._matches(sub, self.account.instruments[change.symbol]):
                self.send_control(conn, {"arg": arg, "eventType": "event_update",
                                         "data": [self._position_row(change.symbol)]})
        elif isinstance(change, BalancesChanged) and channel == "account":
            self.send_control(conn, {"arg": arg, "eventType": "event_update",
                                     "data": [self._balance_data(change.assets)]})

    def _matches(self, sub: Mapping[str, Any], inst: AccountInstrument) -> bool:
        wanted = sub.get("instType", "ANY")
        if wanted != "ANY" and wanted != _inst_type(inst):
            return False
        return sub.get("instId") in (None, "", inst.symbol)

    def _position_symbols(self, sub: Mapping[str, Any]) -> list[str]:
        return [s for s, i in self.account.instruments.items()
                if i.kind is InstrumentKind.LINEAR_SWAP and self._matches(sub, i)]

    # -- rows -------------------------------------------------------------------------------------

    def _order_row(self, o: SimOrder, fill: SimFill | None) -> dict[str, Any]:
        inst = self.account.instruments[o.symbol]
        fees = sum((f.fee for f in self.account.fills(o.symbol) if f.order_id == o.order_id), Decimal("0"))
        avg = o.filled_quote / o.filled if o.filled else None
        fee_ccy = fill.fee_currency if fill else (inst.base if o.side == "buy" and inst.kind is InstrumentKind.SPOT
                                                  else inst.quote)
        return {
            "instType": _inst_type(inst), "instId": o.symbol, "ordId": o.order_id, "clOrdId": o.client_order_id,
            "tag": "", "px": num(o.price), "sz": num(o.qty), "side": o.side, "posSide": "net",
            "ordType": o.order_type, "tdMode": "cash" if inst.kind is InstrumentKind.SPOT else "cross",
            "state": o.state.value, "accFillSz": num(o.filled), "avgPx": num(avg) if avg is not None else "0",
            "fillSz": num(fill.qty) if fill else "0", "fillPx": num(fill.price) if fill else "",
            "tradeId": fill.trade_id if fill else "", "fillTime": str(fill.ts_ms) if fill else "",
            "fillFee": num(-fill.fee) if fill else "0", "fillFeeCcy": fill.fee_currency if fill else "",
            "fillPnl": num(fill.pnl) if fill else "0", "execType": ("M" if fill.maker else "T") if fill else "",
            "fee": num(-fees), "feeCcy": fee_ccy, "pnl": "0", "rebate": "0", "rebateCcy": inst.quote,
            "category": "normal", "reduceOnly": "false", "lever": "" if inst.kind is InstrumentKind.SPOT else "10",
            "ccy": "", "source": "", "cancelSource": "", "amendResult": "", "reqId": "", "code": "0", "msg": "",
            "uTime": str(o.updated_ms), "cTime": str(o.created_ms),
        }

    def _pending_row(self, o: SimOrder) -> dict[str, Any]:
        row = self._order_row(o, None)
        for key in ("fillSz", "fillPx", "tradeId", "fillTime", "fillFee", "fillFeeCcy", "fillPnl", "execType",
                    "amendResult", "reqId", "code", "msg"):
            row.pop(key)
        return row

    def _upl(self, symbol: str) -> Decimal:
        inst = self.account.instruments[symbol]
        pos, avg, _, _ = self.account.position(symbol)
        if pos == 0:
            return Decimal("0")
        return (self.account.mark_price(symbol) - avg) * pos * Decimal(inst.ct_val or "1")

    def _position_row(self, symbol: str) -> dict[str, Any]:
        inst = self.account.instruments[symbol]
        pos, avg, updated, created = self.account.position(symbol)
        mark = self.account.mark_price(symbol)
        notional = abs(pos) * Decimal(inst.ct_val or "1") * mark
        last_trade = next((f.trade_id for f in reversed(self.account.fills(symbol))), "")
        return {
            "instType": "SWAP", "instId": symbol, "mgnMode": "cross", "posId": f"{self.account.uid[:6]}{symbol[:3]}",
            "posSide": "net", "pos": num(pos), "posCcy": "", "availPos": "", "avgPx": num(avg) if pos else "",
            "upl": num(self._upl(symbol)), "uplRatio": "", "lever": "10", "liqPx": "", "markPx": num(mark),
            "last": num(mark), "imr": num(notional / 10), "margin": "", "mgnRatio": "", "mmr": num(notional / 200),
            "notionalUsd": num(notional), "ccy": inst.quote, "adl": "1", "interest": "", "tradeId": last_trade,
            "realizedPnl": "", "cTime": str(created), "uTime": str(updated),
        }

    def _balance_data(self, assets: tuple[str, ...] | None) -> dict[str, Any]:
        upl = sum((self._upl(s) for s, i in self.account.instruments.items() if i.kind is InstrumentKind.LINEAR_SWAP),
                  Decimal("0"))
        details = []
        for ccy in sorted(self.account.balances()):
            if assets is not None and ccy not in assets:
                continue
            free, locked, updated = self.account.balance(ccy)
            total = free + locked
            ccy_upl = upl if ccy == "USDT" else Decimal("0")
            details.append({
                "ccy": ccy, "cashBal": num(total), "eq": num(total + ccy_upl), "availBal": num(free),
                "frozenBal": num(locked), "ordFrozen": num(locked), "upl": num(ccy_upl), "disEq": num(total),
                "eqUsd": "", "uTime": str(updated), "liab": "", "crossLiab": "", "isoEq": "0", "stgyEq": "0",
            })
        return {"uTime": str(self.account.updated_ms), "totalEq": "", "isoEq": "0", "adjEq": "", "ordFroz": "",
                "imr": "", "mmr": "", "mgnRatio": "", "notionalUsd": "", "upl": num(upl), "details": details}

    def _fill_row(self, f: SimFill) -> dict[str, Any]:
        inst = self.account.instruments[f.symbol]
        return {
            "instType": _inst_type(inst), "instId": f.symbol, "tradeId": f.trade_id, "ordId": f.order_id,
            "clOrdId": f.client_order_id, "billId": f.bill_id, "subType": "1" if f.side == "buy" else "2",
            "tag": "", "side": f.side, "posSide": "net", "fillSz": num(f.qty), "fillPx": num(f.price),
            "fillIdxPx": "", "fillPnl": num(f.pnl), "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "",
            "fillFwdPx": "", "fillMarkPx": "", "execType": "M" if f.maker else "T", "fee": num(-f.fee),
            "feeCcy": f.fee_currency, "ts": str(f.ts_ms), "fillTime": str(f.ts_ms),
        }

    # -- signed REST --------------------------------------------------------------------------------

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:
        denied = self._check_signature(path, raw_query, headers)
        if denied is not None:
            return denied
        if path == "/api/v5/trade/fills-history":
            return self._fills(query, self.window_ms(HISTORY_WINDOW_MS))
        if path == "/api/v5/trade/fills":
            return self._fills(query, self.window_ms(RECENT_WINDOW_MS))
        if path == "/api/v5/account/balance":
            wanted = tuple(query["ccy"].split(",")) if query.get("ccy") else None
            return _ok([self._balance_data(wanted)])
        if path == "/api/v5/account/positions":
            return self._positions(query)
        return self._orders_pending(query)

    def _check_signature(self, path: str, raw_query: str, headers: Headers) -> RestResult | None:
        creds = self.account.credentials
        key = headers.get("OK-ACCESS-KEY")
        if not key:
            return _fail(401, "50103", "Request header OK-ACCESS-KEY can not be empty.")
        if key != creds.api_key:
            return _fail(401, "50111", "Invalid OK-ACCESS-KEY")
        passphrase = headers.get("OK-ACCESS-PASSPHRASE")
        if not passphrase:
            return _fail(401, "50104", "Request header OK-ACCESS-PASSPHRASE can not be empty.")
        if passphrase != creds.passphrase:
            return _fail(401, "50105", "Invalid OK-ACCESS-PASSPHRASE")
        ts = headers.get("OK-ACCESS-TIMESTAMP", "")
        try:
            sent_ms = datetime.fromisoformat(ts).timestamp() * 1000
        except ValueError:
            return _fail(401, "50107", "Invalid OK-ACCESS-TIMESTAMP")
        if abs(wall_ms() - sent_ms) > 30_000:
            return _fail(401, "50102", "Timestamp request expired")
        request_path = path + ("?" + raw_query if raw_query else "")
        if not _sign_ok(creds.reveal_secret(), ts + "GET" + request_path, headers.get("OK-ACCESS-SIGN", "")):
            return _fail(401, "50113", "Invalid Sign")
        return None

    def _fills(self, query: Mapping[str, str], window_ms: int | None) -> RestResult:
        inst_type = query.get("instType")
        if inst_type not in _INST_TYPES:
            return _fail(200, "51000", "Parameter instType error")
        inst_id = query.get("instId")
        if inst_id and inst_id not in self.account.instruments:
            return _fail(200, "51001", "Instrument ID does not exist")
        try:
            limit = int(query.get("limit", "100"))
            bounds = {k: int(query[k]) for k in ("begin", "end", "after", "before") if query.get(k)}
        except ValueError:
            return _fail(200, "51000", "Parameter error")
        if not 1 <= limit <= 100:
            return _fail(200, "51000", "Parameter limit error")
        rows = [f for f in self.account.fills(inst_id or None)
                if _inst_type(self.account.instruments[f.symbol]) == inst_type]
        if window_ms is not None:
            oldest = self.account.now_ms() - window_ms
            rows = [f for f in rows if f.ts_ms >= oldest]
        if "begin" in bounds:
            rows = [f for f in rows if f.ts_ms >= bounds["begin"]]
        if "end" in bounds:
            rows = [f for f in rows if f.ts_ms <= bounds["end"]]
        if "after" in bounds:  # older than the cursor
            rows = [f for f in rows if int(f.bill_id) < bounds["after"]]
        if "before" in bounds:  # newer than the cursor
            rows = [f for f in rows if int(f.bill_id) > bounds["before"]]
        # rows are oldest first; a `before`-only page is the oldest newer rows, every other
        # page the newest ones; both are answered newest first (§5.6)
        page = rows[:limit] if "before" in bounds and "after" not in bounds else rows[-limit:]
        return _ok([self._fill_row(f) for f in reversed(page)])

    def _positions(self, query: Mapping[str, str]) -> RestResult:
        inst_type = query.get("instType")
        if inst_type and inst_type not in _INST_TYPES:
            return _fail(200, "51000", "Parameter instType error")
        wanted = set(query["instId"].split(",")) if query.get("instId") else None
        rows = []
        for symbol, pos in self.account.positions().items():
            inst = self.account.instruments[symbol]
            if (inst_type and inst_type != _inst_type(inst)) or (wanted is not None and symbol not in wanted):
                continue
            if pos != 0:
                rows.append(self._position_row(symbol))
        return _ok(rows)

    def _orders_pending(self, query: Mapping[str, str]) -> RestResult:
        inst_type, inst_id = query.get("instType"), query.get("instId")
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _fail(200, "51000", "Parameter limit error")
        rows = [o for o in self.account.open_orders(inst_id or None)
                if not inst_type or _inst_type(self.account.instruments[o.symbol]) == inst_type]
        rows.sort(key=lambda o: int(o.order_id), reverse=True)  # newest first, as OKX lists them
        return _ok([self._pending_row(o) for o in rows[:min(limit, 100)]])

    # -- instruments --------------------------------------------------------------------------------

    def swap_instruments(self) -> list[dict[str, Any]]:
        """The account's linear swaps as ``/api/v5/public/instruments?instType=SWAP`` rows."""
        out = []
        for inst in self.account.instruments.values():
            if inst.kind is not InstrumentKind.LINEAR_SWAP:
                continue
            family = f"{inst.base}-{inst.quote}"
            out.append({
                "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "ctMult": "1",
                "ctType": "linear", "ctVal": inst.ct_val or "1", "ctValCcy": inst.base, "expTime": "",
                "instFamily": family, "instId": inst.symbol, "instType": "SWAP", "lever": "100",
                "listTime": "1573557408000", "lotSz": inst.lot, "maxIcebergSz": "100000000", "maxLmtAmt": "20000000",
                "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000",
                "maxTriggerSz": "100000000", "maxTwapSz": "100000000", "minSz": inst.lot, "optType": "",
                "quoteCcy": "", "settleCcy": inst.quote, "state": "live", "stk": "",
                "tickSz": f"{Decimal(1).scaleb(-inst.price_decimals):f}", "uly": family,
            })
        return out


def _sign_ok(secret: str, prehash: str, sign: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, sign)
