"""Bybit v5's private side (linear account): the ``/v5/private`` stream and account-recovery REST.

Implements :class:`bookkeeper.ports.AccountAdapter` as :data:`BYBIT_ACCOUNT`. Pure: the driver
passes the clock (``now_ms``) and request ids; ccxt signs the REST calls (``bybit.sign()``:
``X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + apiKey + recvWindow + queryString))``).

Theory of operation (exchange-protocols.md §6.5, §6.6, §2.4, §2.5)
-----------------------------------------------------------------
- **Linear only.** The account is the USDT-settled linear perpetuals (category ``linear``):
  Bybit lists ``BTCUSDT`` both as spot and as a linear swap, the ledger keys instruments by
  wire symbol, so ``market_types = ("swap",)`` picks the swap.
- **Login**: ``{"op": "auth", "args": [apiKey, expires_ms, signature]}`` with ``signature =
  hex(HMAC_SHA256(secret, "GET/realtime" + str(expires_ms)))`` and ``expires`` later than now
  (ccxt ``pro/bybit.py: authenticate`` uses now + 10 s, so do we). ``{"success": true, "op":
  "auth"}`` is ``LOGGED_IN``; ``success: false`` (``"error:USVC1111"``, the reply may name the op
  only in its echoed ``request``) is ``AUTH_REJECTED``.
- **Subscribe**: one request for ``execution``, ``order``, ``position`` and ``wallet`` (the
  all-in-one topics, §6.6). Bybit acks a *request* once, without naming its topics, so the ack
  is one ``SUBSCRIBED`` for the channel :data:`SUBSCRIPTION`, which is all
  :meth:`BybitAccount.subscribe_channels` waits for.
- **Pushes** ``{"topic", "id", "creationTime", "data": [...]}``: ``execution`` rows with
  ``execType == "Trade"`` are ``Fill``\\ s (``execId`` is the fill id, §2.5; funding, ADL and
  settlement rows are not trades); ``order`` -> ``OrderUpdate`` (``cumExecQty`` cumulative);
  ``position`` -> ``PositionReport`` (one-way mode: ``side`` ``Buy``/``Sell`` + unsigned
  ``size``; hedge-mode rows, ``positionIdx`` 1/2, are refused: the ledger is net-mode);
  ``wallet`` -> ``BalanceReport`` of each coin's ``walletBalance`` at ``creationTime``.
- **Realized PnL** (🔸 secondary): §6.6 does not list it, but Bybit's execution pages (WS and
  ``/v5/execution/list``) document ``execPnl`` "Execution PnL". When a linear execution carries
  it, it is ``Fill.realized_pnl`` (fees excluded, ⚠ as OKX's ``fillPnl``); absent or empty, the
  ledger computes it from its own average entry price.
- **Session end** (⚠): Bybit documents no lifetime of an authenticated session and no
  "logged out" message; the closest documented behaviour is the server closing the private
  connection (``max_active_time`` idle cut, §6.5), which the driver handles as any disconnect.
- **Keepalive** (§6.5): ``{"op": "ping"}`` every 20 s; the private pong ``{"op": "pong"}`` -> ``[]``.
- **REST** (§6.6, §2.4): ``GET /v5/execution/list`` (``category``, ``symbol``,
  ``startTime``/``endTime`` at most 7 days apart, ``limit`` <= 100, newest first, ``cursor``
  paging, 2 years back). A replay of ``[since, until]`` walks 7-day windows oldest first and
  follows each window's ``nextPageCursor`` until it is empty. Full sync: ``/v5/position/list``,
  ``/v5/account/wallet-balance`` (``accountType=UNIFIED``), ``/v5/order/realtime``.
- **Consistency mark** (⚠: the transaction log is not in §6; its parameters are ccxt 4.5.90's
  ``fetch_ledger`` comments and Bybit's ``/v5/account/transaction-log`` page): a full sync or a
  reconciliation reads the venue's *last-change time* before and after its other reads and
  trusts the picture when it did not move. Bybit's wallet-balance has none (its ``time`` is the
  server clock of the answer, different on every call), so
  :meth:`BybitAccount.account_mark_call` is the extra read: ``GET /v5/account/transaction-log
  ?accountType=UNIFIED&limit=1`` (ccxt ``private_get_v5_account_transaction_log``; every
  balance change of the unified account, trade, fee, realized PnL, funding, transfer, writes one
  row; newest first; no category/currency filter, so a change of any coin the balances report
  moves it), and :meth:`BybitAccount.parse_account_mark` takes the newest row's
  ``transactionTime``. :meth:`BybitAccount.parse_balances` reports no mark (``ts_exchange_ns``
  0). Order placements and cancels of a linear account move no balance and write no row:
  the mark is the last *balance* change (what balances and positions are compared at).
- **Empty log** (⚠ Bybit: without ``startTime``/``endTime`` the log covers the last 24 h): no
  row means no balance change in ``[time - 24 h, time]`` (``time``: the answer's server
  clock), so any instant from ``time - 24 h`` on is a truthful mark. The mark is that window's
  start rounded *up* to the hour: inside the window (still no change after it), and the same
  for two reads within one hour, so the before/after comparison can succeed. 0 (all history
  covered, fills after it applied on top of a baseline) would be wrong for an account that
  traded more than a day ago.
- ⚠ Two balance changes in the same ms as the first mark read cannot be told apart by
  ``transactionTime`` alone (the simulator's account times are unique per event).
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
from .._private import (AccountAdapterBase, convert, guarded_rest, hmac_sha256_hex, json_body, money, ms_ns,
                        opt_text, order_status, quantity, trade_side)
from .private_schemas import (
    Envelope,
    ExecutionRow,
    ListResult,
    OrderRow,
    PositionRow,
    TransactionRow,
    WalletRow,
)
from .spec import CAPABILITIES, ping_message

if TYPE_CHECKING:  # the cursor type of the AccountAdapter signature (a plain value, never built here)
    from bookkeeper.actions import FillCursor

__all__ = ["BYBIT_ACCOUNT", "BybitAccount", "SlicedCall", "auth_signature", "decode_private"]

EXCHANGE = "bybit"
CCXT_ID = "bybit"
#: §6.6: the private stream
WS_ROOT = "wss://stream.bybit.com"
WS_PRIVATE_PATH = "/v5/private"
#: §6.6: what the auth signature signs before ``expires``
AUTH_PREFIX = "GET/realtime"
#: how far ahead ``expires`` is set (ccxt ``pro/bybit.py: authenticate``: now + 10 s)
AUTH_EXPIRES_AHEAD_MS = 10_000
#: the account's market (linear only) and its settle coin (``settleCoin`` is required by
#: ``/v5/position/list`` and ``/v5/order/realtime`` for ``linear`` without a symbol)
CATEGORY = "linear"
SETTLE_COIN = "USDT"
ACCOUNT_TYPE = "UNIFIED"
#: §6.6: the all-in-one private topics, subscribed in one request
TOPICS: tuple[str, ...] = ("execution", "order", "position", "wallet")
#: the channel of the one ``SUBSCRIBED`` a subscribe ack yields (Bybit acks a request, not topics)
SUBSCRIPTION = "+".join(TOPICS)
DAY_MS = 86_400_000
#: §6.6 execution/list: ``limit`` 1-100, ``endTime - startTime`` <= 7 days, 2 years back
PAGE_SIZE = 100
WINDOW_MS = 7 * DAY_MS
RETENTION_MS = 730 * DAY_MS
#: ⚠ /v5/account/transaction-log without startTime/endTime: the last 24 h (module docstring)
LOG_WINDOW_MS = DAY_MS
HOUR_MS = 3_600_000
#: /v5/position/list ``limit`` maximum; /v5/order/realtime ``limit`` maximum
POSITIONS_LIMIT = 200
OPEN_ORDERS_LIMIT = 50

HISTORY = FillHistory(
    page_size=PAGE_SIZE,
    paging=FillPaging.TIME_RANGE,  # startTime/endTime + cursor (§6.6)
    retention_ns=RETENTION_MS * 1_000_000,
    max_span_ns=WINDOW_MS * 1_000_000,
)

#: ``orderStatus`` -> OrderStatus (Bybit v5 enums): conditional orders not yet triggered are
#: still open; ``PartiallyFilledCanceled`` and ``Deactivated`` (a cancelled conditional) end it
_STATUS: dict[str, OrderStatus] = {
    "Created": OrderStatus.NEW,
    "New": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "Active": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}
_SIDES: dict[str, TradeSide] = {"Buy": TradeSide.BUY, "Sell": TradeSide.SELL}


def _fail(message: str, raw: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(message, exchange=EXCHANGE, raw=_excerpt(raw), symbol=symbol)


def _side(value: str, raw: Any, symbol: str | None) -> TradeSide:
    return trade_side(_SIDES, value, EXCHANGE, raw, symbol)


def auth_signature(secret: str, expires_ms: int) -> str:
    """``hex(HMAC_SHA256(secret, "GET/realtime" + str(expires_ms)))`` (§6.6).

    >>> auth_signature("s", 1)[:12]
    '5691ea9fc0a0'
    """
    return hmac_sha256_hex(secret, AUTH_PREFIX + str(int(expires_ms)))


# ----------------------------------------------------------------------------- rows -> events


def _fill(r: ExecutionRow, raw: Any, ts_recv_ns: int) -> Fill:
    sym = r.symbol
    if not r.execId:
        raise _fail("execution without an execId", raw, sym)
    px = quantity(r.execPrice, "execPrice", EXCHANGE, raw, sym)
    qty = quantity(r.execQty, "execQty", EXCHANGE, raw, sym)
    if px == 0 or qty == 0:
        raise _fail(f"execution with zero price or size ({r.execPrice} x {r.execQty})", raw, sym)
    realized = None
    if r.execPnl and r.category in ("", "linear", "inverse"):
        realized = money(r.execPnl, "execPnl", EXCHANGE, raw, sym)
    return Fill(symbol=sym, fill_id=r.execId, order_id=r.orderId, side=_side(r.side, raw, sym), price=px, qty=qty,
                fee=money(r.execFee or "0", "execFee", EXCHANGE, raw, sym), fee_currency=opt_text(r.feeCurrency),
                ts_exchange_ns=ms_ns(r.execTime, "execTime", EXCHANGE, raw, sym), ts_recv_ns=ts_recv_ns,
                realized_pnl=realized)


def _fills(rows: list[ExecutionRow], raw: Any, ts_recv_ns: int) -> list[Fill]:
    # only trades are fills; Funding/AdlTrade/BustTrade/Settle/... rows move no traded quantity
    # of ours the ledger accounts as a fill (§6.6 ``execType``)
    return [_fill(r, raw, ts_recv_ns) for r in rows if r.execType == "Trade"]


def _order_update(r: OrderRow, raw: Any, ts_recv_ns: int) -> OrderUpdate:
    sym = r.symbol
    qty = quantity(r.qty, "qty", EXCHANGE, raw, sym)
    filled = quantity(r.cumExecQty or "0", "cumExecQty", EXCHANGE, raw, sym)
    if filled > qty:
        raise _fail(f"cumExecQty {filled} exceeds qty {qty}", raw, sym)
    price = quantity(r.price, "price", EXCHANGE, raw, sym) if r.price else None  # "" / "0": market
    return OrderUpdate(symbol=sym, order_id=r.orderId, side=_side(r.side, raw, sym),
                       status=order_status(_STATUS, r.orderStatus, EXCHANGE, raw, sym), qty=qty, filled_qty=filled,
                       price=price or None, client_order_id=opt_text(r.orderLinkId),
                       ts_exchange_ns=(ms_ns(r.updatedTime, "updatedTime", EXCHANGE, raw, sym)
                                       or ms_ns(r.createdTime, "createdTime", EXCHANGE, raw, sym)),
                       ts_recv_ns=ts_recv_ns)


def _position(r: PositionRow, raw: Any, ts_recv_ns: int) -> PositionReport:
    sym = r.symbol
    if r.positionIdx != 0:
        # hedge mode (1: buy side, 2: sell side) holds two positions per symbol: the ledger is net
        raise _fail(f"positionIdx {r.positionIdx}: only one-way mode (0) is supported", raw, sym)
    size = quantity(r.size, "size", EXCHANGE, raw, sym)
    if r.side == "Buy":
        qty = size
    elif r.side == "Sell":
        qty = -size
    elif r.side in ("", "None") and size == 0:
        qty = Decimal(0)
    else:
        raise _fail(f"bad position side {_r(r.side)} for size {r.size}", raw, sym)
    avg_text = r.avgPrice or r.entryPrice
    avg = quantity(avg_text, "avgPrice", EXCHANGE, raw, sym) if avg_text else None
    return PositionReport(symbol=sym, qty=qty, avg_entry_price=avg or None,
                          ts_exchange_ns=ms_ns(r.updatedTime, "updatedTime", EXCHANGE, raw, sym),
                          ts_recv_ns=ts_recv_ns)


def _balances(rows: list[WalletRow], raw: Any) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for row in rows:
        for c in row.coin:
            out[c.coin] = money(c.walletBalance, "walletBalance", EXCHANGE, raw)
    return out


# ----------------------------------------------------------------------------- the stream


def _push(topic: str, obj: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    data = obj.get("data")
    if type(data) is not list:
        raise _fail("data must be a list", frame)
    base = topic.split(".", 1)[0]  # "execution.linear" -> "execution"
    if base == "execution":
        return list(_fills(convert(data, list[ExecutionRow], EXCHANGE, frame), frame, ts_recv_ns))
    if base == "order":
        return [_order_update(r, frame, ts_recv_ns) for r in convert(data, list[OrderRow], EXCHANGE, frame)]
    if base == "position":
        return [_position(r, frame, ts_recv_ns) for r in convert(data, list[PositionRow], EXCHANGE, frame)]
    if base == "wallet":
        rows = convert(data, list[WalletRow], EXCHANGE, frame)
        if not rows:
            return []
        return [BalanceReport(balances=_balances(rows, frame),
                              ts_exchange_ns=ms_ns(obj.get("creationTime"), "creationTime", EXCHANGE, frame),
                              ts_recv_ns=ts_recv_ns)]
    return []  # fast-execution, greeks, dcp ...


def _control(obj: dict[str, Any], frame: Any, ts_recv_ns: int) -> list[PrivateEvent]:
    op = obj.get("op")
    request = obj.get("request")
    if op is None and type(request) is dict:
        op = request.get("op")  # auth errors name the op only in the echoed request
    if op is not None and type(op) is not str:
        raise _fail(f"op must be a string, got {_r(op)}", frame)
    msg = obj.get("ret_msg")
    if msg is not None and type(msg) is not str:
        raise _fail(f"ret_msg must be a string, got {_r(msg)}", frame)
    message = (msg or "")[:200]
    success = obj.get("success")
    if success is not None and type(success) is not bool:
        raise _fail(f"success must be a boolean, got {_r(success)}", frame)
    if op == "pong" or message == "pong":
        return []
    if op == "auth":
        if success:
            return [PrivateControl(kind=PrivateControlKind.LOGGED_IN, message=message, ts_recv_ns=ts_recv_ns)]
        return [PrivateControl(kind=PrivateControlKind.AUTH_REJECTED, message=message, ts_recv_ns=ts_recv_ns)]
    if op == "subscribe" and success:
        return [PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel=SUBSCRIPTION, ts_recv_ns=ts_recv_ns)]
    if success is False:
        return [PrivateControl(kind=PrivateControlKind.ERROR, message=f"{op or 'request'} failed: {message}",
                               ts_recv_ns=ts_recv_ns)]
    return []  # unsubscribe acks and the like


def decode_private(frame: bytes | str, ts_recv_ns: int) -> list[PrivateEvent]:
    """Translate one private-stream frame (see the module docstring); pongs -> ``[]``.

    Raises:
        AdapterError: invalid JSON, or a malformed push or control frame.
    """
    obj = loads(frame, EXCHANGE)
    if type(obj) is not dict:
        raise _fail("frame is not a JSON object", frame)
    topic = obj.get("topic")
    if topic is None:
        return _control(obj, frame, ts_recv_ns)
    if type(topic) is not str:
        raise _fail(f"topic must be a string, got {_r(topic)}", frame)
    return _push(topic, obj, frame, ts_recv_ns)


# ----------------------------------------------------------------------------- REST


def _result(body: Any, type_: Any, symbol: str | None = None) -> Any:
    """``result`` of a successful REST answer, converted to ``type_``.

    Raises:
        AdapterError: not an answer, ``retCode`` other than 0, or ``result`` of another shape.
    """
    env = convert(json_body(body, EXCHANGE), Envelope, EXCHANGE, body, symbol)
    if env.retCode != 0:
        raise _fail(f"venue error {env.retCode}: {env.retMsg[:200]}", body, symbol)
    return convert(env.result, type_, EXCHANGE, body, symbol)


def _listed(body: Any, row_type: Any, symbol: str | None = None) -> tuple[list[Any], str]:
    result: ListResult = _result(body, ListResult, symbol)
    return convert(result.rows, list[row_type], EXCHANGE, body, symbol), result.nextPageCursor


@dataclass(frozen=True, slots=True, kw_only=True)
class SlicedCall(RestCall):
    """An ``/v5/execution/list`` request for one <= 7-day window of a replay's range,
    remembering where the range ends (``until_ms``: not a request parameter, ccxt never sees
    it), so that :meth:`BybitAccount.parse_fills_page` can ask for the next window once this
    one's cursor runs out."""

    until_ms: int


def _window(symbol: str, start_ms: int, until_ms: int) -> SlicedCall:
    """The window ``[start, min(start + 7 d, until)]`` (§6.6: at most 7 days per query)."""
    end = max(start_ms, min(start_ms + WINDOW_MS, until_ms))
    return SlicedCall(ccxt_id=CCXT_ID, method="private_get_v5_execution_list", until_ms=until_ms,
                      params={"category": CATEGORY, "symbol": symbol, "startTime": start_ms, "endTime": end,
                              "limit": PAGE_SIZE})


class BybitAccount(AccountAdapterBase):
    """Bybit's :class:`~bookkeeper.ports.AccountAdapter` (see the module docstring)."""

    name = EXCHANGE
    ccxt_id = CCXT_ID
    #: linear swaps only: ``BTCUSDT`` is also a spot symbol, the swap is the account's
    market_types: tuple[str, ...] = ("swap",)
    history = HISTORY
    #: ⚠ Bybit documents no lifetime of an authenticated private session (§6.5, §6.6)
    session_lifetime_s: float | None = None
    #: §6.5: ``{"op": "ping"}`` every 20 s (the public spec's figures)
    ping_interval_s: float | None = CAPABILITIES.ping_interval_s
    pong_timeout_s: float | None = CAPABILITIES.pong_timeout_s

    def default_private_ws_root(self) -> str:
        """``wss://stream.bybit.com`` (§6.6)."""
        return WS_ROOT

    def private_ws_url(self, root: str) -> str:
        """``{root}/v5/private``. A root given with a stream path (the public adapter's root,
        ``wss://stream.bybit.com/v5/public/linear``, which the simulator's ``ws_root`` also
        is) is reduced to its host first: Bybit serves every stream of a host under ``/v5``."""
        base = root.rstrip("/")
        marker = base.find("/v5/")
        if marker >= 0:
            base = base[:marker]
        return base + WS_PRIVATE_PATH

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt's API URLs (public and private share the host; ccxt signs the query, not the
        host) pointed at ``base_url``."""
        base = base_url.rstrip("/")
        return {"urls": {"api": {k: base for k in ("spot", "futures", "v2", "public", "private")}}}

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """``op: auth`` expiring 10 s after ``now_ms``, signed as ccxt's ``pro/bybit.py:
        authenticate`` signs it (§6.6).

        Returns:
            One text frame; it holds the key and the signature, never the secret.
        """
        expires = int(now_ms) + AUTH_EXPIRES_AHEAD_MS
        sign = auth_signature(credentials.reveal_secret(), expires)
        return [orjson.dumps({"req_id": f"auth-{request_id}", "op": "auth",
                              "args": [credentials.api_key, expires, sign]}).decode()]

    def subscribe_messages(self, *, request_id: str) -> list[str]:
        """One ``op: subscribe`` for ``execution``, ``order``, ``position`` and ``wallet``."""
        return [orjson.dumps({"req_id": f"sub-{request_id}", "op": "subscribe", "args": list(TOPICS)}).decode()]

    def subscribe_channels(self) -> frozenset[str]:
        """The one :data:`SUBSCRIPTION` the request's ack yields."""
        return frozenset({SUBSCRIPTION})

    def ping_message(self) -> str | None:
        """``{"op":"ping"}`` (§6.5)."""
        return ping_message()

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder for one connection (stateless; raises only :class:`AdapterError`
        on malformed frames, ``_common.FrameDecoder``)."""
        return FrameDecoder(decode_private, exchange=EXCHANGE)  # type: ignore[arg-type]

    # -- fills history ------------------------------------------------------------------

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """The first <= 7-day window of ``[since_ms, until_ms]`` (Bybit pages by time and an
        opaque cursor, not by execution id: the cursor's fill id cannot start a page)."""
        start = max(since_ms, 0)
        return _window(symbol, start, max(until_ms, start))

    @guarded_rest(EXCHANGE)
    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """An ``/v5/execution/list`` answer (newest first). A non-empty ``nextPageCursor``
        continues the same window; an exhausted window is followed by the next one until
        ``until_ms`` is covered; then the replay ends.

        Raises:
            AdapterError: malformed body or a ``retCode`` other than 0.
        """
        rows, cursor = _listed(body, ExecutionRow, symbol)
        fills = tuple(_fills(rows, body, ts_recv_ns))
        params = call.params
        if cursor and rows:
            return FillsPage(fills=fills, next_call=_with_params(call, {**params, "cursor": cursor}))
        end = params.get("endTime")
        until = call.until_ms if isinstance(call, SlicedCall) else end
        if not isinstance(end, int) or not isinstance(until, int) or end >= until:
            return FillsPage(fills=fills, next_call=None)
        return FillsPage(fills=fills, next_call=_window(str(params.get("symbol", symbol)), end + 1, until))

    # -- full sync ----------------------------------------------------------------------

    def balances_call(self) -> RestCall:
        """``GET /v5/account/wallet-balance?accountType=UNIFIED``."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_v5_account_wallet_balance",
                        params={"accountType": ACCOUNT_TYPE})

    @guarded_rest(EXCHANGE)
    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """Each coin's ``walletBalance``; ``ts_exchange_ns`` 0: the answer has no last-change
        time, the mark is :meth:`account_mark_call`'s (module docstring, "Consistency mark").

        Raises:
            AdapterError: malformed body, a ``retCode`` other than 0, or no account row.
        """
        rows, _ = _listed(body, WalletRow)
        if not rows:
            raise _fail("wallet-balance answer without an account", body)
        return BalanceReport(balances=_balances(rows, body), ts_exchange_ns=0, ts_recv_ns=ts_recv_ns)

    def account_mark_call(self) -> RestCall | None:
        """``GET /v5/account/transaction-log?accountType=UNIFIED&limit=1``: the newest row of
        the account's transaction log (newest first; the last 24 h without times, ⚠)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_v5_account_transaction_log",
                        params={"accountType": ACCOUNT_TYPE, "limit": 1})

    @guarded_rest(EXCHANGE)
    def parse_account_mark(self, body: Any, *, ts_recv_ns: int = 0) -> int:
        """The newest ``transactionTime`` in ns; for an empty log, the start of its 24 h
        window (``time - 24 h``) rounded up to the hour (module docstring, "Empty log").

        Raises:
            AdapterError: malformed body, a ``retCode`` other than 0, or an empty log
                without the answer's ``time``.
        """
        obj = json_body(body, EXCHANGE)
        rows, _ = _listed(obj, TransactionRow)
        if rows:
            return max(ms_ns(r.transactionTime, "transactionTime", EXCHANGE, body) for r in rows)
        now_ms = convert(obj, Envelope, EXCHANGE, body).time
        if now_ms <= LOG_WINDOW_MS:
            raise _fail("empty transaction log without the answer's time: no mark", body)
        start = now_ms - LOG_WINDOW_MS
        return -(-start // HOUR_MS) * HOUR_MS * 1_000_000

    def positions_call(self) -> RestCall | None:
        """``GET /v5/position/list?category=linear&settleCoin=USDT`` (every linear position)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_v5_position_list",
                        params={"category": CATEGORY, "settleCoin": SETTLE_COIN, "limit": POSITIONS_LIMIT})

    @guarded_rest(EXCHANGE)
    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """Each row's signed size (one-way mode).

        Raises:
            AdapterError: malformed body, a ``retCode`` other than 0, a hedge-mode row, or a
                full page with more behind it (one request cannot hold the set).
        """
        rows, cursor = _listed(body, PositionRow)
        if cursor and len(rows) >= POSITIONS_LIMIT:
            raise _fail(f"more than {POSITIONS_LIMIT} positions: the set needs paging", body)
        return [_position(r, body, ts_recv_ns) for r in rows]

    def open_orders_call(self) -> RestCall:
        """``GET /v5/order/realtime?category=linear&settleCoin=USDT`` (open orders only)."""
        return RestCall(ccxt_id=CCXT_ID, method="private_get_v5_order_realtime",
                        params={"category": CATEGORY, "settleCoin": SETTLE_COIN, "limit": OPEN_ORDERS_LIMIT})

    @guarded_rest(EXCHANGE)
    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The open orders (``cumExecQty`` cumulative).

        Raises:
            AdapterError: malformed body, a ``retCode`` other than 0, or a full page with
                more behind it (the authoritative set must be whole).
        """
        rows, cursor = _listed(body, OrderRow)
        if cursor and len(rows) >= OPEN_ORDERS_LIMIT:
            raise _fail(f"more than {OPEN_ORDERS_LIMIT} open orders: the set needs paging", body)
        return [_order_update(r, body, ts_recv_ns) for r in rows]


def _with_params(call: RestCall, params: dict[str, Any]) -> RestCall:
    if isinstance(call, SlicedCall):
        return SlicedCall(ccxt_id=call.ccxt_id, method=call.method, params=params, until_ms=call.until_ms)
    return RestCall(ccxt_id=call.ccxt_id, method=call.method, params=params)


BYBIT_ACCOUNT = BybitAccount()
