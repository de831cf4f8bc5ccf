"""Bybit private side (``BYBIT_ACCOUNT``, linear account): ``/v5/private`` frames -> exact
account events, the auth signature as ccxt computes it, ``/v5/execution/list`` paging by
cursor inside 7-day windows, and the full-sync REST bodies. Samples: ``fixtures/private/bybit``
(our own values)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from bookkeeper.actions import FillCursor
from bookkeeper.adapters import ACCOUNT_VENUES, get_account_adapter
from bookkeeper.adapters.bybit.private import BYBIT_ACCOUNT, SUBSCRIPTION, SlicedCall, auth_signature
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
from bookkeeper.ports import AccountAdapter, RestCall
from bookkeeper.testing.conformance import check_decoder_on_garbage
from bookkeeper.types import TradeSide

from _private_samples import DAY_MS, MS, T0, Samples

SAMPLES = Samples("bybit", BYBIT_ACCOUNT)
FIXTURES = SAMPLES.dir
frame, body, decode = SAMPLES.frame, SAMPLES.body, SAMPLES.decode
ACCOUNT = BYBIT_ACCOUNT
CREDS = ApiCredentials("bk-bybit-key-0001", "bk-bybit-secret-7777")



def control(kind: PrivateControlKind, **kw: Any) -> PrivateControl:
    return PrivateControl(kind=kind, ts_recv_ns=5, **kw)


# ----------------------------------------------------------------------------- the adapter object
def test_implements_the_account_adapter_protocol_and_is_registered() -> None:
    assert isinstance(ACCOUNT, AccountAdapter)
    assert get_account_adapter("bybit") is ACCOUNT and "bybit" in ACCOUNT_VENUES
    assert (ACCOUNT.name, ACCOUNT.ccxt_id) == ("bybit", "bybit")
    assert ACCOUNT.market_types == ("swap",)  # linear only: BTCUSDT is also a spot symbol


def test_stream_dialogue_figures() -> None:
    assert ACCOUNT.default_private_ws_root() == "wss://stream.bybit.com"
    assert ACCOUNT.private_ws_url("wss://stream.bybit.com") == "wss://stream.bybit.com/v5/private"
    # the public adapter's root (and the simulator's ws_root) name a stream path: same host
    assert ACCOUNT.private_ws_url("ws://127.0.0.1:9001/v5/public/linear") == "ws://127.0.0.1:9001/v5/private"
    assert ACCOUNT.session_lifetime_s is None  # none documented (§6.6)
    assert ACCOUNT.ping_message() == '{"op":"ping"}'
    assert (ACCOUNT.ping_interval_s, ACCOUNT.pong_timeout_s) == (20.0, 10.0)  # §6.5
    assert ACCOUNT.subscribe_channels() == frozenset({SUBSCRIPTION})
    (sub,) = ACCOUNT.subscribe_messages(request_id="3")
    assert orjson.loads(sub) == {"req_id": "sub-3", "op": "subscribe",
                                 "args": ["execution", "order", "position", "wallet"]}


def test_history_figures() -> None:
    h = ACCOUNT.history
    assert (h.page_size, h.paging, h.retention_ns, h.max_span_ns) == (
        100, FillPaging.TIME_RANGE, 730 * DAY_MS * MS, 7 * DAY_MS * MS)


# ----------------------------------------------------------------------------- login
def test_auth_frame_signs_get_realtime_and_expires() -> None:
    (text,) = ACCOUNT.login_messages(CREDS, now_ms=T0, request_id="1")
    msg = orjson.loads(text)
    assert msg["op"] == "auth" and msg["req_id"] == "auth-1"
    key, expires, sign = msg["args"]
    assert (key, expires) == (CREDS.api_key, T0 + 10_000)
    # hex(HMAC_SHA256(secret, "GET/realtime1767225610000")), pinned (openssl agrees)
    assert sign == auth_signature(CREDS.reveal_secret(), T0 + 10_000)
    assert sign == "290f72e1072001a94b77755dedfb1383bbb253b4557a9b5c29f6d74fa5fc9260"
    assert CREDS.reveal_secret() not in text


def test_auth_frame_matches_ccxt_pro_authenticate() -> None:
    """ccxt's own ``authenticate`` (pro/bybit.py) with the same credentials and clock signs the
    same ``expires`` the same way (ccxt sends ``expires`` as a string, Bybit's docs a number)."""
    import ccxt.pro

    sent: list[dict[str, Any]] = []

    async def run() -> None:
        ex = ccxt.pro.bybit({"apiKey": CREDS.api_key, "secret": CREDS.reveal_secret()})
        ex.milliseconds = lambda: T0

        def watch(url: str, message_hash: str, request: dict[str, Any], *args: Any) -> None:
            sent.append(request)
            ex.client(url).resolve(True, message_hash)  # answer as the venue would: authenticated

        ex.watch = watch
        try:
            await asyncio.wait_for(ex.authenticate("wss://stream.bybit.com/v5/private"), 5)
        finally:
            await ex.close()

    asyncio.run(run())
    (ours,) = ACCOUNT.login_messages(CREDS, now_ms=T0, request_id="1")
    mine = orjson.loads(ours)
    (theirs,) = sent
    assert theirs["op"] == mine["op"] == "auth"
    assert [theirs["args"][0], int(theirs["args"][1]), theirs["args"][2]] == mine["args"]


# ----------------------------------------------------------------------------- control frames
def test_auth_subscribe_and_pong() -> None:
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(frame("ws_auth_ok"), 5) == [control(PrivateControlKind.LOGGED_IN)]
    assert dec.decode(frame("ws_subscribe_ack"), 5) == [control(PrivateControlKind.SUBSCRIBED, channel=SUBSCRIPTION)]
    assert dec.decode(frame("ws_pong"), 5) == []
    # the public-shaped pong too ({"success":true,"ret_msg":"pong","op":"ping"})
    assert dec.decode(b'{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}') == []


def test_auth_refusal_named_only_in_the_echoed_request_is_auth_rejected() -> None:
    (event,) = decode("ws_auth_rejected")
    assert event == control(PrivateControlKind.AUTH_REJECTED, message="error:USVC1111")


def test_subscribe_refusal_is_an_error_not_an_ack() -> None:
    (event,) = decode("ws_subscribe_refused")
    assert isinstance(event, PrivateControl) and event.kind is PrivateControlKind.ERROR
    assert "Request not authorized" in event.message


# ----------------------------------------------------------------------------- pushes
def test_execution_trade_is_a_fill_and_funding_is_not() -> None:
    events = decode("ws_execution")
    assert events == [Fill(symbol="BTCUSDT", fill_id="3f0b5c7e-9a41-4d2b-8c1e-5a7d90e1c001",
                           order_id="b6a1e2c3-7d4f-4e55-9a10-0c2b3d4e5f01", side=TradeSide.SELL,
                           price=Decimal("61841.6"), qty=Decimal("0.150"), fee=Decimal("5.1019335"),
                           fee_currency="USDT", ts_exchange_ns=1767225601000 * MS, ts_recv_ns=5,
                           realized_pnl=Decimal("6.015"))]


def test_maker_rebate_keeps_its_sign_and_an_empty_execpnl_leaves_the_pnl_to_the_ledger() -> None:
    (fill,) = decode("ws_execution_maker_rebate")
    assert isinstance(fill, Fill)
    assert fill.fee == Decimal("-0.0763") and fill.side is TradeSide.BUY  # Bybit: negative = rebate
    assert fill.realized_pnl is None


def test_order_push_is_an_update_with_cumulative_quantity() -> None:
    assert decode("ws_order") == [OrderUpdate(
        symbol="BTCUSDT", order_id="b6a1e2c3-7d4f-4e55-9a10-0c2b3d4e5f01", side=TradeSide.SELL,
        status=OrderStatus.PARTIALLY_FILLED, qty=Decimal("0.250"), filled_qty=Decimal("0.150"),
        price=Decimal("61800.0"), client_order_id="bk-ord-17", ts_exchange_ns=1767225601000 * MS, ts_recv_ns=5)]


def test_market_order_has_no_price_and_partially_filled_canceled_ends_it() -> None:
    (update,) = decode("ws_order_market_cancelled")
    assert isinstance(update, OrderUpdate)
    assert update.price is None and update.status is OrderStatus.CANCELED and update.client_order_id is None


def test_position_push_is_signed_by_side() -> None:
    assert decode("ws_position") == [PositionReport(symbol="BTCUSDT", qty=Decimal("-0.350"),
                                                    avg_entry_price=Decimal("61830.25"),
                                                    ts_exchange_ns=1767225601000 * MS, ts_recv_ns=5)]


def test_wallet_push_is_each_coins_wallet_balance_at_creation_time() -> None:
    assert decode("ws_wallet") == [BalanceReport(balances={"BTC": Decimal("0.5"), "USDT": Decimal("150009.5130665")},
                                                 ts_exchange_ns=1767225601005 * MS, ts_recv_ns=5)]


@pytest.mark.parametrize("mutation", [
    ('"execQty":"0.150"', '"execQty":0.15'),  # a number where Bybit writes a string
    ('"execPrice":"61841.6"', '"execPrice":"NaN"'),
    ('"side":"Sell","execTime"', '"side":"Short","execTime"'),
    ('"execTime":"1767225601000"', '"execTime":"-5"'),
    ('"execId":"3f0b5c7e-9a41-4d2b-8c1e-5a7d90e1c001"', '"execId":""'),
])
def test_malformed_execution_is_refused(mutation: tuple[str, str]) -> None:
    text = frame("ws_execution").decode().replace(*mutation)
    assert text != frame("ws_execution").decode()
    with pytest.raises(AdapterError):
        ACCOUNT.new_private_decoder().decode(text)


def test_hedge_mode_positions_and_unknown_order_states_are_refused() -> None:
    hedge = frame("ws_position").decode().replace('"positionIdx":0', '"positionIdx":2')
    with pytest.raises(AdapterError, match="one-way"):
        ACCOUNT.new_private_decoder().decode(hedge)
    odd = frame("ws_order").decode().replace("PartiallyFilled", "Melted")
    with pytest.raises(AdapterError, match="order state"):
        ACCOUNT.new_private_decoder().decode(odd)
    with pytest.raises(AdapterError, match="exceeds"):
        ACCOUNT.new_private_decoder().decode(frame("ws_order").decode().replace('"cumExecQty":"0.150"',
                                                                                 '"cumExecQty":"0.300"'))


def test_decoder_survives_garbage_with_typed_errors() -> None:
    check_decoder_on_garbage(ACCOUNT.new_private_decoder())  # type: ignore[arg-type]


def test_other_topics_and_unknown_control_frames_yield_nothing() -> None:
    dec = ACCOUNT.new_private_decoder()
    assert dec.decode(b'{"topic":"greeks","creationTime":1,"data":[]}') == []
    assert dec.decode(b'{"success":true,"ret_msg":"","op":"unsubscribe","conn_id":"x"}') == []
    with pytest.raises(AdapterError):
        dec.decode(b'{"topic":"execution","data":{}}')
    with pytest.raises(AdapterError):
        dec.decode(b"[1,2]")


# ----------------------------------------------------------------------------- fills history
def test_fills_call_is_the_first_seven_day_window() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0, trade_id="x"), since_ms=T0,
                              until_ms=T0 + 20 * DAY_MS)
    assert isinstance(call, SlicedCall) and call.method == "private_get_v5_execution_list"
    assert dict(call.params) == {"category": "linear", "symbol": "BTCUSDT", "startTime": T0,
                                 "endTime": T0 + 7 * DAY_MS, "limit": 100}
    assert call.until_ms == T0 + 20 * DAY_MS


def _empty_page() -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": {"nextPageCursor": "", "category": "linear", "list": []},
            "retExtInfo": {}, "time": 1}


def test_paging_chain_follows_the_cursor_then_slices_seven_day_windows() -> None:
    """A 20-day replay: window 1 has two pages (cursor), windows 2 and 3 are empty; the chain
    covers [T0, T0 + 20 d] with no window longer than 7 days and ends with ``None``."""
    first = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=T0, until_ms=T0 + 20 * DAY_MS)
    page = ACCOUNT.parse_fills_page(body("rest_execution_list"), call=first, symbol="BTCUSDT", ts_recv_ns=9)
    # the Funding row is not a fill; the page is newest first
    assert [f.fill_id[-4:] for f in page.fills] == ["0003", "0001"]
    assert page.fills[0].realized_pnl == Decimal("4.2") and page.fills[1].realized_pnl == Decimal("0")
    second = page.next_call
    assert second is not None and second.params["cursor"] == "1767225601000%3A0%2C1767225601000%3A0"
    assert {k: v for k, v in second.params.items() if k != "cursor"} == dict(first.params)
    page = ACCOUNT.parse_fills_page(body("rest_execution_list_last"), call=second, symbol="BTCUSDT")
    assert [f.fill_id[-4:] for f in page.fills] == ["0000"]
    windows = [(second.params["startTime"], second.params["endTime"])]
    call = page.next_call
    while call is not None:
        assert "cursor" not in call.params
        windows.append((call.params["startTime"], call.params["endTime"]))
        call = ACCOUNT.parse_fills_page(_empty_page(), call=call, symbol="BTCUSDT").next_call
    assert windows == [(T0, T0 + 7 * DAY_MS), (T0 + 7 * DAY_MS + 1, T0 + 14 * DAY_MS + 1),
                       (T0 + 14 * DAY_MS + 2, T0 + 20 * DAY_MS)]
    assert all(end - start <= 7 * DAY_MS for start, end in windows)


def test_a_replay_inside_one_window_ends_with_its_last_page() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=T0, until_ms=T0 + 60_000)
    assert call.params["endTime"] == T0 + 60_000
    assert ACCOUNT.parse_fills_page(body("rest_execution_list_last"), call=call, symbol="BTCUSDT").next_call is None
    # a plain RestCall (no remembered range) ends too
    plain = RestCall(ccxt_id="bybit", method=call.method, params=dict(call.params))
    assert ACCOUNT.parse_fills_page(_empty_page(), call=plain, symbol="BTCUSDT").next_call is None


def test_venue_errors_are_adapter_errors() -> None:
    call = ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=T0, until_ms=T0 + 1)
    with pytest.raises(AdapterError, match="10004"):
        ACCOUNT.parse_fills_page(body("rest_error"), call=call, symbol="BTCUSDT")
    with pytest.raises(AdapterError, match="10004"):
        ACCOUNT.parse_balances(body("rest_error"))
    with pytest.raises(AdapterError):
        ACCOUNT.parse_positions(b"not json")


# ----------------------------------------------------------------------------- full sync
def test_positions_are_signed_and_flat_rows_are_zero() -> None:
    assert ACCOUNT.parse_positions(body("rest_position_list"), ts_recv_ns=7) == [
        PositionReport(symbol="BTCUSDT", qty=Decimal("-0.350"), avg_entry_price=Decimal("61830.25"),
                       ts_exchange_ns=1767225601000 * MS, ts_recv_ns=7),
        PositionReport(symbol="ETHUSDT", qty=Decimal("2.50"), avg_entry_price=Decimal("3050.13"),
                       ts_exchange_ns=1767225500000 * MS, ts_recv_ns=7),
        PositionReport(symbol="SOLUSDT", qty=Decimal("0"), avg_entry_price=None,
                       ts_exchange_ns=1767000000000 * MS, ts_recv_ns=7),
    ]


def test_open_orders() -> None:
    orders = ACCOUNT.parse_open_orders(body("rest_order_realtime"))
    assert [(o.order_id[-4:], o.side, o.status, o.qty, o.filled_qty, o.price) for o in orders] == [
        ("0002", TradeSide.SELL, OrderStatus.PARTIALLY_FILLED, Decimal("1.00"), Decimal("0.30"), Decimal("3061.50")),
        ("0001", TradeSide.BUY, OrderStatus.NEW, Decimal("0.50"), Decimal("0"), Decimal("3040.00")),
    ]


def test_balances_are_each_coins_wallet_balance_without_a_mark() -> None:
    """Bybit's wallet-balance has no last-change time (its ``time`` is the server clock): the
    answer is read as it is, and the mark comes from the transaction log."""
    report = ACCOUNT.parse_balances(body("rest_wallet_balance"), ts_recv_ns=3)
    assert report == BalanceReport(balances={"BTC": Decimal("0.5"), "USDT": Decimal("150009.5130665")},
                                   ts_exchange_ns=0, ts_recv_ns=3)
    assert ACCOUNT.parse_balances(body("rest_wallet_balance_venue")) == BalanceReport(
        balances={"USDT": Decimal("1")}, ts_exchange_ns=0, ts_recv_ns=0)


def test_the_mark_is_the_transaction_logs_newest_row() -> None:
    call = ACCOUNT.account_mark_call()
    assert call is not None
    assert (call.ccxt_id, call.method, dict(call.params)) == (
        "bybit", "private_get_v5_account_transaction_log", {"accountType": "UNIFIED", "limit": 1})
    assert ACCOUNT.parse_account_mark(body("rest_transaction_log"), ts_recv_ns=9) == 1767225601000 * MS
    # any balance change writes a row (funding here), not only trades; a cursor behind it is ignored
    assert ACCOUNT.parse_account_mark(frame("rest_transaction_log_funding")) == 1767254400000 * MS


def test_an_empty_log_marks_its_24h_windows_start_rounded_up_to_the_hour() -> None:
    """No row in the last 24 h: nothing changed after ``time - 24 h``; the mark is that start
    rounded up to the hour (still inside the quiet window, equal for two reads in one hour),
    never 0, which would put a day-old fill on top of the baseline."""
    empty = body("rest_transaction_log_empty")
    now = empty["time"]
    mark = ACCOUNT.parse_account_mark(empty)
    assert mark % (3_600_000 * MS) == 0
    assert (now - DAY_MS) * MS <= mark < (now - DAY_MS + 3_600_000) * MS
    later = {**empty, "time": now + 60_000}
    assert ACCOUNT.parse_account_mark(later) == mark
    assert ACCOUNT.parse_account_mark({**empty, "time": now + 3_600_000}) == mark + 3_600_000 * MS
    with pytest.raises(AdapterError, match="no mark"):
        ACCOUNT.parse_account_mark({**empty, "time": 0})


@pytest.mark.parametrize("mutation", [
    lambda b: b.update(retCode=10003, retMsg="API key is invalid."),
    lambda b: b["result"].update(list={"not": "a list"}),
    lambda b: b["result"]["list"][0].update(transactionTime="soon"),
    lambda b: b["result"]["list"][0].pop("transactionTime"),
])
def test_a_malformed_log_is_an_adapter_error(mutation: Any) -> None:
    raw = body("rest_transaction_log")
    mutation(raw)
    with pytest.raises(AdapterError):
        ACCOUNT.parse_account_mark(raw)


def test_binance_and_okx_have_no_mark_call_their_balances_carry_it() -> None:
    for name in ("binance", "okx"):
        adapter = get_account_adapter(name)
        assert isinstance(adapter, AccountAdapter)
        assert adapter.account_mark_call() is None
        with pytest.raises(AdapterError):
            adapter.parse_account_mark({})


def test_full_pages_of_positions_or_orders_with_more_behind_are_refused() -> None:
    rows = body("rest_order_realtime")
    rows["result"]["list"] = rows["result"]["list"][:1] * 50
    rows["result"]["nextPageCursor"] = "abc"
    with pytest.raises(AdapterError, match="paging"):
        ACCOUNT.parse_open_orders(rows)


# ----------------------------------------------------------------------------- ccxt
def test_rest_calls_are_ccxt_implicit_methods() -> None:
    import ccxt.async_support as ccxt_async

    exchange = getattr(ccxt_async, ACCOUNT.ccxt_id)()
    calls = [ACCOUNT.balances_call(), ACCOUNT.positions_call(), ACCOUNT.open_orders_call(),
             ACCOUNT.account_mark_call(),
             ACCOUNT.fills_call("BTCUSDT", cursor=FillCursor(ts_ns=0), since_ms=0, until_ms=1)]
    for call in calls:
        assert call is not None and callable(getattr(exchange, call.method)), call


def test_ccxt_config_sends_the_signed_calls_to_the_simulator_with_v5_headers() -> None:
    import hashlib
    import hmac

    import ccxt

    config = ACCOUNT.ccxt_config_for("http://127.0.0.1:8124/")
    exchange = ccxt.bybit({**config, **CREDS.ccxt_config()})
    for path in ("v5/execution/list", "v5/position/list", "v5/account/wallet-balance", "v5/order/realtime",
                 "v5/account/transaction-log"):
        signed = exchange.sign(path, ["private"], "GET", {"category": "linear"})
        assert signed["url"] == f"http://127.0.0.1:8124/{path}?category=linear", signed["url"]
        h = signed["headers"]
        assert h["X-BAPI-API-KEY"] == CREDS.api_key and h["X-BAPI-RECV-WINDOW"] == "5000"
        prehash = h["X-BAPI-TIMESTAMP"] + CREDS.api_key + "5000" + "category=linear"
        assert h["X-BAPI-SIGN"] == hmac.new(CREDS.reveal_secret().encode(), prehash.encode(),
                                            hashlib.sha256).hexdigest()
