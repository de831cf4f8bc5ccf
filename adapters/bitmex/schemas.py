"""BitMEX wire shapes, fields spelled as BitMEX spelled them (the exchange closed on
2026-09-23; this adapter exists to replay recordings, exchange-protocols.md §12).

Table messages: ``{"table", "action": "partial"|"insert"|"update"|"delete", "data": [rows],
"keys": [...] (partial), "filter": {"symbol"} (partial)}``. ``orderBookL2`` /
``orderBookL2_25`` rows are keyed by ``(symbol, id, side)``:
``{"symbol", "id", "side": "Buy"|"Sell", "size", "price", "timestamp"?}``; ``update`` rows may
omit ``price`` and ``delete`` rows carry only the key, so the decoder keeps ``id -> price``
from ``partial``/``insert`` rows. ``orderBook10`` rows are full top-10 books
``{"symbol", "bids": [[px, sz]], "asks": [...], "timestamp"}``. Prices and sizes are JSON
numbers. Control frames: the welcome ``{"info": ...}``, ``{"success": true, "subscribe": ...}``,
errors ``{"status", "error", "meta": {"retryAfter"}}`` and the text frame ``pong``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from .._common import SeqId

Px = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
Sz = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]
Id = SeqId  # 0..2**63-1


class Filter(msgspec.Struct, kw_only=True):
    symbol: str | None = None


class Envelope(msgspec.Struct, kw_only=True):
    table: str | None = None
    action: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty Raw = absent (Raw cannot be in a union)
    filter: Filter | None = None
    status: int | None = None
    error: str | None = None
    info: str | None = None


class L2Row(msgspec.Struct, kw_only=True):
    symbol: str
    id: Id
    side: Literal["Buy", "Sell"]
    size: Sz | None = None
    price: Px | None = None
    timestamp: str = ""


class Book10Row(msgspec.Struct, kw_only=True):
    symbol: str
    bids: list[tuple[Px, Sz]]
    asks: list[tuple[Px, Sz]]
    timestamp: str = ""


class TradeRow(msgspec.Struct, kw_only=True):
    symbol: str
    trdMatchID: str
    side: Literal["Buy", "Sell"]
    price: Decimal
    size: Decimal
    timestamp: str = ""
