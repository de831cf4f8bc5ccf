"""StreamDriver: one WebSocket connection, many symbols, one BookSession per symbol.

Theory of operation
-------------------
The driver is the only place where the book pipeline meets asyncio::

    transport.recv() ─frame─▶ BookConnection.receive_frame() ─actions─▶ Executor.run()

It wires small parts, each with one job:

- :class:`~bookkeeper.connection.BookConnection` (core, sans-I/O): the connection's book
  logic: decode, demultiplex to the per-symbol sessions, the fused fast path, venue notices
  and the answers to them, open/close fan-out, and the bad-input rule (an exception on a
  frame is invalid input for its symbol, or, with no symbol known, makes the connection
  untrusted: it is dropped with ``integrity_failure`` and every book on it leaves SYNCED).
- :class:`~bookkeeper.io.episodes.Episodes`: reconnect episodes (tenacity) and the circuit
  breaker. :meth:`StreamDriver.run` loops *connect episode → serve → disconnect*. Reconnects
  are singleflight: :meth:`StreamDriver.reconnect` callers that arrive while one is pending
  share it, and the serve loop is the only code that ever opens a connection. While the
  breaker is open every book is halted (a halted book is never served as valid); when the
  probe connection delivers data the books it halted are reset and resync from scratch.
- :class:`~bookkeeper.io.execute.Executor`: runs what the sessions ask for (REST snapshots,
  resubscribes, journal replays, the consumer's callbacks), containing failures.
- :class:`~bookkeeper.io.telemetry.Telemetry`: disconnect records, metrics, contained-failure
  counts (:attr:`StreamDriver.errors`, ``bookkeeper_driver_errors_total``).
- **Fleet** (optional, :mod:`bookkeeper.io.coord`): with a coordinator, connection attempts
  take the connection key's lease and a token of the venue's shared connect budget
  (:class:`~bookkeeper.io.episodes.Episodes`), REST snapshots spend shared REST weight and are
  taken once for the fleet (:class:`~bookkeeper.io.execute.Executor`). With a journal that is
  also a :class:`~bookkeeper.io.journal.JournalWriter`, every delta a synced book applied is
  handed to it (a decoded delta, or the raw frame the fast path applied): a queue append,
  never an await on the hot path.
- **Keepalive.** A watchdog task asks the pure :class:`~bookkeeper.policy.Keepalive` what
  is due, sleeping (injected ``sleep``) until the next deadline: send the venue's ping, or
  abort the socket with ``PING_TIMEOUT`` / ``IDLE_TIMEOUT``. Only data frames reset the
  staleness timer; pings, pongs and venue heartbeats do not.
- **Per-symbol timers.** The pure :class:`~bookkeeper.timers.SymbolTimers` is fed ``Tick``
  events on the injected clock and says which books are idle or make no progress (they get
  ``session.on_stale``) and when to look again; the driver sleeps (injected ``sleep``) until
  then or until a state change wakes it.
- **Containment.** Nothing that goes wrong while handling one input ends :meth:`run`; each
  contained failure is logged with its traceback and counted. ``CancelledError`` is never
  caught.
- **Death.** If :meth:`run` ends by an exception anyway (or is cancelled without
  :meth:`close`), every book is halted at once with the reason, :attr:`StreamDriver.failure`
  holds the exception, and :meth:`run` re-raises it.

On reconnect every session gets ``StreamClosed`` then ``StreamOpened``: a sequenced session
then tries to *resume* (first delta still chains → no snapshot at all).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bookkeeper.actions import StateChanged, SyncState
from bookkeeper.connection import (
    CONNECTION_GAPS,
    BookConnection,
    BookUpdate,
    FaultKind,
    Output,
)
from bookkeeper.coordination import journaled
from bookkeeper.errors import TransportError
from bookkeeper.events import BookDelta, CloseReason, NoticeKind, StreamClosed, StreamOpened, Tick
from bookkeeper.policy import (
    BackoffPolicy,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Keepalive,
    KeepaliveDecision,
    KeepalivePolicy,
)
from bookkeeper.ports import Adapter, LiveSpec
from bookkeeper.session import BookSession
from bookkeeper.timers import SymbolTimers
from bookkeeper.types import Channel

from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep
from .coord import Coordinator, FleetConfig, FleetLink
from .episodes import Episodes
from .execute import Executor, Journal
from .journal import JournalWriter
from .metrics import FeedMetrics
from .records import RecordWriter
from .rest import RestClient
from .telemetry import FailureSite, Telemetry
from .ws import Closure, StreamTransport, TransportFactory, WebsocketsTransport

__all__ = ["BookUpdate", "DriverConfig", "FailureSite", "Journal", "StreamDriver", "keepalive_for"]

log = logging.getLogger("bookkeeper.io.stream")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverConfig:
    """Tunables of one connection.

    Attributes:
        backoff: reconnect delays and the attempts per episode.
        breaker: N disconnects within M seconds open the breaker for a cool-down.
        keepalive: ping / pong / staleness timing; ``None`` derives it from the venue
            (:func:`keepalive_for`).
        snapshot_backoff: REST snapshot and journal read retries (its ``max_attempts``
            bounds them; :func:`~bookkeeper.io.retry.is_retryable` decides what is retried).
        startup_jitter_s: upper bound of the random delay before the first connect, so a
            fleet restarted by one deploy does not reconnect in lock-step.
        depth: subscribed depth (venues that take one).
        channel: ``public`` or ``private`` (for records).
        bot_instance_id: written into every disconnect record.
        fleet: how this driver takes part in a fleet (used only with a coordinator).
    """

    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    keepalive: KeepalivePolicy | None = None
    snapshot_backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_s=0.5, cap_s=10.0, max_attempts=3, first_delay_s=0.0))
    startup_jitter_s: float = 1.0
    depth: int | None = None
    #: a book that is not synced this long after its last state change or recovery request
    #: gets its next recovery rung (a lost WS snapshot must not leave it waiting forever)
    resync_timeout_s: float | None = 10.0
    #: a *synced* book with no data for this long is resynced (``None``: never; quiet
    #: markets are normal, the connection-level staleness timer still applies)
    symbol_idle_timeout_s: float | None = None
    channel: Channel = Channel.PUBLIC
    bot_instance_id: str = "bookkeeper"
    #: :meth:`StreamDriver.close` waits this long for each step (clean close, the run task,
    #: helper tasks) before cancelling or giving up: closing never hangs
    close_timeout_s: float = 5.0
    fleet: FleetConfig = field(default_factory=FleetConfig)


def keepalive_for(adapter: Adapter) -> KeepalivePolicy:
    """The venue's keepalive: its declared ping interval / pong timeout / staleness limit,
    else ping every 15 s, pong within 10 s, and 60 s without data counts as idle.

    >>> from bookkeeper.adapters import get_adapter
    >>> keepalive_for(get_adapter("binance"))
    KeepalivePolicy(ping_interval_s=15.0, pong_timeout_s=10.0, idle_timeout_s=30.0)
    """
    caps = adapter.capabilities
    return KeepalivePolicy(
        ping_interval_s=caps.ping_interval_s if caps.ping_interval_s is not None else 15.0,
        pong_timeout_s=caps.pong_timeout_s if caps.pong_timeout_s is not None else 10.0,
        idle_timeout_s=caps.idle_timeout_s if caps.idle_timeout_s is not None else 60.0,
    )


class StreamDriver:
    """Drives one connection carrying many symbols' book streams.

    Args:
        adapter: the venue adapter (must also implement :class:`~bookkeeper.ports.LiveSpec`).
        symbols: the venue's spelling of each instrument on this connection, or ready-made
            sessions keyed by symbol.
        ws_base: the WebSocket base URL (``adapter.ws_url(ws_base, symbols)`` is dialled).
        rest: REST snapshots (``CcxtRestClient`` in production, fakes in tests).
        transport_factory: builds one transport per attempt (default:
            :class:`~bookkeeper.io.ws.WebsocketsTransport` on ``clock``).
        clock, sleep: time sources (fakes in tests).
        seed: seeds the jitter RNG (``None``: from the OS).
        config: see :class:`DriverConfig`.
        records, metrics: telemetry sinks.
        journal: serves ``ReplayDeltas``; ``None`` answers every replay with "cannot". When it
            is also a :class:`~bookkeeper.io.journal.JournalWriter` (and the venue's ids chain),
            the deltas synced books apply are appended to it.
        coordinator: fleet coordination (shared budgets, singleflight connects and shared
            snapshots, see :mod:`bookkeeper.io.coord`); ``None``: this process alone.
        on_update: called with a :class:`BookUpdate` whenever a synced book changed. It runs
            isolated: if it raises, the error is logged with its traceback and counted
            (``errors[FailureSite.ON_UPDATE]``), and ingest goes on.
        on_state: called with every ``StateChanged`` (isolated the same way).

    Example (see :class:`bookkeeper.io.feed.Feed` for the usual entry point)::

        driver = StreamDriver(get_adapter("binance"), ["BTCUSDT"], ws_base=url, rest=rest)
        task = asyncio.create_task(driver.run())
        ...
        await driver.close()
    """

    def __init__(
        self,
        adapter: Adapter,
        symbols: Sequence[str] | Mapping[str, BookSession],
        *,
        ws_base: str,
        rest: RestClient,
        transport_factory: TransportFactory | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = real_sleep,
        seed: int | None = None,
        config: DriverConfig | None = None,
        records: RecordWriter | None = None,
        metrics: FeedMetrics | None = None,
        journal: Journal | None = None,
        on_update: Callable[[BookUpdate], None] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        if not isinstance(adapter, LiveSpec):
            raise TypeError(f"adapter {adapter.name!r} has no live wire dialogue (LiveSpec)")
        self._adapter = adapter
        self._spec: LiveSpec = adapter
        cfg = self._cfg = config or DriverConfig()
        if isinstance(symbols, Mapping):
            self._sessions: dict[str, BookSession] = dict(symbols)
        else:
            self._sessions = {s: BookSession(s, adapter.capabilities, depth=cfg.depth,
                                             replay_available=journal is not None) for s in symbols}
        if not self._sessions:
            raise ValueError("a StreamDriver needs at least one symbol")
        self._clock = clock
        self._sleep = sleep
        rng = random.Random(seed)
        self._rng = rng
        self._on_update = on_update
        self._keepalive_policy = cfg.keepalive or keepalive_for(adapter)
        self._ping_message = self._spec.ping_message()
        self._conn = BookConnection(adapter, self._sessions, track_updates=on_update is not None)
        self._tm = Telemetry(adapter.name, clock=clock, records=records, metrics=metrics, channel=cfg.channel.value,
                             bot_instance_id=cfg.bot_instance_id)
        self._fleet = (FleetLink(coordinator, caps=adapter.capabilities, config=cfg.fleet, sleep=sleep,
                                 journal=journal if journaled(adapter.capabilities.sequence_model) else None)
                       if coordinator is not None else None)
        attach = getattr(journal, "attach", None)
        if attach is not None:
            attach(adapter)  # the journal learns the venue's sequence model (and decoder)
        #: where synced deltas are appended (a journal that also writes, for venues whose ids chain)
        self._jw: JournalWriter | None = (
            journal if isinstance(journal, JournalWriter) and journaled(adapter.capabilities.sequence_model) else None)
        self._timers = SymbolTimers(resync_timeout_s=cfg.resync_timeout_s, idle_timeout_s=cfg.symbol_idle_timeout_s)
        self._episodes = Episodes(
            spec=self._spec, ws_base=ws_base, symbols=list(self._sessions), depth=cfg.depth,
            transport_factory=transport_factory or (lambda: WebsocketsTransport(clock=clock)),
            backoff=cfg.backoff, breaker=CircuitBreaker(cfg.breaker), clock=clock, sleep=sleep, rng=rng,
            telemetry=self._tm, fleet=self._fleet)
        self._exec = Executor(
            self._conn, spec=self._spec, depth=cfg.depth, rest=rest, journal=journal,
            retry_policy=cfg.snapshot_backoff, rng=rng, sleep=sleep, clock=clock, telemetry=self._tm,
            timers=self._timers, transport=lambda: self._transport,
            stopped=lambda: self._closing or self._failure is not None, drop=self._drop_connection,
            wake=self._wake_timers, on_update=on_update, on_state=on_state, fleet=self._fleet)
        self._breaker_halted: set[str] = set()
        #: monotonic ns of each symbol's last data message (``bookkeeper_last_message_age_seconds``)
        self._last_data_ns: dict[str, int] = {}
        self._transport: StreamTransport | None = None
        self._keepalive: Keepalive | None = None
        self._connected_ns = 0
        self._healthy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._reconnect_future: asyncio.Future[bool] | None = None
        self._symbol_wake = asyncio.Event()
        #: set by _drop_connection: the serve loop ends the connection with this closure
        self._dropped: Closure | None = None
        self._failure: BaseException | None = None

    # ------------------------------------------------------------------ observers
    @property
    def sessions(self) -> Mapping[str, BookSession]:
        return self._sessions

    @property
    def exchange(self) -> str:
        return self._adapter.name

    @property
    def errors(self) -> Counter[FailureSite]:
        """Failures the driver contained, by where they happened (see :class:`FailureSite`)."""
        return self._tm.errors

    @property
    def fleet(self) -> FleetLink | None:
        """The driver's link to its fleet coordinator (``None`` without one)."""
        return self._fleet

    @property
    def journal_writer(self) -> JournalWriter | None:
        """Where synced deltas are appended (``None``: nowhere)."""
        return self._jw

    @property
    def connections(self) -> int:
        """Connections opened so far."""
        return self._episodes.connections

    @property
    def attempts(self) -> int:
        """Connection attempts so far (successful or not)."""
        return self._episodes.attempts

    @property
    def breaker_state(self) -> BreakerState:
        """The connection's breaker, as an operator sees it now."""
        return self._episodes.breaker.state_at(self._clock.monotonic_ns())

    @property
    def breaker(self) -> CircuitBreaker:
        return self._episodes.breaker

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def failure(self) -> BaseException | None:
        """The exception that ended :meth:`run` abnormally (``CancelledError`` when it was
        cancelled without :meth:`close`), else ``None``. Once set, every book is HALTED."""
        return self._failure

    def last_data_ns(self, symbol: str) -> int | None:
        """Monotonic ns (of the driver's clock) of ``symbol``'s last data message, else ``None``."""
        return self._last_data_ns.get(symbol)

    @property
    def connected_since_ns(self) -> int | None:
        """Monotonic ns (of the driver's clock) when the current connection opened."""
        return self._connected_ns if self._transport is not None else None

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Connect, serve and reconnect until :meth:`close`. Never raises on network
        failures: they become records, metrics and session states; bad input, raising
        callbacks, records and metrics are contained (see the module docstring).

        Raises:
            Exception: whatever ended the loop anyway (a bug); every book was halted first
                and :attr:`failure` holds it. ``CancelledError`` when cancelled.
        """
        self._task = asyncio.current_task()
        try:
            jitter = self._cfg.startup_jitter_s * self._rng.random()
            if jitter > 0:
                await self._sleep(jitter)
            initial = True
            while not self._closing:
                if self._episodes.is_open():
                    await self._wait_breaker()
                    continue
                transport = await self._episodes.connect(initial=initial)
                initial = False
                if transport is None:
                    self._resolve_reconnect(False)
                    continue
                self._transport = transport
                closure = await self._serve()
                self._on_disconnect(closure)
        except BaseException as exc:
            if not (self._closing and isinstance(exc, asyncio.CancelledError)):
                self._die(exc)
            raise  # never swallowed, CancelledError included
        finally:
            self._resolve_reconnect(False)

    def _die(self, exc: BaseException) -> None:
        """run() is ending abnormally: no book of this connection may stay SYNCED."""
        self._failure = exc
        tm = self._tm
        if isinstance(exc, asyncio.CancelledError):  # cancelled by its owner, not a bug: no traceback
            what = "cancelled"
            tm.count(FailureSite.DRIVER)
            log.warning("%s: driver task cancelled without close(); every book is halted", self.exchange)
        else:
            what = f"{type(exc).__name__}: {exc}"
            tm.report(FailureSite.DRIVER, exc, f"driver stopped ({what}); every book is halted")
        for t in self._exec.tasks():
            t.cancel()  # nothing may act on the sessions any more
        reason = f"driver stopped: {what}"
        for session in self._sessions.values():
            try:
                actions = session.halt(reason)
            except Exception as again:  # noqa: BLE001 - the feed refuses every book anyway (failure is set)
                tm.report(FailureSite.SESSION, again, f"{session.symbol}: halt failed")
                continue
            try:
                self._exec.run(session, actions)
            except Exception as again:  # noqa: BLE001 - a containment boundary
                tm.report(FailureSite.SESSION, again, f"{session.symbol}: halt actions failed")

    async def close(self) -> None:
        """Close the connection (``local_shutdown`` record) and stop :meth:`run`.

        Never hangs: each step waits at most ``config.close_timeout_s`` (then the run task
        is cancelled). Never raises; a driver that died says so in :attr:`failure`. No book
        is left SYNCED.
        """
        if self._closing:
            return
        self._closing = True
        bound = self._cfg.close_timeout_s
        transport = self._transport
        task = self._task
        if transport is not None and task is not None and not task.done():
            try:
                async with asyncio.timeout(bound):
                    await transport.close()  # run() sees the close, writes the record and returns
            except TimeoutError:
                log.warning("%s: clean close took over %ss; aborting", self.exchange, bound)
                transport.abort(CloseReason.LOCAL_SHUTDOWN)
            except Exception as exc:  # noqa: BLE001 - a transport bug must not keep the feed open
                self._tm.report(FailureSite.TASK, exc, "transport close failed")
                transport.abort(CloseReason.LOCAL_SHUTDOWN)
            await asyncio.wait({task}, timeout=bound)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=bound)
            if not task.done():
                log.error("%s: the driver task ignored cancellation; giving up on it", self.exchange)
        pending = self._exec.tasks()
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=bound)
        # A closed feed serves no book (normally StreamClosed already took every one out of
        # SYNCED; this covers a run task that had to be cancelled mid-serve).
        for session in self._sessions.values():
            if session.is_synced:
                self._exec.safely(session, session.halt, "feed closed")
        self._tm.finish_recovery(force=True)

    async def reconnect(self, reason: CloseReason) -> bool:
        """Drop the connection and reconnect. Singleflight: callers that arrive while a
        reconnect is pending share it (one new connection, however many triggers).

        Args:
            reason: recorded as the ``close_cause`` of the dropped connection.

        Returns:
            True when a new connection opened, False when the episode failed or we closed.
        """
        fut = self._reconnect_future
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self._reconnect_future = fut
            if self._transport is not None:
                self._transport.abort(reason)
        return await asyncio.shield(fut)

    def _resolve_reconnect(self, ok: bool) -> None:
        fut = self._reconnect_future
        if fut is not None and not fut.done():
            fut.set_result(ok)

    async def _wait_breaker(self) -> None:
        """Breaker open: halt every book, wait the cool-down, then let run() probe."""
        self._tm.breaker(True)
        reason = self._episodes.open_reason()
        for symbol, session in self._sessions.items():
            if session.state is not SyncState.HALTED:
                self._breaker_halted.add(symbol)
                self._exec.safely(session, session.halt, reason)
        self._tm.finish_recovery()
        await self._episodes.cool_down(reason)

    # ------------------------------------------------------------------ serving
    async def _serve(self) -> Closure:
        """Read frames until the connection ends; returns how it ended."""
        transport = self._transport
        assert transport is not None
        now = self._clock.monotonic_ns()
        self._connected_ns = now
        self._healthy = False
        self._dropped = None
        self._keepalive = Keepalive(self._keepalive_policy, now_ns=now)
        self._tm.reconnected(now, self._episodes.episode_attempts)
        self._resolve_reconnect(True)
        self._settle(self._conn.open(StreamOpened(ts_ns=self._clock.time_ns(), attempt=self._episodes.episode_attempts)),
                     FailureSite.SESSION)
        watchdog = None
        if self._keepalive_policy.enabled:
            watchdog = asyncio.create_task(self._watchdog(transport, self._keepalive))
            watchdog.add_done_callback(self._watchdog_done)
        self._timers.start(self._sessions, now_ns=now)
        symbol_watch = None
        if self._timers.enabled:
            symbol_watch = asyncio.create_task(self._symbol_watchdog())
            symbol_watch.add_done_callback(self._watchdog_done)
        closure: Closure | None = None
        try:
            while self._dropped is None:
                try:
                    frame = await transport.recv()
                except TransportError as exc:
                    closure = getattr(exc, "closure", None) or transport.closure
                    break
                self._on_frame(frame.data, frame.ts_recv_ns, frame.mono_ns)
            if self._dropped is not None:
                # we stopped trusting this connection: frames still buffered in the transport
                # are not read, the reconnect starts from a clean decoder and resumes or rebuilds
                closure = self._dropped
        except BaseException:
            transport.abort(CloseReason.INTEGRITY_FAILURE)  # dying or cancelled: free the socket
            raise
        finally:
            bound = self._cfg.close_timeout_s
            for task in (symbol_watch, watchdog):
                if task is not None:
                    task.cancel()
                    await asyncio.wait({task}, timeout=bound)
            self._transport = None
        if closure is None:
            closure = Closure(reason=CloseReason.ABNORMAL_CLOSURE, code=1006, detail="connection ended")
        return closure

    async def _watchdog(self, transport: StreamTransport, ka: Keepalive) -> None:
        """Sleep until the next keepalive deadline and do what the policy says is due."""
        clock = self._clock
        while True:
            now = clock.monotonic_ns()
            due = ka.next_check_ns(now)
            if due is None:
                return
            if due > now:
                await self._sleep((due - now) / 1e9)
                continue
            decision = ka.check(now)
            if decision is KeepaliveDecision.SEND_PING:
                ka.on_ping_sent(now)
                try:
                    await transport.ping(self._ping_message, lambda: ka.on_frame(clock.monotonic_ns()))
                except TransportError:
                    return  # the reader sees the same failure and reports it
            elif decision is KeepaliveDecision.PING_TIMEOUT:
                log.info("%s: no pong within %ss; dropping the connection", self.exchange,
                         self._keepalive_policy.pong_timeout_s)
                transport.abort(CloseReason.PING_TIMEOUT)
                return
            elif decision is KeepaliveDecision.IDLE_TIMEOUT:
                log.info("%s: no data for %ss; dropping the connection", self.exchange,
                         self._keepalive_policy.idle_timeout_s)
                transport.abort(CloseReason.IDLE_TIMEOUT)
                return

    def _wake_timers(self) -> None:
        self._symbol_wake.set()

    async def _symbol_watchdog(self) -> None:
        """Per-symbol staleness (:class:`~bookkeeper.timers.SymbolTimers`): feed it a
        ``Tick``, give the due books their next rung, then sleep (injected ``sleep``) until
        the next deadline or until a state change wakes us; with nothing pending, wait for
        the wake alone instead of polling."""
        cfg = self._cfg
        clock = self._clock
        sessions = self._sessions
        execu = self._exec
        while True:
            now = clock.monotonic_ns()
            states = {symbol: s.state for symbol, s in sessions.items()}
            busy = {symbol for symbol in sessions if execu.fetching(symbol)}
            due = self._timers.on_tick(Tick(now_ns=now), states, busy)
            self._symbol_wake.clear()
            for symbol in due.idle:
                session = sessions[symbol]
                execu.safely(session, session.on_stale, f"no data for {cfg.symbol_idle_timeout_s}s")
            for symbol in due.stalled:
                session = sessions[symbol]
                execu.safely(session, session.on_stale,
                             f"not synced {cfg.resync_timeout_s}s after the last recovery step")
            if self._symbol_wake.is_set():
                continue  # a state changed meanwhile: look again before sleeping
            if due.next_deadline_ns is None:
                await self._symbol_wake.wait()
            else:
                await self._sleep_or_wake((due.next_deadline_ns - now) / 1e9)

    async def _sleep_or_wake(self, delay_s: float) -> None:
        """The injected sleep for ``delay_s``, cut short by a wake."""
        sleeper = asyncio.ensure_future(self._sleep(delay_s))
        waker = asyncio.ensure_future(self._symbol_wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    def _on_frame(self, data: str | bytes, ts_recv_ns: int, mono_ns: int) -> None:
        """Handle one frame. Never raises: the connection contains bad input (see
        :class:`~bookkeeper.connection.BookConnection`); this runs what it produced."""
        ka = self._keepalive
        assert ka is not None
        conn = self._conn
        if self._healthy:
            out = conn.receive_frame(data, ts_recv_ns)
        else:
            # the first data of this connection: it is healthy (a probe succeeded, and the books
            # the breaker halted are reset) *before* its events reach the sessions
            decoded = conn.decode(data, ts_recv_ns)
            if type(decoded) is Output:
                out = decoded
            else:
                if conn.carries_data(decoded):  # type: ignore[arg-type]
                    self._healthy = True
                    self._on_healthy(mono_ns)
                out = conn.route(decoded, ts_recv_ns)  # type: ignore[arg-type]
        if out is None:
            # the fused fast path applied it: a data frame for the book the last delta went to
            fast = self._conn.last_session
            assert fast is not None
            ka.on_data(mono_ns)
            self._tm.last_data_ns = self._last_data_ns[fast.symbol] = mono_ns
            self._timers.on_data(fast.symbol, mono_ns)
            if self._on_update is not None:
                self._exec.emit_update(BookUpdate(symbol=fast.symbol, seq=fast.last_seq, ts_recv_ns=ts_recv_ns))
            if self._jw is not None:
                self._jw.append_frame(fast.symbol, data, ts_recv_ns)  # decoded by the journal, off the hot path
            return
        if out.data:
            ka.on_data(mono_ns)
            self._tm.last_data_ns = mono_ns
            sessions = self._sessions
            for symbol in out.data_symbols:
                if symbol in sessions:
                    self._last_data_ns[symbol] = mono_ns
                    self._timers.on_data(symbol, mono_ns)
        else:
            ka.on_frame(mono_ns)
        if self._jw is not None and out.events:
            self._journal(out.events)
        self._settle(out, FailureSite.FRAME)

    def _journal(self, events: Sequence[object]) -> None:
        """Append the deltas of one frame that synced books applied (a delta at or below the
        book's last id was applied, or is a copy the journal rejects by its id)."""
        jw = self._jw
        assert jw is not None
        sessions = self._sessions
        for ev in events:
            if type(ev) is BookDelta:
                session = sessions.get(ev.symbol)  # type: ignore[attr-defined]
                last = ev.last_seq  # type: ignore[attr-defined]
                if session is not None and session.is_synced and last is not None and session.last_seq is not None \
                        and last <= session.last_seq:
                    jw.append(ev)  # type: ignore[arg-type]

    def _settle(self, out: Output, site: FailureSite) -> None:
        """Run what the connection produced: the sessions' actions, replies, notices logged,
        book updates, and rejections (logged and counted; an untrusted connection dropped)."""
        execu = self._exec
        sessions = self._sessions
        for e in out.emitted:
            session = sessions[e.symbol]
            if e.ws_snapshot:
                self._tm.note_ws_snapshot(e.symbol, e.actions)
            execu.run(session, e.actions)
            if e.ws_snapshot and session.is_synced:
                execu.cancel_fetch(e.symbol)
        for notice in out.notices:
            if notice.kind in CONNECTION_GAPS:
                # the connection's own counter broke: every book on it was told (on_connection_gap)
                log.warning("%s: %s: %s", self.exchange, notice.kind, notice.message)
            elif notice.kind is NoticeKind.TEST_REQUEST:
                log.debug("%s: venue notice %s: %s", self.exchange, notice.kind, notice.message)  # answered below
            else:
                log.warning("%s: venue notice %s: %s", self.exchange, notice.kind, notice.message)
        for text in out.send:
            execu.send(text)
        for update in out.updates:
            execu.emit_update(update)
        for rej in out.rejected:
            if rej.kind is FaultKind.MALFORMED:
                self._tm.count(FailureSite.DECODE)
                log.warning("%s: undecodable frame: %s", self.exchange, rej.exc)
            else:
                self._tm.report(site, rej.exc, f"{rej.symbol or 'connection'}: {site} failed")
            execu.settle(rej.symbol, rej.actions, rej.errors, rej.trusted, f"{site} raised {rej.reason}")

    def _on_healthy(self, now_ns: int) -> None:
        """The connection delivered data: a HALF_OPEN breaker closes; books it halted resync."""
        if self._episodes.on_healthy(now_ns):
            self._tm.breaker(False)
            for symbol in sorted(self._breaker_halted):
                session = self._sessions[symbol]
                if session.state is SyncState.HALTED:
                    self._exec.safely(session, session.reset)
            self._breaker_halted.clear()

    # ------------------------------------------------------------------ disconnects
    def _on_disconnect(self, closure: Closure) -> None:
        now = self._clock.monotonic_ns()
        local = closure.reason is CloseReason.LOCAL_SHUTDOWN
        record = self._tm.disconnected(closure, now=now, connected_ns=self._connected_ns)
        self._episodes.disconnected(local=local)
        closed = StreamClosed(reason=closure.reason, code=closure.code, ts_ns=self._clock.time_ns())
        if local and self._closing:
            # We are closing: nothing is being recovered, so no plan is run or recorded (a
            # venue without ids would otherwise record the ws_snapshot it plans on every
            # disconnect). The books still leave SYNCED: nothing feeds them any more.
            self._settle(self._conn.close(closed), FailureSite.SESSION)
            self._tm.write_record(record)
            return
        awaiting = {s for s, sess in self._sessions.items() if sess.state is not SyncState.HALTED}
        self._tm.begin_recovery(record, now=now, awaiting=awaiting)
        self._settle(self._conn.close(closed), FailureSite.SESSION)

    # ------------------------------------------------------------------ containment
    def _drop_connection(self, detail: str) -> None:
        """Stop trusting the current connection: abort it (``integrity_failure``); every
        book on it leaves SYNCED through ``StreamClosed`` and resumes or rebuilds."""
        transport = self._transport
        if transport is None or self._dropped is not None:
            return
        log.warning("%s: dropping the connection: %s", self.exchange, detail)
        self._dropped = Closure(reason=CloseReason.INTEGRITY_FAILURE, code=1006, detail=detail[:200])
        transport.abort(CloseReason.INTEGRITY_FAILURE)

    def _watchdog_done(self, task: asyncio.Task[None]) -> None:
        """A connection watchdog ended: if by a bug, the connection is no longer supervised."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self._tm.report(FailureSite.TASK, exc, "connection watchdog died")
        self._drop_connection(f"watchdog died: {type(exc).__name__}: {exc}")
