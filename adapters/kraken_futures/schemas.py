"""Kraken Futures (derivatives) WS v1 public wire shapes, spelled as Kraken spells them.

``wss://futures.kraken.com/ws/v1``, feed ``book`` (Kraken "Derivatives WebSocket" docs; PROVENANCE
"Kraken Futures book")::

    {"feed": "book_snapshot", "product_id": "PI_XBTUSD", "timestamp": 1626994927654, "seq": 5159966,
     "tickSize": null, "bids": [{"price": 32170.5, "qty": 1200.0}], "asks": [...]}
    {"feed": "book", "product_id": "PI_XBTUSD", "side": "buy" | "sell", "seq": 5159967,
     "price": 32170.5, "qty": 0.0, "timestamp": 1626994927744}

One ``book`` message per level change; ``qty`` is absolute and ``0`` deletes; ``seq`` is per
product and increases by exactly 1 (first message after a snapshot at ``S`` has ``seq == S+1``).
Prices and quantities are JSON numbers. No checksum.

Control: ``{"event": "info", "version": 1}``, ``{"event": "subscribed", "feed": "book",
"product_ids": [...]}``, ``{"event": "error", "message": "..."}``, ``{"event": "alert", ...}``,
``{"feed": "heartbeat", "time": ms}`` (when subscribed to the ``heartbeat`` feed).
"""

from __future__ import annotations

FEED_SNAPSHOT = "book_snapshot"
FEED_BOOK = "book"
FEED_HEARTBEAT = "heartbeat"
FEED_TRADE = "trade"
SIDE_BUY = "buy"
SIDE_SELL = "sell"
