"""Bitget public order-book wire shapes, fields spelled as Bitget spells them.

Legacy v1 spot WS (``wss://ws.bitget.com/spot/v1/stream``, as captured in
``fixtures/real/bitget/``; PROVENANCE "Bitget books")::

    {"action": "snapshot" | "update",
     "arg": {"instType": "sp", "channel": "books", "instId": "EOSUSDT"},
     "data": [{"asks": [["2.6460", "12.3"]], "bids": [["2.6450", "4.1"]],   # [px, sz] strings
               "checksum": -1816604544,                                    # signed CRC32, top 25
               "ts": "1649290077611"}]}

``sz == "0"`` deletes. No sequence ids. The checksum is OKX's algorithm (top 25 levels
interleaved ``bid:ask``, exact strings, signed CRC32). The v2 public API
(``/v2/ws/public``, ``instType: "SPOT"``) keeps this shape and adds a ``seq`` field, which we
ignore (⚠ no v2 capture was available to check it).

Control frames: the text ``pong``; ``{"event": "subscribe", "arg": {...}}``;
``{"event": "error", "code": 30001, "msg": "..."}``.
"""

from __future__ import annotations

BOOK_CHANNELS = frozenset({"books"})
ACTION_SNAPSHOT = "snapshot"
ACTION_UPDATE = "update"
