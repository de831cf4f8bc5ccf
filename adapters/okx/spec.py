"""OKX capabilities and wire dialogue (exchange-protocols.md §5).

- §5.1: the venue pushes a snapshot (``prevSeqId = -1``) on every subscribe, so a gap is closed
  by resubscribing; the REST ``books`` + ``seqId`` flow (§5.2, announced ⚠) is the fallback.
- §5.2: ``PREV_POINTER``: an update's ``prevSeqId`` must equal the last applied ``seqId``.
  A WS snapshot at ``S`` is followed by an update with ``prevSeqId == S`` (``PREV_EXACT``);
  a REST snapshot at ``S`` is bridged by ``prevSeqId <= S < seqId`` (``PREV_BRACKET``).
- §5.3: CRC32 of the top 25 levels interleaved, signed; pinned to 0 since 2026-06-23 (the core
  treats 0 as absent), still checked when replaying older recordings.
- §5.5: the client must send the text ``ping`` when nothing arrived for N < 30 s; ``pong``
  comes back. ccxt pings every 18 s; we ping after 15 s idle and wait 8 s for the pong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.capabilities import (
    ChecksumKind,
    ExchangeCapabilities,
    RateLimit,
    SequenceModel,
    SpliceRule,
)
from bookkeeper.ports import Market, RestCall

from .._common import capped_depth

CAPABILITIES = ExchangeCapabilities(
    venue="okx",
    sequence_model=SequenceModel.PREV_POINTER,
    splice_rule=SpliceRule.PREV_BRACKET,  # REST: prevSeqId <= S < seqId (§2.3, ⚠ announced)
    ws_splice_rule=SpliceRule.PREV_EXACT,  # WS snapshot at S: next update names S
    checksum=ChecksumKind.CRC32_INTERLEAVED_25,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=True,
    rest_snapshot_depth=400,  # /market/books sz max (§5.4)
    ping_interval_s=15.0,
    pong_timeout_s=8.0,
    idle_timeout_s=30.0,
    connect_limit=RateLimit(count=3, window_s=1.0),  # §5.5: "Connections: 3 requests/s per IP"
    # §5.4: /market/books 40 req/2 s per IP; /market/books-full (sz > 400) 10 req/2 s: counted
    # as 4 units of the same budget
    rest_weight_limit=RateLimit(count=40, window_s=2.0),
    rest_snapshot_weights=((400, 1), (5000, 4)),
)

#: The public channel we subscribe to: 400 levels, 100 ms, no login (§5.1 table).
DEFAULT_CHANNEL = "books"
PING = "ping"


#: §5.1: one public root for every market (the instId names it); ``ws_url`` adds the path.
WS_ROOTS: Mapping[Market, str] = dict.fromkeys(Market, "wss://ws.okx.com:8443")


def depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /api/v5/market/books?instId=&sz=``; ``sz`` max 400 (§5.4)."""
    return RestCall(ccxt_id="okx", method="public_get_market_books",
                    params={"instId": symbol, "sz": capped_depth(depth, default=400, maximum=400)})


def ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"rest": base}}}


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """``{base}/ws/v5/public`` (subscriptions are sent as messages, not in the URL)."""
    return f"{base.rstrip('/')}/ws/v5/public"


def _args(symbols: Sequence[str], channel: str) -> list[dict[str, str]]:
    return [{"channel": channel, "instId": s} for s in symbols]


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, channel: str = DEFAULT_CHANNEL) -> list[str]:
    """One ``op: subscribe`` frame; ``depth`` is fixed by the channel (``books`` = 400)."""
    return [orjson.dumps({"op": "subscribe", "args": _args(symbols, channel)}).decode()]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None,
                         channel: str = DEFAULT_CHANNEL) -> list[str]:
    return [orjson.dumps({"op": "unsubscribe", "args": _args(symbols, channel)}).decode()]
