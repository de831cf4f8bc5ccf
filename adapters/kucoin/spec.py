"""KuCoin spot capabilities and wire dialogue.

Sources: kucoin-api-docs ``source/localizable/index.html.md`` (apply connect token, ping,
subscribe, Level-2 market data, calibration procedure) and ccxt ``pro/kucoin.py``
(exchange-protocols.md §10). No WS snapshot on ``/market/level2``: a REST snapshot
(``sequence``) is bridged with buffered deltas by the range rule (§2.3). The client must send
an app-level ``ping`` every ``pingInterval`` (18 s in the bullet answer) and expects a
``pong`` within ``pingTimeout`` (10 s).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule

from .schemas import L2_TOPIC_PREFIX

CAPABILITIES = ExchangeCapabilities(
    venue="kucoin",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,  # sequenceStart..sequenceEnd
    splice_rule=SpliceRule.RANGE_NEXT,  # sequenceStart <= S+1 <= sequenceEnd (§10.2 step 4)
    ws_splice_rule=SpliceRule.RANGE_NEXT,
    rest_snapshot=True,
    # The full book (/api/v3) needs an API key; the public partial book stops at 100 (§10.4).
    rest_snapshot_depth=100,
    ping_interval_s=18.0,
    pong_timeout_s=10.0,
    idle_timeout_s=30.0,
    level_sequences=True,  # changes are [price, size, sequence]
)

#: KuCoin accepts at most 100 symbols per topic (§10.1).
MAX_SYMBOLS_PER_TOPIC = 100


def topics(symbols: Sequence[str]) -> list[str]:
    """``/market/level2:A,B,...`` topics, at most 100 symbols each."""
    syms = list(symbols)
    return [L2_TOPIC_PREFIX + ",".join(syms[i:i + MAX_SYMBOLS_PER_TOPIC])
            for i in range(0, len(syms), MAX_SYMBOLS_PER_TOPIC)]


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """KuCoin has no fixed URL: ``base`` is ``{endpoint}?token={token}&connectId={id}`` from the
    bullet answer, which the driver obtains; subscriptions are sent as messages."""
    return base


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 1) -> list[str]:
    return [orjson.dumps({"id": str(request_id + i), "type": "subscribe", "topic": t, "privateChannel": False,
                          "response": True}).decode() for i, t in enumerate(topics(symbols))]


def unsubscribe_messages(symbols: Sequence[str], request_id: int = 1000) -> list[str]:
    return [orjson.dumps({"id": str(request_id + i), "type": "unsubscribe", "topic": t, "privateChannel": False,
                          "response": True}).decode() for i, t in enumerate(topics(symbols))]


def ping_message(request_id: int = 0) -> str:
    return orjson.dumps({"id": str(request_id), "type": "ping"}).decode()
