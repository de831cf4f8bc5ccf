"""Coinbase Advanced Trade's private side: JWTs (ours and ccxt's, checked by the same
verifier), the user-host decoder (acks, errors, orders, the connection's ``sequence_num``) and
the REST parsers, on our own samples (``fixtures/private/coinbase``)."""

from __future__ import annotations

import base64
import random
from decimal import Decimal

import ccxt
import orjson
import pytest
from _private_samples import MS, Samples

from bookkeeper.actions import FillCursor
from bookkeeper.adapters import get_account_adapter
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError, UsageError
from bookkeeper.events import OrderStatus, OrderUpdate, PrivateControl, PrivateControlKind
from bookkeeper.sim.venues.coinbase_private import cdp_credentials, check_jwt
from bookkeeper.types import TradeSide

ACCOUNT = get_account_adapter("coinbase")
S = Samples("coinbase", ACCOUNT)
D = Decimal
T0_NS = 1_767_225_600_000 * MS  # 2026-01-01T00:00:00Z
CREDS = cdp_credentials(random.Random("test-coinbase-private"))
NOW_S = 1_767_225_600


def _claims(token: str) -> tuple[dict, dict]:
    head, claims, _ = token.split(".")
    dec = [orjson.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (head, claims)]
    return dec[0], dec[1]


def test_login_subscribes_heartbeats_and_user_each_with_its_own_valid_jwt() -> None:
    frames = [orjson.loads(f) for f in ACCOUNT.login_messages(CREDS, now_ms=NOW_S * 1000 + 250, request_id="7")]
    assert [(f["type"], f["channel"]) for f in frames] == [("subscribe", "heartbeats"), ("subscribe", "user")]
    assert all("product_ids" not in f for f in frames)  # user: every product
    jwts = [f["jwt"] for f in frames]
    assert jwts[0] != jwts[1]
    for jwt in jwts:
        assert check_jwt(jwt, credentials=CREDS, now_s=NOW_S + 1) is None
        header, claims = _claims(jwt)
        assert header["alg"] == "ES256" and header["kid"] == CREDS.api_key and len(header["nonce"]) == 32
        assert claims == {"iss": "cdp", "nbf": NOW_S, "exp": NOW_S + 120, "sub": CREDS.api_key}
    assert {_claims(j)[0]["nonce"] for j in jwts}.__len__() == 2
    text = "".join(ACCOUNT.login_messages(CREDS, now_ms=NOW_S * 1000, request_id="8"))
    assert all(s not in text for s in CREDS.secrets())
    # 2 minutes: refused after expiry, before nbf, and by another key
    assert check_jwt(jwts[1], credentials=CREDS, now_s=NOW_S + 121) == "JWT expired or not yet valid"
    assert check_jwt(jwts[1], credentials=CREDS, now_s=NOW_S - 60) == "JWT expired or not yet valid"
    other = cdp_credentials(random.Random("another key"))
    forged = ApiCredentials(CREDS.api_key, other.reveal_secret())
    bad = orjson.loads(ACCOUNT.login_messages(forged, now_ms=NOW_S * 1000, request_id="9")[1])["jwt"]
    assert check_jwt(bad, credentials=CREDS, now_s=NOW_S + 1) == "bad JWT signature"


def test_ccxt_rest_jwt_passes_the_same_verifier_with_its_uri_claim() -> None:
    # ccxt's own builder (what signs the REST calls): iss coinbase-cloud, aud, iat, uri
    ex = ccxt.coinbase({"apiKey": CREDS.api_key, "secret": CREDS.reveal_secret()})
    token = ex.create_auth_token(NOW_S, "GET", "https://api.coinbase.com/api/v3/brokerage/accounts?limit=250")
    _, claims = _claims(token)
    assert claims["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts" and claims["iss"] == "coinbase-cloud"
    uris = frozenset({"GET api.coinbase.com/api/v3/brokerage/accounts"})
    assert check_jwt(token, credentials=CREDS, now_s=NOW_S + 5, uris=uris) is None
    wrong = frozenset({"GET api.coinbase.com/api/v3/brokerage/orders/historical/fills"})
    assert check_jwt(token, credentials=CREDS, now_s=NOW_S + 5, uris=wrong) == "JWT uri does not name this request"
    # the WebSocket JWT ccxt makes (create_ws_auth: no uri) passes too
    assert check_jwt(ex.create_auth_token(NOW_S), credentials=CREDS, now_s=NOW_S + 5) is None


def test_a_secret_that_is_not_a_p256_pem_key_is_a_usage_error_naming_no_secret() -> None:
    with pytest.raises(UsageError, match="EC P-256") as info:
        ACCOUNT.login_messages(ApiCredentials("organizations/o/apiKeys/k", "hmac-secret-123"), now_ms=0,
                               request_id="1")
    assert "hmac-secret-123" not in str(info.value)


def test_private_url_is_the_user_host_or_its_path_on_a_shared_server() -> None:
    assert ACCOUNT.default_private_ws_root() == "wss://advanced-trade-ws-user.coinbase.com"
    assert ACCOUNT.private_ws_url("wss://advanced-trade-ws-user.coinbase.com/") == \
        "wss://advanced-trade-ws-user.coinbase.com"
    assert ACCOUNT.private_ws_url("wss://advanced-trade-ws.coinbase.com") == "wss://advanced-trade-ws-user.coinbase.com"
    assert ACCOUNT.private_ws_url("ws://127.0.0.1:8001") == "ws://127.0.0.1:8001/advanced-trade-ws-user"


def test_acks_and_errors_map_to_session_control() -> None:
    assert S.decode("ws_subscriptions_heartbeats") == []
    (ok,) = S.decode("ws_subscriptions_user")
    assert isinstance(ok, PrivateControl) and ok.kind is PrivateControlKind.LOGGED_IN and ok.channel == "user"
    assert [e.kind for e in S.decode("ws_error_auth")] == [PrivateControlKind.AUTH_REJECTED]
    assert [e.kind for e in S.decode("ws_error_session_expired")] == [PrivateControlKind.SESSION_EXPIRED]
    assert [e.kind for e in S.decode("ws_error_other")] == [PrivateControlKind.ERROR]
    assert S.decode("ws_heartbeat") == []


def test_user_orders_are_order_updates_with_cumulative_quantity_at_the_envelope_time() -> None:
    (snap,) = S.decode("ws_user_snapshot", ts_recv_ns=9)
    assert snap == OrderUpdate(symbol="BTC-USD", order_id="7d1c7c2e-0a51-4d0e-9a57-3f1f0c9b0001", side=TradeSide.BUY,
                               status=OrderStatus.PARTIALLY_FILLED, qty=D("0.05"), filled_qty=D("0.01"),
                               price=D("61800.5"), client_order_id="bk-0001", ts_exchange_ns=T0_NS + 200 * MS,
                               ts_recv_ns=9)
    (filled,) = S.decode("ws_user_update_filled")
    assert (filled.status, filled.qty, filled.filled_qty, filled.ts_exchange_ns) == (
        OrderStatus.FILLED, D("0.05"), D("0.05"), T0_NS + 2_345 * MS)
    (cancelled,) = S.decode("ws_user_update_market_cancelled")
    assert (cancelled.status, cancelled.side, cancelled.price, cancelled.qty, cancelled.client_order_id) == (
        OrderStatus.CANCELED, TradeSide.SELL, None, D("0.8"), None)


def test_sequence_num_gap_is_a_stream_gap_from_the_last_message_before_it() -> None:
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(S.frame("ws_subscriptions_heartbeats")) == []  # 0
    dec.decode(S.frame("ws_subscriptions_user"))  # 1 at T0 + 100 ms
    events = dec.decode(S.frame("ws_heartbeat"), 4)  # 3: number 2 never arrived
    (gap,) = events
    assert gap.kind is PrivateControlKind.STREAM_GAP and gap.since_ns == T0_NS + 100 * MS and gap.ts_recv_ns == 4
    assert "2 -> 3" not in gap.message and "1 -> 3" in gap.message
    # the gap comes before the frame's own events; a repeated or late number is dropped
    kinds = [type(e) for e in dec.decode(S.frame("ws_user_update_market_cancelled"))]  # 5 after 3
    assert kinds == [PrivateControl, OrderUpdate]
    assert dec.decode(S.frame("ws_user_update_market_cancelled")) == []  # 5 again
    assert dec.decode(S.frame("ws_user_update_filled")) == []  # 4 after 5: late
    # a fresh connection starts counting anew
    assert [type(e) for e in ACCOUNT.new_private_decoder().decode(S.frame("ws_user_update_filled"))] == [OrderUpdate]


def test_a_refused_frame_does_not_advance_the_sequence() -> None:
    dec = ACCOUNT.new_private_decoder()
    dec.decode(S.frame("ws_subscriptions_user"))  # 1
    broken = S.frame("ws_user_snapshot").replace(b'"0.0100"', b'"NaN"')  # 2, refused
    with pytest.raises(AdapterError):
        dec.decode(broken)
    (gap,) = dec.decode(S.frame("ws_heartbeat"))  # 3: 2 is reported as missed
    assert gap.kind is PrivateControlKind.STREAM_GAP


def test_fills_are_keyed_by_entry_id_so_a_self_trade_keeps_both_sides() -> None:
    call = ACCOUNT.fills_call("BTC-USD", cursor=FillCursor(ts_ns=0), since_ms=1_767_225_600_000,
                              until_ms=1_767_225_660_000)
    assert call.method == "v3_private_get_brokerage_orders_historical_fills"
    assert dict(call.params) == {"product_ids": "BTC-USD", "start_sequence_timestamp": "2026-01-01T00:00:00.000Z",
                                 "end_sequence_timestamp": "2026-01-01T00:01:00.000Z", "limit": 250}
    page = ACCOUNT.parse_fills_page(S.body("rest_fills"), call=call, symbol="BTC-USD", ts_recv_ns=3)
    buy, sell, early = page.fills
    assert buy.fill_id != sell.fill_id and buy.fill_id.startswith("4f0b3c5e")  # same trade_id, two fills
    assert (buy.side, buy.price, buy.qty, buy.fee, buy.fee_currency, buy.ts_exchange_ns) == (
        TradeSide.BUY, D("61800.5"), D("0.04"), D("9.88808"), "USD", T0_NS + 2_345 * MS)
    assert (sell.side, sell.order_id) == (TradeSide.SELL, "7d1c7c2e-0a51-4d0e-9a57-3f1f0c9b0003")
    assert early.ts_exchange_ns == T0_NS + 150 * MS
    assert page.next_call is not None and page.next_call.params["cursor"] == "MTc2NzIyNTYwMDE1MHw2YjJk"
    assert {k: v for k, v in page.next_call.params.items() if k != "cursor"} == dict(call.params)
    last = ACCOUNT.parse_fills_page(S.body("rest_fills_last"), call=page.next_call, symbol="ETH-USD")
    assert last.next_call is None
    (quoted,) = last.fills  # size in the quote: base = size / price
    assert quoted.qty == D("100") / D("3050.1") and quoted.fee_currency == "USD"


def test_balances_are_available_plus_hold_marked_by_the_newest_updated_at() -> None:
    assert ACCOUNT.account_mark_call() is None and ACCOUNT.positions_call() is None
    report = ACCOUNT.parse_balances(S.body("rest_accounts"), ts_recv_ns=2)
    assert report.balances == {"USD": D("398765.11"), "BTC": D("3.05")}
    assert report.ts_exchange_ns == T0_NS + 2_345 * MS
    paged = S.body("rest_accounts") | {"has_next": True, "cursor": "x"}
    with pytest.raises(AdapterError, match="needs paging"):
        ACCOUNT.parse_balances(paged)


def test_open_orders_read_size_and_price_from_the_order_configuration() -> None:
    call = ACCOUNT.open_orders_call()
    assert call.params["order_status"] == "OPEN"
    (o,) = ACCOUNT.parse_open_orders(S.body("rest_orders_open"))
    assert o == OrderUpdate(symbol="ETH-USD", order_id="7d1c7c2e-0a51-4d0e-9a57-3f1f0c9b0005", side=TradeSide.SELL,
                            status=OrderStatus.PARTIALLY_FILLED, qty=D("0.8"), filled_qty=D("0.2"), price=D("3049.5"),
                            client_order_id="bk-0005", ts_exchange_ns=T0_NS + 5_000 * MS)
