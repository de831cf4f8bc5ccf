"""Bybit v5 spot full book: ``orderbook.full.{symbol}`` plus REST ``full_orderbook``
(exchange-protocols.md §6.1, §6.2, §6.4; registry name ``bybit_spot``).

The Bybit dialogue of :mod:`.bybit` (subscribe acks, ``{"op":"ping"}``, instruments, the
rate-limit body, at most 10 args per spot subscribe request), on the spot endpoint only, with
the full-book stream instead of ``orderbook.N``:

- Endpoint ``/v5/public/spot`` (:attr:`ws_root`); topic ``orderbook.full.{symbol}`` (any
  other topic is refused). **No snapshot on subscribe**: deltas only.
- Every push that changes a symbol is one message ``{"topic","ts","type":"delta","data":
  {s,b,a,u,seq},"cts"}`` with the whole interval's level changes (the book is not windowed:
  a level anywhere in it that changed is sent, ``"0"`` deletes). ``u`` goes up by exactly 1
  per message (whether anyone is subscribed or not: the venue numbers its messages, not its
  subscribers') and ``seq`` is the cross sequence of the engine seq the message brings the
  book to (increasing, with gaps).
- Service restart (fault ``service_restart``, §6.2 "reset scenarios"): the next message of
  the symbol has ``u = 1`` (it carries that interval's changes, like any delta) and ``u``
  counts on from it; ``seq`` keeps increasing, and the REST book reports the restarted ``u``.
- REST (§6.4): ``GET /v5/market/full_orderbook?category=spot&symbol=`` answers
  ``{"retCode":0,"retMsg":"OK","result":{s,a,b,ts,u,seq,cts},...}`` with the book as the last
  message left it (up to 10,000 levels per side), so its ``u``/``seq`` are a message's: the
  splice can match them. A ``stale_snapshot`` answer is the book at an older message (at most
  ``lag`` engine ids behind). Other categories are refused (the full book is live on spot
  only). ``GET /v5/market/orderbook`` and the rest are served as :mod:`.bybit` serves them.
- ``drop``/``duplicate``/``reorder`` act on these messages as on any data frame: a lost one
  is visible (``u`` skips), so the client resyncs from REST.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bookkeeper.types import Side

from ..engine import ChangeSet, SymbolSpec
from ..faults import FaultKind
from ..server import ClientConn, Frame, RestResult
from .bybit import WS_PATHS, BybitServer, _wire, cross_seq, seq_of_cross, window_diff

__all__ = ["BybitSpotServer"]

#: the full book's topic prefix (§6.1)
FULL_TOPIC = "orderbook.full."
#: ``GET /v5/market/full_orderbook`` returns at most this many levels per side (§6.4)
FULL_REST_LEVELS = 10_000
#: the first ``u`` of a symbol's session (any number: Bybit's count is per session)
_U_START = 278_000


class BybitSpotServer(BybitServer):
    """Bybit spot ``orderbook.full`` + REST ``full_orderbook`` on loopback (see the module
    docstring)."""

    venue = "bybit_spot"
    private_dialect = None
    #: spot instruments at their spot precision (MNTUSDT tick 0.0001, step 0.01; SOLUSDT tick
    #: 0.01, step 0.001): not the symbols of the Binance and Bybit dialects, so the venues can
    #: run side by side in one simulator (the engine keys books by symbol)
    default_symbols = (
        SymbolSpec(symbol="MNTUSDT", price_decimals=4, qty_decimals=2, mid_price="0.4758", typical_qty="900.00"),
        SymbolSpec(symbol="SOLUSDT", price_decimals=2, qty_decimals=3, mid_price="148.37", typical_qty="6.000"),
    )

    def __init__(self, sim: Any, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(sim, specs)
        engine = sim.engine
        history = sim.config.history
        #: symbol -> ``(u, engine seq)`` of its recent messages, newest last (REST answers are
        #: taken at one of them)
        self._messages: dict[str, deque[tuple[int, int]]] = {
            s: deque([(_U_START + engine.seq(s) % 1000, engine.seq(s))], maxlen=history) for s in self.specs}

    @property
    def ws_root(self) -> str:
        """The spot stream endpoint, ``ws://127.0.0.1:<port>/v5/public/spot``."""
        return f"ws://127.0.0.1:{self.port}{WS_PATHS['spot']}"

    @property
    def ws_url(self) -> str:
        return self.ws_root

    def ws_path_ok(self, path: str) -> bool:
        return path == WS_PATHS["spot"]

    @staticmethod
    def parse_topic(topic: Any) -> tuple[int, str] | None:
        """``orderbook.full.{symbol}`` -> ``(0, symbol)`` (depth 0: the whole book).

        >>> BybitSpotServer.parse_topic("orderbook.full.MNTUSDT"), BybitSpotServer.parse_topic("orderbook.50.X")
        ((0, 'MNTUSDT'), None)
        """
        if type(topic) is not str or not topic.startswith(FULL_TOPIC) or len(topic) == len(FULL_TOPIC):
            return None
        return 0, topic[len(FULL_TOPIC):]

    def on_subscribed(self, conn: ClientConn, symbol: str, depth: int) -> None:
        """No snapshot on subscribe (§6.1): the client starts from REST. The connection has
        processed nothing of the symbol yet (``SimExchange.wait_sent`` waits for what follows)."""
        conn.processed.setdefault(symbol, self.sim.engine.seq(symbol))

    def last_u(self, symbol: str) -> int:
        """The ``u`` of the symbol's last message (what a REST answer now reports)."""
        return self._messages[symbol][-1][0]

    def truth_seq(self, symbol: str, seq: int | None, *, ts_exchange_ns: int = 0,
                  cross_seq: int | None = None) -> int | None:
        """The engine seq of a client book: from its cross sequence (``seq``, which every
        message and REST answer carries); ``None`` without one (``u`` alone does not say)."""
        return None if cross_seq is None else seq_of_cross(cross_seq)

    # -- publishing ---------------------------------------------------------------------

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:
        if not batch:
            return  # nothing changed: no message (and no ``u``)
        engine = self.sim.engine
        last = batch[-1].seq
        if self.budget.take(FaultKind.SERVICE_RESTART):
            # the book service restarted: ids count from 1 again at this message (§6.2)
            self.sim.count_fault(FaultKind.SERVICE_RESTART)
            u = 1
        else:
            u = self._messages[symbol][-1][0] + 1
        self._messages[symbol].append((u, last))
        subs = self.subscribers(symbol)
        if not subs:
            return
        (b0, a0), (b1, a1) = engine.units_at(symbol, batch[0].seq - 1), engine.units_at(symbol, last)
        spec = self.specs[symbol]
        now = self._stamp(symbol)
        msg = {"topic": FULL_TOPIC + symbol, "ts": now, "type": "delta",
               "data": {"s": symbol, "b": _wire(spec, window_diff(list(b0.items()), list(b1.items()), Side.BID)),
                        "a": _wire(spec, window_diff(list(a0.items()), list(a1.items()), Side.ASK)),
                        "u": u, "seq": cross_seq(last)},
               "cts": now}
        frame = Frame(orjson.dumps(msg).decode(), symbol, last, data=True)
        for conn in subs:
            self.emit(conn, frame)

    # -- REST ---------------------------------------------------------------------------

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:
        if path == "/v5/market/full_orderbook":
            return self._full_orderbook(query)
        return super().rest(path, query)

    def _full_orderbook(self, query: Mapping[str, str]) -> RestResult:
        if query.get("category", "") != "spot":
            return self._error(10001, "Illegal category")
        symbol = query.get("symbol", "")
        if symbol not in self.specs:
            return self._error(10001, "The requested symbol is invalid.")
        u, seq = self._message_for_rest(symbol)
        bids, asks = self.sim.engine.units_at(symbol, seq)
        return self._ok(self.book_result(symbol, u, seq, bids, asks, FULL_REST_LEVELS,
                                         keys=("s", "a", "b", "ts", "u", "seq", "cts")))

    def _message_for_rest(self, symbol: str) -> tuple[int, int]:
        """``(u, engine seq)`` a REST answer is taken at: the last message, or with a
        ``stale_snapshot`` fault the newest one at least ``lag`` engine ids older (counted)."""
        messages = self._messages[symbol]
        if not self.budget.take(FaultKind.STALE_SNAPSHOT):
            return messages[-1]
        self.sim.count_fault(FaultKind.STALE_SNAPSHOT)
        floor = self.sim.stale_seq(self, symbol)
        oldest = self.sim.engine.oldest_seq(symbol)
        older = [m for m in messages if oldest <= m[1] <= floor]
        if older:
            return older[-1]
        # nothing old enough kept: the oldest message the engine still has, else the newest
        return next((m for m in messages if m[1] >= oldest), messages[-1])
