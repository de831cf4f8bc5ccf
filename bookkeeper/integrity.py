"""Integrity checks: does the local book still agree with the venue?

Theory of operation
-------------------
Beside the sequence and splice rules, three checks catch a book that went wrong although
every id chained. Each is pure (or a small counter), returns a verdict as a value and is
composed by :class:`~bookkeeper.session.BookSession`, which counts, alerts and recovers:

- **Checksum** (:class:`ChecksumVerifier`): the venue's CRC over its top levels, recomputed
  over the exchange strings the book keeps per level. A mismatch is a reason text, never an
  exception.
- **Crossed**: best bid >= best ask cannot happen on a venue. The test is
  :meth:`~bookkeeper.book.L2Book.is_crossed` itself (one call per applied delta, no wrapper
  on the hot path); :func:`crossed_evidence` words what was seen.
- **Local id ahead** (:class:`StaleRunDetector`): a synced book whose last id is corrupt and
  ahead of the venue (``u = 2**70`` on a monotonic venue) judges every later delta stale and
  silently freezes. Late copies are at or below the id the book held before its last applied
  delta; a run of :data:`STALE_RUN_LIMIT` stale deltas *newer* than that id, none applied
  meanwhile, means the venue moved on and our id did not.

Price and size validation is the book's own (:class:`~bookkeeper.book.L2Book` refuses the
input, changes no level and poisons itself).
"""

from __future__ import annotations

from .book import L2Book
from .capabilities import ChecksumKind
from .checksum import compute_checksum
from .errors import IntegrityError

__all__ = ["CHECKSUM_DEPTH", "STALE_RUN_LIMIT", "ChecksumVerifier", "StaleRunDetector", "crossed_evidence"]

#: Levels per side handed to a checksum: the deepest any :class:`ChecksumKind` sums
#: (CRC32_INTERLEAVED_25); shallower algorithms take their own prefix of them.
CHECKSUM_DEPTH = 25
#: Default ``max_stale_run``: consecutive deltas judged stale although newer than the id the
#: book held before its last applied delta (none applied meanwhile) after which a synced book's
#: last id is taken to be corrupt and ahead of the venue. A real late copy is at or below that
#: id, so no real capture counts a single one (tests/adapters), and a reordered pair counts
#: one; 10 is ~1 s of a 100 ms stream — a frozen book must not be served for long.
STALE_RUN_LIMIT = 10


class ChecksumVerifier:
    """Compares a venue's book checksum with the same checksum over a local book.

    Args:
        kind: the venue's algorithm.
        depth: levels per side read from the book.

    Raises:
        ValueError: ``kind`` is :attr:`ChecksumKind.NONE` (there is nothing to verify).

    >>> book = L2Book()
    >>> book.apply_snapshot([(3366.1, 7.0)], [(3366.8, 9.0)], [("3366.1", "7")], [("3366.8", "9")])
    >>> ck = ChecksumVerifier(ChecksumKind.CRC32_INTERLEAVED_25)
    >>> ck.mismatch(book, -2058547290) is None
    True
    >>> ck.mismatch(book, 12345)
    'checksum mismatch: venue 12345, local -2058547290'
    """

    __slots__ = ("_depth", "_kind")

    def __init__(self, kind: ChecksumKind, depth: int = CHECKSUM_DEPTH) -> None:
        if kind is ChecksumKind.NONE:
            raise ValueError("no checksum to verify for ChecksumKind.NONE")
        self._kind = kind
        self._depth = depth

    @property
    def kind(self) -> ChecksumKind:
        return self._kind

    def mismatch(self, book: L2Book, expected: int) -> str | None:
        """Verify ``expected`` (the venue's checksum) against ``book``.

        Args:
            book: the local book, after the message that carried ``expected`` was applied.
            expected: the venue's checksum (present: see ``checksum.checksum_absent``).

        Returns:
            ``None`` when they agree, else the mismatch as a reason text (a level the venue
            sent no strings for counts as a mismatch, with the book's evidence appended).
        """
        try:
            bids, asks = book.top_raw(self._depth)
            got: int | None = compute_checksum(self._kind, bids, asks)
        except IntegrityError as exc:
            got = None
            detail = str(exc)
        else:
            detail = ""
        if got == expected:
            return None
        return f"checksum mismatch: venue {expected}, local {got} {detail}".rstrip()


def crossed_evidence(book: L2Book) -> str:
    """Word a crossed book's evidence for alerts and records.

    Args:
        book: a book whose :meth:`~bookkeeper.book.L2Book.is_crossed` is True.

    Returns:
        ``"bid <best bid> >= ask <best ask>"``.

    >>> book = L2Book()
    >>> book.apply_snapshot([(101.0, 3.0)], [(101.0, 1.0)])
    >>> crossed_evidence(book)
    'bid (101.0, 3.0) >= ask (101.0, 1.0)'
    """
    return f"bid {book.best_bid()} >= ask {book.best_ask()}"


class StaleRunDetector:
    """The LOCAL_AHEAD detector: a run of stale-but-newer deltas on a synced book.

    A synced book feeds it each delta it judged stale although newer than the *floor* (the id
    the book held before its last applied delta), with its count of applied deltas. Stale
    deltas at or below the floor are ordinary late copies: the session does not feed them (an
    inline compare on its hot path, no call). Any applied delta starts a new run.

    Args:
        max_stale_run: counted deltas in a row that make the verdict (see :data:`STALE_RUN_LIMIT`).

    Raises:
        ValueError: ``max_stale_run`` < 1.

    >>> det = StaleRunDetector(max_stale_run=2)
    >>> det.count(applied=7), det.count(applied=8)  # a delta was applied in between
    (False, False)
    >>> det.count(applied=8), det.count(applied=8)  # the run completes, then starts over
    (True, False)
    """

    __slots__ = ("_limit", "_mark", "_run")

    def __init__(self, max_stale_run: int = STALE_RUN_LIMIT) -> None:
        if max_stale_run < 1:
            raise ValueError(f"max_stale_run must be >= 1, not {max_stale_run}")
        self._limit = max_stale_run
        self._run = 0  # counted stale deltas since the applied count was _mark
        self._mark = -1

    @property
    def max_stale_run(self) -> int:
        return self._limit

    def count(self, applied: int) -> bool:
        """Count one delta judged stale although newer than the floor.

        Args:
            applied: how many deltas the book has applied so far (a change starts a new run).

        Returns:
            True when this delta completes a run of ``max_stale_run``: the book's last id is
            ahead of the venue. The run then starts over.
        """
        if self._mark != applied:  # a delta applied since the run began: a new run
            self._mark = applied
            self._run = 0
        self._run += 1
        if self._run < self._limit:
            return False
        self._run = 0
        return True
