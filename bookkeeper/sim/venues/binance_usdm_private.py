"""Binance USD-M futures private side: the listenKey user data stream and the signed REST routes (§4.6).

- listenKey (§4.6): ``POST /fapi/v1/listenKey`` (API key header ``X-MBX-APIKEY`` only, no
  signature: what ccxt 4.5.90 ``binance.sign()`` sends for ``listenKey``) answers
  ``{"listenKey": K}``: the account's active key, extended by the key lifetime, or a new one
  when none is active. ``PUT`` extends the active key (``{"listenKey": K}``), or answers
  ``-1125 "This listenKey does not exist."`` (HTTP 400); ``DELETE`` closes it (its streams are
  closed with 1000) and answers ``{}``. A key lives ``private_listen_key_lifetime_s`` (60 min
  real) after its last POST/PUT; then every stream on it gets ``{"e": "listenKeyExpired",
  "E": "<ms>", "listenKey": K}`` (⚠ ``E`` is a string in the current docs' sample) and nothing
  more is pushed on it (the socket stays open). The ``auth_expiry`` fault expires the key now.
- Stream (§4.1, §4.6): ``/private/ws?listenKey=K`` on the binance_usdm server's port (real
  ``wss://fstream.binance.com/private/ws?listenKey=K``); ``&events=A/B`` filters the pushes
  (``listenKeyExpired`` always comes). ⚠ The upgrade with an unknown or expired key is refused
  with HTTP 400 and the ``-1125`` body (the docs say only that the key must be valid when the
  connection is made). Pushes, raw payloads: ``ORDER_TRADE_UPDATE`` (fields under ``o``: ``x``
  execution type, ``X`` status, ``i`` order id, ``l``/``z``/``L`` last / cumulative qty and last
  price, ``n``/``N`` commission (only on trades), ``T``, ``t`` trade id (0 when not a trade),
  ``rp`` realized PnL, ...) and ``ACCOUNT_UPDATE`` (``a.B`` wallet balances, ``a.P`` positions,
  reason ``a.m``). A connection lives ``private_session_lifetime_s`` (24 h real), then it is
  closed with 1000; the public dialect's protocol pings keep it alive.
- REST (§4.6, §2.4), signed as ccxt signs it (the spot dialect's check, inherited):
  ``GET /fapi/v1/userTrades`` (symbol required; ``limit`` <= 1000, default 500; ``fromId`` >=,
  not combinable with ``startTime``/``endTime`` (⚠ ``-1128``); ``endTime - startTime`` <= 7
  days (⚠ ``-1127``); without times the last 7 days; 6 months back),
  ``GET /fapi/v3/positionRisk`` and ``GET /fapi/v3/account`` (ccxt's default ``fetch_positions``
  and ``fetch_balance``; v3 lists only the symbols with a position or an open order),
  ``GET /fapi/v1/openOrders`` (symbol optional). Every ``assets`` row of ``/fapi/v3/account``
  and every position carries ``updateTime``: the asset's / position's last change (fills only:
  an order placement moves neither).
- Amounts: commission and realized PnL positive when charged / earned (⚠ the docs' ``userTrades``
  sample prints a negative commission; recorded answers in ccxt's comments show it positive),
  printed with 8 decimals (more when the exact value needs them: the ledger must see the
  truth's number).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from websockets.datastructures import Headers

from ..account import (
    AccountChange,
    AccountInstrument,
    AccountProfile,
    BalancesChanged,
    InstrumentKind,
    OrderChanged,
    OrderState,
    PositionChanged,
    SimFill,
    SimOrder,
)
from ..private import DAY_MS
from ..server import ClientConn, Frame, RestResult
from .binance_private import _STATUS, BinancePrivate, _err

__all__ = ["BINANCE_USDM_ACCOUNT", "BinanceUsdmPrivate"]

#: a USDT-M account in one-way mode: quantities in the base coin (contract size 1), fees and
#: realized PnL in USDT; Binance's default USD-M fee rates (taker 0.05 %, maker 0.02 %)
BINANCE_USDM_ACCOUNT = AccountProfile(
    venue="binance_usdm",
    instruments=(
        AccountInstrument(symbol="BTCUSDT", kind=InstrumentKind.LINEAR_SWAP, base="BTC", quote="USDT",
                          price_decimals=1, lot="0.001", typical_qty="0.250", ref_symbol="BTCUSDT",
                          ref_price="61837.6", ct_val="1", taker_fee="0.0005", maker_fee="0.0002"),
        AccountInstrument(symbol="ETHUSDT", kind=InstrumentKind.LINEAR_SWAP, base="ETH", quote="USDT",
                          price_decimals=2, lot="0.001", typical_qty="2.500", ref_symbol="ETHUSDT",
                          ref_price="3050.12", ct_val="1", taker_fee="0.0005", maker_fee="0.0002"),
    ),
    balances={"USDT": "120000", "BNB": "0"},
    uid="418822601",
    first_trade_id=5_600_000_001,
    first_order_id=81_000_000_001,
)

LISTEN_KEY_PATH = "/fapi/v1/listenKey"
WEEK_MS = 7 * DAY_MS
#: §4.6: "Only the last 6 months"
RETENTION_MS = 180 * DAY_MS
#: -1125, the answer to a key that is not active (Binance's "User Data Streams Connect")
_NO_KEY = {"code": -1125, "msg": "This listenKey does not exist."}


def money(value: Decimal | None) -> str:
    """8 decimals as Binance prints amounts, more when the exact value has more."""
    v = value or Decimal(0)
    fixed = v.quantize(Decimal("0.00000001"))
    return f"{fixed if fixed == v else v:f}"


def plain(value: Decimal | None) -> str:
    """A price or quantity at its own precision (``"0.250"``, ``"61837.6"``); ``"0"`` for none."""
    return "0" if value is None else f"{value:f}"


class _Key:
    """The account's listenKey: its text and when it expires (loop time)."""

    __slots__ = ("key", "expires_at")

    def __init__(self, key: str, expires_at: float) -> None:
        self.key = key
        self.expires_at = expires_at


class _Stream:
    """One private connection: the key in its URL, its ``events`` filter, whether it expired."""

    __slots__ = ("key", "events", "expired")

    def __init__(self, key: str, events: frozenset[str] | None) -> None:
        self.key = key
        self.events = events
        self.expired = False


class BinanceUsdmPrivate(BinancePrivate):
    """Binance USD-M account stream and signed REST (see the module docstring). The REST
    signature and timestamp checks are the spot dialect's (ccxt signs both the same way)."""

    ws_path = "/private/ws"
    profile = BINANCE_USDM_ACCOUNT
    rest_paths = frozenset({LISTEN_KEY_PATH, "/fapi/v1/userTrades", "/fapi/v3/positionRisk", "/fapi/v3/account",
                            "/fapi/v1/openOrders"})

    def __init__(self, server: Any, account: Any) -> None:
        super().__init__(server, account)
        self._key: _Key | None = None
        self._keys_made = 0

    # -- listenKey lifecycle ----------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _lifetime_s(self) -> float:
        return self.server.sim.config.private_listen_key_lifetime_s

    @property
    def keys_issued(self) -> int:
        """How many different listenKeys ``POST`` has made (a POST on an active key makes none)."""
        return self._keys_made

    def active_key(self) -> str | None:
        """The account's active listenKey (``None``: none, or it just expired)."""
        key = self._key
        if key is not None and self._now() >= key.expires_at:
            self._expire(key)
            return None
        return key.key if key is not None else None

    def forget_key(self) -> bool:
        """The venue loses the active key without a word to its streams (no
        ``listenKeyExpired``): the next ``PUT`` is refused with ``-1125``. Tests of a client's
        refused keepalive use it. Returns whether there was a key."""
        had, self._key = self._key is not None, None
        return had

    def _expire(self, key: _Key) -> None:
        """The key is gone: every live stream on it is told so, once, and gets nothing more."""
        if self._key is key:
            self._key = None
        event = {"e": "listenKeyExpired", "E": str(self.account.now_ms()), "listenKey": key.key}
        for conn in self.private_conns():
            stream: _Stream | None = conn.session
            if stream is not None and stream.key == key.key and not stream.expired:
                stream.expired = True
                self.send_control(conn, event)

    def request(self, method: str, path: str, raw_query: str, query: Mapping[str, str], headers: Headers,
                body: bytes) -> RestResult:
        if path != LISTEN_KEY_PATH:
            return super().request(method, path, raw_query, query, headers, body)
        key = headers.get("X-MBX-APIKEY")
        if not key:
            return _err(401, -2014, "API-key format invalid.")
        if key != self.account.credentials.api_key:
            return _err(401, -2015, "Invalid API-key, IP, or permissions for action.")
        active = self.active_key()
        if method == "POST":
            if active is None:
                self._keys_made += 1
                seed = f"{self.account.credentials.api_key}:{self._keys_made}"
                self._key = _Key(hashlib.sha256(seed.encode()).hexdigest(), 0.0)
            assert self._key is not None
            self._key.expires_at = self._now() + self._lifetime_s()
            return RestResult(200, {"listenKey": self._key.key})
        if method == "PUT":
            if active is None or self._key is None:
                return RestResult(400, dict(_NO_KEY))
            self._key.expires_at = self._now() + self._lifetime_s()
            return RestResult(200, {"listenKey": self._key.key})
        if method == "DELETE":
            if active is not None:
                self._key = None
                for conn in self.private_conns():
                    if conn.session is not None and conn.session.key == active:
                        conn.session.expired = True
                        self.server.sim.spawn(conn.ws.close(1000, ""))
            return RestResult(200, {})
        return _err(405, -1000, f"{method} is not supported for {path}.")

    def check_upgrade(self, query: Mapping[str, str]) -> RestResult | None:
        """⚠ An unknown or expired listenKey is refused on the upgrade (module docstring)."""
        wanted = query.get("listenKey")
        if not wanted or wanted != self.active_key():
            return RestResult(400, dict(_NO_KEY))
        return None

    # -- the stream -----------------------------------------------------------------------

    def on_open(self, conn: ClientConn) -> None:
        events = conn.query.get("events")
        conn.session = _Stream(conn.query.get("listenKey", ""), frozenset(events.split("/")) if events else None)

    def on_text(self, conn: ClientConn, text: str) -> None:
        # the user data stream takes no requests; Binance answers unknown ones with an error
        conn.send_json({"error": {"code": 2, "msg": "Invalid request"}, "id": None})

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._lifetime(conn)), asyncio.create_task(self._watch_key(conn))]

    async def _lifetime(self, conn: ClientConn) -> None:
        # §4.6: the connection itself lives at most 24 h ("expect to be disconnected")
        await asyncio.sleep(self.server.sim.config.private_session_lifetime_s)
        conn.send(Frame("", close_code=1000))
        self.server.sim.notify()

    async def _watch_key(self, conn: ClientConn) -> None:
        """Tell the stream when its key expires (a PUT or POST in between moves the end)."""
        stream: _Stream = conn.session
        while not stream.expired:
            key = self._key
            if key is None or key.key != stream.key:
                return  # deleted (the connection is being closed) or replaced
            remaining = key.expires_at - self._now()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            self._expire(key)

    def end_session(self, conn: ClientConn) -> bool:
        """``auth_expiry``: the connection's listenKey expires now (``listenKeyExpired``)."""
        stream: _Stream | None = conn.session
        key = self._key
        if stream is None or stream.expired or key is None or key.key != stream.key:
            return False
        self._expire(key)
        return True

    def publish(self, changes: list[AccountChange]) -> None:
        conns = self.private_conns()
        if not conns:
            return
        active = self.active_key()
        targets = [c for c in conns if c.session is not None and not c.session.expired and c.session.key == active]
        if not targets:
            return
        events: list[tuple[bool, dict[str, Any]]] = []
        pending: dict[int, tuple[set[str], set[str]]] = {}  # ts -> (assets, symbols) of ACCOUNT_UPDATE
        for change in changes:
            if isinstance(change, OrderChanged):
                events.append((True, self._order_update(change)))
            elif isinstance(change, BalancesChanged):
                pending.setdefault(change.ts_ms, (set(), set()))[0].update(change.assets)
            elif isinstance(change, PositionChanged):
                pending.setdefault(change.ts_ms, (set(), set()))[1].add(change.symbol)
        events += [(False, self._account_update(ts, assets, symbols)) for ts, (assets, symbols) in sorted(pending.items())]
        for conn in targets:
            wanted = conn.session.events
            for private, event in events:
                if wanted is not None and event["e"] not in wanted:
                    continue
                (self.send_event if private else self.send_control)(conn, event)

    def _order_update(self, change: OrderChanged) -> dict[str, Any]:
        o, f = change.order, change.fill
        exec_type = "TRADE" if f is not None else ("CANCELED" if o.state is OrderState.CANCELED else "NEW")
        body: dict[str, Any] = {
            "s": o.symbol, "c": o.client_order_id, "S": o.side.upper(), "o": o.order_type.upper(), "f": "GTC",
            "q": plain(o.qty), "p": plain(o.price), "ap": money(o.filled_quote / o.filled if o.filled else None),
            "sp": "0", "x": exec_type, "X": _STATUS[o.state], "i": int(o.order_id), "l": plain(f.qty if f else None),
            "z": plain(o.filled), "L": plain(f.price if f else None),
        }
        if f is not None:  # "will not push if no commission"
            body |= {"N": f.fee_currency, "n": money(f.fee)}
        body |= {
            "T": change.ts_ms, "t": int(f.trade_id) if f else 0, "b": "0", "a": "0", "m": bool(f and f.maker),
            "R": False, "wt": "CONTRACT_PRICE", "ot": o.order_type.upper(), "ps": "BOTH", "cp": False,
            "rp": money(f.pnl if f else None), "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE",
            "gtd": 0,
        }
        return {"e": "ORDER_TRADE_UPDATE", "E": change.ts_ms, "T": change.ts_ms, "o": body}

    def _account_update(self, ts_ms: int, assets: set[str], symbols: set[str]) -> dict[str, Any]:
        balances = []
        for asset in sorted(assets):
            free, locked, _ = self.account.balance(asset)
            balances.append({"a": asset, "wb": money(free + locked), "cw": money(free + locked), "bc": "0"})
        positions = []
        for symbol in sorted(symbols):
            pos, avg, _, _ = self.account.position(symbol)
            positions.append({"s": symbol, "pa": plain(pos), "ep": money(avg), "bep": money(avg), "cr": "0",
                              "up": money(self._upl(symbol)), "mt": "cross", "iw": "0", "ps": "BOTH"})
        return {"e": "ACCOUNT_UPDATE", "E": ts_ms, "T": ts_ms, "a": {"m": "ORDER", "B": balances, "P": positions}}

    def _upl(self, symbol: str) -> Decimal:
        pos, avg, _, _ = self.account.position(symbol)
        return (self.account.mark_price(symbol) - avg) * pos if pos else Decimal(0)

    # -- signed REST ----------------------------------------------------------------------

    def rest(self, path: str, raw_query: str, query: Mapping[str, str], headers: Headers) -> RestResult:
        denied = self._check_rest_signature(raw_query, query, headers)
        if denied is not None:
            return denied
        symbol = query.get("symbol")
        if symbol is not None and symbol not in self.account.instruments:
            return _err(400, -1121, "Invalid symbol.")
        if path == "/fapi/v1/userTrades":
            return self._user_trades(query)
        if path == "/fapi/v3/positionRisk":
            return RestResult(200, [self._position_risk(s) for s in self._listed(symbol)])
        if path == "/fapi/v3/account":
            return RestResult(200, self._account_v3())
        return RestResult(200, [self._open_order(o) for o in self.account.open_orders(symbol)])

    def _listed(self, symbol: str | None = None) -> list[str]:
        """The symbols v3 lists: a position or an open order (⚠ v3 leaves the others out)."""
        return [s for s in self.account.instruments if (symbol is None or s == symbol)
                and (self.account.position(s)[0] != 0 or self.account.open_orders(s))]

    def _user_trades(self, query: Mapping[str, str]) -> RestResult:
        checked = self._trades_query(query)  # symbol, limit and integers as spot's myTrades
        if isinstance(checked, RestResult):
            return checked
        symbol, limit, ints = checked
        start, end = ints.get("startTime"), ints.get("endTime")
        if "fromId" in ints and (start is not None or end is not None):
            return _err(400, -1128, "Combination of optional parameters invalid.")  # ⚠ code
        if start is not None and end is not None and not 0 <= end - start <= WEEK_MS:
            return _err(400, -1127, "More than 7 days between startTime and endTime.")  # ⚠ code
        now = self.account.now_ms()
        rows = self._served_trades(symbol, ints, RETENTION_MS, now_ms=now)
        if "fromId" in ints:
            rows = [f for f in rows if int(f.trade_id) >= ints["fromId"]][:limit]
        elif start is None and end is None:  # the last 7 days, most recent first cut, ascending
            rows = [f for f in rows if f.ts_ms >= now - WEEK_MS][-limit:]
        else:
            lo = start if start is not None else end - WEEK_MS  # type: ignore[operator]
            hi = end if end is not None else lo + WEEK_MS
            rows = [f for f in rows if lo <= f.ts_ms <= hi][:limit]
        return RestResult(200, [self._trade_row(f) for f in rows])

    def _trade_row(self, f: SimFill) -> dict[str, Any]:
        return {
            "buyer": f.side == "buy", "commission": money(f.fee), "commissionAsset": f.fee_currency, "id": int(f.trade_id),
            "maker": f.maker, "orderId": int(f.order_id), "price": plain(f.price), "qty": plain(f.qty),
            "quoteQty": money(f.quote_qty), "realizedPnl": money(f.pnl), "side": f.side.upper(), "positionSide": "BOTH",
            "symbol": f.symbol, "time": f.ts_ms,
        }

    def _position_risk(self, symbol: str) -> dict[str, Any]:
        pos, avg, updated, _ = self.account.position(symbol)
        mark = self.account.mark_price(symbol)
        notional = pos * mark
        return {
            "symbol": symbol, "positionSide": "BOTH", "positionAmt": plain(pos), "entryPrice": money(avg),
            "breakEvenPrice": money(avg), "markPrice": money(mark), "unRealizedProfit": money(self._upl(symbol)),
            "liquidationPrice": "0", "isolatedMargin": "0", "notional": money(notional), "marginAsset": "USDT",
            "isolatedWallet": "0", "initialMargin": money(abs(notional) / 10), "maintMargin": money(abs(notional) / 200),
            "positionInitialMargin": money(abs(notional) / 10), "openOrderInitialMargin": "0", "adl": 2 if pos else 0,
            "bidNotional": "0", "askNotional": "0", "updateTime": updated,
        }

    def _account_v3(self) -> dict[str, Any]:
        assets = []
        for asset in sorted(self.account.balances()):
            free, locked, updated = self.account.balance(asset)
            wallet = free + locked
            upl = sum((self._upl(s) for s in self.account.instruments), Decimal(0)) if asset == "USDT" else Decimal(0)
            assets.append({
                "asset": asset, "walletBalance": money(wallet), "unrealizedProfit": money(upl),
                "marginBalance": money(wallet + upl), "maintMargin": "0", "initialMargin": "0",
                "positionInitialMargin": "0", "openOrderInitialMargin": "0", "crossWalletBalance": money(wallet),
                "crossUnPnl": money(upl), "availableBalance": money(wallet + upl), "maxWithdrawAmount": money(wallet),
                "updateTime": updated,
            })
        usdt = next((a for a in assets if a["asset"] == "USDT"), None)
        totals = {k: (usdt or {}).get(src, "0") for k, src in (
            ("totalWalletBalance", "walletBalance"), ("totalUnrealizedProfit", "unrealizedProfit"),
            ("totalMarginBalance", "marginBalance"), ("totalCrossWalletBalance", "crossWalletBalance"),
            ("totalCrossUnPnl", "crossUnPnl"), ("availableBalance", "availableBalance"),
            ("maxWithdrawAmount", "maxWithdrawAmount"))}
        positions = []
        for symbol in self._listed():
            row = self._position_risk(symbol)
            positions.append({k: row[k] for k in ("symbol", "positionSide", "positionAmt", "isolatedMargin", "notional",
                                                  "isolatedWallet", "initialMargin", "maintMargin", "updateTime")}
                             | {"unrealizedProfit": row["unRealizedProfit"]})
        return {"totalInitialMargin": "0", "totalMaintMargin": "0", "totalPositionInitialMargin": "0",
                "totalOpenOrderInitialMargin": "0", **totals, "assets": assets, "positions": positions}

    def _open_order(self, o: SimOrder) -> dict[str, Any]:
        return {
            "avgPrice": money(o.filled_quote / o.filled if o.filled else None), "clientOrderId": o.client_order_id,
            "cumQuote": money(o.filled_quote), "executedQty": plain(o.filled), "orderId": int(o.order_id),
            "origQty": plain(o.qty), "origType": o.order_type.upper(), "price": plain(o.price), "reduceOnly": False,
            "side": o.side.upper(), "positionSide": "BOTH", "status": _STATUS[o.state], "stopPrice": "0",
            "closePosition": False, "symbol": o.symbol, "time": o.created_ms, "timeInForce": "GTC",
            "type": o.order_type.upper(), "updateTime": o.updated_ms, "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
        }
