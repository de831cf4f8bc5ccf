"""Kraken spot capabilities and wire dialogue (exchange-protocols.md §7).

- §7.2: no sequence ids (``NONE``); integrity comes only from the checksum.
- §7.3: CRC32 (unsigned) of top-10 asks then top-10 bids, digits only (``KRAKEN_CRC32_10``).
- §7.1: a snapshot on subscribe; after every message the book is truncated to the subscribed
  depth (``truncate_to_depth``), since Kraken sends no deletes for levels that leave it.
- §7.4: the REST ``Depth`` book has no id, so it cannot be spliced (``rest_snapshot=False``);
  recovery is a resubscribe.
- §7.5: the server sends ``heartbeat`` about once a second when idle; ``{"method":"ping"}`` is
  optional (ccxt pings every 6 s). We ping after 15 s of silence.

The live dialogue is WS v2; the decoder also reads v1 recordings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.capabilities import (
    ChecksumKind,
    ExchangeCapabilities,
    SequenceModel,
    SpliceRule,
)
from bookkeeper.ports import Market

from .schemas import DEFAULT_DEPTH, DEPTHS

CAPABILITIES = ExchangeCapabilities(
    venue="kraken",
    sequence_model=SequenceModel.NONE,
    splice_rule=SpliceRule.NONE,
    ws_splice_rule=SpliceRule.NONE,
    checksum=ChecksumKind.KRAKEN_CRC32_10,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    truncate_to_depth=True,
    rest_snapshot_depth=500,  # 🔸 Depth count max (§7.4)
    ping_interval_s=15.0,
    pong_timeout_s=10.0,
    idle_timeout_s=10.0,  # heartbeats arrive ~1/s once subscribed
)

PING = orjson.dumps({"method": "ping"}).decode()

#: §7.1: the public v2 root (``ws_url`` adds ``/v2``).
WS_ROOTS: Mapping[Market, str] = {Market.SPOT: "wss://ws.kraken.com"}


def ccxt_urls(base: str) -> dict[str, Any]:
    """No REST call for books (§7.4: no id, never spliced); kept for ccxt's market data."""
    return {"urls": {"api": {"public": base, "private": base}}}


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """``{base}/v2`` (public v2 endpoint; subscriptions are messages)."""
    return f"{base.rstrip('/')}/v2"


def _depth(depth: int | None) -> int:
    if depth is None:
        return DEFAULT_DEPTH
    for d in DEPTHS:  # the smallest accepted depth that covers what was asked
        if depth <= d:
            return d
    return DEPTHS[-1]


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    """The ``instrument`` channel first (its snapshot carries the precisions the v2 checksum
    needs, §7.3), then ``book`` with ``snapshot: true``."""
    return [
        orjson.dumps({"method": "subscribe", "params": {"channel": "instrument", "snapshot": True}}).decode(),
        orjson.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": list(symbols),
                                                        "depth": _depth(depth), "snapshot": True}}).decode(),
    ]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"method": "unsubscribe", "params": {"channel": "book", "symbol": list(symbols),
                                                               "depth": _depth(depth)}}).decode()]
