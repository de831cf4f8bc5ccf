"""Inputs to the core: normalized market data and stream lifecycle events.

Adapters turn wire frames into these; the driver adds lifecycle events and ``Tick``. Events
are immutable. They are ``msgspec.Struct`` rather than dataclasses for one reason: a delta is
built for every wire message, and a frozen Struct constructs ~10x faster than a frozen
dataclass (measured in ``benchmarks/``); they are frozen, keyword-only and never subclassed,
exactly as style.md asks of events.

Sequence fields are always ``first_seq``/``last_seq``/``prev_seq``; each venue's spelling
(``U/u/pu``, ``seqId/prevSeqId``, ``change_id/prev_change_id``) is mapped in its adapter.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Union

import msgspec

from .errors import InvalidEvent
from .types import Level, RawLevel, TradeSide


class SnapshotSource(enum.Enum):
    """Where a snapshot came from. ``WS``: pushed on the stream, in order with its deltas.
    ``REST`` / ``REPLAY``: fetched out of band (a REST answer, a journal), so it is placed
    among the deltas only by its sequence id."""

    WS = "ws"
    REST = "rest"
    REPLAY = "replay"


class CloseReason(enum.StrEnum):
    """Why a stream ended, named after its cause. The string values are the public
    ``close_cause`` spelling of disconnect records."""

    ABNORMAL_CLOSURE = "abnormal_closure"  # 1006: TCP died without a close frame
    SERVER_CLOSE = "server_close"  # the server sent a close frame (1000, 1001, ...)
    PING_TIMEOUT = "ping_timeout"  # our app-level ping got no pong in time
    IDLE_TIMEOUT = "idle_timeout"  # no data for longer than the staleness limit
    TCP_ERROR = "tcp_error"  # connect refused / reset before the handshake finished
    RATE_LIMITED = "rate_limited"  # 429/418 on upgrade or a venue rate-limit message
    AUTH_FAILED = "auth_failed"  # private channel login rejected or expired
    LOCAL_SHUTDOWN = "local_shutdown"  # we closed it on purpose
    INTEGRITY_FAILURE = "integrity_failure"  # we closed it because its data was wrong


class BookSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A complete book at sequence ``seq`` (``None`` where the venue has no ids).

    ``bids``/``asks`` are ``(price, size)`` floats in any order; ``bids_raw``/``asks_raw``
    carry the exchange's own strings, index-aligned, for venues whose checksum needs them.
    ``depth`` is the subscribed depth for venues that never send deletes for levels leaving
    it (Kraken). ``complete`` is True for a whole snapshot (nautilus' F_LAST). ``cross_seq``
    is the venue's second, engine-wide ordering id where it has one (see :class:`BookDelta`).
    """

    symbol: str
    bids: list[Level]
    asks: list[Level]
    seq: int | None = None
    checksum: int | None = None
    bids_raw: list[RawLevel] | None = None
    asks_raw: list[RawLevel] | None = None
    depth: int | None = None
    source: SnapshotSource = SnapshotSource.WS
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0
    complete: bool = True
    cross_seq: int | None = None

    def __post_init__(self) -> None:
        if self.bids_raw is not None and len(self.bids_raw) != len(self.bids):
            raise InvalidEvent("bids_raw must align with bids", symbol=self.symbol)
        if self.asks_raw is not None and len(self.asks_raw) != len(self.asks):
            raise InvalidEvent("asks_raw must align with asks", symbol=self.symbol)


class BookDelta(msgspec.Struct, frozen=True, kw_only=True):
    """Level changes (absolute sizes; ``0`` deletes) covering ids ``first_seq..last_seq``.

    ``prev_seq`` is the id the venue says came before this message (pointer venues).
    ``bid_seqs``/``ask_seqs`` hold per-level ids where the venue numbers each level
    (KuCoin); ``checksum`` is the exchange's value for the book *after* this delta.
    ``cross_seq`` is a second ordering id some venues send beside the update ids: it only
    increases, with gaps, and keeps increasing when the update ids restart (Bybit ``seq``, the
    matching engine's version, while ``u`` resets to 1; exchange-protocols.md §6.2). Splice
    rules that need it (``SpliceRule.CROSS_NEXT``) say so; ``None`` elsewhere.
    """

    symbol: str
    bids: list[Level]
    asks: list[Level]
    first_seq: int | None = None
    last_seq: int | None = None
    prev_seq: int | None = None
    checksum: int | None = None
    bids_raw: list[RawLevel] | None = None
    asks_raw: list[RawLevel] | None = None
    bid_seqs: list[int] | None = None
    ask_seqs: list[int] | None = None
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0
    cross_seq: int | None = None

    def __post_init__(self) -> None:
        first, last = self.first_seq, self.last_seq
        if first is not None and last is not None and last < first:
            raise InvalidEvent(f"last_seq {last} < first_seq {first}", symbol=self.symbol)


class BookTicker(msgspec.Struct, frozen=True, kw_only=True):
    """Best bid/ask as the venue publishes it separately (Binance ``bookTicker``); used to
    cross-check the local book when ``seq`` equals the book's last applied id."""

    symbol: str
    seq: int | None
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    ts_recv_ns: int = 0


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A public trade print."""

    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    side: TradeSide | None = None
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One of our own executions. Money is Decimal, built from wire strings.

    ``realized_pnl`` is the venue's own realized PnL of this fill on a derivative (OKX
    ``fillPnl``), ``None`` where the venue reports none: the ledger then computes it. Venues
    round their average entry price their own way, so their figure is the one the balance
    follows."""

    symbol: str
    fill_id: str
    order_id: str
    side: TradeSide
    price: Decimal
    qty: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0
    realized_pnl: Decimal | None = None

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise InvalidEvent("fill qty must be > 0", symbol=self.symbol, fill_id=self.fill_id)


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """A keepalive from the venue (not data). OKX heartbeats carry ``seqId == prevSeqId``."""

    symbol: str | None = None
    seq: int | None = None
    ts_recv_ns: int = 0


class Subscribed(msgspec.Struct, frozen=True, kw_only=True):
    """The venue acknowledged a subscription."""

    symbol: str | None
    channel: str
    depth: int | None = None


class NoticeKind(enum.StrEnum):
    """What a venue control message means to the connection (values are logged)."""

    #: the venue refused something (a subscription, a request); logged
    ERROR = "error"
    #: informational (maintenance, shutdown warnings); logged
    NOTICE = "notice"
    #: the venue says we are sending too fast (a 429 answer over the socket); logged, and
    #: what triage reads as reconnect/request rate limiting
    RATE_LIMITED = "rate_limited"
    #: the venue closes the connection unless it is answered (Deribit ``test_request``):
    #: the adapter's ``reply_to`` says with what
    TEST_REQUEST = "test_request"
    #: the connection's own sequence skipped (Coinbase Advanced Trade ``sequence_num``):
    #: every book on the connection may have missed a delta
    CONNECTION_GAP = "connection_gap"
    #: the connection's own sequence repeated or went back
    CONNECTION_OUT_OF_ORDER = "connection_out_of_order"


class VenueNotice(msgspec.Struct, frozen=True, kw_only=True):
    """A venue control message worth logging or answering (errors, shutdown warnings,
    test requests, the connection's own sequence breaking)."""

    kind: NoticeKind
    message: str
    symbol: str | None = None


class StreamOpened(msgspec.Struct, frozen=True, kw_only=True):
    """The connection carrying this stream is up (after a reconnect, ``attempt`` > 0)."""

    ts_ns: int = 0
    attempt: int = 0


class StreamClosed(msgspec.Struct, frozen=True, kw_only=True):
    """The connection carrying this stream died or was closed."""

    reason: CloseReason
    code: int | None = None
    ts_ns: int = 0


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """The driver's clock, fed to the core for timeouts."""

    now_ns: int


MarketEvent = Union[BookSnapshot, BookDelta, BookTicker, Trade, Heartbeat, Subscribed, VenueNotice, Fill]
Event = Union[MarketEvent, StreamOpened, StreamClosed, Tick]


# ----------------------------------------------------------------------------- account side
# Inputs of the position ledger (bookkeeper.ledger). Like ``Fill`` they name no venue and no
# account: the driver knows which private stream (or REST answer) they came from and hands the
# ledger that ``AccountKey`` beside them. ``MarketEvent`` is left as it is: these are
# ``AccountEvent``s.


class OrderStatus(enum.StrEnum):
    """An order's state as the venue reports it (values are written to records)."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """The order can still fill."""
        return self is OrderStatus.NEW or self is OrderStatus.PARTIALLY_FILLED


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One of our orders as the venue last reported it (Binance ``executionReport``, OKX
    ``orders``, or a REST open-orders row). ``filled_qty`` is cumulative (Binance ``z``, OKX
    ``accFillSz``); ``price`` is ``None`` for market orders."""

    symbol: str
    order_id: str
    side: TradeSide
    status: OrderStatus
    qty: Decimal
    filled_qty: Decimal = Decimal(0)
    price: Decimal | None = None
    client_order_id: str | None = None
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0

    def __post_init__(self) -> None:
        if self.qty < 0 or self.filled_qty < 0 or self.filled_qty > self.qty:
            raise InvalidEvent(f"order quantities out of range: filled {self.filled_qty} of {self.qty}",
                               symbol=self.symbol)


class BalanceUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A balance change that is not a fill (deposit, withdrawal, transfer, funding payment:
    Binance ``balanceUpdate``). ``update_id`` is unique per account (the adapter composes it
    where the venue has none); the ledger applies each id once."""

    currency: str
    delta: Decimal
    update_id: str
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0


class PositionReport(msgspec.Struct, frozen=True, kw_only=True):
    """A derivative position as the venue reports it (OKX ``positions``, ccxt
    ``fetch_positions``), net mode: ``qty`` is signed contracts (long > 0).
    ``avg_entry_price`` is ``None`` when the venue gives none (then it cannot seed a ledger
    baseline for an open position)."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal | None = None
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0


class AccountSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A full sync's answer: total balances per currency, derivative positions and open
    orders, all as of the venue's time ``as_of_ns`` (fills at or before it are in these
    numbers; later ones are not). ``orders_as_of_ns`` is when the open-order list was read, on
    the receiving clock (``ts_recv_ns``'s): an order report received before it and absent from
    the list is closed, whatever the venue's mark says (a mark that moves only with fills,
    Bybit's transaction log, says nothing about orders). ``None``: orders are judged by
    ``as_of_ns``."""

    as_of_ns: int
    balances: dict[str, Decimal]
    positions: list[PositionReport] = msgspec.field(default_factory=list)
    open_orders: list[OrderUpdate] = msgspec.field(default_factory=list)
    ts_recv_ns: int = 0
    orders_as_of_ns: int | None = None


AccountEvent = Fill | OrderUpdate | BalanceUpdate | PositionReport | AccountSnapshot


# ----------------------------------------------------------------------------- private streams
# What a private (authenticated) stream's decoder yields besides the account events above: the
# venue's answers about the session itself. The account session (bookkeeper.account_session)
# reads them; they never reach a book.


class PrivateControlKind(enum.StrEnum):
    """What a private-stream control message means (values are logged and recorded)."""

    #: the venue accepted our login (OKX ``event: login`` with ``code "0"``; Binance's answer to
    #: ``userDataStream.subscribe.signature`` with a ``subscriptionId``)
    LOGGED_IN = "logged_in"
    #: the venue refused our login (bad signature, unknown key, wrong passphrase, clock skew):
    #: the same credentials will be refused again, so this is not retried blindly
    AUTH_REJECTED = "auth_rejected"
    #: a private channel was acknowledged (OKX ``event: subscribe``); Binance's user data
    #: subscription is acknowledged by ``LOGGED_IN`` itself
    SUBSCRIBED = "subscribed"
    #: the venue ended the authenticated session while the socket stays open (Binance
    #: ``eventStreamTerminated``, ``listenKeyExpired``; OKX "Please log in" after a login):
    #: log in again once, then resubscribe, then recover the gap
    SESSION_EXPIRED = "session_expired"
    #: the venue will close the connection soon (Binance ``serverShutdown``)
    SHUTDOWN_NOTICE = "shutdown_notice"
    #: the private stream's own message numbering skipped (a sequenced private stream:
    #: Coinbase Advanced Trade ``sequence_num``, counted per connection): the connection lost
    #: a message, so whatever it carried may be missing. Any venue whose private stream is
    #: numbered can emit it; the session replays the gap from REST. ``since_ns`` is the venue
    #: time of the last message received before the gap (0: unknown)
    STREAM_GAP = "stream_gap"
    #: any other error answer (logged)
    ERROR = "error"


class PrivateControl(msgspec.Struct, frozen=True, kw_only=True):
    """A private-stream control message (login answers, subscription acks, expiry notices).

    ``code`` is the venue's own error code as text (``"-1022"``, ``"60009"``) when it gave one;
    ``message`` never contains credentials (the venue's answers do not echo them).
    """

    kind: PrivateControlKind
    channel: str | None = None
    code: str | None = None
    message: str = ""
    #: ``STREAM_GAP``: venue ns of the last message received before the gap (0: unknown)
    since_ns: int = 0
    ts_recv_ns: int = 0


class BalanceReport(msgspec.Struct, frozen=True, kw_only=True):
    """Absolute balances the venue pushed on a private stream (Binance
    ``outboundAccountPosition``, OKX ``account``): only the currencies it names. Not a ledger
    input (the ledger derives balances from fills); used to check the ledger against the
    venue between full reconciliations."""

    balances: dict[str, Decimal]
    ts_exchange_ns: int = 0
    ts_recv_ns: int = 0


PrivateEvent = Fill | OrderUpdate | BalanceUpdate | PositionReport | BalanceReport | PrivateControl
