"""Deprecated alias of :mod:`bookkeeper.sim` (the simulator moved there; kept importable for
one release).

``import bookkeeper.testing.sim`` and ``from bookkeeper.testing.sim.exchange import ...`` keep
working: every module of :mod:`bookkeeper.sim` is registered under this name too, so both names
refer to the *same* module objects (one ``SimExchange`` class, one ``FaultKind`` enum).
"""

from __future__ import annotations

import importlib
import sys

import bookkeeper.sim as _sim
from bookkeeper.sim import *  # noqa: F403  (the alias re-exports the whole public API)
from bookkeeper.sim import __all__  # noqa: F401

_DIALECT_MODULES = {target.split(":")[0] for target in _sim.DIALECTS.values()}
for _module in ("config", "engine", "exchange", "faults", "server", "venues", *sorted(_DIALECT_MODULES)):
    _module = _module.removeprefix(f"{_sim.__name__}.")
    sys.modules[f"{__name__}.{_module}"] = importlib.import_module(f"{_sim.__name__}.{_module}")
del _module
