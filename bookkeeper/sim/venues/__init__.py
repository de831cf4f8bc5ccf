"""The simulator's venue dialects: one registry, the only list of venues the simulator speaks.

Each dialect is a :class:`~bookkeeper.sim.server.VenueServer` subclass in a module of this
package. The CLI's choices, the chaos schedule and ``SimExchange`` all read :data:`DIALECTS`,
so adding a dialect is one module plus one entry here. Dialects are imported lazily: a
dialect module imports ``server`` (never ``exchange``), so there is no import cycle.

>>> sorted(DIALECTS)
['binance', 'binance_usdm', 'bybit', 'bybit_spot', 'coinbase', 'kraken', 'okx']
>>> get_dialect("okx").venue
'okx'
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import SymbolSpec
    from ..server import VenueServer

__all__ = ["DEFAULT_SYMBOLS", "DEMO_VENUES", "DIALECTS", "get_dialect"]

#: registry name (the same name as the venue's adapter) -> "module:class"
DIALECTS: Mapping[str, str] = MappingProxyType({
    "binance": "bookkeeper.sim.venues.binance:BinanceServer",
    "okx": "bookkeeper.sim.venues.okx:OkxServer",
    "kraken": "bookkeeper.sim.venues.kraken:KrakenServer",
    "binance_usdm": "bookkeeper.sim.venues.binance_usdm:BinanceUsdmServer",
    "bybit": "bookkeeper.sim.venues.bybit:BybitServer",
    "coinbase": "bookkeeper.sim.venues.coinbase:CoinbaseServer",
    "bybit_spot": "bookkeeper.sim.venues.bybit_spot:BybitSpotServer",
})


#: what ``bookkeeper demo`` runs when no ``--venues`` is given: the venues of its first
#: release, in order (its seeded schedule, a public result, depends on them); newer dialects
#: join with ``--venues``
DEMO_VENUES: tuple[str, ...] = ("binance", "okx", "kraken")

def get_dialect(venue: str) -> type[VenueServer]:
    """The server class that speaks ``venue``'s wire protocol.

    Raises:
        ValueError: the simulator has no dialect for ``venue`` (the message lists those it has).
    """
    target = DIALECTS.get(venue)
    if target is None:
        raise ValueError(f"the simulator has no dialect for {venue!r}; it speaks {', '.join(DIALECTS)}")
    module, cls = target.split(":")
    server: type[VenueServer] = getattr(importlib.import_module(module), cls)
    return server


class _DefaultSymbols(Mapping[str, "tuple[SymbolSpec, ...]"]):
    """venue -> the dialect's ``default_symbols`` (read lazily: importing the registry imports
    no dialect)."""

    def __getitem__(self, venue: str) -> tuple[SymbolSpec, ...]:
        if venue not in DIALECTS:
            raise KeyError(venue)
        return get_dialect(venue).default_symbols

    def __iter__(self) -> Iterator[str]:
        return iter(DIALECTS)

    def __len__(self) -> int:
        return len(DIALECTS)


#: venue -> its default simulated instruments (two each)
DEFAULT_SYMBOLS: Mapping[str, tuple[SymbolSpec, ...]] = _DefaultSymbols()
