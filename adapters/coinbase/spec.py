"""Coinbase capabilities and wire dialogue.

Sources: docs.cdp.coinbase.com Advanced Trade WebSocket overview / channels / rate limits
(exchange-protocols.md §8). ``level2`` carries no per-product sequence (``NONE``); the WS
snapshot on subscribe is the only rebuild path (the REST book has no id, §8.4), so recovery
is a resubscribe. ``sequence_num`` is checked per connection by the decoder
(:class:`~.parse.AtSequence`). Channels close after 60-90 s without updates: subscribe to
``heartbeats`` next to ``level2`` (one subscribe message per channel; within 5 s of
connecting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.ports import Market

CAPABILITIES = ExchangeCapabilities(
    venue="coinbase",
    sequence_model=SequenceModel.NONE,
    splice_rule=SpliceRule.NONE,
    ws_splice_rule=SpliceRule.NONE,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    # sequence_num counts every message of the connection (§8.2): the decoder turns a skipped
    # number into a CONNECTION_GAP notice, so a lost frame is seen although level2 has no ids
    connection_sequence=True,
)

WS_URL = "wss://advanced-trade-ws.coinbase.com"  # §8.1 market data
WS_ROOTS: Mapping[Market, str] = {Market.SPOT: WS_URL}


def ws_url(base: str, symbols: Sequence[str]) -> str:
    return base.rstrip("/")


def _msg(kind: str, symbols: Sequence[str], channel: str) -> str:
    return orjson.dumps({"type": kind, "product_ids": list(symbols), "channel": channel}).decode()


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    """``heartbeats`` first (keeps quiet channels open), then ``level2``. Public channels
    need no JWT; an authenticated driver adds a fresh ``jwt`` to each message."""
    return [_msg("subscribe", symbols, "heartbeats"), _msg("subscribe", symbols, "level2")]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [_msg("unsubscribe", symbols, "level2")]
