"""OKX v5 private wire shapes, fields spelled as OKX spells them (exchange-protocols.md §5.6).

Private stream (``wss://ws.okx.com:8443/ws/v5/private``)::

    {"event": "login", "code": "0", "msg": "", "connId": "a4d3ae55"}
    {"event": "error", "code": "60009", "msg": "Login failed.", "connId": "a4d3ae55"}
    {"event": "subscribe", "arg": {"channel": "orders", "instType": "ANY"}, "connId": "a4d3ae55"}
    {"arg": {"channel": "orders", "instType": "ANY", "uid": "77"}, "data": [{order}]}
    {"arg": {"channel": "positions", ...}, "eventType": "snapshot" | "event_update", "data": [...]}
    {"arg": {"channel": "account", "uid": "77"}, "eventType": ..., "data": [{"uTime", "details": [...]}]}

and the text ``pong``. REST bodies are ``{"code": "0", "msg": "", "data": [...]}``.

Every number is a *string* on OKX's wire (amounts, ids and ms timestamps alike) and stays
``str`` here; the parser turns amounts into ``Decimal`` and times into ns. OKX writes ``""``
for "none" (``px`` of a market order, ``tradeId`` of a report that is not a fill). Only the
fields the account side reads are declared.
"""

from __future__ import annotations

import msgspec


class OrderRow(msgspec.Struct):
    """An order of the ``orders`` channel (also a row of REST ``orders-pending``, which lacks
    the ``fill*`` fields)."""

    instId: str  # "BTC-USDT", "BTC-USDT-SWAP"
    ordId: str
    side: str  # "buy" | "sell"
    state: str  # live, partially_filled, filled, canceled, mmp_canceled
    sz: str  # order size (contracts for SWAP)
    accFillSz: str = "0"  # cumulative filled size
    px: str = ""  # limit price, "" for market orders
    clOrdId: str = ""
    uTime: str = ""  # ms of the order's last update
    cTime: str = ""  # ms of creation
    tradeId: str = ""  # last fill's trade id; "" (REST: "0" or "") when the push is not a fill
    fillSz: str = "0"  # last fill's size
    fillPx: str = ""  # last fill's price
    fillTime: str = ""  # last fill's time, ms
    fillFee: str = "0"  # last fill's fee: NEGATIVE when charged, positive for a rebate
    fillFeeCcy: str = ""
    fillPnl: str = ""  # last fill's realized PnL (closing derivative fills; "0" otherwise)
    tgtCcy: str = ""  # spot market orders: "quote_ccy" when sz is in the quote currency
    instType: str = ""


class PositionRow(msgspec.Struct):
    """A position of the ``positions`` channel / REST ``account/positions``."""

    instId: str
    pos: str  # net mode: signed contracts (long > 0); long/short mode: size of that side
    posSide: str = "net"  # "net" | "long" | "short"
    avgPx: str = ""  # average entry price, "" when flat
    uTime: str = ""  # ms
    instType: str = ""


class BalanceDetail(msgspec.Struct):
    """One currency of an ``account`` push / REST ``account/balance`` ``details``."""

    ccy: str
    cashBal: str  # the cash balance: what fills, fees and realized PnL move
    uTime: str = ""


class AccountRow(msgspec.Struct):
    """``data[i]`` of an ``account`` push / REST ``account/balance``."""

    details: list[BalanceDetail]
    uTime: str = ""  # ms of the account's last change


class FillRow(msgspec.Struct):
    """A row of REST ``trade/fills-history`` / ``trade/fills``, NEWEST FIRST."""

    instId: str
    tradeId: str
    ordId: str
    billId: str  # the paging token: ``after=billId`` returns older rows
    side: str  # "buy" | "sell"
    fillSz: str
    fillPx: str
    fee: str  # NEGATIVE when charged
    feeCcy: str = ""
    fillPnl: str = ""  # the fill's realized PnL (derivatives)
    ts: str = ""  # ms; begin/end filter on it
    fillTime: str = ""  # ms of the trade (the stream's fillTime)
    instType: str = ""


class Envelope(msgspec.Struct):
    """A REST answer: ``code "0"`` is success; ``data`` is checked per endpoint."""

    code: str
    data: list[object] = []
    msg: str = ""
