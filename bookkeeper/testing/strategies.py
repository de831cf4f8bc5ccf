"""Hypothesis strategies for bookkeeper's core: tick-grid prices, sizes, levels, snapshots
and deltas.

Prices live on a tick grid (``k * tick``), built through :class:`~decimal.Decimal` from the
same text every time, so a price generated twice is the *same* float, exactly as a venue's
wire string always parses to the same float. Sizes are multiples of a lot. ``*_raw``
strings, when asked for, are the canonical decimal text of each value, as a venue sends it.

>>> from hypothesis import find
>>> find(prices(tick="0.5", min_ticks=3, max_ticks=10), lambda p: True)
1.5
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.types import Level, RawLevel

__all__ = [
    "tick_price",
    "prices",
    "sizes",
    "levels",
    "book_sides",
    "snapshots",
    "deltas",
    "book_ops",
    "raw_of",
]


def tick_price(k: int, tick: str = "0.5") -> float:
    """The price ``k`` ticks above zero, as a venue's string would parse."""
    return float(Decimal(k) * Decimal(tick))


def raw_of(value: float) -> str:
    """Canonical wire text of a grid value (``100.0`` -> ``"100"``, ``0.5`` -> ``"0.5"``)."""
    text = format(Decimal(repr(value)).normalize(), "f")
    return text


def prices(*, tick: str = "0.5", min_ticks: int = 1, max_ticks: int = 400) -> st.SearchStrategy[float]:
    """Prices on the tick grid, ``min_ticks * tick .. max_ticks * tick``."""
    return st.integers(min_ticks, max_ticks).map(lambda k: tick_price(k, tick))


def sizes(*, lot: str = "0.001", max_lots: int = 100_000, allow_zero: bool = False) -> st.SearchStrategy[float]:
    """Sizes that are whole multiples of ``lot``; ``0`` (delete) only when ``allow_zero``."""
    return st.integers(0 if allow_zero else 1, max_lots).map(lambda k: float(Decimal(k) * Decimal(lot)))


def levels(
    price_strategy: st.SearchStrategy[float] | None = None,
    *,
    allow_zero: bool = False,
    max_size: int = 20,
) -> st.SearchStrategy[list[Level]]:
    """A list of ``(price, size)`` with distinct prices, in arbitrary order."""
    ps = price_strategy if price_strategy is not None else prices()
    return st.lists(st.tuples(ps, sizes(allow_zero=allow_zero)), max_size=max_size, unique_by=lambda lv: lv[0])


def _raw(lv: list[Level]) -> list[RawLevel]:
    return [(raw_of(p), raw_of(s)) for p, s in lv]


@st.composite
def book_sides(
    draw: st.DrawFn,
    *,
    tick: str = "0.5",
    mid_ticks: int = 200,
    spread_ticks: int = 100,
    max_levels: int = 20,
    allow_zero: bool = False,
    crossable: bool = False,
) -> tuple[list[Level], list[Level]]:
    """``(bids, asks)``. Unless ``crossable``, bids sit at or below ``mid - 1`` tick and asks
    at or above ``mid + 1`` tick, so the book can never cross."""
    if crossable:
        bp = prices(tick=tick, min_ticks=max(1, mid_ticks - spread_ticks), max_ticks=mid_ticks + spread_ticks)
        ap = bp
    else:
        bp = prices(tick=tick, min_ticks=max(1, mid_ticks - spread_ticks), max_ticks=mid_ticks - 1)
        ap = prices(tick=tick, min_ticks=mid_ticks + 1, max_ticks=mid_ticks + spread_ticks)
    bids = draw(levels(bp, allow_zero=allow_zero, max_size=max_levels))
    asks = draw(levels(ap, allow_zero=allow_zero, max_size=max_levels))
    return bids, asks


@st.composite
def snapshots(
    draw: st.DrawFn,
    *,
    symbol: str = "BTCUSDT",
    seq: int | None | st.SearchStrategy[int | None] = None,
    with_raw: bool = False,
    source: SnapshotSource = SnapshotSource.WS,
    crossable: bool = False,
    max_levels: int = 20,
) -> BookSnapshot:
    """A :class:`BookSnapshot` (uncrossed unless ``crossable``)."""
    bids, asks = draw(book_sides(crossable=crossable, max_levels=max_levels))
    s = draw(seq) if isinstance(seq, st.SearchStrategy) else seq
    return BookSnapshot(
        symbol=symbol,
        bids=bids,
        asks=asks,
        seq=s,
        bids_raw=_raw(bids) if with_raw else None,
        asks_raw=_raw(asks) if with_raw else None,
        source=source,
    )


@st.composite
def deltas(
    draw: st.DrawFn,
    *,
    symbol: str = "BTCUSDT",
    first_seq: int | None = None,
    span: st.SearchStrategy[int] | None = None,
    prev_seq: int | None = None,
    with_raw: bool = False,
    crossable: bool = True,
    max_levels: int = 8,
) -> BookDelta:
    """A :class:`BookDelta` whose sizes may be ``0`` (deletes). With ``first_seq`` it covers
    ``first_seq .. first_seq + span - 1``."""
    bids, asks = draw(book_sides(allow_zero=True, crossable=crossable, max_levels=max_levels))
    last = None
    if first_seq is not None:
        last = first_seq + draw(span if span is not None else st.integers(1, 5)) - 1
    return BookDelta(
        symbol=symbol,
        bids=bids,
        asks=asks,
        first_seq=first_seq,
        last_seq=last,
        prev_seq=prev_seq,
        bids_raw=_raw(bids) if with_raw else None,
        asks_raw=_raw(asks) if with_raw else None,
    )


def book_ops(*, max_ops: int = 30) -> st.SearchStrategy[list[tuple[str, list[Level], list[Level]]]]:
    """A sequence of ``("snapshot" | "delta", bids, asks)`` operations for an ``L2Book``;
    delta sizes may be ``0``. Prices are drawn from a narrow grid so updates and deletes
    hit existing levels often."""
    narrow = prices(min_ticks=180, max_ticks=220)
    delta = st.tuples(st.just("delta"), levels(narrow, allow_zero=True, max_size=8), levels(narrow, allow_zero=True, max_size=8))
    snap = st.tuples(st.just("snapshot"), levels(narrow, max_size=15), levels(narrow, max_size=15))
    return st.lists(st.one_of(delta, delta, delta, snap), max_size=max_ops)
