"""BitMEX ``orderBookL2`` adapter, for replaying recordings (the exchange closed 2026-09-23).

Each decoder keeps the per-connection ``(symbol, id, side) -> price`` memory of the L2
tables. The live dialogue is kept for the simulator; nothing can connect to BitMEX any more.
"""

from __future__ import annotations

from .._common import VenueAdapter, stateful_decoder
from . import spec
from .parse import L2Tables, decode, parse_rest_snapshot

__all__ = ["BITMEX"]

BITMEX = VenueAdapter("bitmex", spec.CAPABILITIES, decoder=stateful_decoder(decode, L2Tables), live=spec,
                       ping=spec.ping_message, closed=spec.CLOSED,
                       rest=lambda body, *, symbol, url, ts_recv_ns: parse_rest_snapshot(body, symbol, ts_recv_ns))
