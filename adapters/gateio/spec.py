"""Gate spot and USDT-futures capabilities and wire dialogue.

Sources: Gate API v4 WS docs (``#order-book-v2-api``, ``#changed-order-book-levels``), REST
``#retrieve-order-book``; ccxt ``pro/gate.py`` (exchange-protocols.md §11). The legacy
``*.order_book_update`` channels push no snapshot: a REST snapshot taken with
``with_id=true`` is bridged with buffered updates by the range rule (``U <= id+1 <= u``,
then ``U == previous u + 1``; §2.3, §11.2). The server sends protocol pings; Gate's
optional ``spot.ping`` only resets its idle timer.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule

from .schemas import FUTURES_UPDATE, SPOT_UPDATE

SPOT_CAPABILITIES = ExchangeCapabilities(
    venue="gateio",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,  # U..u, +1 per book change per pair
    splice_rule=SpliceRule.RANGE_NEXT,  # U <= id+1 <= u (§11.2 step 3)
    ws_splice_rule=SpliceRule.RANGE_NEXT,  # spot.obu full:true at u; next needs U == u+1
    rest_snapshot=True,
    rest_snapshot_depth=100,  # the documented REST maximum in older docs (§11.4)
)

FUTURES_CAPABILITIES = ExchangeCapabilities(
    venue="gateio_futures",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    splice_rule=SpliceRule.RANGE_NEXT,
    ws_splice_rule=SpliceRule.RANGE_NEXT,
    rest_snapshot=True,
    rest_snapshot_depth=100,
)


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """Gate subscribes by message; the URL is the server's (``wss://api.gateio.ws/ws/v4/``,
    ``wss://fx-ws.gateio.ws/v4/ws/usdt``)."""
    return base


def _frames(channel: str, event: str, symbols: Sequence[str], interval: str, now_s: int) -> list[str]:
    return [orjson.dumps({"time": now_s, "channel": channel, "event": event, "payload": [s, interval]}).decode()
            for s in symbols]


def subscribe_messages(symbols: Sequence[str], *, now_s: int, futures: bool = False,
                       interval: str = "100ms") -> list[str]:
    """One subscribe per pair (Gate's legacy channel takes ``[pair, interval]``).

    ``now_s`` is the caller's clock (Gate wants ``time`` close to server time; adapters never
    read a clock, so this module offers no ``LiveSpec`` defaults)."""
    return _frames(FUTURES_UPDATE if futures else SPOT_UPDATE, "subscribe", symbols, interval, now_s)


def unsubscribe_messages(symbols: Sequence[str], *, now_s: int, futures: bool = False,
                         interval: str = "100ms") -> list[str]:
    return _frames(FUTURES_UPDATE if futures else SPOT_UPDATE, "unsubscribe", symbols, interval, now_s)


def ping_message(*, now_s: int, futures: bool = False) -> str:
    return orjson.dumps({"time": now_s, "channel": "futures.ping" if futures else "spot.ping"}).decode()
