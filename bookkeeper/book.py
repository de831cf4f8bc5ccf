"""L2Book: one instrument's price levels, both sides always sorted.

Theory of operation
-------------------
Each side is a ``dict`` price -> size (O(1) update of an existing level, which is what most
deltas are) plus a sorted ``list`` of keys kept with the C ``bisect`` functions. Keys are
stored so that the *best* level sits at the *end* of its list (bids ascending; asks as
negated prices ascending): inserts and deletes near the top of the book, where nearly all
activity is, move almost nothing, and the best level is ``keys[-1]``.

Why not ``sortedcontainers.SortedDict``: its ``add``/``remove`` run in Python (about 1 µs
each) while ``bisect.insort`` + ``list.insert`` near the end of the list run in C (well
under 200 ns at 10k levels a side). ``benchmarks/bench_book.py`` measures both side by side;
sortedcontainers stays the reference structure in the property tests.

Optional C accelerator: when ``bookkeeper._speedups`` is built (from ``bookkeeper/_speedups.c``
by ``pip install``; skipped without a compiler) the level loop of :meth:`L2Book.apply_delta` and
the reads ``top``/``top_raw`` run in C over the *same* dicts and key lists, with the same
semantics (tests/speedups/ checks both paths against each other). It is loaded through
:func:`bookkeeper._accel.load`, so ``BOOKKEEPER_PURE_PYTHON=1`` in the environment at import
time forces the pure-Python path (for every C path at once).

A level's exchange strings are kept (``*_raw`` dicts) only for checksum venues, so checksums
are computed from the venue's own text. A size of ``0`` deletes (tested with ``== 0``).

Validation: a level is valid when ``0 < price < inf`` and ``0 <= size < inf`` (so NaN, infinite,
negative and, for prices, zero are impossible input). Every level of a delta or snapshot is
checked *before* anything is changed: a rejected input changes no level, and the book poisons
itself and raises :class:`~bookkeeper.errors.IntegrityError` (refusing further deltas until a
valid snapshot), because a book that skipped an update can no longer be trusted. Within one
snapshot a price listed twice takes its *later* entry, so a later ``0`` deletes it (the rule of
a delta, and of :class:`bookkeeper.testing.reference.SortedReferenceBook`). A crossed book is
*reported* by :meth:`is_crossed`, never silently uncrossed.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from typing import Any

from ._accel import load
from .errors import IntegrityError
from .types import Level, RawLevel

__all__ = ["L2Book"]

#: The C accelerator, or None: not built (no compiler at install time) or switched off.
_sp: Any = load("bookkeeper._speedups")
#: True when the C accelerator is in use (tests may set ``bookkeeper.book._sp = None``).
ACCELERATED = _sp is not None

_INF = float("inf")


def _snapshot_side(levels: Iterable[Level]) -> dict[float, float]:
    """The levels a snapshot of ``levels`` holds: later entries win, size 0 deletes."""
    out: dict[float, float] = {}
    for p, s in levels:
        if s == 0.0:
            out.pop(p, None)
        else:
            out[p] = s
    return out


def _bad_level(side: str, p: object, s: object, where: str) -> str:
    """The poisoning message for a level that failed ``0 < p < inf and 0 <= s < inf``."""
    if not 0.0 < p < _INF:  # type: ignore[operator]
        return f"bad {side} price {p!r} (size {s!r}){where}"
    return f"bad {side} size {s!r} at {p!r}{where}"


class L2Book:
    """A price-level order book.

    >>> book = L2Book()
    >>> book.apply_snapshot([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.5)])
    >>> book.apply_delta([(100.0, 3.0), (98.0, 0.0)], [])
    >>> book.best_bid(), book.best_ask()
    ((100.0, 3.0), (101.0, 1.5))
    >>> book.top(2)
    ([(100.0, 3.0), (99.0, 1.0)], [(101.0, 1.5)])
    """

    __slots__ = ("_bids", "_bkeys", "_asks", "_akeys", "_bids_raw", "_asks_raw", "_poisoned")

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._bkeys: list[float] = []  # ascending: best bid last
        self._asks: dict[float, float] = {}
        self._akeys: list[float] = []  # negated prices ascending: best ask last
        self._bids_raw: dict[float, RawLevel] | None = None
        self._asks_raw: dict[float, RawLevel] | None = None
        self._poisoned: str | None = None

    # ------------------------------------------------------------------ mutation
    def clear(self) -> None:
        """Empty both sides and lift any poisoning."""
        self._bids = {}
        self._bkeys = []
        self._asks = {}
        self._akeys = []
        self._bids_raw = None
        self._asks_raw = None
        self._poisoned = None

    def apply_snapshot(
        self,
        bids: Sequence[Level],
        asks: Sequence[Level],
        bids_raw: Sequence[RawLevel] | None = None,
        asks_raw: Sequence[RawLevel] | None = None,
    ) -> None:
        """Replace the whole book (and lift any poisoning).

        A zero size deletes, as in a delta: a price listed twice takes its later entry, so
        ``[(100.0, 1.0), (100.0, 0.0)]`` leaves no level at 100.

        Raises:
            IntegrityError: a price is not finite and > 0, or a size is not finite and >= 0.
                No level is changed; the book is poisoned until a valid snapshot.
        """
        bsz: dict[float, float] = {}
        asz: dict[float, float] = {}
        braw: dict[float, RawLevel] | None = {} if bids_raw is not None else None
        araw: dict[float, RawLevel] | None = {} if asks_raw is not None else None
        for side, levels, sizes, raw, texts in (("bid", bids, bsz, braw, bids_raw), ("ask", asks, asz, araw, asks_raw)):
            for i, (p, s) in enumerate(levels):
                if not (0.0 < p < _INF and 0.0 <= s < _INF):
                    self._poison(_bad_level(side, p, s, " in snapshot"))
                if s == 0.0:
                    sizes.pop(p, None)
                    if raw is not None:
                        raw.pop(p, None)
                else:
                    sizes[p] = s
                    if raw is not None:
                        raw[p] = texts[i]  # type: ignore[index]
        self._bids = bsz
        self._asks = asz
        self._bkeys = sorted(bsz)
        self._akeys = sorted([-p for p in asz])
        self._bids_raw = braw
        self._asks_raw = araw
        self._poisoned = None

    def apply_delta(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        bids_raw: Sequence[RawLevel] | None = None,
        asks_raw: Sequence[RawLevel] | None = None,
    ) -> None:
        """Apply absolute level sizes; ``0`` deletes (deleting an absent level is a no-op).

        Raises:
            IntegrityError: the book is poisoned, or a price is not finite and > 0, or a size
                is not finite and >= 0. Every level is checked before any is applied: a
                rejected delta changes nothing, and the book is then poisoned (it refuses
                further deltas until :meth:`apply_snapshot`).
        """
        if self._poisoned is not None:
            raise IntegrityError(f"book is poisoned: {self._poisoned}", reason=self._poisoned)
        if bids_raw is not None or asks_raw is not None or self._bids_raw is not None or self._asks_raw is not None:
            # A book that keeps exchange text must keep it in step with every level change.
            self._apply_raw(bids, asks, bids_raw, asks_raw)
            return
        if _sp is not None:
            bad = _sp.apply_levels(self._bids, self._bkeys, bids, self._asks, self._akeys, asks)
            if bad is not None:
                self._poison(_bad_level(bad[0], bad[1], bad[2], ""))
            return
        # Validate every level first (levels are walked twice, so iterators are listed once),
        # then one loop per side with no per-level calls but the C bisect helpers.
        if type(bids) is not list and type(bids) is not tuple:
            bids = list(bids)
        if type(asks) is not list and type(asks) is not tuple:
            asks = list(asks)
        inf = _INF
        for p, s in bids:
            if not (0.0 < p < inf and 0.0 <= s < inf):
                self._poison(_bad_level("bid", p, s, ""))
        for p, s in asks:
            if not (0.0 < p < inf and 0.0 <= s < inf):
                self._poison(_bad_level("ask", p, s, ""))
        sizes = self._bids
        keys = self._bkeys
        for p, s in bids:
            if s > 0.0:
                if sizes.get(p) is None:
                    insort(keys, p)
                sizes[p] = s
            elif s == 0.0:
                if sizes.pop(p, None) is not None:
                    del keys[bisect_left(keys, p)]
            else:  # only a size whose comparisons changed since they were checked
                self._poison(_bad_level("bid", p, s, ""))
        sizes = self._asks
        keys = self._akeys
        for p, s in asks:
            if s > 0.0:
                if sizes.get(p) is None:
                    insort(keys, -p)
                sizes[p] = s
            elif s == 0.0:
                if sizes.pop(p, None) is not None:
                    del keys[bisect_left(keys, -p)]
            else:
                self._poison(_bad_level("ask", p, s, ""))

    def _apply_raw(
        self,
        bids: Iterable[Level],
        asks: Iterable[Level],
        bids_raw: Sequence[RawLevel] | None,
        asks_raw: Sequence[RawLevel] | None,
    ) -> None:
        # The raw dicts are created (a book keeps text from now on) only once the delta is
        # accepted: a rejected delta changes nothing.
        braw: dict[float, RawLevel] = {} if self._bids_raw is None else self._bids_raw
        araw: dict[float, RawLevel] = {} if self._asks_raw is None else self._asks_raw
        if _sp is not None:
            bad = _sp.apply_levels_raw(self._bids, self._bkeys, braw, bids, bids_raw,
                                       self._asks, self._akeys, araw, asks, asks_raw)
            if bad is not None:
                self._poison(_bad_level(bad[0], bad[1], bad[2], ""))
            self._bids_raw = braw
            self._asks_raw = araw
            return
        if type(bids) is not list and type(bids) is not tuple:
            bids = list(bids)
        if type(asks) is not list and type(asks) is not tuple:
            asks = list(asks)
        for side, levels in (("bid", bids), ("ask", asks)):
            for p, s in levels:
                if not (0.0 < p < _INF and 0.0 <= s < _INF):
                    self._poison(_bad_level(side, p, s, ""))
        self._bids_raw = braw
        self._asks_raw = araw
        for side, sizes, keys, raw, levels, texts, sign in (
            ("bid", self._bids, self._bkeys, braw, bids, bids_raw, 1.0),
            ("ask", self._asks, self._akeys, araw, asks, asks_raw, -1.0),
        ):
            for i, (p, s) in enumerate(levels):
                if s > 0.0:
                    if sizes.get(p) is None:
                        insort(keys, sign * p)
                    sizes[p] = s
                    if texts is not None:
                        raw[p] = texts[i]
                    else:
                        raw.pop(p, None)  # the old text no longer describes this level
                elif s == 0.0:
                    if sizes.pop(p, None) is not None:
                        del keys[bisect_left(keys, sign * p)]
                    raw.pop(p, None)
                else:
                    self._poison(_bad_level(side, p, s, ""))

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (for venues that send no deletes for
        levels leaving the subscribed depth, e.g. Kraken)."""
        for sizes, keys, raw in ((self._bids, self._bkeys, self._bids_raw), (self._asks, self._akeys, self._asks_raw)):
            extra = len(keys) - depth
            if extra > 0:
                sign = 1.0 if keys is self._bkeys else -1.0
                for k in keys[:extra]:
                    p = sign * k
                    del sizes[p]
                    if raw is not None:
                        raw.pop(p, None)
                del keys[:extra]

    def _poison(self, reason: str) -> None:
        self._poisoned = reason
        raise IntegrityError(reason, reason=reason)

    # ------------------------------------------------------------------ reads
    @property
    def poisoned(self) -> str | None:
        """Why the book refuses deltas, or ``None``."""
        return self._poisoned

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    @property
    def bid_count(self) -> int:
        return len(self._bids)

    @property
    def ask_count(self) -> int:
        return len(self._asks)

    def best_bid(self) -> Level | None:
        """``(price, size)`` of the best bid, or ``None`` when the side is empty."""
        if not self._bkeys:
            return None
        p = self._bkeys[-1]
        return (p, self._bids[p])

    def best_ask(self) -> Level | None:
        """``(price, size)`` of the best ask, or ``None`` when the side is empty."""
        if not self._akeys:
            return None
        p = -self._akeys[-1]
        return (p, self._asks[p])

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (reported, never silently repaired)."""
        return bool(self._bkeys) and bool(self._akeys) and self._bkeys[-1] >= -self._akeys[-1]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels per side, best first."""
        if _sp is not None and type(n) is int:
            return _sp.top_both(self._bids, self._bkeys, self._asks, self._akeys, n)
        bs = self._bids
        as_ = self._asks
        bk = self._bkeys[: -n - 1 : -1] if n > 0 else []
        ak = self._akeys[: -n - 1 : -1] if n > 0 else []
        return [(p, bs[p]) for p in bk], [(-k, as_[-k]) for k in ak]

    def bids(self) -> list[Level]:
        """All bids, best (highest) first."""
        return self.top(len(self._bkeys))[0]

    def asks(self) -> list[Level]:
        """All asks, best (lowest) first."""
        return self.top(len(self._akeys))[1]

    def top_raw(self, n: int) -> tuple[list[RawLevel], list[RawLevel]]:
        """The exchange's own strings for the best ``n`` levels per side, best first.

        Raises:
            IntegrityError: a level has no stored strings (the venue never sent them).
        """
        braw = self._bids_raw or {}
        araw = self._asks_raw or {}
        try:
            if _sp is not None and type(n) is int and n > 0:
                return _sp.top_raw_side(braw, self._bkeys, n, False), _sp.top_raw_side(araw, self._akeys, n, True)
            bids = [braw[p] for p in self._bkeys[: -n - 1 : -1]]
            asks = [araw[-k] for k in self._akeys[: -n - 1 : -1]]
        except KeyError as exc:
            raise IntegrityError(f"no exchange text for level {exc.args[0]!r}", price=exc.args[0]) from None
        return bids, asks

    def to_numpy(self, n: int) -> Any:
        """Top ``n`` levels as a ``(2, n, 2)`` float64 array ``[side][level][price, size]``,
        padded with NaN (off the hot path; imports numpy lazily).

        >>> b = L2Book(); b.apply_snapshot([(1.0, 2.0)], [(3.0, 4.0)])
        >>> b.to_numpy(2)[1].tolist()
        [[3.0, 4.0], [nan, nan]]
        """
        import numpy as np

        out = np.full((2, n, 2), np.nan)
        bids, asks = self.top(n)
        if bids:
            out[0, : len(bids)] = bids
        if asks:
            out[1, : len(asks)] = asks
        return out

    def apply_frame(self, frame: bytes, fused: Any, symbol: str, model: int, local: int | None) -> object:
        """Hand this book's containers to a venue's fused decode + apply (the C accelerator's,
        or its pure-Python twin; see ``BookSession.apply_frame_fast``). Returns what ``fused`` returns — a ``(first, last)``
        tuple when it applied the frame — or ``None`` when this book cannot take the fused path
        (poisoned, or keeping exchange strings for a checksum)."""
        if self._poisoned is not None or self._bids_raw is not None or self._asks_raw is not None:
            return None
        return fused(frame, symbol, model, local, self._bids, self._bkeys, self._asks, self._akeys)

    def equals(self, bids: Iterable[Level], asks: Iterable[Level]) -> bool:
        """True when the book holds exactly the levels a snapshot of ``bids``/``asks`` would
        (order-insensitive; a price listed twice takes its later entry, size 0 deletes)."""
        return _snapshot_side(bids) == self._bids and _snapshot_side(asks) == self._asks

    def check_integrity(self) -> None:
        """Verify every structural invariant; used by tests after every step.

        Raises:
            IntegrityError: with the first violated invariant.
        """
        if self._bkeys != sorted(self._bids) or len(set(self._bkeys)) != len(self._bkeys):
            raise IntegrityError("bid keys out of order or out of step with sizes")
        if self._akeys != sorted(-p for p in self._asks) or len(set(self._akeys)) != len(self._akeys):
            raise IntegrityError("ask keys out of order or out of step with sizes")
        for side, sizes in (("bid", self._bids), ("ask", self._asks)):
            for p, s in sizes.items():
                if not s > 0.0:
                    raise IntegrityError(f"{side} {p} stored with size {s}")
        for raw, sizes in ((self._bids_raw, self._bids), (self._asks_raw, self._asks)):
            if raw is not None and not set(raw) <= set(sizes):
                raise IntegrityError("raw strings kept for levels that are gone")

    def __repr__(self) -> str:
        return f"L2Book(bids={len(self._bids)}, asks={len(self._asks)}, best={self.best_bid()}/{self.best_ask()})"
