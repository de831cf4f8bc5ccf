"""Bybit capabilities and wire dialogue.

Sources: bybit-exchange/docs ``docs/v5/websocket/public/orderbook.mdx``,
``docs/v5/market/orderbook.mdx``, ``docs/v5/ws/connect`` (exchange-protocols.md §6).
``orderbook.{1|50|200|1000}`` pushes a snapshot on subscribe (and may re-send one at any
time), and ``u`` is only promised to increase (``MONOTONIC_ONLY``: a jump is not a documented
gap signal, so only snapshots repair drift). Recovery is a resubscribe. The REST book's
``u`` "corresponds to ``u`` in the 1000-level stream" only, so it is not declared as a
splice path (``rest_snapshot=False``); ``parse_rest_snapshot`` still reads it. Client ping
``{"op":"ping"}`` every 20 s (Bybit's recommendation); idle connections close after 10 min.

``bybit_spot`` (:data:`SPOT_FULL_CAPABILITIES`) is the spot full book instead
(``docs/v5/websocket/public/full-ob.mdx``, ``docs/v5/market/full-ob.mdx``; §6.1, §6.2, §6.4):
``orderbook.full.{symbol}`` on ``/v5/public/spot`` sends deltas only (no snapshot on
subscribe), ``u`` goes up by exactly 1 per message (``CONTIGUOUS_RANGE``), and the book is
initialised from REST ``GET /v5/market/full_orderbook?category=spot&symbol=`` (up to 10,000
levels per side, with ``u`` and ``seq``) read through ccxt's implicit
``public_get_v5_market_full_orderbook`` (ccxt's ``fetch_order_book`` drops both ids, §2.6).
The splice matches ``seq`` and ``u`` (``SpliceRule.CROSS_NEXT``, §2.3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, RateLimit, SequenceModel, SpliceRule
from bookkeeper.ports import Market, RestCall

CAPABILITIES = ExchangeCapabilities(
    venue="bybit",
    sequence_model=SequenceModel.MONOTONIC_ONLY,
    splice_rule=SpliceRule.MONOTONIC,
    ws_splice_rule=SpliceRule.MONOTONIC,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    rest_snapshot_depth=1000,
    ping_interval_s=20.0,
    pong_timeout_s=10.0,
    connect_limit=RateLimit(count=500, window_s=300.0),  # §6.5: 500 connections per 5 min per WS domain
    rest_weight_limit=RateLimit(count=600, window_s=5.0),  # §6.4: 600 requests per 5 s per IP
)

#: §6.1: one public endpoint per market (``ws_url`` uses it as is). This adapter's market is
#: linear (USDT/USDC perpetuals and futures), as captured.
WS_ROOTS: Mapping[Market, str] = {
    Market.SPOT: "wss://stream.bybit.com/v5/public/spot",
    Market.LINEAR: "wss://stream.bybit.com/v5/public/linear",
    Market.INVERSE: "wss://stream.bybit.com/v5/public/inverse",
    Market.OPTION: "wss://stream.bybit.com/v5/public/option",
}
MARKET = Market.LINEAR
WS_URL_LINEAR = WS_ROOTS[Market.LINEAR]
DEFAULT_DEPTH = 50
_DEPTHS = (1, 50, 200, 1000)
_MAX_ARGS = 10  # spot allows at most 10 args per subscribe request (§6.1)


def topics(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    d = depth or DEFAULT_DEPTH
    if d not in _DEPTHS:
        d = min((x for x in _DEPTHS if x >= d), default=1000)
    return [f"orderbook.{d}.{s}" for s in symbols]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    return base.rstrip("/")


def _batches(args: list[str], op: str) -> list[str]:
    return [orjson.dumps({"req_id": f"{op}-{i}", "op": op, "args": args[i:i + _MAX_ARGS]}).decode()
            for i in range(0, len(args), _MAX_ARGS)]


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return _batches(topics(symbols, depth), "subscribe")


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return _batches(topics(symbols, depth), "unsubscribe")


def ping_message() -> str:
    return '{"op":"ping"}'


#: ``bybit_spot``: the spot full book, spliced from REST by ``seq`` and ``u`` (module docstring)
SPOT_FULL_CAPABILITIES = replace(
    CAPABILITIES,
    venue="bybit_spot",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,  # u == local + 1, one id per message (§6.2)
    splice_rule=SpliceRule.CROSS_NEXT,
    ws_splice_rule=SpliceRule.CROSS_NEXT,
    ws_snapshot_on_subscribe=False,  # "delta updates only, there is no initial snapshot" (§6.1)
    rest_snapshot=True,
    rest_snapshot_depth=10_000,  # full_orderbook: up to 10,000 levels per side, no limit parameter (§6.4)
)
#: the full book's prefix (``orderbook.full.{symbol}``, §6.1)
FULL_TOPIC = "orderbook.full."


def full_topics(symbols: Sequence[str]) -> list[str]:
    return [FULL_TOPIC + s for s in symbols]


def full_subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    """Subscribe frames for ``orderbook.full`` (the whole book: ``depth`` does not apply)."""
    return _batches(full_topics(symbols), "subscribe")


def full_unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return _batches(full_topics(symbols), "unsubscribe")


def full_orderbook_call(symbol: str, depth: int | None = None) -> RestCall:
    """``GET /v5/market/full_orderbook?category=spot&symbol=`` (the whole book up to 10,000
    levels per side: ``depth`` does not apply, §6.4)."""
    return RestCall(ccxt_id="bybit", method="public_get_v5_market_full_orderbook",
                    params={"category": "spot", "symbol": symbol})


def ccxt_urls(base: str) -> dict[str, Any]:
    """Point ccxt ``bybit``'s public market calls at ``base`` (``urls.api.public``)."""
    return {"urls": {"api": {"public": base}}}
