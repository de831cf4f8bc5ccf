"""Kraken spot order-book adapter: WS v2 (live) and WS v1 (recordings), REST ``Depth``.

``KRAKEN.new_decoder(precisions=..., depth=...)`` makes a :class:`KrakenDecoder` for one
connection; ``precisions`` seeds the v2 checksum formatting (``{symbol: (price_decimals,
qty_decimals)}``), ``depth`` the v2 book depth. The live dialogue is WS v2, whose
``unsubscribe_messages(symbols, depth)`` names the depth subscribed.
"""

from __future__ import annotations

from bookkeeper.ports import Market

from .._common import VenueAdapter
from . import spec
from .parse import KrakenDecoder, parse_rest_depth, parse_v1_book, parse_v2_levels

__all__ = ["KRAKEN", "KrakenDecoder", "parse_rest_depth", "parse_v1_book", "parse_v2_levels"]

KRAKEN = VenueAdapter("kraken", spec.CAPABILITIES, decoder=KrakenDecoder, rest=parse_rest_depth, live=spec,
                      ping=spec.PING, ws_root=spec.WS_ROOTS[Market.SPOT], ccxt_urls=spec.ccxt_urls)
