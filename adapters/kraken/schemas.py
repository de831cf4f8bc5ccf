"""Kraken spot public wire shapes, spelled as Kraken spells them (exchange-protocols.md §7).

**WS v1** (``wss://ws.kraken.com``; maintained, frozen) — array frames::

    [channelID, {"as": [[price, volume, timestamp], ...], "bs": [...]}, "book-1000", "XBT/USD"]  # snapshot
    [channelID, {"a": [[price, volume, timestamp(, "r")]], "c": "2583817756"}, "book-1000", "XBT/USD"]
    [channelID, {"a": [...]}, {"b": [...], "c": "..."}, "book-1000", "XBT/USD"]                # both sides

Prices/volumes are strings; volume ``"0.00000000"`` deletes; a 4th element ``"r"`` marks a
republished level (applied like any other). ``c`` (unsigned CRC32 as a decimal string) is
only on updates, in the last dict. ``book-N``: N is the subscribed depth; Kraken sends no
deletes for levels that leave it, so the book is truncated to N after every message (§7.1).
Events are objects: ``{"event": "heartbeat"}``, ``systemStatus``, ``subscriptionStatus``
(``channelID``, ``channelName``, ``pair``, ``status``, ``subscription.depth``), ``pong``.

**WS v2** (``wss://ws.kraken.com/v2``) — objects::

    {"channel": "book", "type": "snapshot" | "update",
     "data": [{"symbol": "BTC/USD", "bids": [{"price": 45283.5, "qty": 0.5}], "asks": [...],
               "checksum": 1982867381, "timestamp": "2023-10-06T17:35:55.440295Z"}]}
    {"channel": "instrument", "type": "snapshot" | "update",
     "data": {"assets": [...], "pairs": [{"symbol": "BTC/USD", "price_precision": 1,
                                          "qty_precision": 8, ...}]}}
    {"channel": "heartbeat"}   {"channel": "status", ...}   {"method": "pong", ...}
    {"method": "subscribe", "result": {"channel": "book", "symbol": "BTC/USD", "depth": 10, ...},
     "success": true}

v2 prices and quantities are JSON *numbers*: the checksum (§7.3) needs their decimal text
formatted to the pair's ``price_precision``/``qty_precision``.

**REST** ``GET /0/public/Depth?pair=XBTUSD&count=N``::

    {"error": [], "result": {"XXBTZUSD": {"asks": [["30000.00000", "1.000", 1616663113]], "bids": [...]}}}
"""

from __future__ import annotations

BOOK_PREFIX = "book-"
V2_BOOK = "book"
V2_INSTRUMENT = "instrument"
V2_HEARTBEAT = "heartbeat"
#: Depths Kraken accepts for ``book`` (v1 and v2); 10 is the default when none is given.
DEPTHS = (10, 25, 100, 500, 1000)
DEFAULT_DEPTH = 10
