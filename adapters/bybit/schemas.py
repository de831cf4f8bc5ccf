"""Bybit wire shapes, fields spelled as Bybit spells them.

**v5** (bybit-exchange/docs ``docs/v5/websocket/public/orderbook.mdx``, exchange-protocols.md
§6.1): topic ``orderbook.{depth}.{symbol}``,
``{"topic", "type": "snapshot"|"delta", "ts": ms, "data": {"s", "b": [[px, sz]], "a": [...],
"u": update id, "seq": cross sequence}, "cts": ms}``; sizes are absolute decimal strings and
``"0"`` deletes. REST ``GET /v5/market/orderbook``:
``{"retCode": 0, "retMsg", "result": {"s", "b", "a", "ts", "u", "seq", "cts"}}``. The full
book (spot, §6.1/§6.2) has the same shapes: topic ``orderbook.full.{symbol}`` (always
``type: "delta"``) and REST ``GET /v5/market/full_orderbook`` (:class:`V5FullBook`).

**Legacy v2 inverse** (retired ``wss://stream.bybit.com/realtime``, as recorded by cryptofeed in
2021): topic ``orderBookL2_25.{symbol}`` (also ``orderBook_200.100ms.{symbol}``), rows
``{"price": str, "symbol", "id": int, "side": "Buy"|"Sell", "size": int}`` keyed by ``id``;
``type: "snapshot"`` has ``data: [rows]`` (linear: ``data: {"order_book": [rows]}``),
``type: "delta"`` has ``data: {"delete": [...], "update": [...], "insert": [...]}``; every
message carries ``cross_seq`` (increasing per topic) and ``timestamp_e6`` (µs). Delete rows
may carry only ``id``/``side``, so the decoder remembers ``id -> price``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from .._common import SeqId

Px = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
Sz = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]
Id = SeqId  # 0..2**63-1


class Envelope(msgspec.Struct, kw_only=True):
    """Any frame; ``data`` stays raw until the topic says how to decode it."""

    topic: str | None = None
    type: str | None = None
    ts: int = 0
    data: msgspec.Raw = msgspec.Raw()  # empty Raw = absent (Raw cannot be in a union)
    cross_seq: SeqId | None = None  # legacy
    timestamp_e6: int | None = None  # legacy
    op: str | None = None
    success: bool | None = None
    ret_msg: str | None = None
    request: msgspec.Raw = msgspec.Raw()


class V5BookData(msgspec.Struct, kw_only=True):
    s: str
    b: list[tuple[Px, Sz]]
    a: list[tuple[Px, Sz]]
    u: Id
    seq: int | None = None


class V5RestResult(msgspec.Struct, kw_only=True):
    s: str
    b: list[tuple[Px, Sz]]
    a: list[tuple[Px, Sz]]
    u: Id
    seq: int | None = None
    ts: int = 0


class V5RestBody(msgspec.Struct, kw_only=True):
    retCode: int
    retMsg: str = ""
    result: V5RestResult | None = None


class V5FullBook(msgspec.Struct, kw_only=True):
    """``orderbook.full.{symbol}`` data and the ``GET /v5/market/full_orderbook`` result
    (``docs/v5/websocket/public/full-ob.mdx``, ``docs/v5/market/full-ob.mdx``; §6.1, §6.4):
    ``u`` goes up by exactly 1 per message within a session (1 again after a restart) and
    ``seq``, the matching engine's version (increasing, with gaps), is what places a REST book
    among the deltas, so both are required. The WS message's time is the envelope's ``ts``."""

    s: str
    b: list[tuple[Px, Sz]]
    a: list[tuple[Px, Sz]]
    u: Id
    seq: Id
    ts: int = 0


class V5FullRestBody(msgspec.Struct, kw_only=True):
    retCode: int
    retMsg: str = ""
    result: V5FullBook | None = None


class V5Trade(msgspec.Struct, kw_only=True):
    """One element of ``publicTrade.{symbol}`` data."""

    i: str  # trade id
    s: str
    S: Literal["Buy", "Sell"]
    p: Decimal
    v: Decimal
    T: int = 0


class LegacyRow(msgspec.Struct, kw_only=True):
    id: Id
    side: Literal["Buy", "Sell"]
    symbol: str | None = None
    price: Px | None = None  # a decimal string on the wire
    size: Sz | None = None


class LegacyLinearSnapshot(msgspec.Struct, kw_only=True):
    order_book: list[LegacyRow]


class LegacyDelta(msgspec.Struct, kw_only=True):
    delete: list[LegacyRow] = []
    update: list[LegacyRow] = []
    insert: list[LegacyRow] = []


class LegacyTrade(msgspec.Struct, kw_only=True):
    trade_id: str
    symbol: str
    side: Literal["Buy", "Sell"]
    price: Decimal
    size: Decimal
    trade_time_ms: int = 0
