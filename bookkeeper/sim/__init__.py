"""Local exchange simulator: real sockets on 127.0.0.1, real venue wire formats, seeded truth.

>>> from bookkeeper.sim import SimExchange, FaultPlan, FaultKind  # doctest: +SKIP
>>> async with SimExchange(venues=("binance",), seed=1) as sim:          # doctest: +SKIP
...     ex = ccxt.async_support.binance(sim.ccxt_config("binance"))
...     await ex.load_markets()

The simulator never imports ``bookkeeper.adapters``: it is an independent implementation of
the venues' wire formats (exchange-protocols.md §3 Binance spot, §5 OKX, §7 Kraken v2), so
running our adapters against it is a real test of them.
"""

from .config import SimConfig
from .engine import (
    ChangeSet,
    MarketEngine,
    SymbolSpec,
    kraken_timestamp,
    seq_from_timestamp,
)
from .exchange import VENUES, SimExchange, serve
from .account import SimAccount, SimFill, SimOrder
from .faults import (
    DEMO_KINDS,
    FAULTS,
    PRIVATE_KINDS,
    PUBLIC_KINDS,
    FaultInfo,
    FaultKind,
    FaultPlan,
    FaultScope,
    FaultSpec,
)
from .venues import DEFAULT_SYMBOLS, DEMO_VENUES, DIALECTS, get_dialect

__all__ = [
    "ChangeSet",
    "DEFAULT_SYMBOLS",
    "DEMO_KINDS",
    "DEMO_VENUES",
    "DIALECTS",
    "FAULTS",
    "FaultInfo",
    "FaultKind",
    "FaultPlan",
    "FaultScope",
    "FaultSpec",
    "MarketEngine",
    "PRIVATE_KINDS",
    "PUBLIC_KINDS",
    "SimAccount",
    "SimConfig",
    "SimExchange",
    "SimFill",
    "SimOrder",
    "SymbolSpec",
    "VENUES",
    "get_dialect",
    "kraken_timestamp",
    "seq_from_timestamp",
    "serve",
]
