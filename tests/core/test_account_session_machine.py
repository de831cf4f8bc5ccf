"""AccountSession under hypothesis-generated sequences of everything a driver can feed it
(connects, closes, logins, acks, expiries, refusals, stream events, replay and full-sync
answers, ticks, reconciliations), with the invariants checked after every step:

- it never raises (``opened`` is only called while DISCONNECTED, as the driver does);
- a RECOVERING account has a running plan; a SYNCED one has none; HALTED is final;
- every state change it reports chains from the state before to the state after;
- no stream event is lost: each one handed over while connected is applied exactly once by
  the time the account is SYNCED (or counted as dropped by the bounded hold);
- events are applied only while SYNCED (directly) or when a recovery finishes.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bookkeeper.account import FillHistory, FillPaging
from bookkeeper.account_session import AccountPolicy, AccountSession
from bookkeeper.actions import (
    AccountState,
    AccountStateChanged,
    ApplyAccountEvents,
    FetchFillsSince,
    FullSync,
    Reconcile,
)
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

S = 1_000_000_000
ACCT = AccountKey(venue="x", account="main")
SYMS = ("AAA", "BBB")
HISTORY = FillHistory(page_size=100, paging=FillPaging.TIME_RANGE, retention_ns=60 * S)
_S = AccountState


class AccountSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = PositionLedger()
        for sym in SYMS:
            self.ledger.add_instrument("x", InstrumentSpec(symbol=sym, kind=InstrumentKind.SPOT, base=sym, quote="USD"))
        self.now = 1_000 * S
        self.s = AccountSession(ACCT, SYMS, history=HISTORY, ledger=self.ledger, session_lifetime_s=30.0,
                                channels=("orders", "account"),
                                policy=AccountPolicy(reconcile_interval_s=2.0, max_held_events=6, lookback_s=1.0),
                                now_ns=self.now)
        self.next_id = 1
        self.given: list[object] = []  # data events handed over while connected
        self.applied: list[object] = []
        self.pending: list[object] = []  # REST work the session asked for, not yet answered

    # -- the driver ---------------------------------------------------------------------------
    def _feed(self, before: AccountState, actions: list[object]) -> None:
        state = before
        for a in actions:
            if isinstance(a, AccountStateChanged):
                assert a.old is state, (a, state)
                state = a.new
            elif isinstance(a, ApplyAccountEvents):
                for e in a.events:
                    if isinstance(e, Fill):
                        self.ledger.apply_fill(ACCT, e)
                    self.applied.append(e)
            elif isinstance(a, (FetchFillsSince, FullSync)):
                self.pending.append(a)
            elif isinstance(a, Reconcile):
                self.pending.append(a)
        assert state is self.s.state, (state, self.s.state)

    def _call(self, fn: object, *args: object, **kw: object) -> None:
        before = self.s.state
        self._feed(before, fn(*args, **kw))  # type: ignore[operator]

    @rule(dt=st.integers(1, 3 * S))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        self._call(self.s.tick, self.now)

    @precondition(lambda self: self.s.state is _S.DISCONNECTED)
    @rule()
    def connect(self) -> None:
        self.pending.clear()
        self._call(self.s.opened, self.now)

    @rule(reason=st.sampled_from(list(CloseReason)))
    def disconnect(self, reason: CloseReason) -> None:
        self.pending.clear()  # the driver cancels its REST work on a disconnect
        self._call(self.s.closed, self.now, reason)

    @rule(kind=st.sampled_from([PrivateControlKind.LOGGED_IN, PrivateControlKind.SESSION_EXPIRED,
                                PrivateControlKind.SHUTDOWN_NOTICE, PrivateControlKind.ERROR]),
          channel=st.sampled_from([None, "orders", "account", "other"]))
    def control(self, kind: PrivateControlKind, channel: str | None) -> None:
        self._call(self.s.handle, [PrivateControl(kind=kind, channel=channel)], self.now)

    @rule(channel=st.sampled_from(["orders", "account"]))
    def ack(self, channel: str) -> None:
        self._call(self.s.handle, [PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel=channel)], self.now)

    @rule(n=st.integers(1, 3), sym=st.sampled_from(SYMS), with_order=st.booleans())
    def stream(self, n: int, sym: str, with_order: bool) -> None:
        events: list[object] = []
        for _ in range(n):
            fid = str(self.next_id)
            self.next_id += 1
            self.now += 1_000_000
            events.append(Fill(symbol=sym, fill_id=fid, order_id=f"o{fid}", side=TradeSide.BUY, price=Decimal("10"),
                               qty=Decimal("1"), ts_exchange_ns=self.now))
            if with_order:
                events.append(OrderUpdate(symbol=sym, order_id=f"o{fid}", side=TradeSide.BUY,
                                          status=OrderStatus.FILLED, qty=Decimal("1"), filled_qty=Decimal("1"),
                                          ts_exchange_ns=self.now))
        if self.s.state not in (_S.DISCONNECTED, _S.HALTED):
            self.given.extend(events)
        self._call(self.s.handle, events, self.now)

    @rule(code=st.sampled_from(["-1022", "60009"]), roll=st.integers(0, 30))
    def refused(self, code: str, roll: int) -> None:
        if roll:  # rare: a refusal ends the run (HALTED is final)
            return
        self._call(self.s.handle, [PrivateControl(kind=PrivateControlKind.AUTH_REJECTED, code=code)], self.now)

    @precondition(lambda self: self.s.state is _S.AUTHENTICATING)
    @rule()
    def login_and_subscribe(self) -> None:
        """The usual answer sequence in one step (the separate rules mix it up)."""
        self._call(self.s.handle, [PrivateControl(kind=PrivateControlKind.LOGGED_IN)], self.now)
        for channel in ("orders", "account"):
            self._call(self.s.handle, [PrivateControl(kind=PrivateControlKind.SUBSCRIBED, channel=channel)], self.now)

    @precondition(lambda self: any(isinstance(p, (FetchFillsSince, FullSync)) for p in self.pending))
    @rule(exhausted=st.booleans(), data=st.data())
    def answer_rest(self, exhausted: bool, data: st.DataObject) -> None:
        work = [p for p in self.pending if isinstance(p, (FetchFillsSince, FullSync))]
        action = data.draw(st.sampled_from(work))
        self.pending.remove(action)
        if isinstance(action, FullSync):
            snap = AccountSnapshot(as_of_ns=self.now, balances={"USD": Decimal("100")})
            self.ledger.apply_snapshot(ACCT, snap)
            self._call(self.s.synced_full, self.now, self.now)
        else:
            self._call(self.s.replayed, action.symbol, exhausted=exhausted, pages=1, newest_ns=None, now_ns=self.now)

    @precondition(lambda self: any(isinstance(p, (FetchFillsSince, FullSync)) for p in self.pending))
    @rule()
    def rest_fails(self) -> None:
        self.pending = [p for p in self.pending if isinstance(p, Reconcile)]
        self._call(self.s.recovery_failed, self.now, "HTTP 500")

    @precondition(lambda self: any(isinstance(p, Reconcile) for p in self.pending))
    @rule(offset=st.integers(-2 * S, 2 * S), drift=st.booleans())
    def answer_reconcile(self, offset: int, drift: bool) -> None:
        self.pending = [p for p in self.pending if not isinstance(p, Reconcile)]
        balances = dict(self.ledger.balances(ACCT))
        if drift:
            balances["USD"] = balances.get("USD", Decimal(0)) + 1
        as_of = max(self.s.known_ns + offset, 0) if offset else self.s.known_ns
        self._call(self.s.reconciled, self.now, balances=BalanceReport(balances=balances, ts_exchange_ns=as_of),
                   positions=None)

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def plan_matches_state(self) -> None:
        if self.s.state is _S.RECOVERING:
            assert self.s.plan is not None
        else:
            assert self.s.plan is None

    @invariant()
    def nothing_is_lost_once_synced(self) -> None:
        if self.s.state is not _S.SYNCED:
            return
        applied_ids = [id(e) for e in self.applied]
        assert len(applied_ids) == len(set(applied_ids)), "an event was applied twice"
        missing = [e for e in self.given if id(e) not in set(applied_ids)]
        assert len(missing) <= self.s.stats.held_dropped, (len(missing), self.s.stats.held_dropped)


AccountSessionMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestAccountSessionMachine = AccountSessionMachine.TestCase
