"""Binance spot, USD-M and COIN-M diff-depth adapters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import decode, parse_depth_snapshot, parse_depth_update

__all__ = ["BinanceAdapter", "BINANCE", "BINANCE_USDM", "BINANCE_COINM", "parse_depth_update"]


class _Decoder:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns, self._name)


class BinanceAdapter:
    """Binance diff-depth streams (stateless: every frame is self-describing)."""

    def __init__(self, name: str, capabilities: ExchangeCapabilities) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder(self.name)

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_depth_snapshot(body, symbol, ts_recv_ns, self.name, url)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return None  # the server pings; websockets answers protocol pings itself


BINANCE = BinanceAdapter("binance", spec.SPOT_CAPABILITIES)
BINANCE_USDM = BinanceAdapter("binance_usdm", spec.USDM_CAPABILITIES)
BINANCE_COINM = BinanceAdapter("binance_coinm", spec.COINM_CAPABILITIES)
