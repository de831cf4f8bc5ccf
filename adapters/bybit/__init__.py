"""Bybit adapter: v5 ``orderbook.{depth}.{symbol}`` and, for recorded sessions, the retired
v2 ``orderBookL2_25`` format (told apart by topic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import LegacyBooks, decode, parse_rest_snapshot

__all__ = ["BybitAdapter", "BYBIT"]


class _Decoder:
    """Per connection: v5 frames are self-describing; the legacy format needs id -> price."""

    __slots__ = ("_legacy",)

    def __init__(self) -> None:
        self._legacy = LegacyBooks()

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns, self._legacy)


class BybitAdapter:
    def __init__(self, name: str, capabilities: ExchangeCapabilities) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder()

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_snapshot(body, symbol, ts_recv_ns)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return spec.ping_message()


BYBIT = BybitAdapter("bybit", spec.CAPABILITIES)
