"""Binance spot private wire shapes, fields spelled as Binance spells them (exchange-protocols.md §3.6).

The user data stream arrives over the WS API (``wss://ws-api.binance.com:443/ws-api/v3``) as
``{"subscriptionId": N, "event": {...}}``; answers to our requests as ``{"id": .., "status": 200,
"result": {...}}`` or ``{"id": .., "status": 4xx, "error": {"code": -1022, "msg": ".."}}``
(binance-spot-api-docs ``web-socket-api.md`` "Response format", ``user-data-stream.md``).

Money is a decimal *string* on the wire and stays ``str`` here: the parser turns it into
``Decimal`` (``msgspec`` would also take a JSON float or ``"NaN"`` for a ``Decimal`` field).
Only the fields the account side reads are declared; the venue's others are ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ExecutionReport(msgspec.Struct):
    """``executionReport``: every change of one of our orders (a trade is ``x == "TRADE"``)."""

    E: int  # event time, ms
    s: str  # symbol, "BTCUSDT"
    c: str  # clientOrderId (of the cancel request itself on a cancel report, see C)
    S: str  # side, "BUY" | "SELL"
    q: str  # order quantity
    p: str  # order price ("0.00000000" for market orders)
    x: str  # execution type: NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED, TRADE_PREVENTION
    X: str  # order status: NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, ...
    i: int  # orderId
    l: str  # noqa: E741 - last executed quantity (this trade)
    L: str  # last executed price (this trade)
    z: str  # cumulative filled quantity
    n: str  # commission of this trade ("0" when none)
    T: int  # transaction time, ms
    t: int  # trade id; -1 unless x == "TRADE"
    N: str | None = None  # commission asset; null when no commission
    C: str = ""  # original clientOrderId of the order a cancel report is about ("" otherwise)
    o: str = ""  # order type: LIMIT, MARKET, ...
    Z: str = "0"  # cumulative quote quantity (average price = Z / z)
    I: int | None = None  # noqa: E741 - execution id, unique per report


class AssetBalance(msgspec.Struct):
    """One asset of ``outboundAccountPosition.B``."""

    a: str  # asset
    f: str  # free
    l: str  # noqa: E741 - locked


class OutboundAccountPosition(msgspec.Struct):
    """``outboundAccountPosition``: the absolute balances of the assets that changed."""

    E: int  # event time, ms
    B: list[AssetBalance]
    u: int = 0  # time of the account's last update, ms


class BalanceUpdateEvent(msgspec.Struct):
    """``balanceUpdate``: a deposit, withdrawal or transfer (not a trade)."""

    E: int  # event time, ms
    a: str  # asset
    d: str  # balance delta, signed
    T: int  # clear time, ms


class RequestError(msgspec.Struct):
    """``error`` of a failed WS API request."""

    code: int  # -1022 bad signature, -2015 bad key / IP / permissions, -1021 timestamp outside recvWindow
    msg: str = ""


class RequestAnswer(msgspec.Struct):
    """The answer to one of our WS API requests."""

    status: int  # HTTP-like: 200 ok, 400/401/403/418/429 ...
    id: str | int | None = None  # our request id, echoed
    result: Any = None  # {"subscriptionId": N} for userDataStream.subscribe.signature
    error: RequestError | None = None


# ----------------------------------------------------------------------------- REST (ccxt implicit)


class MyTrade(msgspec.Struct):
    """A row of ``GET /api/v3/myTrades`` (``private_get_mytrades``), ascending by ``id``."""

    symbol: str
    id: int  # trade id (the stream's ``t``)
    orderId: int
    price: str
    qty: str
    commission: str
    time: int  # ms
    isBuyer: bool
    commissionAsset: str | None = None


class AccountBalance(msgspec.Struct):
    """A row of ``GET /api/v3/account`` ``balances``."""

    asset: str
    free: str
    locked: str


class Account(msgspec.Struct):
    """``GET /api/v3/account`` (``private_get_account``)."""

    balances: list[AccountBalance]
    updateTime: int = 0  # ms of the account's last change (every fill changes it)


class OpenOrder(msgspec.Struct):
    """A row of ``GET /api/v3/openOrders`` (``private_get_openorders``)."""

    symbol: str
    orderId: int
    price: str  # "0.00000000" for market orders
    origQty: str
    executedQty: str  # cumulative
    status: str
    side: str  # "BUY" | "SELL"
    clientOrderId: str = ""
    type: str = ""
    time: int = 0  # ms, order creation
    updateTime: int = 0  # ms, last change
