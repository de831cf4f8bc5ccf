"""Bybit v5 private side (linear account): the private WebSocket and the signed REST routes (§6.6).

- WebSocket (§6.6): ``/v5/private`` on the bybit server's port (real
  ``wss://stream.bybit.com/v5/private``). ``{"op":"auth","args":[apiKey, expires_ms,
  signature]}`` with ``signature = hex(HMAC_SHA256(secret, "GET/realtime" + str(expires)))`` and
  ``expires`` later than now answers ``{"success":true,"ret_msg":"","op":"auth","conn_id":..}``,
  or ``success:false`` with the request echoed: ``"error:USVC1111"`` for an unknown key or a
  bad signature, ``"Params Error"`` for an ``expires`` in the past (⚠ message texts). Topics
  ``execution``, ``order``, ``position``, ``wallet`` (all-in-one) or their ``.linear`` forms,
  not both for one topic in a request; one ack per request; nothing is pushed on subscribe (⚠),
  then one push per change: an execution before the order update it belongs to.
  ``subscribe`` before ``auth`` is refused (``"Request not authorized"``, ⚠). ``{"op":"ping"}``
  -> ``{"op":"pong","args":[ms],..}`` (the private pong shape, §6.5).
- Session end (⚠ undocumented): the ``auth_expiry`` fault closes the connection (code 1000),
  the closest documented behaviour (the server closing a private connection, §6.5).
- REST (§6.6, §2.4), signed as ccxt 4.5.90 ``bybit.sign()`` does (v5 GET):
  ``X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + apiKey + recvWindow + queryString))``
  with ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (ms), ``X-BAPI-RECV-WINDOW``; errors (HTTP 401)
  ``10003`` unknown key, ``10004`` bad sign, ``10002`` a timestamp outside the receive window.
  ``/v5/execution/list`` (``category=linear``, ``startTime``/``endTime`` at most 7 days apart,
  ``limit`` 1-100 default 50, newest first, ``cursor`` paging, 2 years back),
  ``/v5/position/list``, ``/v5/account/wallet-balance`` (``accountType=UNIFIED``),
  ``/v5/order/realtime``. Parameter errors are HTTP 200 with ``retCode 10001``.
- ``/v5/account/transaction-log`` (⚠ not in §6: Bybit's transaction-log page and ccxt 4.5.90
  ``fetch_ledger``): ``accountType=UNIFIED``; one ``TRADE`` row per fill, newest first, with
  ``transactionTime`` (the fill's time), ``change = cashFlow - fee`` (``cashFlow`` the
  realized PnL), ``cashBalance`` (USDT wallet balance after it) and ``size`` (the position
  after it); no times -> the last 24 h (account clock), only ``startTime`` -> 24 h from it,
  only ``endTime`` -> 24 h up to it, both at most 7 days apart; ``limit`` 1-50 (default 20),
  ``cursor`` paging; ``category``/``currency``/``baseCoin``/``type`` filter (this account's
  rows are ``linear``/``USDT``/``TRADE``). Its newest ``transactionTime`` is the account's last
  balance change: the wallet answer carries no last-change time, as on Bybit (the adapter's
  consistency mark, ``adapters/bybit/private.py``). The answer's ``time`` is the account clock.
- Executions carry ``execPnl`` (🔸 Bybit's execution pages; not in §6.6): the realized PnL of
  the fill at the simulator's own average entry price (rounded to 8 decimals), fees excluded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import orjson
from websockets.datastructures import Headers

from ..account import (
    AccountChange,
    AccountInstrument,
    AccountProfile,
    BalancesChanged,
    InstrumentKind,
    OrderChanged,
    OrderState,
    PositionChanged,
    SimFill,
    SimOrder,
    wall_ms,
)
from ..private import DAY_MS, PrivateDialect, trimmed
from ..server import ClientConn, RestResult

__all__ = ["BYBIT_ACCOUNT", "BybitPrivate"]

#: §6.6: a linear (USDT perpetual) account in one-way mode; quantities in the base coin
#: (contract size 1), fees and realized PnL in USDT; Bybit's default fee rates
BYBIT_ACCOUNT = AccountProfile(
    venue="bybit",
    instruments=(
        AccountInstrument(symbol="BTCUSDT", kind=InstrumentKind.LINEAR_SWAP, base="BTC", quote="USDT",
                          price_decimals=1, lot="0.001", typical_qty="0.250", ref_symbol="BTCUSDT",
                          ref_price="61837.6", ct_val="1", taker_fee="0.00055", maker_fee="0.0002"),
        AccountInstrument(symbol="ETHUSDT", kind=InstrumentKind.LINEAR_SWAP, base="ETH", quote="USDT",
                          price_decimals=2, lot="0.01", typical_qty="2.50", ref_symbol="ETHUSDT",
                          ref_price="3050.12", ct_val="1", taker_fee="0.00055", maker_fee="0.0002"),
    ),
    balances={"USDT": "150000", "BTC": "0.5"},
    uid="190387654",
    uuid_ids=True,
)

#: §6.6 execution/list: 7-day windows, 2 years back, limit 1-100 (default 50)
WINDOW_MS = 7 * DAY_MS
RETENTION_MS = 730 * DAY_MS
_TOPICS = frozenset({"execution", "order", "position", "wallet"})
_STATUS = {OrderState.NEW: "New", OrderState.PARTIALLY_FILLED: "PartiallyFilled", OrderState.FILLED: "Filled",
           OrderState.CANCELED: "Cancelled"}
_AUTH_FAILED = "error:USVC1111"


def num(value: Decimal | None) -> str:
    """Bybit prints numbers as plain decimals (trailing zeros trimmed here)."""
    return trimmed(value)


def _side(side: str) -> str:
    return "Buy" if side == "buy" else "Sell"


class _Session:
    __slots__ = ("authed", "topics")

    def __init__(self) -> None:
        self.authed = False
        self.topics: set[str] = set()


def _ok(result: Any) -> RestResult:
    return RestResult(200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": wall_ms()})


def _fail(status: int, code: int, msg: str) -> RestResult:
    return RestResult(status, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": wall_ms()})


def _cursor(ts_ms: int) -> str:
    """An opaque page cursor, spelled as Bybit's are (URL-encoded ``a:b,a:b``)."""
    return f"{ts_ms}%3A0%2C{ts_ms}%3A0"


def _cursor_ts(text: str) -> int | None:
    try:
        return int(unquote(text).split(",")[0].split(":")[0])
    except ValueError:
        return None


class BybitPrivate(PrivateDialect):
    """Bybit account stream and signed REST (see the module docstring)."""

    ws_path = "/v5/private"
    profile = BYBIT_ACCOUNT
    rest_paths = frozenset({
        "/v5/execution/list", "/v5/position/list", "/v5/account/wallet-balance", "/v5/order/realtime",
        "/v5/account/transaction-log",
    })

    # -- WebSocket ----------------------------------------------------------------------------

    def on_open(self, conn: ClientConn) -> None:
        conn.session = _Session()

    def _reply(self, conn: ClientConn, op: str, req_id: Any, success: bool, msg: str,
               request: Mapping[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"success": success, "ret_msg": msg, "conn_id": conn.conn_id}
        if req_id is not None:
            body["req_id"] = req_id
        if request is not None:
            body["request"] = request  # auth errors echo the request (ccxt pro/bybit.py)
        else:
            body["op"] = op
        self.send_control(conn, body)

    def on_text(self, conn: ClientConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
            op = msg["op"]
            args = msg.get("args") or []
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.send_control(conn, {"success": False, "ret_msg": f"error:request not valid, {text[:100]}",
                                     "conn_id": conn.conn_id, "op": ""})
            return
        req_id = msg.get("req_id")
        session: _Session = conn.session
        if op == "ping":  # §6.5: the private pong shape
            self.send_control(conn, {"req_id": req_id or "", "op": "pong", "args": [str(wall_ms())],
                                     "conn_id": conn.conn_id})
        elif op == "auth":
            self._auth(conn, session, args, req_id)
        elif op in ("subscribe", "unsubscribe"):
            if not session.authed:
                self._reply(conn, op, req_id, False, "Request not authorized")
                return
            self._subscribe(conn, session, op, args, req_id)
        else:
            self._reply(conn, op if isinstance(op, str) else "", req_id, False, f"error:handler not found,op:{op}")

    def _auth(self, conn: ClientConn, session: _Session, args: Any, req_id: Any) -> None:
        request = {"op": "auth", "args": args}
        if not isinstance(args, list) or len(args) != 3:
            self._reply(conn, "auth", req_id, False, "Params Error", request)
            return
        key, expires, sign = args
        creds = self.account.credentials
        if key != creds.api_key:
            self._reply(conn, "auth", req_id, False, _AUTH_FAILED, request)
            return
        try:
            expires_ms = int(expires)
        except (TypeError, ValueError):
            expires_ms = 0
        if expires_ms <= wall_ms():  # §6.6: expires must be later than now
            self._reply(conn, "auth", req_id, False, "Params Error", request)
            return
        expected = hmac.new(creds.reveal_secret().encode(), f"GET/realtime{expires_ms}".encode(),
                            hashlib.sha256).hexdigest()
        if not isinstance(sign, str) or not hmac.compare_digest(expected, sign):
            self._reply(conn, "auth", req_id, False, _AUTH_FAILED, request)
            return
        session.authed = True
        self._reply(conn, "auth", req_id, True, "")

    def _subscribe(self, conn: ClientConn, session: _Session, op: str, args: Any, req_id: Any) -> None:
        if not isinstance(args, list) or not args:
            self._reply(conn, op, req_id, False, "error:args empty")
            return
        topics: set[str] = set()
        forms: dict[str, set[str]] = {}
        for arg in args:
            base, _, cat = str(arg).partition(".")
            if base not in _TOPICS or cat not in ("", "linear"):
                self._reply(conn, op, req_id, False, f"error:topic:{arg} not found")
                return
            forms.setdefault(base, set()).add(cat)
            topics.add(base)
        if any(len(f) > 1 for f in forms.values()):
            # §6.6: the all-in-one and per-category forms cannot be mixed in one request
            self._reply(conn, op, req_id, False, "error:all-in-one and categorised topics in one request")
            return
        if op == "subscribe":
            session.topics |= topics
        else:
            session.topics -= topics
        self._reply(conn, op, req_id, True, "")

    def end_session(self, conn: ClientConn) -> bool:
        """``auth_expiry`` (⚠ Bybit documents no session lifetime nor a "logged out" message):
        the server closes the connection, its documented way of ending a private one (§6.5)."""
        session: _Session | None = conn.session
        if session is None or not session.authed:
            return False
        session.authed = False
        session.topics.clear()
        self.server.sim.spawn(conn.ws.close(1000, ""))
        return True

    # -- pushes ---------------------------------------------------------------------------------

    def receives(self, session: _Session) -> bool:
        return session.authed and bool(session.topics)

    def _envelope(self, topic: str, ts_ms: int, rows: list[Any]) -> dict[str, Any]:
        return {"id": f"{self.account.uid}_{topic}_{ts_ms}", "topic": topic, "creationTime": ts_ms, "data": rows}

    def push(self, conn: ClientConn, session: _Session, change: AccountChange) -> None:
        topics = session.topics
        if isinstance(change, OrderChanged):
            if change.fill is not None and "execution" in topics:
                self.send_event(conn, self._envelope("execution", change.ts_ms, [self._exec_row(change.fill)]))
            if "order" in topics:
                self.send_event(conn, self._envelope("order", change.ts_ms, [self._order_row(change.order)]))
        elif isinstance(change, PositionChanged) and "position" in topics:
            self.send_control(conn, self._envelope("position", change.ts_ms, [self._position_row(change.symbol, True)]))
        elif isinstance(change, BalancesChanged) and "wallet" in topics:
            self.send_control(conn, self._envelope("wallet", change.ts_ms, [self._wallet_row(change.assets, False)]))

    # -- rows -------------------------------------------------------------------------------------

    def _exec_row(self, f: SimFill) -> dict[str, Any]:
        order = self.account.order(f.order_id)
        value = f.price * f.qty
        inst = self.account.instruments[f.symbol]
        closing = f.pnl != 0
        return {
            "category": "linear", "symbol": f.symbol, "execId": f.trade_id, "orderId": f.order_id,
            "orderLinkId": f.client_order_id, "side": _side(f.side), "orderPrice": num(order.price),
            "orderQty": num(order.qty), "leavesQty": num(order.remaining), "createType": "CreateByUser",
            "orderType": "Limit" if order.order_type == "limit" else "Market", "stopOrderType": "",
            "execFee": num(f.fee), "execPrice": num(f.price), "execQty": num(f.qty), "execType": "Trade",
            "execValue": num(value), "execTime": str(f.ts_ms), "feeCurrency": f.fee_currency, "isMaker": f.maker,
            "feeRate": inst.maker_fee if f.maker else inst.taker_fee, "tradeIv": "", "markIv": "",
            "markPrice": num(self.account.mark_price(f.symbol)), "indexPrice": "", "underlyingPrice": "",
            "blockTradeId": "", "closedSize": num(f.qty) if closing else "0", "execPnl": num(f.pnl),
            "marketUnit": "", "isLeverage": "0", "seq": f.ts_ms,
        }

    def _order_row(self, o: SimOrder) -> dict[str, Any]:
        fees = sum((f.fee for f in self.account.fills(o.symbol) if f.order_id == o.order_id), Decimal("0"))
        avg = o.filled_quote / o.filled if o.filled else None
        return {
            "category": "linear", "symbol": o.symbol, "orderId": o.order_id, "orderLinkId": o.client_order_id,
            "side": _side(o.side), "orderType": "Limit" if o.order_type == "limit" else "Market",
            "cancelType": "CancelByUser" if o.state is OrderState.CANCELED else "UNKNOWN",
            "price": num(o.price), "qty": num(o.qty), "orderIv": "", "timeInForce": "GTC",
            "orderStatus": _STATUS[o.state], "lastPriceOnCreated": "", "reduceOnly": False,
            "leavesQty": num(o.remaining if o.is_open else Decimal(0)),
            "leavesValue": num((o.remaining * (o.price or Decimal(0))) if o.is_open else Decimal(0)),
            "cumExecQty": num(o.filled), "cumExecValue": num(o.filled_quote), "avgPrice": num(avg),
            "blockTradeId": "", "positionIdx": 0, "cumExecFee": num(fees), "createdTime": str(o.created_ms),
            "updatedTime": str(o.updated_ms), "rejectReason": "EC_NoError", "stopOrderType": "",
            "tpslMode": "", "triggerPrice": "", "takeProfit": "", "stopLoss": "", "tpTriggerBy": "",
            "slTriggerBy": "", "tpLimitPrice": "", "slLimitPrice": "", "triggerDirection": 0, "triggerBy": "",
            "closeOnTrigger": False, "placeType": "", "smpType": "None", "smpGroup": 0, "smpOrderId": "",
            "feeCurrency": "", "createType": "CreateByUser",
        }

    def _position_row(self, symbol: str, stream: bool) -> dict[str, Any]:
        pos, avg, updated, created = self.account.position(symbol)
        mark = self.account.mark_price(symbol)
        upl = (mark - avg) * pos if pos else Decimal(0)
        notional = abs(pos) * mark
        row: dict[str, Any] = {
            "category": "linear", "symbol": symbol, "positionIdx": 0, "tradeMode": 0, "riskId": 1,
            "riskLimitValue": "2000000", "side": "" if pos == 0 else ("Buy" if pos > 0 else "Sell"),
            "size": num(abs(pos)), "positionValue": num(abs(pos) * avg), "leverage": "10",
            "markPrice": num(mark), "positionIM": num(notional / 10), "positionMM": num(notional / 200),
            "positionBalance": "0", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
            "unrealisedPnl": num(upl), "curRealisedPnl": "0", "cumRealisedPnl": "0", "liqPrice": "",
            "bustPrice": "", "tpslMode": "Full", "positionStatus": "Normal", "autoAddMargin": 0,
            "adlRankIndicator": 2 if pos else 0, "isReduceOnly": False, "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "", "createdTime": str(created), "updatedTime": str(updated),
            "seq": updated or -1,
        }
        # the stream names the average entry price ``entryPrice``, REST ``avgPrice`` (§6.6 samples)
        row["entryPrice" if stream else "avgPrice"] = num(avg) if pos else "0"
        return row

    def _wallet_row(self, assets: tuple[str, ...] | None, rest: bool) -> dict[str, Any]:
        upl = {"USDT": sum((self._upl(s) for s in self.account.instruments), Decimal("0"))}
        coins = []
        for ccy in sorted(self.account.balances()):
            if assets is not None and ccy not in assets:
                continue
            free, locked, _ = self.account.balance(ccy)
            total = free + locked
            coins.append({
                "coin": ccy, "equity": num(total + upl.get(ccy, Decimal(0))), "usdValue": "",
                "walletBalance": num(total), "free": "", "locked": num(locked), "spotHedgingQty": "0",
                "borrowAmount": "0", "availableToWithdraw": "", "accruedInterest": "0", "totalOrderIM": "0",
                "totalPositionIM": "0", "totalPositionMM": "0", "unrealisedPnl": num(upl.get(ccy, Decimal(0))),
                "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": True, "collateralSwitch": True,
                "spotBorrow": "0",
            })
        row: dict[str, Any] = {
            "accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0", "accountLTV": "0",
            "totalEquity": "", "totalWalletBalance": "", "totalMarginBalance": "", "totalAvailableBalance": "",
            "totalPerpUPL": num(upl["USDT"]), "totalInitialMargin": "0", "totalMaintenanceMargin": "0",
            "coin": coins,
        }
        return row

    def _upl(self, symbol: str) -> Decimal:
        pos, avg, _, _ = self.account.position(symbol)
        return (self.account.mark_price(symbol) - avg) * pos if pos else Decimal(0)

    # -- signed REST --------------------------------------------------------------------------------

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:
        denied = self._check_signature(raw_query, headers)
        if denied is not None:
            return denied
        if query.get("category", "linear") != "linear" and path not in ("/v5/account/wallet-balance",
                                                                        "/v5/account/transaction-log"):
            return _fail(200, 10001, "params error: category only support linear for this account")
        if path == "/v5/execution/list":
            return self._executions(query)
        if path == "/v5/account/wallet-balance":
            if query.get("accountType") != "UNIFIED":
                return _fail(200, 10001, "accountType only support UNIFIED.")
            wanted = tuple(query["coin"].split(",")) if query.get("coin") else None
            return _ok({"list": [self._wallet_row(wanted, True)]})
        if path == "/v5/account/transaction-log":
            return self._transaction_log(query)
        if not (query.get("symbol") or query.get("settleCoin") or query.get("baseCoin")):
            return _fail(200, 10001, "Params error: symbol or settleCoin is required")
        if path == "/v5/position/list":
            return self._positions(query)
        return self._open_orders(query)

    def _check_signature(self, raw_query: str, headers: Headers) -> RestResult | None:
        creds = self.account.credentials
        key = headers.get("X-BAPI-API-KEY")
        if not key or key != creds.api_key:
            return _fail(401, 10003, "API key is invalid.")
        ts = headers.get("X-BAPI-TIMESTAMP", "")
        window = headers.get("X-BAPI-RECV-WINDOW", "5000")
        if not ts.isdigit() or not window.isdigit():
            return _fail(401, 10002, "invalid request, please check your server timestamp or recv_window param")
        now = wall_ms()
        if not now - int(window) <= int(ts) < now + 1000:
            return _fail(401, 10002, "invalid request, please check your server timestamp or recv_window param")
        expected = hmac.new(creds.reveal_secret().encode(), (ts + key + window + raw_query).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "")):
            return _fail(401, 10004, "error sign! origin_string[...]")
        return None

    def _executions(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol")
        if symbol and symbol not in self.account.instruments:
            return _fail(200, 10001, "params error: symbol invalid")
        try:
            limit = int(query.get("limit", "50"))
            start = int(query["startTime"]) if query.get("startTime") else None
            end = int(query["endTime"]) if query.get("endTime") else None
        except ValueError:
            return _fail(200, 10001, "params error")
        if not 1 <= limit <= 100:
            return _fail(200, 10001, "params error: limit must be 1-100")
        now = self.account.now_ms()
        # §6.6: no times -> the last 7 days; only startTime -> [start, start + 7 d]
        if start is None and end is None:
            start, end = now - WINDOW_MS, now
        elif start is None:
            start = end - WINDOW_MS  # type: ignore[operator]
        elif end is None:
            end = start + WINDOW_MS
        if end < start or end - start > WINDOW_MS:
            return _fail(200, 10001, "params error: The time range between startTime and endTime cannot exceed 7 days")
        oldest = self.oldest_ms(RETENTION_MS, now_ms=now)
        rows = [f for f in self.account.fills(symbol or None) if start <= f.ts_ms <= end and f.ts_ms >= oldest]
        rows.sort(key=lambda f: f.ts_ms, reverse=True)  # newest first (fill times are unique per account)
        if query.get("cursor"):
            before = _cursor_ts(query["cursor"])
            if before is None:
                return _fail(200, 10001, "params error: cursor invalid")
            rows = [f for f in rows if f.ts_ms < before]
        page = rows[:limit]
        more = len(rows) > limit
        return _ok({"nextPageCursor": _cursor(page[-1].ts_ms) if more else "", "category": "linear",
                    "list": [self._exec_row(f) for f in page]})

    def _log_rows(self) -> list[dict[str, Any]]:
        """Every fill's ``TRADE`` row, oldest first (running USDT balance and position)."""
        cash = Decimal(self.profile.balances.get("USDT", "0"))
        size: dict[str, Decimal] = {}
        rows = []
        for f in self.account.fills():
            inst = self.account.instruments[f.symbol]
            signed = f.qty if f.side == "buy" else -f.qty
            size[f.symbol] = size.get(f.symbol, Decimal(0)) + signed
            cash += f.pnl - f.fee
            rows.append({
                "id": str(len(rows) + 1), "symbol": f.symbol, "category": "linear", "side": _side(f.side),
                "transactionTime": str(f.ts_ms), "type": "TRADE", "qty": num(f.qty), "size": num(size[f.symbol]),
                "currency": f.fee_currency, "tradePrice": num(f.price), "funding": "", "fee": num(f.fee),
                "cashFlow": num(f.pnl), "change": num(f.pnl - f.fee), "cashBalance": num(cash),
                "feeRate": inst.maker_fee if f.maker else inst.taker_fee, "bonusChange": "", "tradeId": f.trade_id,
                "orderId": f.order_id, "orderLinkId": f.client_order_id, "baseCoin": inst.base,
            })
        return rows

    def _transaction_log(self, query: Mapping[str, str]) -> RestResult:
        if query.get("accountType", "UNIFIED") != "UNIFIED":
            return _fail(200, 10001, "accountType only support UNIFIED.")
        try:
            limit = int(query.get("limit", "20"))
            start = int(query["startTime"]) if query.get("startTime") else None
            end = int(query["endTime"]) if query.get("endTime") else None
        except ValueError:
            return _fail(200, 10001, "params error")
        if not 1 <= limit <= 50:
            return _fail(200, 10001, "params error: limit must be 1-50")
        now = self.account.now_ms()
        if start is None and end is None:  # the last 24 h (event times may lead the clock by a
            start, end = now - DAY_MS, None  # few ms, ``max(clock, last + 1)``: they are "now")
        elif start is None:
            start = end - DAY_MS  # type: ignore[operator]
        elif end is None:
            end = start + DAY_MS
        if end is not None and (end < start or end - start > WINDOW_MS):
            return _fail(200, 10001, "params error: The time range between startTime and endTime cannot exceed 7 days")
        wanted = {k: query[k] for k in ("category", "currency", "baseCoin", "type") if query.get(k)}
        rows = [r for r in self._log_rows() if start <= int(r["transactionTime"])
                and (end is None or int(r["transactionTime"]) <= end) and all(r[k] == v for k, v in wanted.items())]
        rows.reverse()  # newest first (fill times are unique per account)
        if query.get("cursor"):
            before = _cursor_ts(query["cursor"])
            if before is None:
                return _fail(200, 10001, "params error: cursor invalid")
            rows = [r for r in rows if int(r["transactionTime"]) < before]
        page = rows[:limit]
        more = len(rows) > limit
        for r in page:
            del r["baseCoin"]  # a filter of ours, not a field of the row
        result = _ok({"list": page, "nextPageCursor": _cursor(int(page[-1]["transactionTime"])) if more else ""})
        result.body["time"] = now  # the venue's clock is the account clock here (module docstring)
        return result

    def _positions(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol")
        settle = query.get("settleCoin")
        rows = [self._position_row(s, False) for s, inst in self.account.instruments.items()
                if (not symbol or s == symbol) and (not settle or inst.quote == settle)]
        return _ok({"list": rows, "nextPageCursor": "", "category": "linear"})

    def _open_orders(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol")
        settle = query.get("settleCoin")
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            return _fail(200, 10001, "params error")
        if not 1 <= limit <= 50:
            return _fail(200, 10001, "params error: limit must be 1-50")
        rows = [o for o in self.account.open_orders(symbol or None)
                if not settle or self.account.instruments[o.symbol].quote == settle]
        rows.sort(key=lambda o: o.created_ms, reverse=True)  # newest first
        if query.get("cursor"):
            before = _cursor_ts(query["cursor"])
            rows = [o for o in rows if before is not None and o.created_ms < before]
        page = rows[:limit]
        more = len(rows) > limit
        return _ok({"list": [self._order_row(o) for o in page],
                    "nextPageCursor": _cursor(page[-1].created_ms) if more else "", "category": "linear"})
