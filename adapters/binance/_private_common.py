"""What Binance spot's and USD-M's private sides share (``private.py``, ``usdm_private.py``). Pure.

Theory of operation
-------------------
Both venues write orders and trades the same way: an order row or push names its side
``BUY``/``SELL``, its original and cumulative quantity and a price of zero for a market order;
a trade row carries its trade id, price, quantity and commission (positive when charged). Both
page their trade history the same way (spot ``GET /api/v3/myTrades``, §3.6; USD-M
``GET /fapi/v1/userTrades``, §4.6): ``fromId`` (>=, gapless, not combinable with a time range)
continues after a known trade id, and a replay without one walks time slices of at most a
fixed span and switches to ``fromId`` as soon as a page comes back full.

What differs is a :class:`BinanceRules` value each module builds once: the exchange name and
ccxt id, the trades method (ccxt's implicit name), the longest time slice (24 h spot, 7 days
USD-M), the order-status table and the smallest real trade id (spot writes ``t = -1`` on a
report that is no trade, USD-M ``t = 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from bookkeeper.errors import AdapterError
from bookkeeper.events import Fill, OrderStatus, OrderUpdate
from bookkeeper.ports import FillsPage, RestCall
from bookkeeper.types import TradeSide

from .._common import _excerpt
from .._private import (AccountAdapterBase, convert, guarded_rest, json_body, money, ms_ns, opt_text, order_status,
                        quantity, trade_side)

if TYPE_CHECKING:  # the cursor type of the AccountAdapter signature (a plain value, never built here)
    from bookkeeper.actions import FillCursor

__all__ = ["BinanceAccountBase", "BinanceRules", "SlicedCall"]

_SIDES: dict[str, TradeSide] = {"BUY": TradeSide.BUY, "SELL": TradeSide.SELL}


@dataclass(frozen=True, slots=True, kw_only=True)
class SlicedCall(RestCall):
    """A trades request for one time slice of a replay's range, remembering where the range
    ends (``until_ms``: not a request parameter, ccxt never sees it) so that the account's
    ``parse_fills_page`` can ask for the next slice. ``AccountAdapter``'s ``parse_fills_page``
    gets only the call, and Binance answers an empty slice with ``[]``."""

    until_ms: int


class _OpenOrderRow(Protocol):
    """The fields of an ``openOrders`` row both venues write (``private_schemas.OpenOrder``,
    ``usdm_private.OpenOrder``)."""

    symbol: str
    orderId: int
    price: str
    origQty: str
    executedQty: str
    status: str
    side: str
    clientOrderId: str
    time: int
    updateTime: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BinanceRules:
    """One Binance private side's parameters, and the parsers and calls built from them (see
    the module docstring)."""

    exchange: str
    ccxt_id: str
    #: ccxt's implicit method of the trades history
    trades_method: str
    #: the longest ``endTime - startTime`` of a trades request
    window_ms: int
    #: the trades request's ``limit`` maximum
    page_size: int
    #: ``X`` (stream) / ``status`` (REST) -> OrderStatus
    statuses: Mapping[str, OrderStatus]
    #: the smallest trade id a real trade has (below it: "no trade")
    min_trade_id: int

    def fail(self, message: str, raw: Any, symbol: str | None = None) -> AdapterError:
        return AdapterError(message, exchange=self.exchange, raw=_excerpt(raw), symbol=symbol)

    def side(self, value: str, raw: Any, symbol: str | None) -> TradeSide:
        return trade_side(_SIDES, value, self.exchange, raw, symbol)

    def body(self, body: Any) -> Any:
        return json_body(body, self.exchange)

    # -- rows -> events -----------------------------------------------------------------

    def order_update(self, *, symbol: str, order_id: int, side: str, status: str, qty: str, filled: str, price: str,
                     client_order_id: str | None, ts_ns: int, raw: Any, ts_recv_ns: int) -> OrderUpdate:
        """An order report (``filled`` cumulative; a zero ``price`` is a market order's).

        Raises:
            AdapterError: a bad decimal, side or status, or ``filled`` above ``qty``.
        """
        ex = self.exchange
        q = quantity(qty, "order qty", ex, raw, symbol)
        z = quantity(filled, "filled qty", ex, raw, symbol)
        if z > q:
            raise self.fail(f"filled qty {z} exceeds order qty {q}", raw, symbol)
        return OrderUpdate(symbol=symbol, order_id=str(order_id), side=self.side(side, raw, symbol),
                           status=order_status(self.statuses, status, ex, raw, symbol), qty=q, filled_qty=z,
                           price=self._order_price(price, raw, symbol), client_order_id=client_order_id,
                           ts_exchange_ns=ts_ns, ts_recv_ns=ts_recv_ns)

    def _order_price(self, text: str, raw: Any, symbol: str) -> Decimal | None:
        """An order's limit price; Binance writes ``"0"`` (``"0.00000000"``) for market orders."""
        price = quantity(text, "price", self.exchange, raw, symbol)
        return price if price != 0 else None

    def fill(self, *, symbol: str, trade_id: int, order_id: int, side: TradeSide, price: str, qty: str, fee: str,
             fee_currency: str | None, ts_ns: int, raw: Any, ts_recv_ns: int, pnl: str | None = None) -> Fill:
        """A trade (``pnl``: the venue's realized PnL of it, on a derivative).

        Raises:
            AdapterError: no trade id, a bad decimal, or a zero price or quantity.
        """
        ex = self.exchange
        if trade_id < self.min_trade_id:
            raise self.fail(f"trade without a trade id ({trade_id})", raw, symbol)
        px = quantity(price, "fill price", ex, raw, symbol)
        q = quantity(qty, "fill qty", ex, raw, symbol)
        if px == 0 or q == 0:
            raise self.fail(f"fill with zero price or quantity ({price} x {qty})", raw, symbol)
        # Binance's commission is positive when charged (the ledger's sign, events.Fill)
        return Fill(symbol=symbol, fill_id=str(trade_id), order_id=str(order_id), side=side, price=px, qty=q,
                    fee=money(fee, "commission", ex, raw, symbol), fee_currency=opt_text(fee_currency),
                    ts_exchange_ns=ts_ns, ts_recv_ns=ts_recv_ns,
                    realized_pnl=None if pnl is None else money(pnl, "realized PnL", ex, raw, symbol))

    def open_orders(self, body: Any, row_type: type[_OpenOrderRow], *, ts_recv_ns: int) -> list[OrderUpdate]:
        """The rows of an ``openOrders`` answer (``executedQty`` cumulative; ``updateTime`` as
        time, else ``time``).

        Raises:
            AdapterError: malformed body.
        """
        ex = self.exchange
        rows = convert(self.body(body), list[row_type], ex, body)  # type: ignore[valid-type]
        return [self.order_update(symbol=r.symbol, order_id=r.orderId, side=r.side, status=r.status, qty=r.origQty,
                                  filled=r.executedQty, price=r.price, client_order_id=opt_text(r.clientOrderId),
                                  ts_ns=ms_ns(r.updateTime or r.time, "updateTime", ex, body, r.symbol), raw=body,
                                  ts_recv_ns=ts_recv_ns)
                for r in rows]

    # -- the trades history ---------------------------------------------------------------

    def from_id_call(self, symbol: str, from_id: int, limit: int) -> RestCall:
        """The trades from ``fromId`` on (gapless)."""
        return RestCall(ccxt_id=self.ccxt_id, method=self.trades_method,
                        params={"symbol": symbol, "fromId": from_id, "limit": limit})

    def slice_call(self, symbol: str, start_ms: int, until_ms: int, limit: int) -> SlicedCall:
        """The slice ``[start, min(start + window, until)]``."""
        end = max(start_ms, min(start_ms + self.window_ms, until_ms))
        return SlicedCall(ccxt_id=self.ccxt_id, method=self.trades_method, until_ms=until_ms,
                          params={"symbol": symbol, "startTime": start_ms, "endTime": end, "limit": limit})

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """From ``fromId = cursor.trade_id + 1`` when the cursor has a numeric trade id, else
        the first slice of ``[since_ms, until_ms]``."""
        tid = cursor.trade_id
        if tid is not None and tid.isascii() and tid.isdigit():
            return self.from_id_call(symbol, int(tid) + 1, self.page_size)
        return self.slice_call(symbol, max(since_ms, 0), max(until_ms, since_ms, 0), self.page_size)

    def fills_page(self, fills: tuple[Fill, ...], trade_ids: list[int], *, call: RestCall, symbol: str) -> FillsPage:
        """The page of ``fills`` (the answer's rows had ``trade_ids``) and the call after it: a
        full page continues at ``fromId = last id + 1`` (also inside a time slice); a short
        page ends a ``fromId`` replay, and ends a slice, after which the next slice follows
        until ``until_ms`` is covered."""
        params = call.params
        limit = params.get("limit", self.page_size)
        if not isinstance(limit, int) or limit < 1:
            limit = self.page_size
        if trade_ids and len(trade_ids) >= limit:
            return FillsPage(fills=fills, next_call=self.from_id_call(symbol, max(trade_ids) + 1, limit))
        end = params.get("endTime")
        until = call.until_ms if isinstance(call, SlicedCall) else end
        if "fromId" in params or not isinstance(end, int) or not isinstance(until, int) or end >= until:
            return FillsPage(fills=fills, next_call=None)
        return FillsPage(fills=fills, next_call=self.slice_call(symbol, end + 1, until, limit))


class BinanceAccountBase(AccountAdapterBase):
    """What Binance spot's and USD-M's account adapters share beyond
    :class:`~adapters._private.AccountAdapterBase`: the trades replay and the open orders,
    built from the venue's :class:`BinanceRules`."""

    rules: ClassVar[BinanceRules]
    #: the wire shape of an ``openOrders`` row
    open_order_row: ClassVar[type[_OpenOrderRow]]

    def fills_call(self, symbol: str, *, cursor: FillCursor, since_ms: int, until_ms: int) -> RestCall:
        """The trades from ``fromId = cursor.trade_id + 1`` when the cursor has a numeric trade
        id (gapless), else the first slice (24 h spot, 7 days USD-M) of ``[since_ms, until_ms]``."""
        return self.rules.fills_call(symbol, cursor=cursor, since_ms=since_ms, until_ms=until_ms)

    @guarded_rest()
    def parse_open_orders(self, body: Any, *, ts_recv_ns: int = 0) -> list[OrderUpdate]:
        """The rows of ``openOrders`` (``executedQty`` cumulative; ``updateTime`` as time).

        Raises:
            AdapterError: malformed body.
        """
        return self.rules.open_orders(body, self.open_order_row, ts_recv_ns=ts_recv_ns)
