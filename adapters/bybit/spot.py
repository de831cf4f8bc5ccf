"""Bybit spot full book: ``orderbook.full.{symbol}`` deltas bridged with REST
``full_orderbook`` (registry name ``bybit_spot``; exchange-protocols.md §6.1, §6.2, §6.4).

The same parser module and dialogue as :mod:`bybit <bookkeeper.adapters.bybit>` (envelopes,
pings, acks, 10 args per subscribe request); only the book topic, its parser
(:func:`~.parse.decode_full`, stateless: it reads no legacy v2 frames), the REST call and the
capabilities differ. Errors name ``bybit_spot``.
"""

from __future__ import annotations

from functools import partial

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import decode_full, parse_rest_full_snapshot

__all__ = ["BYBIT_SPOT"]


class _FullBookDialogue:
    """The ``orderbook.full`` wire dialogue (``ports.LiveSpec`` through ``VenueAdapter``)."""

    ws_url = staticmethod(spec.ws_url)
    subscribe_messages = staticmethod(spec.full_subscribe_messages)
    unsubscribe_messages = staticmethod(spec.full_unsubscribe_messages)


NAME = spec.SPOT_FULL_CAPABILITIES.venue

BYBIT_SPOT = VenueAdapter(
    NAME, spec.SPOT_FULL_CAPABILITIES, decoder=partial(FrameDecoder, decode_full, NAME),
    live=_FullBookDialogue(), ping=spec.ping_message, ws_root=spec.WS_ROOTS[spec.Market.SPOT],
    rest=lambda body, *, symbol, url, ts_recv_ns: parse_rest_full_snapshot(body, symbol, ts_recv_ns, NAME),
    rest_call=spec.full_orderbook_call, ccxt_urls=spec.ccxt_urls)
