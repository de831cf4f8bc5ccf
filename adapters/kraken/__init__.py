"""Kraken spot order-book adapter: WS v2 (live) and WS v1 (recordings), REST ``Depth``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot

from . import spec
from .parse import KrakenDecoder, parse_rest_depth, parse_v1_book, parse_v2_levels

__all__ = ["KrakenAdapter", "KRAKEN", "KrakenDecoder", "parse_rest_depth", "parse_v1_book", "parse_v2_levels"]


class KrakenAdapter:
    """Kraken spot public books (implements ``ports.Adapter`` and ``ports.LiveSpec``)."""

    def __init__(self, name: str = "kraken", capabilities: ExchangeCapabilities = spec.CAPABILITIES) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(
        self, *, precisions: Mapping[str, tuple[int, int]] | None = None, depth: int | None = None
    ) -> KrakenDecoder:
        """A decoder for one connection; ``precisions`` seeds the v2 checksum formatting
        (``{symbol: (price_decimals, qty_decimals)}``), ``depth`` the v2 book depth."""
        return KrakenDecoder(precisions, depth)

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_depth(body, symbol, url, ts_recv_ns)

    # LiveSpec (WS v2)
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.unsubscribe_messages(symbols, depth)

    def ping_message(self) -> str | None:
        return spec.PING


KRAKEN = KrakenAdapter()
