"""Reconnect episodes of one connection: tenacity attempts and the circuit breaker.

An *episode* is a tenacity loop over single connection attempts (connect, then subscribe
every symbol): delays come from :class:`~bookkeeper.policy.BackoffPolicy` (jittered, capped,
``Retry-After`` as a floor), attempts are bounded, :func:`~bookkeeper.io.retry.is_retryable`
decides which failures are worth another attempt, and the injected ``sleep`` does the waiting.

Every disconnect and every failed attempt is a failure for the
:class:`~bookkeeper.policy.CircuitBreaker`; an episode that ends without a connection (its
attempts ran out, or the venue refused with a non-retryable answer such as 401) trips it.
While it is open the driver halts every book and :meth:`Episodes.cool_down` waits; then one
probe (HALF_OPEN) is made, and the breaker closes when the new connection delivers data
(:meth:`Episodes.on_healthy`).

In a fleet (a :class:`~bookkeeper.io.coord.FleetLink`), each attempt first takes the lease of
its connection key (waiting a bounded time for another instance's attempt at the same
connection) and a token of the venue's shared connection-attempt budget (waiting while it is
empty), so a fleet restarted by one deploy never exceeds the venue's per-IP limit.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

from tenacity import RetryCallState
from tenacity.stop import stop_base

from bookkeeper.errors import ExchangeRejected, TransportError
from bookkeeper.policy import BackoffPolicy, BreakerState, CircuitBreaker
from bookkeeper.ports import LiveSpec

from .clock import Clock, Sleep
from .coord import FleetLink, connection_key
from .retry import retrying
from .telemetry import Telemetry
from .ws import Closure, StreamTransport, TransportFactory

__all__ = ["Episodes"]

log = logging.getLogger("bookkeeper.io.stream")

#: what a connection attempt raises when it fails (``StreamTransport.connect``): typed
#: failures end the attempt; anything else is a bug and ends the driver
_CONNECT_FAILURES = (TransportError, ExchangeRejected)


class _StopWhenBreakerOpen(stop_base):
    """Stop an episode as soon as the breaker opens (the cool-down takes over)."""

    def __init__(self, breaker: CircuitBreaker, clock: Clock) -> None:
        self._breaker = breaker
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._breaker.allow_attempt(self._clock.monotonic_ns())


class Episodes:
    """Connection attempts of one connection (see the module docstring).

    Args:
        spec: the venue's wire dialogue (URL, subscribe messages).
        ws_base: the WebSocket base URL.
        symbols: every symbol on the connection (each attempt subscribes them all).
        depth: the subscribed depth.
        transport_factory: one transport per attempt.
        backoff: delays and attempts per episode.
        breaker: the connection's breaker.
        clock, sleep, rng: time, waiting and jitter (injected).
        telemetry: records and metrics.
        fleet: the connection-key lease and the shared connect budget (``None``: none).
    """

    def __init__(self, *, spec: LiveSpec, ws_base: str, symbols: Sequence[str], depth: int | None,
                 transport_factory: TransportFactory, backoff: BackoffPolicy, breaker: CircuitBreaker, clock: Clock,
                 sleep: Sleep, rng: random.Random, telemetry: Telemetry, fleet: FleetLink | None = None) -> None:
        self._fleet = fleet
        #: the singleflight key of this connection's reconnects (equal on every instance)
        self.key = connection_key(telemetry.exchange, ws_base, symbols)
        self._spec = spec
        self._ws_base = ws_base
        self._symbols = list(symbols)
        self._depth = depth
        self._factory = transport_factory
        self._backoff = backoff
        self.breaker = breaker
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._tm = telemetry
        self._retry_after_floor_s = 0.0
        #: attempts of the current (or last) episode
        self.episode_attempts = 0
        self.connections = 0  #: connections opened so far
        self.attempts = 0  #: connection attempts so far (successful or not)

    @property
    def exchange(self) -> str:
        return self._tm.exchange

    async def connect(self, *, initial: bool) -> StreamTransport | None:
        """One reconnect episode: bounded attempts through tenacity.

        Args:
            initial: the first connection (no reconnect delay before it).

        Returns:
            The connected, subscribed transport, or ``None`` when the episode failed (the
            breaker is then open).
        """
        now = self._clock.monotonic_ns()
        probe = self.breaker.state_at(now) is BreakerState.HALF_OPEN
        if not initial and not probe:
            delay = self._backoff.initial_delay_s(rand=self._rng.random())
            if delay > 0:
                await self._sleep(delay)
        self.episode_attempts = 0
        attempts = retrying(self._backoff, rng=self._rng, sleep=self._sleep,
                            max_attempts=1 if probe else self._backoff.max_attempts,
                            stop=_StopWhenBreakerOpen(self.breaker, self._clock), before_sleep=self._log_retry)
        transport: StreamTransport | None = None
        try:
            async for attempt in attempts:
                with attempt:
                    transport = await self._open_once()
        except _CONNECT_FAILURES as exc:
            now = self._clock.monotonic_ns()
            self._retry_after_floor_s = getattr(exc, "retry_after_s", None) or 0.0
            if self.breaker.state_at(now) is not BreakerState.OPEN:
                self.breaker.trip(now)  # attempts exhausted or refused: stop hammering the venue
            log.warning("%s: reconnect failed after %d attempts (%s); circuit breaker open",
                        self.exchange, self.episode_attempts, exc)
            self._tm.episode_failed(self.episode_attempts)
            return None
        return transport

    def _log_retry(self, rs: RetryCallState) -> None:
        exc = rs.outcome.exception() if rs.outcome is not None else None
        delay = rs.next_action.sleep if rs.next_action is not None else 0.0
        log.info("%s: connection attempt %d failed (%s); next in %.2fs", self.exchange, rs.attempt_number,
                 exc, delay)

    async def _open_once(self) -> StreamTransport:
        """One connection attempt: connect and subscribe every symbol."""
        self.episode_attempts += 1
        self.attempts += 1
        self._tm.attempt_started()
        fleet = self._fleet
        lease = await fleet.connect_slot(self.key) if fleet is not None else None
        transport = self._factory()
        symbols = self._symbols
        try:
            await transport.connect(self._spec.ws_url(self._ws_base, symbols))
            for msg in self._spec.subscribe_messages(symbols, self._depth):
                await transport.send(msg)
        except _CONNECT_FAILURES as exc:
            closure: Closure | None = getattr(exc, "closure", None) or transport.closure
            if closure is not None:
                self.breaker.record_failure(self._clock.monotonic_ns())
                self._tm.attempt_failed(closure, self.episode_attempts)
            raise
        finally:
            if fleet is not None:
                await fleet.done(lease)
        self.connections += 1
        return transport

    def is_open(self) -> bool:
        """Whether the breaker is open now (the driver halts the books and cools down)."""
        return self.breaker.state_at(self._clock.monotonic_ns()) is BreakerState.OPEN

    def open_reason(self) -> str:
        """Why every book is halted while the breaker is open."""
        return (f"circuit breaker open (opened {self.breaker.opens} time(s); "
                f"cool-down {self.breaker.policy.cooldown_s:g}s)")

    async def cool_down(self, reason: str) -> None:
        """Wait the breaker's cool-down (at least the venue's last ``Retry-After``)."""
        delay = max(self.breaker.cooldown_remaining_s(self._clock.monotonic_ns()), self._retry_after_floor_s)
        self._retry_after_floor_s = 0.0
        log.warning("%s: %s; probing again in %.2fs", self.exchange, reason, delay)
        if delay > 0:
            await self._sleep(delay)

    def disconnected(self, *, local: bool) -> None:
        """The connection ended: a failure for the breaker unless we closed it."""
        if not local:
            self.breaker.record_failure(self._clock.monotonic_ns())

    def on_healthy(self, now_ns: int) -> bool:
        """The connection delivered data. Returns True when that closed a HALF_OPEN breaker
        (the probe succeeded)."""
        before = self.breaker.state_at(now_ns)
        after = self.breaker.record_success(now_ns)
        closed = before is BreakerState.HALF_OPEN and after is BreakerState.CLOSED
        if closed:
            log.info("%s: probe succeeded; circuit breaker closed", self.exchange)
        return closed
