"""Bitget spot order-book adapter (``books`` channel; legacy v1 WS as captured).

Stateless: every push names its channel and instrument. Implements ``ports.Adapter`` and
``ports.LiveSpec`` (text ``ping``).
"""

from __future__ import annotations

from functools import partial

from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_book_entry, parse_levels, parse_rest_depth

__all__ = ["BITGET", "decode", "parse_book_entry", "parse_levels", "parse_rest_depth"]

BITGET = VenueAdapter("bitget", spec.CAPABILITIES, decoder=partial(FrameDecoder, decode), rest=parse_rest_depth,
                      live=spec, ping=spec.PING, ws_root=spec.WS_ROOTS[Market.SPOT])
