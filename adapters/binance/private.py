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

from typing import Any

import orjson

from bookkeeper.capabilities import FillHistory, FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.events import (
    BalanceReport,
    BalanceUpdate,
    OrderStatus,
    PrivateControl,
    PrivateControlKind,
    PrivateEvent,
)
from bookkeeper.ports import FillsPage, PrivateDecoder, RestCall
from bookkeeper.types import TradeSide

from .._common import FrameDecoder, _r, loads
from .._private import NoPositions, convert, guarded_rest, hmac_sha256_hex, money, ms_ns, opt_text
from ._private_common import BinanceAccountBase, BinanceRules, SlicedCall
from .private_schemas import (
    Account,
    BalanceUpdateEvent,
    ExecutionReport,
    MyTrade,
    OpenOrder,
    OutboundAccountPosition,
    RequestAnswer,
)

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
#: §3.6: ``myTrades`` ``fromId`` paging and 24 h slices; ``t`` is -1 on a report that is no trade
_RULES = BinanceRules(exchange=EXCHANGE, ccxt_id=CCXT_ID, trades_method="private_get_mytrades", window_ms=DAY_MS,
                      page_size=PAGE_SIZE, statuses=_STATUS, min_trade_id=0)
_fail = _RULES.fail
_order_update = _RULES.order_update
_fill = _RULES.fill

#: WS API error codes that refuse the credentials themselves (retrying them unchanged is
#: pointless): -1002 unauthorized, -1021 timestamp outside recvWindow (clock skew), -1022 bad
#: signature, -2014 malformed API key, -2015 invalid key / IP / permissions
#: (binance-spot-api-docs ``errors.md``).
AUTH_ERROR_CODES = frozenset({-1002, -1021, -1022, -2014, -2015})


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


class BinanceAccount(NoPositions, BinanceAccountBase):
    """Binance spot's :class:`~bookkeeper.ports.AccountAdapter` (see the module docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    #: the ccxt market types this account trades (spot only: the WS API user data is spot's)
    market_types: tuple[str, ...] = ("spot",)
    history = HISTORY
    rules = _RULES
    open_order_row = OpenOrder
    #: §3.6: a WS API connection lives at most 24 h
    session_lifetime_s: float | None = 86_400.0
    #: §3.5: the server pings every 20 s; websockets answers with pongs
    ping_interval_s: float | None = None
    pong_timeout_s: float | None = None

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

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder (stateless; every frame is self-describing). Raises only
        :class:`AdapterError` on malformed frames (``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """A ``myTrades`` answer. Next page: a full page continues at ``fromId = last id + 1``
        (also inside a time slice: ``fromId`` cannot be combined with a time range, and it is
        gapless); a short page ends a ``fromId`` replay, and ends a time slice, after which the
        next slice follows until ``until_ms`` is covered.

        Raises:
            AdapterError: malformed body (not a list of trade rows, bad decimals...).
        """
        rows = convert(_RULES.body(body), list[MyTrade], EXCHANGE, body, symbol)
        fills = tuple(
            _fill(symbol=r.symbol, trade_id=r.id, order_id=r.orderId,
                  side=TradeSide.BUY if r.isBuyer else TradeSide.SELL,
                  price=r.price, qty=r.qty, fee=r.commission, fee_currency=r.commissionAsset,
                  ts_ns=ms_ns(r.time, "time", EXCHANGE, body, r.symbol), raw=body, ts_recv_ns=ts_recv_ns)
            for r in rows)
        return _RULES.fills_page(fills, [r.id for r in rows], call=call, symbol=symbol)

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
        acct = convert(_RULES.body(body), Account, EXCHANGE, body)
        balances = {b.asset: money(b.free, "free", EXCHANGE, body) + money(b.locked, "locked", EXCHANGE, body)
                    for b in acct.balances}
        return BalanceReport(balances=balances, ts_exchange_ns=ms_ns(acct.updateTime, "updateTime", EXCHANGE, body),
                             ts_recv_ns=ts_recv_ns)

    def open_orders_call(self) -> RestCall:
        """``GET /api/v3/openOrders`` without a symbol: every symbol's (weight 80, §3.6)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_openorders", params={})


BINANCE_ACCOUNT = BinanceAccount()
