"""Real ccxt (async_support) against the simulator, pointed at it by URL override."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from bookkeeper.sim import SimExchange

CASES = [
    ("binance", "BTC/USDT", "BTCUSDT", ["BTC/USDT", "ETH/USDT"]),
    ("okx", "BTC/USDT", "BTC-USDT", ["BTC/USDT", "ETH/USDT"]),
    ("kraken", "BTC/USD", "BTC/USD", ["BTC/USD", "ETH/USD"]),
]


@pytest.mark.parametrize(("venue", "unified", "wire", "markets"), CASES, ids=[c[0] for c in CASES])
async def test_ccxt_load_markets_and_fetch_order_book(venue: str, unified: str, wire: str, markets: list[str]) -> None:
    async with SimExchange(venues=(venue,), seed=4, paused=True) as sim:
        sim.push(updates=25)  # move away from the initial book
        exchange = getattr(ccxt, venue)(sim.ccxt_config(venue))
        try:
            loaded = await exchange.load_markets()
            assert sorted(loaded) == markets
            assert loaded[unified]["spot"] is True
            spec = sim.engine.spec(wire)
            assert loaded[unified]["precision"]["price"] == 10.0 ** -spec.price_decimals
            book = await exchange.fetch_order_book(unified, 5)
        finally:
            await exchange.close()
    bids, asks = sim.engine.book(wire, 5)
    assert [lv[:2] for lv in book["bids"]] == [list(b) for b in bids]
    assert [lv[:2] for lv in book["asks"]] == [list(a) for a in asks]
    if venue == "binance":
        assert book["nonce"] == sim.engine.seq(wire)  # lastUpdateId


async def test_ccxt_sees_rest_429_as_rate_limit() -> None:
    async with SimExchange(venues=("binance",), seed=4, paused=True) as sim:
        exchange = ccxt.binance(sim.ccxt_config("binance"))
        try:
            await exchange.load_markets()
            with sim.rate_limited(1, status=429, retry_after_s=7):
                # ccxt's binance maps both 418 and 429 to DDoSProtection.
                with pytest.raises(ccxt.DDoSProtection, match="binance 429 Too Many Requests"):
                    await exchange.fetch_order_book("BTC/USDT", 5)
            assert exchange.last_response_headers["Retry-After"] == "7"
            with sim.rate_limited(1, status=418):
                with pytest.raises(ccxt.DDoSProtection, match="binance 418 I'm a Teapot"):
                    await exchange.fetch_order_book("BTC/USDT", 5)
            book = await exchange.fetch_order_book("BTC/USDT", 5)  # budgets used up: served again
        finally:
            await exchange.close()
    assert book["nonce"] == sim.engine.seq("BTCUSDT")
    assert sim.faults_injected["http_429"] == 1
    assert sim.faults_injected["http_418"] == 1
