"""StreamDriver: one WebSocket connection, many symbols, one BookSession per symbol.

Theory of operation
-------------------
The driver is the only place where the book pipeline meets asyncio::

    transport.recv() ─frame─▶ decoder.decode() ─events─▶ session.handle() ─actions─▶ _run_actions()

It owns, per connection:

- **Reconnects.** :meth:`StreamDriver.run` loops *connect episode → serve → disconnect*.
  An episode is a tenacity ``AsyncRetrying`` over single connection attempts: delays come
  from :class:`~bookkeeper.policy.BackoffPolicy` (jittered, capped, ``Retry-After`` as a
  floor), attempts are bounded, and the injected ``sleep`` does the waiting. Reconnects are
  singleflight: :meth:`StreamDriver.reconnect` callers that arrive while one is pending
  share it, and the serve loop is the only code that ever opens a connection.
- **The circuit breaker.** Every disconnect and every failed attempt is a failure for the
  :class:`~bookkeeper.policy.CircuitBreaker`; an exhausted episode trips it. When it opens,
  every session is halted (``session.halt``: a halted book is never served as valid), the
  driver waits the cool-down, then makes one probe (HALF_OPEN). The probe succeeds when
  the new connection delivers data; the breaker closes and the sessions it halted are
  reset and resync from scratch.
- **Keepalive.** A watchdog task asks the pure :class:`~bookkeeper.policy.Keepalive` what
  is due, sleeping (injected ``sleep``) until the next deadline: send the venue's ping, or
  abort the socket with ``PING_TIMEOUT`` / ``IDLE_TIMEOUT``. Only data frames reset the
  staleness timer; pings, pongs and venue heartbeats do not.
- **Recovery actions.** ``FetchSnapshot`` runs REST through tenacity (bounded, epoch-tagged:
  the session ignores a stale answer); ``Resubscribe`` sends unsubscribe + subscribe for that
  one symbol; ``ReplayDeltas`` asks the journal (or answers ``None``); ``Halt``/``Alert``/
  ``StateChanged`` are logged, counted and passed to the consumer's callbacks. A gap on one
  symbol never touches another symbol's session.
- **Telemetry.** One :class:`~bookkeeper.io.records.DisconnectRecord` per disconnect (and
  per failed connection attempt), written once its reconnect and recovery are known.
- **Containment.** Nothing that goes wrong while handling one input ends :meth:`run`: an
  exception while handling a frame (decoder, session, fused fast path, building updates) is
  invalid input for that symbol (``session.on_invalid_input``), or, when no symbol is known,
  makes the connection untrusted: it is dropped with ``integrity_failure`` and every book on
  it leaves SYNCED (resume or rebuild proves what was missed). A REST client raising anything
  is a failed snapshot (``session.on_snapshot_failed``). User callbacks, the record writer and
  the metrics run isolated. Each contained failure is logged with its traceback and counted
  (:attr:`StreamDriver.errors`, ``bookkeeper_driver_errors_total``). ``CancelledError`` is
  never caught.
- **Death.** If :meth:`run` ends by an exception anyway (or is cancelled without
  :meth:`close`), every book is halted at once with the reason, :attr:`StreamDriver.failure`
  holds the exception, and :meth:`run` re-raises it.

On reconnect every session gets ``StreamClosed`` then ``StreamOpened``: a sequenced session
then tries to *resume* (first delta still chains → no snapshot at all).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bookkeeper.actions import (
    Action,
    Alert,
    AlertKind,
    FetchSnapshot,
    Halt,
    PlanKind,
    ReplayDeltas,
    Resubscribe,
    StateChanged,
    SyncState,
)
from bookkeeper.errors import AdapterError, ExchangeRejected, TransportError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    CloseReason,
    Fill,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
    Trade,
    VenueNotice,
)
from bookkeeper.policy import (
    BackoffPolicy,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Keepalive,
    KeepaliveDecision,
    KeepalivePolicy,
)
from bookkeeper.ports import Adapter, Decoder, LiveSpec
from bookkeeper.session import BookSession
from bookkeeper.types import Channel

from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep
from .metrics import FeedMetrics
from .records import DisconnectRecord, RecordWriter, iso_utc
from .rest import RestClient
from .ws import Closure, StreamTransport, TransportFactory, WebsocketsTransport

__all__ = ["BookUpdate", "DriverConfig", "FailureSite", "Journal", "StreamDriver", "keepalive_for"]

log = logging.getLogger("bookkeeper.io.stream")

_DATA_TYPES = (BookDelta, BookSnapshot, BookTicker, Trade, Fill)
_RETRYABLE = (TransportError, ExchangeRejected)
_PLAN_OF_ACTION: dict[type, str] = {
    FetchSnapshot: PlanKind.SNAPSHOT_REBUILD.value,
    Resubscribe: PlanKind.RESUBSCRIBE.value,
    ReplayDeltas: PlanKind.REPLAY_DELTAS.value,
    Halt: PlanKind.HALT.value,
}
#: contained failures of one kind logged with a traceback before only every 1000th is
#: (a callback raising on every delta must not flood the log, but stays visible and counted)
_LOGGED_PER_SITE = 10


class FailureSite(enum.StrEnum):
    """Where a failure the driver contained happened (the ``where`` label of
    ``bookkeeper_driver_errors_total`` and the keys of :attr:`StreamDriver.errors`)."""

    DECODE = "decode"  # a typed AdapterError (expected: bad or unknown frames)
    FRAME = "frame"  # anything else raised while handling a frame
    SESSION = "session"  # a session method raised outside the frame path
    REST = "rest"  # the REST client raised something other than our typed errors
    JOURNAL = "journal"  # the journal raised something other than our typed errors
    ON_UPDATE = "on_update"  # the user's update callback
    ON_STATE = "on_state"  # the user's state callback
    RECORDS = "records"  # a disconnect record could not be written
    METRICS = "metrics"  # a metrics update raised
    TASK = "task"  # a helper task (watchdog, resubscribe ...) died
    DRIVER = "driver"  # run() itself died


class BookUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A synced book changed: read it with ``feed.book(symbol)``."""

    symbol: str
    seq: int | None
    ts_recv_ns: int
    #: the exchange timestamp of the event that produced this state (0 when unknown); for
    #: venues without ids it is the only way to tell which point of the stream a book is at
    ts_exchange_ns: int = 0


class Journal(Protocol):
    """A source of missed deltas (redundant line or the shared Redis journal)."""

    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None:
        """Deltas covering ``from_seq..to_seq``, or ``None`` when it cannot serve them."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverConfig:
    """Tunables of one connection.

    Attributes:
        backoff: reconnect delays and the attempts per episode.
        breaker: N disconnects within M seconds open the breaker for a cool-down.
        keepalive: ping / pong / staleness timing; ``None`` derives it from the venue
            (:func:`keepalive_for`).
        snapshot_backoff: REST snapshot retries (its ``max_attempts`` bounds them).
        startup_jitter_s: upper bound of the random delay before the first connect, so a
            fleet restarted by one deploy does not reconnect in lock-step.
        depth: subscribed depth (venues that take one).
        channel: ``public`` or ``private`` (for records).
        bot_instance_id: written into every disconnect record.
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


class _PolicyWait(wait_base):
    """tenacity wait strategy backed by the pure :class:`BackoffPolicy`."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
        retry_after = getattr(exc, "retry_after_s", None)
        return self._policy.delay_s(retry_state.attempt_number, rand=self._rng.random(), retry_after_s=retry_after)


class _StopWhenBreakerOpen(stop_base):
    """Stop an episode as soon as the breaker opens (the cool-down takes over)."""

    def __init__(self, breaker: CircuitBreaker, clock: Clock) -> None:
        self._breaker = breaker
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._breaker.allow_attempt(self._clock.monotonic_ns())


@dataclass(slots=True)
class _Recovery:
    """What is known so far about one disconnect (becomes its record)."""

    record: DisconnectRecord
    disconnected_ns: int
    awaiting: set[str]
    plans: list[str] = field(default_factory=list)
    reconnected: bool | None = None  # None while the episode runs

    def add_plan(self, kind: str) -> None:
        if kind not in self.plans:
            self.plans.append(kind)


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
        journal: serves ``ReplayDeltas``; ``None`` answers every replay with "cannot".
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
    ) -> None:
        if not isinstance(adapter, LiveSpec):
            raise TypeError(f"adapter {adapter.name!r} has no live wire dialogue (LiveSpec)")
        self._adapter = adapter
        self._spec: LiveSpec = adapter
        self._cfg = config or DriverConfig()
        if isinstance(symbols, Mapping):
            self._sessions: dict[str, BookSession] = dict(symbols)
        else:
            self._sessions = {s: BookSession(s, adapter.capabilities, depth=self._cfg.depth,
                                             replay_available=journal is not None) for s in symbols}
        if not self._sessions:
            raise ValueError("a StreamDriver needs at least one symbol")
        self._ws_base = ws_base
        self._rest = rest
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._transport_factory: TransportFactory = transport_factory or (lambda: WebsocketsTransport(clock=clock))
        self._records = records
        self._metrics = metrics
        self._journal = journal
        self._on_update = on_update
        self._on_state = on_state
        self._keepalive_policy = self._cfg.keepalive or keepalive_for(adapter)
        self._ping_message = self._spec.ping_message()
        self._breaker = CircuitBreaker(self._cfg.breaker)
        self._breaker_halted: set[str] = set()
        self._transport: StreamTransport | None = None
        self._decoder: Decoder | None = None
        self._keepalive: Keepalive | None = None
        self._connected_ns = 0
        self._last_data_ns: int | None = None
        self._healthy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._reconnect_future: asyncio.Future[bool] | None = None
        self._episode_attempts = 0
        self._retry_after_floor_s = 0.0
        self._recovery: _Recovery | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: per symbol: monotonic ns of the last data event / of the last state change or request
        self._symbol_data_ns: dict[str, int] = {}
        self._symbol_progress_ns: dict[str, int] = {}
        self._symbol_wake = asyncio.Event()
        #: fused fast path (see ``BookSession.apply_frame_fast``): the venue's C function, and
        #: the session the last delta went to (reset on every connection)
        self._fused = getattr(adapter, "fused", None)
        self._fast: BookSession | None = None
        self._aux_tasks: set[asyncio.Task[None]] = set()
        #: set by _drop_connection: the serve loop ends the connection with this closure
        self._dropped: Closure | None = None
        self._failure: BaseException | None = None
        self.connections = 0  #: connections opened so far
        self.attempts = 0  #: connection attempts so far (successful or not)
        #: failures the driver contained, by where they happened (see :class:`FailureSite`)
        self.errors: Counter[FailureSite] = Counter()

    # ------------------------------------------------------------------ observers
    @property
    def sessions(self) -> Mapping[str, BookSession]:
        return self._sessions

    @property
    def exchange(self) -> str:
        return self._adapter.name

    @property
    def breaker_state(self) -> BreakerState:
        """The connection's breaker, as an operator sees it now."""
        return self._breaker.state_at(self._clock.monotonic_ns())

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def failure(self) -> BaseException | None:
        """The exception that ended :meth:`run` abnormally (``CancelledError`` when it was
        cancelled without :meth:`close`), else ``None``. Once set, every book is HALTED."""
        return self._failure

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
                if self._breaker.state_at(self._clock.monotonic_ns()) is BreakerState.OPEN:
                    await self._wait_breaker()
                    continue
                ok = await self._connect_episode(initial=initial)
                initial = False
                if not ok:
                    continue
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
        if isinstance(exc, asyncio.CancelledError):  # cancelled by its owner, not a bug: no traceback
            what = "cancelled"
            self._count(FailureSite.DRIVER)
            log.warning("%s: driver task cancelled without close(); every book is halted", self.exchange)
        else:
            what = f"{type(exc).__name__}: {exc}"
            self._report(FailureSite.DRIVER, exc, f"driver stopped ({what}); every book is halted")
        for t in [*self._tasks.values(), *self._aux_tasks]:
            t.cancel()  # nothing may act on the sessions any more
        reason = f"driver stopped: {what}"
        for session in self._sessions.values():
            try:
                actions = session.halt(reason)
            except Exception as again:  # noqa: BLE001 - the feed refuses every book anyway (failure is set)
                self._report(FailureSite.SESSION, again, f"{session.symbol}: halt failed")
                continue
            try:
                self._run_actions(session, actions)
            except Exception as again:  # noqa: BLE001 - a containment boundary
                self._report(FailureSite.SESSION, again, f"{session.symbol}: halt actions failed")

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
                self._report(FailureSite.TASK, exc, "transport close failed")
                transport.abort(CloseReason.LOCAL_SHUTDOWN)
            await asyncio.wait({task}, timeout=bound)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=bound)
            if not task.done():
                log.error("%s: the driver task ignored cancellation; giving up on it", self.exchange)
        for t in [*self._tasks.values(), *self._aux_tasks]:
            t.cancel()
        pending = [*self._tasks.values(), *self._aux_tasks]
        if pending:
            await asyncio.wait(pending, timeout=bound)
        # A closed feed serves no book (normally StreamClosed already took every one out of
        # SYNCED; this covers a run task that had to be cancelled mid-serve).
        for session in self._sessions.values():
            if session.is_synced:
                self._safely(session, session.halt, "feed closed")
        self._finish_recovery(force=True)

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

    # ------------------------------------------------------------------ connecting
    async def _connect_episode(self, *, initial: bool) -> bool:
        """One reconnect episode: bounded attempts through tenacity. True when connected."""
        now = self._clock.monotonic_ns()
        probe = self._breaker.state_at(now) is BreakerState.HALF_OPEN
        if not initial and not probe:
            delay = self._cfg.backoff.initial_delay_s(rand=self._rng.random())
            if delay > 0:
                await self._sleep(delay)
        self._episode_attempts = 0
        max_attempts = 1 if probe else self._cfg.backoff.max_attempts
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max_attempts) | _StopWhenBreakerOpen(self._breaker, self._clock),
            wait=_PolicyWait(self._cfg.backoff, self._rng),
            retry=retry_if_exception_type(_RETRYABLE),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._open_once()
        except _RETRYABLE as exc:
            now = self._clock.monotonic_ns()
            self._retry_after_floor_s = getattr(exc, "retry_after_s", None) or 0.0
            if self._breaker.state_at(now) is not BreakerState.OPEN:
                self._breaker.trip(now)  # attempts exhausted: stop hammering the venue
            log.warning("%s: reconnect failed after %d attempts (%s); circuit breaker open",
                        self.exchange, self._episode_attempts, exc)
            rec = self._recovery
            if rec is not None:
                rec.record.reconnect_attempt = self._episode_attempts
                rec.reconnected = False
                self._finish_recovery()
            self._resolve_reconnect(False)
            return False
        return True

    def _log_retry(self, rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        delay = rs.next_action.sleep if rs.next_action is not None else 0.0
        log.info("%s: connection attempt %d failed (%s); next in %.2fs", self.exchange, rs.attempt_number,
                 exc, delay)

    async def _open_once(self) -> None:
        """One connection attempt: connect and subscribe every symbol."""
        self._episode_attempts += 1
        self.attempts += 1
        if self._recovery is not None:
            self._metric(lambda m: m.reconnect_attempts.labels(exchange=self.exchange).inc())
        transport = self._transport_factory()
        symbols = list(self._sessions)
        try:
            await transport.connect(self._spec.ws_url(self._ws_base, symbols))
            for msg in self._spec.subscribe_messages(symbols, self._cfg.depth):
                await transport.send(msg)
        except _RETRYABLE as exc:
            closure: Closure | None = getattr(exc, "closure", None) or transport.closure
            if closure is not None:
                self._attempt_failed(closure)
            raise
        self._transport = transport
        self.connections += 1

    def _attempt_failed(self, closure: Closure) -> None:
        """A connection attempt failed: count it, and record it (its own record)."""
        now = self._clock.monotonic_ns()
        self._breaker.record_failure(now)
        self._metric(lambda m: m.disconnects.labels(exchange=self.exchange, cause=closure.reason.value).inc())
        if self._records is not None:
            self._write_record(DisconnectRecord(
                ts=iso_utc(self._clock.time_ns()), bot_instance_id=self._cfg.bot_instance_id,
                exchange=self.exchange, channel=self._cfg.channel.value, close_code=closure.code,
                close_cause=closure.reason.value, last_message_ago_ms=self._ago_ms(now), uptime_seconds=0.0,
                reconnect_attempt=self._episode_attempts, reconnect_success=False,
            ))

    async def _wait_breaker(self) -> None:
        """Breaker open: halt every book, wait the cool-down, then let run() probe."""
        now = self._clock.monotonic_ns()
        self._metric(lambda m: m.breaker_open.labels(exchange=self.exchange).set(1))
        reason = f"circuit breaker open (opened {self._breaker.opens} time(s); " \
                 f"cool-down {self._breaker.policy.cooldown_s:g}s)"
        for symbol, session in self._sessions.items():
            if session.state is not SyncState.HALTED:
                self._breaker_halted.add(symbol)
                self._safely(session, session.halt, reason)
        self._finish_recovery()
        delay = max(self._breaker.cooldown_remaining_s(now), self._retry_after_floor_s)
        self._retry_after_floor_s = 0.0
        log.warning("%s: %s; probing again in %.2fs", self.exchange, reason, delay)
        if delay > 0:
            await self._sleep(delay)

    # ------------------------------------------------------------------ serving
    async def _serve(self) -> Closure:
        """Read frames until the connection ends; returns how it ended."""
        transport = self._transport
        assert transport is not None
        now = self._clock.monotonic_ns()
        self._connected_ns = now
        self._healthy = False
        self._decoder = self._adapter.new_decoder()
        self._fast = None
        self._dropped = None
        self._keepalive = Keepalive(self._keepalive_policy, now_ns=now)
        rec = self._recovery
        if rec is not None:
            rec.reconnected = True
            rec.record.reconnect_attempt = self._episode_attempts
            rec.record.reconnect_success = True
            rec.record.reconnect_latency_ms = (now - rec.disconnected_ns) // 1_000_000
            self._metric(lambda m: m.reconnect_successes.labels(exchange=self.exchange).inc())
        self._resolve_reconnect(True)
        opened = StreamOpened(ts_ns=self._clock.time_ns(), attempt=self._episode_attempts)
        for session in self._sessions.values():
            self._safely(session, session.handle, opened)
        watchdog = None
        if self._keepalive_policy.enabled:
            watchdog = asyncio.create_task(self._watchdog(transport, self._keepalive))
            watchdog.add_done_callback(self._watchdog_done)
        for symbol in self._sessions:
            self._symbol_progress_ns[symbol] = now
            self._symbol_data_ns[symbol] = now
        symbol_watch = None
        if self._cfg.resync_timeout_s is not None or self._cfg.symbol_idle_timeout_s is not None:
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

    def _on_notice(self, notice: VenueNotice) -> None:
        """Venue control messages that need an action of the driver."""
        if notice.kind in ("connection_gap", "connection_out_of_order"):
            # the connection's own counter broke (Coinbase sequence_num): every book on it is suspect
            log.warning("%s: %s: %s", self.exchange, notice.kind, notice.message)
            for session in self._sessions.values():
                self._safely(session, session.on_connection_gap, f"{notice.kind}: {notice.message}")
        elif notice.kind == "test_request":
            # Deribit closes the connection unless a test_request is answered (public/test)
            # (the venue's app-level ping is exactly that answer: Deribit's ping is public/test)
            message = self._ping_message
            transport = self._transport
            if message and transport is not None:
                self._spawn(transport.send(message))
        else:
            log.warning("%s: venue notice %s: %s", self.exchange, notice.kind, notice.message)

    async def _symbol_watchdog(self) -> None:
        """Per-symbol staleness (the connection's keepalive cannot see one symbol go quiet or
        one WS snapshot go missing while the others flow). Sleeps until the earliest deadline;
        with nothing pending it waits for the next state change instead of polling."""
        cfg = self._cfg
        resync_ns = int(cfg.resync_timeout_s * 1e9) if cfg.resync_timeout_s is not None else None
        idle_ns = int(cfg.symbol_idle_timeout_s * 1e9) if cfg.symbol_idle_timeout_s is not None else None
        while True:
            now = self._clock.monotonic_ns()
            due: int | None = None
            for symbol, session in self._sessions.items():
                state = session.state
                if state is SyncState.HALTED:
                    continue
                fetching = self._tasks.get(symbol)
                if fetching is not None and not fetching.done():
                    continue  # a REST snapshot is in flight with its own bounded retries
                if state is SyncState.SYNCED:
                    if idle_ns is None:
                        continue
                    deadline = self._symbol_data_ns.get(symbol, now) + idle_ns
                    if deadline <= now:
                        self._symbol_data_ns[symbol] = now
                        self._safely(session, session.on_stale, f"no data for {cfg.symbol_idle_timeout_s}s")
                        continue
                else:
                    if resync_ns is None:
                        continue
                    deadline = self._symbol_progress_ns.get(symbol, now) + resync_ns
                    if deadline <= now:
                        self._symbol_progress_ns[symbol] = now
                        self._safely(session, session.on_stale,
                                     f"not synced {cfg.resync_timeout_s}s after the last recovery step")
                        continue
                due = deadline if due is None else min(due, deadline)
            self._symbol_wake.clear()
            if due is None:
                await self._symbol_wake.wait()
            else:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel that
                # lands as the event is set, and _serve then waited for this task forever
                try:
                    async with asyncio.timeout((due - now) / 1e9):
                        await self._symbol_wake.wait()
                except TimeoutError:
                    pass

    def _on_frame(self, data: str | bytes, ts_recv_ns: int, mono_ns: int) -> None:
        """Handle one frame. Never raises: any exception (decoder, session, fused fast path,
        building updates) is contained by :meth:`_contain` for the symbol being handled, or
        for the connection when none is known."""
        current: BookSession | None = None  # the session being fed when something raised
        try:
            ka = self._keepalive
            assert ka is not None and self._decoder is not None
            fast = self._fast
            if fast is not None:
                # Synced steady state: the venue's fused decode + sequence check + apply (C
                # accelerator) for the session the previous delta went to. It only ever answers
                # "applied"; everything else (other symbols, gaps, other messages) goes the normal way.
                current = fast
                if fast.apply_frame_fast(data if type(data) is bytes else data.encode(), self._fused):  # type: ignore[arg-type]
                    ka.on_data(mono_ns)
                    self._last_data_ns = mono_ns
                    self._symbol_data_ns[fast.symbol] = mono_ns
                    if self._on_update is not None:
                        self._emit_update(BookUpdate(symbol=fast.symbol, seq=fast.last_seq, ts_recv_ns=ts_recv_ns))
                    return
                current = None
            if data == "pong" or data == b"pong":
                # OKX answers the text ping with the text pong (not JSON, so not for the decoder).
                ka.on_frame(mono_ns)
                return
            try:
                events = self._decoder.decode(data, ts_recv_ns)
            except AdapterError as exc:
                ka.on_frame(mono_ns)
                self._count(FailureSite.DECODE)
                current = self._sessions.get(exc.symbol) if exc.symbol else None  # type: ignore[attr-defined]
                log.warning("%s: undecodable frame: %s", self.exchange, exc)
                if current is not None:
                    self._run_actions(current, current.on_invalid_input(str(exc)))
                return
            if any(isinstance(e, _DATA_TYPES) for e in events):
                ka.on_data(mono_ns)
                self._last_data_ns = mono_ns
                if not self._healthy:
                    self._healthy = True
                    self._on_healthy(mono_ns)
            else:
                ka.on_frame(mono_ns)
            for event in events:
                symbol = getattr(event, "symbol", None)
                session = self._sessions.get(symbol) if symbol is not None else None
                if session is None:
                    if isinstance(event, VenueNotice):
                        self._on_notice(event)
                    continue
                current = session
                was_ws_snapshot = type(event) is BookSnapshot and event.source is SnapshotSource.WS
                if isinstance(event, _DATA_TYPES):
                    self._symbol_data_ns[symbol] = mono_ns
                actions = session.handle(event)
                if actions:
                    if was_ws_snapshot:
                        self._note_ws_snapshot(session, actions)
                    self._run_actions(session, actions)
                if was_ws_snapshot and session.is_synced:
                    self._cancel_fetch(session.symbol)
                if self._fused is not None and type(event) is BookDelta:
                    self._fast = session
                if session.is_synced and isinstance(event, (BookDelta, BookSnapshot)) and self._on_update is not None:
                    self._emit_update(BookUpdate(symbol=session.symbol, seq=session.last_seq, ts_recv_ns=ts_recv_ns,
                                                 ts_exchange_ns=event.ts_exchange_ns))
                current = None
        except Exception as exc:  # noqa: BLE001 - the frame boundary: contained, never the driver's death
            self._contain(current, FailureSite.FRAME, exc)

    def _cancel_fetch(self, symbol: str) -> None:
        """A WS snapshot synced ``symbol``: a REST snapshot still in flight for it can only be
        as old or older (the session retires its epoch); stop spending REST weight on it."""
        task = self._tasks.get(symbol)
        if task is not None and not task.done():
            log.info("%s %s: synced from the WS snapshot; cancelling the REST snapshot in flight",
                     self.exchange, symbol)
            task.cancel()

    def _on_healthy(self, now_ns: int) -> None:
        """The connection delivered data: a HALF_OPEN breaker closes; books it halted resync."""
        before = self._breaker.state_at(now_ns)
        after = self._breaker.record_success(now_ns)
        if before is BreakerState.HALF_OPEN and after is BreakerState.CLOSED:
            log.info("%s: probe succeeded; circuit breaker closed", self.exchange)
            self._metric(lambda m: m.breaker_open.labels(exchange=self.exchange).set(0))
            for symbol in sorted(self._breaker_halted):
                session = self._sessions[symbol]
                if session.state is SyncState.HALTED:
                    self._safely(session, session.reset)
            self._breaker_halted.clear()

    # ------------------------------------------------------------------ disconnects
    def _ago_ms(self, now: int) -> int | None:
        return None if self._last_data_ns is None else (now - self._last_data_ns) // 1_000_000

    def _on_disconnect(self, closure: Closure) -> None:
        now = self._clock.monotonic_ns()
        self._finish_recovery(force=True)  # an older disconnect still recovering: write what is known
        local = closure.reason is CloseReason.LOCAL_SHUTDOWN
        if not local:
            self._breaker.record_failure(now)
        self._metric(lambda m: m.disconnects.labels(exchange=self.exchange, cause=closure.reason.value).inc())
        record = DisconnectRecord(
            ts=iso_utc(self._clock.time_ns()), bot_instance_id=self._cfg.bot_instance_id, exchange=self.exchange,
            channel=self._cfg.channel.value, close_code=closure.code, close_cause=closure.reason.value,
            last_message_ago_ms=self._ago_ms(now),
            uptime_seconds=round((now - self._connected_ns) / 1e9, 3),
        )
        level = logging.INFO if closure.reason in (CloseReason.ABNORMAL_CLOSURE, CloseReason.SERVER_CLOSE,
                                                   CloseReason.LOCAL_SHUTDOWN) else logging.WARNING
        log.log(level, "%s: connection ended: %s (code %s) %s", self.exchange, closure.reason, closure.code,
                closure.detail)
        closed = StreamClosed(reason=closure.reason, code=closure.code, ts_ns=self._clock.time_ns())
        if local and self._closing:
            # We are closing: nothing is being recovered, so no plan is run or recorded (a
            # venue without ids would otherwise record the ws_snapshot it plans on every
            # disconnect). The books still leave SYNCED: nothing feeds them any more.
            for session in self._sessions.values():
                self._safely(session, session.handle, closed)
            self._write_record(record)
            return
        awaiting = {s for s, sess in self._sessions.items() if sess.state is not SyncState.HALTED}
        self._recovery = _Recovery(record=record, disconnected_ns=now, awaiting=awaiting)
        for session in self._sessions.values():
            self._safely(session, session.handle, closed)

    def _note_ws_snapshot(self, session: BookSession, actions: list[Action]) -> None:
        rec = self._recovery
        if rec is None or session.symbol not in rec.awaiting:
            return
        for a in actions:
            if type(a) is StateChanged and a.new is SyncState.SYNCED and a.plan is not PlanKind.RESUME:
                rec.add_plan(PlanKind.RESUBSCRIBE.value)  # synced from the venue's WS snapshot
                self._metric(lambda m: m.snapshots.labels(exchange=self.exchange, kind="ws").inc())

    def _finish_recovery(self, *, force: bool = False) -> None:
        """Write the pending disconnect record once reconnect and recovery are known."""
        rec = self._recovery
        if rec is None:
            return
        if not force and (rec.reconnected is None or rec.awaiting):
            return
        self._recovery = None
        rec.record.plan = list(rec.plans)
        self._write_record(rec.record)

    # ------------------------------------------------------------------ actions
    def _run_actions(self, session: BookSession, actions: Iterable[Action]) -> None:
        """Execute what a session asked for. Never raises into the read loop."""
        rec = self._recovery
        metrics = self._metrics
        venue = self.exchange
        for a in actions:
            t = type(a)
            if t is StateChanged or t is FetchSnapshot or t is Resubscribe or t is ReplayDeltas:
                self._symbol_progress_ns[session.symbol] = self._clock.monotonic_ns()
                self._symbol_wake.set()
            if rec is not None and session.symbol in rec.awaiting:
                kind = _PLAN_OF_ACTION.get(t)
                if kind is not None:
                    rec.add_plan(kind)
            if t is FetchSnapshot:
                self._spawn_snapshot(session, a)  # type: ignore[arg-type]
            elif t is Resubscribe:
                self._spawn(self._resubscribe(session.symbol))
            elif t is ReplayDeltas:
                if self._journal is None:
                    self._run_actions(session, session.on_replay(None))
                else:
                    self._spawn(self._replay(session, a))  # type: ignore[arg-type]
            elif t is Halt:
                log.warning("%s %s: HALTED: %s", venue, a.symbol, a.reason)  # type: ignore[union-attr]
            elif t is Alert:
                assert isinstance(a, Alert)
                reason = a.reason.removeprefix(f"{a.kind}: ")  # reasons often name their kind already
                log.warning("%s %s: %s: %s", venue, a.symbol, a.kind, reason)
                if a.kind is AlertKind.GAP:
                    if metrics is not None:
                        self._metric(lambda m, sym: m.gaps.labels(exchange=venue, symbol=sym).inc(), a.symbol)
                        if a.missed:
                            self._metric(lambda m, sym, n: m.missed_messages.labels(exchange=venue, symbol=sym).inc(n),
                                         a.symbol, a.missed)
                    if rec is not None and a.missed:
                        rec.record.missed_messages_count += a.missed
            elif t is StateChanged:
                assert isinstance(a, StateChanged)
                log.info("%s %s: %s -> %s (%s)", venue, a.symbol, a.old, a.new, a.reason)
                if metrics is not None:
                    self._metric(FeedMetrics.set_state, venue, a.symbol, a.new)
                    if a.new is SyncState.SYNCED and a.plan is PlanKind.RESUME:
                        self._metric(lambda m: m.snapshots_avoided.labels(exchange=venue, kind="resume").inc())
                    elif a.new is SyncState.SYNCED and a.plan is PlanKind.REPLAY_DELTAS:
                        self._metric(lambda m: m.snapshots_avoided.labels(exchange=venue, kind="replay").inc())
                if rec is not None and a.symbol in rec.awaiting:
                    # Other rungs are recorded from their actions; these two have none
                    # (a resume needs nothing; a venue without ids waits for the snapshot
                    # the reconnect's subscribe brings).
                    # (HALT also comes as an action, but after this change took the symbol
                    # off the awaiting set.)
                    if a.plan is PlanKind.RESUME or a.plan is PlanKind.RESUBSCRIBE or a.plan is PlanKind.HALT:
                        rec.add_plan(a.plan.value)
                    if a.new is SyncState.SYNCED or a.new is SyncState.HALTED:
                        rec.awaiting.discard(a.symbol)
                if self._on_state is not None:
                    self._emit_state(a)
        if rec is not None:
            self._finish_recovery()

    def _spawn(self, coro: Any) -> None:
        if self._closing or self._failure is not None:
            coro.close()  # closing or dead: nothing is being recovered any more
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._aux_tasks.add(task)
        task.add_done_callback(self._aux_tasks.discard)
        task.add_done_callback(self._aux_done)

    def _spawn_snapshot(self, session: BookSession, action: FetchSnapshot) -> None:
        if self._closing or self._failure is not None:
            return  # closing or dead: nothing is being recovered any more
        # A newer request supersedes an older one (its answer would be rejected by epoch anyway).
        old = self._tasks.get(session.symbol)
        if old is not None and not old.done():
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._fetch_snapshot(session, action))
        task.add_done_callback(self._aux_done)
        self._tasks[session.symbol] = task

    async def _fetch_snapshot(self, session: BookSession, action: FetchSnapshot) -> None:
        policy = self._cfg.snapshot_backoff
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=_PolicyWait(policy, self._rng),
            retry=retry_if_exception_type(TransportError),  # anything else: no retry
            sleep=self._sleep,
            reraise=True,
        )
        snap: BookSnapshot | None = None
        failure: str | None = None
        try:
            async for attempt in retrying:
                with attempt:
                    snap = await self._rest.fetch_snapshot(action.symbol, depth=action.depth)
        except (TransportError, ExchangeRejected, AdapterError) as exc:
            log.warning("%s %s: snapshot failed: %s", self.exchange, action.symbol, exc)
            failure = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a REST client bug is a failed snapshot too, never a silent task death
            self._report(FailureSite.REST, exc, f"{action.symbol}: REST snapshot raised")
            failure = f"{type(exc).__name__}: {exc}"
        try:
            if failure is not None:
                self._run_actions(session, session.on_snapshot_failed(action.epoch, failure))
                return
            self._metric(lambda m: m.snapshots.labels(exchange=self.exchange, kind="rest").inc())
            self._run_actions(session, session.on_snapshot(snap, epoch=action.epoch))  # type: ignore[arg-type]
            if session.is_synced and self._on_update is not None:
                self._emit_update(BookUpdate(symbol=session.symbol, seq=session.last_seq,
                                             ts_recv_ns=snap.ts_recv_ns))  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self._contain(session, FailureSite.SESSION, exc, epoch=action.epoch)

    async def _resubscribe(self, symbol: str) -> None:
        transport = self._transport
        if transport is None:
            return  # the reconnect subscribes every symbol anyway
        try:
            for msg in self._spec.unsubscribe_messages([symbol]):
                await transport.send(msg)
            for msg in self._spec.subscribe_messages([symbol], self._cfg.depth):
                await transport.send(msg)
        except TransportError as exc:
            log.info("%s %s: resubscribe not sent (%s); the reconnect will subscribe", self.exchange, symbol, exc)

    async def _replay(self, session: BookSession, action: ReplayDeltas) -> None:
        assert self._journal is not None
        try:
            deltas = await self._journal.fetch(action.symbol, action.from_seq, action.to_seq)
        except (TransportError, ExchangeRejected) as exc:
            log.warning("%s %s: journal failed: %s", self.exchange, action.symbol, exc)
            deltas = None
        except Exception as exc:  # noqa: BLE001 - a journal bug: it could not serve them
            self._report(FailureSite.JOURNAL, exc, f"{action.symbol}: journal raised")
            deltas = None
        self._safely(session, session.on_replay, deltas)

    # ------------------------------------------------------------------ containment
    def _report(self, site: FailureSite, exc: BaseException, what: str) -> None:
        """Log (with traceback) and count one failure the driver contained."""
        n = self._count(site)
        if n <= _LOGGED_PER_SITE or n % 1000 == 0:
            log.error("%s: %s [%s #%d]: %s: %s", self.exchange, what, site, n, type(exc).__name__, exc,
                      exc_info=exc)

    def _count(self, site: FailureSite) -> int:
        self.errors[site] += 1
        metrics = self._metrics
        if metrics is not None and site is not FailureSite.METRICS:
            try:
                metrics.driver_errors.labels(exchange=self.exchange, where=site.value).inc()
            except Exception as exc:  # noqa: BLE001 - a containment boundary
                self._report(FailureSite.METRICS, exc, "metrics update failed")
        return self.errors[site]

    def _metric(self, update: Callable[..., object], *args: Any) -> None:
        """``update(metrics, *args)``; a metrics failure is logged and counted, never fatal."""
        metrics = self._metrics
        if metrics is None:
            return
        try:
            update(metrics, *args)
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self._report(FailureSite.METRICS, exc, "metrics update failed")

    def _emit_update(self, update: BookUpdate) -> None:
        try:
            self._on_update(update)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the user's code: isolated, ingest goes on
            self._report(FailureSite.ON_UPDATE, exc, f"{update.symbol}: on_update callback raised")

    def _emit_state(self, change: StateChanged) -> None:
        try:
            self._on_state(change)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the user's code: isolated, ingest goes on
            self._report(FailureSite.ON_STATE, exc, f"{change.symbol}: on_state callback raised")

    def _write_record(self, record: DisconnectRecord) -> None:
        records = self._records
        if records is None:
            return
        try:
            written = records.write(record)
        except Exception as exc:  # noqa: BLE001 - a writer that raises anyway (a custom one, a sink that fails)
            self._report(FailureSite.RECORDS, exc, "disconnect record not written")
            return
        if written is False:
            self._count(FailureSite.RECORDS)  # the writer logged it (once)

    def _safely(self, session: BookSession, step: Callable[..., Iterable[Action]], *args: Any) -> None:
        """``step(*args)`` (a method of ``session``) outside the frame path, and run its
        actions, containing whatever the session raises."""
        try:
            self._run_actions(session, step(*args))
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self._contain(session, FailureSite.SESSION, exc)

    def _contain(self, session: BookSession | None, site: FailureSite, exc: Exception, *,
                 epoch: int | None = None) -> None:
        """One failure while handling an input, contained. With a known symbol it is invalid
        input for that book (a synced book recovers; with ``epoch``, a book waiting for that
        snapshot takes its next rung); if the session cannot even do that, it is halted.
        Without a symbol the connection is no longer trusted and is dropped."""
        self._fast = None  # the fused path's session may be mid-change: the normal path decides now
        if session is None:
            symbol = getattr(exc, "symbol", None)
            session = self._sessions.get(symbol) if isinstance(symbol, str) else None
        self._report(site, exc, f"{session.symbol if session is not None else 'connection'}: {site} failed")
        reason = f"{site} raised {type(exc).__name__}: {exc}"
        if session is None:
            self._drop_connection(reason)
            return
        try:
            if epoch is not None and not session.is_synced:
                actions = session.on_snapshot_failed(epoch, reason)
            else:
                actions = session.on_invalid_input(reason)
            self._run_actions(session, actions)
            return
        except Exception as again:  # noqa: BLE001 - a containment boundary
            self._report(FailureSite.SESSION, again, f"{session.symbol}: could not recover; halting it")
        try:
            self._run_actions(session, session.halt(reason))
        except Exception as again:  # noqa: BLE001 - a session that cannot even halt: nothing on this connection is trusted
            self._report(FailureSite.SESSION, again, f"{session.symbol}: could not halt")
            self._drop_connection(reason)

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
        self._report(FailureSite.TASK, exc, "connection watchdog died")
        self._drop_connection(f"watchdog died: {type(exc).__name__}: {exc}")

    def _aux_done(self, task: asyncio.Task[None]) -> None:
        """Helper tasks (snapshot, resubscribe, replay, sends) contain their own failures;
        anything left is a bug: logged with traceback and counted, never silent."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self._report(FailureSite.TASK, exc, "helper task died")
