"""Bitget spot order-book adapter (``books`` channel; legacy v1 WS as captured)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import decode, parse_book_entry, parse_levels, parse_rest_depth

__all__ = ["BitgetAdapter", "BITGET", "decode", "parse_book_entry", "parse_levels", "parse_rest_depth"]


class _Decoder:
    """Stateless: every push names its channel and instrument."""

    __slots__ = ()

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns)


class BitgetAdapter:
    """Bitget public order books (implements ``ports.Adapter`` and ``ports.LiveSpec``)."""

    def __init__(self, name: str = "bitget", capabilities: ExchangeCapabilities = spec.CAPABILITIES) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder()

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_depth(body, symbol, url, ts_recv_ns)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return spec.PING


BITGET = BitgetAdapter()
