"""BitMEX ``orderBookL2`` adapter, for replaying recordings (the exchange closed 2026-09-23)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import L2Tables, decode, parse_rest_snapshot

__all__ = ["BitmexAdapter", "BITMEX"]


class _Decoder:
    """Per connection: the ``(symbol, id, side) -> price`` memory of the L2 tables."""

    __slots__ = ("_tables",)

    def __init__(self) -> None:
        self._tables = L2Tables()

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns, self._tables)


class BitmexAdapter:
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

    # LiveSpec (kept for the simulator; nothing can connect to BitMEX any more)
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return spec.ping_message()


BITMEX = BitmexAdapter("bitmex", spec.CAPABILITIES)
