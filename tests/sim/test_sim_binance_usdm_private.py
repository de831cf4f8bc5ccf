"""The simulator's Binance USD-M private side: the listenKey lifecycle over real HTTP through
ccxt (``POST``/``PUT``/``DELETE``: the venue's REST runs on an aiohttp listener of its own),
the ``/private/ws?listenKey=`` stream, expiry (lifetime and the ``auth_expiry`` fault), the
signed REST routes and their refusals, and the HTTP faults on the aiohttp listener.

Nothing here sleeps to synchronise: frames are awaited with a safety timeout, private sends
with ``sim.wait_private_sent()``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bookkeeper.sim import FaultKind, SimConfig, SimExchange
from bookkeeper.sim.exchange import ACCOUNT_VENUES
from bookkeeper.sim.venues.binance_usdm_private import BinanceUsdmPrivate
from sim_support import drain_until, http_get, recv_json

VENUE = "binance_usdm"
SEED = 11
DAY_MS = 86_400_000


def _exchange(sim: SimExchange, **overrides: Any) -> Any:
    creds = sim.account(VENUE).credentials
    cfg: dict[str, Any] = sim.ccxt_config(VENUE) | {"apiKey": creds.api_key, "secret": creds.reveal_secret()}
    cfg.update(overrides)
    return ccxt.binanceusdm(cfg)


def _dialect(sim: SimExchange) -> BinanceUsdmPrivate:
    private = sim.servers[VENUE].private
    assert isinstance(private, BinanceUsdmPrivate)
    return private


@contextlib.asynccontextmanager
async def _venue(**config: Any) -> AsyncIterator[tuple[SimExchange, Any]]:
    """A paused simulator of the venue with its account (``SimConfig`` knobs) and a ccxt client."""
    async with SimExchange(venues=(VENUE,), seed=SEED, paused=True, accounts=(VENUE,),
                           config=SimConfig(**config)) as sim:
        exchange = _exchange(sim)
        try:
            yield sim, exchange
        finally:
            await exchange.close()


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with SimExchange(venues=(VENUE,), seed=SEED, paused=True, accounts=(VENUE,)) as s:
        yield s


@pytest.fixture
async def ex(sim: SimExchange) -> AsyncIterator[Any]:
    exchange = _exchange(sim)
    try:
        yield exchange
    finally:
        await exchange.close()


async def _stream(sim: SimExchange, key: str) -> ClientConnection:
    return await connect(f"{sim.urls(VENUE)['ws_private']}?listenKey={key}")


# -- the listenKey ------------------------------------------------------------------------------


async def test_listen_key_post_put_delete_through_ccxt(sim: SimExchange, ex: Any) -> None:
    assert VENUE in ACCOUNT_VENUES
    server = sim.servers[VENUE]
    assert server.rest_url != f"http://127.0.0.1:{server.port}"  # REST on an aiohttp listener of its own
    key = (await ex.fapiPrivatePostListenKey())["listenKey"]
    assert len(key) == 64 and key.isalnum()
    # §4.6: a POST with an active key returns it (extended); PUT extends it
    assert (await ex.fapiPrivatePostListenKey())["listenKey"] == key
    assert (await ex.fapiPrivatePutListenKey())["listenKey"] == key
    assert _dialect(sim).keys_issued == 1
    ws = await _stream(sim, key)
    try:
        assert await ex.fapiPrivateDeleteListenKey() == {}
        with pytest.raises(ConnectionClosed) as closed:  # DELETE closes the stream
            await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    finally:
        await ws.close()
    with pytest.raises(ccxt.ExchangeError, match="-1125"):
        await ex.fapiPrivatePutListenKey()
    with pytest.raises(InvalidStatus, match="400"):
        await _stream(sim, key)
    assert (await ex.fapiPrivatePostListenKey())["listenKey"] != key and _dialect(sim).keys_issued == 2


async def test_listen_key_takes_the_api_key_header_and_nothing_else(sim: SimExchange) -> None:
    url = sim.urls(VENUE)["rest"] + "/fapi/v1/listenKey"
    async with aiohttp.ClientSession() as session:
        async with session.post(url) as resp:
            assert (resp.status, (await resp.json())["code"]) == (401, -2014)
        async with session.post(url, headers={"X-MBX-APIKEY": "simnotthekey"}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (401, -2015)
        key = sim.account(VENUE).credentials.api_key
        async with session.post(url, headers={"X-MBX-APIKEY": key}) as resp:
            assert resp.status == 200 and resp.headers["Connection"] == "close"
            assert set(await resp.json()) == {"listenKey"}
        async with session.get(url, headers={"X-MBX-APIKEY": key}) as resp:
            assert resp.status == 405
        async with session.post(sim.urls(VENUE)["rest"] + "/fapi/v1/depth?symbol=BTCUSDT") as resp:
            assert resp.status == 405  # the public routes are GET only


async def test_unknown_key_is_refused_on_the_upgrade(sim: SimExchange) -> None:
    with pytest.raises(InvalidStatus, match="400"):
        await _stream(sim, "0" * 64)
    with pytest.raises(InvalidStatus, match="404"):  # the legacy private path is gone (§0)
        await connect(sim.urls(VENUE)["ws_root"].removesuffix("/public") + "/ws/" + "0" * 64)


async def test_stream_pushes_order_trade_and_account_updates_from_the_truth(sim: SimExchange, ex: Any) -> None:
    account = sim.account(VENUE)
    key = (await ex.fapiPrivatePostListenKey())["listenKey"]
    async with await _stream(sim, key) as ws:
        opened = account.trade("ETHUSDT", "sell", "1.500")
        closed = account.trade("ETHUSDT", "buy", "1.000")
        await sim.wait_private_sent(VENUE)
        frames = await drain_until(ws, lambda f: f["e"] == "ACCOUNT_UPDATE" and f["a"]["P"][0]["pa"] == "-0.500")
    trades = [f["o"] for f in frames if f["e"] == "ORDER_TRADE_UPDATE" and f["o"]["x"] == "TRADE"]
    assert [(o["t"], o["i"], o["S"], o["l"], o["z"], o["X"]) for o in trades] == [
        (int(opened.trade_id), int(opened.order_id), "SELL", "1.500", "1.500", "FILLED"),
        (int(closed.trade_id), int(closed.order_id), "BUY", "1.000", "1.000", "FILLED")]
    last = trades[-1]
    assert Decimal(last["L"]) == closed.price and Decimal(last["n"]) == closed.fee and last["N"] == "USDT"
    assert Decimal(last["rp"]) == closed.pnl != 0 and last["T"] == closed.ts_ms
    news = [f["o"] for f in frames if f["e"] == "ORDER_TRADE_UPDATE" and f["o"]["x"] == "NEW"]
    assert [o["t"] for o in news] == [0, 0] and all("n" not in o for o in news)  # no commission: not pushed
    update = frames[-1]["a"]
    assert update["m"] == "ORDER" and Decimal(update["B"][0]["wb"]) == account.balances()["USDT"]
    assert Decimal(update["P"][0]["pa"]) == account.positions()["ETHUSDT"] == Decimal("-0.500")


async def test_private_drop_loses_a_stream_trade_that_rest_still_has(sim: SimExchange, ex: Any) -> None:
    account = sim.account(VENUE)
    key = (await ex.fapiPrivatePostListenKey())["listenKey"]
    async with await _stream(sim, key) as ws:
        order = account.place_order("BTCUSDT", "sell", "0.010", "61900.0")
        assert (await recv_json(ws))["o"]["x"] == "NEW"
        await sim.inject(FaultKind.PRIVATE_DROP, VENUE)
        fill = account.fill_order(order.order_id)
        await sim.wait_private_sent(VENUE)
        frames = await drain_until(ws, lambda f: f["e"] == "ACCOUNT_UPDATE")
        # the trade's ORDER_TRADE_UPDATE was lost; the balance push (a control frame) still came
        assert [f["e"] for f in frames] == ["ACCOUNT_UPDATE"] and sim.faults_injected["private_drop"] == 1
    rows = await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT"})
    assert [r["id"] for r in rows] == [int(fill.trade_id)]


async def test_key_expires_after_its_lifetime() -> None:
    async with _venue(private_listen_key_lifetime_s=0.4) as (sim, exchange):
        key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
        async with await _stream(sim, key) as ws:
            expired = await recv_json(ws)
            assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)
            assert isinstance(expired["E"], str) and expired["E"].isdigit()
            sim.account(VENUE).trade("BTCUSDT", "buy")  # nothing more is pushed on an expired key
            await sim.wait_private_sent(VENUE)
            assert sim.servers[VENUE].conns and not any(c.private_queued for c in sim.servers[VENUE].conns)
        with pytest.raises(ccxt.ExchangeError, match="-1125"):
            await exchange.fapiPrivatePutListenKey()
        assert (await exchange.fapiPrivatePostListenKey())["listenKey"] != key


async def test_auth_expiry_expires_the_key_now(sim: SimExchange, ex: Any) -> None:
    key = (await ex.fapiPrivatePostListenKey())["listenKey"]
    async with await _stream(sim, key) as ws, await _stream(sim, key) as second:
        assert await sim.inject(FaultKind.AUTH_EXPIRY, VENUE) == 1  # one key: one expiry
        for conn in (ws, second):
            assert (await recv_json(conn))["e"] == "listenKeyExpired"
        assert _dialect(sim).active_key() is None
        assert await sim.inject(FaultKind.AUTH_EXPIRY, VENUE) == 0  # nothing left to expire
    assert sim.faults_injected["auth_expiry"] == 1


async def test_connection_lifetime_ends_with_1000() -> None:
    async with _venue(private_session_lifetime_s=0.3) as (sim, exchange):
        key = (await exchange.fapiPrivatePostListenKey())["listenKey"]
        async with await _stream(sim, key) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


# -- signed REST ------------------------------------------------------------------------------------


async def test_ccxt_reads_trades_account_positions_and_open_orders(sim: SimExchange, ex: Any) -> None:
    account = sim.account(VENUE)
    fills = [account.trade("BTCUSDT", "buy", "0.100"), account.trade("ETHUSDT", "sell", "1.000"),
             account.trade("BTCUSDT", "sell", "0.040")]
    order = account.place_order("ETHUSDT", "buy", "0.500", "3000.00")
    await ex.load_markets()
    swap = ex.markets_by_id["BTCUSDT"][0]
    assert (swap["type"], swap["linear"], swap["settleId"], swap["contractSize"]) == ("swap", True, "USDT", 1.0)
    rows = await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT"})
    assert [(r["id"], r["side"], Decimal(r["qty"]), Decimal(r["realizedPnl"]), Decimal(r["commission"]), r["time"])
            for r in rows] == [(int(f.trade_id), f.side.upper(), f.qty, f.pnl, f.fee, f.ts_ms)
                               for f in fills if f.symbol == "BTCUSDT"]
    paged = await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "fromId": rows[0]["id"] + 1, "limit": 5})
    assert [r["id"] for r in paged] == [rows[1]["id"]]
    body = await ex.fapiPrivateV3GetAccount()
    assert {a["asset"]: Decimal(a["walletBalance"]) for a in body["assets"]} == account.balances()
    usdt = next(a for a in body["assets"] if a["asset"] == "USDT")
    # the mark: the last balance change (a fill), not the order placed after it
    assert usdt["updateTime"] == fills[-1].ts_ms < order.created_ms
    positions = await ex.fapiPrivateV3GetPositionRisk()
    assert {r["symbol"]: Decimal(r["positionAmt"]) for r in positions} == account.positions()
    assert {p["symbol"] for p in body["positions"]} == {"BTCUSDT", "ETHUSDT"}
    (open_row,) = await ex.fapiPrivateGetOpenOrders()
    assert (open_row["orderId"], open_row["status"], open_row["origQty"]) == (int(order.order_id), "NEW", "0.500")
    balance = await ex.fetch_balance()  # ccxt's unified call reads /fapi/v3/account too (total: margin balance)
    assert Decimal(str(balance["USDT"]["total"])) == Decimal(usdt["marginBalance"])


@pytest.mark.parametrize("params, code", [
    ({"fromId": 1, "startTime": 1}, "-1128"),
    ({"startTime": 0, "endTime": 7 * DAY_MS + 1}, "-1127"),
    ({"limit": 1001}, "-1130"),
    ({}, "-1102"),  # no symbol
])
async def test_user_trades_rejects_what_the_venue_rejects(ex: Any, params: dict[str, Any], code: str) -> None:
    query = {"symbol": "BTCUSDT", **params} if params else {}
    with pytest.raises(ccxt.ExchangeError, match=code):
        await ex.fapiPrivateGetUserTrades(query)


async def test_without_times_user_trades_covers_the_last_seven_days(sim: SimExchange, ex: Any) -> None:
    account = sim.account(VENUE)
    old = account.trade("BTCUSDT", "buy")
    account.advance_clock(8 * 86_400)
    recent = account.trade("BTCUSDT", "sell")
    assert [r["id"] for r in await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT"})] == [int(recent.trade_id)]
    by_id = await ex.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "fromId": int(old.trade_id)})
    assert [r["id"] for r in by_id] == [int(old.trade_id), int(recent.trade_id)]  # fromId ignores the 7 days


async def test_bad_signature_and_unknown_key_are_rejected(sim: SimExchange) -> None:
    for overrides, code in (({"secret": "not-the-secret"}, "-1022"), ({"apiKey": "simnotthekey"}, "-2015")):
        exchange = _exchange(sim, **overrides)
        try:
            with pytest.raises(ccxt.AuthenticationError, match=code):
                await exchange.fapiPrivateV3GetAccount()
        finally:
            await exchange.close()


async def test_a_non_ascii_signature_is_an_invalid_signature_not_a_server_error(sim: SimExchange) -> None:
    creds = sim.account(VENUE).credentials
    url = f"{sim.urls(VENUE)['rest']}/fapi/v3/account?timestamp={sim.account(VENUE).now_ms()}&signature=%C3%A9"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"X-MBX-APIKEY": creds.api_key}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, -1022)


# -- faults on the aiohttp listener --------------------------------------------------------------------


async def test_http_faults_and_outages_act_on_the_rest_listener(sim: SimExchange, ex: Any) -> None:
    rest = sim.urls(VENUE)["rest"]
    await sim.inject(FaultKind.PRIVATE_HTTP_429, VENUE, retry_after_s=2)
    await ex.fapiPublicGetTime()  # public REST is not affected by private_http_429
    with pytest.raises(ccxt.DDoSProtection):
        await ex.fapiPrivateV3GetAccount()
    assert ex.last_response_headers["Retry-After"] == "2"
    await sim.inject(FaultKind.HTTP_418, VENUE)
    status, _, body = await http_get(rest + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert (status, body["code"]) == (418, -1003)
    assert (sim.faults_injected["private_http_429"], sim.faults_injected["http_418"]) == (1, 1)
    await sim.outage(VENUE)
    with pytest.raises(aiohttp.ClientConnectorError):
        await http_get(rest + "/fapi/v1/time")
    await sim.end_outage(VENUE)
    status, _, body = await http_get(rest + "/fapi/v1/time")
    assert status == 200 and "serverTime" in body
    assert json.dumps(body)  # a JSON answer after the outage, on the same port


async def test_a_rest_listener_that_cannot_start_leaves_nothing_listening() -> None:
    import socket

    sim = SimExchange(venues=("binance_usdm",), seed=1)
    server = sim.servers["binance_usdm"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server._http_port = busy.getsockname()[1]  # the REST port is taken
        with pytest.raises(OSError):
            await server.start()
    assert server._servers == [] and server._http_runner is None
    with socket.socket() as probe:  # the WebSocket port it had opened is closed again
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0
