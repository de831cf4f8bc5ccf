"""Fleet coordination: singleflight leases, shared snapshots and shared budgets.

Theory of operation
-------------------
One process needs nothing: a :class:`Feed` without a coordinator gets a private
:class:`InProcessCoordinator` and behaves as it always did. Several feeds in one process share
one :class:`InProcessCoordinator`; many instances on many hosts share one Redis through a
:class:`RedisCoordinator` (architecture.md §5). Both implement the :class:`Coordinator` port:

- **Singleflight leases** (:meth:`Coordinator.acquire` / :meth:`Coordinator.release`): one
  holder per key at a time, with expiry (a crashed holder never blocks the fleet) and a fencing
  token (:class:`~bookkeeper.coordination.Lease`). Redis: a Lua script ``SET``s the lock only
  if it is free and ``INCR``s the key's fence; the release is a compare-and-delete script.
- **Shared snapshots** (:meth:`Coordinator.publish_snapshot` / :meth:`Coordinator.await_snapshot`):
  the holder of ``snapshot:<symbol>`` fetches the REST snapshot and publishes it (msgspec
  bytes, with a version that only grows); the others wait for a version newer than the one
  they saw when they asked and bridge their own buffered deltas onto it (the session's splice
  rule judges it like any snapshot). If the holder dies, its lease expires and a waiter whose
  wait timed out fetches on its own: at most one REST snapshot per symbol per incident,
  fleet-wide, and never a wait longer than ``FleetConfig.snapshot_wait_s``.
  An instance that asks *after* this incident's snapshot was published (it reconnected late:
  the connection leases space the fleet's reconnects out) is too late to bridge it with its
  own buffer, so before taking the lease it asks the journal for the deltas from the newest
  published snapshot's id on and rolls the snapshot forward
  (:func:`~bookkeeper.coordination.roll_forward`, origin ``journal``): only a range the
  journal proves whole is used, and each published version is tried once per link (a roll
  that came out too old for the session's buffer is not tried again: the REST path follows).
- **Shared budgets** (:meth:`Coordinator.take`): the venue's published limits per source IP
  (connection attempts, REST weight; declared by the adapter) as token buckets whose
  arithmetic is :class:`~bookkeeper.coordination.TokenBucket`'s (Redis: the same arithmetic
  in Lua on the server's clock, so every host sees one time).

Keys are namespaced ``bookkeeper:{venue}:lock:<key>``, ``bookkeeper:{venue}:fence:<key>``,
``bookkeeper:{venue}:snapshot:<symbol>`` (+ ``:v``) and ``bookkeeper:{venue}:budget:<ip>:<name>``.

**Degradation.** Every Redis call is bounded by ``op_timeout_s``. A Redis that is down or slow
(at start or mid-run) never blocks and never crashes the feed: the call is answered by an
in-process fallback coordinator, a warning is logged once per episode, and
:meth:`RedisCoordinator.status` says so (the feeds' metrics read it at scrape time:
``bookkeeper_coordinator_degraded``, ``bookkeeper_coordinator_degradations_total``). After
``retry_s`` the next call tries Redis again; the first success ends the episode. While degraded
the budgets are per process, not fleet-wide.

:class:`FleetLink` is what one driver uses: it turns "take a REST snapshot of X", "open a
connection" and "spend REST weight" into the calls above for its venue.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import msgspec

from bookkeeper.capabilities import ExchangeCapabilities, RateLimit
from bookkeeper.coordination import (
    DEFAULT_BURST_FRACTION,
    Lease,
    LockTable,
    TokenBucket,
    bucket_shape,
    journaled,
    roll_forward,
    snapshot_weight,
)
from bookkeeper.errors import IntegrityError, InvalidEvent, UsageError
from bookkeeper.events import BookDelta, BookSnapshot

from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep

__all__ = [
    "Coordinator",
    "CoordinatorStatus",
    "FleetConfig",
    "FleetLink",
    "InProcessCoordinator",
    "RedisCoordinator",
    "SharedSnapshot",
    "SnapshotOrigin",
    "connection_key",
    "fleet_key",
]

log = logging.getLogger("bookkeeper.io.coord")

_NS = 1_000_000_000


def fleet_key(venue: str, *parts: str) -> str:
    """The namespaced Redis key ``bookkeeper:{venue}:part:part...``.

    >>> fleet_key("binance", "lock", "snapshot:BTCUSDT")
    'bookkeeper:{binance}:lock:snapshot:BTCUSDT'
    """
    return ":".join(("bookkeeper", "{" + venue + "}", *parts))


def connection_key(venue: str, url: str, symbols: Sequence[str]) -> str:
    """A short stable name for "this venue's connection carrying these symbols" (the
    singleflight key of its reconnects, the same on every instance).

    >>> connection_key("v", "wss://x", ["B", "A"]) == connection_key("v", "wss://x", ["A", "B"])
    True
    """
    text = "|".join((venue, url, *sorted(symbols)))
    return hashlib.sha1(text.encode()).hexdigest()[:16]  # noqa: S324 - a name, not a secret


@dataclass(frozen=True, slots=True)
class SharedSnapshot:
    """A published snapshot: its version (grows per symbol) and its msgspec bytes."""

    version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CoordinatorStatus:
    """What a coordinator reports (read at scrape time).

    Attributes:
        backend: ``in_process`` or ``redis``.
        degraded: true while Redis is unusable and the in-process fallback answers.
        degradations: episodes of degradation so far.
        failures: Redis calls that failed or timed out so far.
    """

    backend: str
    degraded: bool = False
    degradations: int = 0
    failures: int = 0


@runtime_checkable
class Coordinator(Protocol):
    """The coordination port (see the module docstring). Implementations never raise on
    their store being unavailable: they degrade."""

    async def acquire(self, venue: str, key: str, *, ttl_s: float) -> Lease | None:
        """Take the singleflight lease of ``key`` for ``ttl_s``; ``None`` while another holds it."""
        ...

    async def release(self, venue: str, lease: Lease) -> bool:
        """Give the lease back; False when it had expired (or was taken over) already."""
        ...

    async def snapshot_version(self, venue: str, symbol: str) -> int:
        """The newest published snapshot version of ``symbol`` (0: none)."""
        ...

    async def publish_snapshot(self, venue: str, symbol: str, payload: bytes, *, ttl_s: float) -> int:
        """Publish ``payload`` as ``symbol``'s newest snapshot (kept ``ttl_s``); returns its version."""
        ...

    async def await_snapshot(self, venue: str, symbol: str, *, after_version: int,
                             timeout_s: float) -> SharedSnapshot | None:
        """The newest snapshot once its version is above ``after_version``; ``None`` after
        ``timeout_s`` without one (0: look once)."""
        ...

    async def take(self, venue: str, budget: str, tokens: float, *, limit: RateLimit,
                   burst_fraction: float = DEFAULT_BURST_FRACTION) -> float:
        """Take ``tokens`` from the shared bucket ``budget``: 0.0 when granted, else the seconds
        until they will be there (nothing taken)."""
        ...

    def status(self) -> CoordinatorStatus:
        """The backend and its health."""
        ...

    async def close(self) -> None:
        """Release connections (idempotent)."""
        ...


class InProcessCoordinator:
    """The :class:`Coordinator` of one process (the default; nothing to install).

    Args:
        clock: monotonic time of the leases and buckets (fakes in tests).

    Bounded state: one lock, fence, bucket and snapshot per key in use (keys are per venue
    and symbol or connection, a fixed set for a running fleet).
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._locks = LockTable()
        self._buckets: dict[str, TokenBucket] = {}
        self._snapshots: dict[str, SharedSnapshot] = {}
        self._published: dict[str, asyncio.Event] = {}

    async def acquire(self, venue: str, key: str, *, ttl_s: float) -> Lease | None:
        return self._locks.acquire(fleet_key(venue, "lock", key), owner=uuid.uuid4().hex, ttl_ns=max(1, int(ttl_s * _NS)),
                                   now_ns=self._clock.monotonic_ns())

    async def release(self, venue: str, lease: Lease) -> bool:
        return self._locks.release(lease, now_ns=self._clock.monotonic_ns())

    async def snapshot_version(self, venue: str, symbol: str) -> int:
        snap = self._snapshots.get(fleet_key(venue, "snapshot", symbol))
        return snap.version if snap is not None else 0

    async def publish_snapshot(self, venue: str, symbol: str, payload: bytes, *, ttl_s: float) -> int:
        key = fleet_key(venue, "snapshot", symbol)
        old = self._snapshots.get(key)
        snap = self._snapshots[key] = SharedSnapshot(version=(old.version if old else 0) + 1, payload=payload)
        event = self._published.pop(key, None)
        if event is not None:
            event.set()
        return snap.version

    async def await_snapshot(self, venue: str, symbol: str, *, after_version: int,
                             timeout_s: float) -> SharedSnapshot | None:
        key = fleet_key(venue, "snapshot", symbol)
        snap = self._snapshots.get(key)
        if snap is not None and snap.version > after_version:
            return snap
        if timeout_s <= 0:
            return None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    event = self._published.setdefault(key, asyncio.Event())
                    await event.wait()
                    snap = self._snapshots.get(key)
                    if snap is not None and snap.version > after_version:
                        return snap
        except TimeoutError:
            return None

    async def take(self, venue: str, budget: str, tokens: float, *, limit: RateLimit,
                   burst_fraction: float = DEFAULT_BURST_FRACTION) -> float:
        key = fleet_key(venue, "budget", budget)
        now = self._clock.monotonic_ns()
        bucket = self._buckets.get(key)
        capacity, rate = bucket_shape(limit, burst_fraction)
        if bucket is None or bucket.capacity != capacity or bucket.rate_per_s != rate:
            bucket = self._buckets[key] = TokenBucket(capacity=capacity, rate_per_s=rate, tokens=capacity,
                                                      updated_ns=now)
        return bucket.take(min(tokens, bucket.capacity), now_ns=now)

    def status(self) -> CoordinatorStatus:
        return CoordinatorStatus(backend="in_process")

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------------------ Redis
#: KEYS: lock, fence. ARGV: owner, ttl_ms. Returns the fence, or false while held.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. f, 'PX', ARGV[2])
return f
"""
#: KEYS: lock. ARGV: owner|fence. Deletes only the caller's own lease.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: KEYS: version, payload. ARGV: payload, ttl_ms. Returns the new version.
_PUBLISH = """
local v = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], v .. '|' .. ARGV[1], 'PX', ARGV[2])
return v
"""
#: TokenBucket.take in Lua, on the server's clock. KEYS: bucket. ARGV: capacity, rate_per_s,
#: tokens wanted. Returns the wait in seconds as a string ("0" = granted).
_TAKE = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local st = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'cap', 'rate')
local tokens = tonumber(st[1])
local ts = tonumber(st[2])
if tokens == nil or tonumber(st[3]) ~= cap or tonumber(st[4]) ~= rate then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= n then
  tokens = tokens - n
elseif rate > 0 then
  wait = (n - tokens) / rate
else
  wait = -1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts), 'cap', ARGV[1], 'rate', ARGV[2])
local ttl = 60000
if rate > 0 then ttl = math.ceil(cap / rate * 1000) + 60000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return tostring(wait)
"""


def _redis_failures() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, TimeoutError)


class RedisCoordinator:
    """The :class:`Coordinator` of a fleet sharing one Redis (redis-py ``redis.asyncio``).

    Args:
        url: ``redis://host:port/db`` (ignored when ``client`` is given).
        client: a ready ``redis.asyncio.Redis`` (not closed by :meth:`close`).
        op_timeout_s: the longest any one Redis call may take before the fallback answers.
        retry_s: while degraded, how long to use the fallback before trying Redis again.
        poll_s: how often a waiter for a shared snapshot looks again.
        clock: monotonic time (degradation episodes, the fallback's leases and buckets).

    Raises:
        UsageError: redis-py is not installed (``pip install 'bookkeeper[redis]'``).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, client: Any = None, op_timeout_s: float = 0.25,
                 retry_s: float = 5.0, poll_s: float = 0.02, clock: Clock = SYSTEM_CLOCK) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UsageError("RedisCoordinator needs redis-py: pip install 'bookkeeper[redis]'") from exc
        self._owns = client is None
        self._r = client if client is not None else aioredis.Redis.from_url(
            url, socket_timeout=op_timeout_s, socket_connect_timeout=op_timeout_s)
        self._timeout = op_timeout_s
        self._retry_ns = int(retry_s * _NS)
        self._poll_s = poll_s
        self._clock = clock
        self.fallback = InProcessCoordinator(clock=clock)
        self._failures = _redis_failures()
        self._degraded_until: int | None = None
        self._degradations = 0
        self._failed_calls = 0
        self._acquire = self._r.register_script(_ACQUIRE)
        self._release = self._r.register_script(_RELEASE)
        self._publish = self._r.register_script(_PUBLISH)
        self._take = self._r.register_script(_TAKE)

    @property
    def client(self) -> Any:
        """The redis-py client (tests use it to look at keys)."""
        return self._r

    # ------------------------------------------------------------------ degradation
    def _use_redis(self) -> bool:
        until = self._degraded_until
        return until is None or self._clock.monotonic_ns() >= until

    def _failed(self, what: str, exc: BaseException) -> None:
        self._failed_calls += 1
        if self._degraded_until is None:
            self._degradations += 1
            log.warning("redis coordinator unavailable (%s: %s: %s); degrading to in-process coordination",
                        what, type(exc).__name__, exc)
        self._degraded_until = self._clock.monotonic_ns() + self._retry_ns

    def _recovered(self) -> None:
        if self._degraded_until is not None:
            log.warning("redis coordinator reachable again; fleet coordination resumed")
            self._degraded_until = None

    async def _call(self, what: str, op: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """``(True, result)`` from Redis, or ``(False, None)`` when it is degraded/failing."""
        if not self._use_redis():
            return False, None
        try:
            async with asyncio.timeout(self._timeout):
                result = await op()
        except self._failures as exc:
            self._failed(what, exc)
            return False, None
        self._recovered()
        return True, result

    # ------------------------------------------------------------------ the port
    async def acquire(self, venue: str, key: str, *, ttl_s: float) -> Lease | None:
        owner = uuid.uuid4().hex
        ttl_ms = max(1, int(ttl_s * 1000))
        lock, fence = fleet_key(venue, "lock", key), fleet_key(venue, "fence", key)
        ok, fence_no = await self._call("acquire", lambda: self._acquire(keys=[lock, fence], args=[owner, ttl_ms]))
        if not ok:
            return await self.fallback.acquire(venue, key, ttl_s=ttl_s)
        if fence_no is None:
            return None
        return Lease(key=lock, owner=owner, fence=int(fence_no), expires_ns=self._clock.monotonic_ns() + ttl_ms * 1_000_000)

    async def release(self, venue: str, lease: Lease) -> bool:
        if self.fallback_holds(lease):  # granted while degraded
            return await self.fallback.release(venue, lease)
        ok, n = await self._call("release", lambda: self._release(keys=[lease.key], args=[f"{lease.owner}|{lease.fence}"]))
        return bool(ok and n)

    def fallback_holds(self, lease: Lease) -> bool:
        """Whether ``lease`` was granted by the in-process fallback (while degraded)."""
        held = self.fallback._locks.holder(lease.key, now_ns=self._clock.monotonic_ns())  # noqa: SLF001
        return held is not None and held.owner == lease.owner

    async def snapshot_version(self, venue: str, symbol: str) -> int:
        ok, v = await self._call("snapshot_version", lambda: self._r.get(fleet_key(venue, "snapshot", symbol, "v")))
        if not ok:
            return await self.fallback.snapshot_version(venue, symbol)
        return int(v) if v is not None else 0

    async def publish_snapshot(self, venue: str, symbol: str, payload: bytes, *, ttl_s: float) -> int:
        keys = [fleet_key(venue, "snapshot", symbol, "v"), fleet_key(venue, "snapshot", symbol)]
        ok, v = await self._call("publish_snapshot",
                                 lambda: self._publish(keys=keys, args=[payload, max(1, int(ttl_s * 1000))]))
        if not ok:
            return await self.fallback.publish_snapshot(venue, symbol, payload, ttl_s=ttl_s)
        return int(v)

    async def _latest(self, venue: str, symbol: str) -> tuple[bool, SharedSnapshot | None]:
        ok, raw = await self._call("await_snapshot", lambda: self._r.get(fleet_key(venue, "snapshot", symbol)))
        if not ok:
            return False, None
        if raw is None:
            return True, None
        version, _, payload = bytes(raw).partition(b"|")
        return True, SharedSnapshot(version=int(version), payload=payload)

    async def await_snapshot(self, venue: str, symbol: str, *, after_version: int,
                             timeout_s: float) -> SharedSnapshot | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        while True:
            ok, snap = await self._latest(venue, symbol)
            if not ok:
                left = deadline - loop.time()
                return await self.fallback.await_snapshot(venue, symbol, after_version=after_version,
                                                          timeout_s=max(left, 0.0))
            if snap is not None and snap.version > after_version:
                return snap
            left = deadline - loop.time()
            if left <= 0:
                return None
            await asyncio.sleep(min(self._poll_s, left))  # polling Redis, not synchronising a test

    async def take(self, venue: str, budget: str, tokens: float, *, limit: RateLimit,
                   burst_fraction: float = DEFAULT_BURST_FRACTION) -> float:
        capacity, rate = bucket_shape(limit, burst_fraction)
        n = min(tokens, capacity)
        key = fleet_key(venue, "budget", budget)
        ok, wait = await self._call("take", lambda: self._take(keys=[key], args=[repr(capacity), repr(rate), repr(n)]))
        if not ok:
            return await self.fallback.take(venue, budget, tokens, limit=limit, burst_fraction=burst_fraction)
        w = float(wait)
        return float("inf") if w < 0 else w

    def status(self) -> CoordinatorStatus:
        return CoordinatorStatus(backend="redis", degraded=self._degraded_until is not None,
                                 degradations=self._degradations, failures=self._failed_calls)

    async def ping(self) -> bool:
        """Whether Redis answers now (also ends a degradation episode when it does)."""
        self._degraded_until = None if self._degraded_until is None else 0
        ok, _ = await self._call("ping", self._r.ping)
        return ok

    async def close(self) -> None:
        if self._owns:
            try:
                await self._r.aclose()
            except self._failures:  # closing a dead connection: nothing left to release
                pass


# ------------------------------------------------------------------------------ one driver's link
class SnapshotOrigin:
    """Where a coordinated snapshot came from (the ``role`` label of
    ``bookkeeper_shared_snapshots_total``)."""

    FETCHED = "fetched"  # this instance held the lease, fetched it and published it
    SHARED = "shared"  # a peer's, published while this instance waited
    FALLBACK = "fallback"  # waited in vain (holder dead or slow): fetched on its own
    JOURNAL = "journal"  # a peer's published snapshot rolled forward with the journal's deltas


class _JournalSource(Protocol):
    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """How one driver takes part in a fleet.

    Attributes:
        source_ip: the budgets' scope: instances behind one public IP share a venue's
            per-IP limits (name it after the egress address or host group).
        budgets: enforce the venue's connection-attempt and REST-weight budgets.
        burst_fraction: the share of a limit available at once (see
            :mod:`bookkeeper.coordination`).
        lock_ttl_s: a snapshot holder's lease (longer than a REST snapshot with retries).
        snapshot_wait_s: how long a waiter waits for the holder's snapshot before fetching
            its own.
        snapshot_ttl_s: how long a published snapshot is kept.
        connect_lock_ttl_s: a reconnecting instance's lease on its connection key.
        connect_lock_wait_s: how long to wait for another instance's reconnect of the same
            connection key before connecting anyway (never blocks longer).
        lock_poll_s: how often a waiter for a connection lease looks again.
    """

    source_ip: str = "default"
    budgets: bool = True
    burst_fraction: float = DEFAULT_BURST_FRACTION
    lock_ttl_s: float = 10.0
    snapshot_wait_s: float = 5.0
    snapshot_ttl_s: float = 30.0
    connect_lock_ttl_s: float = 10.0
    connect_lock_wait_s: float = 2.0
    lock_poll_s: float = 0.05


_SNAPSHOT_DECODER = msgspec.msgpack.Decoder(BookSnapshot)
_ENCODER = msgspec.msgpack.Encoder()


@dataclass(slots=True)
class FleetStats:
    """What one driver's link did (read by the metrics at scrape time)."""

    snapshots: dict[str, int] = field(default_factory=dict)
    budget_waits: dict[str, int] = field(default_factory=dict)
    budget_wait_s: dict[str, float] = field(default_factory=dict)


class FleetLink:
    """One driver's use of a :class:`Coordinator` for its venue.

    Args:
        coordinator: the shared coordinator.
        caps: the venue's declaration (its name, budgets, REST weights, sequence model).
        config: see :class:`FleetConfig`.
        sleep: the injected sleep (budget waits, lease polling).
        journal: the fleet's delta journal (rolls a peer's published snapshot forward for an
            instance that asks after it was published); ``None``: no roll-forward.
    """

    def __init__(self, coordinator: Coordinator, *, caps: ExchangeCapabilities, config: FleetConfig | None = None,
                 sleep: Sleep = real_sleep, journal: _JournalSource | None = None) -> None:
        self.coordinator = coordinator
        self._journal = journal
        #: per symbol, the published version last rolled forward (each is tried once)
        self._rolled: dict[str, int] = {}
        self._caps = caps
        self._venue = caps.venue
        self.config = config or FleetConfig()
        self._sleep = sleep
        self.stats = FleetStats()
        #: the snapshot lease this instance holds per symbol, and which of its fetches owns it:
        #: a newer fetch of ours (the older one is being cancelled) takes the lease over
        #: instead of waiting for its own process to publish
        self._held: dict[str, Lease] = {}
        self._owner: dict[str, object] = {}

    @property
    def venue(self) -> str:
        return self._venue

    def shares_snapshots(self) -> bool:
        """Whether this venue's REST snapshots are shared: only snapshots with a sequence id can
        be bridged by another instance's own buffered deltas."""
        return self._caps.rest_snapshot and journaled(self._caps.sequence_model)

    # ------------------------------------------------------------------ budgets
    async def spend(self, name: str, tokens: float, limit: RateLimit | None) -> float:
        """Take ``tokens`` from the budget ``name`` (waiting while it is empty).

        Args:
            name: ``connect`` or ``rest_weight``.
            tokens: how many.
            limit: the venue's limit (``None``: no budget, returns at once).

        Returns:
            Seconds waited.
        """
        if limit is None or not self.config.budgets:
            return 0.0
        cfg = self.config
        waited = 0.0
        budget = f"{cfg.source_ip}:{name}"
        while True:
            wait = await self.coordinator.take(self._venue, budget, tokens, limit=limit,
                                               burst_fraction=cfg.burst_fraction)
            if wait <= 0:
                break
            wait = min(wait, limit.window_s)  # inf (never refills) cannot happen for a valid limit
            self.stats.budget_waits[name] = self.stats.budget_waits.get(name, 0) + 1
            self.stats.budget_wait_s[name] = self.stats.budget_wait_s.get(name, 0.0) + wait
            if waited == 0.0:
                log.info("%s: %s budget (%s) empty; waiting %.2fs", self._venue, name, cfg.source_ip, wait)
            waited += wait
            await self._sleep(wait)
        return waited

    async def spend_rest(self, depth: int | None) -> float:
        """One REST snapshot's weight from the shared REST budget (waits while empty)."""
        return await self.spend("rest_weight", snapshot_weight(self._caps, depth), self._caps.rest_weight_limit)

    # ------------------------------------------------------------------ reconnects
    async def connect_slot(self, key: str) -> Lease | None:
        """Before one connection attempt: the connection key's lease (waiting at most
        ``connect_lock_wait_s`` for another instance's attempt), then a connect token.

        Args:
            key: the connection key (:func:`connection_key`).

        Returns:
            The lease to give back with :meth:`done` after the attempt (``None`` when the
            wait ran out: the attempt goes ahead anyway, never blocked longer).
        """
        cfg = self.config
        lease = await self.coordinator.acquire(self._venue, f"connect:{key}", ttl_s=cfg.connect_lock_ttl_s)
        waited = 0.0
        while lease is None and waited < cfg.connect_lock_wait_s:
            await self._sleep(cfg.lock_poll_s)
            waited += cfg.lock_poll_s
            lease = await self.coordinator.acquire(self._venue, f"connect:{key}", ttl_s=cfg.connect_lock_ttl_s)
        await self.spend("connect", 1, self._caps.connect_limit)
        return lease

    async def done(self, lease: Lease | None) -> None:
        """Give back a lease from :meth:`connect_slot` (``None``: nothing to do)."""
        if lease is not None:
            await self.coordinator.release(self._venue, lease)

    # ------------------------------------------------------------------ snapshots
    async def snapshot(self, symbol: str, fetch: Callable[[], Awaitable[BookSnapshot]]) -> tuple[BookSnapshot, str]:
        """A REST snapshot of ``symbol``, fetched once for the fleet (see the module docstring).

        Args:
            symbol: the venue's spelling.
            fetch: takes the REST snapshot (with its retries and REST weight).

        Returns:
            The snapshot and its :class:`SnapshotOrigin`.

        Raises:
            Exception: whatever ``fetch`` raises (when this instance fetches).
        """
        co, venue, cfg = self.coordinator, self._venue, self.config
        seen = await co.snapshot_version(venue, symbol)
        rolled = await self._roll_forward(symbol, seen)
        if rolled is not None:
            return self._count(rolled, SnapshotOrigin.JOURNAL)
        key = f"snapshot:{symbol}"
        lease = self._held.get(symbol)
        if lease is None:
            lease = await co.acquire(venue, key, ttl_s=cfg.lock_ttl_s)
        origin = SnapshotOrigin.FETCHED
        if lease is None:
            shared = await co.await_snapshot(venue, symbol, after_version=seen, timeout_s=cfg.snapshot_wait_s)
            snap = self._decode(shared)
            if snap is not None:
                return self._count(snap, SnapshotOrigin.SHARED)
            log.warning("%s %s: no shared snapshot within %ss (holder dead or slow); fetching our own",
                        venue, symbol, cfg.snapshot_wait_s)
            origin = SnapshotOrigin.FALLBACK
            lease = await co.acquire(venue, key, ttl_s=cfg.lock_ttl_s)  # the dead holder's lease expired
        me = object()
        if lease is not None:
            self._held[symbol] = lease
            self._owner[symbol] = me
        try:
            if lease is not None and origin is SnapshotOrigin.FETCHED:
                # published between our look and our lease: use it (double-checked singleflight)
                snap = self._decode(await co.await_snapshot(venue, symbol, after_version=seen, timeout_s=0))
                if snap is not None:
                    return self._count(snap, SnapshotOrigin.SHARED)
            snap = await fetch()
            if lease is not None and snap.seq is not None:
                await co.publish_snapshot(venue, symbol, _ENCODER.encode(snap), ttl_s=cfg.snapshot_ttl_s)
            return self._count(snap, origin)
        finally:
            if lease is not None and self._owner.get(symbol) is me:
                del self._owner[symbol]
                del self._held[symbol]
                await co.release(venue, lease)

    async def _roll_forward(self, symbol: str, version: int) -> BookSnapshot | None:
        """The newest published snapshot (``version``) rolled forward to the journal's top,
        when the journal proves the range whole (see the module docstring)."""
        journal = self._journal
        if journal is None or version <= 0 or self._rolled.get(symbol) == version:
            return None
        self._rolled[symbol] = version
        snap = self._decode(await self.coordinator.await_snapshot(self._venue, symbol, after_version=version - 1,
                                                                  timeout_s=0))
        if snap is None or snap.seq is None:
            return None
        try:
            deltas = await journal.fetch(symbol, snap.seq + 1, None)
        except Exception:  # noqa: BLE001 - a journal failure only means "no roll-forward": the REST path follows
            log.warning("%s %s: journal failed while rolling a shared snapshot forward", self._venue, symbol,
                        exc_info=True)
            return None
        if not deltas:
            return None
        try:
            return roll_forward(snap, deltas)
        except (InvalidEvent, IntegrityError) as exc:
            log.warning("%s %s: shared snapshot could not be rolled forward (%s)", self._venue, symbol, exc)
            return None

    def _decode(self, shared: SharedSnapshot | None) -> BookSnapshot | None:
        if shared is None:
            return None
        try:
            return _SNAPSHOT_DECODER.decode(shared.payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # a foreign or corrupt entry
            log.warning("%s: unreadable shared snapshot (%s); fetching our own", self._venue, exc)
            return None

    def _count(self, snap: BookSnapshot, origin: str) -> tuple[BookSnapshot, str]:
        self.stats.snapshots[origin] = self.stats.snapshots.get(origin, 0) + 1
        return snap, origin
