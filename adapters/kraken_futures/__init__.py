"""Kraken Futures (derivatives) order-book adapter (WS v1 ``book`` feed).

Stateless: every message names its product. REST books are refused: they carry no ``seq``
and cannot be spliced; recovery is a resubscribe (the venue pushes ``book_snapshot``).
Keep-alive is by protocol pings (see :mod:`.spec`).
"""

from __future__ import annotations

from functools import partial

from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_book, parse_snapshot

__all__ = ["KRAKEN_FUTURES", "decode", "parse_book", "parse_snapshot"]

KRAKEN_FUTURES = VenueAdapter("kraken_futures", spec.CAPABILITIES, decoder=partial(FrameDecoder, decode),
                              no_rest="Kraken Futures REST books carry no seq; resubscribe instead", live=spec,
                              ws_root=spec.WS_ROOTS[Market.INVERSE])
