"""One simulator serving several venues whose default instruments share names."""

from __future__ import annotations

import itertools

import pytest

from bookkeeper.sim import SimExchange
from bookkeeper.sim.venues import DEFAULT_SYMBOLS, DIALECTS


async def test_a_venue_whose_defaults_are_taken_serves_its_alternates() -> None:
    async with SimExchange(venues=("binance", "binance_usdm", "bybit"), seed=1) as sim:
        served = {v: list(sim.servers[v].specs) for v in ("binance", "binance_usdm", "bybit")}
    assert served == {"binance": ["BTCUSDT", "ETHUSDT"], "binance_usdm": ["BNBUSDT", "XRPUSDT"],
                      "bybit": ["DOGEUSDT", "LTCUSDT"]}
    async with SimExchange(venues=("binance_usdm",), seed=1) as sim:  # alone: its defaults
        assert list(sim.servers["binance_usdm"].specs) == [s.symbol for s in DEFAULT_SYMBOLS["binance_usdm"]]


def test_every_dialect_fits_in_one_simulator_in_any_order_and_a_clash_is_a_clear_error() -> None:
    sharing = ("binance", "binance_usdm", "bybit", "bybit_spot")  # all spell symbols BTCUSDT-style
    for order in itertools.permutations(sharing):
        sim = SimExchange(venues=order, seed=1)  # builds (books, servers), starts nothing
        names = [s for v in order for s in sim.servers[v].specs]
        assert len(names) == len(set(names)) == 2 * len(order), (order, names)
    SimExchange(venues=tuple(reversed(DIALECTS)), seed=1)
    with pytest.raises(ValueError, match="name its symbols"):
        SimExchange(venues=("binance", "binance_usdm", "bybit"), seed=1,
                    symbols={"binance": ["BTCUSDT", "ETHUSDT", "BNBUSDT", "DOGEUSDT"]})
