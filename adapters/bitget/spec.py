"""Bitget capabilities and wire dialogue.

The ``books`` channel pushes a full snapshot on subscribe, then updates, each with a checksum
of the top 25 levels (OKX's algorithm). There are no sequence ids in the captured v1 API
(``SequenceModel.NONE``): integrity rests on the checksum, and a mismatch is repaired by
resubscribing. The client sends the text ``ping`` every 30 s (the server drops connections
silent for 2 min) and gets ``pong``. ⚠ Live URL/instType follow the v2 public API; only the
v1 stream was captured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from bookkeeper.capabilities import (
    ChecksumKind,
    ExchangeCapabilities,
    SequenceModel,
    SpliceRule,
)
from bookkeeper.ports import Market

CAPABILITIES = ExchangeCapabilities(
    venue="bitget",
    sequence_model=SequenceModel.NONE,
    splice_rule=SpliceRule.NONE,
    ws_splice_rule=SpliceRule.NONE,
    checksum=ChecksumKind.CRC32_INTERLEAVED_25,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,  # no sequence id on the REST book: it cannot be spliced
    ping_interval_s=25.0,
    pong_timeout_s=10.0,
    idle_timeout_s=60.0,
)

PING = "ping"
INST_TYPE = "SPOT"
#: Bitget v2 public WebSocket (one host for every market; ``ws_url`` adds ``/v2/ws/public``).
#: ⚠ Not in exchange-protocols.md; from Bitget's v2 API docs ("Websocket Domain").
WS_ROOTS: Mapping[Market, str] = dict.fromkeys(Market, "wss://ws.bitget.com")


def ws_url(base: str, symbols: Sequence[str]) -> str:
    return f"{base.rstrip('/')}/v2/ws/public"


def _args(symbols: Sequence[str]) -> list[dict[str, str]]:
    return [{"instType": INST_TYPE, "channel": "books", "instId": s} for s in symbols]


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"op": "subscribe", "args": _args(symbols)}).decode()]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"op": "unsubscribe", "args": _args(symbols)}).decode()]
