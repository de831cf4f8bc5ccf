"""Protocols between the core, the adapters and the drivers.

An *adapter* is a pure translator for one venue: wire frames and REST bodies in, normalized
events out, plus the venue's capabilities and the text of its subscribe / ping messages. It
never connects, sleeps or retries. A per-connection :class:`Decoder` holds what a venue's
framing forces a parser to remember (Kraken v1 channel ids, BitMEX row ids); it is still
pure: bytes in, events out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .capabilities import ExchangeCapabilities
from .events import BookSnapshot, MarketEvent, VenueNotice


@runtime_checkable
class Decoder(Protocol):
    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        """Translate one wire frame. Unknown channels and control messages the core does
        not need yield ``[]``.

        Raises:
            AdapterError: the frame is malformed (bad JSON, wrong types, NaN or negative
                sizes, out-of-range numbers). Nothing was produced from it.
        """
        ...


@runtime_checkable
class Adapter(Protocol):
    """What every venue package exports (``bookkeeper.adapters.get_adapter(name)``)."""

    name: str
    capabilities: ExchangeCapabilities

    def new_decoder(self) -> Decoder:
        """A fresh decoder for one connection (or one recorded session)."""
        ...

    def parse_rest_snapshot(
        self,
        body: bytes | str | Mapping[str, Any],
        *,
        symbol: str | None = None,
        url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        """Translate a REST depth answer (raw body, or the dict ccxt's implicit endpoint
        method returns) into a ``BookSnapshot(source=REST)`` with the venue's sequence id.
        ``symbol`` or ``url`` name the instrument when the body does not.

        Raises:
            AdapterError: malformed body, or no way to tell the symbol.
        """
        ...


class Market(enum.StrEnum):
    """Which market of a venue an adapter speaks (venues serve each from its own WS root:
    Bybit ``/v5/public/{spot,linear,inverse,option}``, Binance ``stream``/``fstream``/``dstream``)."""

    SPOT = "spot"
    LINEAR = "linear"  # USDT/USDC-margined perpetuals and futures
    INVERSE = "inverse"  # coin-margined
    OPTION = "option"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestCall:
    """One ccxt call the I/O layer makes for an adapter, declared by the adapter.

    ``getattr(ccxt.async_support, ccxt_id)(config)`` then ``await getattr(exchange, method)(params)``:
    ccxt's *implicit endpoint* methods return the raw body (ccxt's unified ``fetch_order_book``
    drops the venue's sequence id, exchange-protocols.md §2.6).

    >>> RestCall(ccxt_id="binance", method="public_get_depth", params={"symbol": "BTCUSDT", "limit": 1000}).method
    'public_get_depth'

    Attributes:
        ccxt_id: the ccxt exchange class (``binance``, ``binanceusdm``, ``gate`` ...).
        method: the implicit endpoint method (``public_get_depth`` ...).
        params: its parameters.
    """

    ccxt_id: str
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class LiveSpec(Protocol):
    """The wire dialogue of a venue's live stream (implemented by venues the live ingest
    supports). Everything the I/O layer must know about a venue comes from here, so that
    ``bookkeeper.io`` names no venue."""

    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        """The URL to connect to for ``symbols`` on a server at ``base``."""
        ...

    def default_ws_url(self) -> str | None:
        """The production WebSocket root of the adapter's market (``ws_url`` adds the path),
        or ``None`` when there is no fixed URL and :meth:`ws_bootstrap_call` gives one per
        connection (KuCoin).

        Raises:
            UsageError: the venue cannot be reached live any more (BitMEX: closed); the
                message says why.
        """
        ...

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        """Text frames to send after connecting ([] when the URL subscribes)."""
        ...

    def unsubscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]:
        """Text frames that end the subscription :meth:`subscribe_messages` made with the
        same ``depth`` (Kraken v2 and Bybit name the depth in both)."""
        ...

    def rest_snapshot_call(self, symbol: str, depth: int | None = None) -> RestCall | None:
        """The ccxt call that fetches ``symbol``'s REST book at ``depth`` levels (``None``:
        the venue's default; larger values are capped at the venue's limit), whose answer
        :meth:`Adapter.parse_rest_snapshot` reads. ``None`` when the venue's REST book cannot
        be spliced with its stream (``capabilities.rest_snapshot`` is false): no REST client
        is needed for it."""
        ...

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """A ccxt constructor config sending the calls of :meth:`rest_snapshot_call` (and
        :meth:`ws_bootstrap_call`) to ``base_url`` instead of the venue (a simulator). Only the
        URLs change.

        Raises:
            UsageError: the venue makes no REST call, so there is nothing to point.
        """
        ...

    def ws_bootstrap_call(self) -> RestCall | None:
        """The REST call that must precede each connection (KuCoin ``bullet-public``: the
        URL and its token), or ``None``."""
        ...

    def ws_url_from_bootstrap(self, body: Mapping[str, Any], connect_id: str) -> str:
        """The URL to connect to, from the answer to :meth:`ws_bootstrap_call`.

        Raises:
            AdapterError: the answer is malformed.
            UsageError: the venue has no bootstrap call.
        """
        ...

    def ping_message(self) -> str | None:
        """The app-level ping frame, or ``None`` where protocol pings suffice."""
        ...

    def reply_to(self, notice: VenueNotice) -> str | None:
        """The frame that answers a venue control message (Deribit's ``test_request``), or
        ``None`` when it needs no answer."""
        ...
