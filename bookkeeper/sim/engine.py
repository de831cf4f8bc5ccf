"""Ground-truth market engine for the simulator.

Theory of operation: every symbol has one L2 book on an integer tick grid (prices in units of
``10**-price_decimals``, sizes in units of ``10**-qty_decimals``), so the truth is exact and
each venue formats the same integers its own way (Binance pads to 8 decimals, OKX trims, Kraken
pads to the pair precision). One engine *update id* (``seq``) is one small change set (1-3
levels); the server's push loop asks for a batch of updates per interval, whose size follows
a seeded regime chain (quiet / normal / burst), and each venue frames the batch its own way.

Per-symbol randomness comes from ``random.Random(f"{seed}:{symbol}")`` so a symbol's stream
does not depend on which other symbols are simulated. For every seq the engine keeps the
*inverse* change set in a bounded deque, so ``book_at(symbol, seq)`` rolls back from the
current book instead of storing thousands of full copies.

Invariants (checked by ``check_integrity`` in tests): sizes > 0, the book never crosses, each
side keeps at least ``min_levels`` levels, seqs are gapless per symbol.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sortedcontainers import SortedDict

from bookkeeper.types import Side

__all__ = [
    "SymbolSpec",
    "ChangeSet",
    "MarketEngine",
    "KRAKEN_EPOCH",
    "fixed",
    "trim",
    "kraken_timestamp",
    "seq_from_timestamp",
]

#: Kraken v2 frames carry no ids, so the simulator encodes the engine seq in the frame's
#: ``timestamp``: ``KRAKEN_EPOCH + seq`` microseconds.
KRAKEN_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolSpec:
    """One simulated instrument as its venue spells it.

    Attributes:
        symbol: wire symbol (``BTCUSDT``, ``BTC-USDT``, ``BTC/USD``).
        price_decimals: price precision; the tick is ``tick_units * 10**-price_decimals``.
        qty_decimals: size precision; the lot is ``lot_units * 10**-qty_decimals``.
        mid_price: initial mid as a decimal string.
        typical_qty: median level size as a decimal string.
        depth: target number of levels per side.
    """

    symbol: str
    price_decimals: int
    qty_decimals: int
    mid_price: str
    typical_qty: str
    tick_units: int = 1
    lot_units: int = 1
    depth: int = 100

    def price_float(self, units: int) -> float:
        """Exact-as-possible float of a price in units (int true division rounds correctly)."""
        return units / 10**self.price_decimals

    def qty_float(self, units: int) -> float:
        return units / 10**self.qty_decimals

    def price_str(self, units: int) -> str:
        """Price at the pair precision, e.g. ``"61837.6"``."""
        return fixed(units, self.price_decimals)

    def qty_str(self, units: int) -> str:
        return fixed(units, self.qty_decimals)


def fixed(units: int, decimals: int) -> str:
    """Format integer ``units`` of ``10**-decimals`` with exactly ``decimals`` places.

    >>> fixed(6183763, 2), fixed(100, 8), fixed(5, 0)
    ('61837.63', '0.00000100', '5')
    """
    sign = "-" if units < 0 else ""
    digits = str(abs(units))
    if decimals == 0:
        return sign + digits
    digits = digits.rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def trim(text: str) -> str:
    """Drop trailing fractional zeros the way OKX prints numbers.

    >>> trim("61837.60"), trim("0.00100000"), trim("3366.0")
    ('61837.6', '0.001', '3366')
    """
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def kraken_timestamp(seq: int) -> str:
    """RFC 3339 timestamp (µs precision, ``Z``) that encodes engine ``seq``."""
    ts = KRAKEN_EPOCH + timedelta(microseconds=seq)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seq_from_timestamp(timestamp: str) -> int:
    """Inverse of :func:`kraken_timestamp`.

    >>> seq_from_timestamp(kraken_timestamp(1234567))
    1234567
    """
    ts = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    delta = ts - KRAKEN_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """The level changes of one engine update id.

    ``changes`` holds ``(side, price_units, qty_units)``; ``qty_units == 0`` deletes.
    """

    symbol: str
    seq: int
    changes: tuple[tuple[Side, int, int], ...]


@dataclass(slots=True)
class _SymbolState:
    spec: SymbolSpec
    rng: random.Random
    bids: SortedDict  # price_units -> qty_units
    asks: SortedDict
    seq: int
    history: deque[tuple[int, tuple[tuple[Side, int, int], ...]]]  # (seq, inverse changes)
    regime: int = 1
    mu: float = 0.0
    changes: list[tuple[Side, int, int]] = field(default_factory=list)
    inverse: list[tuple[Side, int, int]] = field(default_factory=list)


# Regime chain: (mean updates per interval, probability of staying in the regime).
_REGIMES: tuple[tuple[float, float], ...] = ((0.6, 0.9), (4.0, 0.85), (25.0, 0.6))


class MarketEngine:
    """Seeded ground-truth L2 books with gapless per-symbol sequence ids.

    Args:
        seed: the only source of randomness; equal seeds give equal streams.
        symbols: the instruments to simulate (symbols must be distinct).
        history: how many past seqs ``book_at`` can roll back to.
        min_levels: a side never shrinks below this many levels.

    Raises:
        ValueError: duplicate symbols.
    """

    __slots__ = ("_seed", "_states", "_history")

    def __init__(self, seed: int, symbols: Iterable[SymbolSpec], *, history: int = 10_000) -> None:
        self._seed = seed
        self._history = history
        self._states: dict[str, _SymbolState] = {}
        for spec in symbols:
            if spec.symbol in self._states:
                raise ValueError(f"duplicate symbol {spec.symbol!r}")
            self._states[spec.symbol] = self._initial_state(spec)

    # -- construction -------------------------------------------------------------------

    def _initial_state(self, spec: SymbolSpec) -> _SymbolState:
        rng = random.Random(f"{self._seed}:{spec.symbol}")
        mid = _to_units(spec.mid_price, spec.price_decimals)
        mid -= mid % spec.tick_units
        typical = max(_to_units(spec.typical_qty, spec.qty_decimals), spec.lot_units)
        state = _SymbolState(
            spec=spec,
            rng=rng,
            bids=SortedDict(),
            asks=SortedDict(),
            seq=1_000_000 + rng.randrange(1_000_000),
            history=deque(maxlen=self._history),
            mu=math.log(typical),
        )
        tick = spec.tick_units
        bid, ask = mid - tick, mid + tick
        for _ in range(spec.depth):
            state.bids[bid] = self._size(state)
            state.asks[ask] = self._size(state)
            bid -= tick * rng.randint(1, 3)
            ask += tick * rng.randint(1, 3)
        return state

    def _size(self, st: _SymbolState) -> int:
        lot = st.spec.lot_units
        units = int(math.exp(st.rng.gauss(st.mu, 1.2)))
        return max(lot, units - units % lot)

    # -- observers ----------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._states)

    def spec(self, symbol: str) -> SymbolSpec:
        """The :class:`SymbolSpec` of ``symbol`` (``KeyError`` if unknown)."""
        return self._states[symbol].spec

    def seq(self, symbol: str) -> int:
        """The current (last generated) update id of ``symbol``."""
        return self._states[symbol].seq

    def oldest_seq(self, symbol: str) -> int:
        """The oldest seq ``book_at`` can still reconstruct."""
        st = self._states[symbol]
        return st.history[0][0] - 1 if st.history else st.seq

    def levels(self, symbol: str, side: Side, n: int | None = None) -> list[tuple[int, int]]:
        """Current ``(price_units, qty_units)`` of one side, best first, at most ``n``."""
        st = self._states[symbol]
        return _best_first(st.bids if side is Side.BID else st.asks, side, n)

    def book(self, symbol: str, depth: int | None = None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Current ``(bids, asks)`` as float pairs, best first."""
        return self._floats(symbol, self.levels(symbol, Side.BID, depth), self.levels(symbol, Side.ASK, depth))

    def book_at(
        self, symbol: str, seq: int, depth: int | None = None
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The book right after update ``seq`` was applied, as float pairs, best first.

        Args:
            symbol: the wire symbol.
            seq: any id in ``oldest_seq(symbol) .. seq(symbol)``.
            depth: keep only the top ``depth`` levels per side (Kraken clients hold only the
                subscribed depth).

        Raises:
            ValueError: ``seq`` is in the future or older than the kept history.
        """
        bids, asks = self.units_at(symbol, seq)
        return self._floats(
            symbol, _best_first(bids, Side.BID, depth), _best_first(asks, Side.ASK, depth)
        )

    def units_at(self, symbol: str, seq: int) -> tuple[SortedDict, SortedDict]:
        """``(bids, asks)`` as ``SortedDict(price_units -> qty_units)`` right after ``seq``."""
        st = self._states[symbol]
        if seq > st.seq or seq < self.oldest_seq(symbol):
            raise ValueError(
                f"{symbol}: seq {seq} outside kept history {self.oldest_seq(symbol)}..{st.seq}"
            )
        bids, asks = SortedDict(st.bids), SortedDict(st.asks)
        for hseq, inverse in reversed(st.history):
            if hseq <= seq:
                break
            for side, price, qty in inverse:
                book = bids if side is Side.BID else asks
                if qty == 0:
                    book.pop(price, None)
                else:
                    book[price] = qty
        return bids, asks

    def _floats(
        self, symbol: str, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]
    ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        spec = self._states[symbol].spec
        pf, qf = 10**spec.price_decimals, 10**spec.qty_decimals
        return [(p / pf, q / qf) for p, q in bids], [(p / pf, q / qf) for p, q in asks]

    def check_integrity(self, symbol: str) -> None:
        """Raise ``AssertionError`` if the current book breaks an engine invariant."""
        st = self._states[symbol]
        assert st.bids and st.asks, f"{symbol}: empty side"
        assert st.bids.peekitem(-1)[0] < st.asks.peekitem(0)[0], f"{symbol}: crossed at {st.seq}"
        assert all(q > 0 for q in st.bids.values()) and all(q > 0 for q in st.asks.values())

    # -- generation ---------------------------------------------------------------------

    def advance(self, symbol: str) -> list[ChangeSet]:
        """Generate one push interval's worth of updates for ``symbol`` (maybe none).

        The batch size follows the symbol's seeded regime chain, so bursts and quiet periods
        alternate deterministically for a given seed.
        """
        st = self._states[symbol]
        mean, stay = _REGIMES[st.regime]
        if st.rng.random() > stay:
            st.regime = st.rng.choice([r for r in range(len(_REGIMES)) if r != st.regime])
        count = _poisson(st.rng, mean)
        return [self.step(symbol) for _ in range(count)]

    def step(self, symbol: str) -> ChangeSet:
        """Generate exactly one update id for ``symbol`` and return its change set."""
        st = self._states[symbol]
        st.changes = []
        st.inverse = []
        rng = st.rng
        side = Side.BID if rng.random() < 0.5 else Side.ASK
        book = st.bids if side is Side.BID else st.asks
        roll = rng.random()
        if roll < 0.5:
            price = self._near_top(st, side)
            self._set(st, side, price, self._size(st))
        elif roll < 0.78:
            self._insert(st, side)
        else:
            if len(book) > st.spec.depth // 2:
                self._set(st, side, self._near_top(st, side), 0)
            else:
                self._insert(st, side)
        # Keep the depth near its target: refill or trim the tail (deep levels change too,
        # as they do on real venues).
        if len(book) < st.spec.depth:
            worst = book.peekitem(0)[0] if side is Side.BID else book.peekitem(-1)[0]
            step = st.spec.tick_units * rng.randint(1, 3)
            self._set(st, side, worst - step if side is Side.BID else worst + step, self._size(st))
        elif len(book) > st.spec.depth + st.spec.depth // 5:
            worst = book.peekitem(0)[0] if side is Side.BID else book.peekitem(-1)[0]
            self._set(st, side, worst, 0)
        st.seq += 1
        inverse = tuple(reversed(st.inverse))
        st.history.append((st.seq, inverse))
        return ChangeSet(symbol, st.seq, tuple(st.changes))

    def _near_top(self, st: _SymbolState, side: Side) -> int:
        book = st.bids if side is Side.BID else st.asks
        idx = min(int(st.rng.expovariate(1 / 3.0)), len(book) - 1)
        return book.peekitem(-1 - idx)[0] if side is Side.BID else book.peekitem(idx)[0]

    def _insert(self, st: _SymbolState, side: Side) -> None:
        tick = st.spec.tick_units
        best_bid, best_ask = st.bids.peekitem(-1)[0], st.asks.peekitem(0)[0]
        spread_ticks = (best_ask - best_bid) // tick
        rng = st.rng
        if spread_ticks > 1 and rng.random() < 0.35:
            # Improve the top inside the spread; never reach the other side (no crossing).
            k = rng.randint(1, spread_ticks - 1)
            price = best_bid + k * tick if side is Side.BID else best_ask - k * tick
        else:
            offset = int(rng.expovariate(1 / 6.0)) * tick
            price = best_bid - offset if side is Side.BID else best_ask + offset
        self._set(st, side, price, self._size(st))

    def _set(self, st: _SymbolState, side: Side, price: int, qty: int) -> None:
        book = st.bids if side is Side.BID else st.asks
        old = book.get(price, 0)
        if qty == old:
            qty = old + st.spec.lot_units  # always a real change
        if qty == 0:
            if old == 0:
                return
            del book[price]
        else:
            book[price] = qty
        st.changes.append((side, price, qty))
        st.inverse.append((side, price, old))


def _best_first(book: SortedDict, side: Side, n: int | None) -> list[tuple[int, int]]:
    items = book.items()
    if side is Side.BID:
        it = reversed(items)
    else:
        it = iter(items)
    out: list[tuple[int, int]] = []
    for item in it:
        if n is not None and len(out) >= n:
            break
        out.append(item)
    return out


def _to_units(text: str, decimals: int) -> int:
    whole, _, frac = text.partition(".")
    frac = (frac + "0" * decimals)[:decimals]
    return int(whole) * 10**decimals + (int(frac) if frac else 0)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    limit = math.exp(-mean)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
