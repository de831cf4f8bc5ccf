"""ABFeed: two redundant connections (A/B lines) per stream, one gap-free book per symbol.

Theory of operation
-------------------
An :class:`ABFeed` runs two :class:`~bookkeeper.io.feed.Feed` lines for the same symbols, to
different endpoints where the venue publishes two (``LiveSpec`` adapters may declare
``default_ws_urls()``; Binance spot: ``stream.binance.com:9443`` and ``:443``), else twice to
the same one. Each line is a complete ingest with its own book sessions. They share:

- **one in-process journal** (:class:`~bookkeeper.io.journal.MemoryJournal`, chained before
  the fleet's journal when one is given): each line appends the deltas its synced books
  applied, so when one line drops with 1006 and reconnects, the ids it missed are replayed
  from what the other line received (the ``ReplayDeltas`` rung): no snapshot, no REST weight.
- **one coordinator** (a private :class:`~bookkeeper.io.coord.InProcessCoordinator` unless the
  fleet's is given): equal connection keys make the two lines' reconnects singleflight, so
  they never reconnect at the same moment; a REST snapshot both need is taken once.
- **one REST client** and one disconnect-record writer.

Which book a reader sees is decided by the pure :class:`~bookkeeper.coordination.LineArbiter`
(its docstring gives the rule and why it selects a line rather than merging deltas): the
SYNCED line furthest ahead, never one behind what the reader was already shown. While one
line recovers the other serves, so the book a bot reads never has a gap and never goes back;
:meth:`ABFeed.book` returns a view that follows the served line across failovers. Counters:
:attr:`ABFeed.failovers` (the served line changed because it dropped), ``holds`` (for a few
microseconds nothing was served: the surviving line was a frame behind), ``outages`` (both
lines down at once).

>>> async def main(sim):                                      # doctest: +SKIP
...     async with ABFeed("binance", ["BTCUSDT"], ws_url=sim.urls("binance")["ws_root"],
...                       rest_config=sim.ccxt_config("binance")) as feed:
...         await feed.wait_synced("BTCUSDT", timeout=10)
...         print(feed.book("BTCUSDT").best_bid(), feed.failovers)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bookkeeper.actions import StateChanged, SyncState
from bookkeeper.coordination import LineArbiter
from bookkeeper.errors import InvalidState, UsageError
from bookkeeper.view import BookView

from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep
from .coord import Coordinator, InProcessCoordinator
from .feed import Feed, _StartClose, _UpdateQueue
from .journal import JournalChain, MemoryJournal
from .metrics import FeedMetrics
from .records import RecordWriter
from .rest import RestClient
from .stream import BookUpdate, DriverConfig, Journal
from .ws import TransportFactory

__all__ = ["ABFeed"]

log = logging.getLogger("bookkeeper.io.abfeed")

#: when nothing is served, the state a reader is told (the most advanced line's)
_RANK = {SyncState.SYNCED: 4, SyncState.RECOVERING: 3, SyncState.AWAITING_SNAPSHOT: 2, SyncState.UNSYNCED: 1,
         SyncState.HALTED: 0}
LINE_NAMES = ("a", "b")


class _Served:
    """What a :class:`BookView` reads: the served line's session of one symbol, resolved at
    every read (a view kept across a failover follows the new line)."""

    __slots__ = ("_feed", "symbol")

    def __init__(self, feed: ABFeed, symbol: str) -> None:
        self._feed = feed
        self.symbol = symbol

    def _session(self) -> Any:
        line = self._feed.arbiter.served(self.symbol)
        return None if line is None else self._feed.lines[line].driver.sessions[self.symbol]

    @property
    def state(self) -> SyncState:
        return self._feed.state(self.symbol)

    @property
    def book(self) -> Any:
        s = self._session()
        return None if s is None else s.book

    @property
    def last_seq(self) -> int | None:
        s = self._session()
        return None if s is None else s.last_seq


class ABFeed(_StartClose):
    """Live books over two redundant connections (see the module docstring).

    Args:
        exchange, symbols, rest_config, rest, config, clock, sleep, updates_maxlen: as
            :class:`~bookkeeper.io.feed.Feed`.
        ws_urls: the two lines' WebSocket roots; default: ``ws_url`` for both, else the
            venue's declared pair (``default_ws_urls()``), else its one root twice.
        ws_url: one root for both lines (a simulator has one port).
        records_path, records: one disconnect-record writer for both lines (each line's
            records carry ``bot_instance_id`` + ``-a`` / ``-b``).
        metrics: one registry for both lines (counters add up; scrape-time gauges show the
            last line's sessions).
        seed: line A's jitter seed (line B: ``seed + 1``).
        transport_factory: builds both lines' transports; ``transport_factories`` one per line.
        journal: the fleet's journal (a :class:`~bookkeeper.io.journal.RedisJournal`), asked
            after the lines' own memory.
        coordinator: the fleet's coordinator; default a private in-process one.
        on_update: called for every change of the *served* book.
        on_state: called when the served state of a symbol changes.
        memory_window: ids the lines' shared memory journal keeps per symbol.

    Raises:
        UsageError: as :class:`Feed`, or ``transport_factories``/``ws_urls`` not two long.
    """

    def __init__(
        self,
        exchange: str,
        symbols: Sequence[str],
        *,
        ws_urls: Sequence[str] | None = None,
        ws_url: str | None = None,
        rest_config: Mapping[str, Any] | None = None,
        rest: RestClient | None = None,
        config: DriverConfig | None = None,
        records_path: str | Path | None = None,
        records: RecordWriter | None = None,
        metrics: FeedMetrics | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = real_sleep,
        seed: int | None = None,
        transport_factory: TransportFactory | None = None,
        transport_factories: Sequence[TransportFactory | None] | None = None,
        journal: Journal | None = None,
        coordinator: Coordinator | None = None,
        on_update: Callable[[BookUpdate], None] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        updates_maxlen: int = 1024,
        memory_window: int = 20_000,
    ) -> None:
        from bookkeeper.adapters import get_adapter

        if not symbols:
            raise UsageError("an ABFeed needs at least one symbol")
        roots = self._roots(get_adapter(exchange), ws_urls, ws_url)
        factories = list(transport_factories) if transport_factories is not None else [transport_factory] * 2
        if len(factories) != 2:
            raise UsageError(f"transport_factories: one per line (2), not {len(factories)}")
        self.arbiter = LineArbiter()
        self.memory = MemoryJournal(window=memory_window, max_entries=memory_window)
        shared: Any = JournalChain(self.memory, journal) if journal is not None else self.memory
        self.coordinator = coordinator if coordinator is not None else InProcessCoordinator(clock=clock)
        self.records = records if records is not None else RecordWriter(records_path)
        self.metrics = metrics if metrics is not None else FeedMetrics(clock=clock.monotonic_ns)
        self._user_update = on_update
        self._user_state = on_state
        self._queues: set[_UpdateQueue] = set()
        self._maxlen = updates_maxlen
        self._synced: dict[str, asyncio.Event] = {}
        self._served_state: dict[str, SyncState] = {}
        #: set by close(): the lines leaving SYNCED as they close is no failover or outage
        self._closing = False
        base = config or DriverConfig()
        self.lines: list[Feed] = []
        for i, name in enumerate(LINE_NAMES):
            cfg = replace(base, bot_instance_id=f"{base.bot_instance_id}-{name}")
            line = Feed(exchange, symbols, ws_url=roots[i], rest_config=rest_config,
                        rest=rest if i == 0 or rest is not None else self.lines[0].rest_client, config=cfg,
                        records=self.records, metrics=self.metrics, clock=clock, sleep=sleep,
                        seed=None if seed is None else seed + i, transport_factory=factories[i], journal=shared,
                        coordinator=self.coordinator,
                        on_update=lambda u, i=i: self._line_update(i, u),  # type: ignore[misc]
                        on_state=lambda c, i=i: self._line_state(i, c),  # type: ignore[misc]
                        updates_maxlen=1)
            self.lines.append(line)
        self._symbols = list(self.lines[0].symbols)

    @staticmethod
    def _roots(adapter: Any, ws_urls: Sequence[str] | None, ws_url: str | None) -> list[str | None]:
        if ws_urls is not None:
            if len(ws_urls) != 2:
                raise UsageError(f"ws_urls: one root per line (2), not {len(ws_urls)}")
            return list(ws_urls)
        if ws_url is not None:
            return [ws_url, ws_url]
        pair = getattr(adapter, "default_ws_urls", None)
        declared = tuple(pair()) if pair is not None else ()
        if len(declared) >= 2:
            return [declared[0], declared[1]]
        return [None, None]  # each line uses the venue's one default root

    # ------------------------------------------------------------------ arbitration
    def _lines_of(self, symbol: str) -> list[tuple[bool, int | None]]:
        out = []
        for line in self.lines:
            s = line.driver.sessions[symbol]
            out.append((s.is_synced and line.failure is None, s.last_seq))
        return out

    def _decide(self, symbol: str) -> int | None:
        choice = self.arbiter.choose(symbol, self._lines_of(symbol))
        if choice.failover:
            log.info("%s %s: served line is now %s (the other left SYNCED)", self.lines[0].driver.exchange, symbol,
                     LINE_NAMES[choice.line or 0])
        new = SyncState.SYNCED if choice.line is not None else self._unserved_state(symbol)
        old = self._served_state.get(symbol, SyncState.UNSYNCED)
        if new is not old:
            self._served_state[symbol] = new
            event = self._synced.setdefault(symbol, asyncio.Event())
            if new is SyncState.SYNCED:
                event.set()
            else:
                event.clear()
            if self._user_state is not None:
                reason = "hold: the surviving line is behind" if choice.hold else "no line synced"
                self._user_state(StateChanged(symbol=symbol, old=old, new=new,
                                              reason="a line is synced" if new is SyncState.SYNCED else reason))
        return choice.line

    def _unserved_state(self, symbol: str) -> SyncState:
        best = max((line.driver.sessions[symbol].state for line in self.lines), key=_RANK.__getitem__)
        return SyncState.RECOVERING if best is SyncState.SYNCED else best  # a hold: catching up

    def _line_update(self, i: int, update: BookUpdate) -> None:
        if self._closing:
            return
        if self._decide(update.symbol) != i:
            return  # the other line serves this symbol: its own update reports the change
        for q in self._queues:
            q.put(update)
        if self._user_update is not None:
            self._user_update(update)

    def _line_state(self, i: int, change: StateChanged) -> None:
        if not self._closing:
            self._decide(change.symbol)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start both lines (returns at once; use :meth:`wait_synced`)."""
        for line in self.lines:
            await line.start()

    async def close(self) -> None:
        """Close both lines (line B first: line A owns the shared REST client).

        Raises:
            InvalidState: a line's driver had died (everything was closed all the same).
        """
        failure: InvalidState | None = None
        self._closing = True
        try:
            for line in reversed(self.lines):
                try:
                    await line.close()
                except InvalidState as exc:
                    failure = failure or exc
        finally:
            for q in list(self._queues):
                q.close()
        if failure is not None:
            raise failure

    # ------------------------------------------------------------------ reading
    def _check(self, symbol: str) -> None:
        if symbol not in self._symbols:
            raise UsageError(f"{symbol!r} is not a symbol of this feed", symbol=symbol)

    def book(self, symbol: str) -> BookView:
        """A read-only view of ``symbol``'s served book; it follows the served line across
        failovers and refuses every read while nothing can be served.

        Raises:
            InvalidState: no line can serve ``symbol`` now.
            UsageError: unknown symbol.
        """
        self._check(symbol)
        state = self.state(symbol)
        if state is not SyncState.SYNCED:
            raise InvalidState(f"{symbol} book is {state} on both lines, not synced", symbol=symbol, state=state)
        return BookView(_Served(self, symbol))  # type: ignore[arg-type]

    def state(self, symbol: str) -> SyncState:
        """The served state of ``symbol``: SYNCED while some line serves it."""
        self._check(symbol)
        if self.arbiter.served(symbol) is not None and not self._closing:
            line = self.arbiter.served(symbol)
            assert line is not None
            if self.lines[line].driver.sessions[symbol].is_synced:
                return SyncState.SYNCED
        return self._unserved_state(symbol)

    def last_seq(self, symbol: str) -> int | None:
        """The sequence id of the served book (``None`` while nothing is served)."""
        self._check(symbol)
        line = self.arbiter.served(symbol)
        return None if line is None else self.lines[line].driver.sessions[symbol].last_seq

    def served_line(self, symbol: str) -> str | None:
        """``"a"``, ``"b"`` or ``None``."""
        line = self.arbiter.served(symbol)
        return None if line is None else LINE_NAMES[line]

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def failovers(self) -> int:
        """Times the served line changed because the one served before left SYNCED."""
        return self.arbiter.failovers

    @property
    def failure(self) -> BaseException | None:
        """The first line's driver failure, else ``None`` (one dead line does not stop the other)."""
        return next((line.failure for line in self.lines if line.failure is not None), None)

    async def wait_synced(self, symbol: str, timeout: float | None = None) -> None:
        """Wait until some line serves ``symbol``.

        Raises:
            TimeoutError: not served within ``timeout`` seconds.
            UsageError: unknown symbol.
        """
        self._check(symbol)
        event = self._synced.setdefault(symbol, asyncio.Event())
        async with asyncio.timeout(timeout):
            while self.state(symbol) is not SyncState.SYNCED:
                event.clear()
                await event.wait()

    async def updates(self) -> AsyncIterator[BookUpdate]:
        """Every change of a served book, until the feed closes (a bounded queue per call)."""
        q = _UpdateQueue(self._maxlen)
        self._queues.add(q)
        try:
            while True:
                item = await q.get()
                if item is None:
                    return
                yield item
        finally:
            self._queues.discard(q)
