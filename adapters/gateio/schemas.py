"""Gate (API v4) wire shapes, fields spelled as Gate spells them.

Every push is ``{"time": s, "time_ms": ms?, "channel": "...", "event": "update" | "subscribe"
| "unsubscribe" | "all", "error": {...} | null, "result": {...}}`` (exchange-protocols.md §11.1).

- **Spot legacy ``spot.order_book_update``** (§11.1, captured 2021)::

      result = {"t": ms, "e": "depthUpdate", "E": s, "s": "BTC_USDT",
                "U": first id, "u": last id, "b": [["px", "sz"], ...], "a": [...]}

- **USDT futures ``futures.order_book_update``** (captured 2023)::

      result = {"t": ms, "s": "BTC_USDT", "U": first id, "u": last id,
                "b": [{"p": "px", "s": size}, ...], "a": [...]}

  ``s`` of a level is an integer number of contracts and is never negative in the capture:
  the side is given by the list it is in. (The much older ``futures.order_book`` *update*
  event, a flat list of ``{"p", "s", "c", "id"}`` with a negative ``s`` for asks, is a
  different channel and is not parsed.) Some frames name the contract ``c`` instead of ``s``.

- **Spot order book v2 ``spot.obu``** (§11.1/§11.2)::

      result = {"t": ms, "full": true?, "s": "ob.BTC_USDT.50", "U": first?, "u": last,
                "b": [["px", "sz"], ...], "a": [...]}

  ``full: true`` is a whole book at the subscribed depth (a WS snapshot at ``u``).

- **``spot.book_ticker`` / ``futures.book_ticker``**: ``result = {"t", "u", "s", "b", "B",
  "a", "A"}``; ``u`` is the book's update id, so the top of a book whose last applied id is
  ``u`` must equal it (the capture agrees wherever the ids are equal).

Sizes ``"0"``/``0`` remove a level. REST (``with_id=true``; §11.4):
spot ``{"id", "current": ms, "update": ms, "asks": [[px, sz]], "bids": [...]}``, futures
``{"id", "current": s.float, "update": s.float, "asks": [{"p", "s"}], "bids": [...]}``.
"""

from __future__ import annotations

SPOT_UPDATE = "spot.order_book_update"
FUTURES_UPDATE = "futures.order_book_update"
SPOT_OBU = "spot.obu"
UPDATE_CHANNELS = frozenset({SPOT_UPDATE, FUTURES_UPDATE})
TICKER_CHANNELS = frozenset({"spot.book_ticker", "futures.book_ticker"})
