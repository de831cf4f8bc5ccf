"""REST snapshot calls are the adapters' declarations; ``bookkeeper.io.rest`` names no venue."""

from __future__ import annotations

from typing import Any

import pytest
from bookkeeper.adapters import VENUES, get_adapter

from bookkeeper.errors import ExchangeRejected, UsageError
from bookkeeper.io.rest import CcxtRestClient, NoRestClient, rest_config_for
from bookkeeper.ports import LiveSpec, RestCall

#: (venue, symbol, depth) -> the exact call (exchange-protocols.md §2.6 and each §x.4)
CALLS = [
    ("binance", "BTCUSDT", None, RestCall(ccxt_id="binance", method="public_get_depth",
                                          params={"symbol": "BTCUSDT", "limit": 1000})),
    ("binance", "BTCUSDT", 10_000, RestCall(ccxt_id="binance", method="public_get_depth",
                                            params={"symbol": "BTCUSDT", "limit": 5000})),  # §3.4 cap
    # §4.4: USD-M accepts only 5/10/20/50/100/500/1000
    ("binance_usdm", "BTCUSDT", 30, RestCall(ccxt_id="binanceusdm", method="fapipublic_get_depth",
                                             params={"symbol": "BTCUSDT", "limit": 50})),
    ("binance_coinm", "BTCUSD_PERP", 5000, RestCall(ccxt_id="binancecoinm", method="dapipublic_get_depth",
                                                    params={"symbol": "BTCUSD_PERP", "limit": 1000})),
    ("okx", "BTC-USDT", 1000, RestCall(ccxt_id="okx", method="public_get_market_books",
                                       params={"instId": "BTC-USDT", "sz": 400})),  # §5.4
    # §10.4: public level2_20 / level2_100 only
    ("kucoin", "BTC-USDT", 15, RestCall(ccxt_id="kucoin", method="public_get_market_orderbook_level2_20",
                                        params={"symbol": "BTC-USDT"})),
    ("kucoin", "BTC-USDT", None, RestCall(ccxt_id="kucoin", method="public_get_market_orderbook_level2_100",
                                          params={"symbol": "BTC-USDT"})),
    # §11.4: with_id=true always (the id bridges the book); ⚠ 100 max
    ("gateio", "BTC_USDT", 1000, RestCall(ccxt_id="gate", method="public_spot_get_order_book",
                                          params={"currency_pair": "BTC_USDT", "with_id": "true", "limit": 100})),
    ("gateio_futures", "BTC_USDT", 20, RestCall(
        ccxt_id="gate", method="public_futures_get_settle_order_book",
        params={"settle": "usdt", "contract": "BTC_USDT", "with_id": "true", "limit": 20})),
]


@pytest.mark.parametrize(("venue", "symbol", "depth", "call"), CALLS, ids=[f"{c[0]}-{c[2]}" for c in CALLS])
def test_rest_snapshot_call_is_declared_by_the_adapter(venue: str, symbol: str, depth: int | None,
                                                       call: RestCall) -> None:
    adapter = get_adapter(venue)
    assert isinstance(adapter, LiveSpec)
    assert adapter.rest_snapshot_call(symbol, depth) == call


@pytest.mark.parametrize("venue", VENUES)
def test_a_rest_call_exists_exactly_where_the_rest_book_can_be_spliced(venue: str) -> None:
    adapter = get_adapter(venue)
    rest_snapshot = adapter.capabilities.rest_snapshot
    assert isinstance(adapter, LiveSpec)
    has_call = adapter.rest_snapshot_call("X", None) is not None
    assert has_call is rest_snapshot


def test_rest_config_for_takes_the_adapters_url_rule() -> None:
    assert rest_config_for("binance_usdm", "http://127.0.0.1:9/") == {
        "urls": {"api": {"fapiPublic": "http://127.0.0.1:9/fapi/v1"}}}
    assert rest_config_for(get_adapter("okx"), "http://h:1") == {"urls": {"api": {"rest": "http://h:1"}}}
    with pytest.raises(UsageError, match="deribit makes no REST call"):
        rest_config_for("deribit", "http://h:1")


class FakeExchange:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    async def fapipublic_get_depth(self, params: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(params)
        return self.body

    async def close(self) -> None:
        self.closed = True


async def test_ccxt_client_makes_no_exchange_until_a_call_and_sends_the_declared_request() -> None:
    rest = CcxtRestClient(get_adapter("binance_usdm"))
    assert rest._exchanges == {}
    fake = FakeExchange({"lastUpdateId": 7, "E": 1, "T": 1, "bids": [["1.0", "2"]], "asks": [["2.0", "1"]]})
    rest._exchanges["binanceusdm"] = fake
    snap = await rest.fetch_snapshot("BTCUSDT", depth=30)
    await rest.close()
    assert fake.requests == [{"symbol": "BTCUSDT", "limit": 50}]
    assert (snap.symbol, snap.seq, snap.bids, snap.asks) == ("BTCUSDT", 7, [(1.0, 2.0)], [(2.0, 1.0)])
    assert fake.closed and rest.calls == 1


async def test_a_venue_without_rest_snapshots_is_refused_without_any_request() -> None:
    with pytest.raises(ExchangeRejected, match="bybit has no spliceable REST snapshot"):
        await NoRestClient("bybit").fetch_snapshot("BTCUSDT")
    rest = CcxtRestClient(get_adapter("bybit"))
    with pytest.raises(ExchangeRejected, match="bybit has no spliceable REST snapshot"):
        await rest.fetch_snapshot("BTCUSDT")
    assert rest.calls == 0 and rest._exchanges == {}
    await rest.close()
