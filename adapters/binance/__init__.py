"""Binance spot, USD-M and COIN-M diff-depth adapters (stateless: every frame is
self-describing; the server pings, and websockets answers protocol pings itself)."""

from __future__ import annotations

from functools import partial

from bookkeeper.capabilities import ExchangeCapabilities

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, fused_depth, parse_depth_snapshot, parse_depth_update

__all__ = ["BINANCE", "BINANCE_USDM", "BINANCE_COINM", "parse_depth_update"]


def _binance(name: str, capabilities: ExchangeCapabilities) -> VenueAdapter:
    return VenueAdapter(name, capabilities, decoder=partial(FrameDecoder, decode, name),
                        rest=partial(parse_depth_snapshot, exchange=name), live=spec, fused=fused_depth)


BINANCE = _binance("binance", spec.SPOT_CAPABILITIES)
BINANCE_USDM = _binance("binance_usdm", spec.USDM_CAPABILITIES)
BINANCE_COINM = _binance("binance_coinm", spec.COINM_CAPABILITIES)
