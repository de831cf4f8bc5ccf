"""Value types shared by every layer.

Prices and sizes on the book's hot path are floats (see style.md, "Decimal vs float"): the
same wire string always parses to the same float, so a level updated twice is found by exact
equality. Money (fills, fees, balances) is :class:`decimal.Decimal` built from wire strings.
Timestamps are integer nanoseconds; delays are float seconds with an ``_s`` suffix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

Price: TypeAlias = float
Qty: TypeAlias = float
Seq: TypeAlias = int
Nanos: TypeAlias = int
#: One book level as the hot path carries it: ``(price, size)``.
Level: TypeAlias = tuple[float, float]
#: The exchange's own text for one level, kept where a checksum needs it.
RawLevel: TypeAlias = tuple[str, str]


class Side(enum.Enum):
    """A side of the order book (not a trade direction, see :class:`TradeSide`)."""

    BID = "bid"
    ASK = "ask"


class TradeSide(enum.Enum):
    """The aggressor / our side of a trade or fill."""

    BUY = "buy"
    SELL = "sell"


class Channel(enum.StrEnum):
    """Whether a stream is public market data or a private (authenticated) channel."""

    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentKey:
    """Identifies one book stream: ``(venue, symbol, channel)``.

    ``symbol`` is spelled as the venue spells it on the wire (``BTCUSDT``, ``BTC-USDT``).
    """

    venue: str
    symbol: str
    channel: str = "book"

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.channel}"
