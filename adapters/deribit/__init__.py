"""Deribit ``book.{instrument}.{interval}`` adapter (JSON-RPC 2.0 notifications).

Stateless: every notification names its channel and instrument. REST books are refused
(see :func:`.parse.parse_rest_snapshot`); the ping is ``public/test``, which also answers
Deribit's heartbeat ``test_request``.
"""

from __future__ import annotations

from functools import partial

from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import NO_REST, decode

__all__ = ["DERIBIT"]

DERIBIT = VenueAdapter("deribit", spec.CAPABILITIES, decoder=partial(FrameDecoder, decode), no_rest=NO_REST,
                       live=spec, ping=spec.test_message, reply=spec.reply_to,
                       ws_root=spec.WS_ROOTS[Market.INVERSE])
