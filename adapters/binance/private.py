"""Binance spot's private side: the WS API user data stream and account-recovery REST calls.

Implements :class:`bookkeeper.ports.AccountAdapter` as :data:`BINANCE_ACCOUNT`. Pure: the driver
passes the clock (``now_ms``) and request ids; ccxt signs the REST calls.

Theory of operation (exchange-protocols.md §3.6)
------------------------------------------------
- The listenKey user data stream for spot is gone (2026-02-20); events come over the WS API,
  ``wss://ws-api.binance.com:443/ws-api/v3``. One request, ``userDataStream.subscribe.signature``
  (signed ``apiKey`` + ``timestamp``; what ccxt uses for spot), both logs in and subscribes: its
  answer ``{"status": 200, "result": {"subscriptionId": N}}`` is ``LOGGED_IN`` and completes the
  subscription (no separate subscribe frames, no channels to wait for).
- Events arrive as ``{"subscriptionId": N, "event": {...}}``. ``executionReport`` is an
  ``OrderUpdate`` every time and also a ``Fill`` when ``x == "TRADE"`` (fill key ``(s, t)``,
  §2.5; ``t`` is -1 otherwise). ``outboundAccountPosition`` is a ``BalanceReport`` (total =
  free + locked), ``balanceUpdate`` a ``BalanceUpdate``. ``eventStreamTerminated`` (after a
  logout, an unsubscribe, or the 24 h end of the connection) is ``SESSION_EXPIRED``;
  ``serverShutdown`` (§3.5) is ``SHUTDOWN_NOTICE``.
- The server pings every 20 s and websockets answers (§3.5): no app-level ping. A WS API
  connection lives at most 24 h (§3.6), hence ``session_lifetime_s = 86400``.
- REST recovery (§2.4 table, §3.6): ``GET /api/v3/myTrades`` (``limit`` <= 1000, ``fromId`` >=,
  ``endTime - startTime`` <= 24 h, ``fromId`` not combinable with a time range). A replay
  from a cursor with a trade id pages gaplessly by ``fromId = t + 1``; without one (just after
  a full sync) it walks 24 h slices of ``[since, until]`` and switches to ``fromId`` paging as
  soon as a page comes back full. No derivative positions on spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from bookkeeper.capabilities import FillHistory, FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BalanceReport,
    BalanceUpdate,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
    PrivateEvent,
)
from bookkeeper.ports import FillsPage, PrivateDecoder, RestCall
from bookkeeper.types import TradeSide

from .._common import FrameDecoder, _excerpt, _r, loads
from .._private import (
    convert,
    guarded_rest,
    hmac_sha256_hex,
    money,
    ms_ns,
    opt_text,
    order_status,
    quantity,
)
from .private_schemas import (
    Account,
    BalanceUpdateEvent,
    ExecutionReport,
    MyTrade,
    OpenOrder,
    OutboundAccountPosition,
    RequestAnswer,
)

if TYPE_CHECKING:  # the cursor type of the AccountAdapter signature (a plain value, never built here)
    from bookkeeper.actions import FillCursor

__all__ = ["BINANCE_ACCOUNT", "BinanceAccount", "SlicedCall", "decode_private"]

EXCHANGE = "binance"
CCXT_ID = "binance"
#: §3.6: the WS API root (port 9443 also works); the path is added by ``private_ws_url``
WS_API_ROOT = "wss://ws-api.binance.com:443"
WS_API_PATH = "/ws-api/v3"
LOGIN_METHOD = "userDataStream.subscribe.signature"
DAY_MS = 86_400_000
#: §3.6: ``myTrades`` ``limit`` maximum (default 500)
PAGE_SIZE = 1000

HISTORY = FillHistory(
    page_size=PAGE_SIZE,
    paging=FillPaging.FROM_ID,  # fromId >= t, gapless (§3.6)
    retention_ns=None,  # no documented limit for spot myTrades (§2.4 table)
    max_span_ns=DAY_MS * 1_000_000,  # endTime - startTime <= 24 h
)

#: ``X`` (stream) / ``status`` (REST) -> OrderStatus. PENDING_NEW: an OTO/OPO order not yet
#: working (still open); EXPIRED_IN_MATCH: expired by self-trade prevention.
_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_SIDES: dict[str, TradeSide] = {"BUY": TradeSide.BUY, "SELL": TradeSide.SELL}

#: WS API error codes that refuse the credentials themselves (retrying them unchanged is
#: pointless): -1002 unauthorized, -1021 timestamp outside recvWindow (clock skew), -1022 bad
#: signature, -2014 malformed API key, -2015 invalid key / IP / permissions
#: (binance-spot-api-docs ``errors.md``).
AUTH_ERROR_CODES = frozenset({-1002, -1021, -1022, -2014, -2015})


def _fail(message: str, raw: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(message, exchange=EXCHANGE, raw=_excerpt(raw), symbol=symbol)


def _side(value: str, raw: Any, symbol: str | None) -> TradeSide:
    side = _SIDES.get(value)
    if side is None:
        raise _fail(f"bad side {_r(value)}", raw, symbol)
    return side


def _order_price(text: str, raw: Any, symbol: str) -> Decimal | None:
    """An order's limit price; Binance writes ``"0.00000000"`` for market orders."""
    price = quantity(text, "price", EXCHANGE, raw, symbol)
    return price if price != 0 else None


def _order_update(*, symbol: str, order_id: int, side: str, status: str, qty: str, filled: str, price: str,
                  client_order_id: str | None, ts_ns: int, raw: Any, ts_recv_ns: int) -> OrderUpdate:
    q = quantity(qty, "order qty", EXCHANGE, raw, symbol)
    z = quantity(filled, "filled qty", EXCHANGE, raw, symbol)
    if z > q:
        raise _fail(f"filled qty {z} exceeds order qty {q}", raw, symbol)
    return OrderUpdate(symbol=symbol, order_id=str(order_id), side=_side(side, raw, symbol),
                       status=order_status(_STATUS, status, EXCHANGE, raw, symbol), qty=q, filled_qty=z,
                       price=_order_price(price, raw, symbol), client_order_id=client_order_id, ts_exchange_ns=ts_ns,
                       ts_recv_ns=ts_recv_ns)


def _fill(*, symbol: str, trade_id: int, order_id: int, side: TradeSide, price: str, qty: str, fee: str,
          fee_currency: str | None, ts_ns: int, raw: Any, ts_recv_ns: int) -> Fill:
    if trade_id < 0:
        raise _fail(f"trade without a trade id ({trade_id})", raw, symbol)
    px = quantity(price, "fill price", EXCHANGE, raw, symbol)
    q = quantity(qty, "fill qty", EXCHANGE, raw, symbol)
    if px == 0 or q == 0:
        raise _fail(f"fill with zero price or quantity ({price} x {qty})", raw, symbol)
    # Binance's commission is positive when charged (the ledger's sign, events.Fill)
    return Fill(symbol=symbol, fill_id=str(trade_id), order_id=str(order_id), side=side, price=px, qty=q,
                fee=money(fee, "commission", EXCHANGE, raw, symbol), fee_currency=opt_text(fee_currency),
                ts_exchange_ns=ts_ns, ts_recv_ns=ts_recv_ns)


# ----------------------------------------------------------------------------- the stream


def parse_execution_report(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``executionReport`` -> ``[Fill, OrderUpdate]`` for a trade, ``[OrderUpdate]`` otherwise.

    Raises:
        AdapterError: a field missing or of the wrong type, a bad decimal, an unknown status,
            a trade without a trade id, cumulative fill above the order quantity.
    """
    r = convert(event, ExecutionReport, EXCHANGE, frame)
    ts = ms_ns(r.T, "T", EXCHANGE, frame, r.s) or ms_ns(r.E, "E", EXCHANGE, frame, r.s)
    # a cancel report's ``c`` is the cancel request's own id; ``C`` names the order's
    client_id = opt_text(r.C) or opt_text(r.c)
    update = _order_update(symbol=r.s, order_id=r.i, side=r.S, status=r.X, qty=r.q, filled=r.z, price=r.p,
                           client_order_id=client_id, ts_ns=ts, raw=frame, ts_recv_ns=ts_recv_ns)
    if r.x != "TRADE":
        return [update]
    fill = _fill(symbol=r.s, trade_id=r.t, order_id=r.i, side=update.side, price=r.L, qty=r.l, fee=r.n,
                 fee_currency=r.N, ts_ns=ts, raw=frame, ts_recv_ns=ts_recv_ns)
    return [fill, update]


def parse_account_position(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``outboundAccountPosition`` -> ``BalanceReport`` (total = free + locked; ``u`` = the
    account's last update time).

    Raises:
        AdapterError: malformed event.
    """
    r = convert(event, OutboundAccountPosition, EXCHANGE, frame)
    balances = {b.a: money(b.f, "free", EXCHANGE, frame) + money(b.l, "locked", EXCHANGE, frame) for b in r.B}
    ts = ms_ns(r.u, "u", EXCHANGE, frame) or ms_ns(r.E, "E", EXCHANGE, frame)
    return [BalanceReport(balances=balances, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)]


def parse_balance_update(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``balanceUpdate`` -> ``BalanceUpdate``. Binance gives the event no id: the update id is
    composed from what identifies it (asset, clear time, delta as written).

    Raises:
        AdapterError: malformed event.
    """
    r = convert(event, BalanceUpdateEvent, EXCHANGE, frame)
    return [BalanceUpdate(currency=r.a, delta=money(r.d, "balance delta", EXCHANGE, frame),
                          update_id=f"{r.a}:{r.T}:{r.d}", ts_exchange_ns=ms_ns(r.T, "T", EXCHANGE, frame),
                          ts_recv_ns=ts_recv_ns)]


def _control(kind: PrivateControlKind, message: str) -> Any:
    def parse(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
        return [PrivateControl(kind=kind, message=message, ts_recv_ns=ts_recv_ns)]

    return parse


#: event type ``e`` -> parser; any other event (``listStatus``, ``externalLockUpdate``...) -> []
_EVENTS = {
    "executionReport": parse_execution_report,
    "outboundAccountPosition": parse_account_position,
    "balanceUpdate": parse_balance_update,
    "eventStreamTerminated": _control(PrivateControlKind.SESSION_EXPIRED, "eventStreamTerminated"),
    # the listenKey-era spelling of the same end (still what the USD-M stream sends, §4.6)
    "listenKeyExpired": _control(PrivateControlKind.SESSION_EXPIRED, "listenKeyExpired"),
    "serverShutdown": _control(PrivateControlKind.SHUTDOWN_NOTICE, "serverShutdown"),
}


def parse_answer(obj: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """A WS API request answer. ``status 200`` with ``result.subscriptionId`` is the answer to
    ``userDataStream.subscribe.signature``: ``LOGGED_IN``. An error with a credentials code (or
    HTTP 401) is ``AUTH_REJECTED``, any other error ``ERROR`` (rate limits -1003/429 are not the
    credentials' fault). Other successful answers yield ``[]``.

    Raises:
        AdapterError: malformed answer.
    """
    r = convert(obj, RequestAnswer, EXCHANGE, frame)
    if r.status == 200 and r.error is None:
        sub = r.result.get("subscriptionId") if type(r.result) is dict else None
        if sub is None:
            return []
        if type(sub) is not int:
            raise _fail(f"subscriptionId must be an integer, got {_r(sub)}", frame)
        return [PrivateControl(kind=PrivateControlKind.LOGGED_IN, message=f"subscriptionId {sub}",
                               ts_recv_ns=ts_recv_ns)]
    code = r.error.code if r.error is not None else None
    message = (r.error.msg if r.error is not None else "")[:200] or f"status {r.status}"
    auth = code in AUTH_ERROR_CODES or r.status == 401
    return [PrivateControl(kind=PrivateControlKind.AUTH_REJECTED if auth else PrivateControlKind.ERROR,
                           code=None if code is None else str(code), message=message, ts_recv_ns=ts_recv_ns)]


def _parse_event(event: Any, frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    if type(event) is not dict:
        raise _fail("event is not an object", frame)
    kind = event.get("e")
    if type(kind) is not str:
        raise _fail(f"event type e must be a string, got {_r(kind)}", frame)
    parse = _EVENTS.get(kind)
    return parse(event, frame, ts_recv_ns) if parse is not None else []


def decode_private(frame: bytes | str, ts_recv_ns: int = 0) -> list[PrivateEvent]:
    """Translate one WS API frame: a user data event (``{"subscriptionId", "event"}``, or a bare
    event), or a request answer (``{"id", "status", ...}``). Anything else yields ``[]``.

    Raises:
        AdapterError: invalid JSON or a malformed event / answer.
    """
    obj = loads(frame, EXCHANGE)
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    if "event" in obj:
        return _parse_event(obj["event"], frame, ts_recv_ns)
    if "status" in obj:
        return parse_answer(obj, frame, ts_recv_ns)
    if "e" in obj:
        return _parse_event(obj, frame, ts_recv_ns)
    return []


# ----------------------------------------------------------------------------- REST


@dataclass(frozen=True, slots=True, kw_only=True)
class SlicedCall(RestCall):
    """A ``myTrades`` request for one ≤ 24 h slice of a replay's time range, remembering where
    the range ends (``until_ms``: not a request parameter, ccxt never sees it) so that
    :meth:`BinanceAccount.parse_fills_page` can ask for the next slice. ``AccountAdapter``'s
    ``parse_fills_page`` gets only the call, and Binance answers an empty slice with ``[]``."""

    until_ms: int


def _body(body: Any) -> Any:
    return loads(body, EXCHANGE) if isinstance(body, (bytes, bytearray, str)) else body


def _slice(symbol: str, start_ms: int, until_ms: int, limit: int) -> SlicedCall:
    """The slice ``[start, min(start + 24 h, until)]`` (``endTime - startTime <= 24 h``, §3.6)."""
    end = max(start_ms, min(start_ms + DAY_MS, until_ms))
    return SlicedCall(ccxt_id=CCXT_ID, method="private_get_mytrades", until_ms=until_ms,
                      params={"symbol": symbol, "startTime": start_ms, "endTime": end, "limit": limit})


def _from_id(symbol: str, from_id: int, limit: int) -> RestCall:
    return RestCall(ccxt_id=CCXT_ID, method="private_get_mytrades",
                    params={"symbol": symbol, "fromId": from_id, "limit": limit})


class BinanceAccount:
    """Binance spot's :class:`~bookkeeper.ports.AccountAdapter` (see the module docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    #: the ccxt market types this account trades (spot only: the WS API user data is spot's)
    market_types: tuple[str, ...] = ("spot",)
    history = HISTORY
    #: §3.6: a WS API connection lives at most 24 h
    session_lifetime_s: float | None = 86_400.0
    #: §3.5: the server pings every 20 s; websockets answers with pongs
    ping_interval_s: float | None = None
    pong_timeout_s: float | None = None

    def __repr__(self) -> str:
        return f"<AccountAdapter {self.name!r}>"

    def default_private_ws_root(self) -> str:
        """``wss://ws-api.binance.com:443`` (§3.6)."""
        return WS_API_ROOT

    def private_ws_url(self, root: str) -> str:
        """``{root}/ws-api/v3``."""
        return root.rstrip("/") + WS_API_PATH

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt's ``urls.api.private`` (``myTrades``, ``account``, ``openOrders``; ccxt signs
        them) and ``urls.api.public`` pointed at ``base_url`` (a simulator)."""
        base = base_url.rstrip("/")
        return {"urls": {"api": {"public": f"{base}/api/v3", "private": f"{base}/api/v3"}}}

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """``userDataStream.subscribe.signature`` signed at ``now_ms``: ``signature =
        hex(HMAC_SHA256(secret, "apiKey=K&timestamp=T"))`` over the key-sorted parameters, as
        ccxt's ``pro/binance.py: sign_params`` (``rawencode(keysort(...))``, no recvWindow: the
        venue's default 5000 ms applies).

        Returns:
            One text frame; it holds the key and the signature, never the secret.
        """
        params: dict[str, Any] = {"apiKey": credentials.api_key, "timestamp": int(now_ms)}
        query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        params["signature"] = hmac_sha256_hex(credentials.reveal_secret(), query)
        return [orjson.dumps({"id": request_id, "method": LOGIN_METHOD, "params": params}).decode()]

    def subscribe_messages(self, *, request_id: str) -> list[str]:
        """``[]``: the login request subscribes."""
        return []

    def subscribe_channels(self) -> frozenset[str]:
        """Empty: ``LOGGED_IN`` completes the subscription."""
        return frozenset()

    def ping_message(self) -> str | None:
        """``None``: protocol pings (the server's) suffice (§3.5)."""
        return None

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder (stateless; every frame is self-describing). Raises only
        :class:`AdapterError` on malformed frames (``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """``myTrades`` from ``fromId = cursor.trade_id + 1`` when the cursor has a numeric trade
        id (gapless, §3.6), else the first ≤ 24 h slice of ``[since_ms, until_ms]``."""
        tid = cursor.trade_id
        if tid is not None and tid.isascii() and tid.isdigit():
            return _from_id(symbol, int(tid) + 1, PAGE_SIZE)
        return _slice(symbol, max(since_ms, 0), max(until_ms, since_ms, 0), PAGE_SIZE)

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """A ``myTrades`` answer. Next page: a full page continues at ``fromId = last id + 1``
        (also inside a time slice: ``fromId`` cannot be combined with a time range, and it is
        gapless); a short page ends a ``fromId`` replay, and ends a time slice, after which the
        next slice follows until ``until_ms`` is covered.

        Raises:
            AdapterError: malformed body (not a list of trade rows, bad decimals...).
        """
        rows = convert(_body(body), list[MyTrade], EXCHANGE, body, symbol)
        fills = tuple(
            _fill(symbol=r.symbol, trade_id=r.id, order_id=r.orderId,
                  side=TradeSide.BUY if r.isBuyer else TradeSide.SELL,
                  price=r.price, qty=r.qty, fee=r.commission, fee_currency=r.commissionAsset,
                  ts_ns=ms_ns(r.time, "time", EXCHANGE, body, r.symbol), raw=body, ts_recv_ns=ts_recv_ns)
            for r in rows)
        params = call.params
        limit = params.get("limit", PAGE_SIZE)
        if not isinstance(limit, int) or limit < 1:
            limit = PAGE_SIZE
        if rows and len(rows) >= limit:
            return FillsPage(fills=fills, next_call=_from_id(symbol, max(r.id for r in rows) + 1, limit))
        end = params.get("endTime")
        until = call.until_ms if isinstance(call, SlicedCall) else end
        if "fromId" in params or not isinstance(end, int) or not isinstance(until, int) or end >= until:
            return FillsPage(fills=fills, next_call=None)
        return FillsPage(fills=fills, next_call=_slice(symbol, end + 1, until, limit))

    # -- full sync ----------------------------------------------------------------------

    def balances_call(self) -> RestCall:
        """``GET /api/v3/account``."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_account", params={})

    @guarded_rest(EXCHANGE)
    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """``balances`` totals (free + locked) per asset; ``updateTime`` as ``ts_exchange_ns``.

        Raises:
            AdapterError: malformed body.
        """
        acct = convert(_body(body), Account, EXCHANGE, body)
        balances = {b.asset: money(b.free, "free", EXCHANGE, body) + money(b.locked, "locked", EXCHANGE, body)
                    for b in acct.balances}
        return BalanceReport(balances=balances, ts_exchange_ns=ms_ns(acct.updateTime, "updateTime", EXCHANGE, body),
                             ts_recv_ns=ts_recv_ns)

    def account_mark_call(self) -> RestCall | None:
        """``None``: the balances answer's ``updateTime`` is the consistency mark."""
        return None

    def parse_account_mark(self, body: Any, *, ts_recv_ns: int = 0) -> int:
        """Never called (no mark call).

        Raises:
            AdapterError: always: the mark is :meth:`parse_balances`' ``ts_exchange_ns``.
        """
        raise _fail("no account mark call: the balances answer carries the mark", body)

    def positions_call(self) -> RestCall | None:
        """``None``: a spot account has no derivative positions."""
        return None

    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """``[]``: a spot account has no derivative positions (nothing is ever asked)."""
        return []

    def open_orders_call(self) -> RestCall:
        """``GET /api/v3/openOrders`` without a symbol: every symbol's (weight 80, §3.6)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_openorders", params={})

    @guarded_rest(EXCHANGE)
    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The rows of ``openOrders`` (``executedQty`` cumulative; ``updateTime`` as time).

        Raises:
            AdapterError: malformed body.
        """
        rows = convert(_body(body), list[OpenOrder], EXCHANGE, body)
        return [_order_update(symbol=r.symbol, order_id=r.orderId, side=r.side, status=r.status, qty=r.origQty,
                              filled=r.executedQty, price=r.price, client_order_id=opt_text(r.clientOrderId),
                              ts_ns=ms_ns(r.updateTime or r.time, "updateTime", EXCHANGE, body, r.symbol), raw=body,
                              ts_recv_ns=ts_recv_ns)
                for r in rows]


BINANCE_ACCOUNT = BinanceAccount()
