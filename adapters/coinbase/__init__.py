"""Coinbase ``level2`` adapter: Advanced Trade (``l2_data``) and, for recorded sessions, the
retired Pro feed (``snapshot``/``l2update``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.events import BookSnapshot, MarketEvent

from . import spec
from .parse import AtSequence, decode, parse_rest_snapshot

__all__ = ["CoinbaseAdapter", "COINBASE"]


class _Decoder:
    """Per connection: remembers the last Advanced Trade ``sequence_num``."""

    __slots__ = ("_seq",)

    def __init__(self) -> None:
        self._seq = AtSequence()

    @property
    def last_sequence_num(self) -> int | None:
        return self._seq.last

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        return decode(frame, ts_recv_ns, self._seq)


class CoinbaseAdapter:
    def __init__(self, name: str, capabilities: ExchangeCapabilities) -> None:
        self.name = name
        self.capabilities = capabilities

    def new_decoder(self) -> _Decoder:
        return _Decoder()

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        return parse_rest_snapshot(body, symbol, url, ts_recv_ns)

    # LiveSpec
    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return spec.ws_url(base, symbols)

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        return spec.subscribe_messages(symbols, depth)

    def unsubscribe_messages(self, symbols: Sequence[str]) -> list[str]:
        return spec.unsubscribe_messages(symbols)

    def ping_message(self) -> str | None:
        return None  # no client ping is specified; the heartbeats channel keeps it open


COINBASE = CoinbaseAdapter("coinbase", spec.CAPABILITIES)
