"""Binance capabilities and wire dialogue.

Sources: binance-spot-api-docs ``web-socket-streams.md`` ("How to manage a local order book
correctly"); Binance USD-M "How to manage a local order book correctly"
(exchange-protocols.md §3, §4). No WS snapshot exists: a REST ``depth`` snapshot is bridged
with buffered deltas. The server pings (spot every 20 s, futures every 3 min); the client
needs no app-level ping, only a data-staleness timer.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule

SPOT_CAPABILITIES = ExchangeCapabilities(
    venue="binance",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    splice_rule=SpliceRule.RANGE_NEXT,  # U <= S+1 <= u
    ws_splice_rule=SpliceRule.RANGE_NEXT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
)

USDM_CAPABILITIES = ExchangeCapabilities(
    venue="binance_usdm",
    sequence_model=SequenceModel.PREV_POINTER,  # pu == previous u
    splice_rule=SpliceRule.RANGE_AT,  # U <= S <= u
    ws_splice_rule=SpliceRule.RANGE_AT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
)

COINM_CAPABILITIES = ExchangeCapabilities(
    venue="binance_coinm",
    sequence_model=SequenceModel.PREV_POINTER,
    splice_rule=SpliceRule.RANGE_AT,
    ws_splice_rule=SpliceRule.RANGE_AT,
    rest_snapshot=True,
    rest_snapshot_depth=1000,
    idle_timeout_s=30.0,
)


def stream_names(symbols: Sequence[str], speed: str = "@100ms") -> list[str]:
    return [f"{s.lower()}@depth{speed}" for s in symbols]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """Combined-stream URL: ``{base}/stream?streams=btcusdt@depth@100ms/...``."""
    return f"{base.rstrip('/')}/stream?streams=" + "/".join(stream_names(symbols))


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 1) -> list[str]:
    return [orjson.dumps({"method": "SUBSCRIBE", "params": stream_names(symbols), "id": request_id}).decode()]


def unsubscribe_messages(symbols: Sequence[str], request_id: int = 2) -> list[str]:
    return [orjson.dumps({"method": "UNSUBSCRIBE", "params": stream_names(symbols), "id": request_id}).decode()]
