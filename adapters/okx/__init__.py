"""OKX v5 order-book adapter (``books``, ``books-l2-tbt``, ``books50-l2-tbt``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import decode, parse_book_entry, parse_levels, parse_rest_books

__all__ = ["OKXAdapter", "OKX", "decode", "parse_book_entry", "parse_levels", "parse_rest_books"]


class _Decoder:
    """Stateless: every OKX push names its channel and instrument."""

    __slots__ = ()

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns)


class OKXAdapter:
    """OKX public order books (implements ``ports.Adapter`` and ``ports.LiveSpec``)."""

    def __init__(self, name: str = "okx", capabilities: ExchangeCapabilities = spec.CAPABILITIES) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder()

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_books(body, symbol, url, ts_recv_ns)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return spec.PING  # text "ping" after N < 30 s idle (§5.5)


OKX = OKXAdapter()
