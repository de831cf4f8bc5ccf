"""OKX private side (``OKX_ACCOUNT``): ``/ws/v5/private`` frames -> exact account events (fees
negated to "positive when charged"), the login sign as ccxt computes it, ``fills-history``
paging by ``after=billId``, and the full-sync REST bodies. Samples: ``fixtures/private/okx``
(our own values)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bookkeeper.actions import FillCursor
from bookkeeper.adapters import get_account_adapter
from bookkeeper.adapters.okx.private import OKX_ACCOUNT, inst_type
from bookkeeper.capabilities import FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError, UsageError
from bookkeeper.events import (
    BalanceReport,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
)
from bookkeeper.ports import AccountAdapter, FillsPage, RestCall
from bookkeeper.testing.conformance import check_decoder_on_garbage
from bookkeeper.types import TradeSide

from _private_samples import DAY_MS, MS, T0, Samples

SAMPLES = Samples("okx", OKX_ACCOUNT)
FIXTURES = SAMPLES.dir
frame, body, decode = SAMPLES.frame, SAMPLES.body, SAMPLES.decode
ACCOUNT = OKX_ACCOUNT
CREDS = ApiCredentials("bk-okx-key-0001", "bk-okx-secret-7777", passphrase="bk-pass-42")



def control(kind: PrivateControlKind, **kw: Any) -> PrivateControl:
    return PrivateControl(kind=kind, ts_recv_ns=5, **kw)


# ----------------------------------------------------------------------------- the adapter object
def test_implements_the_account_adapter_protocol_and_is_registered() -> None:
    assert isinstance(ACCOUNT, AccountAdapter)
    assert get_account_adapter("okx") is ACCOUNT
    assert (ACCOUNT.name, ACCOUNT.ccxt_id) == ("okx", "okx")


def test_stream_dialogue_figures() -> None:
    assert ACCOUNT.default_private_ws_root() == "wss://ws.okx.com:8443"
    assert ACCOUNT.private_ws_url("ws://127.0.0.1:9001/") == "ws://127.0.0.1:9001/ws/v5/private"
    assert ACCOUNT.session_lifetime_s is None  # none documented (§5.5)
    assert ACCOUNT.ping_message() == "ping"
    assert (ACCOUNT.ping_interval_s, ACCOUNT.pong_timeout_s) == (15.0, 8.0)  # as the public OKX spec
    assert ACCOUNT.subscribe_channels() == frozenset({"orders", "positions", "account"})
    (sub,) = ACCOUNT.subscribe_messages(request_id="3")
    assert orjson.loads(sub) == {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"},
                                                             {"channel": "positions", "instType": "ANY"},
                                                             {"channel": "account"}]}


def test_history_figures() -> None:
    h = ACCOUNT.history
    assert (h.page_size, h.paging, h.retention_ns, h.max_span_ns) == (100, FillPaging.TIME_RANGE,
                                                                       90 * DAY_MS * MS, None)


# ----------------------------------------------------------------------------- login
def test_login_frame_signs_seconds_get_and_the_verify_path() -> None:
    (text,) = ACCOUNT.login_messages(CREDS, now_ms=T0 + 999, request_id="1")
    (arg,) = orjson.loads(text)["args"]
    assert orjson.loads(text)["op"] == "login"
    assert arg == {"apiKey": CREDS.api_key, "passphrase": "bk-pass-42", "timestamp": "1767225600",
                   # base64(HMAC_SHA256(secret, "1767225600GET/users/self/verify")), pinned (openssl agrees)
                   "sign": "OiTG2MTAW/ilhbW8ErmyHCFrB6+j+ZqjnvdD4JtM/Wo="}
    assert CREDS.reveal_secret() not in text


def test_login_frame_matches_ccxt_pro_authenticate() -> None:
    """ccxt's own ``authenticate`` (pro/okx.py) with the same credentials and clock sends the
    same frame."""
    import ccxt.pro

    sent: list[dict[str, Any]] = []

    async def run() -> None:
        ex = ccxt.pro.okx({"apiKey": CREDS.api_key, "secret": CREDS.reveal_secret(), "password": CREDS.passphrase})
        ex.seconds = lambda: T0 // 1000

        def watch(url: str, message_hash: str, request: dict[str, Any], *args: Any) -> None:
            sent.append(request)
            ex.client(url).resolve(True, message_hash)  # answer as the venue would: logged in

        ex.watch = watch
        try:
            await asyncio.wait_for(ex.authenticate(), 5)
        finally:
            await ex.close()

    asyncio.run(run())
    (ours,) = ACCOUNT.login_messages(CREDS, now_ms=T0, request_id="1")
    assert sent == [orjson.loads(ours)]


def test_login_needs_a_passphrase() -> None:
    with pytest.raises(UsageError, match="passphrase"):
        ACCOUNT.login_messages(ApiCredentials("k", "s"), now_ms=T0, request_id="1")


# ----------------------------------------------------------------------------- control frames
def test_login_subscribe_and_pong() -> None:
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(frame("ws_login_ok"), 5) == [control(PrivateControlKind.LOGGED_IN)]
    assert dec.decode(frame("ws_subscribed_orders"), 5) == [control(PrivateControlKind.SUBSCRIBED, channel="orders")]
    assert dec.decode(frame("ws_subscribed_account"), 5) == [control(PrivateControlKind.SUBSCRIBED, channel="account")]
    assert dec.decode(b"pong") == [] and dec.decode("pong") == []


@pytest.mark.parametrize(("name", "code"), [
    ("ws_login_failed", "60009"), ("ws_unknown_key", "60005"), ("ws_wrong_passphrase", "60024"),
    ("ws_invalid_timestamp", "60004"),
])  # fmt: skip
def test_credential_refusals_are_auth_rejected_with_the_venue_code(name: str, code: str) -> None:
    assert decode(name) == [control(PrivateControlKind.AUTH_REJECTED, code=code, message=body(name)["msg"])]


def test_please_log_in_after_a_login_is_session_expiry_and_before_it_an_error() -> None:
    dec = ACCOUNT.new_private_decoder()
    early = control(PrivateControlKind.ERROR, code="60011", message="Please log in")
    assert dec.decode(frame("ws_please_log_in"), 5) == [early]  # subscribed before logging in
    dec.decode(frame("ws_login_ok"), 5)
    assert dec.decode(frame("ws_please_log_in"), 5) == [
        control(PrivateControlKind.SESSION_EXPIRED, code="60011", message="Please log in")]
    # the session is over: another one is an error again until the next login
    assert dec.decode(frame("ws_please_log_in"), 5) == [early]
    # and the memory is per connection
    other = ACCOUNT.new_private_decoder()
    assert other.decode(frame("ws_please_log_in"), 5) == [early]


def test_other_errors_and_notices() -> None:
    assert decode("ws_too_frequent") == [control(PrivateControlKind.ERROR, code="60014",
                                                 message="Requests too frequent.")]
    assert decode("ws_notice_upgrade") == [control(PrivateControlKind.SHUTDOWN_NOTICE, code="64008",
                                                   message=body("ws_notice_upgrade")["msg"])]
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(b'{"event":"unsubscribe","arg":{"channel":"orders","instType":"ANY"}}') == []
    assert dec.decode(b'{"event":"channel-conn-count","channel":"orders","connCount":"2","connId":"x"}') == []
    assert dec.decode(b'{"arg":{"channel":"balance_and_position","uid":"1"},"data":[{}]}') == []


# ----------------------------------------------------------------------------- pushes
def test_live_order_is_an_update_without_fill() -> None:
    assert decode("ws_orders_live") == [
        OrderUpdate(symbol="BTC-USDT-SWAP", order_id="3100000000000000001", side=TradeSide.BUY, status=OrderStatus.NEW,
                    qty=Decimal("12"), filled_qty=Decimal(0), price=Decimal("87210.5"), client_order_id="bkswap1",
                    ts_exchange_ns=1767225600000 * MS, ts_recv_ns=5)]


def test_swap_partial_fill_negates_the_charged_fee() -> None:
    assert decode("ws_orders_swap_partial_fill") == [
        Fill(symbol="BTC-USDT-SWAP", fill_id="610000021", order_id="3100000000000000001", side=TradeSide.BUY,
             price=Decimal("87210.5"), qty=Decimal("5"), fee=Decimal("0.0872105"), fee_currency="USDT",
             ts_exchange_ns=1767225601000 * MS, ts_recv_ns=5, realized_pnl=Decimal("0")),
        OrderUpdate(symbol="BTC-USDT-SWAP", order_id="3100000000000000001", side=TradeSide.BUY,
                    status=OrderStatus.PARTIALLY_FILLED, qty=Decimal("12"), filled_qty=Decimal("5"),
                    price=Decimal("87210.5"), client_order_id="bkswap1", ts_exchange_ns=1767225601002 * MS,
                    ts_recv_ns=5),
    ]


def test_spot_market_buy_pays_its_fee_in_the_base_currency() -> None:
    fill, update = decode("ws_orders_spot_buy_filled")
    assert fill == Fill(symbol="BTC-USDT", fill_id="620000444", order_id="3100000000000000002", side=TradeSide.BUY,
                        price=Decimal("87199.9"), qty=Decimal("0.015"), fee=Decimal("0.000015"), fee_currency="BTC",
                        ts_exchange_ns=1767225700100 * MS, ts_recv_ns=5)
    assert update == OrderUpdate(symbol="BTC-USDT", order_id="3100000000000000002", side=TradeSide.BUY,
                                 status=OrderStatus.FILLED, qty=Decimal("0.015"), filled_qty=Decimal("0.015"),
                                 price=None, client_order_id=None, ts_exchange_ns=1767225700101 * MS, ts_recv_ns=5)


def test_maker_rebate_is_a_negative_fee() -> None:
    fill, _ = decode("ws_orders_maker_rebate")
    assert isinstance(fill, Fill)
    assert (fill.side, fill.fee, fill.fee_currency) == (TradeSide.SELL, Decimal("-0.00873"), "USDT")


def test_canceled_order() -> None:
    assert decode("ws_orders_canceled") == [
        OrderUpdate(symbol="BTC-USDT", order_id="3100000000000000004", side=TradeSide.BUY, status=OrderStatus.CANCELED,
                    qty=Decimal("0.2"), filled_qty=Decimal(0), price=Decimal("85000.1"), client_order_id="bkspot9",
                    ts_exchange_ns=1767225900000 * MS, ts_recv_ns=5)]


def test_positions_push_is_signed_contracts() -> None:
    assert decode("ws_positions_snapshot") == [
        PositionReport(symbol="BTC-USDT-SWAP", qty=Decimal("-7"), avg_entry_price=Decimal("87105.2"),
                       ts_exchange_ns=1767225601002 * MS, ts_recv_ns=5)]
    assert decode("ws_positions_flat") == [
        PositionReport(symbol="BTC-USDT-SWAP", qty=Decimal(0), avg_entry_price=None, ts_exchange_ns=1767226000000 * MS,
                       ts_recv_ns=5)]


def test_long_short_mode_rows_are_signed_by_side() -> None:
    obj = body("ws_positions_snapshot")
    obj["data"][0].update(posSide="short", pos="7")
    (report,) = ACCOUNT.new_private_decoder().decode(orjson.dumps(obj))
    assert report.qty == Decimal("-7")


def test_account_push_is_a_balance_report_of_cash_balances() -> None:
    assert decode("ws_account_snapshot") == [
        BalanceReport(balances={"USDT": Decimal("98123.4567"), "BTC": Decimal("0.039985")},
                      ts_exchange_ns=1767225700101 * MS, ts_recv_ns=5)]


@pytest.mark.parametrize(("patch", "why"), [
    ({"fillSz": 5}, "number where OKX writes a string"),
    ({"fillFee": "NaN"}, "NaN fee"),
    ({"fillPx": ""}, "fill without price"),
    ({"fillPx": "0"}, "zero fill price"),
    ({"fillSz": "-5"}, "negative fill size"),
    ({"accFillSz": "13"}, "cumulative above the order size"),
    ({"state": "exploded"}, "unknown state"),
    ({"side": "long"}, "unknown side"),
    ({"uTime": "17672256010.5"}, "fractional ms"),
    ({"fillTime": 1.5}, "float time"),
    ({"ordId": 3100000000000000001}, "order id as a number"),
    ({"sz": "1e999999"}, "absurd exponent"),
])  # fmt: skip
def test_malformed_order_pushes_raise_adapter_error(patch: dict[str, Any], why: str) -> None:
    obj = body("ws_orders_swap_partial_fill")
    obj["data"][0].update(patch)
    with pytest.raises(AdapterError) as info:
        ACCOUNT.new_private_decoder().decode(orjson.dumps(obj))
    assert info.value.exchange == "okx", why


@pytest.mark.parametrize("raw", [
    b"{", b"pong!", b"[]", b"null", b'{"event":1}', b'{"event":"subscribe","arg":{}}', b'{"arg":[1],"data":[]}',
    b'{"arg":{"channel":["orders"]},"data":[]}', b'{"arg":{"channel":"orders"},"data":{}}',
    b'{"arg":{"channel":"orders"},"data":[1]}', b'{"arg":{"channel":"account"},"data":[{"details":{}}]}',
    b'{"arg":{"channel":"positions"},"data":[{"instId":"X","pos":"1","posSide":"both"}]}',
    b'{"arg":{"channel":"orders"},"data":' + b"[" * 900 + b"]" * 900 + b"}",
])  # fmt: skip
def test_malformed_frames_raise_adapter_error(raw: bytes) -> None:
    with pytest.raises(AdapterError) as info:
        ACCOUNT.new_private_decoder().decode(raw)
    assert info.value.exchange == "okx"
    assert len(info.value.excerpt) <= 200


def test_garbage_frames_give_nothing_or_adapter_error() -> None:
    check_decoder_on_garbage(ACCOUNT.new_private_decoder())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fills history
def test_inst_type_from_the_instrument_id() -> None:
    assert (inst_type("BTC-USDT-SWAP"), inst_type("BTC-USDT")) == ("SWAP", "SPOT")


def test_fills_history_page_is_parsed_exactly() -> None:
    call = ACCOUNT.fills_call("BTC-USDT-SWAP", cursor=FillCursor(ts_ns=T0 * MS, trade_id="610000017"),
                              since_ms=T0 - 60_000, until_ms=T0 + DAY_MS)
    assert call == RestCall(ccxt_id="okx", method="private_get_trade_fills_history",
                            params={"instType": "SWAP", "instId": "BTC-USDT-SWAP", "begin": T0 - 60_000,
                                    "end": T0 + DAY_MS, "limit": 100})
    page = ACCOUNT.parse_fills_page(body("rest_fills_history"), call=call, symbol="BTC-USDT-SWAP", ts_recv_ns=9)
    assert page == FillsPage(next_call=None, fills=(
        Fill(symbol="BTC-USDT-SWAP", fill_id="610000030", order_id="3100000000000000003", side=TradeSide.SELL,
             price=Decimal("87300"), qty=Decimal("2"), fee=Decimal("-0.00873"), fee_currency="USDT",
             ts_exchange_ns=1767225800000 * MS, ts_recv_ns=9, realized_pnl=Decimal("0.39")),
        Fill(symbol="BTC-USDT-SWAP", fill_id="610000021", order_id="3100000000000000001", side=TradeSide.BUY,
             price=Decimal("87210.5"), qty=Decimal("5"), fee=Decimal("0.0872105"), fee_currency="USDT",
             ts_exchange_ns=1767225601000 * MS, ts_recv_ns=9, realized_pnl=Decimal("0")),
        Fill(symbol="BTC-USDT-SWAP", fill_id="610000017", order_id="3100000000000000000", side=TradeSide.SELL,
             price=Decimal("87150.1"), qty=Decimal("1"), fee=Decimal("0.01743002"), fee_currency="USDT",
             ts_exchange_ns=1767225500000 * MS, ts_recv_ns=9, realized_pnl=Decimal("0")),
    ))
    raw = frame("rest_fills_history")
    assert ACCOUNT.parse_fills_page(raw, call=call, symbol="BTC-USDT-SWAP", ts_recv_ns=9) == page
    # the stream's fill and the history's are the same event (same id, fee sign, time)
    assert decode("ws_orders_swap_partial_fill", 9)[0] == page.fills[1]


def fill_row(bill: int, trade: int, *, inst: str = "BTC-USDT") -> dict[str, Any]:
    return {"instType": inst_type(inst), "instId": inst, "tradeId": str(trade), "ordId": "31", "clOrdId": "",
            "billId": str(bill), "subType": "1", "tag": "", "side": "buy", "posSide": "net", "fillSz": "0.001",
            "fillPx": "87000", "fillPnl": "0", "execType": "T", "fee": "-0.000001", "feeCcy": "BTC",
            "ts": str(T0 + trade), "fillTime": str(T0 + trade)}


def test_full_pages_continue_to_older_rows_after_the_smallest_bill_id() -> None:
    call = ACCOUNT.fills_call("BTC-USDT", cursor=FillCursor(ts_ns=T0 * MS), since_ms=T0, until_ms=T0 + 3 * DAY_MS)
    assert call.params == {"instType": "SPOT", "instId": "BTC-USDT", "begin": T0, "end": T0 + 3 * DAY_MS, "limit": 100}
    # billIds 8000000199 down to 8000000100: newest first, as OKX answers
    newest = [fill_row(8_000_000_000 + i, 500 + i) for i in range(199, 99, -1)]
    page = ACCOUNT.parse_fills_page({"code": "0", "msg": "", "data": newest}, call=call, symbol="BTC-USDT")
    assert len(page.fills) == 100
    assert page.next_call == RestCall(ccxt_id="okx", method="private_get_trade_fills_history",
                                      params={**call.params, "after": "8000000100"})
    older = [fill_row(8_000_000_000 + i, 500 + i) for i in range(99, 59, -1)]
    last = ACCOUNT.parse_fills_page({"code": "0", "msg": "", "data": older}, call=page.next_call, symbol="BTC-USDT")
    assert len(last.fills) == 40 and last.next_call is None
    assert ACCOUNT.parse_fills_page({"code": "0", "msg": "", "data": []}, call=call, symbol="BTC-USDT") == FillsPage(
        fills=(), next_call=None)


@pytest.mark.parametrize("bad", [
    {"code": "50113", "msg": "Invalid Sign", "data": []}, {"code": 0, "data": []}, {"data": []}, [],
    {"code": "0", "data": [{"tradeId": "1"}]}, {"code": "0", "data": [dict(fill_row(1, 1), tradeId="")]},
    {"code": "0", "data": [dict(fill_row(1, 1), fee=-0.1)]}, b'{"code":"0","data":' + b"[" * 900 + b"]" * 900 + b"}",
    {"code": "0", "data": [dict(fill_row(i, i), billId="x") for i in range(100)]},
])  # fmt: skip
def test_malformed_fills_history_raise_adapter_error(bad: Any) -> None:
    call = ACCOUNT.fills_call("BTC-USDT", cursor=FillCursor(ts_ns=0), since_ms=0, until_ms=1)
    with pytest.raises(AdapterError) as info:
        ACCOUNT.parse_fills_page(bad, call=call, symbol="BTC-USDT")
    assert info.value.exchange == "okx"


# ----------------------------------------------------------------------------- full sync
def test_balances_are_cash_balances_as_of_the_account_time() -> None:
    assert ACCOUNT.balances_call() == RestCall(ccxt_id="okx", method="private_get_account_balance", params={})
    assert ACCOUNT.parse_balances(body("rest_balance"), ts_recv_ns=3) == BalanceReport(
        balances={"USDT": Decimal("98124.1234"), "BTC": Decimal("0.039985"), "ETH": Decimal(0)},
        ts_exchange_ns=1767225800001 * MS, ts_recv_ns=3)


def test_positions_are_signed_contracts() -> None:
    assert ACCOUNT.positions_call() == RestCall(ccxt_id="okx", method="private_get_account_positions",
                                                params={"instType": "SWAP"})
    assert ACCOUNT.parse_positions(body("rest_positions"), ts_recv_ns=3) == [
        PositionReport(symbol="BTC-USDT-SWAP", qty=Decimal("-9"), avg_entry_price=Decimal("87105.2"),
                       ts_exchange_ns=1767225800001 * MS, ts_recv_ns=3)]


def test_open_orders_are_parsed_exactly() -> None:
    assert ACCOUNT.open_orders_call() == RestCall(ccxt_id="okx", method="private_get_trade_orders_pending", params={})
    assert ACCOUNT.parse_open_orders(body("rest_orders_pending"), ts_recv_ns=4) == [
        OrderUpdate(symbol="BTC-USDT-SWAP", order_id="3100000000000000001", side=TradeSide.BUY,
                    status=OrderStatus.PARTIALLY_FILLED, qty=Decimal("12"), filled_qty=Decimal("5"),
                    price=Decimal("87210.5"), client_order_id="bkswap1", ts_exchange_ns=1767225601002 * MS,
                    ts_recv_ns=4),
        OrderUpdate(symbol="BTC-USDT", order_id="3100000000000000005", side=TradeSide.SELL, status=OrderStatus.NEW,
                    qty=Decimal("0.01"), filled_qty=Decimal(0), price=Decimal("90000"), client_order_id=None,
                    ts_exchange_ns=1767226200000 * MS, ts_recv_ns=4),
    ]


@pytest.mark.parametrize("method", ["parse_balances", "parse_positions", "parse_open_orders"])
@pytest.mark.parametrize("bad", [
    {"code": "50113", "msg": "Invalid Sign", "data": []}, {}, [], b"\xff", {"code": "0", "data": {}},
    {"code": "0", "data": [1]},
])  # fmt: skip
def test_malformed_full_sync_bodies_raise_adapter_error(method: str, bad: Any) -> None:
    with pytest.raises(AdapterError) as info:
        getattr(ACCOUNT, method)(bad)
    assert info.value.exchange == "okx"


def test_an_error_answer_names_the_venue_code() -> None:
    with pytest.raises(AdapterError, match="50113"):
        ACCOUNT.parse_balances(body("rest_error"))


# ----------------------------------------------------------------------------- ccxt
def test_rest_calls_are_ccxt_implicit_methods() -> None:
    import ccxt.async_support as ccxt_async

    exchange = getattr(ccxt_async, ACCOUNT.ccxt_id)()
    calls = [ACCOUNT.balances_call(), ACCOUNT.positions_call(), ACCOUNT.open_orders_call(),
             ACCOUNT.fills_call("BTC-USDT", cursor=FillCursor(ts_ns=0), since_ms=0, until_ms=1)]
    for call in calls:
        assert call is not None and callable(getattr(exchange, call.method)), call


def test_ccxt_config_sends_the_signed_calls_to_the_simulator() -> None:
    import ccxt

    config = ACCOUNT.ccxt_config_for("http://127.0.0.1:8124/")
    exchange = ccxt.okx({**config, **CREDS.ccxt_config()})
    for path in ("trade/fills-history", "account/balance", "account/positions", "trade/orders-pending"):
        signed = exchange.sign(path, ["private"], "GET", {"instType": "SWAP"})
        assert signed["url"] == f"http://127.0.0.1:8124/api/v5/{path}?instType=SWAP", signed["url"]
        assert signed["headers"]["OK-ACCESS-KEY"] == CREDS.api_key and signed["headers"]["OK-ACCESS-SIGN"]
