"""A naive reference book for differential tests: one ``sortedcontainers.SortedDict`` per side,
written for obviousness, not speed (compare an ``L2Book`` with it after every step)."""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedDict

from ..types import Level

__all__ = ["SortedReferenceBook"]


class SortedReferenceBook:
    """``apply("snapshot" | "delta", bids, asks)``; size 0 deletes."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()

    def apply(self, kind: str, bids: Iterable[Level], asks: Iterable[Level]) -> None:
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
