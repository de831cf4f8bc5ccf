"""AccountSession: one account's private stream as a pure state machine.

Theory of operation
-------------------
The account driver (``bookkeeper.io.account``) owns one private connection per account. It
feeds this object what happened (the connection opened or closed, the decoded private events
of each frame, the results of the REST work it was asked to do, and the clock as ``Tick``-like
``now_ns`` arguments) and runs the actions it returns. Nothing here reads a clock, a socket or
a file; the ledger it is given is read (cursors, fill counts, reconcile) but only the driver
writes to it (through the durable store), when told to by :class:`ApplyAccountEvents`.

States (:class:`~bookkeeper.actions.AccountState`)::

    DISCONNECTED --opened--> AUTHENTICATING --LOGGED_IN--> SUBSCRIBING --acks--> RECOVERING
         ^                        |  ^                                              |
         |                 AUTH_REJECTED  SESSION_EXPIRED (log in again, once)   plan done
         |                        v                                                 v
      closed (any state but HALTED)  HALTED                     SYNCED <--------- (buffer applied)

- **Every gap is closed from REST** (exchange-protocols.md §2.4: no venue numbers a user's
  private events gaplessly). A gap starts when the stream may have missed something: the
  connection closed, the venue ended the session, a restart, an order whose cumulative filled
  quantity skipped a fill, or a reconciliation that found the venue changed after the last
  event we know of. Once the channel is back (logged in and subscribed, so nothing new can be
  missed), :func:`bookkeeper.account.plan_account_recovery` picks **replay** (fills from the
  ledger's cursors, within the venue's history window and the page budget) or a **full sync**
  (balances, positions, open orders as a new baseline). Stream events that arrive meanwhile
  are held (bounded) and applied after the recovery's own fills, in arrival order; the ledger
  drops what it already has (idempotent by trade id).
- **Re-authentication** happens once per expiry, before resubscribing: a ``SESSION_EXPIRED``
  notice answers with one :class:`~bookkeeper.actions.Login` on the same connection (no
  reconnect, so an expiry never becomes a reconnect storm); a second expiry while that login
  is pending, or a venue that documents a session lifetime (Binance WS API: 24 h) nearing its
  end (``relogin_margin_s`` before it), rotates the connection instead
  (:class:`~bookkeeper.actions.ReconnectPrivate`).
- **Refused credentials halt** the account (``AUTH_REJECTED``): the same key would be refused
  again, so nothing is retried until the operator acts.
- **Reconciliation** (every ``reconcile_interval_s`` while SYNCED): the driver reads the
  venue's balances (with the venue's last-change time ``as_of``) and positions. The numbers are
  only comparable when the venue's ``as_of`` lies between the newest balance-changing event the
  session knows of (fill, balance update, baseline) and its newest event of any kind (nothing
  in flight either way; order placements move some venues' marks and not others'). Comparable and equal: the ledger is *clean* at ``as_of``.
  Comparable and different, or the venue showing a change we never heard of on two checks in
  a row: a replay from the last clean point (so a fill dropped from the stream, whose trade id
  is behind the cursor, is found). Drift that survives that replay is reported with its
  evidence (:class:`~bookkeeper.actions.AccountAlert` ``DRIFT``) and closed by a full sync.
  When the numbers are clean, the venue's open orders are compared too: an order the ledger
  holds open that the venue no longer lists (its cancel or last fill report was lost, and no
  balance moved), or one the venue lists that the ledger never heard of, is drift as well
  (alert, then a full sync, which replaces the open-order list). Only orders whose last report
  is older than ``open_order_grace_s`` count: one placed or cancelled seconds ago may still be
  in flight either way.
- **Order gaps**: venues report each order's cumulative filled quantity (Binance ``z``, OKX
  ``accFillSz``, §2.5). When it runs ahead of the fills seen for that order, a fill was lost:
  replay that symbol from the order's previous report. One replay per order and reported
  quantity (a fill the replay cannot fetch does not loop), and reports at or before the
  latest baseline prove nothing (their fills are in its numbers). Held events are checked too,
  when a recovery applies them. A venue that never streams fills (Coinbase's ``user``
  channel, §8.6: orders only) goes through this path for every fill: the order report is the
  signal, the replay fetches the fill records.
- **Stream gaps** (``PrivateControlKind.STREAM_GAP``): a private stream that numbers its
  messages (Coinbase ``sequence_num``, per connection) tells when the connection lost one,
  whatever it carried. While SYNCED: replay every symbol from the last message received
  before the gap (``since_ns``). During a recovery the held events are incomplete: the same
  replay follows as soon as the recovery is done. Before a recovery is planned (logging in,
  subscribing) nothing is needed: the plan made once subscribed reads up to that moment.

Every plan is kept (:attr:`AccountSession.plans`) with its reason, for records and metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .account import AccountGap, AccountRecoveryPlan, escalate_to_full_sync, estimate_fills, plan_account_recovery
from .actions import (
    AccountAction,
    AccountAlert,
    AccountAlertKind,
    AccountPlanKind,
    AccountReason,
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
from .capabilities import FillHistory, FillPaging
from .errors import InvalidEvent, InvalidState
from .events import (
    BalanceReport,
    BalanceUpdate,
    CloseReason,
    Fill,
    OrderUpdate,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
    PrivateEvent,
)
from .ledger import AccountKey, Drift, PositionLedger

__all__ = ["AccountPolicy", "AccountSession", "AccountStats"]

NS = 1_000_000_000
_S = AccountState


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPolicy:
    """How an account session recovers and checks (defaults for production).

    Attributes:
        page_budget: the most REST requests one replay may take over all symbols; more
            means a full sync.
        lookback_s: safety margin before a cursor's time for time-range replays (clock skew,
            fills of the same millisecond).
        rate_window_s: the recent window whose fill rate estimates a gap's missed fills.
        reconcile_interval_s: how often a SYNCED account is compared with REST (low rate:
            three or four requests each time); ``None`` turns it off.
        relogin_margin_s: rotate the connection this long before a documented session
            lifetime ends.
        max_held_events: stream events held during a recovery; beyond it the oldest are
            dropped and the recovery becomes a full sync (the REST answers cover them).
        history_override: use these history figures instead of the adapter's (tests and
            simulators with scaled windows; never needed against a real venue).
        order_gap_lookback_s: how far back an order-gap replay reads when the order's previous
            report is unknown.
        lifetime_override_s: use this session lifetime instead of the venue's documented one
            (tests and simulators with a scaled lifetime); ``None`` keeps the venue's.
        open_order_grace_s: reconciliation compares open orders whose last report (ours or
            the venue's row) is at least this old: younger ones may be in flight.
    """

    page_budget: int = 20
    lookback_s: float = 5.0
    rate_window_s: float = 600.0
    reconcile_interval_s: float | None = 60.0
    relogin_margin_s: float = 300.0
    max_held_events: int = 100_000
    history_override: FillHistory | None = None
    order_gap_lookback_s: float = 60.0
    lifetime_override_s: float | None = None
    open_order_grace_s: float = 10.0

    def __post_init__(self) -> None:
        if self.page_budget < 0 or self.lookback_s < 0 or self.rate_window_s <= 0 or self.max_held_events < 1 or (
                self.open_order_grace_s < 0) or (
                self.reconcile_interval_s is not None and self.reconcile_interval_s <= 0) or self.relogin_margin_s < 0:
            raise InvalidEvent(f"impossible account policy: {self!r}")


@dataclass(slots=True)
class AccountStats:
    """Counters of one account session (what chaos reports and metrics read)."""

    logins: int = 0
    relogins: int = 0
    session_expiries: int = 0
    auth_rejections: int = 0
    replays: int = 0
    full_syncs: int = 0
    escalations: int = 0
    reconciles: int = 0
    reconcile_skipped: int = 0
    drifts: int = 0
    order_gaps: int = 0
    held_dropped: int = 0
    rotations: int = 0
    bad_frames: int = 0
    stream_gaps: int = 0
    open_order_drifts: int = 0


class AccountSession:
    """One account's private-stream state machine (see the module docstring).

    Args:
        account: the account (venue + the operator's label).
        symbols: every instrument the account trades (each gets a cursor and is replayed).
        history: the venue's fills endpoint (``AccountAdapter.history``).
        ledger: the account's ledger (read here; written by the driver).
        session_lifetime_s: the venue's documented session lifetime (``None``: none).
        channels: the private channels whose acks complete a subscription (empty: the
            login answer completes it).
        policy: budgets and intervals.
        now_ns: the driver's clock at construction (wall ns), the start of the first gap.

    Raises:
        InvalidEvent: no symbols.
    """

    __slots__ = (
        "_account", "_symbols", "_history", "_ledger", "_lifetime_ns", "_channels", "_policy", "_state",
        "_acked", "_held", "_gap_started_ns", "_gap_reason", "_plan", "_pending", "_known_ns", "_known_fill_ns", "_clean_ns",
        "_suspect_as_of", "_next_reconcile_ns", "_session_ns", "_relogin_pending", "_order_fills",
        "_order_seen_ns", "_checked_orders", "_verify_after", "plans", "stats", "_reconcile_outstanding",
        "_verify_skips", "_stream_gap_ns",
    )

    def __init__(self, account: AccountKey, symbols: Sequence[str], *, history: FillHistory, ledger: PositionLedger,
                 session_lifetime_s: float | None = None, channels: Iterable[str] = (),
                 policy: AccountPolicy | None = None, now_ns: int = 0) -> None:
        if not symbols:
            raise InvalidEvent("an account session needs at least one symbol")
        self._account = account
        self._symbols = tuple(dict.fromkeys(symbols))
        self._policy = policy or AccountPolicy()
        self._history = self._policy.history_override or history
        self._ledger = ledger
        if self._policy.lifetime_override_s is not None:
            session_lifetime_s = self._policy.lifetime_override_s
        self._lifetime_ns = None if session_lifetime_s is None else int(session_lifetime_s * NS)
        self._channels = frozenset(channels)
        self._state = _S.DISCONNECTED
        self._acked: set[str] = set()
        self._held: list[PrivateEvent] = []
        # a restart resumes from the store: the gap starts at the newest thing it knows
        cursors = [c.ts_ns for c in ledger.cursors(account).values() if c is not None]
        self._known_ns = max(cursors, default=0)
        # the newest event that changes balances (a fill, a balance update, a baseline): venues
        # whose last-change mark ignores order placements (Bybit's transaction log) stop there
        self._known_fill_ns = self._known_ns
        self._gap_started_ns = self._known_ns or now_ns
        self._gap_reason: AccountReason | None = AccountReason.START
        self._plan: AccountRecoveryPlan | None = None
        self._pending: set[str] = set()  # symbols (or "*" for a full sync) whose REST work is running
        self._clean_ns: int | None = None
        self._suspect_as_of: int | None = None
        self._next_reconcile_ns: int | None = None
        self._session_ns: int | None = None
        self._relogin_pending = False
        self._order_fills: dict[tuple[str, str], Decimal] = {}
        self._order_seen_ns: dict[tuple[str, str], int] = {}
        #: (symbol, order id) -> the cumulative quantity an order-gap replay was made for
        self._checked_orders: dict[tuple[str, str], Decimal] = {}
        #: a stream gap seen during a recovery (venue ns of its start): recover it next
        self._stream_gap_ns: int | None = None
        self._verify_after = False  # reconcile once right after a drift-driven replay
        self._reconcile_outstanding = False
        self._verify_skips = 0
        #: every recovery plan made, oldest first (bounded by the caller's reading; chaos and
        #: records read it)
        self.plans: list[AccountRecoveryPlan] = []
        self.stats = AccountStats()

    # ------------------------------------------------------------------ observers
    @property
    def state(self) -> AccountState:
        """The account's sync state."""
        return self._state

    @property
    def account(self) -> AccountKey:
        return self._account

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def plan(self) -> AccountRecoveryPlan | None:
        """The recovery plan running now (``None`` when none is)."""
        return self._plan if self._state is _S.RECOVERING else None

    @property
    def known_ns(self) -> int:
        """Venue time of the newest private event the account has seen (stream or REST)."""
        return self._known_ns

    @property
    def clean_ns(self) -> int | None:
        """Venue time at which a reconciliation last found the ledger equal to the venue."""
        return self._clean_ns

    # ------------------------------------------------------------------ connection lifecycle
    def opened(self, now_ns: int) -> list[AccountAction]:
        """The private connection is up: log in.

        Raises:
            InvalidState: the account is HALTED (its credentials were refused) or connected.
        """
        if self._state is _S.HALTED:
            raise InvalidState("the account is halted: its credentials were refused", state=self._state)
        if self._state is not _S.DISCONNECTED:
            raise InvalidState(f"opened while {self._state}", state=self._state)
        self._acked.clear()
        self._relogin_pending = False
        self._session_ns = None
        self._reconcile_outstanding = False
        self.stats.logins += 1
        return [*self._to(_S.AUTHENTICATING, "connected"), Login(reason="connected")]

    def closed(self, now_ns: int, reason: CloseReason) -> list[AccountAction]:
        """The private connection ended (any cause). A gap starts unless one is open."""
        if self._state in (_S.DISCONNECTED, _S.HALTED):
            return []
        self._open_gap(AccountReason.DISCONNECT, now_ns)
        if self._stream_gap_ns is not None:  # the next plan covers it: it starts no later
            self._gap_started_ns = min(self._gap_started_ns, self._stream_gap_ns)
            self._stream_gap_ns = None
        self._pending.clear()
        self._plan = None
        self._reconcile_outstanding = False
        return self._to(_S.DISCONNECTED, f"connection closed ({reason})")

    # ------------------------------------------------------------------ stream events
    def handle(self, events: Sequence[PrivateEvent], now_ns: int) -> list[AccountAction]:
        """The decoded events of one private frame, in order.

        Returns:
            What to do: apply events (SYNCED), log in / subscribe, plan a recovery, halt.
        """
        out: list[AccountAction] = []
        data: list[PrivateEvent] = []
        for event in events:
            if isinstance(event, PrivateControl):
                out += self._control(event, now_ns)
            elif isinstance(event, (Fill, OrderUpdate, BalanceUpdate)):
                data.append(event)
            # BalanceReport / PositionReport pushed on the stream are venue numbers, not ledger
            # inputs: the periodic reconciliation reads REST for a consistent pair instead.
        if data:
            out += self._data(data, now_ns)
        return out

    def bad_input(self, now_ns: int, detail: str) -> list[AccountAction]:
        """A private frame could not be decoded: whatever it carried may be lost."""
        self.stats.bad_frames += 1
        alert = AccountAlert(kind=AccountAlertKind.INVALID_INPUT, venue=self._account.venue,
                             account=self._account.account, reason=f"undecodable private frame skipped: {detail}")
        out: list[AccountAction] = [alert]
        if self._state is _S.SYNCED:
            self._open_gap(AccountReason.BAD_INPUT, now_ns)
            out += self._recover(now_ns, reason=AccountReason.BAD_INPUT, since_ns=self._clean_ns)
        return out

    def _control(self, event: PrivateControl, now_ns: int) -> list[AccountAction]:
        kind = event.kind
        if kind is PrivateControlKind.LOGGED_IN:
            if self._state is not _S.AUTHENTICATING:
                return []
            self._session_ns = now_ns
            if self._relogin_pending:
                self._relogin_pending = False
            if self._channels:
                self._acked.clear()
                return [*self._to(_S.SUBSCRIBING, "logged in"), SubscribePrivate(reason="logged in")]
            return self._subscribed(now_ns)
        if kind is PrivateControlKind.SUBSCRIBED:
            if self._state is not _S.SUBSCRIBING or event.channel is None:
                return []
            self._acked.add(event.channel)
            return self._subscribed(now_ns) if self._channels <= self._acked else []
        if kind is PrivateControlKind.AUTH_REJECTED:
            self.stats.auth_rejections += 1
            why = f"credentials refused by {self._account.venue} (code {event.code}): {event.message}"
            alert = AccountAlert(kind=AccountAlertKind.AUTH_REJECTED, venue=self._account.venue,
                                 account=self._account.account, reason=why, evidence={"code": str(event.code)})
            self._pending.clear()
            self._plan = None
            return [*self._to(_S.HALTED, why), alert, HaltAccount(reason=why)]
        if kind is PrivateControlKind.SESSION_EXPIRED:
            return self._expired(now_ns, event)
        if kind is PrivateControlKind.SHUTDOWN_NOTICE:
            if self._state in (_S.DISCONNECTED, _S.HALTED):
                return []
            self.stats.rotations += 1
            return [ReconnectPrivate(reason=f"venue shutdown notice: {event.message}")]
        if kind is PrivateControlKind.STREAM_GAP:
            return self._stream_gap(event, now_ns)
        return []  # ERROR: logged by the driver

    def _stream_gap(self, event: PrivateControl, now_ns: int) -> list[AccountAction]:
        """The private stream lost a message (module docstring, "Stream gaps")."""
        if self._state in (_S.DISCONNECTED, _S.HALTED):
            return []
        self.stats.stream_gaps += 1
        # unknown (0): the newest event seen is the latest the lost message can follow; ``now``
        # would replay nothing of what was lost
        since = min(event.since_ns if event.since_ns > 0 else self._known_ns or now_ns, now_ns)
        if self._state is _S.SYNCED:
            self._open_gap(AccountReason.STREAM_GAP, since)
            return self._recover(now_ns, reason=AccountReason.STREAM_GAP, since_ns=None, why=event.message)
        if self._state is _S.RECOVERING:
            self._stream_gap_ns = since if self._stream_gap_ns is None else min(self._stream_gap_ns, since)
        return []

    def _expired(self, now_ns: int, event: PrivateControl) -> list[AccountAction]:
        if self._state in (_S.DISCONNECTED, _S.HALTED):
            return []
        self.stats.session_expiries += 1
        if self._relogin_pending or self._state is _S.AUTHENTICATING:
            # the login we sent for the last expiry did not hold: a fresh connection, not a loop
            self.stats.rotations += 1
            return [ReconnectPrivate(reason="session expired again during re-login")]
        self._open_gap(AccountReason.SESSION_EXPIRED, now_ns)
        self._pending.clear()
        self._plan = None
        self._relogin_pending = True
        self.stats.relogins += 1
        return [*self._to(_S.AUTHENTICATING, f"session expired ({event.message or event.code})"),
                Login(reason="session expired")]

    def _data(self, data: list[PrivateEvent], now_ns: int) -> list[AccountAction]:
        if self._state is _S.SYNCED:
            gap = self._order_gap(data)
            self._note(data)
            out: list[AccountAction] = [ApplyAccountEvents(events=tuple(data), reason="stream")]
            if gap is not None:
                symbol, since_ns, why = gap
                self.stats.order_gaps += 1
                self._open_gap(AccountReason.ORDER_GAP, now_ns)
                out += self._recover(now_ns, reason=AccountReason.ORDER_GAP, since_ns=since_ns, only=symbol, why=why)
            return out
        if self._state in (_S.HALTED, _S.DISCONNECTED):
            return []
        # AUTHENTICATING / SUBSCRIBING / RECOVERING: hold until the recovery is done
        self._held.extend(data)
        overflow = len(self._held) - self._policy.max_held_events
        if overflow > 0:
            del self._held[:overflow]
            self.stats.held_dropped += overflow
            if self._state is _S.RECOVERING and self._plan is not None and self._plan.kind is AccountPlanKind.REPLAY:
                return self._escalate(f"{overflow} held stream events dropped (buffer full)")
        return []

    def _unrecorded_fills(self, data: Iterable[PrivateEvent]) -> set[int]:
        """``id()`` of the fills in ``data`` the ledger does not hold yet (first of each fill id):
        held events a recovery's replay already fetched, or a fill the stream sent twice, must
        not count twice towards an order's filled quantity (the ledger applies them once)."""
        out: set[int] = set()
        seen: set[tuple[str, str]] = set()
        for event in data:
            if isinstance(event, Fill):
                key = (event.symbol, event.fill_id)
                if key not in seen and not self._ledger.has_fill(self._account, event.symbol, event.fill_id):
                    out.add(id(event))
                seen.add(key)
        return out

    def _note(self, data: Sequence[PrivateEvent]) -> None:
        new = self._unrecorded_fills(data)
        for event in data:
            ts = getattr(event, "ts_exchange_ns", 0)
            if ts > self._known_ns:
                self._known_ns = ts
            if isinstance(event, (Fill, BalanceUpdate)) and ts > self._known_fill_ns:
                self._known_fill_ns = ts
            if isinstance(event, Fill):
                key = (event.symbol, event.order_id)
                # absent: counted from the ledger when next needed; recorded: counted there already
                if key in self._order_fills and id(event) in new:
                    self._order_fills[key] += event.qty
            elif isinstance(event, OrderUpdate):
                key = (event.symbol, event.order_id)
                if event.status.is_open:
                    self._order_seen_ns[key] = event.ts_exchange_ns
                else:  # terminal: nothing more will come for it
                    self._order_seen_ns.pop(key, None)
                    self._order_fills.pop(key, None)
                    self._checked_orders.pop(key, None)

    def _filled_in_ledger(self, symbol: str, order_id: str) -> Decimal:
        """What the ledger knows of an order's filled quantity: the latest baseline's figure for
        it (a full sync lists open orders with their cumulative fills; fills at or before its
        time are covered and need not be stored) plus the fills recorded after it."""
        base = self._ledger.baseline(self._account)
        total, as_of = Decimal(0), None
        if base is not None:
            as_of = base.as_of_ns
            for o in base.open_orders:
                if o.symbol == symbol and o.order_id == order_id:
                    total = o.filled_qty
        for f in self._ledger.fills(self._account, symbol):
            if f.order_id == order_id and (as_of is None or f.ts_exchange_ns > as_of):
                total += f.qty
        return total

    def _order_gap(self, data: Sequence[PrivateEvent]) -> tuple[str, int, str] | None:
        """A fill lost on the stream, proven by an order's cumulative quantity (§2.5)."""
        fills: dict[tuple[str, str], Decimal] = {}
        new = self._unrecorded_fills(data)
        for event in data:
            if isinstance(event, Fill) and id(event) in new:
                key = (event.symbol, event.order_id)
                fills[key] = fills.get(key, Decimal(0)) + event.qty
        base = self._ledger.baseline(self._account)
        for event in data:
            if not isinstance(event, OrderUpdate) or event.filled_qty == 0:
                continue
            key = (event.symbol, event.order_id)
            checked = self._checked_orders.get(key)
            if (checked is not None and event.filled_qty <= checked) or event.symbol not in self._symbols:
                continue
            if base is not None and 0 < event.ts_exchange_ns <= base.as_of_ns:
                continue  # a report from before the baseline: its fills are in the baseline's numbers
            seen = self._order_fills.get(key)
            if seen is None:
                seen = self._order_fills[key] = self._filled_in_ledger(event.symbol, event.order_id)
            if seen + fills.get(key, Decimal(0)) < event.filled_qty:
                # one replay per order and reported quantity: covered fills may be unfetchable
                self._checked_orders[key] = event.filled_qty
                since = self._order_seen_ns.get(key)
                if since is None:
                    since = event.ts_exchange_ns - int(self._policy.order_gap_lookback_s * NS)
                if self._clean_ns is not None:
                    # every fill up to the last clean point is in the ledger: the lost one is later
                    since = max(since, self._clean_ns)
                why = (f"order {event.order_id} reports {event.filled_qty} filled, fills seen add up to "
                       f"{seen + fills.get(key, Decimal(0))}")
                return event.symbol, since, why
        return None

    # ------------------------------------------------------------------ recovery
    def _subscribed(self, now_ns: int) -> list[AccountAction]:
        """The channel is back (nothing new can be missed): plan the recovery of the gap."""
        out = self._to(_S.RECOVERING, "subscribed")
        return out + self._plan_gap(now_ns)

    def _open_gap(self, reason: AccountReason, now_ns: int) -> None:
        """A gap opens now. While SYNCED the stream delivered everything up to ``now_ns``
        (frames in flight are covered by the lookback), so the gap starts there; a gap that
        is already open keeps its start."""
        if self._state is _S.SYNCED or self._gap_reason is None:
            self._gap_started_ns = now_ns if self._state is _S.SYNCED else min(now_ns, self._gap_started_ns)
            self._gap_reason = reason

    def _plan_gap(self, now_ns: int) -> list[AccountAction]:
        reason = self._gap_reason or AccountReason.DISCONNECT
        since = self._clean_ns if reason in (AccountReason.RECONCILE, AccountReason.BAD_INPUT) else None
        return self._start_plan(now_ns, reason=reason, since_ns=since)

    def _recover(self, now_ns: int, *, reason: AccountReason, since_ns: int | None, only: str | None = None,
                 why: str = "") -> list[AccountAction]:
        """Start a recovery while connected and subscribed (no new login needed)."""
        out = self._to(_S.RECOVERING, why or str(reason))
        return out + self._start_plan(now_ns, reason=reason, since_ns=since_ns, only=only, why=why)

    def _start_plan(self, now_ns: int, *, reason: AccountReason, since_ns: int | None, only: str | None = None,
                    why: str = "") -> list[AccountAction]:
        ledger, account, pol = self._ledger, self._account, self._policy
        held = ledger.cursors(account)
        cursors: dict[str, FillCursor | None] = {}
        by_id = self._history.paging is FillPaging.FROM_ID
        for symbol in ([only] if only else self._symbols):
            cursor = held.get(symbol)
            if cursor is None:
                pass  # never synced: the planner full-syncs
            elif since_ns is not None:
                # read from a known-good point (everything before it is in the ledger), not from
                # the cursor: the missing fill is behind the cursor
                cursor = FillCursor(ts_ns=since_ns)
            elif cursor.ts_ns < self._gap_started_ns and not (by_id and cursor.trade_id is not None):
                # a quiet symbol: everything before the gap was delivered on the stream, so a
                # time-range replay starts at the gap, not at its last fill (which may be
                # beyond the venue's window); id paging has no window and keeps its cursor
                cursor = FillCursor(ts_ns=self._gap_started_ns)
            cursors[symbol] = cursor
        span = max(now_ns - self._gap_started_ns, 0)
        window = int(pol.rate_window_s * NS)
        est = {s: estimate_fills(ledger.count_fills(account, s, since_ns=now_ns - window, until_ns=now_ns), window, span)
               for s in cursors}
        text = str(reason) + (f": {why}" if why else "")
        # read a little past now: the venue's clock (its fills' times) may run ahead of ours, and
        # every fill up to the moment the channel came back must be fetched (later ones arrive on
        # the stream; fetching some of those too is harmless)
        lookback = int(pol.lookback_s * NS)
        gap = AccountGap(account=account, started_ns=self._gap_started_ns, ended_ns=now_ns)
        plan = plan_account_recovery(gap, cursors=cursors, history=self._history, page_budget=pol.page_budget,
                                     est_fills=est, lookback_ns=lookback, reason=text, until_ns=now_ns + lookback)
        return self._run(plan)

    def _run(self, plan: AccountRecoveryPlan) -> list[AccountAction]:
        self._plan = plan
        self.plans.append(plan)
        if plan.kind is AccountPlanKind.REPLAY:
            self.stats.replays += 1
            self._pending = {a.symbol for a in plan.actions if isinstance(a, FetchFillsSince)}
        else:
            self.stats.full_syncs += 1
            self._pending = {"*"}
        return list(plan.actions)

    def _escalate(self, why: str) -> list[AccountAction]:
        assert self._plan is not None
        self.stats.escalations += 1  # the replay stays in ``plans``: it ran, then escalated
        return self._run(escalate_to_full_sync(self._plan, reason=why))

    def replayed(self, symbol: str, *, exhausted: bool, pages: int, newest_ns: int | None,
                 now_ns: int) -> list[AccountAction]:
        """The driver finished a :class:`FetchFillsSince` (its fills are in the ledger).

        Args:
            symbol: the action's symbol.
            exhausted: the last page proved the history read to its end; ``False`` means
                the page cap was reached with history left.
            pages: requests made.
            newest_ns: venue time of the newest fill fetched (``None``: none).
            now_ns: the driver's clock.
        """
        if self._state is not _S.RECOVERING or self._plan is None or self._plan.kind is not AccountPlanKind.REPLAY \
                or symbol not in self._pending:
            return []  # a late answer for a plan already replaced
        if newest_ns is not None and newest_ns > self._known_ns:
            self._known_ns = newest_ns
        if newest_ns is not None and newest_ns > self._known_fill_ns:
            self._known_fill_ns = newest_ns
        if not exhausted:
            return self._escalate(f"{symbol}: {pages} pages used, history left")
        self._pending.discard(symbol)
        return self._finish(now_ns) if not self._pending else []

    def synced_full(self, as_of_ns: int, now_ns: int) -> list[AccountAction]:
        """The driver applied a full sync taken at venue time ``as_of_ns``."""
        if self._state is not _S.RECOVERING or "*" not in self._pending:
            return []
        if as_of_ns > self._known_ns:
            self._known_ns = as_of_ns
        if as_of_ns > self._known_fill_ns:
            self._known_fill_ns = as_of_ns
        # the baseline *is* the venue's numbers at as_of, and nothing changed between as_of and
        # the reads (the consistent-read rule), so it is clean up to about now
        self._clean_ns = max(as_of_ns, now_ns - int(self._policy.lookback_s * NS))
        self._pending.clear()
        return self._finish(now_ns)

    def recovery_failed(self, now_ns: int, detail: str) -> list[AccountAction]:
        """The REST work of the running plan failed after its retries: start over on a new
        connection (a new plan is made once the channel is back)."""
        if self._state is not _S.RECOVERING:
            return []
        alert = AccountAlert(kind=AccountAlertKind.RECOVERY_FAILED, venue=self._account.venue,
                             account=self._account.account, reason=f"account recovery failed: {detail}")
        self._pending.clear()
        return [alert, ReconnectPrivate(reason=f"recovery failed: {detail}")]

    def _finish(self, now_ns: int) -> list[AccountAction]:
        # the recovery put fills in the ledger that the per-order counts never saw: recount
        # each order from the ledger when it next reports
        self._order_fills.clear()
        held, self._held = self._held, []
        out: list[AccountAction] = []
        order_gap = self._order_gap(held) if held else None
        if held:
            self._note(held)
            out.append(ApplyAccountEvents(events=tuple(held), reason="held during recovery"))
        self._gap_reason = None
        self._suspect_as_of = None
        if self._plan is not None and self._plan.kind is AccountPlanKind.REPLAY and self._verify_after:
            # a drift-driven replay: check at once whether it explained the drift
            self._next_reconcile_ns = now_ns
        elif self._policy.reconcile_interval_s is not None:
            self._next_reconcile_ns = now_ns + int(self._policy.reconcile_interval_s * NS)
        out += self._to(_S.SYNCED, f"{self._plan.kind if self._plan else 'recovery'} done")
        stream_gap, self._stream_gap_ns = self._stream_gap_ns, None
        if stream_gap is not None:
            if order_gap is not None:  # one replay of every symbol covers the order's gap too
                self.stats.order_gaps += 1
                stream_gap = min(stream_gap, order_gap[1])
            self._open_gap(AccountReason.STREAM_GAP, stream_gap)
            out += self._recover(now_ns, reason=AccountReason.STREAM_GAP, since_ns=None,
                                 why="a message was lost during the last recovery")
        elif order_gap is not None:
            symbol, since_ns, why = order_gap
            self.stats.order_gaps += 1
            self._open_gap(AccountReason.ORDER_GAP, now_ns)
            out += self._recover(now_ns, reason=AccountReason.ORDER_GAP, since_ns=since_ns, only=symbol, why=why)
        return out

    # ------------------------------------------------------------------ time and checks
    def tick(self, now_ns: int) -> list[AccountAction]:
        """The driver's clock: session lifetime and the reconciliation schedule."""
        out: list[AccountAction] = []
        if self._state is _S.SYNCED and self._lifetime_ns is not None and self._session_ns is not None:
            # never more than a fifth of the lifetime early (a scaled lifetime must not rotate
            # right after every login)
            margin = min(int(self._policy.relogin_margin_s * NS), self._lifetime_ns // 5)
            if now_ns - self._session_ns >= self._lifetime_ns - margin:
                self._session_ns = None  # once per session
                self.stats.rotations += 1
                out.append(ReconnectPrivate(reason="session lifetime nearly over: rotating the connection"))
                return out
        if (self._state is _S.SYNCED and self._next_reconcile_ns is not None and now_ns >= self._next_reconcile_ns
                and not self._reconcile_outstanding):
            self._reconcile_outstanding = True
            self._next_reconcile_ns = None
            out.append(Reconcile(reason="periodic" if not self._verify_after else "after drift replay"))
        return out

    def reconciled(self, now_ns: int, *, balances: BalanceReport, positions: Sequence[PositionReport] | None,
                   open_orders: Sequence[OrderUpdate] | None = None) -> list[AccountAction]:
        """The answer to :class:`Reconcile`: the venue's balances (``ts_exchange_ns`` = its
        last-change time), positions (``None``: the venue has none) and open orders (``None``:
        not read).

        Returns:
            Nothing when the ledger agrees (or the numbers were not comparable); a replay from
            the last clean point when the venue changed behind our back; a ``DRIFT`` alert and
            a full sync when a replay did not explain the difference, or when the numbers are
            clean but the open orders differ (module docstring).
        """
        self._reconcile_outstanding = False
        if self._state is not _S.SYNCED:
            return []
        self.stats.reconciles += 1
        interval = self._policy.reconcile_interval_s
        if interval is not None:
            self._next_reconcile_ns = now_ns + int(interval * NS)
        as_of = balances.ts_exchange_ns
        soon = now_ns + 2 * NS if interval is None else now_ns + min(int(interval * NS), 2 * NS)
        verify = self._verify_after
        lost = False
        # comparable when the venue's last change lies between the newest balance-changing event
        # we know of and the newest event of any kind: it has seen everything that moved the
        # numbers, and nothing happened after what we know (order placements move some venues'
        # marks, Binance updateTime, and not others', Bybit's transaction log)
        if not self._known_fill_ns <= as_of <= self._known_ns:
            if verify and self._verify_skips < 3:
                # right after a drift replay: wait for a comparable answer (bounded)
                self._verify_skips += 1
                self.stats.reconcile_skipped += 1
                self._next_reconcile_ns = soon
                return []
            if as_of < self._known_fill_ns and not verify:
                self.stats.reconcile_skipped += 1  # the venue answered from before a fill we know
                return []
            if as_of > self._known_ns and not verify:
                # the venue changed after the newest event we know of: in flight, or lost
                if self._suspect_as_of != as_of:
                    self._suspect_as_of = as_of
                    self.stats.reconcile_skipped += 1
                    self._next_reconcile_ns = soon
                    return []
                lost = True  # the same change, twice, never reached us
        self._suspect_as_of = None
        self._verify_after = False
        self._verify_skips = 0
        drifts = [] if lost else self._ledger.reconcile(self._account, positions or (), balances.balances)
        if not drifts and not lost:
            # equal at as_of, and the venue's last change is as_of: clean up to about the read
            self._clean_ns = max(as_of, now_ns - int(self._policy.lookback_s * NS))
            differ = self._open_order_drift(open_orders, now_ns) if open_orders is not None else {}
            if differ:
                self.stats.open_order_drifts += 1
                return self._rebase(now_ns, f"open orders differ: {', '.join(sorted(differ))}", differ)
            return []
        if verify and drifts:
            # the replay from the last clean point did not explain it: report, then rebase
            self.stats.drifts += 1
            why = "; ".join(str(d) for d in drifts)
            evidence = {f"{d.kind}:{d.key}": f"ledger={d.ledger_value} venue={d.venue_value}" for d in drifts}
            return self._rebase(now_ns, f"drift after replay: {why}", evidence,
                                plan_text=f"drift a replay did not explain ({why})")
        self._verify_after = True
        self._open_gap(AccountReason.RECONCILE, now_ns)
        why = ("venue changed after the last event we know of, twice" if lost
               else "; ".join(str(d) for d in drifts[:3]))
        return self._recover(now_ns, reason=AccountReason.RECONCILE, since_ns=self._clean_ns, why=why)

    def _open_order_drift(self, venue_orders: Sequence[OrderUpdate], now_ns: int) -> dict[str, str]:
        """Open orders the ledger and the venue disagree on, as alert evidence (``open:SYMBOL:ID``
        -> what each side says); only orders last reported ``open_order_grace_s`` ago or earlier
        (ours by the time we received the report, the venue's rows by their venue time; a report
        without a time counts as old)."""
        cutoff = now_ns - int(self._policy.open_order_grace_s * NS)
        ours = {(o.symbol, o.order_id): o for o in self._ledger.open_orders(self._account) if o.symbol in self._symbols}
        theirs = {(o.symbol, o.order_id): o for o in venue_orders if o.symbol in self._symbols}
        known = {(o.symbol, o.order_id): o for o in self._ledger.orders(self._account)}
        out: dict[str, str] = {}
        for key, order in ours.items():
            if key not in theirs and (order.ts_recv_ns or order.ts_exchange_ns) <= cutoff:
                out[f"open:{key[0]}:{key[1]}"] = f"ledger={order.status} venue=not open"
        for key, order in theirs.items():
            if key in ours or order.ts_exchange_ns > cutoff:
                continue
            last = known.get(key)
            if last is not None and (not last.status.is_open or last.ts_exchange_ns >= order.ts_exchange_ns):
                # closed here (an order never reopens: the venue's list lags, and a full sync
                # keeps terminal reports, so it could not settle it), or a later report of ours
                continue
            out[f"open:{key[0]}:{key[1]}"] = f"ledger={last.status if last else 'unknown'} venue={order.status}"
        return out

    def _rebase(self, now_ns: int, reason: str, evidence: dict[str, str], *, plan_text: str | None = None,
                ) -> list[AccountAction]:
        """Report drift (``DRIFT`` alert with its evidence) and close it with a full sync."""
        alert = AccountAlert(kind=AccountAlertKind.DRIFT, venue=self._account.venue,
                             account=self._account.account, reason=reason, evidence=evidence)
        self._open_gap(AccountReason.RECONCILE, now_ns)
        text = f"{AccountReason.RECONCILE}: {plan_text or reason}"
        plan = AccountRecoveryPlan(
            kind=AccountPlanKind.FULL_SYNC, reason=text, account=self._account,
            actions=(FullSync(venue=self._account.venue, account=self._account.account, reason=text),),
            estimated_pages=None, page_budget=self._policy.page_budget)
        return [alert, *self._to(_S.RECOVERING, reason.split(":")[0]), *self._run(plan)]

    def reconcile_failed(self, now_ns: int) -> list[AccountAction]:
        """The :class:`Reconcile` reads failed (REST errors after retries): try again at the
        next interval."""
        self._reconcile_outstanding = False
        interval = self._policy.reconcile_interval_s
        if interval is not None and self._state is _S.SYNCED:
            self._next_reconcile_ns = now_ns + int(interval * NS)
        return []

    # ------------------------------------------------------------------ transitions
    def _to(self, new: AccountState, reason: str) -> list[AccountAction]:
        old = self._state
        if new is old:
            return []
        self._state = new
        return [AccountStateChanged(old=old, new=new, reason=reason)]

    def drifts(self, balances: BalanceReport, positions: Sequence[PositionReport] | None) -> list[Drift]:
        """The ledger against venue numbers now (a read-only check, e.g. for a final report)."""
        return self._ledger.reconcile(self._account, positions or (), balances.balances)
