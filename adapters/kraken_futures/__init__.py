"""Kraken Futures (derivatives) order-book adapter (WS v1 ``book`` feed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import EXCHANGE, decode, parse_book, parse_snapshot

__all__ = ["KrakenFuturesAdapter", "KRAKEN_FUTURES", "decode", "parse_book", "parse_snapshot"]


class _Decoder:
    """Stateless: every message names its product."""

    __slots__ = ()

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns)


class KrakenFuturesAdapter:
    """Kraken Futures public books (implements ``ports.Adapter`` and ``ports.LiveSpec``)."""

    def __init__(self, name: str = "kraken_futures", capabilities: ExchangeCapabilities = spec.CAPABILITIES) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder()

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        """Always raises: the REST order book has no ``seq`` and cannot be spliced; recovery
        is a resubscribe (the venue pushes ``book_snapshot``).

        Raises:
            AdapterError: always.
        """
        raise AdapterError("Kraken Futures REST books carry no seq; resubscribe instead", exchange=EXCHANGE,
                           raw=str(body)[:200], symbol=symbol)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return None  # ⚠ protocol pings (see spec.py)


KRAKEN_FUTURES = KrakenFuturesAdapter()
