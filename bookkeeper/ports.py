"""Protocols between the core, the adapters and the drivers.

An *adapter* is a pure translator for one venue: wire frames and REST bodies in, normalized
events out, plus the venue's capabilities and the text of its subscribe / ping messages. It
never connects, sleeps or retries. A per-connection :class:`Decoder` holds what a venue's
framing forces a parser to remember (Kraken v1 channel ids, BitMEX row ids); it is still
pure: bytes in, events out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .capabilities import ExchangeCapabilities
from .events import BookSnapshot, MarketEvent, VenueNotice


@runtime_checkable
class Decoder(Protocol):
    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        """Translate one wire frame. Unknown channels and control messages the core does
        not need yield ``[]``.

        Raises:
            AdapterError: the frame is malformed (bad JSON, wrong types, NaN or negative
                sizes, out-of-range numbers). Nothing was produced from it.
        """
        ...


@runtime_checkable
class Adapter(Protocol):
    """What every venue package exports (``bookkeeper.adapters.get_adapter(name)``)."""

    name: str
    capabilities: ExchangeCapabilities

    def new_decoder(self) -> Decoder:
        """A fresh decoder for one connection (or one recorded session)."""
        ...

    def parse_rest_snapshot(
        self,
        body: bytes | str | Mapping[str, Any],
        *,
        symbol: str | None = None,
        url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        """Translate a REST depth answer (raw body, or the dict ccxt's implicit endpoint
        method returns) into a ``BookSnapshot(source=REST)`` with the venue's sequence id.
        ``symbol`` or ``url`` name the instrument when the body does not.

        Raises:
            AdapterError: malformed body, or no way to tell the symbol.
        """
        ...


@runtime_checkable
class LiveSpec(Protocol):
    """The wire dialogue of a venue's live stream (implemented by venues the live ingest
    supports)."""

    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        """The URL to connect to for ``symbols`` on a server at ``base``."""
        ...

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        """Text frames to send after connecting ([] when the URL subscribes)."""
        ...

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]: ...

    def ping_message(self) -> str | None:
        """The app-level ping frame, or ``None`` where protocol pings suffice."""
        ...

    def reply_to(self, notice: VenueNotice) -> str | None:
        """The frame that answers a venue control message (Deribit's ``test_request``), or
        ``None`` when it needs no answer."""
        ...
