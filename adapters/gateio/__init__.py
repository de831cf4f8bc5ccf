"""Gate (API v4) spot and USDT-futures order-book adapters (exchange-protocols.md §11).

Parses the legacy ``spot.order_book_update`` / ``futures.order_book_update`` channels (as
captured) and the spot order book v2 ``spot.obu``. Stateless: every frame names its pair and
id range. Gate requests carry a ``time`` field: the live dialogue (:class:`.spec.Dialogue`)
takes the caller's clock as ``now_ns=``; ``futures`` tells which flavour it is.
"""

from __future__ import annotations

from functools import partial

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode, parse_obu, parse_rest_snapshot, parse_update

__all__ = ["GATEIO", "GATEIO_FUTURES", "parse_obu", "parse_update"]


def _gate(name: str, capabilities: ExchangeCapabilities, *, futures: bool) -> VenueAdapter:
    adapter = VenueAdapter(name, capabilities, decoder=partial(FrameDecoder, decode, name),
                           rest=partial(parse_rest_snapshot, exchange=name, seconds_clock=futures),
                           live=spec.Dialogue(futures=futures),
                           ws_root=spec.WS_ROOTS[Market.LINEAR if futures else Market.SPOT],
                           rest_call=spec.futures_depth_call if futures else spec.spot_depth_call,
                           ccxt_urls=spec.ccxt_urls)
    adapter.futures = futures  # type: ignore[attr-defined]
    return adapter


GATEIO = _gate("gateio", spec.SPOT_CAPABILITIES, futures=False)
GATEIO_FUTURES = _gate("gateio_futures", spec.FUTURES_CAPABILITIES, futures=True)
