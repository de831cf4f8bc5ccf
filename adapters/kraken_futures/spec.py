"""Kraken Futures capabilities and wire dialogue.

- ``seq`` is per product and +1 per ``book`` message: ``CONTIGUOUS_RANGE`` with
  ``first_seq == last_seq == seq``; after a snapshot at ``S`` the next message is ``S+1``
  (``RANGE_NEXT``).
- Every subscribe pushes a ``book_snapshot``, so a gap is closed by resubscribing. The REST
  order book carries no ``seq``, so it cannot be spliced (``rest_snapshot=False``).
- Keepalive: Kraken asks for "a ping at least every 60 seconds" (support article
  360022635632 / Derivatives WebSocket "Connection management"); ⚠ the form is not specified
  there, so we rely on WebSocket protocol pings (the transport's) plus the ``heartbeat`` feed,
  which we subscribe to for the data-staleness timer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.ports import Market

CAPABILITIES = ExchangeCapabilities(
    venue="kraken_futures",
    sequence_model=SequenceModel.CONTIGUOUS_RANGE,
    splice_rule=SpliceRule.RANGE_NEXT,
    ws_splice_rule=SpliceRule.RANGE_NEXT,
    ws_snapshot_on_subscribe=True,
    rest_snapshot=False,
    ping_interval_s=None,
    idle_timeout_s=30.0,
)


#: Kraken Derivatives public WebSocket (``ws_url`` adds ``/ws/v1``). ⚠ Not in
#: exchange-protocols.md (which covers Kraken spot only); from Kraken's Derivatives WebSocket
#: docs, "Connection": ``wss://futures.kraken.com/ws/v1``.
WS_ROOTS: Mapping[Market, str] = {Market.LINEAR: "wss://futures.kraken.com",
                                  Market.INVERSE: "wss://futures.kraken.com"}


def ws_url(base: str, symbols: Sequence[str]) -> str:
    """``{base}/ws/v1``."""
    return f"{base.rstrip('/')}/ws/v1"


def subscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    """``book`` for the products, and the ``heartbeat`` feed (keeps the staleness timer fed)."""
    return [
        orjson.dumps({"event": "subscribe", "feed": "book", "product_ids": list(symbols)}).decode(),
        orjson.dumps({"event": "subscribe", "feed": "heartbeat"}).decode(),
    ]


def unsubscribe_messages(symbols: Sequence[str], depth: int | None = None) -> list[str]:
    return [orjson.dumps({"event": "unsubscribe", "feed": "book", "product_ids": list(symbols)}).decode()]
