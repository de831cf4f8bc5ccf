"""A naive reference book for differential tests: one ``sortedcontainers.SortedDict`` per side,
written for obviousness, not speed (compare an ``L2Book`` with it after every step).

It states :class:`~bookkeeper.book.L2Book`'s rules the plain way: size ``0`` deletes, in a delta
and in a snapshot alike, so a price listed twice takes its *later* entry (``[(100.0, 1.0),
(100.0, 0.0)]`` leaves no level at 100); a level is valid when ``0 < price < inf`` and
``0 <= size < inf``, and an input with any invalid level is rejected whole (``IntegrityError``,
nothing changed). L2Book's poisoning (refusing deltas after a rejection) is not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sortedcontainers import SortedDict

from ..errors import IntegrityError
from ..types import Level

__all__ = ["SortedReferenceBook"]


class SortedReferenceBook:
    """``apply("snapshot" | "delta", bids, asks)``; size 0 deletes."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()

    def apply(self, kind: str, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Apply a snapshot (replace) or a delta.

        Raises:
            IntegrityError: a price is not finite and > 0 or a size is not finite and >= 0
                (nothing is changed).
        """
        bids, asks = list(bids), list(asks)
        for p, s in bids + asks:
            if not (p > 0 and math.isfinite(p) and s >= 0 and math.isfinite(s)):
                raise IntegrityError(f"bad level {p!r} x {s!r}")
        if kind == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s == 0:
                    side.pop(p, None)
                else:
                    side[p] = s

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """Best ``n`` levels per side, best first."""
        return list(reversed(self.bids.items()))[:n], list(self.asks.items())[:n]
