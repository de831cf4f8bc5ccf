"""AccountSession: the private stream's state machine. Synchronous, no mocks: feed events,
assert on the returned actions and the public state. A tiny "driver" here applies
``ApplyAccountEvents`` to a real ledger, as the I/O layer does through the store."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookkeeper.account import FillHistory, FillPaging
from bookkeeper.account_session import AccountPolicy, AccountSession
from bookkeeper.actions import (
    AccountAlert,
    AccountAlertKind,
    AccountPlanKind,
    AccountState,
    AccountStateChanged,
    ApplyAccountEvents,
    FetchFillsSince,
    FillCursor,
    FullSync,
    HaltAccount,
    Login,
    Reconcile,
    ReconnectPrivate,
    SubscribePrivate,
)
from bookkeeper.errors import InvalidState
from bookkeeper.events import (
    AccountSnapshot,
    BalanceReport,
    CloseReason,
    Fill,
    OrderStatus,
    OrderUpdate,
    PrivateControl,
    PrivateControlKind,
)
from bookkeeper.ledger import AccountKey, InstrumentKind, InstrumentSpec, PositionLedger
from bookkeeper.types import TradeSide

D = Decimal
S = 1_000_000_000
T0 = 1_800_000_000 * S
ACCT = AccountKey(venue="binance", account="main")
SYMS = ("BTCUSDT", "ETHUSDT")
BINANCE = FillHistory(page_size=1000, paging=FillPaging.FROM_ID, max_span_ns=86_400 * S)
OKXLIKE = FillHistory(page_size=100, paging=FillPaging.TIME_RANGE, retention_ns=30 * S)
LOGGED_IN = PrivateControl(kind=PrivateControlKind.LOGGED_IN)
EXPIRED = PrivateControl(kind=PrivateControlKind.SESSION_EXPIRED, message="eventStreamTerminated")


def kinds(actions: list[object]) -> list[type]:
    return [type(a) for a in actions if not isinstance(a, AccountStateChanged)]


def fill(n: int, *, symbol: str = "BTCUSDT", ts: int, qty: str = "1", order: str | None = None,
         side: TradeSide = TradeSide.BUY) -> Fill:
    return Fill(symbol=symbol, fill_id=str(n), order_id=order or f"o{n}", side=side, price=D("100"), qty=D(qty),
                fee=D("0.1"), fee_currency="USDT", ts_exchange_ns=ts)


def order(oid: str, *, filled: str, qty: str = "3", ts: int, status: OrderStatus = OrderStatus.PARTIALLY_FILLED,
          symbol: str = "BTCUSDT") -> OrderUpdate:
    return OrderUpdate(symbol=symbol, order_id=oid, side=TradeSide.BUY, status=status, qty=D(qty),
                       filled_qty=D(filled), price=D("100"), ts_exchange_ns=ts)


class Harness:
    """The session plus a real ledger, applying what the session says to apply."""

    def __init__(self, *, history: FillHistory = BINANCE, channels: tuple[str, ...] = (), lifetime: float | None = None,
                 policy: AccountPolicy | None = None, ledger: PositionLedger | None = None) -> None:
        self.ledger = ledger or PositionLedger()
        for sym in SYMS:
            self.ledger.add_instrument("binance", InstrumentSpec(symbol=sym, kind=InstrumentKind.SPOT,
                                                                 base=sym[:3], quote="USDT"))
        self.s = AccountSession(ACCT, SYMS, history=history, ledger=self.ledger, session_lifetime_s=lifetime,
                                channels=channels, policy=policy or AccountPolicy(reconcile_interval_s=10.0),
                                now_ns=T0)

    def run(self, actions: list[object]) -> list[object]:
        for a in actions:
            if isinstance(a, ApplyAccountEvents):
                for e in a.events:
                    if isinstance(e, Fill):
                        self.ledger.apply_fill(ACCT, e)
                    elif isinstance(e, OrderUpdate):
                        self.ledger.apply_order_update(ACCT, e)
        return actions

    def full_sync(self, as_of: int, balances: dict[str, Decimal] | None = None, now: int | None = None) -> list[object]:
        snap = AccountSnapshot(as_of_ns=as_of, balances=balances or {"USDT": D("1000"), "BTC": D("0"), "ETH": D("0")})
        self.ledger.apply_snapshot(ACCT, snap)
        return self.run(self.s.synced_full(as_of, now or as_of + S))

    def synced_from_scratch(self, as_of: int = T0) -> None:
        self.run(self.s.opened(T0))
        out = self.run(self.s.handle([LOGGED_IN], T0))
        assert kinds(out) == [FullSync]
        self.full_sync(as_of)
        assert self.s.state is AccountState.SYNCED


def test_first_start_logs_in_then_full_syncs_then_applies_the_stream() -> None:
    h = Harness()
    assert h.s.state is AccountState.DISCONNECTED
    out = h.s.opened(T0)
    assert kinds(out) == [Login] and h.s.state is AccountState.AUTHENTICATING
    out = h.s.handle([LOGGED_IN], T0 + 1)
    assert h.s.state is AccountState.RECOVERING
    (sync,) = [a for a in out if isinstance(a, FullSync)]
    assert "never synced" in sync.reason
    # a fill arriving during the full sync is held, then applied after it
    f1 = fill(1, ts=T0 + 2 * S)
    assert h.s.handle([f1], T0 + 2 * S) == []
    out = h.full_sync(T0 + S)
    applied = [a for a in out if isinstance(a, ApplyAccountEvents)]
    assert applied and applied[0].events == (f1,)
    assert h.s.state is AccountState.SYNCED
    assert h.ledger.balances(ACCT)["BTC"] == D("1")
    out = h.run(h.s.handle([fill(2, ts=T0 + 3 * S)], T0 + 3 * S))
    assert kinds(out) == [ApplyAccountEvents]
    assert [p.kind for p in h.s.plans] == [AccountPlanKind.FULL_SYNC]


def test_subscription_completes_only_when_every_channel_is_acked() -> None:
    h = Harness(channels=("orders", "account"))
    h.s.opened(T0)
    out = h.s.handle([LOGGED_IN], T0)
    assert kinds(out) == [SubscribePrivate] and h.s.state is AccountState.SUBSCRIBING
    assert h.s.handle([PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel="orders")], T0) == []
    out = h.s.handle([PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel="account")], T0)
    assert kinds(out) == [FullSync] and h.s.state is AccountState.RECOVERING


def test_short_disconnect_replays_from_the_cursors_and_applies_held_events_after() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([fill(10, ts=T0 + 2 * S)], T0 + 2 * S))
    out = h.s.closed(T0 + 3 * S, CloseReason.ABNORMAL_CLOSURE)
    assert h.s.state is AccountState.DISCONNECTED and kinds(out) == []
    h.s.opened(T0 + 4 * S)
    out = h.s.handle([LOGGED_IN], T0 + 5 * S)
    replays = [a for a in out if isinstance(a, FetchFillsSince)]
    assert {a.symbol for a in replays} == set(SYMS)
    btc = next(a for a in replays if a.symbol == "BTCUSDT")
    assert btc.cursor == FillCursor(ts_ns=T0 + 2 * S, trade_id="10")
    assert h.s.plans[-1].kind is AccountPlanKind.REPLAY and "disconnect" in h.s.plans[-1].reason
    held = fill(12, ts=T0 + 6 * S)
    assert h.s.handle([held], T0 + 6 * S) == []
    # the replay found fill 11, which the stream never delivered
    h.ledger.apply_fill(ACCT, fill(11, ts=T0 + 3 * S))
    assert h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=T0 + 3 * S, now_ns=T0 + 7 * S) == []
    out = h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 7 * S))
    assert [a.events for a in out if isinstance(a, ApplyAccountEvents)] == [(held,)]
    assert h.s.state is AccountState.SYNCED
    assert [f.fill_id for f in h.ledger.fills(ACCT, "BTCUSDT")] == ["10", "11", "12"]


def test_replay_that_hits_its_page_cap_escalates_to_a_full_sync() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([fill(10, ts=T0 + 2 * S)], T0 + 2 * S))
    h.s.closed(T0 + 3 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 4 * S)
    h.s.handle([LOGGED_IN], T0 + 5 * S)
    out = h.s.replayed("BTCUSDT", exhausted=False, pages=3, newest_ns=None, now_ns=T0 + 6 * S)
    (sync,) = [a for a in out if isinstance(a, FullSync)]
    assert "escalated" in sync.reason and "3 pages used, history left" in sync.reason
    # the replay ran (and is kept), then its escalation
    assert [p.kind for p in h.s.plans] == [AccountPlanKind.FULL_SYNC, AccountPlanKind.REPLAY, AccountPlanKind.FULL_SYNC]
    assert (h.s.stats.replays, h.s.stats.full_syncs, h.s.stats.escalations) == (1, 2, 1)
    # the other symbol's late answer belongs to a plan that no longer runs
    assert h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 6 * S) == []
    h.full_sync(T0 + 6 * S)
    assert h.s.state is AccountState.SYNCED


def test_gap_beyond_the_history_window_full_syncs_and_one_inside_replays() -> None:
    # window 30 s (scaled), lookback 5 s, the gap opened at T0 + 2 s: a replay reads from
    # T0 - 3 s up to 5 s past now, so it is possible until T0 + 22 s inclusive, and not a
    # nanosecond later
    for opened_at, expected in ((T0 + 22 * S, AccountPlanKind.REPLAY), (T0 + 22 * S + 1, AccountPlanKind.FULL_SYNC)):
        h = Harness(history=OKXLIKE)
        h.synced_from_scratch()
        h.run(h.s.handle([fill(10, ts=T0 + S)], T0 + S))
        h.s.closed(T0 + 2 * S, CloseReason.ABNORMAL_CLOSURE)
        h.s.opened(opened_at)
        out = h.s.handle([LOGGED_IN], opened_at)
        assert h.s.plans[-1].kind is expected, (opened_at - T0, h.s.plans[-1].reason)
        if expected is AccountPlanKind.REPLAY:
            # both symbols read from the gap's start (ETH's last event is the T0 full sync)
            assert {a.cursor for a in out if isinstance(a, FetchFillsSince)} == {FillCursor(ts_ns=T0 + 2 * S)}


def test_id_paged_venue_keeps_the_trade_id_cursor_of_a_quiet_symbol() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([fill(10, ts=T0 + S)], T0 + S))
    h.s.closed(T0 + 500 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 501 * S)
    out = h.s.handle([LOGGED_IN], T0 + 501 * S)
    cursors = {a.symbol: a.cursor for a in out if isinstance(a, FetchFillsSince)}
    assert cursors == {"BTCUSDT": FillCursor(ts_ns=T0 + S, trade_id="10"), "ETHUSDT": FillCursor(ts_ns=T0 + 500 * S)}


def test_session_expiry_logs_in_once_without_reconnecting_then_recovers() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([fill(10, ts=T0 + 2 * S)], T0 + 2 * S))
    out = h.s.handle([EXPIRED], T0 + 3 * S)
    assert kinds(out) == [Login] and h.s.state is AccountState.AUTHENTICATING
    # fills during the re-login are held, not applied
    assert h.s.handle([fill(11, ts=T0 + 4 * S)], T0 + 4 * S) == []
    out = h.s.handle([LOGGED_IN], T0 + 5 * S)
    assert kinds(out) == [FetchFillsSince, FetchFillsSince]
    assert "session_expired" in h.s.plans[-1].reason
    assert (h.s.stats.relogins, h.s.stats.rotations) == (1, 0)


def test_second_expiry_during_relogin_rotates_the_connection_instead_of_looping() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.s.handle([EXPIRED], T0 + 3 * S)
    out = h.s.handle([EXPIRED], T0 + 4 * S)
    assert kinds(out) == [ReconnectPrivate]
    assert h.s.stats.relogins == 1


def test_refused_credentials_halt_and_are_never_retried() -> None:
    h = Harness()
    h.s.opened(T0)
    out = h.s.handle([PrivateControl(kind=PrivateControlKind.AUTH_REJECTED, code="-1022", message="bad sig")], T0)
    assert kinds(out) == [AccountAlert, HaltAccount]
    assert h.s.state is AccountState.HALTED
    alert = next(a for a in out if isinstance(a, AccountAlert))
    assert alert.kind is AccountAlertKind.AUTH_REJECTED and alert.evidence == {"code": "-1022"}
    with pytest.raises(InvalidState):
        h.s.opened(T0 + S)


def test_order_cumulative_quantity_ahead_of_its_fills_replays_that_symbol() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([order("A", filled="0", ts=T0 + S, status=OrderStatus.NEW)], T0 + S))
    h.run(h.s.handle([fill(1, ts=T0 + 2 * S, order="A"), order("A", filled="1", ts=T0 + 2 * S)], T0 + 2 * S))
    assert h.s.state is AccountState.SYNCED
    # the fill of 1 more was dropped; the next report says 3 filled with a fill of 1
    out = h.run(h.s.handle([fill(3, ts=T0 + 4 * S, order="A"), order("A", filled="3", ts=T0 + 4 * S)], T0 + 4 * S))
    assert h.s.state is AccountState.RECOVERING
    (replay,) = [a for a in out if isinstance(a, FetchFillsSince)]
    assert replay.symbol == "BTCUSDT"
    assert replay.cursor.trade_id is None and replay.cursor.ts_ns <= T0 + 2 * S  # behind the cursor
    assert h.s.stats.order_gaps == 1


def _reconcile(h: Harness, now: int) -> list[object]:
    out = h.s.tick(now)
    assert kinds(out) == [Reconcile]
    return out


def test_reconcile_clean_then_a_dropped_fill_is_found_by_a_replay_from_the_clean_point() -> None:
    h = Harness()
    h.synced_from_scratch(as_of=T0)
    h.run(h.s.handle([fill(1, ts=T0 + S)], T0 + S))
    _reconcile(h, T0 + 11 * S)
    venue = {"USDT": D("1000") - D("100") - D("0.1"), "BTC": D("1"), "ETH": D("0")}
    assert h.s.reconciled(T0 + 11 * S, balances=BalanceReport(balances=venue, ts_exchange_ns=T0 + S),
                          positions=None) == []
    # equal at T0 + 1 s and nothing changed until the read: clean up to the read (less the lookback)
    assert h.s.clean_ns == T0 + 6 * S
    # fill 2 is dropped on the stream; fill 3 arrives: the cursor is past fill 2
    h.run(h.s.handle([fill(3, ts=T0 + 13 * S)], T0 + 13 * S))
    _reconcile(h, T0 + 21 * S)
    venue = {"USDT": D("1000") - 3 * D("100.1"), "BTC": D("3"), "ETH": D("0")}
    out = h.s.reconciled(T0 + 21 * S, balances=BalanceReport(balances=venue, ts_exchange_ns=T0 + 13 * S),
                         positions=None)
    replays = [a for a in out if isinstance(a, FetchFillsSince)]
    assert h.s.state is AccountState.RECOVERING and len(replays) == 2
    assert all(a.cursor == FillCursor(ts_ns=T0 + 6 * S) for a in replays)  # from the clean point
    h.ledger.apply_fill(ACCT, fill(2, ts=T0 + 12 * S))
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=T0 + 13 * S, now_ns=T0 + 22 * S)
    h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 22 * S)
    # verified at once: clean
    _reconcile(h, T0 + 22 * S)
    assert h.s.reconciled(T0 + 22 * S, balances=BalanceReport(balances=venue, ts_exchange_ns=T0 + 13 * S),
                          positions=None) == []
    assert h.s.clean_ns == T0 + 17 * S and h.s.stats.drifts == 0


def test_drift_a_replay_cannot_explain_is_alerted_with_evidence_and_full_synced() -> None:
    h = Harness()
    h.synced_from_scratch(as_of=T0)
    wrong = {"USDT": D("999"), "BTC": D("0"), "ETH": D("0")}
    _reconcile(h, T0 + 11 * S)
    out = h.s.reconciled(T0 + 11 * S, balances=BalanceReport(balances=wrong, ts_exchange_ns=T0), positions=None)
    assert kinds(out) == [FetchFillsSince, FetchFillsSince]
    h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 12 * S)
    h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 12 * S)
    _reconcile(h, T0 + 12 * S)
    out = h.s.reconciled(T0 + 12 * S, balances=BalanceReport(balances=wrong, ts_exchange_ns=T0), positions=None)
    alert = next(a for a in out if isinstance(a, AccountAlert))
    assert alert.kind is AccountAlertKind.DRIFT
    assert alert.evidence == {"balance:USDT": "ledger=1000 venue=999"}
    assert kinds(out) == [AccountAlert, FullSync]
    assert h.s.stats.drifts == 1


def test_venue_change_we_never_heard_of_twice_means_lost_events() -> None:
    h = Harness()
    h.synced_from_scratch(as_of=T0)
    bal = {"USDT": D("1000"), "BTC": D("0"), "ETH": D("0")}
    _reconcile(h, T0 + 11 * S)
    assert h.s.reconciled(T0 + 11 * S, balances=BalanceReport(balances=bal, ts_exchange_ns=T0 + 5 * S),
                          positions=None) == []  # once: maybe in flight
    out = h.s.tick(T0 + 13 * S)  # re-checked soon, not a full interval later
    assert kinds(out) == [Reconcile]
    out = h.s.reconciled(T0 + 13 * S, balances=BalanceReport(balances=bal, ts_exchange_ns=T0 + 5 * S), positions=None)
    assert kinds(out) == [FetchFillsSince, FetchFillsSince]
    assert "twice" in h.s.plans[-1].reason


def test_venue_answer_older_than_what_we_know_is_not_compared() -> None:
    h = Harness()
    h.synced_from_scratch(as_of=T0)
    h.run(h.s.handle([fill(1, ts=T0 + 5 * S)], T0 + 5 * S))
    _reconcile(h, T0 + 11 * S)
    stale = {"USDT": D("1000"), "BTC": D("0"), "ETH": D("0")}
    assert h.s.reconciled(T0 + 11 * S, balances=BalanceReport(balances=stale, ts_exchange_ns=T0 + 4 * S),
                          positions=None) == []
    assert h.s.stats.reconcile_skipped == 1 and h.s.state is AccountState.SYNCED


def test_documented_session_lifetime_rotates_the_connection_before_it_ends() -> None:
    h = Harness(lifetime=100.0, policy=AccountPolicy(reconcile_interval_s=None, relogin_margin_s=10.0))
    h.synced_from_scratch()
    assert h.s.tick(T0 + 89 * S) == []
    assert kinds(h.s.tick(T0 + 90 * S)) == [ReconnectPrivate]
    assert h.s.tick(T0 + 91 * S) == []  # once per session


def test_scaled_lifetime_never_rotates_right_after_login() -> None:
    h = Harness(lifetime=10.0, policy=AccountPolicy(reconcile_interval_s=None, relogin_margin_s=300.0))
    h.synced_from_scratch()
    assert h.s.tick(T0 + 7 * S) == []
    assert kinds(h.s.tick(T0 + 8 * S)) == [ReconnectPrivate]


def test_held_events_beyond_the_bound_turn_a_replay_into_a_full_sync() -> None:
    h = Harness(policy=AccountPolicy(max_held_events=2, reconcile_interval_s=None))
    h.synced_from_scratch()
    h.run(h.s.handle([fill(1, ts=T0 + S)], T0 + S))
    h.s.closed(T0 + 2 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 3 * S)
    h.s.handle([LOGGED_IN], T0 + 3 * S)
    assert h.s.plans[-1].kind is AccountPlanKind.REPLAY
    h.s.handle([fill(2, ts=T0 + 4 * S), fill(3, ts=T0 + 4 * S)], T0 + 4 * S)
    out = h.s.handle([fill(4, ts=T0 + 5 * S)], T0 + 5 * S)
    assert kinds(out) == [FullSync] and h.s.stats.held_dropped == 1


def test_restart_from_a_store_with_cursors_replays_instead_of_full_syncing() -> None:
    first = Harness()
    first.synced_from_scratch()
    first.run(first.s.handle([fill(7, ts=T0 + 2 * S)], T0 + 2 * S))
    # a new process: a new session over the same (reloaded) ledger
    h = Harness(ledger=first.ledger)
    h.s.opened(T0 + 60 * S)
    out = h.s.handle([LOGGED_IN], T0 + 60 * S)
    replays = [a for a in out if isinstance(a, FetchFillsSince)]
    assert {a.symbol: a.cursor for a in replays}["BTCUSDT"] == FillCursor(ts_ns=T0 + 2 * S, trade_id="7")
    assert "start" in h.s.plans[-1].reason


def test_order_partly_filled_before_a_full_sync_is_not_an_order_gap() -> None:
    h = Harness()
    h.run(h.s.opened(T0))
    h.run(h.s.handle([LOGGED_IN], T0))
    # the full sync lists order B open with 2 already filled (those fills are in the baseline)
    snap = AccountSnapshot(as_of_ns=T0, balances={"USDT": D("1000")},
                           open_orders=[order("B", filled="2", ts=T0 - S)])
    h.ledger.apply_snapshot(ACCT, snap)
    h.run(h.s.synced_full(T0, T0 + S))
    out = h.run(h.s.handle([fill(9, ts=T0 + 2 * S, order="B"), order("B", filled="3", ts=T0 + 2 * S)], T0 + 2 * S))
    assert kinds(out) == [ApplyAccountEvents] and h.s.state is AccountState.SYNCED
    assert h.s.stats.order_gaps == 0


def test_fills_a_replay_found_count_for_the_order_afterwards() -> None:
    h = Harness()
    h.synced_from_scratch()
    h.run(h.s.handle([fill(1, ts=T0 + S, order="C"), order("C", filled="1", ts=T0 + S)], T0 + S))
    h.s.closed(T0 + 2 * S, CloseReason.ABNORMAL_CLOSURE)
    h.s.opened(T0 + 3 * S)
    h.s.handle([LOGGED_IN], T0 + 3 * S)
    h.ledger.apply_fill(ACCT, fill(2, ts=T0 + 2 * S, order="C"))  # found by the replay
    h.run(h.s.replayed("BTCUSDT", exhausted=True, pages=1, newest_ns=T0 + 2 * S, now_ns=T0 + 4 * S))
    h.run(h.s.replayed("ETHUSDT", exhausted=True, pages=1, newest_ns=None, now_ns=T0 + 4 * S))
    out = h.run(h.s.handle([fill(3, ts=T0 + 5 * S, order="C"), order("C", filled="3", ts=T0 + 5 * S)], T0 + 5 * S))
    assert kinds(out) == [ApplyAccountEvents] and h.s.stats.order_gaps == 0


def test_venue_mark_that_ignores_order_events_is_still_comparable() -> None:
    # Bybit's transaction log moves with fills only: after a fill at t1 and an order placement
    # at t2, the venue's mark is t1 and the numbers are comparable (nothing moved them after t1)
    h = Harness()
    h.synced_from_scratch(as_of=T0)
    h.run(h.s.handle([fill(1, ts=T0 + S)], T0 + S))
    h.run(h.s.handle([order("N", filled="0", ts=T0 + 2 * S, status=OrderStatus.NEW)], T0 + 2 * S))
    _reconcile(h, T0 + 11 * S)
    venue = {"USDT": D("1000") - D("100") - D("0.1"), "BTC": D("1"), "ETH": D("0")}
    assert h.s.reconciled(T0 + 11 * S, balances=BalanceReport(balances=venue, ts_exchange_ns=T0 + S),
                          positions=None) == []
    assert h.s.stats.reconcile_skipped == 0 and h.s.clean_ns == T0 + 6 * S
    # an answer from before the fill is not comparable
    _reconcile(h, T0 + 21 * S)
    old = {"USDT": D("1000"), "BTC": D("0"), "ETH": D("0")}
    assert h.s.reconciled(T0 + 21 * S, balances=BalanceReport(balances=old, ts_exchange_ns=T0 + S // 2),
                          positions=None) == []
    assert h.s.stats.reconcile_skipped == 1
