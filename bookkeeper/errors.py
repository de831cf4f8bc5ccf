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
    """Root of every exception bookkeeper raises. Never raised directly."""

    def __init__(self, message: str = "", **context: object) -> None:
        if type(self) is BookkeeperError:
            raise TypeError("BookkeeperError is abstract; raise a subclass")
        super().__init__(message)
        self.context = context
        for name, value in context.items():
            setattr(self, name, value)


class InvalidEvent(BookkeeperError):
    """An event or value violates its own invariants (e.g. ``last_seq < first_seq``)."""


class InvalidState(BookkeeperError):
    """A method was called in a state that forbids it (e.g. an illegal sync transition)."""


class IntegrityError(BookkeeperError):
    """The book or ledger reached an impossible state. Carries evidence as attributes."""


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

    def __init__(self, message: str, *, exchange: str, raw: object = b"", symbol: str | None = None) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray, memoryview)) else str(raw)
        super().__init__(message, exchange=exchange, excerpt=text[:200], symbol=symbol)


class TransportError(BookkeeperError):
    """A network-level failure, raised only by ``bookkeeper.io``."""


class ConnectionLost(TransportError):
    """The connection died (e.g. close code 1006)."""


class RequestTimeout(TransportError):
    """A request or handshake took longer than its timeout."""


class RateLimited(TransportError):
    """The venue answered 429/418; ``retry_after_s`` is what it asked for (or ``None``)."""

    def __init__(self, message: str = "rate limited", *, retry_after_s: float | None = None, **context: object) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **context)


class ExchangeRejected(BookkeeperError):
    """A non-retryable answer from the venue (auth, bad symbol)."""


class UsageError(BookkeeperError):
    """Bad input from a user: unknown venue, unreadable file, bad flag value."""
