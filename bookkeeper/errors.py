"""The exception tree. Expected conditions (gaps, stale deltas, checksum mismatches, buffer
overflow) are verdicts and plans, never exceptions.

::

    BookkeeperError
      InvalidEvent        an event breaks its own invariants (the adapter or the caller has a bug)
      InvalidState        a method was called in a state that forbids it
      IntegrityError      book/ledger reached an impossible state; carries evidence
        CrossedBook
        NegativePosition
      AdapterError        a wire message could not be translated; carries exchange + raw excerpt
      TransportError      raised only by bookkeeper.io, mapped from websockets/ccxt (``from exc``)
        ConnectionLost
        RequestTimeout
        RateLimited       carries retry_after_s
      ExchangeRejected    non-retryable answer (auth, bad symbol); carries the ccxt class name
      UsageError          bad input from a user of the CLI or API (file, flag, venue name)
"""

from __future__ import annotations


class BookkeeperError(Exception):
    """Root of every exception bookkeeper raises. Never raised directly.

    Context is passed as keyword arguments and becomes attributes (the ones each class
    documents are declared on it, ``None`` when not given); all of them are also in
    :attr:`context`.

    Attributes:
        context: every keyword given at construction.
    """

    context: dict[str, object]

    def __init__(self, message: str = "", **context: object) -> None:
        if type(self) is BookkeeperError:
            raise TypeError("BookkeeperError is abstract; raise a subclass")
        super().__init__(message)
        self.context = context
        for name, value in context.items():
            setattr(self, name, value)


class InvalidEvent(BookkeeperError):
    """An event or value violates its own invariants (e.g. ``last_seq < first_seq``).

    Attributes:
        symbol: the instrument of the event, when known.
        fill_id: the venue fill id, for fills.
    """

    symbol: str | None = None
    fill_id: str | None = None


class InvalidState(BookkeeperError):
    """A method was called in a state that forbids it (e.g. reading a book that is not
    SYNCED, an illegal sync transition, a feed whose driver died: then ``__cause__`` is the
    driver's exception).

    Attributes:
        symbol: the instrument, when the state is a book's.
        state: the :class:`~bookkeeper.actions.SyncState` the book was in, when it is a book's.
    """

    symbol: str | None = None
    state: object | None = None


class IntegrityError(BookkeeperError):
    """The book or ledger reached an impossible state. Carries evidence as attributes.

    Attributes:
        price: the offending level's price, when one level is to blame.
        reason: why the state is impossible (also the message).
    """

    price: float | None = None
    reason: str | None = None


class CrossedBook(IntegrityError):
    """Best bid >= best ask on a book that claims to be synced."""


class NegativePosition(IntegrityError):
    """A position that may not go negative did."""


class AdapterError(BookkeeperError):
    """A wire message could not be translated into events.

    Attributes:
        exchange: venue name.
        excerpt: the first bytes of the offending frame (for logs; never the whole frame).
        symbol: the instrument when it could be read, else ``None``.
    """

    exchange: str
    excerpt: str
    symbol: str | None = None

    def __init__(self, message: str, *, exchange: str, raw: object = b"", symbol: str | None = None) -> None:
        # only the excerpt is decoded: a rejected frame may be megabytes
        text = bytes(raw[:800]).decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray, memoryview)) else str(raw)
        super().__init__(message, exchange=exchange, excerpt=text[:200], symbol=symbol)


class TransportError(BookkeeperError):
    """A network-level failure, raised only by ``bookkeeper.io``.

    Attributes:
        exchange: venue name (REST failures).
        symbol: the instrument a REST request was for.
        closure: the :class:`~bookkeeper.io.ws.Closure` (close code, cause) of a WebSocket
            failure.
    """

    exchange: str | None = None
    symbol: str | None = None
    closure: object | None = None


class ConnectionLost(TransportError):
    """The connection died (e.g. close code 1006)."""


class RequestTimeout(TransportError):
    """A request or handshake took longer than its timeout."""


class RateLimited(TransportError):
    """The venue answered 429/418.

    Attributes:
        retry_after_s: what the venue asked us to wait (``Retry-After``), or ``None``.
    """

    retry_after_s: float | None = None

    def __init__(self, message: str = "rate limited", *, retry_after_s: float | None = None, **context: object) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **context)


class ExchangeRejected(BookkeeperError):
    """A non-retryable answer from the venue (auth, bad symbol).

    Attributes:
        exchange: venue name.
        symbol: the instrument the request was for.
        ccxt_class: the name of the ccxt exception it was mapped from (``None`` when it came
            from a WebSocket handshake).
        closure: the WebSocket closure, for a refused handshake.
    """

    exchange: str | None = None
    symbol: str | None = None
    ccxt_class: str | None = None
    closure: object | None = None


class UsageError(BookkeeperError):
    """Bad input from a user: unknown venue, unreadable file, bad flag value.

    Attributes:
        venue: the venue name given, when it is to blame.
        symbol: the symbol given, when it is to blame.
        path: the file, when it is to blame.
        line: the 1-based line of ``path`` that could not be read.
    """

    venue: str | None = None
    symbol: str | None = None
    path: str | None = None
    line: int | None = None
