"""Binance spot private side: the WS API user data stream and the signed REST routes (§3.6).

- WS API (§3.6): ``/ws-api/v3`` on the binance server's port (real
  ``wss://ws-api.binance.com:443/ws-api/v3``). ``userDataStream.subscribe.signature`` with
  ``params {apiKey, timestamp, signature}``, ``signature = hex(HMAC_SHA256(secret,
  "apiKey=K&timestamp=T"))`` over the key-sorted, urlencoded params (ccxt
  ``pro/binance.py sign_params``), answers ``{"id","status":200,"result":{"subscriptionId":N},
  "rateLimits":[..]}`` with N = 0, 1, .. per connection. Errors (``status`` 400/401): ``-1022``
  bad signature, ``-2015`` unknown key, ``-1021`` timestamp outside ``recvWindow`` (5000 ms) or
  more than 1000 ms ahead. Events arrive as ``{"subscriptionId":N,"event":{..}}``:
  ``executionReport`` (every order change; a TRADE report is a fill keyed ``(s, t)``, §2.5) and
  ``outboundAccountPosition`` (the assets that changed). ``eventStreamTerminated`` ends a
  subscription (``userDataStream.unsubscribe``, the ``auth_expiry`` fault) while the socket
  stays open; at ``private_session_lifetime_s`` (24 h real) it is sent and the connection is
  closed with 1000. Server protocol pings (the public dialect's pinger) keep it alive.
- REST (§3.6, §2.4), signed as ccxt 4.5.90 ``binance.sign()`` does: query ``timestamp`` (+
  ``recvWindow``), ``signature`` = hex HMAC-SHA256 of the query string before it, header
  ``X-MBX-APIKEY``. ``/api/v3/myTrades`` (symbol required; ``limit`` ≤ 1000, default 500;
  ``fromId`` ≥; ``endTime − startTime`` ≤ 24 h (``-1127``); only the documented parameter
  combinations (``-1128``)), ``/api/v3/account`` (``updateTime`` = last change),
  ``/api/v3/openOrders`` (symbol optional).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

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
    SimFill,
    SimOrder,
    wall_ms,
)
from ..private import DAY_MS, PrivateDialect
from ..server import ClientConn, Frame, RestResult

__all__ = ["BINANCE_ACCOUNT", "BinancePrivate"]

#: §3.6 Binance spot: the book symbols, fee in the quote asset (contract), 0.1%
#: (``makerCommission`` 10); integer trade and order ids
BINANCE_ACCOUNT = AccountProfile(
    venue="binance",
    instruments=(
        AccountInstrument(symbol="BTCUSDT", kind=InstrumentKind.SPOT, base="BTC", quote="USDT", price_decimals=2,
                          lot="0.00001", typical_qty="0.01", ref_symbol="BTCUSDT", ref_price="61837.63"),
        AccountInstrument(symbol="ETHUSDT", kind=InstrumentKind.SPOT, base="ETH", quote="USDT", price_decimals=2,
                          lot="0.0001", typical_qty="0.1", ref_symbol="ETHUSDT", ref_price="3050.12"),
    ),
    balances={"BTC": "2", "ETH": "20", "USDT": "250000", "BNB": "0"},
    uid="354937868",
    first_trade_id=312_000_001,
    first_order_id=28_000_001,
)

_STATUS = {
    OrderState.NEW: "NEW",
    OrderState.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    OrderState.FILLED: "FILLED",
    OrderState.CANCELED: "CANCELED",
}
#: §3.6: the only parameter combinations myTrades accepts (besides symbol and limit)
_MYTRADES_COMBINATIONS = (
    frozenset(), frozenset({"orderId"}), frozenset({"startTime"}), frozenset({"endTime"}), frozenset({"fromId"}),
    frozenset({"startTime", "endTime"}), frozenset({"orderId", "fromId"}),
)
_RATE_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 2}]


def d8(value: Decimal | None) -> str:
    """Binance prints every amount with 8 decimals."""
    return f"{(value or Decimal('0')).quantize(Decimal('0.00000001')):f}"


class _Session:
    """One WS API connection's user data subscriptions."""

    __slots__ = ("subs", "next_sub")

    def __init__(self) -> None:
        self.subs: list[int] = []
        self.next_sub = 0


def _err(status: int, code: int, msg: str) -> RestResult:
    return RestResult(status, {"code": code, "msg": msg})


def _mandatory(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


class BinancePrivate(PrivateDialect):
    """Binance spot account stream and signed REST (see the module docstring)."""

    ws_path = "/ws-api/v3"
    profile = BINANCE_ACCOUNT
    rest_paths = frozenset({"/api/v3/myTrades", "/api/v3/account", "/api/v3/openOrders"})

    # -- WebSocket API ----------------------------------------------------------------------

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._lifetime(conn))]

    async def _lifetime(self, conn: ClientConn) -> None:
        # §3.6: a WS API connection lives at most 24 h; the server ends it.
        await asyncio.sleep(self.server.sim.config.private_session_lifetime_s)
        session: _Session | None = conn.session
        texts = [self._terminated(sub) for sub in (session.subs if session else [])]
        if session is not None:
            session.subs.clear()
        for text in texts[:-1]:
            conn.send(Frame(text))
        conn.send(Frame(texts[-1] if texts else "", close_code=1000))
        self.server.sim.notify()

    def _terminated(self, sub: int) -> str:
        return orjson.dumps({"subscriptionId": sub, "event": {"e": "eventStreamTerminated", "E": self.account.now_ms()}}).decode()

    def on_open(self, conn: ClientConn) -> None:
        conn.session = _Session()

    def _reply(self, conn: ClientConn, req_id: Any, result: Any) -> None:
        self.send_control(conn, {"id": req_id, "status": 200, "result": result, "rateLimits": _RATE_LIMITS})

    def _error(self, conn: ClientConn, req_id: Any, status: int, code: int, msg: str) -> None:
        self.send_control(conn, {"id": req_id, "status": status, "error": {"code": code, "msg": msg},
                                 "rateLimits": _RATE_LIMITS})

    def on_text(self, conn: ClientConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(conn, None, 400, -1000, "Malformed request: invalid JSON.")
            return
        if not isinstance(msg, dict):
            self._error(conn, None, 400, -1000, "Malformed request.")
            return
        req_id, method = msg.get("id"), msg.get("method")
        params = msg.get("params") or {}
        session: _Session = conn.session
        if method == "userDataStream.subscribe.signature":
            problem = self._check_ws_signature(params)
            if problem is not None:
                self._error(conn, req_id, *problem)
                return
            sub = session.next_sub
            session.next_sub += 1
            session.subs.append(sub)
            self._reply(conn, req_id, {"subscriptionId": sub})
        elif method == "userDataStream.unsubscribe":
            wanted = params.get("subscriptionId") if isinstance(params, dict) else None
            gone = [s for s in session.subs if wanted is None or s == wanted]
            session.subs = [s for s in session.subs if s not in gone]
            self._reply(conn, req_id, {})
            for sub in gone:  # §3.6: eventStreamTerminated follows userDataStream.unsubscribe
                conn.send(Frame(self._terminated(sub)))
        elif method == "userDataStream.subscribe":
            # needs session.logon, which takes Ed25519 keys only (§3.6); HMAC keys cannot log on
            self._error(conn, req_id, 401, -1002, "You are not authorized to execute this request.")
        elif method == "ping":
            self._reply(conn, req_id, {})
        elif method == "time":
            self._reply(conn, req_id, {"serverTime": wall_ms()})
        else:
            self._error(conn, req_id, 400, -1020, "This operation is not supported.")

    def _check_ws_signature(self, params: Any) -> tuple[int, int, str] | None:
        if not isinstance(params, dict):
            return 400, -1102, _mandatory("apiKey")
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                return 400, -1102, _mandatory(name)
        creds = self.account.credentials
        if params["apiKey"] != creds.api_key:
            return 401, -2015, "Invalid API-key, IP, or permissions for action."
        problem = self._check_timestamp(params.get("timestamp"), params.get("recvWindow"))
        if problem is not None:
            return problem
        # the key-sorted, urlencoded params without the signature (ccxt pro sign_params)
        payload = urlencode(sorted((k, _wire(v)) for k, v in params.items() if k != "signature"))
        if not _hmac_ok(creds.reveal_secret(), payload, str(params["signature"])):
            return 400, -1022, "Signature for this request is not valid."
        return None

    def _check_timestamp(self, raw_ts: Any, raw_window: Any) -> tuple[int, int, str] | None:
        try:
            ts = int(raw_ts)
            window = int(raw_window) if raw_window not in (None, "") else self.server.sim.config.private_recv_window_ms
        except (TypeError, ValueError):
            return 400, -1102, _mandatory("timestamp")
        now = wall_ms()
        if ts > now + 1000 or now - ts > window:
            return 400, -1021, "Timestamp for this request is outside of the recvWindow."
        return None

    def end_session(self, conn: ClientConn) -> bool:
        """``auth_expiry``: every subscription gets ``eventStreamTerminated``; the socket stays."""
        session: _Session | None = conn.session
        if session is None or not session.subs:
            return False
        for sub in session.subs:
            conn.send(Frame(self._terminated(sub)))
        session.subs.clear()
        self.server.sim.notify()
        return True

    # -- pushes -----------------------------------------------------------------------------

    def publish(self, changes: list[AccountChange]) -> None:
        targets = [(c, c.session) for c in self.private_conns() if c.session is not None and c.session.subs]
        if not targets:
            return
        for change in changes:
            if isinstance(change, OrderChanged):
                event = self._execution_report(change)
                private = True
            elif isinstance(change, BalancesChanged):
                event = self._account_position(change)
                private = False
            else:  # spot only: no positions on this account
                continue
            for conn, session in targets:
                for sub in session.subs:
                    frame = {"subscriptionId": sub, "event": event}
                    if private:
                        self.send_event(conn, frame)
                    else:
                        self.send_control(conn, frame)

    def _execution_report(self, change: OrderChanged) -> dict[str, Any]:
        o, f = change.order, change.fill
        if f is not None:
            exec_type = "TRADE"
        elif o.state is OrderState.CANCELED:
            exec_type = "CANCELED"
        else:
            exec_type = "NEW"
        return {
            "e": "executionReport", "E": change.ts_ms, "s": o.symbol, "c": o.client_order_id,
            "S": o.side.upper(), "o": o.order_type.upper(), "f": "GTC", "q": d8(o.qty), "p": d8(o.price),
            "P": d8(None), "F": d8(None), "g": -1, "C": "", "x": exec_type, "X": _STATUS[o.state], "r": "NONE",
            "i": int(o.order_id), "l": d8(f.qty if f else None), "z": d8(o.filled), "L": d8(f.price if f else None),
            "n": d8(f.fee if f else None), "N": f.fee_currency if f else None, "T": change.ts_ms,
            "t": int(f.trade_id) if f else -1, "I": self.account.next_exec_id(),
            "w": o.is_open and o.order_type == "limit", "m": bool(f and f.maker), "M": False,
            "O": o.created_ms, "Z": d8(o.filled_quote), "Y": d8(f.quote_qty if f else None), "Q": d8(None),
            "W": o.created_ms, "V": "EXPIRE_MAKER",
        }

    def _account_position(self, change: BalancesChanged) -> dict[str, Any]:
        rows = []
        for asset in change.assets:
            free, locked, _ = self.account.balance(asset)
            rows.append({"a": asset, "f": d8(free), "l": d8(locked)})
        return {"e": "outboundAccountPosition", "E": change.ts_ms, "u": self.account.updated_ms, "B": rows}

    # -- signed REST ------------------------------------------------------------------------

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:
        denied = self._check_rest_signature(raw_query, query, headers)
        if denied is not None:
            return denied
        if path == "/api/v3/myTrades":
            return self._my_trades(query)
        if path == "/api/v3/account":
            return self._account(query)
        return self._open_orders(query)

    def _check_rest_signature(self, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult | None:
        creds = self.account.credentials
        key = headers.get("X-MBX-APIKEY")
        if not key:
            return _err(401, -2014, "API-key format invalid.")
        if key != creds.api_key:
            return _err(401, -2015, "Invalid API-key, IP, or permissions for action.")
        for name in ("timestamp", "signature"):
            if not query.get(name):
                return _err(400, -1102, _mandatory(name))
        problem = self._check_timestamp(query.get("timestamp"), query.get("recvWindow"))
        if problem is not None:
            return _err(*problem)
        # ccxt signs the urlencoded query exactly as sent, then appends &signature=
        payload = "&".join(part for part in raw_query.split("&") if not part.startswith("signature="))
        if not _hmac_ok(creds.reveal_secret(), payload, query["signature"]):
            return _err(400, -1022, "Signature for this request is not valid.")
        return None

    def _trades_query(self, query: Mapping[str, str]) -> RestResult | tuple[str, int, dict[str, int]]:
        """The trades request's ``symbol`` (required, listed), ``limit`` (1-1000, default 500)
        and integer parameters (``orderId``, ``startTime``, ``endTime``, ``fromId``): spot's
        ``myTrades`` and USD-M's ``userTrades`` check them alike; the refusal otherwise."""
        symbol = query.get("symbol")
        if not symbol:
            return _err(400, -1102, _mandatory("symbol"))
        if symbol not in self.account.instruments:
            return _err(400, -1121, "Invalid symbol.")
        try:
            limit = int(query.get("limit", "500"))
            ints = {k: int(query[k]) for k in ("orderId", "startTime", "endTime", "fromId") if k in query}
        except ValueError:
            return _err(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= 1000:
            return _err(400, -1130, "Data sent for parameter 'limit' is not valid.")
        return symbol, limit, ints

    def _served_trades(self, symbol: str, ints: Mapping[str, int], real_window_ms: int | None, *,
                       now_ms: int | None = None) -> list[SimFill]:
        """``symbol``'s trades the history still serves at ``now_ms`` (:meth:`oldest_ms`), of
        ``orderId`` when given, ascending."""
        oldest = self.oldest_ms(real_window_ms, now_ms=now_ms)
        rows = [f for f in self.account.fills(symbol) if f.ts_ms >= oldest]
        if "orderId" in ints:
            rows = [f for f in rows if f.order_id == str(ints["orderId"])]
        return rows

    def _my_trades(self, query: Mapping[str, str]) -> RestResult:
        checked = self._trades_query(query)
        if isinstance(checked, RestResult):
            return checked
        symbol, limit, ints = checked
        if frozenset(ints) not in _MYTRADES_COMBINATIONS:
            return _err(400, -1128, "Combination of optional parameters invalid.")
        start, end = ints.get("startTime"), ints.get("endTime")
        if start is not None and end is not None and end - start > DAY_MS:
            return _err(400, -1127, "More than 24 hours between startTime and endTime.")
        if start is not None and end is None:
            end = start + DAY_MS
        elif end is not None and start is None:
            start = end - DAY_MS
        rows = self._served_trades(symbol, ints, None)
        if "fromId" in ints:
            rows = [f for f in rows if int(f.trade_id) >= ints["fromId"]][:limit]
        elif start is not None and end is not None:
            rows = [f for f in rows if start <= f.ts_ms <= end][:limit]
        else:  # no cursor: the most recent trades, ascending
            rows = rows[-limit:]
        return RestResult(200, [self._trade_row(f) for f in rows])

    def _trade_row(self, f: SimFill) -> dict[str, Any]:
        return {
            "symbol": f.symbol, "id": int(f.trade_id), "orderId": int(f.order_id), "orderListId": -1,
            "price": d8(f.price), "qty": d8(f.qty), "quoteQty": d8(f.quote_qty), "commission": d8(f.fee),
            "commissionAsset": f.fee_currency, "time": f.ts_ms, "isBuyer": f.side == "buy", "isMaker": f.maker,
            "isBestMatch": True,
        }

    def _account(self, query: Mapping[str, str]) -> RestResult:
        omit_zero = query.get("omitZeroBalances", "false").lower() == "true"
        balances = []
        for asset in sorted(self.account.balances()):
            free, locked, _ = self.account.balance(asset)
            if omit_zero and free == 0 and locked == 0:
                continue
            balances.append({"asset": asset, "free": d8(free), "locked": d8(locked)})
        return RestResult(200, {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.account.updated_ms,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": int(self.account.uid),
        })

    def _open_orders(self, query: Mapping[str, str]) -> RestResult:
        symbol = query.get("symbol")
        if symbol is not None and symbol not in self.account.instruments:
            return _err(400, -1121, "Invalid symbol.")
        return RestResult(200, [self._order_row(o) for o in self.account.open_orders(symbol)])

    def _order_row(self, o: SimOrder) -> dict[str, Any]:
        return {
            "symbol": o.symbol, "orderId": int(o.order_id), "orderListId": -1, "clientOrderId": o.client_order_id,
            "price": d8(o.price), "origQty": d8(o.qty), "executedQty": d8(o.filled),
            "cummulativeQuoteQty": d8(o.filled_quote), "status": _STATUS[o.state], "timeInForce": "GTC",
            "type": o.order_type.upper(), "side": o.side.upper(), "stopPrice": d8(None), "icebergQty": d8(None),
            "time": o.created_ms, "updateTime": o.updated_ms, "isWorking": True, "origQuoteOrderQty": d8(None),
            "workingTime": o.created_ms, "selfTradePreventionMode": "EXPIRE_MAKER",
        }


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hmac_ok(secret: str, payload: str, signature: str) -> bool:
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    # bytes: compare_digest refuses non-ASCII str (TypeError), and a hostile signature may be one
    return hmac.compare_digest(expected.encode(), signature.lower().encode())
