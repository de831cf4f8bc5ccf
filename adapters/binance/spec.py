"""Binance capabilities and wire dialogue.

Sources: binance-spot-api-docs ``web-socket-streams.md`` ("How to manage a local order book
correctly"); Binance USD-M "How to manage a local order book correctly"
(exchange-protocols.md §3, §4). No WS snapshot exists: a REST ``depth`` snapshot is bridged
with buffered deltas. The server pings (spot every 20 s, futures every 3 min); the client
needs no app-level ping, only a data-staleness timer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, RateLimit, SequenceModel, SpliceRule
from bookkeeper.ports import Market, RestCall

from .._common import capped_depth

SPOT_CAPABILITIES = ExchangeCapabilities(
    venue="binance",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    splice_rule=SpliceRule.RANGE_NEXT,  # U <= S+1 <= u
    ws_splice_rule=SpliceRule.RANGE_NEXT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
    # §3.5: "300 connection attempts per 5 min per IP"
    connect_limit=RateLimit(count=300, window_s=300.0),
    # §3.4: REQUEST_WEIGHT 6000/min "in the doc examples" (the live value is in
    # exchangeInfo.rateLimits); depth weight by limit 1-100 -> 5, -500 -> 25, -1000 -> 50, -5000 -> 250
    rest_weight_limit=RateLimit(count=6000, window_s=60.0),
    rest_snapshot_weights=((100, 5), (500, 25), (1000, 50), (5000, 250)),
)

#: ⚠ §4.4: 2400/min is "the commonly quoted value; not confirmed from an official page";
#: ⚠ §4.5: no USD-M connection-attempt limit per IP was found (none is declared)
_FUTURES_WEIGHT = RateLimit(count=2400, window_s=60.0)
#: §4.4 depth weight: 5-50 -> 2, 100 -> 5, 500 -> 10, 1000 -> 20
_FUTURES_DEPTH_WEIGHTS = ((50, 2), (100, 5), (500, 10), (1000, 20))

USDM_CAPABILITIES = ExchangeCapabilities(
    venue="binance_usdm",
    sequence_model=SequenceModel.PREV_POINTER,  # pu == previous u
    splice_rule=SpliceRule.RANGE_AT,  # U <= S <= u
    ws_splice_rule=SpliceRule.RANGE_AT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
    rest_weight_limit=_FUTURES_WEIGHT,
    rest_snapshot_weights=_FUTURES_DEPTH_WEIGHTS,
)

COINM_CAPABILITIES = ExchangeCapabilities(
    venue="binance_coinm",
    sequence_model=SequenceModel.PREV_POINTER,
    splice_rule=SpliceRule.RANGE_AT,
    ws_splice_rule=SpliceRule.RANGE_AT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
    # ⚠ COIN-M figures are not in exchange-protocols.md; USD-M's (§4.4) are assumed
    rest_weight_limit=_FUTURES_WEIGHT,
    rest_snapshot_weights=_FUTURES_DEPTH_WEIGHTS,
)


#: Production WebSocket roots per market (``ws_url`` appends ``/stream?streams=..``).
#: §3.1 spot; §4.1 USD-M: since 2026-04-23 depth streams live under ``/public`` only (the
#: legacy root is retired); COIN-M keeps ``dstream`` (not part of the 2026 split).
WS_ROOTS: Mapping[Market, str] = {
    Market.SPOT: "wss://stream.binance.com:9443",
    Market.LINEAR: "wss://fstream.binance.com/public",
    Market.INVERSE: "wss://dstream.binance.com",
}
#: §3.1: spot serves the same streams on two ports; redundant A/B lines use one each
#: (``ABFeed``): a fault on one listener or path is not shared by both lines.
WS_ALT_ROOTS: Mapping[Market, tuple[str, ...]] = {
    Market.SPOT: ("wss://stream.binance.com:9443", "wss://stream.binance.com:443"),
}


def spot_depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /api/v3/depth`` -> ``{lastUpdateId, bids, asks}``; ``limit`` max 5000 (§3.4)."""
    return RestCall(ccxt_id="binance", method="public_get_depth",
                    params={"symbol": symbol, "limit": capped_depth(depth, default=1000, maximum=5000)})


#: USD-M / COIN-M ``depth`` accepts only these limits (§4.4).
FUTURES_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def usdm_depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /fapi/v1/depth``: ``limit`` in :data:`FUTURES_LIMITS` (§4.4)."""
    return RestCall(ccxt_id="binanceusdm", method="fapipublic_get_depth",
                    params={"symbol": symbol, "limit": capped_depth(depth, default=1000, maximum=1000,
                                                                    allowed=FUTURES_LIMITS)})


def coinm_depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /dapi/v1/depth`` (same limits as USD-M)."""
    return RestCall(ccxt_id="binancecoinm", method="dapipublic_get_depth",
                    params={"symbol": symbol, "limit": capped_depth(depth, default=1000, maximum=1000,
                                                                    allowed=FUTURES_LIMITS)})


def spot_ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"public": f"{base}/api/v3"}}}


def usdm_ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"fapiPublic": f"{base}/fapi/v1"}}}


def coinm_ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"dapiPublic": f"{base}/dapi/v1"}}}


def stream_names(symbols: Sequence[str], speed: str = "@100ms") -> list[str]:
    return [f"{s.lower()}@depth{speed}" for s in symbols]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """Combined-stream URL: ``{base}/stream?streams=btcusdt@depth@100ms/...``."""
    return f"{base.rstrip('/')}/stream?streams=" + "/".join(stream_names(symbols))


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 1) -> list[str]:
    return [orjson.dumps({"method": "SUBSCRIBE", "params": stream_names(symbols), "id": request_id}).decode()]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 2) -> list[str]:
    return [orjson.dumps({"method": "UNSUBSCRIBE", "params": stream_names(symbols), "id": request_id}).decode()]
