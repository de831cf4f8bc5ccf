"""Feed: the public entry point a market-making bot uses.

A :class:`Feed` owns one :class:`~bookkeeper.io.stream.StreamDriver` (one WebSocket
connection for all its symbols, one ``BookSession`` per symbol), the REST client that takes
snapshots, the disconnect records and the metrics. Defaults point at the real exchange;
give it the simulator's URLs and the same code runs against the simulator::

    async with Feed("binance", ["BTCUSDT", "ETHUSDT"]) as feed:
        await feed.wait_synced("BTCUSDT", timeout=10)
        book = feed.book("BTCUSDT")        # raises InvalidState unless SYNCED
        print(feed.state("BTCUSDT"), feed.last_seq("BTCUSDT"), book.best_bid())
        async for update in feed.updates():
            ...

Against a local simulator (no real exchange contacted)::

    async with SimExchange(venues=("binance",)) as sim:
        async with Feed("binance", ["BTCUSDT"], ws_url=sim.urls("binance")["ws_root"],
                        rest_config=sim.ccxt_config("binance")) as feed:
        ...

Many instances (architecture.md §5) share one Redis: give each feed the fleet's coordinator
and journal (the coordinator may be shared by the feeds of every venue in a process; a journal
serves one venue)::

    coord = RedisCoordinator("redis://10.0.0.5:6379/0")
    journal = RedisJournal("redis://10.0.0.5:6379/0", window=100_000)
    async with Feed("binance", ["BTCUSDT"], coordinator=coord, journal=journal) as feed:
        ...

Without them nothing changes: no budgets, this process's own snapshots, no journal. Two
redundant connections per stream (A/B lines, one gap-free served book) are an
:class:`~bookkeeper.io.abfeed.ABFeed`, which takes the same arguments. Redis down
or slow degrades to that (a warning, ``bookkeeper_coordinator_degraded``), never blocking the
feed for longer than the coordinator's ``op_timeout_s``.

A book that is not ``SYNCED`` is never presented as valid: :meth:`Feed.book` raises, and
``updates()`` only reports books that are synced.

If the driver task dies (a bug: bad input, raising callbacks, unwritable records and REST
failures are all contained by the driver), every book is HALTED at once, :meth:`Feed.book`
refuses, and :meth:`Feed.wait_synced`, :meth:`Feed.updates` and :meth:`Feed.close` raise
:class:`~bookkeeper.errors.InvalidState` whose ``__cause__`` is the driver's exception
(also in :attr:`Feed.failure`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bookkeeper.actions import StateChanged, SyncState
from bookkeeper.errors import AdapterError, ConnectionLost, InvalidState, UsageError
from bookkeeper.events import CloseReason
from bookkeeper.policy import BreakerState
from bookkeeper.ports import Adapter, LiveSpec, RestCall
from bookkeeper.view import BookView

from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep
from .coord import Coordinator
from .metrics import FeedMetrics
from .records import RecordWriter
from .rest import CcxtRestClient, NoRestClient, RestClient
from .stream import BookUpdate, DriverConfig, FailureSite, Journal, StreamDriver
from .ws import Closure, Frame, StreamTransport, TransportFactory, WebsocketsTransport

__all__ = ["Feed"]

log = logging.getLogger("bookkeeper.io.feed")


class _BootstrapTransport:
    """A :class:`~bookkeeper.io.ws.StreamTransport` for a venue without a fixed WebSocket URL
    (KuCoin): each :meth:`connect` first makes the adapter's bootstrap call
    (:meth:`~bookkeeper.ports.LiveSpec.ws_bootstrap_call`: the endpoint and a token) and
    connects to the URL the adapter builds from the answer; the URL it is given is unused."""

    def __init__(self, inner: StreamTransport, spec: LiveSpec, call: RestCall, rest: CcxtRestClient) -> None:
        self._inner = inner
        self._spec = spec
        self._call = call
        self._rest = rest

    @property
    def closure(self) -> Closure | None:
        return self._inner.closure

    async def connect(self, url: str) -> None:
        body = await self._rest.call(self._call)  # our typed, retryable errors (map_ccxt_errors)
        try:
            resolved = self._spec.ws_url_from_bootstrap(body, uuid.uuid4().hex)
        except AdapterError as exc:  # a malformed answer fails this attempt; the next one asks again
            closure = Closure(reason=CloseReason.TCP_ERROR, code=None, detail=f"bootstrap: {exc}")
            raise ConnectionLost(closure.detail, closure=closure) from exc
        await self._inner.connect(resolved)

    async def recv(self) -> Frame:
        return await self._inner.recv()

    async def send(self, text: str) -> None:
        await self._inner.send(text)

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        await self._inner.ping(message, on_pong)

    def abort(self, reason: CloseReason) -> None:
        self._inner.abort(reason)

    async def close(self) -> None:
        await self._inner.close()


def _live(adapter: Adapter) -> LiveSpec:
    if not isinstance(adapter, LiveSpec):
        raise UsageError(f"{adapter.name} has no live wire dialogue", venue=adapter.name)
    return adapter


class _UpdateQueue:
    """A bounded per-consumer queue: a slow consumer loses the *oldest* updates (the book
    itself is always current; an update only says "look again")."""

    __slots__ = ("_items", "_event", "dropped", "closed")

    def __init__(self, maxlen: int) -> None:
        self._items: deque[BookUpdate] = deque(maxlen=maxlen)
        self._event = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, update: BookUpdate) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(update)
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def get(self) -> BookUpdate | None:
        while not self._items:
            if self.closed:
                return None
            self._event.clear()
            await self._event.wait()
        return self._items.popleft()


class _StartClose:
    """``async with`` for a feed: ``start()`` on entry, ``close()`` on exit. A driver failure
    that ``close()`` raises (``InvalidState``) propagates unless the block already raised (often
    this same failure, from ``wait_synced`` or ``updates()``): that one propagates, and the
    driver's death was logged with its traceback."""

    async def start(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.close()
        except InvalidState:
            if exc is None:
                raise


class Feed(_StartClose):
    """Live, self-healing L2 books for some symbols of one venue.

    Args:
        exchange: registry name (``binance``, ``okx``, ``kraken`` ...).
        symbols: the venue's spelling (``BTCUSDT``, ``BTC-USDT``, ``BTC/USD``).
        ws_url: WebSocket root (scheme, host, port; the adapter adds the path); ``None``
            uses the adapter's production root for its market
            (:meth:`~bookkeeper.ports.LiveSpec.default_ws_url`), or, for a venue without a
            fixed URL (KuCoin), asks the venue for one before each connection.
        rest_config: ccxt constructor config (URL overrides for the simulator); ignored
            when ``rest`` is given.
        rest: a ready REST client (tests pass fakes); the feed does not close it. A venue
            whose REST book cannot be spliced needs none: no ccxt client is made for it.
        config: driver tunables (backoff, breaker, keepalive, startup jitter ...).
        records_path: append disconnect records to this JSONL file (checked now: see
            :func:`~bookkeeper.io.records.check_writable`; a write failing later is logged
            once and counted, never fatal).
        records: a ready :class:`RecordWriter` (overrides ``records_path``).
        metrics: a ready :class:`FeedMetrics` (a private registry by default); serve it with
            ``feed.metrics.serve(port)``. Feeds of different venues may share one.
        clock, sleep, seed: time sources and jitter seed (fakes in tests).
        transport_factory: builds the WebSocket transport per attempt.
        journal: serves missed deltas (``ReplayDeltas``); one that is also a
            :class:`~bookkeeper.io.journal.JournalWriter` (``RedisJournal``, ``MemoryJournal``)
            is fed the deltas this feed's synced books apply. The feed does not close it.
        coordinator: fleet coordination (:class:`~bookkeeper.io.coord.InProcessCoordinator`
            shared by feeds of one process, :class:`~bookkeeper.io.coord.RedisCoordinator` for
            many instances): shared connect / REST-weight budgets, singleflight reconnects and
            shared REST snapshots (``config.fleet`` tunes them). ``None``: this feed alone,
            as before. The feed does not close it.
        on_update: called for every change of a synced book. Runs isolated: if it raises, the
            error is logged with its traceback and counted (:attr:`errors`), ingest goes on.
        on_state: called for every sync-state change (isolated the same way).
        updates_maxlen: per-consumer bound of :meth:`updates`.

    Raises:
        UsageError: unknown venue, no symbols, a venue that cannot be reached live (BitMEX:
            closed) or has no live dialogue, or a ``records_path`` that cannot be written.
    """

    def __init__(
        self,
        exchange: str,
        symbols: Sequence[str],
        *,
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
        journal: Journal | None = None,
        on_update: Callable[[BookUpdate], None] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        updates_maxlen: int = 1024,
        coordinator: Coordinator | None = None,
    ) -> None:
        # adapters are looked up, never imported by name
        from bookkeeper.adapters import get_adapter

        if not symbols:
            raise UsageError("a Feed needs at least one symbol")
        self._adapter = get_adapter(exchange)
        spec = _live(self._adapter)
        base = ws_url if ws_url is not None else spec.default_ws_url()  # raises for a closed venue
        bootstrap = spec.ws_bootstrap_call() if base is None else None
        if base is None and bootstrap is None:
            raise UsageError(f"no default WebSocket URL for {exchange!r}; pass ws_url=", venue=exchange)
        # records first: an unwritable path fails here, before any client is made
        self.records = records if records is not None else RecordWriter(records_path)
        self._owns_rest = rest is None
        needs_ccxt = bootstrap is not None or spec.rest_snapshot_call(next(iter(symbols)), None) is not None
        ccxt_client = CcxtRestClient(self._adapter, config=rest_config, clock=clock) if needs_ccxt else None
        if rest is None:
            rest = ccxt_client if ccxt_client is not None else NoRestClient(self._adapter.name)
        self._rest: RestClient = rest
        self._bootstrap_rest = ccxt_client if bootstrap is not None and ccxt_client is not rest else None
        if bootstrap is not None:
            assert ccxt_client is not None
            inner = transport_factory or (lambda: WebsocketsTransport(clock=clock))
            call, client = bootstrap, ccxt_client

            def bootstrapping() -> StreamTransport:
                return _BootstrapTransport(inner(), spec, call, client)

            transport_factory = bootstrapping
        self.metrics = metrics if metrics is not None else FeedMetrics(clock=clock.monotonic_ns)
        self._user_update = on_update
        self._user_state = on_state
        self._queues: set[_UpdateQueue] = set()
        self._maxlen = updates_maxlen
        self._synced: dict[str, asyncio.Event] = {}
        self._driver = StreamDriver(
            self._adapter, list(dict.fromkeys(symbols)), ws_base=base or "", rest=self._rest,
            transport_factory=transport_factory, clock=clock, sleep=sleep, seed=seed, config=config,
            records=self.records, metrics=self.metrics, journal=journal,
            on_update=self._on_update, on_state=self._on_state, coordinator=coordinator,
        )
        driver = self._driver
        link, jw = driver.fleet, driver.journal_writer
        if link is not None or jw is not None:
            self.metrics.watch_fleet(
                self._adapter.name,
                coordinator=link.coordinator.status if link is not None else None,
                link=(lambda: link.stats) if link is not None else None,
                journal=(lambda: jw.stats) if jw is not None else None)
        # scrape-time metrics: recovery rungs (the sessions' counts), last-message ages, breaker
        self.metrics.watch(self._adapter.name, driver.sessions, last_data_ns=driver.last_data_ns,
                           now_ns=clock.monotonic_ns, breaker=lambda: driver.breaker_state)
        self._task: asyncio.Task[None] | None = None
        self._close_timeout_s = (config or DriverConfig()).close_timeout_s

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start connecting (returns at once; use :meth:`wait_synced`)."""
        if self._task is None:
            for symbol in self._driver.sessions:
                self._synced.setdefault(symbol, asyncio.Event())
            self._task = asyncio.get_running_loop().create_task(self._driver.run(), name="bookkeeper-feed")
            self._task.add_done_callback(self._on_driver_done)

    def _on_driver_done(self, task: asyncio.Task[None]) -> None:
        """The driver task ended: if it died, wake every waiter so that it raises now."""
        if not task.cancelled():
            task.exception()  # retrieved: the driver logged it with its traceback already
        if self._driver.failure is None:
            return
        for event in self._synced.values():
            event.set()  # wait_synced re-checks and raises
        for q in list(self._queues):
            q.close()  # updates() ends its wait and raises

    def _raise_if_failed(self) -> None:
        exc = self._driver.failure
        if exc is not None:
            what = "was cancelled" if isinstance(exc, asyncio.CancelledError) else f"died: {type(exc).__name__}: {exc}"
            raise InvalidState(f"{self._adapter.name} feed driver {what}; every book is halted",
                               state=SyncState.HALTED) from exc

    @property
    def failure(self) -> BaseException | None:
        """The exception that killed the driver task, else ``None``."""
        return self._driver.failure

    @property
    def errors(self) -> Mapping[FailureSite, int]:
        """Failures the driver contained so far, by where (raising callbacks, bad frames,
        unwritable records ...); each was logged with its traceback."""
        return self._driver.errors

    async def close(self) -> None:
        """Close the connection, write the ``local_shutdown`` record, end :meth:`updates`.
        Never hangs (every wait is bounded by ``config.close_timeout_s``).

        Raises:
            InvalidState: the driver task had died (its exception is the ``__cause__``);
                everything was closed all the same.
        """
        try:
            await self._driver.close()
            task = self._task
            if task is not None and not task.done():  # driver.close() bounds its own waits
                task.cancel()
                await asyncio.wait({task}, timeout=self._close_timeout_s)
        finally:
            for q in list(self._queues):
                q.close()
            owned = [self._rest] if self._owns_rest else []
            if self._bootstrap_rest is not None:
                owned.append(self._bootstrap_rest)
            for client in owned:
                try:
                    await client.close()
                except Exception:  # closing an HTTP session must not hide the feed's own outcome
                    log.warning("closing the REST client failed", exc_info=True)
        self._raise_if_failed()

    # ------------------------------------------------------------------ reading
    def _session(self, symbol: str) -> Any:
        try:
            return self._driver.sessions[symbol]
        except KeyError:
            raise UsageError(f"{symbol!r} is not a symbol of this feed", symbol=symbol) from None

    def book(self, symbol: str) -> BookView:
        """A read-only view of ``symbol``'s live local book.

        The view follows the live book and refuses every read (``InvalidState``) once the book
        is not SYNCED, so a view kept across an ``await`` can never serve a stale price.

        Raises:
            InvalidState: the book is not SYNCED now (``.state`` says which state it is in), or
                the feed's driver died (the original exception is ``__cause__``).
            UsageError: unknown symbol.
        """
        session = self._session(symbol)
        self._raise_if_failed()  # a dead driver's books are never served, whatever they say
        if not session.is_synced:
            raise InvalidState(f"{symbol} book is {session.state}, not synced", symbol=symbol, state=session.state)
        return BookView(session)

    def state(self, symbol: str) -> SyncState:
        """The sync state of ``symbol``'s book."""
        return self._session(symbol).state

    def last_seq(self, symbol: str) -> int | None:
        """The venue sequence id last applied to ``symbol``'s book."""
        return self._session(symbol).last_seq

    @property
    def symbols(self) -> list[str]:
        return list(self._driver.sessions)

    @property
    def driver(self) -> StreamDriver:
        return self._driver

    @property
    def rest_client(self) -> RestClient:
        """The REST client taking this feed's snapshots (an :class:`~bookkeeper.io.abfeed.ABFeed`
        shares line A's with line B)."""
        return self._rest

    @property
    def breaker_state(self) -> BreakerState:
        """The connection's circuit breaker, operator-visible."""
        return self._driver.breaker_state

    async def wait_synced(self, symbol: str, timeout: float | None = None) -> None:
        """Wait until ``symbol``'s book is SYNCED.

        Raises:
            TimeoutError: not synced within ``timeout`` seconds.
            UsageError: unknown symbol.
            InvalidState: the driver task died (its exception is the ``__cause__``).
        """
        session = self._session(symbol)
        self._raise_if_failed()
        if session.is_synced:
            return
        event = self._synced.setdefault(symbol, asyncio.Event())
        async with asyncio.timeout(timeout):
            # _on_state keeps the event equal to "is synced", so one wait is normally enough;
            # the loop covers a book that lost sync again before this task ran. A dying
            # driver sets every event so that waiters raise at once.
            while not session.is_synced:
                await event.wait()
                self._raise_if_failed()
                if not session.is_synced:
                    event.clear()

    async def updates(self) -> AsyncIterator[BookUpdate]:
        """Every change of a synced book, until the feed closes. Each call is an
        independent consumer with its own bounded queue.

        Raises:
            InvalidState: the driver task died (its exception is the ``__cause__``).
        """
        self._raise_if_failed()
        q = _UpdateQueue(self._maxlen)
        self._queues.add(q)
        try:
            while True:
                item = await q.get()
                if item is None:
                    self._raise_if_failed()
                    return
                yield item
        finally:
            self._queues.discard(q)

    # ------------------------------------------------------------------ driver callbacks
    def _on_update(self, update: BookUpdate) -> None:
        for q in self._queues:
            q.put(update)
        if self._user_update is not None:
            self._user_update(update)

    def _on_state(self, change: StateChanged) -> None:
        event = self._synced.setdefault(change.symbol, asyncio.Event())
        if change.new is SyncState.SYNCED:
            event.set()
        else:
            event.clear()
        if self._user_state is not None:
            self._user_state(change)
