"""Bybit v5 private wire shapes, fields spelled as Bybit spells them (exchange-protocols.md §6.6).

Private stream (``wss://stream.bybit.com/v5/private``)::

    {"success": true, "ret_msg": "", "op": "auth", "conn_id": "..."}
    {"success": false, "ret_msg": "error:USVC1111", "conn_id": "...", "request": {"op": "auth", ...}}
    {"success": true, "ret_msg": "", "op": "subscribe", "conn_id": "...", "req_id": "sub-2"}
    {"req_id": "", "op": "pong", "args": ["1767225600000"], "conn_id": "..."}
    {"topic": "execution" | "order" | "position" | "wallet", "id": "...", "creationTime": ms, "data": [...]}

REST bodies are ``{"retCode": 0, "retMsg": "OK", "result": {...}, "retExtInfo": {}, "time": ms}``;
``/v5/execution/list``, ``/v5/position/list`` and ``/v5/order/realtime`` answer
``result: {"list": [...], "nextPageCursor": "...", "category": "linear"}``.

Amounts and ms timestamps are *strings* on Bybit's wire and stay ``str`` here (the parser
makes ``Decimal``/ns of them); ``seq`` and ``positionIdx`` are JSON integers, ``isMaker`` a
boolean. Only the fields the account side reads are declared.
"""

from __future__ import annotations

import msgspec


class ExecutionRow(msgspec.Struct):
    """One execution of the ``execution`` topic, also a row of REST ``/v5/execution/list``
    (NEWEST FIRST there)."""

    symbol: str
    execId: str  # the fill's idempotency key (§2.5)
    orderId: str
    side: str  # "Buy" | "Sell"
    execPrice: str
    execQty: str
    execType: str  # "Trade" is a fill; "Funding", "AdlTrade", "BustTrade", "Settle", ... are not
    execTime: str  # ms
    execFee: str = "0"  # positive when charged, negative for a maker rebate
    feeCurrency: str = ""
    orderLinkId: str = ""
    isMaker: bool = False
    category: str = ""
    execPnl: str = ""  # realized PnL of a closing execution (see ``private.py``: 🔸 not in §6.6)
    seq: int = -1


class OrderRow(msgspec.Struct):
    """An order of the ``order`` topic / a row of REST ``/v5/order/realtime``."""

    symbol: str
    orderId: str
    side: str  # "Buy" | "Sell"
    orderStatus: str
    qty: str
    cumExecQty: str = "0"  # cumulative filled quantity (§2.5)
    price: str = ""  # "0" or "" for market orders
    orderLinkId: str = ""
    createdTime: str = ""
    updatedTime: str = ""
    category: str = ""


class PositionRow(msgspec.Struct):
    """A position of the ``position`` topic / REST ``/v5/position/list``. One-way mode
    (``positionIdx 0``): ``side`` ``Buy``/``Sell``/``""`` (flat) with an unsigned ``size``."""

    symbol: str
    side: str
    size: str
    positionIdx: int = 0
    avgPrice: str = ""  # REST
    entryPrice: str = ""  # the stream's name for the average entry price
    updatedTime: str = ""
    category: str = ""
    seq: int = -1


class WalletCoin(msgspec.Struct):
    coin: str
    walletBalance: str  # what fills, fees and realized PnL move (not equity: no unrealized PnL)


class WalletRow(msgspec.Struct):
    """``data[i]`` of a ``wallet`` push / ``result.list[i]`` of REST wallet-balance."""

    coin: list[WalletCoin]
    accountType: str = ""


class ListResult(msgspec.Struct):
    rows: list[object] = msgspec.field(name="list", default_factory=list)
    nextPageCursor: str = ""
    category: str = ""


class TransactionRow(msgspec.Struct):
    """A row of REST ``/v5/account/transaction-log`` (newest first): one balance change
    (``type`` ``TRADE``, ``SETTLEMENT``, ``TRANSFER_IN``, ...) at ``transactionTime`` (ms)."""

    transactionTime: str
    currency: str = ""
    cashBalance: str = ""


class Envelope(msgspec.Struct):
    """A REST answer: ``retCode 0`` is success; ``result`` is checked per endpoint."""

    retCode: int
    retMsg: str = ""
    result: object = None
    time: int = 0
