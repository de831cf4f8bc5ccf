"""Venue adapters, installed as ``bookkeeper.adapters``.

Each venue package exports one adapter object implementing
:class:`bookkeeper.ports.Adapter`. Look one up by its registry name:

>>> from bookkeeper.adapters import get_adapter, VENUES
>>> get_adapter("binance").capabilities.sequence_model.name
'CONTIGUOUS_RANGE'
"""

from __future__ import annotations

import importlib

from bookkeeper.errors import UsageError
from bookkeeper.ports import AccountAdapter, Adapter

#: registry name -> "module:attribute"
_REGISTRY: dict[str, str] = {
    "binance": "bookkeeper.adapters.binance:BINANCE",
    "binance_usdm": "bookkeeper.adapters.binance:BINANCE_USDM",
    "binance_coinm": "bookkeeper.adapters.binance:BINANCE_COINM",
    "okx": "bookkeeper.adapters.okx:OKX",
    "bitget": "bookkeeper.adapters.bitget:BITGET",
    "kraken": "bookkeeper.adapters.kraken:KRAKEN",
    "kraken_futures": "bookkeeper.adapters.kraken_futures:KRAKEN_FUTURES",
    "deribit": "bookkeeper.adapters.deribit:DERIBIT",
    "kucoin": "bookkeeper.adapters.kucoin:KUCOIN",
    "gateio": "bookkeeper.adapters.gateio:GATEIO",
    "gateio_futures": "bookkeeper.adapters.gateio:GATEIO_FUTURES",
    "bybit": "bookkeeper.adapters.bybit:BYBIT",
    "bybit_spot": "bookkeeper.adapters.bybit.spot:BYBIT_SPOT",
    "coinbase": "bookkeeper.adapters.coinbase:COINBASE",
    "bitmex": "bookkeeper.adapters.bitmex:BITMEX",
}

VENUES: tuple[str, ...] = tuple(_REGISTRY)

#: registry name -> "module:attribute" of the venue's private side (``ports.AccountAdapter``)
_ACCOUNT_REGISTRY: dict[str, str] = {
    "binance": "bookkeeper.adapters.binance.private:BINANCE_ACCOUNT",
    "okx": "bookkeeper.adapters.okx.private:OKX_ACCOUNT",
    "bybit": "bookkeeper.adapters.bybit.private:BYBIT_ACCOUNT",
    "binance_usdm": "bookkeeper.adapters.binance.usdm_private:BINANCE_USDM_ACCOUNT",
    "coinbase": "bookkeeper.adapters.coinbase.private:COINBASE_ACCOUNT",
}

#: the venues whose private side (fills, balances, positions) the account ingest supports
ACCOUNT_VENUES: tuple[str, ...] = tuple(_ACCOUNT_REGISTRY)

__all__ = ["ACCOUNT_VENUES", "VENUES", "get_account_adapter", "get_adapter"]


def get_adapter(name: str) -> Adapter:
    """Return the adapter registered as ``name``.

    Raises:
        UsageError: unknown venue name (the message lists the known ones).
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise UsageError(f"unknown venue {name!r}; known venues: {', '.join(VENUES)}", venue=name)
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def get_account_adapter(name: str) -> AccountAdapter:
    """Return the private side (``ports.AccountAdapter``) of venue ``name``.

    Raises:
        UsageError: the venue has no supported private side (the message lists those that do).
    """
    target = _ACCOUNT_REGISTRY.get(name)
    if target is None:
        raise UsageError(f"no account support for {name!r}; venues with it: {', '.join(ACCOUNT_VENUES)}", venue=name)
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
