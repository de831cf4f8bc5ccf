"""Fleet coordination decisions, with no I/O: token buckets, leases, journal ids and ranges.

Theory of operation
-------------------
Many bot instances share one venue's limits and one venue's stream (architecture.md §5). The
I/O side (:mod:`bookkeeper.io.coord`, :mod:`bookkeeper.io.journal`) stores the shared state
in-process or in Redis; every *decision* about that state is made here, by plain objects fed
the time as data, so it is tested without a clock, a socket or a Redis server (the Redis Lua
scripts implement the same arithmetic, and a test holds the two equal):

- **Budgets.** A venue's published limit (``RateLimit``: *N per W seconds per IP*, declared by
  the adapter in :class:`~bookkeeper.capabilities.ExchangeCapabilities`) becomes a
  :class:`TokenBucket` whose burst plus refill over any window of ``W`` seconds is exactly
  ``N``: ``capacity = N * burst_fraction`` and ``rate = (N - capacity) / W``. At most
  ``capacity`` tokens exist when a window opens and ``rate * W`` arrive during it, so no
  sliding window ever sees more than ``N`` grants, however many instances share the bucket.
  :meth:`TokenBucket.take` answers "granted" (``0.0``) or how long to wait; nothing is taken
  on a refusal.
- **Leases (singleflight locks).** :class:`LockTable` grants one :class:`Lease` per key at a
  time; a lease expires ``ttl`` after it was granted, so a crashed holder never blocks the
  fleet. Every grant carries a *fencing token* that only grows per key: a holder whose lease
  expired (and was granted to someone else) can be told apart from the current one, and its
  release is refused.
- **Journal ids.** A delta journal entry is stored under an id derived from the delta's
  ``last_seq`` (:func:`journal_entry_id`), so two writers appending the same delta produce the
  same id and the store rejects the second (ids must grow). :func:`journal_min_seq` says where
  trimming to a window of ids cuts.
- **Is a journal range complete?** :func:`check_journal_range` walks the entries a journal
  holds with the venue's own :class:`~bookkeeper.sequencer.Sequencer` rule and returns the
  deltas that provably close ``from_seq..to_seq``, or ``None`` when it cannot prove that (a
  hole left by a writer that was down, a trimmed start, a venue without sequence ids): then
  the recovery ladder moves on to its next rung.

>>> from bookkeeper.capabilities import RateLimit
>>> b = TokenBucket.for_limit(RateLimit(count=300, window_s=300.0), now_ns=0)
>>> b.capacity, b.rate_per_s
(150.0, 0.5)
>>> b.take(150, now_ns=0), b.take(1, now_ns=0)
(0.0, 2.0)
>>> journal_entry_id(BookDelta(symbol="X", bids=[], asks=[], first_seq=5, last_seq=9))
'9-0'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .capabilities import ExchangeCapabilities, RateLimit, SequenceModel
from .errors import InvalidEvent
from .events import BookDelta
from .sequencer import SeqVerdict, Sequencer

__all__ = [
    "DEFAULT_BURST_FRACTION",
    "Lease",
    "LockTable",
    "TokenBucket",
    "check_journal_range",
    "journal_entry_id",
    "journal_min_seq",
    "journal_seq_of",
    "journaled",
    "snapshot_weight",
]

#: the share of a venue's limit that may be spent in one burst (the rest refills over the window)
DEFAULT_BURST_FRACTION = 0.5

_NS = 1_000_000_000


@dataclass(slots=True)
class TokenBucket:
    """A token bucket fed the time as data (see the module docstring).

    Attributes:
        capacity: the most tokens it holds (the burst).
        rate_per_s: tokens added per second.
        tokens: tokens now (as of ``updated_ns``).
        updated_ns: when ``tokens`` was last brought up to date (any monotonic ns clock).

    Raises:
        InvalidEvent: a non-positive capacity or a negative rate.
    """

    capacity: float
    rate_per_s: float
    tokens: float
    updated_ns: int

    def __post_init__(self) -> None:
        if self.capacity <= 0 or self.rate_per_s < 0:
            raise InvalidEvent(f"impossible token bucket: capacity {self.capacity}, rate {self.rate_per_s}")

    @classmethod
    def for_limit(cls, limit: RateLimit, *, now_ns: int, burst_fraction: float = DEFAULT_BURST_FRACTION) -> TokenBucket:
        """The bucket that never grants more than ``limit.count`` in any ``limit.window_s``.

        Args:
            limit: the venue's published limit.
            now_ns: the clock's now (the bucket starts full).
            burst_fraction: the share of the limit available at once (0 < f <= 1; 1 allows
                the whole limit in one burst, then nothing until the window has refilled it).

        Returns:
            A full bucket.

        Raises:
            InvalidEvent: ``burst_fraction`` outside (0, 1].
        """
        capacity, rate = bucket_shape(limit, burst_fraction)
        return cls(capacity=capacity, rate_per_s=rate, tokens=capacity, updated_ns=now_ns)

    def refill(self, now_ns: int) -> None:
        """Bring ``tokens`` up to ``now_ns`` (a clock that went back adds nothing)."""
        if now_ns > self.updated_ns:
            self.tokens = min(self.capacity, self.tokens + (now_ns - self.updated_ns) * self.rate_per_s / _NS)
            self.updated_ns = now_ns

    def take(self, n: float, *, now_ns: int) -> float:
        """Take ``n`` tokens if they are there.

        Args:
            n: tokens wanted (a connection attempt is 1; a REST call its weight).
            now_ns: the clock's now.

        Returns:
            ``0.0`` when granted (taken), else the seconds until ``n`` tokens will be there
            (nothing taken; ``inf`` when the bucket never refills).

        Raises:
            InvalidEvent: ``n`` is negative or larger than the capacity (it could never be
                granted).
        """
        if n < 0 or n > self.capacity:
            raise InvalidEvent(f"cannot take {n} tokens from a bucket of {self.capacity}")
        self.refill(now_ns)
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        if self.rate_per_s == 0:
            return float("inf")
        return (n - self.tokens) / self.rate_per_s


def bucket_shape(limit: RateLimit, burst_fraction: float = DEFAULT_BURST_FRACTION) -> tuple[float, float]:
    """``(capacity, rate_per_s)`` of the bucket for ``limit`` (see the module docstring).

    Args:
        limit: the venue's published limit.
        burst_fraction: the share of the limit available at once, in (0, 1].

    Returns:
        The capacity and the refill rate.

    Raises:
        InvalidEvent: ``burst_fraction`` outside (0, 1].

    >>> bucket_shape(RateLimit(count=6000, window_s=60.0))
    (3000.0, 50.0)
    """
    if not 0 < burst_fraction <= 1:
        raise InvalidEvent(f"burst_fraction must be in (0, 1], not {burst_fraction}")
    capacity = limit.count * burst_fraction
    return capacity, (limit.count - capacity) / limit.window_s


def snapshot_weight(caps: ExchangeCapabilities, depth: int | None) -> int:
    """The REST weight a snapshot of ``depth`` levels costs on this venue.

    Args:
        caps: the venue's declaration (``rest_snapshot_weights``: ``(max_depth, weight)``
            steps, ascending).
        depth: the depth asked for (``None``: the venue's ``rest_snapshot_depth``).

    Returns:
        The weight of the first step that covers ``depth`` (the last step beyond them all);
        1 when the venue declares no weights.

    >>> from bookkeeper.capabilities import SequenceModel
    >>> caps = ExchangeCapabilities(venue="v", sequence_model=SequenceModel.NONE,
    ...                             rest_snapshot_weights=((100, 5), (1000, 50)))
    >>> snapshot_weight(caps, 20), snapshot_weight(caps, 1000), snapshot_weight(caps, 5000)
    (5, 50, 50)
    """
    steps = caps.rest_snapshot_weights
    if not steps:
        return 1
    want = caps.rest_snapshot_depth if depth is None else depth
    for max_depth, weight in steps:
        if want <= max_depth:
            return weight
    return steps[-1][1]


# ---------------------------------------------------------------------------------- leases
@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One grant of a singleflight lock.

    Attributes:
        key: what is locked (``snapshot:BTCUSDT``, ``connect:<connection key>``).
        owner: the holder's random token (a release must present it).
        fence: the fencing token: grows with every grant of ``key``, so a newer holder
            always has a larger one than any holder whose lease expired.
        expires_ns: when the lease lapses (the coordinator's clock).
    """

    key: str
    owner: str
    fence: int
    expires_ns: int


class LockTable:
    """In-process singleflight locks with expiry and fencing (pure: time is passed in).

    >>> t = LockTable()
    >>> a = t.acquire("k", owner="a", ttl_ns=10, now_ns=0)
    >>> t.acquire("k", owner="b", ttl_ns=10, now_ns=5) is None     # held
    True
    >>> b = t.acquire("k", owner="b", ttl_ns=10, now_ns=10)         # a's lease expired
    >>> (a.fence, b.fence), t.release(a, now_ns=11), t.release(b, now_ns=11)
    ((1, 2), False, True)
    """

    __slots__ = ("_fences", "_held")

    def __init__(self) -> None:
        self._held: dict[str, Lease] = {}
        self._fences: dict[str, int] = {}

    def _purge(self, now_ns: int) -> None:
        # bounded by the live keys: expired leases are dropped whenever the table is touched
        for key in [k for k, lease in self._held.items() if lease.expires_ns <= now_ns]:
            del self._held[key]

    def acquire(self, key: str, *, owner: str, ttl_ns: int, now_ns: int) -> Lease | None:
        """Grant ``key`` to ``owner`` unless another unexpired lease holds it.

        Args:
            key: what to lock.
            owner: the caller's token.
            ttl_ns: how long the lease lasts (> 0).
            now_ns: the clock's now.

        Returns:
            The lease, or ``None`` while someone else holds the key.

        Raises:
            InvalidEvent: a non-positive ``ttl_ns``.
        """
        if ttl_ns <= 0:
            raise InvalidEvent(f"a lease needs a positive ttl, not {ttl_ns}")
        self._purge(now_ns)
        if key in self._held:
            return None
        fence = self._fences.get(key, 0) + 1
        self._fences[key] = fence
        lease = self._held[key] = Lease(key=key, owner=owner, fence=fence, expires_ns=now_ns + ttl_ns)
        return lease

    def release(self, lease: Lease, *, now_ns: int) -> bool:
        """Give ``lease`` back.

        Args:
            lease: a lease this table granted.
            now_ns: the clock's now.

        Returns:
            True when it was still the current lease (released); False when it had expired
            or been granted to another holder since (nothing changed).
        """
        self._purge(now_ns)
        current = self._held.get(lease.key)
        if current is None or current.owner != lease.owner or current.fence != lease.fence:
            return False
        del self._held[lease.key]
        return True

    def holder(self, key: str, *, now_ns: int) -> Lease | None:
        """The current lease of ``key``, if any."""
        self._purge(now_ns)
        return self._held.get(key)


# ---------------------------------------------------------------------------------- journal
def journaled(model: SequenceModel) -> bool:
    """Whether a venue's deltas can be journaled and replayed: only ids that chain prove a
    replayed range whole (``CONTIGUOUS_RANGE``, ``PREV_POINTER``)."""
    return model is SequenceModel.CONTIGUOUS_RANGE or model is SequenceModel.PREV_POINTER


def journal_entry_id(delta: BookDelta) -> str:
    """The stream entry id of ``delta``: ``"<last_seq>-0"`` (``"0-1"`` for id 0, since a
    Redis stream refuses ``0-0``). Equal deltas from several writers get equal ids.

    Args:
        delta: a delta with a ``last_seq``.

    Returns:
        The id.

    Raises:
        InvalidEvent: the delta has no ``last_seq`` or a negative one.
    """
    last = delta.last_seq
    if last is None or last < 0:
        raise InvalidEvent(f"a journaled delta needs a non-negative last_seq, not {last}", symbol=delta.symbol)
    return f"{last}-0" if last else "0-1"


def journal_seq_of(entry_id: str | bytes) -> int:
    """The ``last_seq`` an entry id was derived from (the inverse of :func:`journal_entry_id`).

    >>> journal_seq_of(b"42-0"), journal_seq_of("0-1")
    (42, 0)
    """
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def journal_min_seq(top_seq: int, window: int) -> int:
    """The oldest ``last_seq`` kept when a journal whose newest entry is ``top_seq`` is
    trimmed to ``window`` ids (entries below it go).

    >>> journal_min_seq(1000, 100)
    901
    """
    return max(0, top_seq - window + 1)


def check_journal_range(entries: Iterable[BookDelta], *, model: SequenceModel, from_seq: int,
                        to_seq: int | None) -> list[BookDelta] | None:
    """The deltas of ``entries`` that provably close ``from_seq..to_seq``, by the venue's rule.

    Args:
        entries: what the journal holds from about ``from_seq`` on, oldest first (duplicates
            and overlaps allowed: they are dropped as the session would drop them).
        model: the venue's sequence model.
        from_seq: the first id missed (the book's last applied id + 1).
        to_seq: the last id missed (``None``: up to whatever the journal holds).

    Returns:
        The chaining deltas, oldest first, the first chaining to ``from_seq - 1`` and the last
        reaching ``to_seq``; ``None`` when they do not (a hole, a trimmed start, too short,
        nothing held, or a venue without chaining ids).

    >>> d = lambda a, b: BookDelta(symbol="X", bids=[], asks=[], first_seq=a, last_seq=b)
    >>> m = SequenceModel.CONTIGUOUS_RANGE
    >>> [x.last_seq for x in check_journal_range([d(5, 6), d(7, 9), d(10, 12)], model=m, from_seq=7, to_seq=11)]
    [9, 12]
    >>> check_journal_range([d(5, 6), d(9, 12)], model=m, from_seq=7, to_seq=11) is None   # hole 7..8
    True
    """
    if not journaled(model):
        return None
    seq = Sequencer(model)
    seq.reset(from_seq - 1)
    out: list[BookDelta] = []
    for d in entries:
        if to_seq is not None and out and seq.local is not None and seq.local >= to_seq:
            break
        verdict = seq.check(d.first_seq, d.last_seq, d.prev_seq)
        if verdict is SeqVerdict.APPLY:
            out.append(d)
            seq.advance(d.first_seq, d.last_seq)
        elif verdict is SeqVerdict.GAP:
            return None
        # STALE / DUPLICATE: older than what we hold already; skipped like the session would
    if not out:
        return None
    if to_seq is not None and (seq.local is None or seq.local < to_seq):
        return None
    return out


def entries_from(deltas: Sequence[BookDelta], from_seq: int) -> list[BookDelta]:
    """The deltas that may matter for a replay from ``from_seq`` (``last_seq >= from_seq``)."""
    return [d for d in deltas if d.last_seq is not None and d.last_seq >= from_seq]
