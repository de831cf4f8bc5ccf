"""BookView: what a bot reads of a live book — read-only, and never valid when the book is not.

Theory of operation
-------------------
A :class:`~bookkeeper.session.BookSession` owns the mutable :class:`~bookkeeper.book.L2Book`;
users must never apply anything to it (a hand-applied level would put the local book out of
step with the venue's sequence ids without any alert). ``Feed.book(symbol)`` therefore hands
out a ``BookView``: the read half of the book's API and nothing else.

A view is bound to the session, not to a moment: every read first checks that the book is
still SYNCED and raises :class:`~bookkeeper.errors.InvalidState` otherwise. A bot that kept a
view across an ``await`` during which a 1006 sent the book to RECOVERING gets an exception,
never a quietly stale price. (One ``is``-comparison per read; the reads themselves run at the
book's speed.)

>>> from bookkeeper.capabilities import ExchangeCapabilities, SequenceModel, SpliceRule
>>> from bookkeeper.events import BookSnapshot, SnapshotSource, StreamClosed, CloseReason
>>> caps = ExchangeCapabilities(venue="demo", sequence_model=SequenceModel.CONTIGUOUS_RANGE,
...                             splice_rule=SpliceRule.RANGE_NEXT, rest_snapshot=True)
>>> session = BookSession("BTCUSDT", caps)
>>> _ = session.on_snapshot(BookSnapshot(symbol="BTCUSDT", bids=[(99.0, 1.0)], asks=[(101.0, 2.0)],
...                                      seq=7, source=SnapshotSource.WS))
>>> view = BookView(session)
>>> view.best_bid(), view.best_ask(), view.seq
((99.0, 1.0), (101.0, 2.0), 7)
>>> _ = session.handle(StreamClosed(reason=CloseReason.ABNORMAL_CLOSURE, code=1006, ts_ns=0))
>>> view.best_bid()
Traceback (most recent call last):
...
bookkeeper.errors.InvalidState: BTCUSDT book is recovering, not synced
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .actions import SyncState
from .errors import InvalidState
from .session import BookSession
from .types import Level, RawLevel

__all__ = ["BookView"]

_SYNCED = SyncState.SYNCED


class BookView:
    """A read-only view of one session's book that refuses every read unless it is SYNCED.

    Args:
        session: the session whose book is viewed.

    Every read method raises :class:`~bookkeeper.errors.InvalidState` (with ``symbol`` and
    ``state`` attributes) when the book is not SYNCED at the moment of the call.
    """

    __slots__ = ("_session",)

    def __init__(self, session: BookSession) -> None:
        self._session = session

    def _book(self) -> Any:
        s = self._session
        if s.state is not _SYNCED:
            raise InvalidState(f"{s.symbol} book is {s.state}, not synced", symbol=s.symbol, state=s.state)
        return s.book

    # ------------------------------------------------------------------ identity and state
    @property
    def symbol(self) -> str:
        """The venue's spelling of the instrument."""
        return self._session.symbol

    @property
    def state(self) -> SyncState:
        """The book's sync state now (reading it never raises)."""
        return self._session.state

    @property
    def is_synced(self) -> bool:
        """True when reads are allowed."""
        return self._session.state is _SYNCED

    @property
    def seq(self) -> int | None:
        """The venue sequence id last applied (``None`` for venues without ids).

        Raises:
            InvalidState: the book is not SYNCED.
        """
        self._book()
        return self._session.last_seq

    # ------------------------------------------------------------------ reads
    def best_bid(self) -> Level | None:
        """``(price, size)`` of the best bid, or ``None`` when the side is empty.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        result: Level | None = self._book().best_bid()
        return result

    def best_ask(self) -> Level | None:
        """``(price, size)`` of the best ask, or ``None`` when the side is empty.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        result: Level | None = self._book().best_ask()
        return result

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels per side, best first (copies: safe to keep).

        Raises:
            InvalidState: the book is not SYNCED.
        """
        result: tuple[list[Level], list[Level]] = self._book().top(n)
        return result

    def bids(self) -> list[Level]:
        """All bids, best (highest) first.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        result: list[Level] = self._book().bids()
        return result

    def asks(self) -> list[Level]:
        """All asks, best (lowest) first.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        result: list[Level] = self._book().asks()
        return result

    def top_raw(self, n: int) -> tuple[list[RawLevel], list[RawLevel]]:
        """The venue's own price/size strings of the best ``n`` levels (checksum venues keep
        them; print these rather than reformatted floats).

        Raises:
            InvalidState: the book is not SYNCED.
            IntegrityError: the venue never sent strings for a level.
        """
        result: tuple[list[RawLevel], list[RawLevel]] = self._book().top_raw(n)
        return result

    def to_numpy(self, n: int) -> Any:
        """Top ``n`` levels as a ``(2, n, 2)`` float64 array, NaN-padded (imports numpy).

        Raises:
            InvalidState: the book is not SYNCED.
        """
        return self._book().to_numpy(n)

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a synced book never is; reported, not repaired).

        Raises:
            InvalidState: the book is not SYNCED.
        """
        return bool(self._book().is_crossed())

    def equals(self, bids: Iterable[Level], asks: Iterable[Level]) -> bool:
        """True when the book holds exactly these levels (order-insensitive) — what a test
        suite asserts against its simulator's truth.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        return bool(self._book().equals(bids, asks))

    @property
    def bid_count(self) -> int:
        """Number of bid levels.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        return int(self._book().bid_count)

    @property
    def ask_count(self) -> int:
        """Number of ask levels.

        Raises:
            InvalidState: the book is not SYNCED.
        """
        return int(self._book().ask_count)

    def __len__(self) -> int:
        return len(self._book())

    def __repr__(self) -> str:
        s = self._session
        return f"BookView({s.symbol!r}, {s.state}, seq={s.last_seq})"
