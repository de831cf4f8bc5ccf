"""OKX v5 order-book adapter (``books``, ``books-l2-tbt``, ``books50-l2-tbt``).

Stateless: every push names its channel and instrument. Implements ``ports.Adapter`` and
``ports.LiveSpec``; the ping is text ``ping`` after N < 30 s idle (§5.5).
"""

from __future__ import annotations

from functools import partial

from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_book_entry, parse_levels, parse_rest_books

__all__ = ["OKX", "decode", "parse_book_entry", "parse_levels", "parse_rest_books"]

OKX = VenueAdapter("okx", spec.CAPABILITIES, decoder=partial(FrameDecoder, decode), rest=parse_rest_books,
                   live=spec, ping=spec.PING, ws_root=spec.WS_ROOTS[Market.SPOT], rest_call=spec.depth_call,
                   ccxt_urls=spec.ccxt_urls)
