"""OKX v5's private side: the ``/ws/v5/private`` stream and account-recovery REST calls.

Implements :class:`bookkeeper.ports.AccountAdapter` as :data:`OKX_ACCOUNT`. Pure: the driver
passes the clock (``now_ms``) and request ids; ccxt signs the REST calls.

Theory of operation (exchange-protocols.md §5.5, §5.6)
------------------------------------------------------
- Login first (``op: login``, ``sign = base64(HMAC_SHA256(secret, ts + "GET" +
  "/users/self/verify"))``, ``ts`` in unix *seconds*); ``{"event": "login", "code": "0"}`` is
  ``LOGGED_IN``. Then one ``op: subscribe`` for ``orders`` / ``positions`` (``instType: ANY``)
  and ``account``; each ack ``{"event": "subscribe", "arg": {"channel": ..}}`` is
  ``SUBSCRIBED``, and the three together complete the subscription.
- ``orders`` pushes every order change (no snapshot on subscribe): an ``OrderUpdate`` each
  time (``accFillSz`` cumulative), plus a ``Fill`` when the push is a trade: a non-empty
  ``tradeId`` with ``fillSz > 0`` (fill key ``(instId, tradeId)``, §2.5). OKX writes charged
  fees as negative numbers (``fillFee``, REST ``fee``); ``Fill.fee`` is positive when charged,
  so they are negated. ``positions`` -> ``PositionReport`` (net mode: signed ``pos``);
  ``account`` -> ``BalanceReport`` of ``cashBal``. Both push a snapshot on subscribe.
- Errors are ``{"event": "error", "code": "600xx"}``. Credential refusals are ``AUTH_REJECTED``.
  ``60011`` "Please log in" *after* a successful login on the same connection means the venue
  dropped the session (the simulator's ``auth_expiry``; OKX documents no session lifetime,
  ⚠): ``SESSION_EXPIRED``. Before any login it is a plain ``ERROR`` (we subscribed too early).
  The decoder remembers that one bit per connection.
- Keepalive (§5.5): the client sends the text ``ping`` after N < 30 s idle; ``pong`` -> ``[]``.
- REST (§5.6): ``GET /api/v5/trade/fills-history`` (3 months, ``limit`` <= 100, newest first,
  ``instType`` required, ``begin``/``end`` ms, ``after=billId`` for older rows). A replay asks
  for ``[since, until]`` and pages to older rows with ``after = min billId`` while pages come
  back full.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from bookkeeper.capabilities import FillHistory, FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError, UsageError
from bookkeeper.events import (
    BalanceReport,
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
    AccountAdapterBase,
    convert,
    guarded_rest,
    hmac_sha256_base64,
    json_body,
    money,
    ms_ns,
    opt_text,
    order_status,
    quantity,
    trade_side,
)
from .private_schemas import AccountRow, Envelope, FillRow, OrderRow, PositionRow
from .spec import CAPABILITIES, PING

if TYPE_CHECKING:  # the cursor type of the AccountAdapter signature (a plain value, never built here)
    from bookkeeper.actions import FillCursor

__all__ = ["OKX_ACCOUNT", "OkxAccount", "decode_private"]

EXCHANGE = "okx"
CCXT_ID = "okx"
#: §5.1 / §5.6: the private stream shares the public root
WS_ROOT = "wss://ws.okx.com:8443"
WS_PRIVATE_PATH = "/ws/v5/private"
#: §5.6: the string the login signs after the timestamp
LOGIN_SIGN_PATH = "GET/users/self/verify"
#: §5.6: fills-history ``limit`` maximum (default 100)
PAGE_SIZE = 100
DAY_MS = 86_400_000
#: the channels of the private subscription; their acks complete it
CHANNEL_ARGS: tuple[dict[str, str], ...] = (
    {"channel": "orders", "instType": "ANY"},
    {"channel": "positions", "instType": "ANY"},
    {"channel": "account"},
)

HISTORY = FillHistory(
    page_size=PAGE_SIZE,
    paging=FillPaging.TIME_RANGE,  # begin/end + after=billId (§5.6)
    retention_ns=90 * DAY_MS * 1_000_000,  # fills-history: the last 3 months
    max_span_ns=None,  # no documented limit on end - begin
)

#: ``state`` -> OrderStatus (``mmp_canceled``: canceled by market-maker protection)
_STATUS: dict[str, OrderStatus] = {
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "mmp_canceled": OrderStatus.CANCELED,
}
_SIDES: dict[str, TradeSide] = {"buy": TradeSide.BUY, "sell": TradeSide.SELL}

#: WS error codes that refuse the login's credentials (OKX API docs "WebSocket error codes"):
#: 60001-60003 key / sign / passphrase empty, 60004 invalid timestamp, 60005 invalid key,
#: 60006 timestamp expired, 60007 invalid sign, 60009 login failed, 60024 wrong passphrase.
AUTH_ERROR_CODES = frozenset({"60001", "60002", "60003", "60004", "60005", "60006", "60007", "60009", "60024"})
#: "Please log in": after a login, the venue ended the session
CODE_PLEASE_LOG_IN = "60011"
#: ``event: notice`` 64008: "The connection will soon be closed for a service upgrade"
CODE_SERVICE_UPGRADE = "64008"


def _fail(message: str, raw: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(message, exchange=EXCHANGE, raw=_excerpt(raw), symbol=symbol)


def _side(value: str, raw: Any, symbol: str | None) -> TradeSide:
    return trade_side(_SIDES, value, EXCHANGE, raw, symbol)


def _negated(text: str, what: str, raw: Any, symbol: str) -> Decimal:
    """An OKX fee (negative when charged) in the ledger's sign (positive when charged)."""
    return Decimal(0) - money(text, what, EXCHANGE, raw, symbol)


def inst_type(inst_id: str) -> str:
    """The ``instType`` of an instrument id, as fills-history requires it: ``-SWAP`` ->
    ``SWAP``, anything else ``SPOT`` (the account's instruments: spot and linear swaps).

    >>> inst_type("BTC-USDT-SWAP"), inst_type("BTC-USDT")
    ('SWAP', 'SPOT')
    """
    return "SWAP" if inst_id.endswith("-SWAP") else "SPOT"


def _order_update(r: OrderRow, raw: Any, ts_recv_ns: int) -> OrderUpdate:
    sym = r.instId
    qty = quantity(r.sz, "sz", EXCHANGE, raw, sym)
    filled = quantity(r.accFillSz or "0", "accFillSz", EXCHANGE, raw, sym)
    if filled > qty:
        raise _fail(f"accFillSz {filled} exceeds sz {qty}", raw, sym)
    price = quantity(r.px, "px", EXCHANGE, raw, sym) if r.px else None  # "" for market orders
    return OrderUpdate(symbol=sym, order_id=r.ordId, side=_side(r.side, raw, sym),
                       status=order_status(_STATUS, r.state, EXCHANGE, raw, sym), qty=qty, filled_qty=filled,
                       price=price or None, client_order_id=opt_text(r.clOrdId),
                       ts_exchange_ns=(ms_ns(r.uTime, "uTime", EXCHANGE, raw, sym)
                                       or ms_ns(r.cTime, "cTime", EXCHANGE, raw, sym)),
                       ts_recv_ns=ts_recv_ns)


def _fill(*, symbol: str, trade_id: str, order_id: str, side: TradeSide, price: str, qty: Decimal, fee: str,
          fee_currency: str, ts_ns: int, raw: Any, ts_recv_ns: int, pnl: str = "", inst_type: str = "") -> Fill:
    px = quantity(price, "fill price", EXCHANGE, raw, symbol)
    if px == 0 or qty == 0:
        raise _fail(f"fill with zero price or size ({price} x {qty})", raw, symbol)
    # §5.6: derivative fills carry their realized PnL (``fillPnl``); the ledger uses the venue's
    # figure, since OKX computes it from its own rounded average entry price
    derivative = inst_type in ("SWAP", "FUTURES") or (not inst_type and symbol.endswith(("-SWAP", "-FUTURES")))
    realized = money(pnl, "fillPnl", EXCHANGE, raw, symbol) if derivative and pnl else None
    return Fill(symbol=symbol, fill_id=trade_id, order_id=order_id, side=side, price=px, qty=qty,
                fee=_negated(fee, "fee", raw, symbol), fee_currency=opt_text(fee_currency), ts_exchange_ns=ts_ns,
                ts_recv_ns=ts_recv_ns, realized_pnl=realized)


# ----------------------------------------------------------------------------- the stream


def parse_orders(data: list[Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``orders`` rows -> ``OrderUpdate`` each, preceded by a ``Fill`` for a trade report.

    Raises:
        AdapterError: a malformed row.
    """
    out: list[PrivateEvent] = []
    for r in convert(data, list[OrderRow], EXCHANGE, frame):
        update = _order_update(r, frame, ts_recv_ns)
        fill_sz = quantity(r.fillSz or "0", "fillSz", EXCHANGE, frame, r.instId)
        if r.tradeId and fill_sz > 0:
            ts = ms_ns(r.fillTime, "fillTime", EXCHANGE, frame, r.instId) or update.ts_exchange_ns
            out.append(_fill(symbol=r.instId, trade_id=r.tradeId, order_id=r.ordId, side=update.side, price=r.fillPx,
                             qty=fill_sz, fee=r.fillFee or "0", fee_currency=r.fillFeeCcy, ts_ns=ts, raw=frame,
                             ts_recv_ns=ts_recv_ns, pnl=r.fillPnl, inst_type=r.instType))
        out.append(update)
    return out


def _position(r: PositionRow, raw: Any, ts_recv_ns: int) -> PositionReport:
    sym = r.instId
    pos = money(r.pos, "pos", EXCHANGE, raw, sym)
    if r.posSide == "long":  # long/short mode: pos is the size of that side
        pos = abs(pos)
    elif r.posSide == "short":
        pos = -abs(pos)
    elif r.posSide != "net":
        raise _fail(f"bad posSide {_r(r.posSide)}", raw, sym)
    avg = quantity(r.avgPx, "avgPx", EXCHANGE, raw, sym) if r.avgPx else None
    return PositionReport(symbol=sym, qty=pos, avg_entry_price=avg or None,
                          ts_exchange_ns=ms_ns(r.uTime, "uTime", EXCHANGE, raw, sym), ts_recv_ns=ts_recv_ns)


def parse_positions_push(data: list[Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``positions`` rows -> ``PositionReport`` each (net mode: ``pos`` is signed).

    Raises:
        AdapterError: a malformed row.
    """
    return [_position(r, frame, ts_recv_ns) for r in convert(data, list[PositionRow], EXCHANGE, frame)]


def _balance_report(rows: list[AccountRow], raw: Any, ts_recv_ns: int) -> BalanceReport:
    balances: dict[str, Decimal] = {}
    ts = 0
    for row in rows:
        ts = max(ts, ms_ns(row.uTime, "uTime", EXCHANGE, raw))
        for d in row.details:
            balances[d.ccy] = money(d.cashBal, "cashBal", EXCHANGE, raw)
    return BalanceReport(balances=balances, ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)


def parse_account_push(data: list[Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``account`` -> one ``BalanceReport`` of ``cashBal`` per currency it names.

    Raises:
        AdapterError: a malformed row.
    """
    rows = convert(data, list[AccountRow], EXCHANGE, frame)
    return [_balance_report(rows, frame, ts_recv_ns)] if rows else []


#: channel -> parser of its ``data``; other channels -> []
_CHANNELS = {"orders": parse_orders, "positions": parse_positions_push, "account": parse_account_push}


class _Connection:
    """What one private connection's decoder remembers: whether a login succeeded (a later
    ``60011`` then means the session ended, not that we subscribed too early)."""

    __slots__ = ("logged_in",)

    def __init__(self) -> None:
        self.logged_in = False


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def parse_event(obj: dict[str, Any], event: str, conn: _Connection, frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    """``{"event": ...}`` control frames (login, subscribe acks, errors, notices).

    Raises:
        AdapterError: a subscribe ack without a channel.
    """
    code = _text(obj.get("code"))
    msg = obj.get("msg")
    message = msg[:200] if type(msg) is str else ""
    if event == "login":
        if code in (None, "", "0"):
            conn.logged_in = True
            return [PrivateControl(kind=PrivateControlKind.LOGGED_IN, message=message, ts_recv_ns=ts_recv_ns)]
        return [PrivateControl(kind=PrivateControlKind.AUTH_REJECTED, code=code, message=message,
                               ts_recv_ns=ts_recv_ns)]
    if event == "subscribe":
        arg = obj.get("arg")
        channel = arg.get("channel") if type(arg) is dict else None
        if type(channel) is not str or not channel:
            raise _fail("subscribe ack without a channel", frame)
        return [PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel=channel, ts_recv_ns=ts_recv_ns)]
    if event == "error":
        if code == CODE_PLEASE_LOG_IN and conn.logged_in:
            conn.logged_in = False
            kind = PrivateControlKind.SESSION_EXPIRED
        elif code in AUTH_ERROR_CODES:
            kind = PrivateControlKind.AUTH_REJECTED
        else:
            kind = PrivateControlKind.ERROR
        return [PrivateControl(kind=kind, code=code, message=message, ts_recv_ns=ts_recv_ns)]
    if event == "notice":
        kind = PrivateControlKind.SHUTDOWN_NOTICE if code == CODE_SERVICE_UPGRADE else PrivateControlKind.ERROR
        return [PrivateControl(kind=kind, code=code, message=message, ts_recv_ns=ts_recv_ns)]
    return []  # unsubscribe acks, channel-conn-count ...


def decode_private(frame: bytes | str, ts_recv_ns: int, conn: _Connection) -> list[PrivateEvent]:
    """Translate one private-stream frame (see the module docstring); ``pong`` -> ``[]``.

    Raises:
        AdapterError: invalid JSON, or a malformed push or control frame.
    """
    if frame in (b"pong", "pong"):
        return []
    obj = loads(frame, EXCHANGE)
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    event = obj.get("event")
    if event is not None:
        if type(event) is not str:
            raise _fail(f"event must be a string, got {_r(event)}", frame)
        return parse_event(obj, event, conn, frame, ts_recv_ns)
    arg = obj.get("arg")
    if arg is None:
        return []  # order-operation answers ({"id", "op", "code", "data"}) and the like
    if type(arg) is not dict:
        raise _fail("arg is not an object", frame)
    channel = arg.get("channel")
    if type(channel) is not str:
        raise _fail(f"channel must be a string, got {_r(channel)}", frame)
    parse = _CHANNELS.get(channel)
    if parse is None:
        return []
    data = obj.get("data")
    if type(data) is not list:
        raise _fail("data must be a list", frame)
    return parse(data, frame, ts_recv_ns)


# ----------------------------------------------------------------------------- REST


def _data(body: Any, type_: Any, symbol: str | None = None) -> Any:
    """``data`` of a successful REST answer, converted to ``type_``.

    Raises:
        AdapterError: not an answer, ``code`` other than ``"0"``, or ``data`` of another shape.
    """
    env = convert(json_body(body, EXCHANGE), Envelope, EXCHANGE, body, symbol)
    if env.code != "0":
        raise _fail(f"venue error {env.code}: {env.msg[:200]}", body, symbol)
    return convert(env.data, type_, EXCHANGE, body, symbol)


class OkxAccount(AccountAdapterBase):
    """OKX's :class:`~bookkeeper.ports.AccountAdapter` (see the module docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    #: the ccxt market types this account trades (instIds are unique across them)
    market_types: tuple[str, ...] = ("spot", "swap")
    history = HISTORY
    #: ⚠ OKX documents no lifetime of a private session (§5.5)
    session_lifetime_s: float | None = None
    #: §5.5: text ``ping`` after N < 30 s idle; the public spec's figures (15 s, 8 s)
    ping_interval_s: float | None = CAPABILITIES.ping_interval_s
    pong_timeout_s: float | None = CAPABILITIES.pong_timeout_s

    def default_private_ws_root(self) -> str:
        """``wss://ws.okx.com:8443`` (§5.6)."""
        return WS_ROOT

    def private_ws_url(self, root: str) -> str:
        """``{root}/ws/v5/private``."""
        return root.rstrip("/") + WS_PRIVATE_PATH

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt's ``urls.api.rest`` pointed at ``base_url`` (public and private share it; ccxt
        signs the path, not the host)."""
        return {"urls": {"api": {"rest": base_url.rstrip("/")}}}

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """``op: login`` signed at ``now_ms`` (the timestamp in unix seconds, §5.6), as ccxt's
        ``pro/okx.py: authenticate``.

        Returns:
            One text frame; it holds the key, the passphrase (OKX sends it in clear, as it
            does in every REST request's header) and the signature, never the secret.

        Raises:
            UsageError: the credentials have no passphrase (OKX keys always have one).
        """
        if not credentials.passphrase:
            raise UsageError("OKX API credentials need a passphrase", venue=EXCHANGE)
        ts = str(int(now_ms) // 1000)
        sign = hmac_sha256_base64(credentials.reveal_secret(), ts + LOGIN_SIGN_PATH)
        arg = {"apiKey": credentials.api_key, "passphrase": credentials.passphrase, "timestamp": ts, "sign": sign}
        return [orjson.dumps({"op": "login", "args": [arg]}).decode()]

    def subscribe_messages(self, *, request_id: str) -> list[str]:
        """One ``op: subscribe`` for ``orders``, ``positions`` (``instType: ANY``) and ``account``
        (``request_id`` is not sent: the acks name their channel)."""
        return [orjson.dumps({"op": "subscribe", "args": list(CHANNEL_ARGS)}).decode()]

    def subscribe_channels(self) -> frozenset[str]:
        """``orders``, ``positions``, ``account``: each ack is one ``SUBSCRIBED``."""
        return frozenset(a["channel"] for a in CHANNEL_ARGS)

    def ping_message(self) -> str | None:
        """The text ``ping`` (§5.5)."""
        return PING

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder for one connection (it remembers whether the login succeeded).
        Raises only :class:`AdapterError` on malformed frames (``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, _Connection(), exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """``fills-history`` of ``symbol`` with ``ts`` in ``[since_ms, until_ms]`` (OKX pages by
        billId, not trade id: the cursor's trade id cannot start a page)."""
        begin = max(since_ms, 0)
        return RestCall(ccxt_id=CCXT_ID, method="private_get_trade_fills_history",
                        params={"instType": inst_type(symbol), "instId": symbol, "begin": begin,
                                "end": max(until_ms, begin), "limit": PAGE_SIZE})

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """A ``fills-history`` answer (newest first). A full page continues with the same
        range and ``after = min billId`` (older rows); a short page ends the replay.

        Raises:
            AdapterError: malformed body, a ``code`` other than ``"0"``, a non-numeric
                ``billId`` on a full page.
        """
        rows: list[FillRow] = _data(body, list[FillRow], symbol)
        if not all(r.tradeId for r in rows):
            raise _fail("fill without a tradeId", body, symbol)
        fills = tuple(
            _fill(symbol=r.instId, trade_id=r.tradeId, order_id=r.ordId, side=_side(r.side, body, r.instId),
                  price=r.fillPx, qty=quantity(r.fillSz, "fillSz", EXCHANGE, body, r.instId), fee=r.fee,
                  fee_currency=r.feeCcy,
                  ts_ns=(ms_ns(r.fillTime, "fillTime", EXCHANGE, body, r.instId)
                         or ms_ns(r.ts, "ts", EXCHANGE, body, r.instId)),
                  raw=body, ts_recv_ns=ts_recv_ns, pnl=r.fillPnl, inst_type=r.instType)
            for r in rows)
        limit = call.params.get("limit", PAGE_SIZE)
        if not isinstance(limit, int) or limit < 1:
            limit = PAGE_SIZE
        if len(rows) < limit:
            return FillsPage(fills=fills, next_call=None)
        if not all(r.billId.isascii() and r.billId.isdigit() for r in rows):
            raise _fail("billId must be numeric to page on", body, symbol)
        after = min(int(r.billId) for r in rows)
        return FillsPage(fills=fills, next_call=RestCall(ccxt_id=call.ccxt_id, method=call.method,
                                                         params={**call.params, "after": str(after)}))

    # -- full sync ----------------------------------------------------------------------

    def balances_call(self) -> RestCall:
        """``GET /api/v5/account/balance`` (every currency)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_account_balance", params={})

    @guarded_rest(EXCHANGE)
    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """``cashBal`` per ``ccy``; ``data[0].uTime`` (the account's last change) as
        ``ts_exchange_ns``.

        Raises:
            AdapterError: malformed body or a ``code`` other than ``"0"``.
        """
        rows: list[AccountRow] = _data(body, list[AccountRow])
        if not rows:
            raise _fail("account/balance answer without data", body)
        report = _balance_report(rows, body, ts_recv_ns)
        return BalanceReport(balances=report.balances, ts_exchange_ns=ms_ns(rows[0].uTime, "uTime", EXCHANGE, body),
                             ts_recv_ns=ts_recv_ns)

    def positions_call(self) -> RestCall | None:
        """``GET /api/v5/account/positions?instType=SWAP`` (the account's derivatives)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_account_positions", params={"instType": "SWAP"})

    @guarded_rest(EXCHANGE)
    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """Each row's signed ``pos`` (net mode).

        Raises:
            AdapterError: malformed body or a ``code`` other than ``"0"``.
        """
        return [_position(r, body, ts_recv_ns) for r in _data(body, list[PositionRow])]

    def open_orders_call(self) -> RestCall:
        """``GET /api/v5/trade/orders-pending`` (every instrument)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_trade_orders_pending", params={})

    @guarded_rest(EXCHANGE)
    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The pending orders (``accFillSz`` cumulative).

        Raises:
            AdapterError: malformed body or a ``code`` other than ``"0"``.
        """
        return [_order_update(r, body, ts_recv_ns) for r in _data(body, list[OrderRow])]


OKX_ACCOUNT = OkxAccount()
