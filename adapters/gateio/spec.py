"""Gate spot and USDT-futures capabilities and wire dialogue.

Sources: Gate API v4 WS docs (``#order-book-v2-api``, ``#changed-order-book-levels``), REST
``#retrieve-order-book``; ccxt ``pro/gate.py`` (exchange-protocols.md §11). The legacy
``*.order_book_update`` channels push no snapshot: a REST snapshot taken with
``with_id=true`` is bridged with buffered updates by the range rule (``U <= id+1 <= u``,
then ``U == previous u + 1``; §2.3, §11.2). The server sends protocol pings; Gate's
optional ``spot.ping`` only resets its idle timer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.ports import Market, RestCall

from .._common import capped_depth
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


#: §11.1 spot; USDT-settled futures use their own host (Gate futures WS docs, "Server URL").
WS_ROOTS: Mapping[Market, str] = {
    Market.SPOT: "wss://api.gateio.ws/ws/v4/",
    Market.LINEAR: "wss://fx-ws.gateio.ws/v4/ws/usdt",
}
#: §11.4 ⚠: 100 is the documented maximum in older docs (ccxt allows 1000; gateeu returns an
#: empty book above 100), so we never ask for more.
REST_MAX_DEPTH = 100
_SETTLE = "usdt"


def spot_depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /api/v4/spot/order_book?currency_pair=&limit=&with_id=true`` (§11.4: without
    ``with_id`` the book has no id and cannot be bridged)."""
    return RestCall(ccxt_id="gate", method="public_spot_get_order_book",
                    params={"currency_pair": symbol, "with_id": "true",
                            "limit": capped_depth(depth, default=REST_MAX_DEPTH, maximum=REST_MAX_DEPTH)})


def futures_depth_call(symbol: str, depth: int | None) -> RestCall:
    """``GET /api/v4/futures/usdt/order_book?contract=&limit=&with_id=true``."""
    return RestCall(ccxt_id="gate", method="public_futures_get_settle_order_book",
                    params={"settle": _SETTLE, "contract": symbol, "with_id": "true",
                            "limit": capped_depth(depth, default=REST_MAX_DEPTH, maximum=REST_MAX_DEPTH)})


def ccxt_urls(base: str) -> dict[str, Any]:
    return {"urls": {"api": {"public": {"spot": f"{base}/api/v4", "futures": f"{base}/api/v4"}}}}


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


class Dialogue:
    """The live dialogue of one Gate flavour (implements ``_common.Dialogue``, ``CLOCKED``):
    messages carry ``time``, from the caller's ``now_ns`` (0 when the caller gives none)."""

    CLOCKED = True

    def __init__(self, *, futures: bool) -> None:
        self.futures = futures

    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None, *, now_ns: int = 0) -> list[str]:
        """One subscribe per pair (the legacy channel has no depth)."""
        return subscribe_messages(symbols, now_s=now_ns // 1_000_000_000, futures=self.futures)

    def unsubscribe_messages(self, symbols: Sequence[str], depth: int | None = None, *, now_ns: int = 0) -> list[str]:
        return unsubscribe_messages(symbols, now_s=now_ns // 1_000_000_000, futures=self.futures)
