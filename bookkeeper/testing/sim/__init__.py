"""Local exchange simulator: real sockets on 127.0.0.1, real venue wire formats, seeded truth.

>>> from bookkeeper.testing.sim import SimExchange, FaultPlan, FaultKind  # doctest: +SKIP
>>> async with SimExchange(venues=("binance",), seed=1) as sim:          # doctest: +SKIP
...     ex = ccxt.async_support.binance(sim.ccxt_config("binance"))
...     await ex.load_markets()

The simulator never imports ``bookkeeper.adapters``: it is an independent implementation of
the venues' wire formats (exchange-protocols.md §3 Binance spot, §5 OKX, §7 Kraken v2), so
running our adapters against it is a real test of them.
"""

from .engine import (
    DEFAULT_SYMBOLS,
    ChangeSet,
    MarketEngine,
    SymbolSpec,
    kraken_timestamp,
    seq_from_timestamp,
)
from .exchange import VENUES, SimConfig, SimExchange, serve
from .faults import FaultKind, FaultPlan, FaultSpec

__all__ = [
    "ChangeSet",
    "DEFAULT_SYMBOLS",
    "FaultKind",
    "FaultPlan",
    "FaultSpec",
    "MarketEngine",
    "SimConfig",
    "SimExchange",
    "SymbolSpec",
    "VENUES",
    "kraken_timestamp",
    "seq_from_timestamp",
    "serve",
]
