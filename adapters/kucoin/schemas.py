"""KuCoin spot wire shapes, fields spelled as KuCoin spells them.

Incremental book (exchange-protocols.md §10.1; kucoin-api-docs "Level-2 Market Data")::

    {"type": "message", "topic": "/market/level2:BTC-USDT", "subject": "trade.l2update",
     "data": {"sequenceStart": 1545896669105, "sequenceEnd": 1545896669106,
              "symbol": "BTC-USDT", "time": 1663747970273,
              "changes": {"asks": [["6", "1", "1545896669105"]],   # [price, size, sequence]
                          "bids": [["4", "1", "1545896669106"]]}}}

- ``sequenceStart``/``sequenceEnd`` are the first/last ids of the message (integers on the
  wire; tolerated as digit strings).
- Each change's third element is the id of the *last* change of that price inside the range
  (a string on the wire). The calibration procedure filters changes by it (§10.2 step 5).
- A change with price ``"0"`` is a sequence-only placeholder: it carries no level, but its id
  is still part of ``sequenceStart..sequenceEnd`` (§10.2 step 6).
- Size ``"0"`` removes the price level; otherwise sizes are absolute.

Control frames: ``{"id": ..., "type": "welcome" | "ack" | "pong"}`` and
``{"id": ..., "type": "error", "code": 404, "data": "topic ... not found"}``.

REST snapshot (§10.4; ``GET /api/v3/market/orderbook/level2?symbol=`` or the public
``/api/v1/market/orderbook/level2_{20,100}``)::

    {"code": "200000", "data": {"time": 1619378326628, "sequence": "1613277183892",
                                "bids": [["242.649", "5"], ...], "asks": [[...], ...]}}

``sequence`` is a *string* of an integer; ccxt's ``nonce = int(sequence)``.
"""

from __future__ import annotations

L2_SUBJECT = "trade.l2update"
L2_TOPIC_PREFIX = "/market/level2:"
REST_OK = "200000"
#: Control frame ``type`` values that carry no market data.
CONTROL_TYPES = frozenset({"welcome", "ack", "pong", "ping"})
