"""Binance spot private side (``BINANCE_ACCOUNT``): WS API frames -> exact account events, the
login signature as ccxt computes it, ``myTrades`` paging (``fromId`` and 24 h slices), and the
full-sync REST bodies. Samples: ``fixtures/private/binance`` (our own values)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bookkeeper.account import estimate_pages
from bookkeeper.actions import FillCursor
from bookkeeper.adapters import get_account_adapter
from bookkeeper.adapters.binance.private import BINANCE_ACCOUNT, SlicedCall
from bookkeeper.capabilities import FillPaging
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BalanceReport,
    BalanceUpdate,
    Fill,
    OrderStatus,
    OrderUpdate,
    PrivateControl,
    PrivateControlKind,
)
from bookkeeper.ports import AccountAdapter, FillsPage, RestCall
from bookkeeper.testing.conformance import check_decoder_on_garbage
from bookkeeper.types import TradeSide

from _private_samples import DAY_MS, MS, T0, Samples

SAMPLES = Samples("binance", BINANCE_ACCOUNT)
FIXTURES = SAMPLES.dir
frame, body, decode = SAMPLES.frame, SAMPLES.body, SAMPLES.decode
ACCOUNT = BINANCE_ACCOUNT
CREDS = ApiCredentials("bkTestKeyA1b2C3", "bkTestSecretZ9y8X7")



# ----------------------------------------------------------------------------- the adapter object
def test_implements_the_account_adapter_protocol_and_is_registered() -> None:
    assert isinstance(ACCOUNT, AccountAdapter)
    assert get_account_adapter("binance") is ACCOUNT
    assert (ACCOUNT.name, ACCOUNT.ccxt_id) == ("binance", "binance")


def test_stream_dialogue_figures() -> None:
    assert ACCOUNT.default_private_ws_root() == "wss://ws-api.binance.com:443"
    assert ACCOUNT.private_ws_url("ws://127.0.0.1:9000/") == "ws://127.0.0.1:9000/ws-api/v3"
    assert ACCOUNT.session_lifetime_s == 86_400.0  # WS API connections live 24 h (§3.6)
    assert ACCOUNT.ping_interval_s is None and ACCOUNT.pong_timeout_s is None and ACCOUNT.ping_message() is None
    assert ACCOUNT.subscribe_messages(request_id="2") == []
    assert ACCOUNT.subscribe_channels() == frozenset()


def test_history_figures() -> None:
    h = ACCOUNT.history
    assert (h.page_size, h.paging, h.retention_ns, h.max_span_ns) == (1000, FillPaging.FROM_ID, None, DAY_MS * MS)


def test_each_connection_gets_its_own_decoder() -> None:
    assert ACCOUNT.new_private_decoder() is not ACCOUNT.new_private_decoder()


# ----------------------------------------------------------------------------- login
def test_login_frame_is_signed_over_the_key_sorted_query() -> None:
    (text,) = ACCOUNT.login_messages(CREDS, now_ms=T0, request_id="login-7")
    msg = orjson.loads(text)
    assert msg["id"] == "login-7" and msg["method"] == "userDataStream.subscribe.signature"
    assert list(msg["params"]) == ["apiKey", "timestamp", "signature"]
    assert msg["params"]["apiKey"] == CREDS.api_key and msg["params"]["timestamp"] == T0
    # hex(HMAC_SHA256(secret, "apiKey=K&timestamp=T")), pinned (openssl agrees; ccxt: the next test)
    assert msg["params"]["signature"] == "948bbc39149ed3ca9e3a4c2653f00b167c52382182e9a6c575796295ed6ac149"
    assert CREDS.reveal_secret() not in text


def test_login_signature_matches_ccxt_pro_subscribe_signature() -> None:
    """ccxt's own ``ensure_user_data_stream_ws_subscribe_signature`` (its ``sign_params``) with
    the same key, secret and nonce sends the same params: the venue / simulator accept both."""
    import ccxt.pro

    sent: list[dict[str, Any]] = []

    async def run() -> None:
        ex = ccxt.pro.binance({"apiKey": CREDS.api_key, "secret": CREDS.reveal_secret()})
        # ccxt adds its own options["recvWindow"] (10 s) to what it signs; the contract's login
        # carries only apiKey + timestamp (the venue default recvWindow, 5 s, applies)
        ex.options.pop("recvWindow", None)
        ex.nonce = lambda: T0

        async def watch(url: str, message_hash: Any, message: dict[str, Any], *args: Any) -> None:
            sent.append(message)

        ex.watch = watch
        try:
            await ex.ensure_user_data_stream_ws_subscribe_signature("spot")
        finally:
            await ex.close()

    asyncio.run(run())
    (ccxt_message,) = sent
    (ours,) = ACCOUNT.login_messages(CREDS, now_ms=T0, request_id=ccxt_message["id"])
    assert orjson.loads(ours) == ccxt_message


# ----------------------------------------------------------------------------- stream frames
def test_login_answer_is_logged_in() -> None:
    assert decode("ws_login_ok") == [PrivateControl(kind=PrivateControlKind.LOGGED_IN, message="subscriptionId 3",
                                                    ts_recv_ns=5)]


@pytest.mark.parametrize(("name", "kind", "code"), [
    ("ws_login_bad_signature", PrivateControlKind.AUTH_REJECTED, "-1022"),
    ("ws_login_unknown_key", PrivateControlKind.AUTH_REJECTED, "-2015"),
    ("ws_login_clock_skew", PrivateControlKind.AUTH_REJECTED, "-1021"),
    ("ws_rate_limited", PrivateControlKind.ERROR, "-1003"),  # not the credentials' fault: retryable
])  # fmt: skip
def test_error_answers_carry_the_venue_code(name: str, kind: PrivateControlKind, code: str) -> None:
    (ev,) = decode(name)
    assert isinstance(ev, PrivateControl)
    assert (ev.kind, ev.code) == (kind, code)
    assert ev.message == body(name)["error"]["msg"]


def test_trade_report_is_a_fill_and_an_order_update() -> None:
    assert decode("ws_execution_trade_partial") == [
        Fill(symbol="BTCUSDT", fill_id="7700001", order_id="4100000001", side=TradeSide.BUY,
             price=Decimal("87000.10000000"), qty=Decimal("0.20000000"), fee=Decimal("17.40002000"),
             fee_currency="USDT", ts_exchange_ns=1767225600120 * MS, ts_recv_ns=5),
        OrderUpdate(symbol="BTCUSDT", order_id="4100000001", side=TradeSide.BUY, status=OrderStatus.PARTIALLY_FILLED,
                    qty=Decimal("0.50000000"), filled_qty=Decimal("0.20000000"), price=Decimal("87000.10000000"),
                    client_order_id="bk-a1", ts_exchange_ns=1767225600120 * MS, ts_recv_ns=5),
    ]


def test_second_trade_completes_the_order_with_cumulative_quantity() -> None:
    fill, update = decode("ws_execution_trade_filled")
    assert isinstance(fill, Fill) and isinstance(update, OrderUpdate)
    assert (fill.fill_id, fill.price, fill.qty, fill.fee) == ("7700002", Decimal("87000"), Decimal("0.3"),
                                                              Decimal("26.1"))
    assert (update.status, update.filled_qty, update.qty) == (OrderStatus.FILLED, Decimal("0.5"), Decimal("0.5"))


def test_new_market_order_has_no_price_and_is_no_fill() -> None:
    assert decode("ws_execution_new_market") == [
        OrderUpdate(symbol="ETHUSDT", order_id="5200000007", side=TradeSide.BUY, status=OrderStatus.NEW,
                    qty=Decimal("0.25"), filled_qty=Decimal(0), price=None, client_order_id="bk-m1",
                    ts_exchange_ns=1767225590009 * MS, ts_recv_ns=5),
    ]


def test_cancel_report_names_the_original_client_order_id() -> None:
    (update,) = decode("ws_execution_canceled")
    assert update == OrderUpdate(symbol="ETHUSDT", order_id="5200000011", side=TradeSide.SELL,
                                 status=OrderStatus.CANCELED, qty=Decimal("1"), filled_qty=Decimal("0.1"),
                                 price=Decimal("2950.55"), client_order_id="bk-b2", ts_exchange_ns=1767225700299 * MS,
                                 ts_recv_ns=5)


def test_account_position_is_a_balance_report_of_totals() -> None:
    assert decode("ws_account_position") == [
        BalanceReport(balances={"BTC": Decimal("1.50000000"), "USDT": Decimal("76100.00000000")},
                      ts_exchange_ns=1767225601450 * MS, ts_recv_ns=5)]


def test_balance_update_has_a_composed_unique_id() -> None:
    assert decode("ws_balance_update") == [
        BalanceUpdate(currency="USDT", delta=Decimal("-250"), update_id="USDT:1767225800000:-250.00000000",
                      ts_exchange_ns=1767225800000 * MS, ts_recv_ns=5)]


def test_stream_end_and_shutdown_notices() -> None:
    assert decode("ws_event_stream_terminated") == [
        PrivateControl(kind=PrivateControlKind.SESSION_EXPIRED, message="eventStreamTerminated", ts_recv_ns=5)]
    assert decode("ws_server_shutdown") == [
        PrivateControl(kind=PrivateControlKind.SHUTDOWN_NOTICE, message="serverShutdown", ts_recv_ns=5)]


def test_events_the_account_side_does_not_need_yield_nothing() -> None:
    assert decode("ws_list_status") == []
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(b'{"id":"x","status":200,"result":{}}') == []
    assert dec.decode(b'{"id":"x","status":200,"result":null}') == []


def test_bare_events_and_text_frames_decode_alike() -> None:
    event = orjson.dumps(body("ws_execution_trade_partial")["event"])
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(event, 5) == decode("ws_execution_trade_partial") == dec.decode(event.decode(), 5)


@pytest.mark.parametrize(("patch", "why"), [
    ({"q": 0.5}, "number where the venue writes a string"),
    ({"q": "NaN"}, "NaN"),
    ({"q": "1_0"}, "digit separators"),
    ({"q": " 1"}, "whitespace"),
    ({"l": "-0.2"}, "negative fill quantity"),
    ({"L": "0"}, "zero fill price"),
    ({"z": "0.9"}, "cumulative above the order quantity"),
    ({"X": "WEIRD"}, "unknown status"),
    ({"S": "HOLD"}, "unknown side"),
    ({"t": -1}, "trade without trade id"),
    ({"t": True}, "bool trade id"),
    ({"T": 1e308}, "float time"),
    ({"T": 10**17}, "time beyond range"),
    ({"i": "4100000001"}, "order id as a string"),
    ({"n": "1e999999"}, "absurd exponent"),
])  # fmt: skip
def test_malformed_execution_reports_raise_adapter_error(patch: dict[str, Any], why: str) -> None:
    obj = body("ws_execution_trade_partial")
    obj["event"].update(patch)
    with pytest.raises(AdapterError) as info:
        ACCOUNT.new_private_decoder().decode(orjson.dumps(obj))
    assert info.value.exchange == "binance", why


@pytest.mark.parametrize("raw", [
    b"{", b"[]", b"null", b'"x"', b'{"subscriptionId":3,"event":[1]}', b'{"subscriptionId":3,"event":{"e":[1]}}',
    b'{"subscriptionId":3,"event":{"e":"outboundAccountPosition","E":1,"B":{"a":"BTC"}}}',
    b'{"subscriptionId":3,"event":{"e":"balanceUpdate","E":1,"a":"USDT","d":"x","T":1}}',
    b'{"id":"1","status":"200","result":{}}', b'{"id":"1","status":200,"result":{"subscriptionId":"0"}}',
    b'{"id":"1","status":400,"error":{"code":"-1022"}}',
    b'{"subscriptionId":3,"event":' * 600 + b"1" + b"}" * 600,
])  # fmt: skip
def test_malformed_frames_raise_adapter_error(raw: bytes) -> None:
    with pytest.raises(AdapterError) as info:
        ACCOUNT.new_private_decoder().decode(raw)
    assert info.value.exchange == "binance"
    assert len(info.value.excerpt) <= 200


def test_garbage_frames_give_nothing_or_adapter_error() -> None:
    check_decoder_on_garbage(ACCOUNT.new_private_decoder())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fills history
def trade_row(i: int, *, t: int = T0, buyer: bool = True) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "id": i, "orderId": 4_000_000_000 + i // 10, "orderListId": -1,
            "price": "87000.00000000", "qty": "0.00100000", "quoteQty": "87.00000000", "commission": "0.08700000",
            "commissionAsset": "USDT", "time": t, "isBuyer": buyer, "isMaker": False, "isBestMatch": True}


def test_my_trades_page_is_parsed_exactly() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS, trade_id="7700000"), since_ms=T0,
                              until_ms=T0 + 1000)
    page = ACCOUNT.parse_fills_page(body("rest_mytrades"), call=call, symbol="BTCUSDT", ts_recv_ns=9)
    assert page == FillsPage(next_call=None, fills=(
        Fill(symbol="BTCUSDT", fill_id="7700001", order_id="4100000001", side=TradeSide.BUY,
             price=Decimal("87000.10000000"), qty=Decimal("0.20000000"), fee=Decimal("17.40002000"),
             fee_currency="USDT", ts_exchange_ns=1767225600120 * MS, ts_recv_ns=9),
        Fill(symbol="BTCUSDT", fill_id="7700002", order_id="4100000001", side=TradeSide.BUY,
             price=Decimal("87000.00000000"), qty=Decimal("0.30000000"), fee=Decimal("26.10000000"),
             fee_currency="USDT", ts_exchange_ns=1767225601450 * MS, ts_recv_ns=9),
        Fill(symbol="BTCUSDT", fill_id="7700005", order_id="4100000004", side=TradeSide.SELL,
             price=Decimal("87100.00000000"), qty=Decimal("0.05000000"), fee=Decimal("4.35500000"),
             fee_currency="USDT", ts_exchange_ns=1767225900000 * MS, ts_recv_ns=9),
    ))
    # the raw bytes of the answer parse the same
    assert ACCOUNT.parse_fills_page(frame("rest_mytrades"), call=call, symbol="BTCUSDT", ts_recv_ns=9) == page
    # the stream's fill and the history's are the same event (same id, fee sign, time)
    assert decode("ws_execution_trade_partial", 9)[0] == page.fills[0]
    assert decode("ws_execution_trade_filled", 9)[0] == page.fills[1]


def test_replay_from_a_trade_id_pages_by_from_id_until_a_short_page() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS, trade_id="7700000"), since_ms=T0 - 60_000,
                              until_ms=T0 + DAY_MS * 5)
    assert call == RestCall(ccxt_id="binance", method="private_get_mytrades",
                            params={"symbol": "BTCUSDT", "fromId": 7700001, "limit": 1000})
    full = [trade_row(i) for i in range(7700001, 7701001)]
    page = ACCOUNT.parse_fills_page(full, call=call, symbol="BTCUSDT")
    assert len(page.fills) == 1000
    assert page.next_call == RestCall(ccxt_id="binance", method="private_get_mytrades",
                                      params={"symbol": "BTCUSDT", "fromId": 7701001, "limit": 1000})
    last = ACCOUNT.parse_fills_page([trade_row(7701001), trade_row(7701002)], call=page.next_call, symbol="BTCUSDT")
    assert [f.fill_id for f in last.fills] == ["7701001", "7701002"] and last.next_call is None
    assert ACCOUNT.parse_fills_page([], call=page.next_call, symbol="BTCUSDT") == FillsPage(fills=(), next_call=None)


def test_replay_without_a_trade_id_walks_24h_slices_then_switches_to_from_id() -> None:
    since, until = T0, T0 + DAY_MS * 5 // 2  # 2.5 days
    first = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS), since_ms=since, until_ms=until)
    assert first == SlicedCall(ccxt_id="binance", method="private_get_mytrades", until_ms=until,
                               params={"symbol": "BTCUSDT", "startTime": since, "endTime": since + DAY_MS,
                                       "limit": 1000})
    # an empty first day: the next slice starts right after it
    second = ACCOUNT.parse_fills_page([], call=first, symbol="BTCUSDT").next_call
    assert isinstance(second, SlicedCall)
    assert second.params == {"symbol": "BTCUSDT", "startTime": since + DAY_MS + 1, "endTime": since + 2 * DAY_MS + 1,
                             "limit": 1000}
    assert second.params["endTime"] - second.params["startTime"] <= DAY_MS  # the venue's rule (-1127)
    # a full page inside a slice continues gaplessly by id (fromId cannot be combined with a range)
    full = [trade_row(i, t=since + DAY_MS + 5) for i in range(9000, 10000)]
    third = ACCOUNT.parse_fills_page(full, call=second, symbol="BTCUSDT").next_call
    assert third == RestCall(ccxt_id="binance", method="private_get_mytrades",
                             params={"symbol": "BTCUSDT", "fromId": 10000, "limit": 1000})
    end = ACCOUNT.parse_fills_page([trade_row(10000)], call=third, symbol="BTCUSDT")
    assert [f.fill_id for f in end.fills] == ["10000"] and end.next_call is None


def test_empty_history_takes_the_requests_the_recovery_planner_estimates() -> None:
    since, until = T0, T0 + DAY_MS * 5 // 2
    call: RestCall | None = ACCOUNT.fills_call("ETHUSDT", cursor=FillCursor(ts_ns=since * MS), since_ms=since,
                                               until_ms=until)
    calls = []
    while call is not None:
        calls.append(call)
        call = ACCOUNT.parse_fills_page([], call=call, symbol="ETHUSDT").next_call
    spans = [(c.params["startTime"], c.params["endTime"]) for c in calls]
    assert spans == [(since, since + DAY_MS), (since + DAY_MS + 1, since + 2 * DAY_MS + 1),
                     (since + 2 * DAY_MS + 2, until)]
    assert len(calls) == estimate_pages(ACCOUNT.history, cursor=FillCursor(ts_ns=since * MS), until_ns=until * MS,
                                        fills=0)


def test_a_short_range_is_one_slice_and_a_textual_trade_id_pages_by_time() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=T0 * MS, trade_id="abc"), since_ms=T0,
                              until_ms=T0 + 60_000)
    assert call.params == {"symbol": "BTCUSDT", "startTime": T0, "endTime": T0 + 60_000, "limit": 1000}
    assert ACCOUNT.parse_fills_page([trade_row(1)], call=call, symbol="BTCUSDT").next_call is None
    # a plain RestCall time range (no remembered end) ends at its own endTime
    plain = RestCall(ccxt_id="binance", method="private_get_mytrades", params=dict(call.params))
    assert ACCOUNT.parse_fills_page([], call=plain, symbol="BTCUSDT").next_call is None


@pytest.mark.parametrize("bad", [
    {"code": -1127, "msg": "More than 24 hours between startTime and endTime."}, [{"id": 1}], [1], "[",
    b"[" * 1000 + b"]" * 1000, [dict(trade_row(1), price=87000.0)], [dict(trade_row(1), qty="0")],
    [dict(trade_row(1), id=-1)],
])  # fmt: skip
def test_malformed_my_trades_raise_adapter_error(bad: Any) -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0, trade_id="1"), since_ms=0, until_ms=1)
    with pytest.raises(AdapterError) as info:
        ACCOUNT.parse_fills_page(bad, call=call, symbol="BTCUSDT")
    assert info.value.exchange == "binance"


# ----------------------------------------------------------------------------- full sync
def test_balances_are_free_plus_locked_as_of_update_time() -> None:
    assert ACCOUNT.balances_call() == RestCall(ccxt_id="binance", method="private_get_account", params={})
    assert ACCOUNT.parse_balances(body("rest_account"), ts_recv_ns=3) == BalanceReport(
        balances={"BTC": Decimal("1.50000000"), "ETH": Decimal("0E-8"), "USDT": Decimal("76100.00000000")},
        ts_exchange_ns=1767225601450 * MS, ts_recv_ns=3)


def test_spot_has_no_positions_call() -> None:
    assert ACCOUNT.positions_call() is None
    assert ACCOUNT.parse_positions([]) == []


def test_open_orders_are_parsed_exactly() -> None:
    assert ACCOUNT.open_orders_call() == RestCall(ccxt_id="binance", method="private_get_openorders", params={})
    assert ACCOUNT.parse_open_orders(body("rest_open_orders"), ts_recv_ns=4) == [
        OrderUpdate(symbol="BTCUSDT", order_id="4100000009", side=TradeSide.BUY, status=OrderStatus.PARTIALLY_FILLED,
                    qty=Decimal("0.4"), filled_qty=Decimal("0.1"), price=Decimal("86500"), client_order_id="bk-c3",
                    ts_exchange_ns=1767226005000 * MS, ts_recv_ns=4),
        OrderUpdate(symbol="ETHUSDT", order_id="5200000013", side=TradeSide.SELL, status=OrderStatus.NEW,
                    qty=Decimal("2"), filled_qty=Decimal(0), price=Decimal("3010.25"), client_order_id="bk-d4",
                    ts_exchange_ns=1767226100000 * MS, ts_recv_ns=4),
    ]


@pytest.mark.parametrize("bad", [{}, [], {"balances": {}}, {"balances": [{"asset": "BTC", "free": 1, "locked": "0"}]},
                                 b"\xff", {"balances": [], "updateTime": "1"}])
def test_malformed_account_raises_adapter_error(bad: Any) -> None:
    with pytest.raises(AdapterError):
        ACCOUNT.parse_balances(bad)


@pytest.mark.parametrize("bad", [{}, [{}], [dict(body("rest_open_orders")[0], status="GONE")],
                                 [dict(body("rest_open_orders")[0], executedQty="9")]])
def test_malformed_open_orders_raise_adapter_error(bad: Any) -> None:
    with pytest.raises(AdapterError):
        ACCOUNT.parse_open_orders(bad)


# ----------------------------------------------------------------------------- ccxt
def test_rest_calls_are_ccxt_implicit_methods() -> None:
    import ccxt.async_support as ccxt_async

    exchange = getattr(ccxt_async, ACCOUNT.ccxt_id)()
    calls = [ACCOUNT.balances_call(), ACCOUNT.open_orders_call(),
             ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0, trade_id="1"), since_ms=0, until_ms=1)]
    for call in calls:
        assert callable(getattr(exchange, call.method)), call.method


def test_ccxt_config_sends_the_signed_calls_to_the_simulator() -> None:
    import ccxt

    config = ACCOUNT.ccxt_config_for("http://127.0.0.1:8123/")
    exchange = ccxt.binance({**config, "apiKey": CREDS.api_key, "secret": CREDS.reveal_secret()})
    for path in ("myTrades", "account", "openOrders"):
        signed = exchange.sign(path, ["private"], "GET", {"symbol": "BTCUSDT"} if path == "myTrades" else {})
        assert signed["url"].startswith(f"http://127.0.0.1:8123/api/v3/{path}?"), signed["url"]
        assert "signature=" in signed["url"] and signed["headers"]["X-MBX-APIKEY"] == CREDS.api_key
