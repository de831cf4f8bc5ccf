"""The simulator's private side: seeded account truth, real ccxt against the signed REST
routes, raw websockets against the account streams, and the private faults.

Nothing here sleeps to synchronise: frames are awaited with a safety timeout, private sends
with ``sim.wait_private_sent()``, state with ``sim.wait_for()``.
"""

from __future__ import annotations

import base64
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
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bookkeeper.apps.chaos import ALL_FAULTS
from bookkeeper.sim import DEMO_KINDS, FAULTS, PRIVATE_KINDS, FaultKind, SimConfig, SimExchange
from bookkeeper.sim.account import ORDER_TRANSITIONS, OrderState, SimAccount
from bookkeeper.sim.venues.binance_private import BINANCE_ACCOUNT
from bookkeeper.sim.venues.okx_private import OKX_ACCOUNT
from sim_support import drain_until, recv_json, recv_text

SEED = 11
DAY_S = 86_400.0


def _exchange(sim: SimExchange, venue: str, **overrides: str) -> Any:
    creds = sim.account(venue).credentials
    cfg: dict[str, Any] = sim.ccxt_config(venue) | {"apiKey": creds.api_key, "secret": creds.reveal_secret()}
    if creds.passphrase:
        cfg["password"] = creds.passphrase
    cfg.update(overrides)
    return getattr(ccxt, venue)(cfg)


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with SimExchange(venues=("binance", "okx"), seed=SEED, paused=True, accounts=("binance", "okx")) as s:
        yield s


# -- truth ---------------------------------------------------------------------------------


def _auto(seed: int, profile: Any, steps: int = 200) -> SimAccount:
    account = SimAccount(profile, seed)
    for _ in range(steps):
        account.auto_trade(rate_per_s=20.0, interval_s=0.05)
    return account


@pytest.mark.parametrize("profile", [BINANCE_ACCOUNT, OKX_ACCOUNT], ids=["binance", "okx"])
def test_auto_trading_is_seeded_and_keeps_the_truth_invariants(profile: Any) -> None:
    a, b = _auto(SEED, profile), _auto(SEED, profile)
    fills = a.fills()
    assert len(fills) == 200, f"seed={SEED}"
    assert [(f.trade_id, f.price, f.qty, f.side) for f in fills] == [(f.trade_id, f.price, f.qty, f.side) for f in b.fills()]
    assert [f.price for f in _auto(SEED + 1, profile).fills()] != [f.price for f in fills]
    ts = [f.ts_ms for f in fills]
    assert all(later - earlier >= 1 for earlier, later in zip(ts, ts[1:]))
    for symbol in a.instruments:
        ids = [int(f.trade_id) for f in a.fills(symbol)]
        assert ids == sorted(set(ids))
    if profile.first_bill_id is not None:
        bills = [int(f.bill_id) for f in fills]
        assert bills == sorted(set(bills))
    # balances == starting balances + every fill (spot) / fees and PnL (swap), exactly
    expected = {k: Decimal(v) for k, v in profile.balances.items()}
    for f in fills:
        inst = a.instruments[f.symbol]
        sign = 1 if f.side == "buy" else -1
        if inst.ct_val is None:
            expected[inst.base] += sign * f.qty
            expected[inst.quote] -= sign * f.qty * f.price
        else:
            expected[inst.quote] += f.pnl
        expected[f.fee_currency] -= f.fee
    assert a.balances() == expected
    assert all(o.is_open and o.filled < o.qty for o in a.open_orders())
    assert ORDER_TRANSITIONS[OrderState.FILLED] == frozenset()


def test_order_lifecycle_rejects_illegal_transitions() -> None:
    account = SimAccount(BINANCE_ACCOUNT, SEED)
    order = account.place_order("BTCUSDT", "buy", "0.001", "60000")
    assert account.balance("USDT")[1] == Decimal("60.000")  # locked
    account.fill_order(order.order_id, "0.0004")
    assert account.order(order.order_id).state is OrderState.PARTIALLY_FILLED
    account.cancel_order(order.order_id)
    assert account.balance("USDT")[1] == 0 and account.open_orders() == []
    with pytest.raises(ValueError):
        account.cancel_order(order.order_id)


def test_swap_position_realizes_pnl_into_usdt() -> None:
    account = SimAccount(OKX_ACCOUNT, SEED)  # no engine: fills at ref_price +- one tick
    usdt = account.balances()["USDT"]
    buy = account.trade("BTC-USDT-SWAP", "buy", "10")
    sell = account.trade("BTC-USDT-SWAP", "sell", "4")
    assert account.positions() == {"BTC-USDT-SWAP": Decimal("6")}
    assert sell.pnl == (sell.price - buy.price) * 4 * Decimal("0.01")
    assert account.balances()["USDT"] == usdt + sell.pnl - buy.fee - sell.fee
    account.trade("BTC-USDT-SWAP", "sell", "6")
    assert account.positions() == {}


async def test_accounts_do_not_change_the_public_streams() -> None:
    books = []
    for accounts in ((), ("binance", "okx")):
        async with SimExchange(venues=("binance", "okx"), seed=SEED, paused=True, accounts=accounts) as sim:
            for _ in range(5):
                sim.push(updates=20)
                for account in sim.accounts.values():
                    account.auto_trade(50.0, 0.1)
            books.append({s: sim.engine.book(s) for s in ("BTCUSDT", "BTC-USDT")})
    assert books[0] == books[1]


async def test_push_loop_trades_near_the_mid() -> None:
    config = SimConfig(push_interval_s=0.01, account_fill_rate_per_s=200.0)
    async with SimExchange(venues=("binance",), seed=SEED, config=config, accounts=("binance",)) as sim:
        account = sim.account("binance")
        await sim.wait_for(lambda: len(account.fills()) >= 20)
        account.pause_trading()
        n = len(account.fills())
        sim.pause()
    mid = account.mark_price("BTCUSDT")
    assert all(abs(f.price - mid) / mid < Decimal("0.01") for f in account.fills("BTCUSDT")), f"seed={SEED}"
    assert len(account.fills()) == n


def test_private_fault_kinds_are_registered_outside_the_demo_and_public_mixes() -> None:
    assert set(PRIVATE_KINDS) == {FaultKind.PRIVATE_ABORT, FaultKind.PRIVATE_DROP, FaultKind.AUTH_EXPIRY,
                                  FaultKind.PRIVATE_HTTP_429}
    assert all(FAULTS[k].private and FAULTS[k].demo == 0 for k in PRIVATE_KINDS)
    assert not set(PRIVATE_KINDS) & set(DEMO_KINDS)
    assert not {k.value for k in PRIVATE_KINDS} & set(ALL_FAULTS)


async def test_accounts_are_off_by_default() -> None:
    async with SimExchange(venues=("binance",), seed=SEED, paused=True) as sim:
        assert sim.accounts == {} and "ws_private" not in sim.urls("binance")
        with pytest.raises(KeyError):
            sim.account("binance")
        with pytest.raises(InvalidStatus):  # 404: no private stream without the account
            async with connect(sim.urls("binance")["ws_root"] + "/ws-api/v3"):
                pass
    with pytest.raises(ValueError):
        SimExchange(venues=("kraken",), accounts=("kraken",))


# -- Binance REST (ccxt) -------------------------------------------------------------------------


async def test_binance_ccxt_my_trades_balance_open_orders(sim: SimExchange) -> None:
    account = sim.account("binance")
    fills = [account.trade("BTCUSDT", "buy" if i % 3 else "sell", "0.001") for i in range(23)]
    account.trade("ETHUSDT", "buy")
    resting = account.place_order("BTCUSDT", "buy", "0.002", "50000.00")
    ex = _exchange(sim, "binance")
    try:
        got: list[dict[str, Any]] = []
        from_id = int(fills[0].trade_id)
        while True:  # gapless replay with fromId (§3.6)
            page = await ex.private_get_mytrades({"symbol": "BTCUSDT", "fromId": from_id, "limit": 7})
            if not page:
                break
            got.extend(page)
            from_id = page[-1]["id"] + 1
        assert [r["id"] for r in got] == [int(f.trade_id) for f in fills]
        assert [(Decimal(r["price"]), Decimal(r["qty"]), Decimal(r["commission"])) for r in got] == [
            (f.price, f.qty, f.fee) for f in fills]
        trades = await ex.fetch_my_trades("BTC/USDT", since=fills[0].ts_ms)
        assert [t["id"] for t in trades] == [f.trade_id for f in fills]
        balance = await ex.fetch_balance()
        truth = account.balances()
        assert {a: Decimal(r["free"]) + Decimal(r["locked"]) for a, r in
                ((r["asset"], r) for r in balance["info"]["balances"])} == truth
        assert balance["info"]["updateTime"] == account.updated_ms
        orders = await ex.fetch_open_orders("BTC/USDT")
        assert [o["id"] for o in orders] == [resting.order_id]
    finally:
        await ex.close()


@pytest.mark.parametrize(("params", "code"), [
    ({"startTime": 0, "endTime": 24 * 3_600_000 + 1}, "-1127"),
    ({"fromId": 1, "startTime": 0}, "-1128"),
    ({"orderId": 1, "startTime": 0}, "-1128"),
    ({"limit": 1001}, "-1130"),
])
async def test_binance_my_trades_rejects_what_the_venue_rejects(sim: SimExchange, params: dict[str, Any],
                                                                code: str) -> None:
    ex = _exchange(sim, "binance")
    try:
        with pytest.raises(ccxt.ExchangeError, match=code):
            await ex.private_get_mytrades({"symbol": "BTCUSDT", **params})
    finally:
        await ex.close()


async def test_binance_bad_signature_and_unknown_key_are_rejected(sim: SimExchange) -> None:
    for overrides, code in (({"secret": "wrong-secret"}, "-1022"), ({"apiKey": "simNOPE"}, "-2015")):
        ex = _exchange(sim, "binance", **overrides)
        try:
            with pytest.raises(ccxt.AuthenticationError, match=code):
                await ex.fetch_balance()
        finally:
            await ex.close()


async def test_history_retention_override_hides_old_fills() -> None:
    config = SimConfig(account_history_retention_s=60.0)
    async with SimExchange(venues=("binance",), seed=SEED, paused=True, accounts=("binance",), config=config) as sim:
        account = sim.account("binance")
        old = account.trade("BTCUSDT", "buy", "0.001")
        account.advance_clock(120.0)
        new = account.trade("BTCUSDT", "buy", "0.001")
        ex = _exchange(sim, "binance")
        try:
            rows = await ex.private_get_mytrades({"symbol": "BTCUSDT", "fromId": old.trade_id})
        finally:
            await ex.close()
    assert [str(r["id"]) for r in rows] == [new.trade_id]


# -- OKX REST (ccxt) ---------------------------------------------------------------------------------


async def test_okx_ccxt_fills_balance_positions_open_orders(sim: SimExchange) -> None:
    account = sim.account("okx")
    spot = [account.trade("BTC-USDT", "buy" if i % 2 else "sell", "0.001") for i in range(17)]
    account.trade("BTC-USDT-SWAP", "buy", "5")
    account.trade("BTC-USDT-SWAP", "sell", "2")
    resting = account.place_order("BTC-USDT", "sell", "0.01", "70000")
    ex = _exchange(sim, "okx")
    try:
        await ex.load_markets()
        assert "BTC/USDT:USDT" in ex.markets and ex.markets["BTC/USDT:USDT"]["contractSize"] == 0.01
        # newest first, paged backwards with `after` (billId) without gaps (§5.6)
        got: list[dict[str, Any]] = []
        request: dict[str, Any] = {"instType": "SPOT", "limit": 5}
        while True:
            page = (await ex.private_get_trade_fills_history(request))["data"]
            if not page:
                break
            got.extend(page)
            request["after"] = page[-1]["billId"]
        assert [r["tradeId"] for r in reversed(got)] == [f.trade_id for f in spot]
        assert [-Decimal(r["fee"]) for r in reversed(got)] == [f.fee for f in spot]
        # and forwards with `before`: the oldest newer rows, still newest first
        page = (await ex.private_get_trade_fills_history({"instType": "SPOT", "before": spot[2].bill_id,
                                                          "limit": 3}))["data"]
        assert [r["billId"] for r in page] == [spot[5].bill_id, spot[4].bill_id, spot[3].bill_id]
        trades = await ex.fetch_my_trades("BTC/USDT")
        assert sorted(t["id"] for t in trades) == sorted(f.trade_id for f in spot)
        positions = await ex.fetch_positions()
        assert [(p["symbol"], p["contracts"], p["side"]) for p in positions] == [("BTC/USDT:USDT", 3.0, "long")]
        assert {p["info"]["instId"]: Decimal(p["info"]["pos"]) for p in positions} == account.positions()
        balance = await ex.fetch_balance()
        details = balance["info"]["data"][0]["details"]
        assert {d["ccy"]: Decimal(d["cashBal"]) for d in details} == account.balances()
        assert int(balance["info"]["data"][0]["uTime"]) == account.updated_ms
        orders = await ex.fetch_open_orders()
        assert [o["id"] for o in orders] == [resting.order_id]
        with pytest.raises(ccxt.ExchangeError, match="51000"):
            await ex.private_get_trade_fills_history({"instType": "SPOT", "limit": 101})
        with pytest.raises(ccxt.ExchangeError, match="51000"):
            await ex.private_get_trade_fills_history({})
    finally:
        await ex.close()


async def test_okx_recent_fills_cover_three_days_and_history_three_months(sim: SimExchange) -> None:
    account = sim.account("okx")
    old = account.trade("BTC-USDT", "buy", "0.001")
    account.advance_clock(4 * DAY_S)
    new = account.trade("BTC-USDT", "buy", "0.001")
    ex = _exchange(sim, "okx")
    try:
        recent = (await ex.private_get_trade_fills({"instType": "SPOT"}))["data"]
        history = (await ex.private_get_trade_fills_history({"instType": "SPOT"}))["data"]
        account.advance_clock(87 * DAY_S)  # old: 91 days ago, new: 87
        later = (await ex.private_get_trade_fills_history({"instType": "SPOT"}))["data"]
    finally:
        await ex.close()
    assert [r["tradeId"] for r in recent] == [new.trade_id]
    assert [r["tradeId"] for r in history] == [new.trade_id, old.trade_id]
    assert [r["tradeId"] for r in later] == [new.trade_id]


async def test_okx_bad_sign_and_wrong_passphrase_are_rejected(sim: SimExchange) -> None:
    for overrides, code in (({"secret": "wrong"}, "50113"), ({"password": "wrong"}, "50105"),
                            ({"apiKey": "nope"}, "50111")):
        ex = _exchange(sim, "okx", **overrides)
        try:
            with pytest.raises(ccxt.AuthenticationError, match=code):
                await ex.fetch_balance()
        finally:
            await ex.close()


async def test_private_http_429_hits_private_rest_only(sim: SimExchange) -> None:
    for venue, symbol in (("binance", "BTC/USDT"), ("okx", "BTC/USDT")):
        ex = _exchange(sim, venue)
        try:
            await ex.load_markets()
            await sim.inject(FaultKind.PRIVATE_HTTP_429, venue, retry_after_s=3)
            await ex.fetch_order_book(symbol, 5)  # public: not affected, budget still armed
            with pytest.raises((ccxt.DDoSProtection, ccxt.RateLimitExceeded)):
                await ex.fetch_balance()
            assert ex.last_response_headers["Retry-After"] == "3"
            await ex.fetch_balance()
        finally:
            await ex.close()
    assert sim.faults_injected["private_http_429"] == 2
    assert sim.faults_injected["http_429"] == 0


# -- Binance WS API -------------------------------------------------------------------------------


def _binance_subscribe(sim: SimExchange, req_id: str = "1", secret: str | None = None, ts: int | None = None) -> str:
    creds = sim.account("binance").credentials
    stamp = int(time.time() * 1000) if ts is None else ts
    payload = f"apiKey={creds.api_key}&timestamp={stamp}"
    sig = hmac.new((secret or creds.reveal_secret()).encode(), payload.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"id": req_id, "method": "userDataStream.subscribe.signature",
                       "params": {"apiKey": creds.api_key, "timestamp": stamp, "signature": sig}})


def _events(frames: list[Any], kind: str) -> list[dict[str, Any]]:
    return [f["event"] for f in frames if isinstance(f, dict) and f.get("event", {}).get("e") == kind]


async def test_binance_ws_api_streams_the_truth(sim: SimExchange) -> None:
    account = sim.account("binance")
    async with connect(sim.urls("binance")["ws_private"]) as ws:
        await ws.send(_binance_subscribe(sim, secret="bad"))
        bad = await recv_json(ws)
        assert (bad["status"], bad["error"]["code"]) == (400, -1022)
        await ws.send(_binance_subscribe(sim, ts=int(time.time() * 1000) - 60_000))
        assert (await recv_json(ws))["error"]["code"] == -1021
        await ws.send(_binance_subscribe(sim))
        ok = await recv_json(ws)
        assert ok == {"id": "1", "status": 200, "result": {"subscriptionId": 0}, "rateLimits": ok["rateLimits"]}
        fill = account.trade("BTCUSDT", "buy", "0.003")
        frames = await drain_until(ws, lambda f: f.get("event", {}).get("x") == "TRADE")
        report = _events(frames, "executionReport")[-1]
        assert (report["s"], str(report["t"]), str(report["i"]), report["X"]) == (
            "BTCUSDT", fill.trade_id, fill.order_id, "FILLED")
        assert (Decimal(report["L"]), Decimal(report["l"]), Decimal(report["n"]), report["T"]) == (
            fill.price, fill.qty, fill.fee, fill.ts_ms)
        assert _events(frames, "executionReport")[0]["x"] == "NEW"
        position = (await drain_until(ws, lambda f: f["event"]["e"] == "outboundAccountPosition"
                                      and f["event"]["u"] == account.updated_ms))[-1]["event"]
        assert {b["a"]: Decimal(b["f"]) + Decimal(b["l"]) for b in position["B"]} == {
            a: account.balances()[a] for a in ("BTC", "USDT")}


async def test_binance_auth_expiry_terminates_the_subscription_not_the_socket(sim: SimExchange) -> None:
    account = sim.account("binance")
    async with connect(sim.urls("binance")["ws_private"]) as ws:
        await ws.send(_binance_subscribe(sim))
        await recv_json(ws)
        assert await sim.inject(FaultKind.AUTH_EXPIRY, "binance") == 1
        terminated = await recv_json(ws)
        assert terminated["subscriptionId"] == 0 and terminated["event"]["e"] == "eventStreamTerminated"
        account.trade("BTCUSDT", "buy", "0.001")  # not pushed: no subscription
        await ws.send(json.dumps({"id": "p", "method": "ping"}))
        assert (await recv_json(ws))["id"] == "p"  # FIFO: nothing was queued before the answer
        await ws.send(_binance_subscribe(sim, req_id="2"))
        assert (await recv_json(ws))["result"] == {"subscriptionId": 1}
    assert sim.faults_injected["auth_expiry"] == 1


async def test_binance_session_lifetime_ends_with_terminated_then_1000() -> None:
    config = SimConfig(private_session_lifetime_s=0.3)
    async with SimExchange(venues=("binance",), seed=SEED, paused=True, accounts=("binance",), config=config) as sim:
        async with connect(sim.urls("binance")["ws_private"]) as ws:
            await ws.send(_binance_subscribe(sim))
            await recv_json(ws)
            assert (await recv_json(ws))["event"]["e"] == "eventStreamTerminated"
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


async def test_private_drop_loses_a_stream_fill_that_rest_still_has(sim: SimExchange) -> None:
    account = sim.account("binance")
    async with connect(sim.urls("binance")["ws_private"]) as ws:
        await ws.send(_binance_subscribe(sim))
        await recv_json(ws)
        with sim.drop_frames(None):  # public frame faults never touch private frames
            await sim.inject(FaultKind.PRIVATE_DROP, "binance", count=2)  # NEW and TRADE of one order
            lost = account.trade("BTCUSDT", "buy", "0.001")
            await sim.wait_private_sent("binance")
            kept = account.trade("BTCUSDT", "buy", "0.002")
            frames = await drain_until(ws, lambda f: f["event"].get("x") == "TRADE")
        trade_ids = [str(e["t"]) for e in _events(frames, "executionReport") if e["x"] == "TRADE"]
        assert trade_ids == [kept.trade_id]
    assert sim.faults_injected["private_drop"] == 2 and sim.faults_injected["drop"] == 0
    ex = _exchange(sim, "binance")
    try:
        rows = await ex.private_get_mytrades({"symbol": "BTCUSDT", "fromId": lost.trade_id})
    finally:
        await ex.close()
    assert [str(r["id"]) for r in rows] == [lost.trade_id, kept.trade_id]


async def test_private_abort_cuts_only_private_connections(sim: SimExchange) -> None:
    async with connect(sim.urls("okx")["ws_private"]) as private, connect(sim.urls("okx")["ws"]) as public:
        await sim.wait_for(lambda: sim.connections("okx") == 2)
        assert await sim.inject(FaultKind.PRIVATE_ABORT, "okx") == 1
        with pytest.raises(ConnectionClosed) as closed:
            await private.recv()
        assert closed.value.rcvd is None  # no close frame: 1006
        await public.send("ping")
        assert await recv_text(public) == "pong"
    assert await sim.inject(FaultKind.PRIVATE_ABORT, "okx") == 0  # nothing to act on: not counted
    assert sim.faults_injected["private_abort"] == 1


# -- OKX private WS ----------------------------------------------------------------------------------


def _okx_login(sim: SimExchange, *, secret: str | None = None, passphrase: str | None = None,
               ts: float | None = None) -> str:
    creds = sim.account("okx").credentials
    stamp = str(int(time.time() if ts is None else ts))
    digest = hmac.new((secret or creds.reveal_secret()).encode(), (stamp + "GET/users/self/verify").encode(),
                      hashlib.sha256).digest()
    return json.dumps({"op": "login", "args": [{"apiKey": creds.api_key, "passphrase": passphrase or creds.passphrase,
                                                "timestamp": stamp, "sign": base64.b64encode(digest).decode()}]})


_SUBSCRIBE = json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"},
                                                     {"channel": "positions", "instType": "ANY"},
                                                     {"channel": "account"}]})


async def _okx_session(sim: SimExchange, ws: ClientConnection) -> None:
    await ws.send(_okx_login(sim))
    assert (await recv_json(ws))["code"] == "0"
    await ws.send(_SUBSCRIBE)
    await drain_until(ws, lambda f: f.get("arg", {}).get("channel") == "account" and "eventType" in f)


async def test_okx_login_errors(sim: SimExchange) -> None:
    async with connect(sim.urls("okx")["ws_private"]) as ws:
        await ws.send(_SUBSCRIBE)
        assert (await recv_json(ws))["code"] == "60011"
        for login, code in ((_okx_login(sim, secret="bad"), "60009"), (_okx_login(sim, passphrase="bad"), "60024"),
                            (_okx_login(sim, ts=time.time() - 120), "60004")):
            await ws.send(login)
            answer = await recv_json(ws)
            assert (answer["event"], answer["code"]) == ("error", code)
        await ws.send("ping")
        assert await recv_text(ws) == "pong"


async def test_okx_private_stream_matches_the_truth(sim: SimExchange) -> None:
    account = sim.account("okx")
    account.trade("BTC-USDT-SWAP", "buy", "4")
    async with connect(sim.urls("okx")["ws_private"]) as ws:
        await ws.send(_okx_login(sim))
        login = await recv_json(ws)
        assert (login["event"], login["code"]) == ("login", "0")
        await ws.send(_SUBSCRIBE)
        frames = await drain_until(ws, lambda f: f.get("arg", {}).get("channel") == "account" and "eventType" in f)
        acks = [f["arg"]["channel"] for f in frames if f.get("event") == "subscribe"]
        assert acks == ["orders", "positions", "account"]
        snapshot = next(f for f in frames if f.get("arg", {}).get("channel") == "positions" and "data" in f)
        assert snapshot["eventType"] == "snapshot" and snapshot["data"][0]["pos"] == "4"
        fill = account.trade("BTC-USDT", "buy", "0.002")
        frames = await drain_until(ws, lambda f: f.get("arg", {}).get("channel") == "orders"
                                   and f["data"][0]["tradeId"] != "")
        row = frames[-1]["data"][0]
        assert (row["instId"], row["tradeId"], row["ordId"], row["state"]) == (
            "BTC-USDT", fill.trade_id, fill.order_id, "filled")
        assert (Decimal(row["fillPx"]), Decimal(row["fillSz"]), -Decimal(row["fillFee"]), row["fillFeeCcy"]) == (
            fill.price, fill.qty, fill.fee, "BTC")
        balances = (await drain_until(ws, lambda f: f.get("arg", {}).get("channel") == "account"))[-1]
        assert {d["ccy"]: Decimal(d["cashBal"]) for d in balances["data"][0]["details"]} == {
            c: account.balances()[c] for c in ("BTC", "USDT")}


async def test_okx_auth_expiry_asks_to_log_in_and_pushes_nothing_more(sim: SimExchange) -> None:
    account = sim.account("okx")
    async with connect(sim.urls("okx")["ws_private"]) as ws:
        await _okx_session(sim, ws)
        assert await sim.inject(FaultKind.AUTH_EXPIRY, "okx") == 1
        assert (await recv_json(ws))["code"] == "60011"
        account.trade("BTC-USDT", "buy", "0.001")
        await sim.wait_private_sent("okx")
        await ws.send("ping")
        assert await recv_text(ws) == "pong"  # FIFO: no push was queued for the expired session
        await _okx_session(sim, ws)
        fill = account.trade("BTC-USDT", "sell", "0.001")
        frames = await drain_until(ws, lambda f: f.get("arg", {}).get("channel") == "orders"
                                   and f["data"][0]["tradeId"] != "")
        assert frames[-1]["data"][0]["tradeId"] == fill.trade_id
