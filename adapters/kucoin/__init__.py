"""KuCoin spot ``/market/level2`` adapter (exchange-protocols.md §10).

Stateless: every frame names its symbol and sequence range.
"""

from __future__ import annotations

from functools import partial

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_l2update, parse_rest_snapshot

__all__ = ["KUCOIN", "parse_l2update"]

KUCOIN = VenueAdapter("kucoin", spec.CAPABILITIES, decoder=partial(FrameDecoder, decode), rest=parse_rest_snapshot,
                      live=spec, ping=spec.ping_message, rest_call=spec.depth_call, ccxt_urls=spec.ccxt_urls,
                      bootstrap=(spec.BOOTSTRAP, spec.url_from_bullet))
