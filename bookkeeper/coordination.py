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
- **Rolling a shared snapshot forward.** :func:`roll_forward` applies journaled deltas that
  provably chain from a published snapshot's id to it: the venue's REST book at ``S`` plus
  every change ``S+1..T`` *is* the book at ``T`` (the splice rule a session applies to its
  own buffer). An instance that asks for a snapshot after a peer published this incident's
  one gets that one rolled forward to the journal's top instead of a REST request of its own,
  so an incident costs the fleet one REST snapshot per symbol however late each instance
  reconnects (:class:`~bookkeeper.io.coord.FleetLink`).
- **Which A/B line is served.** :class:`LineArbiter` picks, per symbol, which of several
  redundant connections' books a reader sees (see its docstring for the rule and why).

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

from .book import L2Book
from .capabilities import ExchangeCapabilities, RateLimit, SequenceModel
from .errors import InvalidEvent
from .events import BookDelta, BookSnapshot
from .sequencer import SeqVerdict, Sequencer

__all__ = [
    "DEFAULT_BURST_FRACTION",
    "Lease",
    "LineArbiter",
    "LineChoice",
    "LockTable",
    "TokenBucket",
    "check_journal_range",
    "journal_entry_id",
    "journal_min_seq",
    "journal_seq_of",
    "journaled",
    "roll_forward",
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


def roll_forward(snap: BookSnapshot, deltas: Sequence[BookDelta]) -> BookSnapshot:
    """``snap`` with ``deltas`` applied: the book at the last delta's id.

    Args:
        snap: a snapshot with a sequence id (a venue's REST book, published by a peer).
        deltas: deltas that chain from ``snap.seq`` (:func:`check_journal_range` proved it),
            oldest first.

    Returns:
        A snapshot like ``snap`` (same source and depth) at ``deltas[-1].last_seq``; ``snap``
        itself when ``deltas`` is empty.

    Raises:
        InvalidEvent: ``snap`` has no sequence id, or the first delta does not reach past it.
        IntegrityError: a level is impossible (the book refuses it, as a session's would).

    >>> s = BookSnapshot(symbol="X", bids=[(99.0, 1.0)], asks=[(101.0, 1.0)], seq=4)
    >>> d = BookDelta(symbol="X", bids=[(99.0, 0.0), (98.0, 2.0)], asks=[], first_seq=5, last_seq=6)
    >>> r = roll_forward(s, [d])
    >>> r.seq, r.bids, r.asks
    (6, [(98.0, 2.0)], [(101.0, 1.0)])
    """
    if not deltas:
        return snap
    if snap.seq is None or deltas[0].last_seq is None or deltas[0].last_seq <= snap.seq:
        raise InvalidEvent(f"cannot roll a snapshot at {snap.seq} forward with deltas up to {deltas[0].last_seq}",
                           symbol=snap.symbol)
    raw = snap.bids_raw is not None and snap.asks_raw is not None and all(
        d.bids_raw is not None and d.asks_raw is not None for d in deltas)
    book = L2Book()
    book.apply_snapshot(snap.bids, snap.asks, snap.bids_raw if raw else None, snap.asks_raw if raw else None)
    for d in deltas:
        book.apply_delta(d.bids, d.asks, d.bids_raw if raw else None, d.asks_raw if raw else None)
    bids, asks = book.bids(), book.asks()
    bids_raw = asks_raw = None
    if raw:
        bids_raw, asks_raw = book.top_raw(max(len(bids), len(asks)))
    last = deltas[-1]
    return BookSnapshot(symbol=snap.symbol, bids=bids, asks=asks, seq=last.last_seq, bids_raw=bids_raw,
                        asks_raw=asks_raw, depth=snap.depth, source=snap.source, ts_exchange_ns=last.ts_exchange_ns,
                        ts_recv_ns=last.ts_recv_ns, complete=snap.complete)


# ---------------------------------------------------------------------------------- A/B lines
@dataclass(frozen=True, slots=True, kw_only=True)
class LineChoice:
    """What :meth:`LineArbiter.choose` decided for one symbol.

    Attributes:
        line: the index of the served line, or ``None`` (nothing can be served now).
        failover: the served line changed because the one served before left SYNCED.
        hold: nothing is served although a line is SYNCED: it is behind what was served
            already (serving it would move the reader's book back); it catches up within
            its next frames.
        outage: nothing is served and no line is SYNCED: the reader's book is down.
    """

    line: int | None
    failover: bool = False
    hold: bool = False
    outage: bool = False


class LineArbiter:
    """Which of several redundant connections (A/B lines) of one stream a reader is served.

    Every line has its own book session, kept gap-free by the session's own rules (a line
    that missed ids is not SYNCED until it replayed them from the other line's journal, or
    rebuilt). The arbiter only *selects*, per symbol, and never mixes lines within one read:

    - **Serve the SYNCED line that is furthest ahead** (the highest last sequence id; ties keep
      the line served now, so two healthy lines a frame apart do not flap).
    - **Never move the reader back**: a line is eligible only if its id is at least the
      highest id this symbol was served at (the *mark*). When the served line drops, the
      other is usually at the same id or one frame behind; while it is behind, nothing is
      served (a *hold*, ended by its next frame) rather than an older book.
    - Venues without ids (``None``) have no order between lines: the served line is kept
      while SYNCED, else the first SYNCED one. The served line itself is always eligible (its
      session may accept a venue's id restart; the mark follows it).

    Why selecting rather than one book fed by both lines' deltas: each line's book already
    is a complete, verified book (sequence, checksum and integrity rules are the session's,
    unchanged), so a failover is a pointer switch with no state to rebuild, the fused fast
    path stays untouched on both lines, and a line's failure can never leak a half-applied
    delta into the served book. The cost is a second book per symbol.

    >>> a = LineArbiter()
    >>> a.choose("X", [(True, 10), (True, 9)]).line          # A ahead
    0
    >>> a.choose("X", [(False, 10), (True, 9)])                # A dropped, B a frame behind
    LineChoice(line=None, failover=False, hold=True, outage=False)
    >>> a.choose("X", [(False, 10), (True, 11)])                # B caught up
    LineChoice(line=1, failover=True, hold=False, outage=False)
    >>> a.failovers, a.holds, a.outages
    (1, 1, 0)
    """

    __slots__ = ("_served", "_mark", "_dropped", "failovers", "holds", "outages", "switches")

    def __init__(self) -> None:
        self._served: dict[str, int | None] = {}
        self._mark: dict[str, int] = {}
        #: symbols whose served line left SYNCED and that are not served again yet
        self._dropped: set[str] = set()
        self.failovers = 0  #: served line changed because the served one left SYNCED
        self.holds = 0  #: nothing served while a SYNCED line caught up to the mark
        self.outages = 0  #: nothing served and no line SYNCED, after having been served
        self.switches = 0  #: every change of the served line (failovers and overtakes)

    def served(self, symbol: str) -> int | None:
        """The line served now for ``symbol`` (``None``: none)."""
        return self._served.get(symbol)

    def mark(self, symbol: str) -> int | None:
        """The highest sequence id ``symbol`` was served at."""
        return self._mark.get(symbol)

    def choose(self, symbol: str, lines: Sequence[tuple[bool, int | None]]) -> LineChoice:
        """Decide which line serves ``symbol`` now.

        Args:
            symbol: the instrument.
            lines: per line, ``(is SYNCED, last applied sequence id)``.

        Returns:
            The choice (also kept: :meth:`served`).
        """
        current = self._served.get(symbol)
        mark = self._mark.get(symbol)
        best: int | None = None
        best_seq: int | None = None
        any_synced = False
        for i, (synced, seq) in enumerate(lines):
            if not synced:
                continue
            any_synced = True
            if seq is None:
                if best is None or i == current:
                    best, best_seq = i, None
                continue
            if mark is not None and seq < mark and i != current:
                continue  # the served line itself may restart its ids (its session allowed it)
            if best is None or best_seq is None or seq > best_seq or (seq == best_seq and i == current):
                best, best_seq = i, seq
        if best is None:
            self._served[symbol] = None
            if current is not None:
                self._dropped.add(symbol)
                if any_synced:
                    self.holds += 1
                    return LineChoice(line=None, hold=True)
                self.outages += 1
                return LineChoice(line=None, outage=True)
            return LineChoice(line=None, hold=any_synced and symbol in self._dropped)
        failover = False
        if best != current:
            if current is not None or symbol in self._dropped:
                self.switches += 1
            # a failover: the line served before is gone (left SYNCED), not merely overtaken
            if symbol in self._dropped or (current is not None and not lines[current][0]):
                failover = True
                self.failovers += 1
        self._dropped.discard(symbol)
        self._served[symbol] = best
        if best_seq is not None:
            self._mark[symbol] = best_seq  # >= the mark, unless the served line restarted its ids
        return LineChoice(line=best, failover=failover)
