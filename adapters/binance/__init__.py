"""Binance spot, USD-M and COIN-M diff-depth adapters (stateless: every frame is
self-describing; the server pings, and websockets answers protocol pings itself)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.ports import Market

from .._common import FrameDecoder, RestCallBuilder, VenueAdapter
from . import spec
from .parse import decode, fused_depth, parse_depth_snapshot, parse_depth_update

__all__ = ["BINANCE", "BINANCE_COINM", "BINANCE_USDM", "parse_depth_update"]


def _binance(name: str, capabilities: ExchangeCapabilities, market: Market, rest_call: RestCallBuilder,
             ccxt_urls: Callable[[str], dict[str, Any]]) -> VenueAdapter:
    return VenueAdapter(name, capabilities, decoder=partial(FrameDecoder, decode, name),
                        rest=partial(parse_depth_snapshot, exchange=name), live=spec, fused=fused_depth,
                        ws_root=spec.WS_ROOTS[market], rest_call=rest_call, ccxt_urls=ccxt_urls,
                        ws_roots=spec.WS_ALT_ROOTS.get(market, ()))


BINANCE = _binance("binance", spec.SPOT_CAPABILITIES, Market.SPOT, spec.spot_depth_call, spec.spot_ccxt_urls)
BINANCE_USDM = _binance("binance_usdm", spec.USDM_CAPABILITIES, Market.LINEAR, spec.usdm_depth_call,
                        spec.usdm_ccxt_urls)
BINANCE_COINM = _binance("binance_coinm", spec.COINM_CAPABILITIES, Market.INVERSE, spec.coinm_depth_call,
                         spec.coinm_ccxt_urls)
