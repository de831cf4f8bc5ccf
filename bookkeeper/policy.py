"""Pure reconnect policies: backoff delays, the circuit breaker, keepalive decisions.

Theory of operation
-------------------
Everything here is a decision, never an action. No object reads a clock, sleeps or draws
random numbers: the driver (``bookkeeper.io.stream``) passes ``now_ns`` and a uniform
``rand`` in ``[0, 1)`` and runs whatever comes back, the way tenacity's ``iter()`` returns
``DoSleep`` for its caller to run. That keeps every timing rule testable with plain numbers.

- :class:`BackoffPolicy` maps "the n-th failed attempt" (plus an optional ``Retry-After``)
  to a delay: exponential, capped, with *equal jitter* (``[exp*(1-jitter), exp]``) so
  a herd of bots spreads out but no delay collapses to zero (no tight loop).
  ``Retry-After`` is a floor, never capped: the venue said when it will talk to us again.
- :class:`CircuitBreaker` counts disconnects in a sliding window. ``max_failures`` within
  ``window_s`` opens it; after ``cooldown_s`` it lets one probe through (HALF_OPEN); a
  successful probe closes it, a failed one opens it again. Transitions are a table
  (:data:`BREAKER_TRANSITIONS`), as h11 does for its states.
- :class:`Keepalive` tracks the last frame, the last *data* frame (pings, pongs and venue
  heartbeats are not data) and an outstanding ping, and says what is due at ``now_ns``:
  nothing, send a ping, or give up (ping timeout / idle timeout).

>>> p = BackoffPolicy(base_s=1.0, cap_s=8.0, jitter=0.5)
>>> [p.delay_s(n, rand=1.0) for n in range(1, 6)]
[1.0, 2.0, 4.0, 8.0, 8.0]
>>> p.delay_s(1, rand=0.0, retry_after_s=12.0)
12.0
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "BREAKER_TRANSITIONS",
    "BackoffPolicy",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Keepalive",
    "KeepaliveDecision",
    "KeepalivePolicy",
    "parse_retry_after",
]

_NS = 1_000_000_000


# --------------------------------------------------------------------------- backoff
@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    """Exponential backoff with equal jitter, a cap and a ``Retry-After`` floor.

    Attributes:
        base_s: the un-jittered delay after the first failure.
        cap_s: no computed delay exceeds this (``Retry-After`` may: it is a floor).
        multiplier: growth factor per failure.
        jitter: fraction of the delay that is random; ``0.5`` gives ``[exp/2, exp]``.
        max_attempts: connection attempts per reconnect episode before giving up
            (the driver then opens the breaker).
        first_delay_s: upper bound of the random delay before the *first* reconnect
            attempt after a drop (spreads a herd that lost the same server at once).

    >>> BackoffPolicy(base_s=2.0, cap_s=30.0, jitter=0.5).delay_s(3, rand=0.0)
    4.0
    """

    base_s: float = 1.0
    cap_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_attempts: int = 8
    first_delay_s: float = 0.5

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.multiplier < 1:
            raise ValueError("need 0 < base_s <= cap_s and multiplier >= 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def delay_s(self, failures: int, *, rand: float, retry_after_s: float | None = None) -> float:
        """The delay after ``failures`` consecutive failed attempts (``failures >= 1``).

        Args:
            failures: how many attempts failed so far in this episode.
            rand: a uniform draw in ``[0, 1]`` supplied by the caller (seeded RNG).
            retry_after_s: what the venue asked for (HTTP ``Retry-After``), if anything.

        Returns:
            Seconds to wait: ``max(jittered capped exponential, retry_after_s)``.
        """
        n = max(1, failures)
        # min() before the power would overflow on absurd attempt counts.
        exp = min(self.cap_s, self.base_s * self.multiplier ** min(n - 1, 64))
        delay = exp * (1.0 - self.jitter) + exp * self.jitter * rand
        if retry_after_s is not None and retry_after_s > delay:
            delay = float(retry_after_s)
        return delay

    def initial_delay_s(self, *, rand: float) -> float:
        """The random delay before the first reconnect attempt of an episode."""
        return self.first_delay_s * rand


def parse_retry_after(value: str | None, *, now_s: float) -> float | None:
    """Parse an HTTP ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Args:
        value: the header text, or ``None``.
        now_s: the current wall-clock time (epoch seconds), for the HTTP-date form.

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unreadable.

    >>> parse_retry_after("7", now_s=0.0)
    7.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now_s=10.0)
    20.0
    >>> parse_retry_after("soon", now_s=0.0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now_s)


# --------------------------------------------------------------------------- breaker
class BreakerState(enum.StrEnum):
    """Circuit breaker state (string values are shown to operators and in metrics)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Every legal breaker transition.
BREAKER_TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.HALF_OPEN}),
    BreakerState.HALF_OPEN: frozenset({BreakerState.CLOSED, BreakerState.OPEN}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    """``max_failures`` disconnects within ``window_s`` open the breaker for ``cooldown_s``."""

    max_failures: int = 5
    window_s: float = 300.0
    cooldown_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s <= 0 or self.cooldown_s < 0:
            raise ValueError("need max_failures >= 1, window_s > 0, cooldown_s >= 0")


class CircuitBreaker:
    """N-in-M disconnect breaker. Pure: every method takes ``now_ns``.

    >>> b = CircuitBreaker(BreakerPolicy(max_failures=2, window_s=60, cooldown_s=10))
    >>> b.record_failure(0), b.record_failure(5 * 10**9)
    (<BreakerState.CLOSED: 'closed'>, <BreakerState.OPEN: 'open'>)
    >>> b.state_at(14 * 10**9), b.state_at(15 * 10**9)
    (<BreakerState.OPEN: 'open'>, <BreakerState.HALF_OPEN: 'half_open'>)
    >>> b.record_success(15 * 10**9)
    <BreakerState.CLOSED: 'closed'>
    """

    __slots__ = ("_policy", "_failures", "_state", "_opened_ns", "_opens")

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self._policy = policy or BreakerPolicy()
        # Bounded: only the last max_failures timestamps can ever matter.
        self._failures: deque[int] = deque(maxlen=self._policy.max_failures)
        self._state = BreakerState.CLOSED
        self._opened_ns = 0
        self._opens = 0

    @property
    def policy(self) -> BreakerPolicy:
        return self._policy

    @property
    def opens(self) -> int:
        """How many times the breaker has opened."""
        return self._opens

    def _to(self, new: BreakerState) -> None:
        if new is not self._state:
            if new not in BREAKER_TRANSITIONS[self._state]:
                raise ValueError(f"illegal breaker transition {self._state} -> {new}")
            self._state = new

    def state_at(self, now_ns: int) -> BreakerState:
        """The state at ``now_ns``; an OPEN breaker whose cool-down elapsed is HALF_OPEN."""
        if self._state is BreakerState.OPEN and now_ns - self._opened_ns >= self._policy.cooldown_s * _NS:
            self._to(BreakerState.HALF_OPEN)
        return self._state

    def cooldown_remaining_s(self, now_ns: int) -> float:
        """Seconds until an OPEN breaker lets a probe through (0 unless OPEN)."""
        if self.state_at(now_ns) is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._policy.cooldown_s - (now_ns - self._opened_ns) / _NS)

    def allow_attempt(self, now_ns: int) -> bool:
        """May the driver try to connect now? (CLOSED, or HALF_OPEN for the probe.)"""
        return self.state_at(now_ns) is not BreakerState.OPEN

    def record_failure(self, now_ns: int) -> BreakerState:
        """A disconnect or a failed connection attempt happened at ``now_ns``."""
        state = self.state_at(now_ns)
        if state is BreakerState.HALF_OPEN:
            return self._open(now_ns)  # the probe failed
        if state is BreakerState.OPEN:
            return state
        self._failures.append(now_ns)
        window_ns = self._policy.window_s * _NS
        if len(self._failures) >= self._policy.max_failures and now_ns - self._failures[0] <= window_ns:
            return self._open(now_ns)
        return self._state

    def record_success(self, now_ns: int) -> BreakerState:
        """A connection proved healthy (it delivered data). Closes a HALF_OPEN breaker."""
        if self.state_at(now_ns) is BreakerState.HALF_OPEN:
            self._failures.clear()
            self._to(BreakerState.CLOSED)
        return self._state

    def trip(self, now_ns: int) -> BreakerState:
        """Open now whatever the count (e.g. reconnect attempts exhausted)."""
        if self.state_at(now_ns) is BreakerState.OPEN:
            return self._state
        return self._open(now_ns)

    def _open(self, now_ns: int) -> BreakerState:
        self._to(BreakerState.OPEN)
        self._opened_ns = now_ns
        self._opens += 1
        self._failures.clear()
        return self._state

    def __repr__(self) -> str:
        return f"CircuitBreaker({self._state}, failures={len(self._failures)}, opens={self._opens})"


# --------------------------------------------------------------------------- keepalive
class KeepaliveDecision(enum.Enum):
    """What :meth:`Keepalive.check` says is due."""

    NOTHING = "nothing"
    SEND_PING = "send_ping"
    PING_TIMEOUT = "ping_timeout"
    IDLE_TIMEOUT = "idle_timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepalivePolicy:
    """Per-venue keepalive timing (``None`` disables that rule).

    Attributes:
        ping_interval_s: send a ping when *nothing* has arrived for this long (OKX's rule:
            reset a timer of N < 30 s on every message, ping when it fires; §5.5).
        pong_timeout_s: give up when no frame answers the ping within this long.
        idle_timeout_s: give up when no *data* arrived for this long (pings, pongs and
            venue heartbeats do not count: a server can answer pings on a dead feed).
    """

    ping_interval_s: float | None = 15.0
    pong_timeout_s: float | None = 10.0
    idle_timeout_s: float | None = 60.0

    @property
    def enabled(self) -> bool:
        return self.ping_interval_s is not None or self.idle_timeout_s is not None


class Keepalive:
    """Keepalive bookkeeping of one connection. Pure: every method takes ``now_ns``.

    >>> k = Keepalive(KeepalivePolicy(ping_interval_s=10, pong_timeout_s=5, idle_timeout_s=60), now_ns=0)
    >>> k.check(9 * 10**9), k.check(10 * 10**9)
    (<KeepaliveDecision.NOTHING: 'nothing'>, <KeepaliveDecision.SEND_PING: 'send_ping'>)
    >>> k.on_ping_sent(10 * 10**9); k.check(15 * 10**9)
    <KeepaliveDecision.PING_TIMEOUT: 'ping_timeout'>
    """

    __slots__ = ("_policy", "_last_frame_ns", "_last_data_ns", "_ping_sent_ns")

    def __init__(self, policy: KeepalivePolicy, *, now_ns: int) -> None:
        self._policy = policy
        self._last_frame_ns = now_ns
        self._last_data_ns = now_ns
        self._ping_sent_ns: int | None = None

    @property
    def last_data_ns(self) -> int:
        return self._last_data_ns

    @property
    def awaiting_pong(self) -> bool:
        return self._ping_sent_ns is not None

    def on_frame(self, now_ns: int) -> None:
        """Any frame arrived (data, heartbeat or pong): the peer is alive."""
        self._last_frame_ns = now_ns
        self._ping_sent_ns = None

    def on_data(self, now_ns: int) -> None:
        """A data frame arrived (it is also a frame)."""
        self.on_frame(now_ns)
        self._last_data_ns = now_ns

    def on_ping_sent(self, now_ns: int) -> None:
        self._ping_sent_ns = now_ns

    def check(self, now_ns: int) -> KeepaliveDecision:
        """What is due at ``now_ns``. Timeouts win over pings."""
        p = self._policy
        if p.idle_timeout_s is not None and now_ns - self._last_data_ns >= p.idle_timeout_s * _NS:
            return KeepaliveDecision.IDLE_TIMEOUT
        if self._ping_sent_ns is not None:
            if p.pong_timeout_s is not None and now_ns - self._ping_sent_ns >= p.pong_timeout_s * _NS:
                return KeepaliveDecision.PING_TIMEOUT
            return KeepaliveDecision.NOTHING
        if p.ping_interval_s is not None and now_ns - self._last_frame_ns >= p.ping_interval_s * _NS:
            return KeepaliveDecision.SEND_PING
        return KeepaliveDecision.NOTHING

    def next_check_ns(self, now_ns: int) -> int | None:
        """The earliest time :meth:`check` can answer something other than NOTHING
        (``None``: never, nothing is configured)."""
        p = self._policy
        due: list[int] = []
        if p.idle_timeout_s is not None:
            due.append(self._last_data_ns + int(p.idle_timeout_s * _NS))
        if self._ping_sent_ns is not None:
            if p.pong_timeout_s is not None:
                due.append(self._ping_sent_ns + int(p.pong_timeout_s * _NS))
        elif p.ping_interval_s is not None:
            due.append(self._last_frame_ns + int(p.ping_interval_s * _NS))
        if not due:
            return None
        return max(now_ns, min(due))
