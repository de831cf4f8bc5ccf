"""The simulator's Bybit private side (linear account): real ccxt against the signed REST routes
(``bybit.sign()`` v5 headers), raw websockets against ``/v5/private``, and the private faults.

Nothing here sleeps to synchronise: frames are awaited with a safety timeout, private sends
with ``sim.wait_private_sent()``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bookkeeper.sim import FaultKind, SimExchange
from bookkeeper.sim.account import SimAccount
from bookkeeper.sim.exchange import ACCOUNT_VENUES
from bookkeeper.sim.venues.bybit_private import BYBIT_ACCOUNT
from sim_support import drain_until, recv_json

SEED = 11
DAY_MS = 86_400_000


def _exchange(sim: SimExchange, **overrides: Any) -> Any:
    creds = sim.account("bybit").credentials
    cfg: dict[str, Any] = sim.ccxt_config("bybit") | {"apiKey": creds.api_key, "secret": creds.reveal_secret()}
    cfg.update(overrides)
    return ccxt.bybit(cfg)


def _private_url(sim: SimExchange) -> str:
    return f"ws://127.0.0.1:{sim.servers['bybit'].port}/v5/private"


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with SimExchange(venues=("bybit",), seed=SEED, paused=True, accounts=("bybit",)) as s:
        yield s


def _auth(sim: SimExchange, expires_ms: int | None = None, secret: str | None = None) -> str:
    creds = sim.account("bybit").credentials
    expires = expires_ms if expires_ms is not None else int(time.time() * 1000) + 10_000
    sign = hmac.new((secret or creds.reveal_secret()).encode(), f"GET/realtime{expires}".encode(),
                    hashlib.sha256).hexdigest()
    return json.dumps({"req_id": "a1", "op": "auth", "args": [creds.api_key, expires, sign]})


_SUBSCRIBE = json.dumps({"req_id": "s1", "op": "subscribe", "args": ["execution", "order", "position", "wallet"]})


async def _session(sim: SimExchange, ws: ClientConnection) -> None:
    await ws.send(_auth(sim))
    assert (await recv_json(ws))["success"] is True
    await ws.send(_SUBSCRIBE)
    ack = await recv_json(ws)
    assert (ack["success"], ack["op"], ack["req_id"]) == (True, "subscribe", "s1")


# -- truth and registry ----------------------------------------------------------------------


def test_bybit_is_an_account_venue_with_a_linear_only_profile() -> None:
    assert "bybit" in ACCOUNT_VENUES
    assert {i.kind.value for i in BYBIT_ACCOUNT.instruments} == {"linear_swap"}
    assert {i.ct_val for i in BYBIT_ACCOUNT.instruments} == {"1"}  # Bybit linear sizes are in the base coin


def test_bybit_ids_are_uuids_and_positions_realize_pnl_into_usdt() -> None:
    account = SimAccount(BYBIT_ACCOUNT, SEED)
    opened = account.trade("BTCUSDT", "buy", "0.250")
    closed = account.trade("BTCUSDT", "sell", "0.250")
    assert len(opened.trade_id) == 36 and opened.trade_id != closed.trade_id and len(opened.order_id) == 36
    assert account.positions() == {}
    expected = Decimal("150000") + closed.pnl - opened.fee - closed.fee
    assert account.balances()["USDT"] == expected and closed.pnl == (closed.price - opened.price) * Decimal("0.250")


# -- signed REST through real ccxt -----------------------------------------------------------------


async def test_ccxt_loads_the_linear_markets_and_reads_the_account(sim: SimExchange) -> None:
    account = sim.account("bybit")
    fills = [account.trade("BTCUSDT", "buy", "0.100"), account.trade("ETHUSDT", "sell", "1.00"),
             account.trade("BTCUSDT", "sell", "0.040")]
    order = account.place_order("ETHUSDT", "buy", "0.50", "3000.00")
    ex = _exchange(sim)
    try:
        await ex.load_markets()
        swap = next(m for m in ex.markets_by_id["BTCUSDT"] if m["type"] == "swap")
        assert (swap["linear"], swap["settleId"], swap["contractSize"]) == (True, "USDT", 1.0)
        body = await ex.private_get_v5_execution_list({"category": "linear", "symbol": "BTCUSDT", "limit": 1})
        rows = body["result"]["list"]
        assert [r["execId"] for r in rows] == [fills[2].trade_id] and body["result"]["nextPageCursor"]
        page2 = await ex.private_get_v5_execution_list({"category": "linear", "symbol": "BTCUSDT", "limit": 1,
                                                        "cursor": body["result"]["nextPageCursor"]})
        assert [r["execId"] for r in page2["result"]["list"]] == [fills[0].trade_id]
        assert page2["result"]["nextPageCursor"] == ""
        assert Decimal(rows[0]["execPnl"]) == fills[2].pnl and Decimal(rows[0]["execFee"]) == fills[2].fee
        positions = await ex.private_get_v5_position_list({"category": "linear", "settleCoin": "USDT"})
        by_symbol = {r["symbol"]: (r["side"], Decimal(r["size"])) for r in positions["result"]["list"]}
        assert by_symbol == {"BTCUSDT": ("Buy", Decimal("0.060")), "ETHUSDT": ("Sell", Decimal("1.00"))}
        wallet = await ex.private_get_v5_account_wallet_balance({"accountType": "UNIFIED"})
        (row,) = wallet["result"]["list"]
        assert {c["coin"]: Decimal(c["walletBalance"]) for c in row["coin"]} == account.balances()
        assert "updatedTime" not in row  # as on Bybit: the mark is the transaction log's
        orders = await ex.private_get_v5_order_realtime({"category": "linear", "settleCoin": "USDT"})
        assert [(o["orderId"], o["orderStatus"]) for o in orders["result"]["list"]] == [(order.order_id, "New")]
    finally:
        await ex.close()


async def test_transaction_log_newest_row_is_the_accounts_last_balance_change(sim: SimExchange) -> None:
    """One ``TRADE`` row per fill, newest first; ``limit=1`` is exactly the newest, whose
    ``transactionTime`` is the account's last balance change (what the adapter's mark reads);
    a resting order or a cancel moves no balance and writes no row."""
    from bookkeeper.adapters.bybit.private import BYBIT_ACCOUNT as ADAPTER

    account = sim.account("bybit")
    ex = _exchange(sim)
    try:
        empty = await ex.private_get_v5_account_transaction_log({"accountType": "UNIFIED", "limit": 1})
        assert empty["result"]["list"] == [] and empty["result"]["nextPageCursor"] == ""
        assert ADAPTER.parse_account_mark(empty) > 0  # the quiet window's start, not 0
        fills = [account.trade("BTCUSDT", "buy", "0.100"), account.trade("ETHUSDT", "sell", "1.00"),
                 account.trade("BTCUSDT", "sell", "0.040")]
        call = ADAPTER.account_mark_call()
        assert call is not None
        newest = await getattr(ex, call.method)(dict(call.params))
        (row,) = newest["result"]["list"]
        last = fills[-1]
        assert row["transactionTime"] == str(last.ts_ms) == str(account.balance("USDT")[2])
        assert row["transactionTime"] == str(account.updated_ms)
        assert ADAPTER.parse_account_mark(newest) == last.ts_ms * 1_000_000
        assert (row["type"], row["tradeId"], row["symbol"], row["side"]) == ("TRADE", last.trade_id, "BTCUSDT", "Sell")
        assert Decimal(row["fee"]) == last.fee and Decimal(row["cashFlow"]) == last.pnl
        assert Decimal(row["change"]) == last.pnl - last.fee
        assert Decimal(row["cashBalance"]) == account.balances()["USDT"]
        assert Decimal(row["size"]) == account.positions()["BTCUSDT"]
        assert newest["result"]["nextPageCursor"]
        # cursor paging walks the rest, newest first
        page = await ex.private_get_v5_account_transaction_log(
            {"accountType": "UNIFIED", "limit": 1, "cursor": newest["result"]["nextPageCursor"]})
        seen = [r["tradeId"] for r in page["result"]["list"]]
        page = await ex.private_get_v5_account_transaction_log(
            {"accountType": "UNIFIED", "limit": 50, "cursor": page["result"]["nextPageCursor"]})
        seen += [r["tradeId"] for r in page["result"]["list"]]
        assert seen == [fills[1].trade_id, fills[0].trade_id] and page["result"]["nextPageCursor"] == ""
        everything = await ex.private_get_v5_account_transaction_log({"accountType": "UNIFIED"})
        assert [r["tradeId"] for r in everything["result"]["list"]] == [f.trade_id for f in reversed(fills)]
        eth = await ex.private_get_v5_account_transaction_log({"accountType": "UNIFIED", "baseCoin": "ETH"})
        assert [r["tradeId"] for r in eth["result"]["list"]] == [fills[1].trade_id]
        # an order resting then cancelled: no balance change, no row, the mark stays
        order = account.place_order("ETHUSDT", "buy", "0.50", "3000.00")
        account.cancel_order(order.order_id)
        again = await getattr(ex, call.method)(dict(call.params))
        assert ADAPTER.parse_account_mark(again) == last.ts_ms * 1_000_000
        # the default window is the last 24 h of the account clock
        account.advance_clock(DAY_MS / 1000 + 1)
        later = await getattr(ex, call.method)(dict(call.params))
        assert later["result"]["list"] == []
        assert ADAPTER.parse_account_mark(later) > last.ts_ms * 1_000_000
        windowed = await ex.private_get_v5_account_transaction_log(
            {"accountType": "UNIFIED", "startTime": fills[0].ts_ms, "endTime": last.ts_ms})
        assert len(windowed["result"]["list"]) == 3
    finally:
        await ex.close()


@pytest.mark.parametrize("params, fragment", [
    ({"accountType": "UNIFIED", "startTime": 0, "endTime": 7 * DAY_MS + 1}, "7 days"),
    ({"accountType": "UNIFIED", "limit": 51}, "limit"),
    ({"accountType": "CONTRACT"}, "UNIFIED"),
])
async def test_transaction_log_rejects_what_the_venue_rejects(sim: SimExchange, params: dict[str, Any],
                                                                fragment: str) -> None:
    ex = _exchange(sim)
    try:
        with pytest.raises(ccxt.BadRequest, match=fragment):
            await ex.private_get_v5_account_transaction_log(params)
    finally:
        await ex.close()


async def test_transaction_log_is_signed_like_the_other_private_routes(sim: SimExchange) -> None:
    for overrides, code in (({"apiKey": "nope"}, "10003"), ({"secret": "wrong"}, "10004")):
        ex = _exchange(sim, **overrides)
        try:
            with pytest.raises(ccxt.AuthenticationError, match=code):
                await ex.private_get_v5_account_transaction_log({"accountType": "UNIFIED", "limit": 1})
        finally:
            await ex.close()


@pytest.mark.parametrize("params, fragment", [
    ({"category": "linear", "symbol": "BTCUSDT", "startTime": 0, "endTime": 7 * DAY_MS + 1}, "7 days"),
    ({"category": "linear", "symbol": "BTCUSDT", "limit": 101}, "limit"),
    ({"category": "spot", "symbol": "BTCUSDT"}, "category"),
])
async def test_execution_list_rejects_what_the_venue_rejects(sim: SimExchange, params: dict[str, Any],
                                                               fragment: str) -> None:
    ex = _exchange(sim)
    try:
        with pytest.raises(ccxt.BadRequest, match=fragment):
            await ex.private_get_v5_execution_list(params)
    finally:
        await ex.close()


async def test_bad_key_bad_sign_and_expired_timestamps_are_rejected_like_the_venue(sim: SimExchange) -> None:
    for overrides, code in (({"apiKey": "nope"}, "10003"), ({"secret": "wrong"}, "10004")):
        ex = _exchange(sim, **overrides)
        try:
            with pytest.raises(ccxt.AuthenticationError, match=code):
                await ex.private_get_v5_account_wallet_balance({"accountType": "UNIFIED"})
        finally:
            await ex.close()
    ex = _exchange(sim, options={"timeDifference": 60_000})  # a clock a minute behind
    try:
        with pytest.raises(ccxt.InvalidNonce, match="10002"):
            await ex.private_get_v5_account_wallet_balance({"accountType": "UNIFIED"})
    finally:
        await ex.close()


async def test_retention_override_hides_old_fills_from_the_execution_list() -> None:
    from bookkeeper.sim import SimConfig

    cfg = SimConfig(account_history_retention_s=3.0)
    async with SimExchange(venues=("bybit",), seed=SEED, paused=True, accounts=("bybit",), config=cfg) as sim:
        account = sim.account("bybit")
        account.trade("BTCUSDT", "buy", "0.010")
        account.advance_clock(5.0)
        fresh = account.trade("BTCUSDT", "sell", "0.010")
        ex = _exchange(sim)
        try:
            body = await ex.private_get_v5_execution_list({"category": "linear", "symbol": "BTCUSDT"})
            assert [r["execId"] for r in body["result"]["list"]] == [fresh.trade_id]
        finally:
            await ex.close()


# -- the private stream -------------------------------------------------------------------------


async def test_auth_errors_and_subscribing_before_auth(sim: SimExchange) -> None:
    async with connect(_private_url(sim)) as ws:
        await ws.send(_SUBSCRIBE)
        refused = await recv_json(ws)
        assert (refused["success"], refused["op"], refused["ret_msg"]) == (False, "subscribe", "Request not authorized")
        await ws.send(_auth(sim, secret="wrong"))
        bad = await recv_json(ws)
        assert bad["success"] is False and bad["request"]["op"] == "auth" and bad["ret_msg"] == "error:USVC1111"
        await ws.send(_auth(sim, expires_ms=int(time.time() * 1000) - 1))
        assert (await recv_json(ws))["ret_msg"] == "Params Error"
        await ws.send(json.dumps({"req_id": "p", "op": "ping"}))
        pong = await recv_json(ws)
        assert pong["op"] == "pong" and pong["req_id"] == "p"  # the private pong shape (§6.5)
        await ws.send(_auth(sim))
        ok = await recv_json(ws)
        assert (ok["success"], ok["op"]) == (True, "auth")
        await ws.send(json.dumps({"op": "subscribe", "args": ["execution", "execution.linear"]}))
        assert (await recv_json(ws))["success"] is False  # all-in-one and categorised mixed (§6.6)


async def test_private_stream_pushes_execution_before_order_then_position_and_wallet(sim: SimExchange) -> None:
    account = sim.account("bybit")
    async with connect(_private_url(sim)) as ws:
        await _session(sim, ws)
        fill = account.trade("ETHUSDT", "buy", "0.50")
        frames = await drain_until(ws, lambda f: f.get("topic") == "position")
        topics = [f["topic"] for f in frames]
        # the market order's "New", then the fill's execution before the order update it fills
        assert topics == ["order", "execution", "order", "wallet", "position"], topics
        (row,) = next(f for f in frames if f["topic"] == "execution")["data"]
        assert (row["execId"], row["orderId"], row["execType"], row["side"]) == (
            fill.trade_id, fill.order_id, "Trade", "Buy")
        assert (Decimal(row["execPrice"]), Decimal(row["execQty"]), Decimal(row["execFee"])) == (
            fill.price, fill.qty, fill.fee)
        order = frames[2]["data"][0]
        assert (order["orderStatus"], Decimal(order["cumExecQty"])) == ("Filled", Decimal("0.50"))
        position = next(f for f in frames if f["topic"] == "position")["data"][0]
        assert (position["side"], position["size"], position["positionIdx"]) == ("Buy", "0.5", 0)
        wallet = frames[3]
        assert wallet["creationTime"] == fill.ts_ms
        assert {c["coin"]: Decimal(c["walletBalance"]) for c in wallet["data"][0]["coin"]} == {
            "USDT": account.balances()["USDT"]}


async def test_auth_expiry_closes_the_private_connection(sim: SimExchange) -> None:
    """⚠ Bybit documents no session end: the simulator closes the connection (code 1000)."""
    async with connect(_private_url(sim)) as ws:
        await _session(sim, ws)
        assert await sim.inject(FaultKind.AUTH_EXPIRY, "bybit") == 1
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


async def test_private_drop_loses_a_stream_execution_that_rest_still_has(sim: SimExchange) -> None:
    account = sim.account("bybit")
    async with connect(_private_url(sim)) as ws:
        await _session(sim, ws)
        order = account.place_order("BTCUSDT", "sell", "0.010", "61900.0")
        assert (await recv_json(ws))["topic"] == "order"
        await sim.inject(FaultKind.PRIVATE_DROP, "bybit")
        fill = account.fill_order(order.order_id)
        await sim.wait_private_sent("bybit")
        frames = await drain_until(ws, lambda f: f.get("topic") == "wallet")
        # the fill's first private frame, its execution, was lost; the order update still came
        assert [f["topic"] for f in frames] == ["order", "wallet"]
        assert sim.faults_injected["private_drop"] == 1
    ex = _exchange(sim)
    try:
        body = await ex.private_get_v5_execution_list({"category": "linear", "symbol": "BTCUSDT"})
        assert [r["execId"] for r in body["result"]["list"]] == [fill.trade_id]
    finally:
        await ex.close()


async def test_private_abort_and_http_429_hit_only_the_private_side(sim: SimExchange) -> None:
    async with connect(_private_url(sim)) as ws:
        await _session(sim, ws)
        assert await sim.inject(FaultKind.PRIVATE_ABORT, "bybit") == 1
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
    await sim.inject(FaultKind.PRIVATE_HTTP_429, "bybit")
    ex = _exchange(sim)
    try:
        await ex.public_get_v5_market_time()  # public REST is not affected
        with pytest.raises(ccxt.RateLimitExceeded):
            await ex.private_get_v5_account_wallet_balance({"accountType": "UNIFIED"})
        assert sim.faults_injected["private_http_429"] == 1
    finally:
        await ex.close()
