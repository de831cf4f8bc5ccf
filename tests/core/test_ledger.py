"""PositionLedger: idempotent fills, derived balances and positions, cursors, orders, baselines,
reconcile. Synchronous, no mocks: feed inputs, assert on results and public state."""

from __future__ import annotations

import doctest
from dataclasses import replace
from decimal import Decimal, localcontext
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bookkeeper.ledger
from bookkeeper.actions import AccountAlertKind, FillCursor, fill_sort_key
from bookkeeper.errors import InvalidEvent, InvalidState
from bookkeeper.events import (
    AccountSnapshot,
    BalanceUpdate,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
)
from bookkeeper.ledger import (
    AccountKey,
    ApplyVerdict,
    Drift,
    DriftKind,
    InstrumentKind,
    InstrumentSpec,
    LedgerState,
    Position,
    PositionLedger,
)
from bookkeeper.types import TradeSide

D = Decimal
ACCT = AccountKey(venue="okx", account="main")
SPOT = InstrumentSpec(symbol="BTC-USDT", kind=InstrumentKind.SPOT, base="BTC", quote="USDT")
PERP = InstrumentSpec(symbol="BTC-USDT-SWAP", kind=InstrumentKind.LINEAR, base="BTC", quote="USDT", contract_size=D("0.01"))
BUY, SELL = TradeSide.BUY, TradeSide.SELL


def fill(fill_id: str, side: TradeSide, qty: str, price: str, *, symbol: str = PERP.symbol, ts: int = 0,
         fee: str = "0", fee_currency: str | None = None, recv: int = 0) -> Fill:
    return Fill(symbol=symbol, fill_id=fill_id, order_id="o-" + fill_id, side=side, qty=D(qty), price=D(price),
                fee=D(fee), fee_currency=fee_currency, ts_exchange_ns=ts, ts_recv_ns=recv)


def new_ledger(*specs: InstrumentSpec) -> PositionLedger:
    ledger = PositionLedger()
    for spec in specs or (SPOT, PERP):
        ledger.add_instrument(ACCT.venue, spec)
    return ledger


def feed(ledger: PositionLedger, *fills: Fill) -> list[ApplyVerdict]:
    return [ledger.apply_fill(ACCT, f).verdict for f in fills]


def test_module_doctests_pass() -> None:
    result = doctest.testmod(bookkeeper.ledger)
    assert result.failed == 0 and result.attempted > 0


# ----------------------------------------------------------------------------- formulas
def test_spot_buy_and_sell_move_base_and_quote_and_fees_leave_their_currency() -> None:
    ledger = new_ledger()
    feed(ledger, fill("1", BUY, "0.5", "30000", symbol=SPOT.symbol, fee="0.0005", fee_currency="BTC", ts=1),
         fill("2", SELL, "0.2", "31000", symbol=SPOT.symbol, fee="6.2", ts=2),
         fill("3", BUY, "0.1", "30500", symbol=SPOT.symbol, fee="0.01", fee_currency="BNB", ts=3))
    # BTC: +0.5 - 0.0005 - 0.2 + 0.1; USDT: -15000 + 6200 - 6.2 (fee in quote when unnamed) - 3050
    assert ledger.balances(ACCT) == {"BNB": D("-0.01"), "BTC": D("0.3995"), "USDT": D("-11856.2")}
    assert ledger.positions(ACCT) == {}


def test_linear_position_opens_adds_reduces_flips_and_closes_with_contract_size() -> None:
    ledger = new_ledger()
    steps = [
        (fill("1", BUY, "2", "100", ts=1), D(2), D(100), D(0)),
        (fill("2", BUY, "2", "110", ts=2), D(4), D(105), D(0)),  # (2*100 + 2*110) / 4
        (fill("3", SELL, "1", "120", ts=3), D(3), D(105), D("0.15")),  # 1 * (120-105) * 0.01
        (fill("4", SELL, "5", "90", ts=4), D(-2), D(90), D("-0.30")),  # closes 3 at -15 each, opens 2 short at 90
        (fill("5", BUY, "2", "80", ts=5), D(0), D(0), D("-0.10")),  # 2 * (80-90) * -1 * 0.01
    ]
    for f, qty, entry, realized in steps:
        assert ledger.apply_fill(ACCT, f).verdict is ApplyVerdict.APPLIED
        assert ledger.position(ACCT, PERP.symbol) == Position(symbol=PERP.symbol, qty=qty, avg_entry_price=entry,
                                                              realized_pnl=realized)
    assert ledger.balances(ACCT) == {"USDT": D("-0.10")}  # realized PnL settles in USDT


def test_linear_fee_is_booked_in_the_settle_currency_unless_named() -> None:
    ledger = new_ledger()
    feed(ledger, fill("1", BUY, "1", "100", ts=1, fee="0.05"), fill("2", SELL, "1", "100", ts=2, fee="1", fee_currency="BNB"))
    assert ledger.balances(ACCT) == {"BNB": D(-1), "USDT": D("-0.05")}


def test_results_do_not_depend_on_the_callers_decimal_context() -> None:
    fills = [fill("1", BUY, "3", "100.123456789", ts=1), fill("2", BUY, "7", "99.87654321", ts=2),
             fill("3", SELL, "4", "101.5", ts=3)]
    reference = new_ledger()
    feed(reference, *fills)
    with localcontext(prec=4):
        ledger = new_ledger()
        feed(ledger, *fills)
        assert ledger.state() == reference.state()
    assert ledger.position(ACCT, PERP.symbol).qty == D(6)


# ----------------------------------------------------------------------------- idempotency
def test_duplicate_fill_changes_nothing_and_receipt_time_is_not_content() -> None:
    ledger = new_ledger()
    feed(ledger, fill("1", BUY, "1", "100", ts=5, recv=10))
    before = ledger.state()
    result = ledger.apply_fill(ACCT, fill("1", BUY, "1", "100", ts=5, recv=99))  # the REST copy of a WS fill
    assert (result.verdict, result.alerts, result.cursor_advanced) == (ApplyVerdict.DUPLICATE, (), False)
    assert ledger.state() == before


def test_duplicate_fill_with_different_content_keeps_the_first_and_alerts_with_evidence() -> None:
    ledger = new_ledger()
    feed(ledger, fill("1", BUY, "1", "100", ts=5))
    before = ledger.state()
    result = ledger.apply_fill(ACCT, fill("1", BUY, "2", "101", ts=5))
    assert result.verdict is ApplyVerdict.DUPLICATE
    [alert] = result.alerts
    assert (alert.kind, alert.venue, alert.account, alert.symbol) == (AccountAlertKind.FILL_CONFLICT, "okx", "main",
                                                                      PERP.symbol)
    assert alert.evidence == {"price": "kept=100 received=101", "qty": "kept=1 received=2"}
    assert ledger.state() == before


def test_same_trade_id_on_two_symbols_is_two_fills() -> None:
    # Trade ids are unique per instrument only (exchange-protocols.md §2.5: (symbol, t)).
    ledger = new_ledger()
    assert feed(ledger, fill("7", BUY, "1", "100", ts=1), fill("7", BUY, "1", "100", symbol=SPOT.symbol, ts=1)) == [
        ApplyVerdict.APPLIED, ApplyVerdict.APPLIED]
    assert len(ledger.fills(ACCT)) == 2


def test_unknown_instrument_raises_and_changes_nothing() -> None:
    ledger = new_ledger(SPOT)
    before = ledger.state()
    with pytest.raises(InvalidState):
        ledger.apply_fill(ACCT, fill("1", BUY, "1", "100", symbol="ETH-USDT"))
    assert ledger.state() == before


def test_registering_a_different_spec_for_a_symbol_raises() -> None:
    ledger = new_ledger()
    assert ledger.add_instrument(ACCT.venue, SPOT) is False
    with pytest.raises(InvalidState):
        ledger.add_instrument(ACCT.venue, InstrumentSpec(symbol=SPOT.symbol, kind=InstrumentKind.SPOT, base="BTC",
                                                         quote="USDC"))


# ----------------------------------------------------------------------------- cursor
def test_cursor_is_the_max_by_time_then_numeric_trade_id_whatever_the_arrival_order() -> None:
    ledger = new_ledger()
    results = [ledger.apply_fill(ACCT, f) for f in (fill("10", BUY, "1", "1", ts=5), fill("9", BUY, "1", "1", ts=5),
                                                     fill("3", BUY, "1", "1", ts=4), fill("11", BUY, "1", "1", ts=5))]
    assert [r.cursor_advanced for r in results] == [True, False, False, True]
    assert ledger.cursor(ACCT, PERP.symbol) == FillCursor(ts_ns=5, trade_id="11")
    assert fill_sort_key(5, "9") < fill_sort_key(5, "10") < fill_sort_key(5, "a") and fill_sort_key(5, None) < fill_sort_key(5, "0")


def test_a_late_fill_refolds_the_position_in_execution_order() -> None:
    in_order, late = new_ledger(), new_ledger()
    fills = [fill("1", BUY, "1", "100", ts=1), fill("2", SELL, "1", "110", ts=2), fill("3", BUY, "1", "120", ts=3)]
    feed(in_order, *fills)
    feed(late, fills[0], fills[2], fills[1])
    assert late.position(ACCT, PERP.symbol) == in_order.position(ACCT, PERP.symbol) == Position(
        symbol=PERP.symbol, qty=D(1), avg_entry_price=D(120), realized_pnl=D("0.10"))


def test_count_fills_counts_inclusive_time_windows() -> None:
    ledger = new_ledger()
    feed(ledger, *(fill(str(i), BUY, "1", "1", ts=ts) for i, ts in enumerate([1, 5, 5, 9])))
    assert [ledger.count_fills(ACCT, PERP.symbol, since_ns=a, until_ns=b) for a, b in [(5, 5), (1, 9), (2, 8), (6, 8), (9, 1)]] == [2, 4, 2, 0, 0]


# ----------------------------------------------------------------------------- baselines
def snapshot(as_of: int, *, usdt: str = "1000", qty: str = "0", entry: str | None = None,
             orders: list[OrderUpdate] | None = None) -> AccountSnapshot:
    positions = [PositionReport(symbol=PERP.symbol, qty=D(qty), avg_entry_price=None if entry is None else D(entry))]
    return AccountSnapshot(as_of_ns=as_of, balances={"USDT": D(usdt), "BTC": D(0)}, positions=positions,
                           open_orders=orders or [])


def test_snapshot_becomes_the_baseline_covers_older_fills_and_resets_cursors() -> None:
    ledger = new_ledger()
    feed(ledger, fill("1", BUY, "1", "100", ts=50))
    assert ledger.apply_snapshot(ACCT, snapshot(100, qty="3", entry="95")).verdict is ApplyVerdict.APPLIED
    assert ledger.position(ACCT, PERP.symbol) == Position(symbol=PERP.symbol, qty=D(3), avg_entry_price=D(95),
                                                          realized_pnl=D(0))
    assert ledger.cursors(ACCT) == {SPOT.symbol: FillCursor(ts_ns=100), PERP.symbol: FillCursor(ts_ns=100)}
    assert feed(ledger, fill("2", SELL, "1", "105", ts=100), fill("3", SELL, "1", "105", ts=101)) == [
        ApplyVerdict.COVERED, ApplyVerdict.APPLIED]
    assert ledger.position(ACCT, PERP.symbol).qty == D(2)
    assert ledger.balances(ACCT) == {"BTC": D(0), "USDT": D("1000.10")}
    assert ledger.cursor(ACCT, PERP.symbol) == FillCursor(ts_ns=101, trade_id="3")


def test_snapshot_after_newer_fills_keeps_them_on_top_of_the_baseline() -> None:
    ledger = new_ledger()
    feed(ledger, fill("9", BUY, "1", "100", ts=200))  # arrived before the REST answer of time 100
    ledger.apply_snapshot(ACCT, snapshot(100, qty="2", entry="90"))
    assert ledger.position(ACCT, PERP.symbol) == Position(symbol=PERP.symbol, qty=D(3),
                                                          avg_entry_price=D("93." + "3" * 48),  # 50 digits
                                                          realized_pnl=D(0))
    assert ledger.cursor(ACCT, PERP.symbol) == FillCursor(ts_ns=200, trade_id="9")  # never moved back


def test_older_snapshot_is_stale_and_not_applied() -> None:
    ledger = new_ledger()
    ledger.apply_snapshot(ACCT, snapshot(100))
    before = ledger.state()
    assert ledger.apply_snapshot(ACCT, snapshot(99, usdt="5")).verdict is ApplyVerdict.STALE
    assert ledger.state() == before


def test_snapshot_with_an_open_position_but_no_entry_price_is_refused() -> None:
    ledger = new_ledger()
    with pytest.raises(InvalidEvent):
        ledger.apply_snapshot(ACCT, snapshot(100, qty="1"))
    assert ledger.baseline(ACCT) is None


def test_instrument_registered_after_a_sync_starts_its_history_at_the_sync() -> None:
    ledger = new_ledger(SPOT)
    ledger.apply_snapshot(ACCT, AccountSnapshot(as_of_ns=100, balances={}))
    ledger.add_instrument(ACCT.venue, PERP)
    assert ledger.cursor(ACCT, PERP.symbol) == FillCursor(ts_ns=100)


def test_balance_updates_apply_once_and_conflicts_alert() -> None:
    ledger = new_ledger()
    ledger.apply_snapshot(ACCT, snapshot(100))
    update = BalanceUpdate(currency="USDT", delta=D("-25.5"), update_id="w1", ts_exchange_ns=150)
    assert ledger.apply_balance_update(ACCT, update).verdict is ApplyVerdict.APPLIED
    assert ledger.apply_balance_update(ACCT, update).verdict is ApplyVerdict.DUPLICATE
    conflict = ledger.apply_balance_update(ACCT, BalanceUpdate(currency="USDT", delta=D(-26), update_id="w1", ts_exchange_ns=150))
    assert conflict.alerts[0].kind is AccountAlertKind.BALANCE_UPDATE_CONFLICT
    assert conflict.alerts[0].evidence == {"delta": "kept=-25.5 received=-26"}
    assert ledger.apply_balance_update(ACCT, BalanceUpdate(currency="USDT", delta=D(1), update_id="d0", ts_exchange_ns=90)).verdict is ApplyVerdict.COVERED
    assert ledger.balances(ACCT)["USDT"] == D("974.5")


# ----------------------------------------------------------------------------- orders
def order(oid: str, status: OrderStatus, filled: str, ts: int) -> OrderUpdate:
    return OrderUpdate(symbol=SPOT.symbol, order_id=oid, side=BUY, status=status, qty=D(2), filled_qty=D(filled),
                       price=D(100), ts_exchange_ns=ts)


def test_order_reports_apply_only_forward_and_terminal_is_final() -> None:
    ledger = new_ledger()
    verdicts = [ledger.apply_order_update(ACCT, o).verdict for o in (
        order("a", OrderStatus.NEW, "0", 10), order("a", OrderStatus.PARTIALLY_FILLED, "1", 12),
        order("a", OrderStatus.NEW, "0", 10), order("a", OrderStatus.PARTIALLY_FILLED, "1", 12),
        order("a", OrderStatus.CANCELED, "1", 13), order("a", OrderStatus.PARTIALLY_FILLED, "1.5", 14))]
    assert verdicts == [ApplyVerdict.APPLIED, ApplyVerdict.APPLIED, ApplyVerdict.STALE, ApplyVerdict.DUPLICATE,
                        ApplyVerdict.APPLIED, ApplyVerdict.STALE]
    assert ledger.open_orders(ACCT) == [] and ledger.orders(ACCT)[0].status is OrderStatus.CANCELED


def test_snapshot_open_orders_replace_the_open_set_and_older_reports_are_stale() -> None:
    ledger = new_ledger()
    for o in (order("gone", OrderStatus.NEW, "0", 10), order("newer", OrderStatus.NEW, "0", 150),
              order("done", OrderStatus.FILLED, "2", 20)):
        ledger.apply_order_update(ACCT, o)
    ledger.apply_snapshot(ACCT, snapshot(100, orders=[order("kept", OrderStatus.PARTIALLY_FILLED, "1", 90)]))
    assert [o.order_id for o in ledger.open_orders(ACCT)] == ["kept", "newer"]
    assert [o.order_id for o in ledger.orders(ACCT)] == ["done", "kept", "newer"]
    assert ledger.apply_order_update(ACCT, order("gone", OrderStatus.NEW, "0", 99)).verdict is ApplyVerdict.STALE


def test_snapshot_orders_read_later_than_the_mark_close_orders_received_before_the_read() -> None:
    """A venue whose mark moves only with fills (Bybit's transaction log): the open-order list
    was read at ``orders_as_of_ns`` (receiving clock), long after the mark; an order received
    before that read and missing from the list is closed, one received after it is kept."""
    ledger = new_ledger()
    before = msgspec.structs.replace(order("cancelled-unreported", OrderStatus.NEW, "0", 150), ts_recv_ns=500)
    after = msgspec.structs.replace(order("placed-after-the-read", OrderStatus.NEW, "0", 160), ts_recv_ns=700)
    for o in (before, after):
        ledger.apply_order_update(ACCT, o)
    ledger.apply_snapshot(ACCT, msgspec.structs.replace(snapshot(100), orders_as_of_ns=600))
    assert [o.order_id for o in ledger.open_orders(ACCT)] == ["placed-after-the-read"]


# ----------------------------------------------------------------------------- reconcile
def test_reconcile_reports_drift_with_evidence_and_honours_tolerance() -> None:
    ledger = new_ledger()
    ledger.apply_snapshot(ACCT, snapshot(100, usdt="1000"))
    feed(ledger, fill("1", BUY, "2", "100", ts=101))
    venue_positions = [PositionReport(symbol=PERP.symbol, qty=D(3), avg_entry_price=D(100))]
    drifts = ledger.reconcile(ACCT, venue_positions, {"USDT": D("1000.001"), "ETH": D(1)})
    assert drifts == [
        Drift(kind=DriftKind.POSITION, account=ACCT, key=PERP.symbol, ledger_value=D(2), venue_value=D(3), difference=D(1)),
        Drift(kind=DriftKind.BALANCE, account=ACCT, key="ETH", ledger_value=D(0), venue_value=D(1), difference=D(1)),
        Drift(kind=DriftKind.BALANCE, account=ACCT, key="USDT", ledger_value=D(1000), venue_value=D("1000.001"),
              difference=D("0.001")),
    ]
    assert str(drifts[0]) == "position drift okx:main BTC-USDT-SWAP: ledger 2 venue 3 (difference 1)"
    assert ledger.reconcile(ACCT, [PositionReport(symbol=PERP.symbol, qty=D(2))], {"USDT": D("1000.001")},
                            tolerance=D("0.001")) == []


# ----------------------------------------------------------------------------- properties
SYMBOLS = (SPOT.symbol, PERP.symbol)


@st.composite
def unique_fills(draw: st.DrawFn) -> list[Fill]:
    n = draw(st.integers(min_value=0, max_value=25))
    out = []
    for i in range(n):
        out.append(Fill(
            symbol=draw(st.sampled_from(SYMBOLS)), fill_id=str(draw(st.integers(0, 3))) + f"{i:02d}",
            order_id="o", side=draw(st.sampled_from([BUY, SELL])),
            qty=D(draw(st.integers(1, 5000))) / 1000, price=D(draw(st.integers(9000, 11000))) / 100,
            fee=D(draw(st.integers(-5, 50))) / 1000, fee_currency=draw(st.sampled_from([None, "BNB"])),
            ts_exchange_ns=draw(st.integers(0, 8)), ts_recv_ns=0))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Fill], list[Fill]]:
    """(unique fills, a delivery of them: reordered, some delivered again with a new receipt time)."""
    fills = draw(unique_fills())
    copies = [f for f in fills for _ in range(draw(st.integers(1, 3)))]
    copies = [msgspec.structs.replace(f, ts_recv_ns=i) for i, f in enumerate(copies)]
    return fills, draw(st.permutations(copies))


def canonical(fills: list[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda f: (fill_sort_key(f.ts_exchange_ns, f.fill_id), f.fill_id))


def without_receipt_times(ledger: PositionLedger) -> LedgerState:
    """The ledger's state with every fill's receipt time zeroed (which copy came first is not content)."""
    state = ledger.state()
    return replace(state, fills={k: msgspec.structs.replace(f, ts_recv_ns=0) for k, f in state.fills.items()})


@given(deliveries(), st.integers(-1, 9))
def test_any_delivery_order_with_duplicates_equals_the_deduplicated_sorted_sequence(data, sync_at) -> None:
    fills, delivery = data
    snap = snapshot(sync_at, usdt="50", qty="1", entry="100") if sync_at >= 0 else None
    got, want = new_ledger(), new_ledger()
    where = len(delivery) // 2
    for i, f in enumerate(delivery):
        if snap is not None and i == where:
            got.apply_snapshot(ACCT, snap)
        got.apply_fill(ACCT, f)
    if snap is not None and where >= len(delivery):
        got.apply_snapshot(ACCT, snap)
    if snap is not None:
        want.apply_snapshot(ACCT, snap)
    for f in canonical(fills):
        want.apply_fill(ACCT, f)
    assert without_receipt_times(got) == without_receipt_times(want)
    assert got.balances(ACCT) == want.balances(ACCT) and got.positions(ACCT) == want.positions(ACCT)


def reference_model(fills: list[Fill]) -> tuple[dict[str, Fraction], Fraction, Fraction, Fraction]:
    """A naive model in exact fractions: balances, then the perp's qty, entry, realized PnL."""
    balances: dict[str, Fraction] = {}
    qty = entry = realized = Fraction(0)
    size = Fraction(PERP.contract_size)

    def add(currency: str, amount: Fraction) -> None:
        balances[currency] = balances.get(currency, Fraction(0)) + amount

    for f in canonical(fills):
        q, p, s = Fraction(f.qty), Fraction(f.price), 1 if f.side is BUY else -1
        if f.symbol == SPOT.symbol:
            add("BTC", s * q)
            add("USDT", -s * q * p)
            add(f.fee_currency or "USDT", -Fraction(f.fee))
            continue
        add(f.fee_currency or "USDT", -Fraction(f.fee))
        # walk the fill one lot at a time: the textbook average-cost definition
        remaining = q
        while remaining:
            if qty == 0 or (qty > 0) == (s > 0):
                entry = (abs(qty) * entry + remaining * p) / (abs(qty) + remaining)
                qty += s * remaining
                remaining = Fraction(0)
            else:
                closed = min(remaining, abs(qty))
                realized += closed * (p - entry) * (1 if qty > 0 else -1) * size
                qty += s * closed
                remaining -= closed
                if qty == 0:
                    entry = Fraction(0)
    if any(f.symbol == PERP.symbol for f in fills):
        add("USDT", realized)  # the settle currency's wallet balance
    return balances, qty, entry, realized


@given(deliveries())
def test_positions_and_balances_equal_a_naive_reference_model(data) -> None:
    fills, delivery = data
    ledger = new_ledger()
    for f in delivery:
        ledger.apply_fill(ACCT, f)
    balances, qty, entry, realized = reference_model(fills)
    position = ledger.position(ACCT, PERP.symbol)
    assert Fraction(position.qty) == qty
    # the ledger rounds averages to 50 significant digits; the model is exact
    assert abs(Fraction(position.avg_entry_price) - entry) < Fraction(1, 10**40)
    assert abs(Fraction(position.realized_pnl) - realized) < Fraction(1, 10**40)
    got = ledger.balances(ACCT)
    assert set(got) == set(balances)
    for currency, amount in balances.items():
        assert abs(Fraction(got[currency]) - amount) < Fraction(1, 10**40), currency
    spot_only = [f for f in fills if f.symbol == SPOT.symbol]
    if spot_only == fills:  # without averages every number is exact
        assert {c: Fraction(v) for c, v in got.items()} == balances


@given(deliveries(), st.data())
def test_applying_a_duplicate_changes_nothing(data, draw) -> None:
    fills, delivery = data
    if not fills:
        return
    ledger = new_ledger()
    for f in delivery:
        ledger.apply_fill(ACCT, f)
    before = ledger.state()
    again = draw.draw(st.sampled_from(fills))
    result = ledger.apply_fill(ACCT, again)
    assert result.verdict is ApplyVerdict.DUPLICATE and result.alerts == () and not result.cursor_advanced
    assert ledger.state() == before


@given(deliveries())
def test_cursor_is_the_max_of_applied_fills_and_never_moves_back(data) -> None:
    fills, delivery = data
    ledger = new_ledger()
    seen: dict[str, FillCursor] = {}
    for f in delivery:
        result = ledger.apply_fill(ACCT, f)
        assert result.cursor is not None
        old = seen.get(f.symbol)
        assert old is None or result.cursor.sort_key() >= old.sort_key()
        seen[f.symbol] = result.cursor
    for symbol in SYMBOLS:
        mine = [f for f in fills if f.symbol == symbol]
        if mine:
            top = canonical(mine)[-1]
            assert ledger.cursor(ACCT, symbol) == FillCursor(ts_ns=top.ts_exchange_ns, trade_id=top.fill_id)


def test_the_venues_realized_pnl_of_a_fill_is_used_instead_of_ours() -> None:
    # the venue rounds its average entry (here to 1 decimal): its PnL is what the balance follows
    ledger = PositionLedger()
    ledger.add_instrument("okx", PERP)
    ledger.apply_fill(ACCT, fill("1", BUY, "1", "100", ts=1))
    ledger.apply_fill(ACCT, fill("2", BUY, "2", "101", ts=2))  # our E = 100.666...
    ours = ledger.position(ACCT, PERP.symbol)
    assert str(ours.avg_entry_price).startswith("100.6666666666")
    venue = Fill(symbol=PERP.symbol, fill_id="3", order_id="o-3", side=SELL, qty=D("3"), price=D("102"),
                 ts_exchange_ns=3, realized_pnl=D("0.039"))  # (102 - 100.7) * 3 * 0.01
    ledger.apply_fill(ACCT, venue)
    assert ledger.position(ACCT, PERP.symbol) == Position(symbol=PERP.symbol, qty=D(0), avg_entry_price=D(0),
                                                          realized_pnl=D("0.039"))
    # without the venue's figure the ledger computes its own, (102 - 302/3) * 3 * 0.01, which a
    # 50-digit average entry cannot make exactly 0.04: no venue's balance would match it
    other = PositionLedger()
    other.add_instrument("okx", PERP)
    for f in (fill("1", BUY, "1", "100", ts=1), fill("2", BUY, "2", "101", ts=2), fill("3", SELL, "3", "102", ts=3)):
        other.apply_fill(ACCT, f)
    assert other.position(ACCT, PERP.symbol).realized_pnl == D("0.0399999999999999999999999999999999999999999999999")
