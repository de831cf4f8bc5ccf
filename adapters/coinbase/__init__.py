"""Coinbase ``level2`` adapter: Advanced Trade (``l2_data``) and, for recorded sessions, the
retired Pro feed (``snapshot``/``l2update``).

No client ping is specified: the heartbeats channel keeps the connection open.
"""

from __future__ import annotations

from bookkeeper.ports import Market

from .._common import FrameDecoder, VenueAdapter
from . import spec
from .parse import AtSequence, decode, parse_rest_snapshot

__all__ = ["COINBASE"]


class _Decoder(FrameDecoder):
    """Per connection: remembers the last Advanced Trade ``sequence_num``."""

    __slots__ = ("_seq",)

    def __init__(self) -> None:
        self._seq = AtSequence()
        super().__init__(decode, self._seq)

    @property
    def last_sequence_num(self) -> int | None:
        return self._seq.last


COINBASE = VenueAdapter("coinbase", spec.CAPABILITIES, decoder=_Decoder, rest=parse_rest_snapshot, live=spec,
                        ws_root=spec.WS_ROOTS[Market.SPOT])
