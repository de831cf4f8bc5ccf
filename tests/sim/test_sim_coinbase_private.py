"""The simulator's Coinbase Advanced Trade private side (spot account): real ccxt against the
JWT-signed REST routes (ccxt's ES256 ``Authorization: Bearer``), raw websockets against the
user host's stream, and the private faults.

Nothing here sleeps to synchronise: frames are awaited with a safety timeout, private sends
with ``sim.wait_private_sent()``.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from websockets.asyncio.client import ClientConnection, connect

from bookkeeper.actions import FillCursor
from bookkeeper.adapters import get_account_adapter
from bookkeeper.adapters.coinbase.private import _b64url, build_jwt
from bookkeeper.sim import FaultKind, SimExchange
from bookkeeper.sim.exchange import ACCOUNT_VENUES
from bookkeeper.sim.venues.coinbase import ns_timestamp
from bookkeeper.sim.venues.coinbase_private import cdp_credentials
from sim_support import drain_until, recv_json

SEED = 13
ADAPTER = get_account_adapter("coinbase")


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with SimExchange(venues=("coinbase",), seed=SEED, paused=True, accounts=("coinbase",)) as s:
        yield s


def _exchange(sim: SimExchange, secret: str | None = None) -> Any:
    creds = sim.account("coinbase").credentials
    return ccxt.coinbase(sim.ccxt_config("coinbase") | {"apiKey": creds.api_key,
                                                         "secret": secret or creds.reveal_secret()})


def _url(sim: SimExchange) -> str:
    return ADAPTER.private_ws_url(sim.urls("coinbase")["ws_root"])


async def _subscribed(sim: SimExchange, ws: ClientConnection, now_ms: int | None = None) -> list[Any]:
    """Send the adapter's login frames; return every frame up to the user snapshot."""
    for frame in ADAPTER.login_messages(sim.account("coinbase").credentials,
                                        now_ms=now_ms or int(time.time() * 1000), request_id="1"):
        await ws.send(frame)
    return await drain_until(ws, lambda f: f.get("channel") == "user" or f.get("type") == "error")


def test_coinbase_is_an_account_venue_with_cdp_keys() -> None:
    assert "coinbase" in ACCOUNT_VENUES
    creds = cdp_credentials(random.Random(1))
    assert creds.api_key.startswith("organizations/") and "/apiKeys/" in creds.api_key
    assert creds.reveal_secret().startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert cdp_credentials(random.Random(1)) == creds  # seeded


async def test_ccxt_signs_with_the_pem_key_and_reads_fills_newest_first_by_cursor(sim: SimExchange) -> None:
    account = sim.account("coinbase")
    fills = [account.trade("BTC-USD", "buy"), account.trade("ETH-USD", "sell"), account.trade("BTC-USD", "sell")]
    order = account.place_order("ETH-USD", "buy", "0.5000", "3000.00")
    ex = _exchange(sim)
    try:
        await ex.load_markets()  # with credentials ccxt also reads the signed transaction_summary
        assert ex.markets_by_id["BTC-USD"][0]["spot"]
        page = await ex.v3_private_get_brokerage_orders_historical_fills({"product_ids": "BTC-USD", "limit": 1})
        assert [f["entry_id"] for f in page["fills"]] == [fills[2].trade_id] and page["cursor"]
        last = await ex.v3_private_get_brokerage_orders_historical_fills(
            {"product_ids": "BTC-USD", "limit": 1, "cursor": page["cursor"]})
        assert [f["entry_id"] for f in last["fills"]] == [fills[0].trade_id] and last["cursor"] == ""
        row = last["fills"][0]
        assert (Decimal(row["size"]), Decimal(row["commission"]), row["side"]) == (fills[0].qty, fills[0].fee, "BUY")
        assert row["trade_id"] != row["entry_id"]
        # start_sequence_timestamp bounds the range (ccxt's fetch_my_trades spelling, product_id)
        since = ADAPTER.fills_call("BTC-USD", cursor=FillCursor(ts_ns=0), since_ms=fills[2].ts_ms,
                                   until_ms=fills[2].ts_ms + 1)
        ranged = await getattr(ex, since.method)(dict(since.params))
        assert [f["entry_id"] for f in ranged["fills"]] == [fills[2].trade_id]
        accounts = await ex.v3_private_get_brokerage_accounts({"limit": 250})
        report = ADAPTER.parse_balances(accounts)
        assert report.balances == account.balances() and report.ts_exchange_ns == account.updated_ms * 1_000_000
        opened = await ex.v3_private_get_brokerage_orders_historical_batch({"order_status": "OPEN"})
        assert [u.order_id for u in ADAPTER.parse_open_orders(opened)] == [order.order_id]
        trades = await ex.fetch_my_trades("BTC/USD")  # ccxt's unified parse reads the same rows
        assert sorted(t["id"] for t in trades) == sorted(f["trade_id"] for f in page["fills"] + last["fills"])
    finally:
        await ex.close()


async def test_rest_refuses_a_jwt_signed_with_another_key(sim: SimExchange) -> None:
    ex = _exchange(sim, secret=cdp_credentials(random.Random("not the key")).reveal_secret())
    try:
        with pytest.raises(ccxt.AuthenticationError):
            await ex.v3_private_get_brokerage_accounts({"limit": 250})
    finally:
        await ex.close()


def _jwt(creds: Any, *, head: dict[str, Any] | None = None, signer: Any = None, **claims: Any) -> str:
    """A JWT for ``creds`` as the adapter builds it, with the header fields ``head`` and the
    claims given (beside sub/iss/nbf/exp) replaced, signed by ``signer``'s key (default: ``creds``)."""
    key = serialization.load_pem_private_key((signer or creds).reveal_secret().encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = int(time.time())
    head = {"alg": "ES256", "kid": creds.api_key, "nonce": "n0", "typ": "JWT"} | (head or {})
    body = {"iss": "cdp", "nbf": now, "exp": now + 120, "sub": creds.api_key} | claims
    signing_input = f"{_b64url(orjson.dumps(head))}.{_b64url(orjson.dumps(body))}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


async def _get(url: str, token: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, orjson.loads(await resp.read())


async def test_hostile_jwt_claims_and_parameters_are_refused_not_a_server_error(sim: SimExchange) -> None:
    creds = sim.account("coinbase").credentials
    rest = sim.urls("coinbase")["rest"]
    path = "/api/v3/brokerage/accounts"
    for claims in ({"uri": ["GET x"]}, {"uri": {"GET x": 1}}, {"uris": 5}, {"uris": [["GET x"]]}):
        status, answer = await _get(rest + path, _jwt(creds, **claims))
        assert (status, answer["error"]) == (401, "unauthorized"), claims
    token = _jwt(creds, uri=f"GET {rest.removeprefix('http://')}{path}")
    assert (await _get(rest + path, token))[0] == 200
    superscript = base64.urlsafe_b64encode("\u00b2".encode()).decode()
    for query in ("limit=%C2%B2", f"cursor={superscript}"):
        status, answer = await _get(f"{rest}{path}?{query}", token)
        assert (status, answer["error"]) == (400, "INVALID_ARGUMENT"), query


_OTHER_KEY = cdp_credentials(random.Random("another CDP key"))
_ACCOUNTS = "/api/v3/brokerage/accounts"
_BAD_TIME = "JWT expired or not yet valid"
_BAD_URI = "JWT uri does not name this request"
#: (id, header fields, claims from (now_s, the request's own ``uri``), signed by another key,
#: the REST 401's ``error_details``, also refused on the WS ``user`` subscribe); each breaks one rule
_REFUSED: list[tuple[str, dict[str, Any], Any, bool, str, bool]] = [
    ("expired", {}, lambda now, uri: {"nbf": now - 100, "exp": now - 1}, False, _BAD_TIME, True),
    ("nbf_beyond_5s_skew", {}, lambda now, uri: {"nbf": now + 30, "exp": now + 90}, False, _BAD_TIME, True),
    ("lifetime_over_2_min", {}, lambda now, uri: {"nbf": now, "exp": now + 121}, False, _BAD_TIME, True),
    ("kid_of_another_key", {"kid": _OTHER_KEY.api_key}, lambda now, uri: {}, False, "bad JWT header", True),
    ("sub_of_another_key", {}, lambda now, uri: {"sub": _OTHER_KEY.api_key}, False,
     "bad JWT subject or issuer", True),
    ("bad_iss", {}, lambda now, uri: {"iss": "coinbase"}, False, "bad JWT subject or issuer", True),
    ("signed_by_another_key", {}, lambda now, uri: {}, True, "bad JWT signature", True),
    ("uri_other_method", {}, lambda now, uri: {"uri": "POST" + uri.removeprefix("GET")}, False, _BAD_URI, False),
    ("uri_other_host", {}, lambda now, uri: {"uri": f"GET api.coinbase.com{_ACCOUNTS}"}, False, _BAD_URI, False),
    ("uri_other_path", {}, lambda now, uri: {"uri": uri.replace("accounts", "orders/historical/fills")}, False,
     _BAD_URI, False),
    ("uri_missing", {}, lambda now, uri: {"uri": None}, False, _BAD_URI, False),
]


async def _refused_user_subscribe(sim: SimExchange, token: str) -> None:
    """The ``user`` subscribe with ``token`` is answered by the auth error and subscribes nothing."""
    async with connect(_url(sim)) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "channel": "user", "jwt": token}).decode())
        assert await recv_json(ws) == {"type": "error", "message": "authentication failure"}
        await ws.send(orjson.dumps({"type": "subscribe", "channel": "heartbeats"}).decode())
        subs = await drain_until(ws, lambda f: f.get("channel") == "subscriptions")
        assert subs[-1]["events"][0]["subscriptions"] == {"heartbeats": ["heartbeats"]}


@pytest.mark.parametrize(("head", "claims", "other_signer", "why", "on_ws"),
                         [case[1:] for case in _REFUSED], ids=[case[0] for case in _REFUSED])
async def test_each_jwt_rule_is_refused_on_rest_and_on_the_user_subscribe(
        sim: SimExchange, head: dict[str, Any], claims: Any, other_signer: bool, why: str, on_ws: bool) -> None:
    creds = sim.account("coinbase").credentials
    rest = sim.urls("coinbase")["rest"]
    uri = f"GET {rest.removeprefix('http://')}{_ACCOUNTS}"
    signer = _OTHER_KEY if other_signer else None
    body = {k: v for k, v in ({"uri": uri} | claims(int(time.time()), uri)).items() if v is not None}
    status, answer = await _get(rest + _ACCOUNTS, _jwt(creds, head=head, signer=signer, **body))
    assert (status, answer) == (401, {"error": "unauthorized", "error_details": why, "message": "Unauthorized"})
    if on_ws:  # the WS JWT names no request (no ``uri``)
        ws_body = {k: v for k, v in claims(int(time.time()), uri).items() if v is not None}
        await _refused_user_subscribe(sim, _jwt(creds, head=head, signer=signer, **ws_body))


async def test_a_jwt_at_the_edges_of_its_rules_is_accepted_on_rest_and_on_the_user_subscribe(sim: SimExchange) -> None:
    """The positive control: nbf within the 5 s skew, a lifetime of exactly 2 minutes, the
    adapter's own REST JWT."""
    creds = sim.account("coinbase").credentials
    rest = sim.urls("coinbase")["rest"]
    uri = f"GET {rest.removeprefix('http://')}{_ACCOUNTS}"
    now = int(time.time())
    edge = {"nbf": now + 4, "exp": now + 124}
    status, answer = await _get(rest + _ACCOUNTS, _jwt(creds, uri=uri, **edge))
    assert status == 200 and answer["accounts"]
    adapter_token = build_jwt(creds, now_s=now, nonce="n1", uri=uri)
    assert (await _get(rest + _ACCOUNTS, adapter_token))[0] == 200
    async with connect(_url(sim)) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "channel": "user", "jwt": _jwt(creds, **edge)}).decode())
        frames = await drain_until(ws, lambda f: f.get("channel") == "user" or f.get("type") == "error")
        assert [f.get("channel") for f in frames] == ["subscriptions", "user"]
        assert frames[0]["events"][0]["subscriptions"] == {"user": []}


async def test_user_subscribe_checks_the_jwt_then_snapshots_open_orders_in_batches_of_50(sim: SimExchange) -> None:
    account = sim.account("coinbase")
    orders = [account.place_order("BTC-USD", "buy", "0.0001", "50000.00") for _ in range(51)]
    async with connect(_url(sim)) as ws:
        frames = await _subscribed(sim, ws, now_ms=1_000_000)  # a JWT from 1970: long expired
        assert frames[-1] == {"type": "error", "message": "authentication failure"}
    async with connect(_url(sim)) as ws:
        frames = await _subscribed(sim, ws)
        assert [f["channel"] for f in frames] == ["subscriptions", "subscriptions", "user"]
        assert frames[1]["events"][0]["subscriptions"] == {"heartbeats": ["heartbeats"], "user": []}
        second = await recv_json(ws)
        batches = [frames[2], second]
        assert [len(b["events"][0]["orders"]) for b in batches] == [50, 1]
        assert {o["order_id"] for b in batches for o in b["events"][0]["orders"]} == {o.order_id for o in orders}
        # numbered across channels from 0
        assert [f["sequence_num"] for f in [*frames, second]] == [0, 1, 2, 3]


async def test_order_updates_carry_cumulative_quantity_and_a_dropped_one_leaves_a_hole(sim: SimExchange) -> None:
    account = sim.account("coinbase")
    async with connect(_url(sim)) as ws:
        frames = await _subscribed(sim, ws)
        last_seq = frames[-1]["sequence_num"]
        order = account.place_order("BTC-USD", "sell", "0.0300", "70000.00")
        update = await drain_until(ws, lambda f: f.get("channel") == "user")
        (row,) = update[-1]["events"][0]["orders"]
        assert (row["status"], row["cumulative_quantity"], row["leaves_quantity"]) == ("OPEN", "0", "0.03")
        assert update[-1]["timestamp"] == ns_timestamp(order.created_ms * 1_000_000)  # the change's own time
        before = update[-1]["sequence_num"]
        assert before > last_seq
        await sim.inject(FaultKind.PRIVATE_DROP.value, "coinbase")
        account.fill_order(order.order_id, "0.0100")  # this update is lost
        account.fill_order(order.order_id)
        await sim.wait_private_sent("coinbase")
        got = await drain_until(ws, lambda f: f.get("channel") == "user")
        (row,) = got[-1]["events"][0]["orders"]
        assert (row["status"], row["cumulative_quantity"], row["leaves_quantity"]) == ("FILLED", "0.03", "0")
        seqs = [f["sequence_num"] for f in got]  # heartbeats may come between: numbered too
        assert len(set(range(before + 1, seqs[-1] + 1)) - set(seqs)) == 1  # the lost one's number
        assert sim.faults_injected["private_drop"] == 1


async def test_auth_expiry_ends_the_user_subscription_until_a_new_jwt(sim: SimExchange) -> None:
    async with connect(_url(sim)) as ws:
        await _subscribed(sim, ws)
        assert await sim.inject(FaultKind.AUTH_EXPIRY.value, "coinbase") == 1
        err = await drain_until(ws, lambda f: f.get("type") == "error")
        assert err[-1]["message"].startswith("user session expired")
        sim.account("coinbase").trade("ETH-USD", "buy")  # no longer pushed
        frames = await _subscribed(sim, ws)  # subscribe again with a fresh JWT
        assert frames[-1]["events"][0]["type"] == "snapshot"
        assert all(f.get("channel") != "user" or f["events"][0]["type"] == "snapshot" for f in frames)

