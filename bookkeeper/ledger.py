"""PositionLedger: orders, fills, balances and positions of trading accounts, derived from fills.

Theory of operation
-------------------
The ledger is fed account events (``Fill``, ``OrderUpdate``, ``BalanceUpdate``,
``AccountSnapshot``) each with the :class:`AccountKey` (venue, account label) of the private
stream or REST answer it came from, and every input returns a :class:`LedgerResult` (what it
did, the symbol's cursor, any :class:`~bookkeeper.actions.AccountAlert`). It reads no clock
and touches no file: ``bookkeeper.io.store`` makes it durable.

**State is a function of a set.** For each account the derived numbers depend only on

- the account's *baseline*: the latest full sync (an ``AccountSnapshot`` at venue time
  ``as_of_ns``), or nothing (all zero) before the first one;
- the *set* of fills and balance updates recorded, keyed by ``(symbol, fill_id)`` and
  ``update_id`` (duplicates are recorded once);

never on the order they arrived in. Fills and balance updates at or before ``as_of_ns`` are
*covered*: their effect is already in the baseline's numbers, so they are recorded (for
idempotency and for the cursor) but change no balance or position. A snapshot older than the
baseline held is stale and not applied, so baselines only move forward.

**Idempotency key.** A fill is identified by ``(venue, account, symbol, fill_id)``. The symbol
is part of the key because venue trade ids are unique only per instrument
(exchange-protocols.md §2.5: Binance spot ``(symbol, t)``, OKX ``(instId, tradeId)``). A fill
whose key was seen before is a ``DUPLICATE`` and changes nothing; if its content differs
(receipt time aside) the ledger keeps the first and returns an ``AccountAlert(FILL_CONFLICT)``
with the differing fields as evidence.

**Formulas** (all Decimal, in a fixed context of :data:`DECIMAL_PRECISION` significant digits,
half-even, whatever the caller's thread context is). ``q`` is a fill's quantity, ``p`` its
price, ``fee`` what the venue charged (positive; a rebate is negative) in ``fee_currency``.

- Spot (``InstrumentKind.SPOT``, base/quote): a buy adds ``q`` to ``base`` and subtracts
  ``q * p`` from ``quote``; a sell does the opposite. The fee is subtracted from
  ``fee_currency`` (the quote currency when the fill names none).
- Linear derivatives (``InstrumentKind.LINEAR``, net mode, ``q`` in contracts of
  ``contract_size`` units, PnL in the settle currency). Signed quantity ``s = +q`` (buy) or
  ``-q`` (sell); position ``P``, average entry ``E``, realized PnL ``R``, folded over the
  symbol's unsettled fills in execution order (:func:`~bookkeeper.actions.fill_sort_key`:
  exchange time, then trade id) from the baseline's ``(P0, E0, R=0)``:

  - ``P == 0`` or ``s`` has ``P``'s sign (opening/adding):
    ``E' = (|P|·E + q·p) / |P + s|``, ``P' = P + s``.
  - otherwise (reducing): ``c = min(q, |P|)``; ``R' = R + c·(p − E)·sign(P)·contract_size``;
    ``P' = P + s``; ``E' = 0`` when ``P' == 0``, ``p`` when the position flipped (the rest of
    the fill opened it), else ``E``.
  - When the venue reports the fill's realized PnL (``Fill.realized_pnl``, OKX ``fillPnl``),
    ``R' = R + fillPnl`` instead: venues round their average entry price (the simulator to 8
    decimals; OKX prints ``avgPx`` to about 16 digits), so only their own figure matches the
    balance they report. ``P`` and ``E`` are still ours.

  The fee is subtracted from ``fee_currency`` (the settle currency when none is named).
- Balances: ``baseline balance + Σ spot flows + Σ fees + Σ balance-update deltas + Σ R`` of
  linear instruments settling in that currency (the wallet balance; funding is not a fill,
  it arrives as a ``BalanceUpdate`` or shows up as drift).

Because ``E`` depends on order, a fill that arrives before one it follows in execution order
refolds that symbol from the baseline; fills in order cost one step each.

**Cursor.** Per (venue, account, symbol): the greatest of every recorded fill's
``(ts_exchange_ns, fill_id)`` and the latest baseline's reset point ``(as_of_ns, None)``. It
only moves forward, whatever order fills come in. A replay of missed fills starts from it
(``bookkeeper.account``). It is a *maximum*, not a contiguity mark: a fetched page of fills must
be recorded as one batch, or oldest first, before the cursor is trusted across a crash.

**Orders.** The latest report per ``(symbol, order_id)``: a report applies when it is newer by
``(ts_exchange_ns, filled_qty, status rank)``; a terminal status never reopens; a report at or
before the baseline's time is stale (the full sync's open-order list is authoritative,
exchange-protocols.md §2.4 step 3).

**Reconcile.** :meth:`PositionLedger.reconcile` compares the derived numbers with the venue's
REST positions and balances and returns one :class:`Drift` per disagreement, with evidence.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from .actions import AccountAlert, AccountAlertKind, FillCursor, fill_sort_key
from .errors import InvalidEvent, InvalidState
from .events import (
    AccountSnapshot,
    BalanceUpdate,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
)
from .types import TradeSide

__all__ = [
    "DECIMAL_PRECISION", "AccountKey", "ApplyVerdict", "Drift", "DriftKind", "InstrumentKind", "InstrumentSpec",
    "LedgerResult", "LedgerState", "Position", "PositionLedger", "apply_position_step",
]

ZERO = Decimal(0)
#: Significant digits of every ledger computation (sums of realistic amounts stay exact; only
#: an average entry price is ever rounded).
DECIMAL_PRECISION = 50
# Copied by ``localcontext`` on every use, so its flags are never touched.
_MONEY = Context(prec=DECIMAL_PRECISION, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


class InstrumentKind(enum.StrEnum):
    """How fills of an instrument change the account (values are stored)."""

    #: base/quote balances move; no position
    SPOT = "spot"
    #: a signed position in contracts, PnL in the settle currency (USDT-margined swaps/futures)
    LINEAR = "linear"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    """What the ledger must know of an instrument to account a fill of it.

    Attributes:
        symbol: as the venue spells it on the wire (``BTCUSDT``, ``BTC-USDT-SWAP``).
        kind: see :class:`InstrumentKind`.
        base: base currency (``BTC``).
        quote: quote currency (``USDT``).
        settle: settle currency of a derivative (``None``: the quote currency).
        contract_size: units of base per contract (OKX ``ctVal``); 1 for spot.

    Raises:
        InvalidEvent: ``contract_size`` is not positive.
    """

    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    settle: str | None = None
    contract_size: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not self.contract_size > 0:
            raise InvalidEvent(f"contract_size must be > 0, got {self.contract_size}", symbol=self.symbol)

    @property
    def settle_currency(self) -> str:
        """The currency PnL and default fees are booked in."""
        return self.settle or self.quote


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class AccountKey:
    """One trading account at one venue. ``account`` is the operator's label for it (``main``,
    ``mm-1``): never an API key or anything secret, since it is logged and stored."""

    venue: str
    account: str

    def __str__(self) -> str:
        return f"{self.venue}:{self.account}"


class ApplyVerdict(enum.StrEnum):
    """What the ledger did with an input (values are logged)."""

    #: the input changed the ledger
    APPLIED = "applied"
    #: recorded, but its effect is already in the baseline (exchange time <= ``as_of_ns``)
    COVERED = "covered"
    #: seen before (same id); nothing changed
    DUPLICATE = "duplicate"
    #: older than what the ledger holds (an order report, a snapshot); nothing changed
    STALE = "stale"


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerResult:
    """What one input did.

    Attributes:
        verdict: see :class:`ApplyVerdict`.
        cursor: the symbol's cursor after a fill (``None`` for other inputs).
        cursor_advanced: the fill moved the cursor forward.
        alerts: integrity alerts (a duplicate id with different content), with evidence.
    """

    verdict: ApplyVerdict
    cursor: FillCursor | None = None
    cursor_advanced: bool = False
    alerts: tuple[AccountAlert, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A linear derivative position as the ledger derives it.

    Attributes:
        symbol: the instrument.
        qty: signed contracts (long > 0).
        avg_entry_price: average entry of the open position (0 when flat).
        realized_pnl: PnL realized since the baseline, in the settle currency (fees excluded).
    """

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    realized_pnl: Decimal


class DriftKind(enum.StrEnum):
    """What a :class:`Drift` compares (values are written to reports)."""

    POSITION = "position"
    BALANCE = "balance"


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """The ledger and the venue disagree.

    Attributes:
        kind: position (``key`` is a symbol) or balance (``key`` is a currency).
        account: the account.
        key: the symbol or currency.
        ledger_value: what the ledger derived.
        venue_value: what the venue reported (0 when it reported nothing).
        difference: ``venue_value - ledger_value``.
    """

    kind: DriftKind
    account: AccountKey
    key: str
    ledger_value: Decimal
    venue_value: Decimal
    difference: Decimal

    def __str__(self) -> str:
        return (f"{self.kind} drift {self.account} {self.key}: ledger {self.ledger_value} "
                f"venue {self.venue_value} (difference {self.difference})")


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerState:
    """Everything a ledger holds and derives, comparable with ``==`` (a rebuilt ledger equals
    the one that was persisted; a reordered input gives the same state)."""

    instruments: frozenset[tuple[str, InstrumentSpec]]
    baselines: dict[AccountKey, AccountSnapshot]
    fills: dict[tuple[AccountKey, str, str], Fill]
    balance_updates: dict[tuple[AccountKey, str], BalanceUpdate]
    orders: dict[tuple[AccountKey, str, str], OrderUpdate]
    cursors: dict[tuple[AccountKey, str], FillCursor]
    balances: dict[AccountKey, dict[str, Decimal]]
    positions: dict[AccountKey, dict[str, Position]]


def apply_position_step(
    qty: Decimal, entry: Decimal, realized: Decimal, *, side: TradeSide, fill_qty: Decimal, price: Decimal,
    contract_size: Decimal, venue_pnl: Decimal | None = None,
) -> tuple[Decimal, Decimal, Decimal]:
    """One fill on a net linear position (the formulas of the module docstring). Call it
    inside the ledger's decimal context for the ledger's exact results.

    Args:
        qty: signed position before the fill.
        entry: its average entry price (ignored when flat).
        realized: realized PnL so far.
        side: the fill's side.
        fill_qty: the fill's quantity (> 0).
        price: the fill's price.
        contract_size: units per contract.
        venue_pnl: the venue's realized PnL of this fill (``Fill.realized_pnl``); when given
            it is added instead of the computed one (the position and entry are still ours).

    Returns:
        ``(qty, avg_entry_price, realized_pnl)`` after the fill.

    >>> from decimal import Decimal as D
    >>> apply_position_step(D(2), D(100), D(0), side=TradeSide.SELL, fill_qty=D(3), price=D(110),
    ...                     contract_size=D(1))
    (Decimal('-1'), Decimal('110'), Decimal('20'))
    """
    signed = fill_qty if side is TradeSide.BUY else -fill_qty
    new_qty = qty + signed
    if qty == 0 or (qty > 0) == (signed > 0):
        return new_qty, (abs(qty) * entry + fill_qty * price) / abs(new_qty), realized + (venue_pnl or ZERO)
    closed = min(fill_qty, abs(qty))
    direction = 1 if qty > 0 else -1
    realized += closed * (price - entry) * direction * contract_size if venue_pnl is None else venue_pnl
    if new_qty == 0:
        return new_qty, ZERO, realized
    if (new_qty > 0) != (qty > 0):  # flipped: what is left of the fill opened the new side
        return new_qty, price, realized
    return new_qty, entry, realized


def _history_key(fill: Fill) -> tuple[tuple[int, int, int, str], str]:
    # execution order; the raw id breaks the tie between ids equal as numbers ("01", "1")
    return fill_sort_key(fill.ts_exchange_ns, fill.fill_id), fill.fill_id


_FILL_FIELDS = ("order_id", "side", "price", "qty", "fee", "fee_currency", "ts_exchange_ns", "realized_pnl")
_UPDATE_FIELDS = ("currency", "delta", "ts_exchange_ns")
_STATUS_RANK = {OrderStatus.NEW: 0, OrderStatus.PARTIALLY_FILLED: 1}  # terminal statuses: 2


def _differences(kept: object, received: object, fields: Sequence[str]) -> dict[str, str]:
    return {name: f"kept={getattr(kept, name)!s} received={getattr(received, name)!s}"
            for name in fields if getattr(kept, name) != getattr(received, name)}


def _order_progress(order: OrderUpdate) -> tuple[int, Decimal, int]:
    return order.ts_exchange_ns, order.filled_qty, _STATUS_RANK.get(order.status, 2)


class _Leg:
    """A linear instrument's folded position."""

    __slots__ = ("entry", "last_key", "qty", "realized")

    def __init__(self, qty: Decimal, entry: Decimal) -> None:
        self.qty = qty
        self.entry = entry
        self.realized = ZERO
        self.last_key: tuple[tuple[int, int, int, str], str] | None = None


class _Account:
    """One account's records and derived state (owned by :class:`PositionLedger`)."""

    __slots__ = ("baseline", "cursors", "fills", "flows", "history", "legs", "orders", "updates")

    def __init__(self) -> None:
        self.baseline: AccountSnapshot | None = None
        self.fills: dict[tuple[str, str], Fill] = {}
        # per symbol, in execution order (_history_key); fills mostly arrive in order: appends
        self.history: dict[str, list[Fill]] = {}
        self.updates: dict[str, BalanceUpdate] = {}
        self.orders: dict[tuple[str, str], OrderUpdate] = {}
        # order-independent sums since the baseline: spot flows, fees, balance updates
        self.flows: dict[str, Decimal] = {}
        self.legs: dict[str, _Leg] = {}
        self.cursors: dict[str, FillCursor] = {}

    def covers(self, ts_exchange_ns: int) -> bool:
        return self.baseline is not None and ts_exchange_ns <= self.baseline.as_of_ns

    def add_flow(self, currency: str, amount: Decimal) -> None:
        self.flows[currency] = self.flows.get(currency, ZERO) + amount


class PositionLedger:
    """Accounts' fills, orders, balances and positions; see the module docstring.

    Instruments are registered first (:meth:`add_instrument`); every input method returns a
    :class:`LedgerResult` and raises only for inputs that are bugs (an unknown instrument, an
    unusable snapshot).
    """

    __slots__ = ("_accounts", "_specs")

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], InstrumentSpec] = {}
        self._accounts: dict[AccountKey, _Account] = {}

    # ------------------------------------------------------------------ instruments
    def add_instrument(self, venue: str, spec: InstrumentSpec) -> bool:
        """Register an instrument of ``venue`` (needed before any fill of it).

        Args:
            venue: the venue's registry name.
            spec: the instrument.

        Returns:
            ``True`` when it is new (accounts of the venue already synced get the cursor
            ``(as_of_ns, None)`` for it), ``False`` when the same spec was registered before.

        Raises:
            InvalidState: a different spec is registered for the symbol (it would change
                numbers already derived).
        """
        known = self._specs.get((venue, spec.symbol))
        if known is not None:
            if known != spec:
                raise InvalidState(f"{venue}:{spec.symbol} is registered as {known}, not {spec}", symbol=spec.symbol)
            return False
        self._specs[(venue, spec.symbol)] = spec
        # An account synced before the instrument was known holds its fills up to the sync in
        # the baseline: its history starts at the sync, like every other symbol's.
        for key, acct in self._accounts.items():
            if key.venue == venue and acct.baseline is not None and spec.symbol not in acct.cursors:
                acct.cursors[spec.symbol] = FillCursor(ts_ns=acct.baseline.as_of_ns)
        return True

    def instrument(self, venue: str, symbol: str) -> InstrumentSpec:
        """The registered spec of ``symbol``.

        Args:
            venue: the venue.
            symbol: the instrument.

        Returns:
            Its spec.

        Raises:
            InvalidState: it is not registered.
        """
        spec = self._specs.get((venue, symbol))
        if spec is None:
            raise InvalidState(f"no instrument {venue}:{symbol} registered in the ledger", symbol=symbol)
        return spec

    def instruments(self) -> list[tuple[str, InstrumentSpec]]:
        """Every registered ``(venue, spec)``, sorted."""
        return [(venue, spec) for (venue, _), spec in sorted(self._specs.items(), key=lambda kv: kv[0])]

    # ------------------------------------------------------------------ inputs
    def apply_fill(self, account: AccountKey, fill: Fill) -> LedgerResult:
        """Record one of our fills (from the private stream or a REST replay), once.

        Args:
            account: the account it belongs to.
            fill: the fill.

        Returns:
            ``APPLIED`` (balances/position changed), ``COVERED`` (recorded, already in the
            baseline) or ``DUPLICATE`` (seen before: nothing changed; with a
            ``FILL_CONFLICT`` alert when its content differs); the symbol's cursor.

        Raises:
            InvalidState: the fill's instrument is not registered.
        """
        spec = self.instrument(account.venue, fill.symbol)
        acct = self._account(account)
        key = (fill.symbol, fill.fill_id)
        kept = acct.fills.get(key)
        if kept is not None:
            evidence = _differences(kept, fill, _FILL_FIELDS)
            alerts = (AccountAlert(
                kind=AccountAlertKind.FILL_CONFLICT, venue=account.venue, account=account.account, symbol=fill.symbol,
                reason=f"fill {fill.fill_id} seen again with different {', '.join(evidence)}; the first is kept",
                evidence=evidence),) if evidence else ()
            return LedgerResult(verdict=ApplyVerdict.DUPLICATE, cursor=acct.cursors.get(fill.symbol), alerts=alerts)
        acct.fills[key] = fill
        bisect.insort(acct.history.setdefault(fill.symbol, []), fill, key=_history_key)
        verdict = ApplyVerdict.COVERED
        if not acct.covers(fill.ts_exchange_ns):
            verdict = ApplyVerdict.APPLIED
            with localcontext(_MONEY):
                self._account_fill(acct, spec, fill)
        old = acct.cursors.get(fill.symbol)
        new = FillCursor(ts_ns=fill.ts_exchange_ns, trade_id=fill.fill_id)
        advanced = old is None or new.sort_key() > old.sort_key()
        if advanced:
            acct.cursors[fill.symbol] = new
        return LedgerResult(verdict=verdict, cursor=acct.cursors[fill.symbol], cursor_advanced=advanced)

    def apply_balance_update(self, account: AccountKey, update: BalanceUpdate) -> LedgerResult:
        """Record a non-trade balance change (deposit, withdrawal, transfer, funding), once.

        Args:
            account: the account.
            update: the change.

        Returns:
            ``APPLIED``, ``COVERED`` or ``DUPLICATE`` (with a ``BALANCE_UPDATE_CONFLICT``
            alert when the content differs).
        """
        acct = self._account(account)
        kept = acct.updates.get(update.update_id)
        if kept is not None:
            evidence = _differences(kept, update, _UPDATE_FIELDS)
            alerts = (AccountAlert(
                kind=AccountAlertKind.BALANCE_UPDATE_CONFLICT, venue=account.venue, account=account.account,
                reason=f"balance update {update.update_id} seen again with different {', '.join(evidence)}",
                evidence=evidence),) if evidence else ()
            return LedgerResult(verdict=ApplyVerdict.DUPLICATE, alerts=alerts)
        acct.updates[update.update_id] = update
        if acct.covers(update.ts_exchange_ns):
            return LedgerResult(verdict=ApplyVerdict.COVERED)
        with localcontext(_MONEY):
            acct.add_flow(update.currency, update.delta)
        return LedgerResult(verdict=ApplyVerdict.APPLIED)

    def apply_order_update(self, account: AccountKey, update: OrderUpdate) -> LedgerResult:
        """Take an order report if it is newer than what the ledger holds for that order.

        Args:
            account: the account.
            update: the report.

        Returns:
            ``APPLIED``; ``DUPLICATE`` (the same report again); ``STALE`` (older by
            ``(ts_exchange_ns, filled_qty, status)``, after a terminal status, or at or
            before the baseline's time).
        """
        acct = self._account(account)
        key = (update.symbol, update.order_id)
        kept = acct.orders.get(key)
        if kept is not None:
            if _order_progress(update) == _order_progress(kept):
                return LedgerResult(verdict=ApplyVerdict.DUPLICATE)  # the same report again (WS, then REST)
            if not kept.status.is_open or _order_progress(update) < _order_progress(kept):
                return LedgerResult(verdict=ApplyVerdict.STALE)
        if acct.covers(update.ts_exchange_ns):
            return LedgerResult(verdict=ApplyVerdict.STALE)
        acct.orders[key] = update
        return LedgerResult(verdict=ApplyVerdict.APPLIED)

    def apply_snapshot(self, account: AccountKey, snapshot: AccountSnapshot) -> LedgerResult:
        """Make a full sync's answer the account's baseline (see the module docstring): its
        balances and positions replace the derived ones, fills at or before ``as_of_ns``
        count as covered, later ones are applied on top, the open-order list replaces the
        open orders not reported since it was read (``orders_as_of_ns``), and every cursor of the account moves to
        ``(as_of_ns, None)`` unless it is already past it.

        Args:
            account: the account.
            snapshot: balances, positions and open orders at the venue's ``as_of_ns``.

        Returns:
            ``APPLIED``, or ``STALE`` when it is older than the baseline held (not applied).

        Raises:
            InvalidState: a position's instrument is not registered as ``LINEAR``.
            InvalidEvent: an open position without an average entry price, or a listed
                order that is not open. Nothing changed.
        """
        for report in snapshot.positions:
            spec = self.instrument(account.venue, report.symbol)
            if spec.kind is not InstrumentKind.LINEAR:
                raise InvalidState(f"position reported for {spec.kind} instrument {report.symbol}", symbol=report.symbol)
            if report.qty != 0 and report.avg_entry_price is None:
                raise InvalidEvent("an open position needs its average entry price to seed the ledger",
                                   symbol=report.symbol)
        for order in snapshot.open_orders:
            if not order.status.is_open:
                raise InvalidEvent(f"order {order.order_id} listed as open is {order.status}", symbol=order.symbol)
        acct = self._account(account)
        if acct.baseline is not None and snapshot.as_of_ns < acct.baseline.as_of_ns:
            return LedgerResult(verdict=ApplyVerdict.STALE)
        acct.baseline = snapshot
        listed_at = snapshot.orders_as_of_ns

        def reported_since(order: OrderUpdate) -> bool:  # newer than the list: keep it
            if listed_at is not None and order.ts_recv_ns:
                return order.ts_recv_ns > listed_at
            return order.ts_exchange_ns > snapshot.as_of_ns

        acct.orders = {key: order for key, order in acct.orders.items()
                       if not order.status.is_open or reported_since(order)}
        for order in snapshot.open_orders:
            acct.orders.setdefault((order.symbol, order.order_id), order)
        self._refold(account, acct)
        reset = FillCursor(ts_ns=snapshot.as_of_ns)
        symbols = {s for v, s in self._specs if v == account.venue} | set(acct.history)
        for symbol in symbols:
            old = acct.cursors.get(symbol)
            if old is None or reset.sort_key() > old.sort_key():
                acct.cursors[symbol] = reset
        return LedgerResult(verdict=ApplyVerdict.APPLIED)

    def restore_order(self, account: AccountKey, order: OrderUpdate) -> None:
        """Put an order report back as it was persisted (for stores rebuilding a ledger; it
        is not judged against what the ledger holds).

        Args:
            account: the account.
            order: the order's latest report as the ledger held it.
        """
        self._account(account).orders[(order.symbol, order.order_id)] = order

    def forget_order(self, account: AccountKey, symbol: str, order_id: str) -> None:
        """Drop an order from the ledger (for stores rebuilding a ledger).

        Args:
            account: the account.
            symbol: the order's instrument.
            order_id: the venue's order id.
        """
        self._account(account).orders.pop((symbol, order_id), None)

    # ------------------------------------------------------------------ readers
    @property
    def accounts(self) -> list[AccountKey]:
        """Every account the ledger has seen, sorted."""
        return sorted(self._accounts)

    def baseline(self, account: AccountKey) -> AccountSnapshot | None:
        """The account's latest applied full sync, or ``None``."""
        acct = self._accounts.get(account)
        return None if acct is None else acct.baseline

    def cursor(self, account: AccountKey, symbol: str) -> FillCursor | None:
        """The symbol's cursor, or ``None`` when the ledger has no fill and no sync for it."""
        acct = self._accounts.get(account)
        return None if acct is None else acct.cursors.get(symbol)

    def cursors(self, account: AccountKey) -> dict[str, FillCursor | None]:
        """The cursor of every symbol registered for the account's venue or holding fills
        (``None`` where there is none yet)."""
        acct = self._accounts.get(account)
        held = {} if acct is None else acct.cursors
        symbols = {s for v, s in self._specs if v == account.venue} | set(held)
        return {symbol: held.get(symbol) for symbol in sorted(symbols)}

    def has_fill(self, account: AccountKey, symbol: str, fill_id: str) -> bool:
        """Whether the fill is recorded."""
        acct = self._accounts.get(account)
        return acct is not None and (symbol, fill_id) in acct.fills

    def fills(self, account: AccountKey, symbol: str | None = None) -> list[Fill]:
        """Recorded fills in execution order (per symbol; symbols sorted).

        Args:
            account: the account.
            symbol: only this instrument's fills.

        Returns:
            The fills, covered ones included.
        """
        acct = self._accounts.get(account)
        if acct is None:
            return []
        symbols = [symbol] if symbol is not None else sorted(acct.history)
        return [fill for s in symbols for fill in acct.history.get(s, ())]

    def count_fills(self, account: AccountKey, symbol: str, *, since_ns: int, until_ns: int) -> int:
        """How many recorded fills of ``symbol`` have ``since_ns <= ts_exchange_ns <=
        until_ns`` (a fill-rate estimate for :func:`bookkeeper.account.estimate_fills`).

        Args:
            account: the account.
            symbol: the instrument.
            since_ns: start of the window (inclusive).
            until_ns: end of the window (inclusive).

        Returns:
            The count.
        """
        acct = self._accounts.get(account)
        history = None if acct is None else acct.history.get(symbol)
        if history is None or until_ns < since_ns:
            return 0
        # a reset point's key (no trade id) sorts before every fill of the same time
        return (bisect.bisect_left(history, (fill_sort_key(until_ns + 1, None), ""), key=_history_key)
                - bisect.bisect_left(history, (fill_sort_key(since_ns, None), ""), key=_history_key))

    def balance_updates(self, account: AccountKey) -> list[BalanceUpdate]:
        """Recorded balance updates, sorted by id."""
        acct = self._accounts.get(account)
        return [] if acct is None else [acct.updates[k] for k in sorted(acct.updates)]

    def orders(self, account: AccountKey) -> list[OrderUpdate]:
        """Every order's latest report, sorted by ``(symbol, order_id)``."""
        acct = self._accounts.get(account)
        return [] if acct is None else [acct.orders[k] for k in sorted(acct.orders)]

    def open_orders(self, account: AccountKey) -> list[OrderUpdate]:
        """Orders whose latest report is open, sorted by ``(symbol, order_id)``."""
        return [order for order in self.orders(account) if order.status.is_open]

    def balances(self, account: AccountKey) -> dict[str, Decimal]:
        """Total balance per currency: baseline + flows + realized PnL (module docstring).

        Args:
            account: the account.

        Returns:
            Every currency the baseline or a fill touched (zeros included), sorted.
        """
        acct = self._accounts.get(account)
        if acct is None:
            return {}
        with localcontext(_MONEY):
            out = dict(acct.baseline.balances) if acct.baseline is not None else {}
            for currency, amount in acct.flows.items():
                out[currency] = out.get(currency, ZERO) + amount
            for symbol, leg in acct.legs.items():
                currency = self.instrument(account.venue, symbol).settle_currency
                out[currency] = out.get(currency, ZERO) + leg.realized
        return dict(sorted(out.items()))

    def position(self, account: AccountKey, symbol: str) -> Position:
        """A linear instrument's derived position (flat when nothing happened).

        Args:
            account: the account.
            symbol: the instrument.

        Returns:
            The position.
        """
        acct = self._accounts.get(account)
        leg = None if acct is None else acct.legs.get(symbol)
        if leg is None:
            return Position(symbol=symbol, qty=ZERO, avg_entry_price=ZERO, realized_pnl=ZERO)
        return Position(symbol=symbol, qty=leg.qty, avg_entry_price=leg.entry, realized_pnl=leg.realized)

    def positions(self, account: AccountKey) -> dict[str, Position]:
        """Every linear instrument with a baseline position or an applied fill, by symbol."""
        acct = self._accounts.get(account)
        return {} if acct is None else {symbol: self.position(account, symbol) for symbol in sorted(acct.legs)}

    def state(self) -> LedgerState:
        """Everything the ledger holds and derives, as one comparable value."""
        fills: dict[tuple[AccountKey, str, str], Fill] = {}
        updates: dict[tuple[AccountKey, str], BalanceUpdate] = {}
        orders: dict[tuple[AccountKey, str, str], OrderUpdate] = {}
        cursors: dict[tuple[AccountKey, str], FillCursor] = {}
        for key, acct in self._accounts.items():
            fills.update({(key, s, f): fill for (s, f), fill in acct.fills.items()})
            updates.update({(key, u): update for u, update in acct.updates.items()})
            orders.update({(key, s, o): order for (s, o), order in acct.orders.items()})
            cursors.update({(key, s): cursor for s, cursor in acct.cursors.items()})
        return LedgerState(
            instruments=frozenset(self.instruments()),
            baselines={k: a.baseline for k, a in self._accounts.items() if a.baseline is not None},
            fills=fills, balance_updates=updates, orders=orders, cursors=cursors,
            balances={k: self.balances(k) for k in self._accounts},
            positions={k: self.positions(k) for k in self._accounts},
        )

    # ------------------------------------------------------------------ reconcile
    def reconcile(
        self,
        account: AccountKey,
        rest_positions: Sequence[PositionReport],
        rest_balances: Mapping[str, Decimal],
        *,
        tolerance: Decimal = ZERO,
    ) -> list[Drift]:
        """Compare the derived positions and balances with the venue's (REST) numbers.

        A fill in flight while the venue answered shows up as drift; the caller confirms a
        drift on a second reconcile before acting on it.

        Args:
            account: the account.
            rest_positions: the venue's positions (a linear instrument it omits is flat).
            rest_balances: the venue's total balance per currency (an omitted one is 0).
            tolerance: differences with ``abs() <= tolerance`` are not drift.

        Returns:
            One :class:`Drift` per disagreeing symbol, then per currency, each sorted.
        """
        drifts: list[Drift] = []
        venue_qty = {report.symbol: report.qty for report in rest_positions}
        ledger_qty = {symbol: position.qty for symbol, position in self.positions(account).items()}
        with localcontext(_MONEY):
            drifts += self._drifts(DriftKind.POSITION, account, ledger_qty, venue_qty, tolerance)
            drifts += self._drifts(DriftKind.BALANCE, account, self.balances(account), rest_balances, tolerance)
        return drifts

    @staticmethod
    def _drifts(kind: DriftKind, account: AccountKey, ledger: Mapping[str, Decimal], venue: Mapping[str, Decimal],
                tolerance: Decimal) -> Iterator[Drift]:
        for key in sorted(set(ledger) | set(venue)):
            mine, theirs = ledger.get(key, ZERO), venue.get(key, ZERO)
            if abs(theirs - mine) > tolerance:
                yield Drift(kind=kind, account=account, key=key, ledger_value=mine, venue_value=theirs,
                            difference=theirs - mine)

    # ------------------------------------------------------------------ internals
    def _account(self, account: AccountKey) -> _Account:
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._accounts[account] = _Account()
        return acct

    def _account_fill(self, acct: _Account, spec: InstrumentSpec, fill: Fill) -> None:
        """Add one unsettled fill to the derived numbers (inside the money context)."""
        if spec.kind is InstrumentKind.SPOT:
            sign = 1 if fill.side is TradeSide.BUY else -1
            acct.add_flow(spec.base, sign * fill.qty)
            acct.add_flow(spec.quote, -sign * fill.qty * fill.price)
            acct.add_flow(fill.fee_currency or spec.quote, -fill.fee)
            return
        acct.add_flow(fill.fee_currency or spec.settle_currency, -fill.fee)
        leg = acct.legs.get(spec.symbol)
        if leg is None:
            leg = acct.legs[spec.symbol] = self._seed_leg(acct, spec.symbol)
        key = _history_key(fill)
        if leg.last_key is not None and key < leg.last_key:
            self._fold(acct, spec, leg)  # it precedes fills already folded: refold in order
            return
        leg.qty, leg.entry, leg.realized = apply_position_step(
            leg.qty, leg.entry, leg.realized, side=fill.side, fill_qty=fill.qty, price=fill.price,
            contract_size=spec.contract_size, venue_pnl=fill.realized_pnl)
        leg.last_key = key

    @staticmethod
    def _seed_leg(acct: _Account, symbol: str) -> _Leg:
        if acct.baseline is not None:
            for report in acct.baseline.positions:
                if report.symbol == symbol:
                    return _Leg(report.qty, report.avg_entry_price or ZERO)
        return _Leg(ZERO, ZERO)

    def _fold(self, acct: _Account, spec: InstrumentSpec, leg: _Leg) -> None:
        seeded = self._seed_leg(acct, spec.symbol)
        leg.qty, leg.entry, leg.realized, leg.last_key = seeded.qty, seeded.entry, ZERO, None
        for fill in acct.history.get(spec.symbol, ()):
            if acct.covers(fill.ts_exchange_ns):
                continue
            leg.qty, leg.entry, leg.realized = apply_position_step(
                leg.qty, leg.entry, leg.realized, side=fill.side, fill_qty=fill.qty, price=fill.price,
                contract_size=spec.contract_size, venue_pnl=fill.realized_pnl)
            leg.last_key = _history_key(fill)

    def _refold(self, account: AccountKey, acct: _Account) -> None:
        """Recompute every derived number of the account from its baseline and records."""
        acct.flows = {}
        acct.legs = {}
        with localcontext(_MONEY):
            for update in acct.updates.values():
                if not acct.covers(update.ts_exchange_ns):
                    acct.add_flow(update.currency, update.delta)
            if acct.baseline is not None:
                for report in acct.baseline.positions:
                    acct.legs[report.symbol] = self._seed_leg(acct, report.symbol)
            for symbol, history in acct.history.items():
                spec = self.instrument(account.venue, symbol)
                for fill in history:
                    if not acct.covers(fill.ts_exchange_ns):
                        self._account_fill(acct, spec, fill)
