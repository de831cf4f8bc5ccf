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

from .actions import FillCursor
from .capabilities import ExchangeCapabilities, FillHistory
from .credentials import ApiCredentials
from .events import (
    BalanceReport,
    BookSnapshot,
    Fill,
    MarketEvent,
    OrderUpdate,
    PositionReport,
    PrivateEvent,
    VenueNotice,
)


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


# ----------------------------------------------------------------------------- private streams


@runtime_checkable
class PrivateDecoder(Protocol):
    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[PrivateEvent]:
        """Translate one private-stream frame into account events (``Fill``, ``OrderUpdate``,
        ``BalanceUpdate``, ``BalanceReport``, ``PositionReport``) and session control
        (``PrivateControl``). Pongs and frames the account side does not need yield ``[]``.

        Raises:
            AdapterError: the frame is malformed. Nothing was produced from it.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FillsPage:
    """One page of a venue's REST fills history, parsed.

    Attributes:
        fills: the page's fills (any order; the ledger does not care).
        next_call: the request for the next page of the same replay, ``None`` when this page
            proves the history asked for is exhausted (fewer rows than the page size).
    """

    fills: tuple[Fill, ...]
    next_call: RestCall | None


@runtime_checkable
class AccountAdapter(Protocol):
    """A venue's private side: the authenticated stream's dialogue and the REST calls of
    account recovery (implemented beside each venue's book adapter, looked up with
    ``bookkeeper.adapters.get_account_adapter(name)``). Pure: the driver supplies the clock
    (``now_ms``) and the request ids; REST goes through ccxt's implicit endpoint methods, which
    sign the requests and return the raw bodies (exact decimal strings).

    Attributes:
        name: the registry name (the same as the book adapter's).
        ccxt_id: the ccxt class of the private REST calls.
        market_types: the ccxt market types (``spot``, ``swap``, ...) of the instruments the
            account trades; a wire symbol listed under several types (Bybit ``BTCUSDT`` is
            both spot and a linear swap) is taken from the first that lists it.
        history: what the venue's fills endpoint serves (page size, paging, windows).
        session_lifetime_s: the longest an authenticated private session lives before the
            venue ends it (Binance WS API connections: 24 h); ``None`` where none is
            documented. The driver logs in again *before* it ends.
        ping_interval_s: send :meth:`ping_message` after this long without traffic
            (``None``: the venue pings us and the WebSocket library answers).
        pong_timeout_s: how long to wait for the answer to a ping.
    """

    name: str
    ccxt_id: str
    market_types: tuple[str, ...]
    history: FillHistory
    session_lifetime_s: float | None
    ping_interval_s: float | None
    pong_timeout_s: float | None

    def default_private_ws_root(self) -> str:
        """The production root of the private stream (``wss://ws-api.binance.com:443``)."""
        ...

    def private_ws_url(self, root: str) -> str:
        """The private stream's URL on a server at ``root`` (``{root}/ws-api/v3``)."""
        ...

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """ccxt URL overrides sending the private REST calls to ``base_url`` (a simulator)."""
        ...

    def login_messages(self, credentials: ApiCredentials, *, now_ms: int, request_id: str) -> list[str]:
        """The frames that authenticate the connection, signed with ``credentials`` at venue
        time ``now_ms`` (Binance ``userDataStream.subscribe.signature``, OKX ``op: login``).
        Their text holds a signature, never the secret itself.

        ``[]`` when the URL itself authenticates (a :class:`PrivateBootstrap` venue's listenKey):
        the driver then treats the open connection as logged in at once, and answers a later
        login (the venue ended the session, ``SESSION_EXPIRED``) with a new connection, whose
        bootstrap call gets a new grant."""
        ...

    def subscribe_messages(self, *, request_id: str) -> list[str]:
        """The frames sent once ``LOGGED_IN`` arrived ([] when logging in subscribes)."""
        ...

    def subscribe_channels(self) -> frozenset[str]:
        """The channels whose ``SUBSCRIBED`` acks complete the subscription (empty: the
        ``LOGGED_IN`` answer completes it)."""
        ...

    def ping_message(self) -> str | None:
        """The app-level ping frame (OKX ``ping``), ``None`` where protocol pings suffice."""
        ...

    def new_private_decoder(self) -> PrivateDecoder:
        """A fresh decoder for one private connection."""
        ...

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """The first request of a replay of ``symbol``'s fills: after ``cursor`` (by trade id
        where the venue pages by id and the cursor has one) or in ``[since_ms, until_ms]``."""
        ...

    def parse_fills_page(self, body: Any, *, call: RestCall, symbol: str, ts_recv_ns: int = 0) -> FillsPage:
        """Translate the answer to ``call`` (a :meth:`fills_call` or a page's ``next_call``).

        Raises:
            AdapterError: malformed body.
        """
        ...

    def balances_call(self) -> RestCall:
        """The request for the account's balances."""
        ...

    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> BalanceReport:
        """Total balances per currency; ``ts_exchange_ns`` is the venue's last update time
        of the account (a full sync is consistent when it is unchanged before and after the
        other reads) where :meth:`account_mark_call` is ``None``; otherwise the mark comes
        from that call and ``ts_exchange_ns`` is whatever the answer has (0: nothing).

        Raises:
            AdapterError: malformed body.
        """
        ...

    def account_mark_call(self) -> RestCall | None:
        """The request of the account's consistency mark, read before and after the other
        reads of a full sync or a reconciliation (they are one consistent picture when the
        two marks are equal). ``None``: :meth:`parse_balances`' ``ts_exchange_ns`` is the mark
        (the balances answer carries the venue's last-change time: Binance ``updateTime``,
        OKX ``uTime``); a venue whose balances answer has none (Bybit: the transaction log's
        newest row) names the extra read here."""
        ...

    def parse_account_mark(self, body: Any, *, ts_recv_ns: int = 0) -> int:
        """The answer to :meth:`account_mark_call`: venue ns of the account's last change
        (0: the venue reports none).

        Raises:
            AdapterError: malformed body, or an adapter without a mark call.
        """
        ...

    def positions_call(self) -> RestCall | None:
        """The request for derivative positions, ``None`` for a spot-only account."""
        ...

    def parse_positions(self, body: Any, *, ts_recv_ns: int = 0) -> list[PositionReport]:
        """Net positions (signed contracts) of every instrument the answer names.

        Raises:
            AdapterError: malformed body.
        """
        ...

    def open_orders_call(self) -> RestCall:
        """The request for every open order of the account."""
        ...

    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The open orders.

        Raises:
            AdapterError: malformed body.
        """
        ...


@runtime_checkable
class PrivateBootstrap(Protocol):
    """An :class:`AccountAdapter` whose private-stream URL depends on a REST answer made before
    each connection, and whose grant needs a periodic keepalive (Binance USD-M: ``POST
    /fapi/v1/listenKey`` gives the key the URL carries, ``PUT`` every 20 min keeps it, §4.6).
    The account side's counterpart of :meth:`LiveSpec.ws_bootstrap_call` /
    :meth:`LiveSpec.ws_url_from_bootstrap`. The driver (``bookkeeper.io.account``) makes the
    bootstrap call on every connection attempt (through ccxt, retried like any REST call; a
    refusal of the credentials halts the account as a refused login does), connects to the URL
    built from its answer, runs the keepalive while connected (a refused keepalive means the
    grant is gone: it reconnects, bootstrapping anew), and, since such a URL authenticates,
    :meth:`AccountAdapter.login_messages` is ``[]``.

    Attributes:
        keepalive_interval_s: how often :meth:`private_keepalive_call` is made while connected
            (ccxt ``listenKeyRefreshRate``: 20 min; the key lives 60 min); ``None``: never.
    """

    keepalive_interval_s: float | None

    def private_bootstrap_call(self) -> RestCall:
        """The REST call that precedes each private connection."""
        ...

    def private_url_from_bootstrap(self, root: str, body: Any) -> str:
        """The private stream's URL on a server at ``root``, from the bootstrap answer ``body``.

        Raises:
            AdapterError: the answer is malformed.
        """
        ...

    def private_keepalive_call(self, body: Any) -> RestCall | None:
        """The periodic call that keeps the grant of bootstrap answer ``body`` alive, ``None``
        when it needs none."""
        ...

    def private_release_call(self, body: Any) -> RestCall | None:
        """The call that gives the grant of bootstrap answer ``body`` back when the feed closes
        (listenKey ``DELETE``: the venue stops its streams at once instead of at expiry),
        ``None`` when there is none. One try, errors only logged."""
        ...
