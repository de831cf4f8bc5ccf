"""Binance USD-M futures' private side: the listenKey user data stream and account-recovery REST.

Implements :class:`bookkeeper.ports.AccountAdapter` and :class:`bookkeeper.ports.PrivateBootstrap`
as :data:`BINANCE_USDM_ACCOUNT`. Pure: ccxt signs the REST calls (``binance.sign()``: query
``timestamp``, ``signature = hex(HMAC_SHA256(secret, query))``, header ``X-MBX-APIKEY``).

Theory of operation (exchange-protocols.md §4.1, §4.5, §4.6, §2.4, §2.5)
-----------------------------------------------------------------------
- **listenKey** (§4.6): before each connection ``POST /fapi/v1/listenKey`` (ccxt
  ``fapiPrivatePostListenKey``: the API key header only) answers ``{"listenKey": K}``, the
  active key (extended by 60 min) or a new one; the stream is
  ``wss://fstream.binance.com/private/ws?listenKey=K`` (the 2026 split, §0, §4.1). The URL
  authenticates: no login frames, no subscribe frames, the open connection is logged in and
  subscribed. ``PUT /fapi/v1/listenKey`` every 20 min (ccxt ``listenKeyRefreshRate``) keeps the
  key; a key 60 min without keepalive expires and the stream says ``listenKeyExpired``
  (``SESSION_EXPIRED``: the driver bootstraps a new key and reconnects). A connection lives
  at most 24 h (``session_lifetime_s``); the server pings every 3 min and websockets answers.
- **Pushes** (raw payloads; the combined-stream wrapper ``{"stream", "data"}`` is unwrapped):
  ``ORDER_TRADE_UPDATE`` is an ``OrderUpdate`` (``o.z`` cumulative) and, when ``o.x`` is
  ``TRADE`` (or ⚠ ``CALCULATED``, a liquidation execution, when it carries a trade id), first a
  ``Fill`` keyed ``(o.s, o.t)`` (§2.5) with ``o.rp`` as its realized PnL. ``ACCOUNT_UPDATE`` is a
  ``BalanceReport`` of the changed assets' wallet balances (``a.B[].wb``) and one
  ``PositionReport`` per ``a.P`` row (one-way mode, ``ps == "BOTH"``; hedge-mode rows are
  refused: the ledger is net-mode). Other events (``TRADE_LITE``, ``MARGIN_CALL``,
  ``ACCOUNT_CONFIG_UPDATE``...) yield ``[]``.
- **REST** (§4.6): ``GET /fapi/v1/userTrades`` (symbol required, ``limit`` <= 1000, ``fromId``
  >= and not combinable with a time range, a time range at most 7 days, 6 months back): a
  cursor with a trade id pages gaplessly by ``fromId = t + 1``; without one (after a full sync)
  the replay walks 7-day slices of ``[since, until]`` and switches to ``fromId`` as soon as a
  page comes back full. Full sync: ``GET /fapi/v3/account`` (ccxt's ``fetch_balance`` default),
  ``GET /fapi/v3/positionRisk`` (``fetch_positions``), ``GET /fapi/v1/openOrders`` (no symbol:
  all of them).
- **Consistency mark** (⚠ the docs do not say what moves it): every ``assets`` row and every
  position of ``/fapi/v3/account`` carries ``updateTime``; their maximum is the account's last
  balance or position change, the balances' ``ts_exchange_ns`` (read first and last around a
  full sync, as Binance spot's ``updateTime``), so :meth:`BinanceUsdmAccount.account_mark_call`
  is ``None``.
- **Amounts**: commission positive when charged (⚠ the docs' ``userTrades`` sample prints it
  negative; the answers recorded in ccxt's comments are positive), realized PnL signed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bookkeeper.capabilities import FillHistory, FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.events import (
    BalanceReport,
    OrderStatus,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
    PrivateEvent,
)
from bookkeeper.ports import FillsPage, PrivateDecoder, RestCall

from .._common import FrameDecoder, _r, loads
from .._private import convert, guarded_rest, money, ms_ns, opt_text, quantity
from ._private_common import BinanceAccountBase, BinanceRules

__all__ = ["BINANCE_USDM_ACCOUNT", "BinanceUsdmAccount", "decode_private"]

EXCHANGE = "binance_usdm"
CCXT_ID = "binanceusdm"
#: §4.1: the host of the split stream roots (``/public``, ``/market``, ``/private``)
WS_ROOT = "wss://fstream.binance.com"
WS_PRIVATE_PATH = "/private/ws"
#: the stream roots of the 2026 split a configured root may end in (reduced to the host)
_SPLIT_ROOTS = ("/public", "/market", "/private")
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
#: §4.6: ``userTrades`` ``limit`` maximum; 7-day windows; "only the last 6 months"
PAGE_SIZE = 1000
RETENTION_MS = 180 * DAY_MS
#: ccxt ``options.listenKeyRefreshRate`` (1,200,000 ms); a key lives 60 min (§4.6)
KEEPALIVE_S = 1200.0

HISTORY = FillHistory(
    page_size=PAGE_SIZE,
    paging=FillPaging.FROM_ID,  # fromId >= t, gapless (§4.6)
    retention_ns=RETENTION_MS * 1_000_000,
    max_span_ns=WEEK_MS * 1_000_000,
)

#: ``X`` (stream) / ``status`` (REST) -> OrderStatus; EXPIRED_IN_MATCH: expired by self-trade
#: prevention. The liquidation statuses (NEW_INSURANCE, NEW_ADL) are refused (a frame REST repairs).
_STATUS: dict[str, OrderStatus] = {
    "NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
#: §4.6: ``userTrades`` ``fromId`` paging and 7-day slices; ``o.t`` is 0 on a report that is no trade
_RULES = BinanceRules(exchange=EXCHANGE, ccxt_id=CCXT_ID, trades_method="fapiprivate_get_usertrades",
                      window_ms=WEEK_MS, page_size=PAGE_SIZE, statuses=_STATUS, min_trade_id=1)
_fail = _RULES.fail
_side = _RULES.side
_order_update = _RULES.order_update
_fill = _RULES.fill
#: execution types whose report is also a fill (§4.6 ``x``)
_FILL_EXECUTIONS = frozenset({"TRADE", "CALCULATED"})
#: one-way (net) mode's ``positionSide``
_NET = "BOTH"


# ----------------------------------------------------------------------------- wire shapes
# Money stays ``str`` (the parsers make it Decimal); only the fields read are declared.


class OrderBody(msgspec.Struct):
    """``ORDER_TRADE_UPDATE.o``."""

    s: str  # symbol
    c: str  # clientOrderId
    S: str  # side, BUY | SELL
    q: str  # original quantity
    p: str  # original price ("0" for market orders)
    x: str  # execution type: NEW, CANCELED, CALCULATED, EXPIRED, TRADE, AMENDMENT
    X: str  # order status
    i: int  # orderId
    l: str  # noqa: E741 - last filled quantity
    z: str  # cumulative filled quantity
    L: str  # last filled price
    T: int  # trade time, ms
    t: int  # trade id (0 unless a trade)
    n: str = "0"  # commission ("will not push if no commission")
    N: str | None = None  # commission asset
    rp: str = "0"  # realized profit of the trade
    ps: str = _NET  # position side


class OrderTradeUpdate(msgspec.Struct):
    E: int
    o: OrderBody
    T: int = 0


class BalanceRow(msgspec.Struct):
    """``ACCOUNT_UPDATE.a.B[]``."""

    a: str  # asset
    wb: str  # wallet balance


class PositionRow(msgspec.Struct):
    """``ACCOUNT_UPDATE.a.P[]``."""

    s: str  # symbol
    pa: str  # position amount, signed
    ep: str  # entry price
    ps: str = _NET


class AccountData(msgspec.Struct):
    m: str  # reason: ORDER, FUNDING_FEE, DEPOSIT, ...
    B: list[BalanceRow] = []
    P: list[PositionRow] = []


class AccountUpdate(msgspec.Struct):
    E: int
    a: AccountData
    T: int = 0


class ListenKeyAnswer(msgspec.Struct):
    """The answer to ``POST``/``PUT /fapi/v1/listenKey``."""

    listenKey: str


class UserTrade(msgspec.Struct):
    """A row of ``GET /fapi/v1/userTrades``, ascending by ``id``."""

    symbol: str
    id: int  # trade id (the stream's ``o.t``)
    orderId: int
    side: str
    price: str
    qty: str
    commission: str
    time: int  # ms
    realizedPnl: str = "0"
    commissionAsset: str | None = None
    positionSide: str = _NET


class AssetRow(msgspec.Struct):
    """A row of ``GET /fapi/v3/account`` ``assets``."""

    asset: str
    walletBalance: str
    updateTime: int = 0  # ms of the asset's last change


class AccountPosition(msgspec.Struct):
    """A row of ``GET /fapi/v3/account`` ``positions`` (symbols with a position or open order)."""

    symbol: str
    updateTime: int = 0


class AccountV3(msgspec.Struct):
    assets: list[AssetRow]
    positions: list[AccountPosition] = []


class PositionRisk(msgspec.Struct):
    """A row of ``GET /fapi/v3/positionRisk``."""

    symbol: str
    positionAmt: str  # signed
    entryPrice: str
    updateTime: int = 0
    positionSide: str = _NET


class OpenOrder(msgspec.Struct):
    """A row of ``GET /fapi/v1/openOrders``."""

    symbol: str
    orderId: int
    price: str
    origQty: str
    executedQty: str  # cumulative
    status: str
    side: str
    clientOrderId: str = ""
    time: int = 0
    updateTime: int = 0


# ----------------------------------------------------------------------------- rows -> events


def _net(position_side: str, raw: Any, symbol: str) -> None:
    if position_side != _NET:
        # hedge mode holds a LONG and a SHORT position per symbol: the ledger is net (one-way)
        raise _fail(f"positionSide {_r(position_side)}: only one-way mode (BOTH) is supported", raw, symbol)


# ----------------------------------------------------------------------------- the stream


def parse_order_trade_update(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``ORDER_TRADE_UPDATE`` -> ``[Fill, OrderUpdate]`` for an execution, ``[OrderUpdate]``
    otherwise.

    Raises:
        AdapterError: a field missing or of the wrong type, a bad decimal, an unknown status,
            a trade without a trade id, cumulative fill above the order quantity, hedge mode.
    """
    r = convert(event, OrderTradeUpdate, EXCHANGE, frame)
    o = r.o
    _net(o.ps, frame, o.s)
    ts = ms_ns(o.T, "T", EXCHANGE, frame, o.s) or ms_ns(r.T, "T", EXCHANGE, frame, o.s) or ms_ns(
        r.E, "E", EXCHANGE, frame, o.s)
    update = _order_update(symbol=o.s, order_id=o.i, side=o.S, status=o.X, qty=o.q, filled=o.z, price=o.p,
                           client_order_id=opt_text(o.c), ts_ns=ts, raw=frame, ts_recv_ns=ts_recv_ns)
    if o.x not in _FILL_EXECUTIONS or (o.x == "CALCULATED" and o.t <= 0):
        return [update]
    fill = _fill(symbol=o.s, trade_id=o.t, order_id=o.i, side=update.side, price=o.L, qty=o.l, fee=o.n,
                 fee_currency=o.N, pnl=o.rp, ts_ns=ts, raw=frame, ts_recv_ns=ts_recv_ns)
    return [fill, update]


def parse_account_update(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``ACCOUNT_UPDATE`` -> the changed assets' wallet balances and the changed positions.

    Raises:
        AdapterError: malformed event, or a hedge-mode position row.
    """
    r = convert(event, AccountUpdate, EXCHANGE, frame)
    ts = ms_ns(r.T, "T", EXCHANGE, frame) or ms_ns(r.E, "E", EXCHANGE, frame)
    out: list[PrivateEvent] = []
    if r.a.B:
        out.append(BalanceReport(balances={b.a: money(b.wb, "wallet balance", EXCHANGE, frame) for b in r.a.B},
                                 ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns))
    for p in r.a.P:
        out.append(_position(p.s, p.pa, p.ep, p.ps, ts, frame, ts_recv_ns))
    return out


def _position(symbol: str, amount: str, entry: str, side: str, ts_ns: int, raw: Any, ts_recv_ns: int) -> PositionReport:
    _net(side, raw, symbol)
    avg = quantity(entry, "entry price", EXCHANGE, raw, symbol)
    return PositionReport(symbol=symbol, qty=money(amount, "position amount", EXCHANGE, raw, symbol),
                          avg_entry_price=avg or None, ts_exchange_ns=ts_ns, ts_recv_ns=ts_recv_ns)


def parse_listen_key_expired(event: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``listenKeyExpired`` (``E`` as a number or, in the current docs' sample, a digit string)
    -> ``SESSION_EXPIRED``.

    Raises:
        AdapterError: a malformed event time.
    """
    ms_ns(event.get("E"), "E", EXCHANGE, frame)
    return [PrivateControl(kind=PrivateControlKind.SESSION_EXPIRED, message="listenKeyExpired",
                           ts_recv_ns=ts_recv_ns)]


#: event type ``e`` -> parser; any other event -> []
_EVENTS = {
    "ORDER_TRADE_UPDATE": parse_order_trade_update,
    "ACCOUNT_UPDATE": parse_account_update,
    "listenKeyExpired": parse_listen_key_expired,
}


def decode_private(frame: bytes | str, ts_recv_ns: int = 0) -> list[PrivateEvent]:
    """Translate one user-data frame (see the module docstring). Answers to requests
    (``{"result": .., "id": ..}``, errors) and unknown events yield ``[]``.

    Raises:
        AdapterError: invalid JSON or a malformed event.
    """
    obj = loads(frame, EXCHANGE)
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    if "stream" in obj and "data" in obj:  # combined-stream form
        obj = obj["data"]
        if type(obj) is not dict:
            raise _fail("data is not an object", frame)
    kind = obj.get("e")
    if kind is None:
        return []
    if type(kind) is not str:
        raise _fail(f"event type e must be a string, got {_r(kind)}", frame)
    parse = _EVENTS.get(kind)
    return parse(obj, frame, ts_recv_ns) if parse is not None else []


# ----------------------------------------------------------------------------- REST


class BinanceUsdmAccount(BinanceAccountBase):
    """Binance USD-M's :class:`~bookkeeper.ports.AccountAdapter` (and
    :class:`~bookkeeper.ports.PrivateBootstrap`; see the module docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    #: USDT-M perpetuals (ccxt lists them as linear swaps)
    market_types: tuple[str, ...] = ("swap",)
    history = HISTORY
    rules = _RULES
    open_order_row = OpenOrder
    #: §4.6: "The connection itself still lasts at most 24 h"
    session_lifetime_s: float | None = 86_400.0
    #: §4.5: the server pings every 3 min; websockets answers with pongs
    ping_interval_s: float | None = None
    pong_timeout_s: float | None = None
    #: ``PUT /fapi/v1/listenKey`` this often while connected (ccxt ``listenKeyRefreshRate``)
    keepalive_interval_s: float | None = KEEPALIVE_S

    def default_private_ws_root(self) -> str:
        """``wss://fstream.binance.com`` (§4.1)."""
        return WS_ROOT

    def private_ws_url(self, root: str) -> str:
        """``{host}/private/ws`` (without the key: :meth:`private_url_from_bootstrap` adds it).
        A root naming one of the split stream roots (the book adapter's
        ``wss://fstream.binance.com/public``, which the simulator's ``ws_root`` also is) is
        reduced to its host first."""
        base = root.rstrip("/")
        for suffix in _SPLIT_ROOTS:
            base = base.removesuffix(suffix)
        return base + WS_PRIVATE_PATH

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt's public and private ``fapi`` URLs (v1, v2, v3) pointed at ``base_url``."""
        base = base_url.rstrip("/")
        return {"urls": {"api": {f"fapi{kind}{v}": f"{base}/fapi/{v.lower() or 'v1'}"
                                 for kind in ("Public", "Private") for v in ("", "V2", "V3")}}}

    # -- the listenKey (ports.PrivateBootstrap) --------------------------------------------

    def private_bootstrap_call(self) -> RestCall:
        """``POST /fapi/v1/listenKey`` (the active key, extended, or a new one)."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivate_post_listenkey", params={})

    @guarded_rest(EXCHANGE)
    def private_url_from_bootstrap(self, root: str, body: Any) -> str:
        """``{host}/private/ws?listenKey=K`` from ``{"listenKey": K}``.

        Raises:
            AdapterError: no key, or one that is not plain ASCII letters and digits.
        """
        key = convert(_RULES.body(body), ListenKeyAnswer, EXCHANGE, body).listenKey
        if not (0 < len(key) <= 128 and key.isascii() and key.isalnum()):
            raise _fail(f"bad listenKey {_r(key)}", body)
        return f"{self.private_ws_url(root)}?listenKey={key}"

    def private_keepalive_call(self, body: Any) -> RestCall | None:
        """``PUT /fapi/v1/listenKey`` (the account's one key: no parameter names it)."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivate_put_listenkey", params={})

    def private_release_call(self, body: Any) -> RestCall | None:
        """``DELETE /fapi/v1/listenKey`` (closes the key and its streams)."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivate_delete_listenkey", params={})

    # -- the stream dialogue ----------------------------------------------------------------

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """``[]``: the listenKey in the URL authenticates."""
        return []

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder (stateless). Raises only :class:`AdapterError` on malformed frames
        (``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """A ``userTrades`` answer. A full page continues at ``fromId = last id + 1`` (also
        inside a time slice: ``fromId`` cannot be combined with times, and is gapless); a short
        page ends a ``fromId`` replay, or its slice, after which the next slice follows until
        ``until_ms`` is covered.

        Raises:
            AdapterError: malformed body (not a list of trade rows, bad decimals, hedge mode...).
        """
        rows = convert(_RULES.body(body), list[UserTrade], EXCHANGE, body, symbol)
        fills = []
        for r in rows:
            _net(r.positionSide, body, r.symbol)
            fills.append(_fill(symbol=r.symbol, trade_id=r.id, order_id=r.orderId, side=_side(r.side, body, r.symbol),
                               price=r.price, qty=r.qty, fee=r.commission, fee_currency=r.commissionAsset,
                               pnl=r.realizedPnl, ts_ns=ms_ns(r.time, "time", EXCHANGE, body, r.symbol), raw=body,
                               ts_recv_ns=ts_recv_ns))
        return _RULES.fills_page(tuple(fills), [r.id for r in rows], call=call, symbol=symbol)

    # -- full sync ----------------------------------------------------------------------

    def balances_call(self) -> RestCall:
        """``GET /fapi/v3/account``."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivatev3_get_account", params={})

    @guarded_rest(EXCHANGE)
    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """Each asset's ``walletBalance``; ``ts_exchange_ns`` the newest ``updateTime`` of the
        assets and positions (the consistency mark, module docstring).

        Raises:
            AdapterError: malformed body.
        """
        acct = convert(_RULES.body(body), AccountV3, EXCHANGE, body)
        balances = {a.asset: money(a.walletBalance, "walletBalance", EXCHANGE, body) for a in acct.assets}
        times = [a.updateTime for a in acct.assets] + [p.updateTime for p in acct.positions]
        mark = max((ms_ns(t, "updateTime", EXCHANGE, body) for t in times), default=0)
        return BalanceReport(balances=balances, ts_exchange_ns=mark, ts_recv_ns=ts_recv_ns)

    def positions_call(self) -> RestCall | None:
        """``GET /fapi/v3/positionRisk`` (every symbol with a position or an open order)."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivatev3_get_positionrisk", params={})

    @guarded_rest(EXCHANGE)
    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """Each row's signed ``positionAmt`` (one-way mode); an omitted symbol is flat.

        Raises:
            AdapterError: malformed body or a hedge-mode row.
        """
        rows = convert(_RULES.body(body), list[PositionRisk], EXCHANGE, body)
        return [_position(r.symbol, r.positionAmt, r.entryPrice, r.positionSide,
                          ms_ns(r.updateTime, "updateTime", EXCHANGE, body, r.symbol), body, ts_recv_ns)
                for r in rows]

    def open_orders_call(self) -> RestCall:
        """``GET /fapi/v1/openOrders`` without a symbol: every symbol's (weight 40)."""
        return RestCall(ccxt_id=CCXT_ID, method="fapiprivate_get_openorders", params={})


BINANCE_USDM_ACCOUNT = BinanceUsdmAccount()
