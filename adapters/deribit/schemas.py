"""Deribit wire shapes, fields spelled as Deribit spells them.

JSON-RPC 2.0 over one WebSocket (exchange-protocols.md §9.1). A notification is
``{"jsonrpc":"2.0","method":"subscription","params":{"channel":..., "data":...}}`` with no
``id``; answers to our requests carry ``id`` and ``result`` or ``error``; heartbeats (once
``public/set_heartbeat`` is on) are ``{"method":"heartbeat","params":{"type":"heartbeat"|"test_request"}}``.

Book channels (docs.deribit.com "book.{instrument_name}.{interval}"):
``data = {"type":"snapshot"|"change", "instrument_name", "timestamp": ms, "change_id",
"prev_change_id" (changes only), "bids": [[action, price, amount]], "asks": [...]}`` with
``action`` in ``new|change|delete``; prices and amounts are JSON numbers and the amount is
absolute (``delete`` carries 0). The grouped channel
``book.{instrument_name}.{group}.{depth}.{interval}`` sends full snapshots of ``[price, amount]``
with ``change_id`` and no ``type``.

Params/data are kept as ``msgspec.Raw`` in the envelope so each channel is decoded once, by
its own typed decoder; the ``Meta`` bounds reject NaN, inf, negative sizes, non-positive prices
and absurd values in C.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from .._common import SeqId

Px = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
Sz = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]
ChangeId = SeqId  # 0..2**63-1
Action = Literal["new", "change", "delete"]


class Envelope(msgspec.Struct, kw_only=True):
    """Any frame: a notification (``method`` + ``params``) or a response (``id`` + ...)."""

    method: str | None = None
    # ``Raw`` cannot sit in a union with ``None``: an empty ``Raw`` means "absent".
    params: msgspec.Raw = msgspec.Raw()
    id: int | str | None = None
    result: msgspec.Raw = msgspec.Raw()
    error: msgspec.Raw = msgspec.Raw()


class Notification(msgspec.Struct, kw_only=True):
    channel: str
    data: msgspec.Raw


class HeartbeatParams(msgspec.Struct, kw_only=True):
    type: str


class BookData(msgspec.Struct, kw_only=True):
    """``book.{instrument}.{raw|100ms|agg2}``."""

    type: Literal["snapshot", "change"]
    instrument_name: str
    change_id: ChangeId
    prev_change_id: ChangeId | None = None  # every message but the first (Deribit §9.2)
    bids: list[tuple[Action, Px, Sz]]
    asks: list[tuple[Action, Px, Sz]]
    timestamp: int = 0


class GroupedBookData(msgspec.Struct, kw_only=True):
    """``book.{instrument}.{group}.{depth}.{interval}``: every message a full top-N book."""

    instrument_name: str
    change_id: ChangeId
    bids: list[tuple[Px, Sz]]
    asks: list[tuple[Px, Sz]]
    timestamp: int = 0


class TradeData(msgspec.Struct, kw_only=True):
    """One element of ``trades.{instrument}.{interval}`` data (a list)."""

    trade_id: str
    instrument_name: str
    price: Decimal  # msgspec keeps the JSON number's own digits: money never via float
    amount: Decimal
    direction: Literal["buy", "sell"]
    timestamp: int = 0


class RpcError(msgspec.Struct, kw_only=True):
    code: int = 0
    message: str = ""
