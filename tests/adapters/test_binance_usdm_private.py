"""Binance USD-M private side (``BINANCE_USDM_ACCOUNT``): the listenKey bootstrap and URL, user
data frames -> exact account events, ``userTrades`` paging (``fromId`` and 7-day slices), the
full-sync REST bodies and their consistency mark, and the calls as ccxt makes them. Samples:
``fixtures/private/binance_usdm`` (our own values)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from bookkeeper.actions import FillCursor
from bookkeeper.adapters import ACCOUNT_VENUES, get_account_adapter
from bookkeeper.adapters.binance.private import SlicedCall
from bookkeeper.adapters.binance.usdm_private import BINANCE_USDM_ACCOUNT
from bookkeeper.capabilities import FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BalanceReport,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
)
from bookkeeper.ports import AccountAdapter, PrivateBootstrap, RestCall
from bookkeeper.testing.conformance import check_decoder_on_garbage
from bookkeeper.types import TradeSide

from _private_samples import DAY_MS, MS, T0, Samples

SAMPLES = Samples("binance_usdm", BINANCE_USDM_ACCOUNT)
frame, body, decode = SAMPLES.frame, SAMPLES.body, SAMPLES.decode
ACCOUNT = BINANCE_USDM_ACCOUNT
CREDS = ApiCredentials("bk-usdm-key-0001", "bk-usdm-secret-4242")
KEY = "c0ffee5a1e7b2d4f6a8c0e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b"
WEEK_MS = 7 * DAY_MS


def _call(method: str, **params: Any) -> RestCall:
    return RestCall(ccxt_id="binanceusdm", method=method, params=params)


# ----------------------------------------------------------------------------- the adapter object
def test_implements_the_account_and_bootstrap_protocols_and_is_registered() -> None:
    assert isinstance(ACCOUNT, AccountAdapter) and isinstance(ACCOUNT, PrivateBootstrap)
    assert get_account_adapter("binance_usdm") is ACCOUNT and "binance_usdm" in ACCOUNT_VENUES
    assert (ACCOUNT.name, ACCOUNT.ccxt_id, ACCOUNT.market_types) == ("binance_usdm", "binanceusdm", ("swap",))
    # the other venues log in with frames: no bootstrap
    assert not any(isinstance(get_account_adapter(v), PrivateBootstrap) for v in ("binance", "okx", "bybit"))


def test_stream_dialogue_figures() -> None:
    assert ACCOUNT.default_private_ws_root() == "wss://fstream.binance.com"
    for root in ("wss://fstream.binance.com", "wss://fstream.binance.com/public", "wss://fstream.binance.com/market/"):
        assert ACCOUNT.private_ws_url(root) == "wss://fstream.binance.com/private/ws", root
    assert ACCOUNT.private_ws_url("ws://127.0.0.1:9001/public") == "ws://127.0.0.1:9001/private/ws"
    # §4.6: the connection lives 24 h, the server pings (websockets answers), PUT every 20 min
    assert (ACCOUNT.session_lifetime_s, ACCOUNT.ping_interval_s, ACCOUNT.keepalive_interval_s) == (86_400.0, None, 1200.0)
    assert ACCOUNT.ping_message() is None
    # the URL authenticates: no login, no subscribe, LOGGED_IN completes the subscription
    assert ACCOUNT.login_messages(CREDS, now_ms=T0, request_id="1") == []
    assert ACCOUNT.subscribe_messages(request_id="2") == [] and ACCOUNT.subscribe_channels() == frozenset()


def test_history_figures() -> None:
    h = ACCOUNT.history
    assert (h.page_size, h.paging, h.retention_ns, h.max_span_ns) == (
        1000, FillPaging.FROM_ID, 180 * DAY_MS * MS, WEEK_MS * MS)


# ----------------------------------------------------------------------------- the listenKey
def test_bootstrap_is_post_listenkey_and_its_answer_names_the_url() -> None:
    assert ACCOUNT.private_bootstrap_call() == _call("fapiprivate_post_listenkey")
    assert ACCOUNT.private_keepalive_call(body("rest_listen_key")) == _call("fapiprivate_put_listenkey")
    for answer in (body("rest_listen_key"), frame("rest_listen_key")):
        assert ACCOUNT.private_url_from_bootstrap("ws://127.0.0.1:9001/public", answer) == (
            f"ws://127.0.0.1:9001/private/ws?listenKey={KEY}")


@pytest.mark.parametrize("answer", [{}, {"listenKey": ""}, {"listenKey": 5}, {"listenKey": "a&events=X"},
                                    {"listenKey": "k" * 129}, body("rest_error"), b"not json", []])
def test_a_malformed_bootstrap_answer_is_an_adapter_error(answer: Any) -> None:
    with pytest.raises(AdapterError):
        ACCOUNT.private_url_from_bootstrap("wss://fstream.binance.com", answer)


# ----------------------------------------------------------------------------- the stream
def test_new_order_is_an_update_without_a_fill() -> None:
    assert decode("ws_order_new") == [OrderUpdate(
        symbol="BTCUSDT", order_id="81000000101", side=TradeSide.BUY, status=OrderStatus.NEW, qty=Decimal("0.250"),
        filled_qty=Decimal(0), price=Decimal("61800.0"), client_order_id="bk-usdm-0001",
        ts_exchange_ns=1767225600009 * MS, ts_recv_ns=5)]


def test_trade_is_a_fill_keyed_by_trade_id_then_the_cumulative_update() -> None:
    fill, update = decode("ws_order_trade_partial")
    assert fill == Fill(symbol="BTCUSDT", fill_id="5600000201", order_id="81000000101", side=TradeSide.BUY,
                        price=Decimal("61800.0"), qty=Decimal("0.100"), fee=Decimal("1.23600000"), fee_currency="USDT",
                        ts_exchange_ns=1767225601019 * MS, ts_recv_ns=5, realized_pnl=Decimal(0))
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.filled_qty, update.qty) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.100"),
                                                              Decimal("0.250"))


def test_closing_trade_carries_the_venues_realized_pnl_and_a_market_order_has_no_price() -> None:
    fill, update = decode("ws_order_trade_close")
    assert isinstance(fill, Fill) and isinstance(update, OrderUpdate)
    assert (fill.side, fill.qty, fill.price, fill.realized_pnl, fill.fee) == (
        TradeSide.SELL, Decimal("1.500"), Decimal("3061.25"), Decimal("16.87500000"), Decimal("2.29593750"))
    assert (update.status, update.price) == (OrderStatus.FILLED, None)


def test_canceled_order_keeps_its_cumulative_quantity() -> None:
    (update,) = decode("ws_order_canceled")
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.filled_qty, update.ts_exchange_ns) == (
        OrderStatus.CANCELED, Decimal("0.100"), 1767225603040 * MS)


def test_account_update_is_the_changed_wallet_balances_and_signed_positions() -> None:
    balances, position = decode("ws_account_update")
    assert balances == BalanceReport(balances={"USDT": Decimal("120014.57906250")},
                                     ts_exchange_ns=1767225602030 * MS, ts_recv_ns=5)
    assert position == PositionReport(symbol="ETHUSDT", qty=Decimal("-0.500"), avg_entry_price=Decimal("3072.5"),
                                      ts_exchange_ns=1767225602030 * MS, ts_recv_ns=5)


def test_listen_key_expired_is_session_expired_with_a_string_or_number_time() -> None:
    expected = [PrivateControl(kind=PrivateControlKind.SESSION_EXPIRED, message="listenKeyExpired", ts_recv_ns=5)]
    assert decode("ws_listen_key_expired") == expected
    as_number = orjson.dumps(body("ws_listen_key_expired") | {"E": T0})
    assert ACCOUNT.new_private_decoder().decode(as_number, 5) == expected


def test_combined_stream_form_is_unwrapped_and_other_frames_yield_nothing() -> None:
    dec = ACCOUNT.new_private_decoder()
    wrapped = orjson.dumps({"stream": KEY, "data": body("ws_order_new")})
    assert dec.decode(wrapped, 5) == decode("ws_order_new")
    for other in (frame("ws_trade_lite"), b'{"result":null,"id":1}', b'{"error":{"code":2,"msg":"Invalid request"}}',
                  b'{"e":"MARGIN_CALL","E":1}', b'{"e":"ACCOUNT_CONFIG_UPDATE","E":1}'):
        assert dec.decode(other, 5) == [], other


@pytest.mark.parametrize("mutation", [
    ("o", "t", 0),  # a trade without a trade id
    ("o", "z", "0.300"),  # cumulative above the order quantity
    ("o", "X", "NEW_ADL"),  # a liquidation status: refused, REST repairs it
    ("o", "S", "LONG"),
    ("o", "l", "1e999"),
    ("o", "n", 1.2),  # a JSON number where Binance writes a string
    ("o", "L", "\u0666\u0661\u0668\u0661\u0662.\u0665"),  # another script's digits: Decimal() takes them
    ("o", "l", "\u00b2"),  # a superscript: str.isdigit() says digit, Decimal() refuses it
    ("o", "ps", "LONG"),  # hedge mode: the ledger is net
])
def test_malformed_order_updates_are_refused(mutation: tuple[str, str, Any]) -> None:
    outer, key, value = mutation
    event = body("ws_order_trade_partial")
    event[outer][key] = value
    with pytest.raises(AdapterError):
        ACCOUNT.new_private_decoder().decode(orjson.dumps(event), 5)


def test_hedge_mode_positions_are_refused() -> None:
    event = body("ws_account_update")
    event["a"]["P"][0]["ps"] = "SHORT"
    with pytest.raises(AdapterError, match="one-way"):
        ACCOUNT.new_private_decoder().decode(orjson.dumps(event), 5)


def test_liquidation_execution_with_a_trade_id_is_a_fill() -> None:
    event = body("ws_order_trade_close")
    event["o"] |= {"x": "CALCULATED", "c": "autoclose-1767225602030"}
    fill, _ = ACCOUNT.new_private_decoder().decode(orjson.dumps(event), 5)
    assert isinstance(fill, Fill) and fill.fill_id == "5600000311"


def test_decoder_survives_garbage_with_typed_errors() -> None:
    check_decoder_on_garbage(ACCOUNT.new_private_decoder())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fills history
def test_fills_call_pages_by_trade_id_or_starts_a_seven_day_slice() -> None:
    assert ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS, trade_id="5600000201"), since_ms=0,
                              until_ms=T0) == _call("fapiprivate_get_usertrades", symbol="BTCUSDT",
                                                    fromId=5600000202, limit=1000)
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS), since_ms=T0, until_ms=T0 + 10 * DAY_MS)
    assert isinstance(call, SlicedCall) and call.until_ms == T0 + 10 * DAY_MS
    assert dict(call.params) == {"symbol": "BTCUSDT", "startTime": T0, "endTime": T0 + WEEK_MS, "limit": 1000}


def test_a_short_fromid_page_ends_the_replay_and_a_full_one_continues_after_its_last_id() -> None:
    call = _call("fapiprivate_get_usertrades", symbol="BTCUSDT", fromId=5600000201, limit=1000)
    page = ACCOUNT.parse_fills_page(body("rest_user_trades"), call=call, symbol="BTCUSDT", ts_recv_ns=5)
    assert page.next_call is None
    first, second = page.fills
    assert (first.fill_id, first.side, first.fee, first.realized_pnl) == (
        "5600000201", TradeSide.BUY, Decimal("1.23600000"), Decimal(0))
    assert (second.fill_id, second.side, second.price, second.realized_pnl, second.ts_exchange_ns) == (
        "5600000202", TradeSide.SELL, Decimal("61812.5"), Decimal("1.25000000"), 1767225604500 * MS)
    full = _call("fapiprivate_get_usertrades", symbol="BTCUSDT", fromId=5600000201, limit=2)
    more = ACCOUNT.parse_fills_page(frame("rest_user_trades"), call=full, symbol="BTCUSDT")
    assert more.next_call == _call("fapiprivate_get_usertrades", symbol="BTCUSDT", fromId=5600000203, limit=2)


def test_slices_walk_seven_days_at_a_time_until_the_range_is_covered() -> None:
    until = T0 + 10 * DAY_MS
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=T0, until_ms=until)
    page = ACCOUNT.parse_fills_page(b"[]", call=call, symbol="BTCUSDT")
    nxt = page.next_call
    assert isinstance(nxt, SlicedCall) and dict(nxt.params) == {
        "symbol": "BTCUSDT", "startTime": T0 + WEEK_MS + 1, "endTime": until, "limit": 1000}
    assert ACCOUNT.parse_fills_page(b"[]", call=nxt, symbol="BTCUSDT").next_call is None
    # a full page inside a slice switches to fromId paging (gapless; never combined with times)
    small = SlicedCall(ccxt_id="binanceusdm", method=call.method, params={**call.params, "limit": 2}, until_ms=until)
    switched = ACCOUNT.parse_fills_page(body("rest_user_trades"), call=small, symbol="BTCUSDT").next_call
    assert switched == _call("fapiprivate_get_usertrades", symbol="BTCUSDT", fromId=5600000203, limit=2)


def test_hedge_mode_trades_and_malformed_rows_are_refused() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0, trade_id="1"), since_ms=0, until_ms=1)
    rows = body("rest_user_trades")
    for key, value in (("positionSide", "LONG"), ("id", -1), ("qty", 0.1), ("side", "BOTH")):
        bad = [dict(rows[0], **{key: value})]
        with pytest.raises(AdapterError):
            ACCOUNT.parse_fills_page(bad, call=call, symbol="BTCUSDT")
    with pytest.raises(AdapterError):
        ACCOUNT.parse_fills_page(body("rest_error"), call=call, symbol="BTCUSDT")


# ----------------------------------------------------------------------------- full sync
def test_balances_are_wallet_balances_marked_at_the_newest_update_time() -> None:
    report = ACCOUNT.parse_balances(frame("rest_account_v3"), ts_recv_ns=5)
    assert report == BalanceReport(balances={"USDT": Decimal("120014.57906250"), "BNB": Decimal(0)},
                                   ts_exchange_ns=1767225602030 * MS, ts_recv_ns=5)
    assert ACCOUNT.balances_call() == _call("fapiprivatev3_get_account")
    assert ACCOUNT.account_mark_call() is None
    with pytest.raises(AdapterError):
        ACCOUNT.parse_account_mark(body("rest_account_v3"))
    with pytest.raises(AdapterError):
        ACCOUNT.parse_balances(body("rest_error"))


def test_positions_are_signed_and_flat_rows_are_zero() -> None:
    assert ACCOUNT.positions_call() == _call("fapiprivatev3_get_positionrisk")
    short, flat = ACCOUNT.parse_positions(body("rest_position_risk"), ts_recv_ns=5)
    assert short == PositionReport(symbol="ETHUSDT", qty=Decimal("-0.500"), avg_entry_price=Decimal("3072.5"),
                                   ts_exchange_ns=1767225602030 * MS, ts_recv_ns=5)
    assert (flat.symbol, flat.qty, flat.avg_entry_price) == ("BTCUSDT", Decimal(0), None)
    hedged = [dict(body("rest_position_risk")[0], positionSide="SHORT")]
    with pytest.raises(AdapterError, match="one-way"):
        ACCOUNT.parse_positions(hedged)


def test_open_orders() -> None:
    assert ACCOUNT.open_orders_call() == _call("fapiprivate_get_openorders")
    (order,) = ACCOUNT.parse_open_orders(body("rest_open_orders"), ts_recv_ns=5)
    assert order == OrderUpdate(symbol="BTCUSDT", order_id="81000000101", side=TradeSide.BUY,
                                status=OrderStatus.PARTIALLY_FILLED, qty=Decimal("0.250"), filled_qty=Decimal("0.100"),
                                price=Decimal("61800.0"), client_order_id="bk-usdm-0001",
                                ts_exchange_ns=1767225601019 * MS, ts_recv_ns=5)


# ----------------------------------------------------------------------------- ccxt
def test_rest_calls_are_ccxt_implicit_methods() -> None:
    import ccxt.async_support as ccxt_async

    exchange = getattr(ccxt_async, ACCOUNT.ccxt_id)()
    calls = [ACCOUNT.balances_call(), ACCOUNT.positions_call(), ACCOUNT.open_orders_call(),
             ACCOUNT.private_bootstrap_call(), ACCOUNT.private_keepalive_call({}),
             ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=0, until_ms=1)]
    for call in calls:
        assert call is not None and callable(getattr(exchange, call.method)), call


def test_ccxt_sends_the_listenkey_with_the_key_header_only_and_signs_the_rest() -> None:
    import hashlib
    import hmac

    import ccxt

    config = ACCOUNT.ccxt_config_for("http://127.0.0.1:8124/")
    exchange = ccxt.binanceusdm({**config, **CREDS.ccxt_config()})
    for method in ("POST", "PUT"):
        signed = exchange.sign("listenKey", ["fapiPrivate"], method, {})
        assert signed["url"] == "http://127.0.0.1:8124/fapi/v1/listenKey"
        assert signed["headers"]["X-MBX-APIKEY"] == CREDS.api_key and not signed["body"]
    for api, path, version in (("fapiPrivate", "userTrades", "v1"), ("fapiPrivateV3", "account", "v3"),
                               ("fapiPrivateV3", "positionRisk", "v3"), ("fapiPrivate", "openOrders", "v1")):
        signed = exchange.sign(path, [api], "GET", {"symbol": "BTCUSDT"})
        base, query = signed["url"].split("?")
        assert base == f"http://127.0.0.1:8124/fapi/{version}/{path}"
        payload, signature = query.rsplit("&signature=", 1)
        assert payload.startswith("timestamp=") and "symbol=BTCUSDT" in payload
        assert signature == hmac.new(CREDS.reveal_secret().encode(), payload.encode(), hashlib.sha256).hexdigest()
