"""Coinbase Advanced Trade private wire shapes, fields spelled as Coinbase spells them
(exchange-protocols.md §8.1, §8.6).

User stream (``wss://advanced-trade-ws-user.coinbase.com``; every message numbered by the
connection's ``sequence_num``, §8.2)::

    {"channel": "subscriptions", "timestamp", "sequence_num", "events": [{"subscriptions": {"user": [..], ..}}]}
    {"channel": "heartbeats", "timestamp", "sequence_num", "events": [{"current_time", "heartbeat_counter"}]}
    {"channel": "user", "timestamp", "sequence_num", "events": [{"type": "snapshot"|"update", "orders": [..]}]}
    {"type": "error", "message": "..."}                      (no sequence_num)

REST (``/api/v3/brokerage/...``): ``orders/historical/fills`` answers ``{"fills": [..], "cursor"}``,
``orders/historical/batch`` ``{"orders": [..], "has_next", "cursor", "sequence"}``, ``accounts``
``{"accounts": [..], "has_next", "cursor", "size"}``.

Amounts are decimal *strings* and stay ``str`` here (the parser makes ``Decimal`` of them);
times are RFC 3339 strings. Only the fields the account side reads are declared.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Envelope(msgspec.Struct, kw_only=True):
    """Any user-host frame: numbered messages have ``channel`` and ``sequence_num``; an error
    has ``type: "error"`` and neither."""

    channel: str | None = None
    type: str | None = None
    sequence_num: int | None = None
    timestamp: str = ""
    events: list[Any] = []
    message: str = ""
    reason: str = ""


class UserOrder(msgspec.Struct, kw_only=True):
    """An order of a ``user`` event (snapshot batches of 50, then one update per change)."""

    order_id: str
    product_id: str
    order_side: str  # "BUY" | "SELL"
    status: str  # PENDING, OPEN, FILLED, CANCEL_QUEUED, CANCELLED, EXPIRED, FAILED
    cumulative_quantity: str  # filled so far (the fill signal: the stream has no per-fill id)
    leaves_quantity: str  # still to fill
    client_order_id: str = ""
    avg_price: str = "0"
    total_fees: str = "0"
    limit_price: str = ""
    order_type: str = ""
    creation_time: str = ""
    product_type: str = "SPOT"


class UserEvent(msgspec.Struct, kw_only=True):
    type: str  # "snapshot" | "update"
    orders: list[UserOrder] = []


class SubscriptionsEvent(msgspec.Struct, kw_only=True):
    subscriptions: dict[str, list[str]] = {}


class FillRow(msgspec.Struct, kw_only=True):
    """A row of ``orders/historical/fills`` (newest first)."""

    entry_id: str  # unique per fill: the idempotency key (§2.5)
    trade_id: str  # the trade; both sides of a self-trade share it
    order_id: str
    trade_time: str
    price: str
    size: str
    commission: str
    product_id: str
    side: str  # "BUY" | "SELL"
    size_in_quote: bool = False
    trade_type: str = "FILL"
    liquidity_indicator: str = ""
    sequence_timestamp: str = ""


class FillsPage(msgspec.Struct, kw_only=True):
    fills: list[FillRow]
    cursor: str = ""


class Amount(msgspec.Struct, kw_only=True):
    value: str
    currency: str = ""


class AccountRow(msgspec.Struct, kw_only=True):
    """One currency wallet of ``accounts``."""

    currency: str
    available_balance: Amount
    hold: Amount
    updated_at: str = ""
    uuid: str = ""


class AccountsPage(msgspec.Struct, kw_only=True):
    accounts: list[AccountRow]
    has_next: bool = False
    cursor: str = ""


class RestOrder(msgspec.Struct, kw_only=True):
    """An order of ``orders/historical/batch``; its size and limit price are inside
    ``order_configuration`` (``{"limit_limit_gtc": {"base_size", "limit_price", ...}}``)."""

    order_id: str
    product_id: str
    side: str
    status: str
    order_configuration: dict[str, dict[str, Any]] = {}
    client_order_id: str = ""
    filled_size: str = "0"
    created_time: str = ""
    last_fill_time: str | None = None


class OrdersPage(msgspec.Struct, kw_only=True):
    orders: list[RestOrder]
    has_next: bool = False
    cursor: str = ""
