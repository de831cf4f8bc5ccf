"""Gate (API v4) spot and USDT-futures order-book adapters (exchange-protocols.md §11).

Parses the legacy ``spot.order_book_update`` / ``futures.order_book_update`` channels (as
captured) and the spot order book v2 ``spot.obu``. Stateless: every frame names its pair and
id range. Wire dialogue helpers live in :mod:`.spec` and take the caller's clock (Gate frames
carry a ``time`` field), so these adapters do not implement ``LiveSpec``; ``futures`` tells
which flavour to ask :mod:`.spec` for.
"""

from __future__ import annotations

from functools import partial

from bookkeeper.capabilities import ExchangeCapabilities

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_obu, parse_rest_snapshot, parse_update

__all__ = ["GATEIO", "GATEIO_FUTURES", "parse_update", "parse_obu"]


def _gate(name: str, capabilities: ExchangeCapabilities, *, futures: bool) -> VenueAdapter:
    adapter = VenueAdapter(name, capabilities, decoder=partial(FrameDecoder, decode, name),
                           rest=partial(parse_rest_snapshot, exchange=name, seconds_clock=futures))
    adapter.futures = futures  # type: ignore[attr-defined]
    return adapter


GATEIO = _gate("gateio", spec.SPOT_CAPABILITIES, futures=False)
GATEIO_FUTURES = _gate("gateio_futures", spec.FUTURES_CAPABILITIES, futures=True)
