"""KuCoin spot capabilities and wire dialogue.

Sources: kucoin-api-docs ``source/localizable/index.html.md`` (apply connect token, ping,
subscribe, Level-2 market data, calibration procedure) and ccxt ``pro/kucoin.py``
(exchange-protocols.md §10). No WS snapshot on ``/market/level2``: a REST snapshot
(``sequence``) is bridged with buffered deltas by the range rule (§2.3). The client must send
an app-level ``ping`` every ``pingInterval`` (18 s in the bullet answer) and expects a
``pong`` within ``pingTimeout`` (10 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.errors import AdapterError
from bookkeeper.ports import RestCall

from .._common import capped_depth
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


#: §10.1: no fixed WS URL; ``POST /api/v1/bullet-public`` (no auth) answers the endpoint and
#: a token, valid 24 h for establishing connections. Asked before each connection.
BOOTSTRAP = RestCall(ccxt_id="kucoin", method="public_post_bullet_public", params={})
#: §10.4: the public partial books; ccxt's implicit method names the depth
REST_DEPTHS = (20, 100)


def url_from_bullet(body: Mapping[str, Any], connect_id: str) -> str:
    """``{endpoint}?token={token}&connectId={connect_id}`` from the bullet answer (§10.1).

    Raises:
        AdapterError: no token or no instance server in the answer.
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    token = data.get("token") if isinstance(data, Mapping) else None
    servers = data.get("instanceServers") if isinstance(data, Mapping) else None
    endpoint = servers[0].get("endpoint") if isinstance(servers, list) and servers and isinstance(
        servers[0], Mapping) else None
    if not isinstance(token, str) or not token or not isinstance(endpoint, str) or not endpoint:
        raise AdapterError("bullet answer without token or instance server", exchange="kucoin", raw=str(body)[:400])
    return f"{endpoint}?token={token}&connectId={connect_id}"


def depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /api/v1/market/orderbook/level2_{20|100}?symbol=`` (§10.4; the full v3 book needs a key)."""
    d = capped_depth(depth, default=100, maximum=100, allowed=REST_DEPTHS)
    return RestCall(ccxt_id="kucoin", method=f"public_get_market_orderbook_level2_{d}", params={"symbol": symbol})


def ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"public": base}}}


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """KuCoin has no fixed URL: ``base`` is ``{endpoint}?token={token}&connectId={id}`` from the
    bullet answer, which the driver obtains; subscriptions are sent as messages."""
    return base


def subscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 1) -> list[str]:
    return [orjson.dumps({"id": str(request_id + i), "type": "subscribe", "topic": t, "privateChannel": False,
                          "response": True}).decode() for i, t in enumerate(topics(symbols))]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None, request_id: int = 1000) -> list[str]:
    return [orjson.dumps({"id": str(request_id + i), "type": "unsubscribe", "topic": t, "privateChannel": False,
                          "response": True}).decode() for i, t in enumerate(topics(symbols))]


def ping_message(request_id: int = 0) -> str:
    return orjson.dumps({"id": str(request_id), "type": "ping"}).decode()
