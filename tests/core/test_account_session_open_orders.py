"""Reconciliation compares open orders: an order the ledger holds open that the venue no longer
lists (its cancel report was lost on the stream and no balance moved) or one the venue lists
that the ledger never heard of is drift (alert + full sync); orders younger than the grace may
be in flight and never count. Synchronous, no mocks (the Harness of test_account_session)."""

from __future__ import annotations

from test_account_session import T0, D, Harness, S, _reconcile, kinds, order

from bookkeeper.account_session import AccountPolicy
from bookkeeper.actions import AccountAlert, AccountAlertKind, AccountPlanKind, AccountState, FullSync
from bookkeeper.events import AccountSnapshot, BalanceReport, OrderStatus

BAL = {"USDT": D("1000"), "BTC": D("0"), "ETH": D("0")}


def _synced_with_open_order(**policy: float) -> Harness:
    h = Harness(policy=AccountPolicy(reconcile_interval_s=10.0, **policy))
    h.synced_from_scratch(as_of=T0)
    h.run(h.s.handle([order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)], T0 + S))
    assert [o.order_id for o in h.ledger.open_orders(h.s.account)] == ["A"]
    return h


def _answer(h: Harness, now: int, venue_orders: list) -> list[object]:
    _reconcile(h, now)
    return h.s.reconciled(now, balances=BalanceReport(balances=BAL, ts_exchange_ns=T0), positions=None,
                          open_orders=venue_orders)


def test_an_order_the_venue_no_longer_lists_is_drift_closed_by_a_full_sync() -> None:
    h = _synced_with_open_order()
    out = _answer(h, T0 + 20 * S, [])  # the cancel report of A was lost; balances agree
    (alert,) = [a for a in out if isinstance(a, AccountAlert)]
    assert alert.kind is AccountAlertKind.DRIFT and "open orders differ" in alert.reason
    assert alert.evidence == {"open:BTCUSDT:A": "ledger=new venue=not open"}
    assert kinds(out) == [AccountAlert, FullSync] and h.s.state is AccountState.RECOVERING
    assert h.s.plans[-1].kind is AccountPlanKind.FULL_SYNC and h.s.stats.open_order_drifts == 1
    # the full sync's open-order list replaces the ledger's: A is gone
    h.ledger.apply_snapshot(h.s.account, AccountSnapshot(as_of_ns=T0 + 20 * S, balances=BAL))
    h.run(h.s.synced_full(T0 + 20 * S, T0 + 21 * S))
    assert h.ledger.open_orders(h.s.account) == [] and h.s.state is AccountState.SYNCED


def test_an_old_order_the_ledger_never_heard_of_is_drift() -> None:
    h = _synced_with_open_order()
    a = order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)
    b = order("B", filled="0", ts=T0 + 2 * S, status=OrderStatus.NEW, symbol="ETHUSDT")
    out = _answer(h, T0 + 20 * S, [a, b])
    (alert,) = [x for x in out if isinstance(x, AccountAlert)]
    assert alert.evidence == {"open:ETHUSDT:B": "ledger=unknown venue=new"}


def test_orders_within_the_grace_and_lists_that_lag_a_later_report_are_not_drift() -> None:
    h = _synced_with_open_order(open_order_grace_s=30.0)
    # A was reported 11 s before the read: its cancel may be in flight; C was placed 2 s ago
    fresh = order("C", filled="0", ts=T0 + 10 * S, status=OrderStatus.NEW)
    assert _answer(h, T0 + 12 * S, [fresh]) == []
    # the ledger has A canceled (a later report than the venue's row): the venue's list lags
    h.run(h.s.handle([order("A", filled="0", ts=T0 + 30 * S, status=OrderStatus.CANCELED)], T0 + 30 * S))
    stale_row = order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)
    assert _answer(h, T0 + 45 * S, [stale_row]) == []
    # the same lists agree: nothing to do; other venues' symbols are ignored
    h2 = _synced_with_open_order()
    same = order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)
    other = order("Z", filled="0", ts=T0, status=OrderStatus.NEW, symbol="SOLUSDT")
    assert _answer(h2, T0 + 20 * S, [same, other]) == []
    assert h.s.stats.open_order_drifts == h2.s.stats.open_order_drifts == 0


def test_without_open_orders_the_check_is_skipped() -> None:
    h = _synced_with_open_order()
    _reconcile(h, T0 + 20 * S)
    assert h.s.reconciled(T0 + 20 * S, balances=BalanceReport(balances=BAL, ts_exchange_ns=T0), positions=None) == []


def test_an_order_closed_here_is_never_drift_even_when_the_venue_lists_it_later() -> None:
    # a full sync keeps terminal reports (an order never reopens), so flagging it would repeat
    # a full sync at every reconciliation without ever settling
    h = _synced_with_open_order()
    h.run(h.s.handle([order("A", filled="0", ts=T0 + 2 * S, status=OrderStatus.CANCELED)], T0 + 2 * S))
    listed_later = order("A", filled="0", ts=T0 + 5 * S, status=OrderStatus.NEW)
    assert _answer(h, T0 + 20 * S, [listed_later]) == []
    assert h.s.stats.open_order_drifts == 0
