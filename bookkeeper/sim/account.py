"""Ground-truth private account of one simulated venue: orders, fills, balances, positions.

Theory of operation
-------------------
A :class:`SimAccount` is a plain synchronous object (no sockets, no asyncio): the simulator's
truth about one venue account, which the venue's private dialect
(``venues/binance_private.py``, ``venues/okx_private.py``) turns into that venue's WebSocket
pushes and REST answers. Every mutating method records what changed as
:data:`AccountChange` values and hands them, in order, to the listeners the exchange attached
(the dialect's ``publish``), so a change and the frames describing it are produced in one
synchronous step, exactly like the market engine's change sets (``engine.py``).

- **Orders** have a lifecycle: ``new`` -> ``partially_filled`` -> ``filled``, or ``canceled``
  from either open state (the table :data:`ORDER_TRANSITIONS`; anything else is a bug and
  raises ``ValueError``). Orders are frozen :class:`SimOrder` values replaced on change, so a
  change carries the order exactly as it was at that moment.
- **Fills** (:class:`SimFill`) get a trade id that increases per symbol (Binance ``t``/``id``,
  OKX ``tradeId``; exchange-protocols.md §2.5) and, on OKX, a ``billId`` that increases per
  account (the ``after``/``before`` cursor of ``fills-history``, §5.6).
- **Time**: every event takes ``max(clock, last + 1)`` ms, so fill timestamps increase by at
  least 1 ms per account and "``updateTime`` unchanged" proves nothing changed. The clock is
  wall-clock ms plus an offset that :meth:`SimAccount.advance_clock` moves forward, so tests
  reach "older than the venue's history window" in sim time without sleeping (signature
  timestamp checks keep using the wall clock, as ccxt signs with it).
- **Balances** are ``Decimal`` built from strings: spot fills move base and quote (Binance
  charges the fee in the quote asset; OKX charges buys in the base and sells in the quote),
  open spot limit orders lock funds (``locked``/``frozenBal``). **Positions** are OKX linear
  swaps in net mode (signed contracts, ``ctVal`` 0.01 BTC): realized PnL and fees go to USDT.
- **Automatic trading** (:meth:`SimAccount.auto_trade`, driven by the exchange's push loop at
  ``SimConfig.account_fill_rate_per_s``) uses its own ``random.Random`` seeded from the
  simulator's seed and the venue, so the market engine's streams are the same whether
  accounts are on or off. :meth:`SimAccount.trade` makes a deterministic taker fill now (no
  randomness) for tests.
"""

from __future__ import annotations

import enum
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from bookkeeper.credentials import ApiCredentials
from bookkeeper.types import Side

from .engine import fixed

if TYPE_CHECKING:
    from .engine import MarketEngine

__all__ = [
    "ORDER_TRANSITIONS",
    "AccountChange",
    "AccountInstrument",
    "AccountProfile",
    "BalancesChanged",
    "InstrumentKind",
    "OrderChanged",
    "OrderState",
    "PositionChanged",
    "SimAccount",
    "SimFill",
    "SimOrder",
    "wall_ms",
]

_FEE_QUANTUM = Decimal("0.00000001")


def wall_ms() -> int:
    """Wall-clock ms (the time the venues sign and check request timestamps against)."""
    return int(time.time() * 1000)


class InstrumentKind(enum.Enum):
    SPOT = "spot"
    #: linear (USDT-settled) perpetual swap in net position mode
    LINEAR_SWAP = "linear_swap"


class OrderState(enum.StrEnum):
    """Order lifecycle (values as OKX spells them; Binance maps them to NEW/PARTIALLY_FILLED/..)."""

    NEW = "live"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"


#: every legal order transition (h11-style table; anything else raises)
ORDER_TRANSITIONS: Mapping[OrderState, frozenset[OrderState]] = {
    OrderState.NEW: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELED}),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELED}),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELED: frozenset(),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInstrument:
    """One instrument the account trades.

    Attributes:
        symbol: wire symbol (``BTCUSDT``, ``BTC-USDT``, ``BTC-USDT-SWAP``).
        kind: spot or linear swap.
        base, quote: assets (a swap's quote is its settle currency).
        price_decimals: price precision (tick = 10**-price_decimals).
        lot: smallest quantity as a string (a swap's is one contract, ``"1"``).
        typical_qty: the quantity :meth:`SimAccount.trade` fills by default.
        ref_symbol: the engine symbol whose book prices the fills (``None``: ``ref_price``).
        ref_price: price used when ``ref_symbol`` is not simulated.
        ct_val: contract value in the base asset (swaps).
        taker_fee, maker_fee: fee rates as strings.
    """

    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    price_decimals: int
    lot: str
    typical_qty: str
    ref_symbol: str | None = None
    ref_price: str = "100"
    ct_val: str | None = None
    taker_fee: str = "0.001"
    maker_fee: str = "0.001"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountProfile:
    """A venue's account: instruments, starting balances, id bases and fee rules (each private
    dialect in ``venues/`` declares its own)."""

    venue: str
    instruments: tuple[AccountInstrument, ...]
    balances: Mapping[str, str]
    uid: str
    first_trade_id: int = 1000
    first_order_id: int = 4_000_000
    #: the first bill id (OKX ``billId``, one per fill per account); ``None``: no bill ids
    first_bill_id: int | None = None
    #: spot buys pay the fee in the base asset (OKX), else every fee is in the quote (Binance)
    buy_fee_in_base: bool = False
    #: the venue's API keys carry a passphrase (OKX)
    passphrase: bool = False
    #: trade and order ids are UUID strings (Bybit ``execId``/``orderId``), deterministic per
    #: counter, instead of decimal numbers
    uuid_ids: bool = False
    #: makes the API key the venue accepts from the account's seeded key RNG, where the
    #: venue's keys are not a random key and HMAC secret (Coinbase CDP keys: a key name and an
    #: EC private key in PEM); ``None``: 32-character key, 48-character secret
    make_credentials: Callable[[random.Random], ApiCredentials] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOrder:
    """An order as it is at one moment (replaced, never mutated, on change)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    order_type: str  # "limit" | "market"
    price: Decimal | None
    qty: Decimal
    filled: Decimal
    filled_quote: Decimal
    state: OrderState
    created_ms: int
    updated_ms: int

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimFill:
    """One fill of the truth.

    ``fee`` is positive when charged (OKX prints charged fees negative on the wire; the
    dialect negates). ``qty`` is in contracts for swaps. ``pnl`` is the realized PnL of a swap
    fill (0 for spot). ``bill_id`` is the OKX bill id ("" elsewhere).
    """

    symbol: str
    trade_id: str
    order_id: str
    client_order_id: str
    side: str
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    ts_ms: int
    maker: bool
    bill_id: str = ""
    pnl: Decimal = Decimal("0")

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderChanged:
    """An order was placed, filled (``fill`` set), or canceled; ``order`` as it is now."""

    order: SimOrder
    fill: SimFill | None
    ts_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancesChanged:
    """These assets' free/locked/total changed."""

    assets: tuple[str, ...]
    ts_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChanged:
    symbol: str
    ts_ms: int


AccountChange = OrderChanged | BalancesChanged | PositionChanged


class _Balance:
    __slots__ = ("total", "locked", "updated_ms")

    def __init__(self, total: Decimal) -> None:
        self.total = total
        self.locked = Decimal("0")
        self.updated_ms = 0


class _Position:
    __slots__ = ("pos", "avg_px", "updated_ms", "created_ms")

    def __init__(self) -> None:
        self.pos = Decimal("0")
        self.avg_px = Decimal("0")
        self.updated_ms = 0
        self.created_ms = 0


class SimAccount:
    """One venue's ground-truth account (see the module docstring).

    Args:
        profile: instruments, starting balances and id bases.
        seed: seeds :meth:`auto_trade` (its own RNG, ``f"{seed}:account:{venue}"``).
        engine: prices fills near the book of each instrument's ``ref_symbol``.
    """

    __slots__ = (
        "_profile", "_instruments", "_engine", "_rng", "_credentials", "_orders", "_fills", "_balances",
        "_positions", "_trade_ids", "_next_order", "_next_bill", "_next_exec", "_last_ms", "_clock_offset_ms",
        "_listeners", "_paused", "_credit", "_updated_ms",
    )

    def __init__(self, profile: AccountProfile, seed: int, engine: MarketEngine | None = None) -> None:
        self._profile = profile
        self._instruments = {i.symbol: i for i in profile.instruments}
        self._engine = engine
        self._rng = random.Random(f"{seed}:account:{profile.venue}")
        # Deterministic per seed and venue, so a test or the chaos command can sign with them.
        key_rng = random.Random(f"{seed}:credentials:{profile.venue}")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        self._credentials = profile.make_credentials(key_rng) if profile.make_credentials else ApiCredentials(
            api_key="sim" + "".join(key_rng.choice(alphabet) for _ in range(29)),
            secret="".join(key_rng.choice(alphabet) for _ in range(48)),
            passphrase="Sim-" + "".join(key_rng.choice(alphabet) for _ in range(12)) if profile.passphrase else None,
        )
        self._orders: dict[str, SimOrder] = {}
        self._fills: list[SimFill] = []
        self._balances = {asset: _Balance(Decimal(v)) for asset, v in profile.balances.items()}
        self._positions: dict[str, _Position] = {}
        self._trade_ids = {i.symbol: profile.first_trade_id for i in profile.instruments}
        self._next_order = profile.first_order_id
        self._next_bill = profile.first_bill_id
        self._next_exec = 1
        self._last_ms = 0
        self._clock_offset_ms = 0
        self._listeners: list[Callable[[list[AccountChange]], None]] = []
        self._paused = False
        self._credit = 0.0
        self._updated_ms = 0

    # -- observers (the truth tests and chaos read) ----------------------------------------

    @property
    def venue(self) -> str:
        return self._profile.venue

    @property
    def uid(self) -> str:
        return self._profile.uid

    @property
    def credentials(self) -> ApiCredentials:
        """The key, secret and (OKX) passphrase the venue's private side accepts."""
        return self._credentials

    @property
    def instruments(self) -> Mapping[str, AccountInstrument]:
        return self._instruments

    @property
    def updated_ms(self) -> int:
        """ms of the account's last change (Binance ``updateTime``, OKX balance ``uTime``)."""
        return self._updated_ms

    @property
    def paused(self) -> bool:
        return self._paused

    def fills(self, symbol: str | None = None) -> list[SimFill]:
        """Every fill, oldest first (optionally of one symbol)."""
        return [f for f in self._fills if symbol is None or f.symbol == symbol]

    def balances(self) -> dict[str, Decimal]:
        """asset -> total (free + locked; OKX ``cashBal``)."""
        return {a: b.total for a, b in self._balances.items()}

    def balance(self, asset: str) -> tuple[Decimal, Decimal, int]:
        """``(free, locked, updated_ms)`` of one asset."""
        b = self._balances[asset]
        return b.total - b.locked, b.locked, b.updated_ms

    def positions(self) -> dict[str, Decimal]:
        """symbol -> signed contracts, non-zero positions only."""
        return {s: p.pos for s, p in self._positions.items() if p.pos != 0}

    def position(self, symbol: str) -> tuple[Decimal, Decimal, int, int]:
        """``(pos, avg_px, updated_ms, created_ms)`` of a swap (zeros if never traded)."""
        p = self._positions.get(symbol) or _Position()
        return p.pos, p.avg_px, p.updated_ms, p.created_ms

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Open orders (new or partially filled), oldest first."""
        return [o for o in self._orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def order(self, order_id: str) -> SimOrder:
        return self._orders[order_id]

    def orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Every order (open or not), oldest first (optionally of one symbol)."""
        return [o for o in self._orders.values() if symbol is None or o.symbol == symbol]

    def now_ms(self) -> int:
        """The account clock: wall-clock ms plus :meth:`advance_clock`'s offset."""
        return wall_ms() + self._clock_offset_ms

    def mark_price(self, symbol: str) -> Decimal:
        """Mid of the reference book (the price fills are near)."""
        inst = self._instruments[symbol]
        bid, ask = self._touch(inst)
        mid = (bid + ask) / 2
        return mid.quantize(Decimal(1).scaleb(-inst.price_decimals), ROUND_HALF_UP)

    def next_exec_id(self) -> int:
        """A fresh execution id (Binance ``I``; unique per report)."""
        self._next_exec += 1
        return self._next_exec

    # -- control --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[list[AccountChange]], None]) -> None:
        """Call ``listener(changes)`` after every mutation (the exchange wires the dialect)."""
        self._listeners.append(listener)

    def pause_trading(self) -> None:
        """Stop automatic trading (explicit :meth:`trade` calls still work)."""
        self._paused = True

    def resume_trading(self) -> None:
        self._paused = False

    def advance_clock(self, seconds: float) -> None:
        """Move the account clock forward (history windows are judged on it), e.g. past OKX's
        3-day ``/trade/fills`` window without waiting."""
        if seconds < 0:
            raise ValueError("the account clock only moves forward")
        self._clock_offset_ms += int(seconds * 1000)

    # -- explicit trading ------------------------------------------------------------------

    def trade(self, symbol: str, side: str, qty: Decimal | str | None = None) -> SimFill:
        """Fill a market order now at the touch (taker), deterministically (no randomness).

        Args:
            symbol: an instrument of this account (wire symbol).
            side: ``"buy"`` or ``"sell"``.
            qty: base quantity (contracts for swaps); default the instrument's ``typical_qty``.

        Returns:
            The fill (also in :meth:`fills`).

        Raises:
            KeyError: unknown symbol. ValueError: bad side or quantity.
        """
        inst = self._instruments[symbol]
        q = Decimal(qty) if qty is not None else Decimal(inst.typical_qty)
        self._check_qty(inst, q)
        bid, ask = self._touch(inst)
        changes: list[AccountChange] = []
        order = self._new_order(inst, side, q, None, "market", changes)
        fill = self._fill(order.order_id, q, ask if side == "buy" else bid, maker=False, changes=changes)
        self._emit(changes)
        return fill

    def place_order(self, symbol: str, side: str, qty: Decimal | str, price: Decimal | str) -> SimOrder:
        """Place a resting limit order (locks spot funds); it stays open until filled/canceled."""
        inst = self._instruments[symbol]
        q, px = Decimal(qty), Decimal(price)
        self._check_qty(inst, q)
        changes: list[AccountChange] = []
        order = self._new_order(inst, side, q, px, "limit", changes)
        self._emit(changes)
        return order

    def fill_order(self, order_id: str, qty: Decimal | str | None = None) -> SimFill:
        """Fill (part of) a resting limit order at its price, as a maker."""
        order = self._orders[order_id]
        q = order.remaining if qty is None else Decimal(qty)
        changes: list[AccountChange] = []
        fill = self._fill(order_id, q, order.price or Decimal("0"), maker=True, changes=changes)
        self._emit(changes)
        return fill

    def cancel_order(self, order_id: str) -> SimOrder:
        """Cancel an open order (unlocks its funds)."""
        changes: list[AccountChange] = []
        order = self._cancel(order_id, changes)
        self._emit(changes)
        return order

    # -- automatic trading ------------------------------------------------------------------

    def auto_trade(self, rate_per_s: float, interval_s: float) -> int:
        """One push-loop interval of seeded automatic trading: on average ``rate_per_s`` fills
        per second (each maybe preceded by a new order and followed by a cancel).

        Returns:
            the number of fills made.
        """
        if self._paused or rate_per_s <= 0:
            return 0
        self._credit += rate_per_s * interval_s
        made = 0
        changes: list[AccountChange] = []
        while self._credit >= 1.0:
            self._credit -= 1.0
            if self._auto_fill(changes):
                made += 1
        if changes:
            self._emit(changes)
        return made

    def _auto_fill(self, changes: list[AccountChange]) -> bool:
        rng = self._rng
        inst = self._instruments[rng.choice(sorted(self._instruments))]
        resting = [o for o in self.open_orders(inst.symbol)]
        if not resting or rng.random() < 0.35:
            side = self._auto_side(inst, rng.random() < 0.5)
            lots = max(1, round(Decimal(inst.typical_qty) / Decimal(inst.lot) * Decimal(str(rng.uniform(0.2, 2.0)))))
            qty = Decimal(inst.lot) * lots
            bid, ask = self._touch(inst)
            tick = Decimal(1).scaleb(-inst.price_decimals)
            px = bid - tick * rng.randint(0, 3) if side == "buy" else ask + tick * rng.randint(0, 3)
            if not self._affordable(inst, side, qty, px):
                return False
            order = self._new_order(inst, side, qty, px, "limit", changes)
        else:
            order = rng.choice(resting)
        remaining_lots = int(order.remaining / Decimal(inst.lot))
        lots = remaining_lots if remaining_lots <= 1 or rng.random() < 0.5 else rng.randint(1, remaining_lots - 1)
        self._fill(order.order_id, Decimal(inst.lot) * lots, order.price or Decimal("0"), maker=True, changes=changes)
        open_now = self.open_orders()
        if open_now and (rng.random() < 0.1 or len(open_now) > 6):
            self._cancel(open_now[0].order_id, changes)
        return True

    def _auto_side(self, inst: AccountInstrument, buy: bool) -> str:
        if inst.kind is InstrumentKind.LINEAR_SWAP:
            pos = self.position(inst.symbol)[0]
            if abs(pos) > 40:  # keep the position bounded: lean against it
                return "sell" if pos > 0 else "buy"
            return "buy" if buy else "sell"
        base_free = self.balance(inst.base)[0]
        quote_free = self.balance(inst.quote)[0]
        mark = self.mark_price(inst.symbol)
        if base_free * mark < quote_free / 4:
            return "buy"
        if quote_free < base_free * mark / 4:
            return "sell"
        return "buy" if buy else "sell"

    def _affordable(self, inst: AccountInstrument, side: str, qty: Decimal, px: Decimal) -> bool:
        if inst.kind is InstrumentKind.LINEAR_SWAP:
            return True
        if side == "buy":
            return self.balance(inst.quote)[0] >= qty * px * Decimal("1.01")
        return self.balance(inst.base)[0] >= qty

    # -- mechanics --------------------------------------------------------------------------

    def _tick(self) -> int:
        ts = max(self.now_ms(), self._last_ms + 1)
        self._last_ms = ts
        return ts

    def _touch(self, inst: AccountInstrument) -> tuple[Decimal, Decimal]:
        engine = self._engine
        if engine is not None and inst.ref_symbol in engine.symbols:
            spec = engine.spec(inst.ref_symbol)
            bids = engine.levels(inst.ref_symbol, Side.BID, 1)
            asks = engine.levels(inst.ref_symbol, Side.ASK, 1)
            if bids and asks:
                scale = inst.price_decimals - spec.price_decimals
                bid = Decimal(fixed(bids[0][0], spec.price_decimals))
                ask = Decimal(fixed(asks[0][0], spec.price_decimals))
                if scale < 0:  # a coarser instrument tick than the reference book's
                    q = Decimal(1).scaleb(-inst.price_decimals)
                    bid, ask = bid.quantize(q, ROUND_HALF_UP), ask.quantize(q, ROUND_HALF_UP)
                return bid, ask
        ref = Decimal(inst.ref_price)
        tick = Decimal(1).scaleb(-inst.price_decimals)
        return ref - tick, ref + tick

    def _check_qty(self, inst: AccountInstrument, qty: Decimal) -> None:
        if qty <= 0 or qty % Decimal(inst.lot) != 0:
            raise ValueError(f"{inst.symbol}: quantity {qty} is not a positive multiple of the lot {inst.lot}")

    def _new_order(self, inst: AccountInstrument, side: str, qty: Decimal, price: Decimal | None, order_type: str,
                   changes: list[AccountChange]) -> SimOrder:
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
        ts = self._tick()
        oid = self._id("order", self._next_order)
        self._next_order += 1
        order = SimOrder(order_id=oid, client_order_id=f"sim{self.venue}{oid}", symbol=inst.symbol, side=side,
                         order_type=order_type, price=price, qty=qty, filled=Decimal("0"), filled_quote=Decimal("0"),
                         state=OrderState.NEW, created_ms=ts, updated_ms=ts)
        self._orders[oid] = order
        changes.append(OrderChanged(order=order, fill=None, ts_ms=ts))
        if order_type == "limit" and inst.kind is InstrumentKind.SPOT:
            self._lock(inst, side, qty, price or Decimal("0"), ts, changes)
        return order

    def _lock(self, inst: AccountInstrument, side: str, qty: Decimal, price: Decimal, ts: int,
              changes: list[AccountChange], sign: int = 1) -> None:
        asset, amount = (inst.quote, qty * price) if side == "buy" else (inst.base, qty)
        bal = self._balance_of(asset)
        bal.locked += sign * amount
        bal.updated_ms = ts
        self._updated_ms = ts
        changes.append(BalancesChanged(assets=(asset,), ts_ms=ts))

    def _id(self, kind: str, n: int) -> str:
        if not self._profile.uuid_ids:
            return str(n)
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{self.venue}:{kind}:{n}"))

    def _balance_of(self, asset: str) -> _Balance:
        if asset not in self._balances:
            self._balances[asset] = _Balance(Decimal("0"))
        return self._balances[asset]

    def _transition(self, order: SimOrder, state: OrderState) -> None:
        if state not in ORDER_TRANSITIONS[order.state]:
            raise ValueError(f"order {order.order_id}: {order.state.value} -> {state.value} is not a legal transition")

    def _fill(self, order_id: str, qty: Decimal, price: Decimal, *, maker: bool, changes: list[AccountChange]) -> SimFill:
        order = self._orders[order_id]
        inst = self._instruments[order.symbol]
        if qty <= 0 or qty > order.remaining:
            raise ValueError(f"order {order_id}: cannot fill {qty} of the remaining {order.remaining}")
        filled = order.filled + qty
        state = OrderState.FILLED if filled == order.qty else OrderState.PARTIALLY_FILLED
        self._transition(order, state)
        ts = self._tick()
        rate = Decimal(inst.maker_fee if maker else inst.taker_fee)
        pnl = Decimal("0")
        assets: tuple[str, ...]
        if inst.kind is InstrumentKind.SPOT:
            notional = price * qty
            if order.order_type == "limit":  # this part of the order no longer locks funds
                self._balance_of(inst.quote if order.side == "buy" else inst.base).locked -= (
                    qty * (order.price or price) if order.side == "buy" else qty)
            base, quote = self._balance_of(inst.base), self._balance_of(inst.quote)
            if self._profile.buy_fee_in_base and order.side == "buy":
                fee, fee_ccy = (qty * rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP), inst.base
            else:
                fee, fee_ccy = (notional * rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP), inst.quote
            sign = 1 if order.side == "buy" else -1
            base.total += sign * qty
            quote.total -= sign * notional
            (base if fee_ccy == inst.base else quote).total -= fee
            base.updated_ms = quote.updated_ms = ts
            assets = (inst.base, inst.quote)
        else:
            ct_val = Decimal(inst.ct_val or "1")
            notional = price * qty * ct_val
            fee, fee_ccy = (notional * rate).quantize(_FEE_QUANTUM, ROUND_HALF_UP), inst.quote
            pnl = self._apply_position(inst, order.side, qty, price, ct_val, ts)
            settle = self._balance_of(inst.quote)
            settle.total += pnl - fee
            settle.updated_ms = ts
            assets = (inst.quote,)
        trade_id = self._trade_ids[inst.symbol]
        self._trade_ids[inst.symbol] = trade_id + 1
        bill_id = ""
        if self._next_bill is not None:
            bill_id = str(self._next_bill)
            self._next_bill += 1
        fill = SimFill(symbol=inst.symbol, trade_id=self._id(inst.symbol, trade_id), order_id=order_id,
                       client_order_id=order.client_order_id, side=order.side, price=price, qty=qty, fee=fee,
                       fee_currency=fee_ccy, ts_ms=ts, maker=maker, bill_id=bill_id, pnl=pnl)
        self._fills.append(fill)
        order = replace(order, filled=filled, filled_quote=order.filled_quote + price * qty, state=state, updated_ms=ts)
        self._orders[order_id] = order
        self._updated_ms = ts
        changes.append(OrderChanged(order=order, fill=fill, ts_ms=ts))
        changes.append(BalancesChanged(assets=assets, ts_ms=ts))
        if inst.kind is InstrumentKind.LINEAR_SWAP:
            changes.append(PositionChanged(symbol=inst.symbol, ts_ms=ts))
        return fill

    def _apply_position(self, inst: AccountInstrument, side: str, qty: Decimal, price: Decimal, ct_val: Decimal,
                        ts: int) -> Decimal:
        """Net-mode position update; returns the realized PnL in the settle currency."""
        p = self._positions.setdefault(inst.symbol, _Position())
        delta = qty if side == "buy" else -qty
        pnl = Decimal("0")
        if p.pos == 0 or (p.pos > 0) == (delta > 0):  # open or add: weighted average entry
            if p.pos == 0:
                p.created_ms = ts
            new = p.pos + delta
            p.avg_px = (p.avg_px * abs(p.pos) + price * abs(delta)) / abs(new)
            p.avg_px = p.avg_px.quantize(Decimal("0.00000001"), ROUND_HALF_UP)
            p.pos = new
        else:  # reduce, close or flip
            closed = min(abs(delta), abs(p.pos))
            direction = 1 if p.pos > 0 else -1
            pnl = (price - p.avg_px) * closed * ct_val * direction
            new = p.pos + delta
            if new == 0:
                p.avg_px = Decimal("0")
            elif (new > 0) != (p.pos > 0):  # flipped: the rest opens at the fill price
                p.avg_px = price
                p.created_ms = ts
            p.pos = new
        p.updated_ms = ts
        return pnl

    def _cancel(self, order_id: str, changes: list[AccountChange]) -> SimOrder:
        order = self._orders[order_id]
        self._transition(order, OrderState.CANCELED)
        ts = self._tick()
        inst = self._instruments[order.symbol]
        order = replace(order, state=OrderState.CANCELED, updated_ms=ts)
        self._orders[order_id] = order
        self._updated_ms = ts
        changes.append(OrderChanged(order=order, fill=None, ts_ms=ts))
        if order.order_type == "limit" and inst.kind is InstrumentKind.SPOT:
            self._lock(inst, order.side, order.remaining, order.price or Decimal("0"), ts, changes, sign=-1)
        return order

    def _emit(self, changes: Iterable[AccountChange]) -> None:
        batch = list(changes)
        for listener in self._listeners:
            listener(batch)
