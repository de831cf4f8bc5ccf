"""Bybit adapter: v5 ``orderbook.{depth}.{symbol}`` and, for recorded sessions, the retired
v2 ``orderBookL2_25`` format (told apart by topic). The spot full book
(``orderbook.full.{symbol}`` + REST ``full_orderbook``) is its own venue, ``bybit_spot``
(:mod:`.spot`).

Each decoder keeps what the legacy format needs per connection (id -> price); v5 frames are
self-describing.
"""

from __future__ import annotations

from .._common import VenueAdapter, stateful_decoder
from . import spec
from .parse import LegacyBooks, decode, parse_rest_snapshot
from .spot import BYBIT_SPOT

__all__ = ["BYBIT", "BYBIT_SPOT"]

BYBIT = VenueAdapter("bybit", spec.CAPABILITIES, decoder=stateful_decoder(decode, LegacyBooks), live=spec,
                      ping=spec.ping_message, ws_root=spec.WS_ROOTS[spec.MARKET],
                      rest=lambda body, *, symbol, url, ts_recv_ns: parse_rest_snapshot(body, symbol, ts_recv_ns))
