"""Coinbase wire shapes, fields spelled as Coinbase spells them.

**Advanced Trade** (docs.cdp.coinbase.com ".../websocket/websocket-channels" "Level2 Channel",
exchange-protocols.md §8.1): every message is
``{"channel", "client_id", "timestamp", "sequence_num", "events": [...]}``. ``level2`` data
arrives on channel ``l2_data`` with events
``{"type": "snapshot"|"update", "product_id", "updates": [{"side": "bid"|"offer",
"event_time", "price_level", "new_quantity"}]}``; ``new_quantity`` is the new absolute size
and ``"0"`` removes the level. ``sequence_num`` counts messages per *connection*, across all
channels (§8.2).

**Legacy Pro/Exchange feed** (``wss://ws-feed.pro.coinbase.com``, retired; recorded by
cryptofeed in 2021): ``{"type": "snapshot", "product_id", "bids": [[px, sz]], "asks": [...]}``
then ``{"type": "l2update", "product_id", "changes": [[side, px, sz]], "time"}`` with side
``buy``/``sell``; no sequence numbers on ``level2``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from .._common import SeqId

Px = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
Sz = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]
SeqNum = SeqId  # 0..2**63-1


class Envelope(msgspec.Struct, kw_only=True):
    """Enough of any frame to route it: AT frames have ``channel``, legacy ones ``type``."""

    channel: str | None = None
    type: str | None = None


# --------------------------------------------------------------------- Advanced Trade
class AtEnvelope(msgspec.Struct, kw_only=True):
    channel: str
    sequence_num: SeqNum
    timestamp: str = ""
    events: msgspec.Raw = msgspec.Raw()


class AtLevel(msgspec.Struct, kw_only=True):
    side: Literal["bid", "offer"]
    price_level: Px
    new_quantity: Sz
    event_time: str = ""


class AtL2Event(msgspec.Struct, kw_only=True):
    type: Literal["snapshot", "update"]
    product_id: str
    updates: list[AtLevel]


class AtTrade(msgspec.Struct, kw_only=True):
    trade_id: str
    product_id: str
    price: Decimal
    size: Decimal
    side: str = ""
    time: str = ""


class AtTradeEvent(msgspec.Struct, kw_only=True):
    type: str = ""
    trades: list[AtTrade] = []


class AtSubscriptionsEvent(msgspec.Struct, kw_only=True):
    subscriptions: dict[str, list[str]] = {}


# --------------------------------------------------------------------- legacy Pro feed
class LegacySnapshot(msgspec.Struct, kw_only=True):
    product_id: str
    bids: list[tuple[Px, Sz]]
    asks: list[tuple[Px, Sz]]


class LegacyL2Update(msgspec.Struct, kw_only=True):
    product_id: str
    changes: list[tuple[Literal["buy", "sell"], Px, Sz]]
    time: str = ""


class LegacyMatch(msgspec.Struct, kw_only=True):
    trade_id: int
    product_id: str
    price: Decimal
    size: Decimal
    side: Literal["buy", "sell"]  # the MAKER order's side (Coinbase Pro docs, "match")
    time: str = ""


class LegacyHeartbeat(msgspec.Struct, kw_only=True):
    product_id: str | None = None
    sequence: int | None = None


class LegacySubscriptionChannel(msgspec.Struct, kw_only=True):
    name: str
    product_ids: list[str] = []


class LegacySubscriptions(msgspec.Struct, kw_only=True):
    channels: list[LegacySubscriptionChannel | str] = []


class ErrorMessage(msgspec.Struct, kw_only=True):
    message: str = ""
    reason: str = ""
