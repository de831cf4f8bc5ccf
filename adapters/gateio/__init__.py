"""Gate (API v4) spot and USDT-futures order-book adapters (exchange-protocols.md §11).

Parses the legacy ``spot.order_book_update`` / ``futures.order_book_update`` channels (as
captured) and the spot order book v2 ``spot.obu``. Wire dialogue helpers live in
:mod:`.spec` and take the caller's clock (Gate frames carry a ``time`` field), so these
adapters do not implement ``LiveSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import decode, parse_obu, parse_rest_snapshot, parse_update

__all__ = ["GateAdapter", "GATEIO", "GATEIO_FUTURES", "parse_update", "parse_obu"]


class _Decoder:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns, self._name)


class GateAdapter:
    """Gate order-book streams (stateless: every frame names its pair and id range)."""

    def __init__(self, name: str, capabilities: ExchangeCapabilities, *, futures: bool) -> None:
        self.name = name
        self.capabilities = capabilities
        self.futures = futures

    def new_decoder(self) -> _Decoder:
        return _Decoder(self.name)

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_snapshot(body, symbol, url, ts_recv_ns, self.name, seconds_clock=self.futures)


GATEIO = GateAdapter("gateio", spec.SPOT_CAPABILITIES, futures=False)
GATEIO_FUTURES = GateAdapter("gateio_futures", spec.FUTURES_CAPABILITIES, futures=True)
