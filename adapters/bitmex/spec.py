"""BitMEX capabilities and wire dialogue (historical: the exchange closed on 2026-09-23 and
ccxt 4.5.90 no longer ships it, exchange-protocols.md §0, §12).

Sources 🔸: the last ccxt implementation (``python/ccxt/pro/bitmex.py`` @ ``03f39fd``) and the
BitMEX WS page as cited by clients. No sequence numbers (``NONE``); every subscribe answers
with a ``partial`` (the WS snapshot), so recovery is a resubscribe. The REST ``orderBook/L2``
has no id and cannot be spliced. Keepalive: after 5 s of silence send ``ping``, expect
``pong`` within 5 s.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule

CAPABILITIES = ExchangeCapabilities(
    venue="bitmex",
    sequence_model=SequenceModel.NONE,
    splice_rule=SpliceRule.NONE,
    ws_splice_rule=SpliceRule.NONE,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    rest_snapshot_depth=0,  # 0 = full book on BitMEX's REST endpoint
    ping_interval_s=5.0,
    pong_timeout_s=5.0,
)

WS_URL = "wss://ws.bitmex.com/realtime"  # dead since 2026-09-23
#: why no live Feed can be made (exchange-protocols.md §0, §12); recordings still replay
CLOSED = ("BitMEX closed on 2026-09-23 04:00 UTC: nothing can connect to it live; replay recordings, "
          "or pass ws_url= to a server speaking its protocol")


def topics(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    table = "orderBookL2_25" if depth is not None and depth <= 25 else "orderBookL2"
    return [f"{table}:{s}" for s in symbols]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    return base.rstrip("/")


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"op": "subscribe", "args": topics(symbols, depth)}).decode()]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"op": "unsubscribe", "args": topics(symbols, depth)}).decode()]


def ping_message() -> str:
    return "ping"
