"""OKX v5 public wire shapes, fields spelled as OKX spells them (exchange-protocols.md §5).

Order book push (channels ``books``, ``books-l2-tbt``, ``books50-l2-tbt``)::

    {"arg": {"channel": "books", "instId": "BTC-USDT"},
     "action": "snapshot" | "update",
     "data": [{"asks": [["41006.8", "0.60038921", "0", "1"]],   # [px, sz, "0" (deprecated), numOrders]
               "bids": [["41006.3", "0.30178218", "0", "2"]],
               "ts": "1629966436396",                          # ms, as a string
               "checksum": -1626249913,                        # signed CRC32; 0 = absent (since 2026-06-23)
               "seqId": 123456, "prevSeqId": 123455}]}         # absent before 2022; -1 on a snapshot

``sz == "0"`` deletes the level. A heartbeat (book unchanged for ~60 s) is an ``update`` with
no levels and ``seqId == prevSeqId``. A reset after maintenance has ``seqId < prevSeqId``.

REST ``GET /api/v5/market/books?instId=&sz=`` (ccxt ``public_get_market_books``)::

    {"code": "0", "msg": "", "data": [{"asks": [[px, sz, "0", n]], "bids": [...], "ts": "...",
                                       "seqId": 123}]}   # seqId only in the announced flow (⚠ §5.4)

Control frames: the text ``pong``; ``{"event": "subscribe"|"unsubscribe", "arg": {...}}``;
``{"event": "error", "code": "60012", "msg": "..."}``; ``{"event": "notice", ...}``.
"""

from __future__ import annotations

#: Channels whose pushes are snapshot + incremental updates of one instrument's book.
BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
TRADE_CHANNELS = frozenset({"trades", "trades-all"})
ACTION_SNAPSHOT = "snapshot"
ACTION_UPDATE = "update"
