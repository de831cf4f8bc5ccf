"""Chaos runs: the real ingest (:class:`~bookkeeper.io.feed.Feed`, real sockets, real ccxt)
against the local simulator with a seeded fault plan, checking every synced book against the
simulator's ground truth at the same point of the stream.

Theory of operation
-------------------
One :class:`~bookkeeper.testing.sim.SimExchange` serves the venues; one ``Feed`` per venue
connects to it exactly as it would to the real exchange (URLs overridden). A seeded
:class:`~bookkeeper.testing.sim.FaultPlan` fires faults during the first ~70 % of the run;
the rest is quiet so that every book can prove it converged. Every time a synced book changes,
the :class:`ConsistencyChecker` compares the *whole* local book with the engine's truth at the
book's last sequence id (for Kraken, which has no ids, at the engine id encoded in the frame's
timestamp; Kraken books hold only the subscribed depth, so the truth is cut to it). A check
never trusts the client: the truth comes from the engine that generated the stream.

Where a venue restarts its ids (Bybit ``u = 1``, fault ``service_restart``) a book's id alone
does not name a point of the stream: the dialect maps it back to the engine seq
(``truth_seq``: from the exchange time of the frame that brought the book there, or from the
book's cross sequence, :attr:`~bookkeeper.session.BookSession.last_cross_seq`), and the
checker compares at that engine seq. Dialects without one use the id as is.

Alongside, at every update of a SYNCED book the checker asserts its position in the stream
(that engine seq) never goes backwards (per symbol, within one synced period and across
periods; Kraken has no ids and is skipped): a rewind is a failure (``seq_rewinds``) even when
the rewound book happens to equal the truth at its id. Restarted ids are no rewind: the
engine seq they map to keeps increasing. A feed whose driver task died is a failure too
(``driver_failures``).

At the end the engine is paused and the run waits until every book is synced and equal to
the current truth (``final_consistent``). With ``outage=True`` the simulator refuses every
connection for a stretch in the middle, so the circuit breaker must open and the reconnect
attempts must stay bounded and spaced by the backoff.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bookkeeper.actions import StateChanged, SyncState
from bookkeeper.apps.account_chaos import AccountChaosConfig, AccountRun, account_failed, account_report
from bookkeeper.apps.triage import max_per_minute, percentile
from bookkeeper.capabilities import ChecksumKind, ExchangeCapabilities, SequenceModel, SpliceRule
from bookkeeper.errors import InvalidState
from bookkeeper.io.feed import Feed
from bookkeeper.io.metrics import FeedMetrics
from bookkeeper.io.records import RecordWriter
from bookkeeper.io.stream import BookUpdate, DriverConfig
from bookkeeper.io.ws import WebsocketsTransport
from bookkeeper.policy import BackoffPolicy, BreakerPolicy, KeepalivePolicy
from bookkeeper.testing.sim import (
    DEMO_KINDS,
    PRIVATE_KINDS,
    PUBLIC_KINDS,
    VENUES,
    FaultKind,
    SimConfig,
    SimExchange,
)
from bookkeeper.sim.exchange import ACCOUNT_VENUES as SIM_ACCOUNT_VENUES
from bookkeeper.testing.sim.engine import KRAKEN_EPOCH

__all__ = [
    "ALL_FAULTS",
    "DEMO_FAULTS",
    "SUPPORTED_VENUES",
    "ChaosConfig",
    "ConsistencyChecker",
    "run_chaos",
    "run_failed",
]

#: every venue the simulator speaks (its dialect registry)
SUPPORTED_VENUES: tuple[str, ...] = tuple(VENUES)
#: the public fault kinds (private-stream kinds, ``FaultInfo.private``, need an account run)
ALL_FAULTS: tuple[str, ...] = tuple(k.value for k in PUBLIC_KINDS)
#: the private-stream fault kinds (an account run adds them to the mix)
PRIVATE_FAULTS: tuple[str, ...] = tuple(k.value for k in PRIVATE_KINDS)
#: venues whose account the simulator runs (``chaos --account``): its registry
ACCOUNT_SIM_VENUES: tuple[str, ...] = SIM_ACCOUNT_VENUES
#: The visible default mix of ``bookkeeper demo`` (the registry's ``demo`` entries).
DEMO_FAULTS: tuple[str, ...] = tuple(k.value for k in DEMO_KINDS)
#: the depth subscribed on venues that truncate their book to the subscribed depth (the
#: simulator's truth is compared at the same depth)
_TRUNCATED_DEPTH = 10
#: the simulator encodes its seq in the frame timestamp of venues without ids
#: (``KRAKEN_EPOCH + seq`` microseconds; see ``bookkeeper.sim.engine``)
_SIM_TS_EPOCH_NS = int(KRAKEN_EPOCH.timestamp()) * 1_000_000_000


def _capabilities(venue: str) -> ExchangeCapabilities:
    # adapters are looked up, never imported by name
    from bookkeeper.adapters import get_adapter

    return get_adapter(venue).capabilities


def _depth(venue: str) -> int | None:
    """The book depth to subscribe (and compare) on ``venue``."""
    return _TRUNCATED_DEPTH if _capabilities(venue).truncate_to_depth else None


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50) or 0.0, 1), "p99": round(percentile(values, 99) or 0.0, 1),
            "max": round(max(values), 1) if values else 0.0}


@dataclass(slots=True, kw_only=True)
class ChaosConfig:
    """One chaos or demo run.

    Attributes:
        venues: simulated venues (``binance``, ``okx``, ``kraken``).
        seed: seeds the market engine, the fault plan and the client's jitter.
        duration_s: run length; ``None`` runs until cancelled (the demo without --duration).
        faults: fault kinds to draw from (``FaultKind`` values).
        outage: refuse every connection for the middle stretch of the run.
        fault_rate_per_s: mean faults per second over all venues.
        backoff: the client's reconnect backoff (1-2 s base, 30-60 s cap in production).
        records_path: also append disconnect records to this JSONL file.
        metrics: the metrics every feed of the run updates (one registry, the ``exchange``
            label tells the venues apart); a fresh one when ``None``. Serve it
            (:meth:`FeedMetrics.serve`) to scrape the run; its counters match the report.
        venues_as_list: the report names its venues as a list (``"venues"``) even when there
            is one (``bookkeeper demo --venues``); else a single venue is ``"venue"``.
    """

    venues: tuple[str, ...] = SUPPORTED_VENUES
    seed: int = 0
    duration_s: float | None = 30.0
    faults: tuple[str, ...] = ALL_FAULTS
    outage: bool = False
    fault_rate_per_s: float = 0.3
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(base_s=1.0, cap_s=30.0, max_attempts=6,
                                                                          first_delay_s=0.5))
    records_path: str | None = None
    metrics: FeedMetrics | None = None
    #: name the venues as a list (``"venues"``) even when there is one (``bookkeeper demo``
    #: keeps its report keys whatever subset it runs); else one venue is ``"venue"``
    venues_as_list: bool = False
    check_interval_s: float = 0.02
    settle_timeout_s: float = 20.0
    #: also run the venue's account side (issue [account]): the simulator's ground-truth
    #: account, the account ingest, private faults (``bookkeeper.apps.account_chaos``)
    account: bool = False
    #: with ``account``: SIGKILL the account ingest this many times and restart it from its store
    kill_restart: int = 0
    #: with ``account``: keep the store, records, plans and logs here (default: a temporary folder)
    account_workdir: str | None = None


class ConsistencyChecker:
    """Compares synced local books with the engine's truth at the same stream point, and
    checks that a synced book's sequence id never goes backwards."""

    def __init__(self, sim: SimExchange, *, min_interval_s: float = 0.05) -> None:
        self._sim = sim
        self._min_interval_s = min_interval_s
        #: venue -> its dialect's mapping of restarted ids to the engine seq (``truth_seq``), for
        #: the dialects that have one (a stand-in simulator in a unit test may have no servers)
        self._maps: dict[str, Callable[..., int | None]] = {
            v: m for v, server in getattr(sim, "servers", {}).items()
            if (m := getattr(server, "truth_seq", None)) is not None}
        self._last: dict[str, float] = {}
        #: per ``venue:symbol``: the highest sequence id a SYNCED book has shown (kept across
        #: synced periods: a resync may move forward, never back)
        self._high_seq: dict[str, int] = {}
        self.checks = 0
        self.mismatches = 0
        self.skipped = 0
        self.seq_rewinds = 0
        self.mismatch_samples: list[str] = []
        self.rewind_samples: list[str] = []

    def check_seq(self, venue: str, symbol: str, seq: int | None) -> bool:
        """Note the sequence id of a SYNCED book; a rewind counts in :attr:`seq_rewinds`.

        Args:
            venue, symbol: the book.
            seq: its last applied id (``None`` on venues without ids: nothing to check).

        Returns:
            False when ``seq`` is below an id this book already showed while synced.
        """
        if seq is None:
            return True
        key = f"{venue}:{symbol}"
        high = self._high_seq.get(key)
        if high is not None and seq < high:
            self.seq_rewinds += 1
            if len(self.rewind_samples) < 10:
                self.rewind_samples.append(f"{key}: synced at seq {seq} after having been synced at {high}")
            return False
        self._high_seq[key] = seq
        return True

    def stream_seq(self, feed: Feed, venue: str, symbol: str, seq: int | None, ts_exchange_ns: int = 0) -> int | None:
        """The engine seq of a book that shows id ``seq``: the dialect's mapping of restarted
        ids (``truth_seq``, fed the book's cross sequence where its session keeps one), else
        ``seq`` itself.

        Args:
            feed, venue, symbol: the book.
            seq: its last applied id (``None``: none).
            ts_exchange_ns: the exchange time of the frame that brought it there (0: unknown).
        """
        if seq is None:
            return None
        mapping = self._maps.get(venue)
        if mapping is None:
            return seq
        session = feed.driver.sessions.get(symbol)
        cross = session.last_cross_seq if session is not None else None
        return mapping(symbol, seq, ts_exchange_ns=ts_exchange_ns, cross_seq=cross)

    def truth_seq(self, venue: str, update: BookUpdate, feed: Feed | None = None) -> int | None:
        if update.seq is not None:
            if feed is None:
                return update.seq
            return self.stream_seq(feed, venue, update.symbol, update.seq, update.ts_exchange_ns)
        if update.ts_exchange_ns and _capabilities(venue).sequence_model is SequenceModel.NONE:
            return (update.ts_exchange_ns - _SIM_TS_EPOCH_NS) // 1_000
        return None

    def check(self, feed: Feed, venue: str, update: BookUpdate, *, force: bool = False) -> bool | None:
        """Compare now; returns None when no comparison was possible. Every call on a SYNCED
        book also checks that its place in the stream did not go backwards (:meth:`check_seq`)."""
        if feed.state(update.symbol) is not SyncState.SYNCED:
            return None
        seq = self.truth_seq(venue, update, feed)
        self.check_seq(venue, update.symbol, seq if update.seq is not None else None)
        now = time.monotonic()
        key = f"{venue}:{update.symbol}"
        if not force and now - self._last.get(key, 0.0) < self._min_interval_s:
            return None
        engine = self._sim.engine
        if seq is None or seq < engine.oldest_seq(update.symbol) or seq > engine.seq(update.symbol):
            self.skipped += 1
            return None
        self._last[key] = now
        depth = _depth(venue)
        bids, asks = engine.book_at(update.symbol, seq, depth=depth)
        book = feed.book(update.symbol)
        self.checks += 1
        if book.equals(bids, asks):
            return True
        self.mismatches += 1
        if len(self.mismatch_samples) < 10:
            lb, la = book.top(3)
            self.mismatch_samples.append(
                f"{venue} {update.symbol} at seq {seq}: local top {lb}/{la} vs truth {bids[:3]}/{asks[:3]} "
                f"(local {book.bid_count}+{book.ask_count} levels, truth {len(bids)}+{len(asks)})")
        return False


class _AttemptLog:
    """Timestamps of every connection attempt (to prove the backoff spaces them)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def factory(self) -> Callable[[], WebsocketsTransport]:
        log = self

        class _Counting(WebsocketsTransport):
            async def connect(self, url: str) -> None:
                log.times.append(time.monotonic())
                await super().connect(url)

        return _Counting

    def max_per_minute(self) -> int:
        return max_per_minute(self.times)


@dataclass(slots=True)
class _Tracker:
    """Sync-state history per book: how long each recovery took."""

    left_at: dict[str, tuple[float, str]] = field(default_factory=dict)
    durations_ms: list[float] = field(default_factory=list)
    #: per recovery: time waiting for a connection (backoff, Retry-After, outage) and the
    #: time from the connection being up to the book being consistent
    waiting_ms: list[float] = field(default_factory=list)
    after_connect_ms: list[float] = field(default_factory=list)
    feeds: dict[str, Any] = field(default_factory=dict)
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    changes: int = 0

    def on_state(self, venue: str, change: StateChanged) -> None:
        key = f"{venue}:{change.symbol}"
        self.changes += 1
        now = time.monotonic()
        if change.old is SyncState.SYNCED and change.new is not SyncState.SYNCED:
            self.left_at[key] = (now, change.reason)
        elif change.new is SyncState.SYNCED and key in self.left_at:
            t0, why = self.left_at.pop(key)
            ms = (now - t0) * 1000
            self.durations_ms.append(ms)
            feed = self.feeds.get(venue)
            since = feed.driver.connected_since_ns if feed is not None else None
            up = since / 1e9 if since is not None else t0  # SystemClock.monotonic_ns == time.monotonic
            up = max(up, t0)
            self.waiting_ms.append((up - t0) * 1000)
            self.after_connect_ms.append((now - up) * 1000)
            self.slowest.append((round(ms, 1), key, why))
            self.slowest.sort(reverse=True)
            del self.slowest[3:]


#: faults that act when the client next connects (or fetches): each is followed by an abort
#: so that the client actually walks into it
_ON_CONNECT = frozenset({"http_429", "http_418", "refuse", "conn_limit", "stale_snapshot"})
def _applicable(kind: FaultKind, caps: ExchangeCapabilities) -> bool:
    if kind is FaultKind.STALE_SNAPSHOT:  # only a venue that syncs from REST snapshots takes them
        return caps.rest_snapshot and not caps.ws_snapshot_on_subscribe
    if kind is FaultKind.CORRUPT_CHECKSUM:
        return caps.checksum is not ChecksumKind.NONE
    if kind is FaultKind.RESENT_SNAPSHOT:
        # a venue whose ids are only promised to increase and which pushes its own snapshots
        # may re-send its book mid-stream (Bybit, §6.1)
        return caps.ws_snapshot_on_subscribe and caps.sequence_model is SequenceModel.MONOTONIC_ONLY
    if kind is FaultKind.SERVICE_RESTART:
        # restarted ids (Bybit u = 1, §6.2), where the session can tell a restart: a monotonic
        # venue's own WS snapshot newer in exchange time, or a delta newer by cross sequence
        # (CROSS_NEXT, orderbook.full). The checker maps the ids back (``truth_seq``).
        return ((caps.ws_snapshot_on_subscribe and caps.sequence_model is SequenceModel.MONOTONIC_ONLY)
                or caps.splice_rule is SpliceRule.CROSS_NEXT)
    if kind in (FaultKind.DROP, FaultKind.REORDER):
        # A lost frame (or one arriving after a newer one, then ignored as stale) can only be
        # repaired where the client can see it: ids that chain, a checksum, or a counter of the
        # connection's messages (Coinbase ``sequence_num``, §8.2). Ids that may skip
        # (MONOTONIC_ONLY: Bybit orderbook.N) with none of these leave no trace of it, so no
        # client could stay consistent (exchange-protocols.md §6.2).
        return (caps.sequence_model in (SequenceModel.CONTIGUOUS_RANGE, SequenceModel.PREV_POINTER)
                or caps.checksum is not ChecksumKind.NONE or caps.connection_sequence)
    return True


#: where a kind can act at all (others are counted as 0: e.g. Binance has no checksum)
APPLICABLE: dict[str, frozenset[str]] = {
    k.value: frozenset(v for v in SUPPORTED_VENUES if _applicable(k, _capabilities(v)))
    for k in (FaultKind.STALE_SNAPSHOT, FaultKind.CORRUPT_CHECKSUM, FaultKind.DROP, FaultKind.REORDER,
              FaultKind.SERVICE_RESTART, FaultKind.RESENT_SNAPSHOT)
}


def build_schedule(seed: int, kinds: Sequence[str], venues: Sequence[str], *, window_s: float,
                   rate_per_s: float, start_s: float = 1.0) -> list[tuple[float, str, str]]:
    """A seeded fault schedule ``[(at_s, kind, venue)]`` that cycles through every kind (in a
    seeded order) before repeating one, at about ``rate_per_s`` (at least one of each kind when
    the window allows one per 0.8 s).

    >>> build_schedule(1, ["abort", "drop"], ["binance"], window_s=4.0, rate_per_s=0.5)[:2]
    [(1.569, 'drop', 'binance'), (3.802, 'abort', 'binance')]
    """
    import random

    rng = random.Random(seed)
    pairs = [(k, v) for k in kinds for v in venues if v in APPLICABLE.get(k, venues)]
    if not pairs:
        return []
    count = max(int(rate_per_s * window_s), min(len(pairs), int(window_s / 0.8)))
    order: list[tuple[str, str]] = []
    while len(order) < count:
        batch = pairs[:]
        rng.shuffle(batch)
        order.extend(batch)
    order = order[:count]
    step = window_s / max(count, 1)
    return [(round(start_s + i * step + rng.uniform(0, step * 0.5), 3), k, v) for i, (k, v) in enumerate(order)]


#: how long a private connection fault waits for a private connection to act on (the
#: account run's blackout refuses them for 8 s)
_PRIVATE_PATIENCE_S = 12.0


async def _inject_when_connected(sim: SimExchange, kind: str, venue: str, *, patience_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while not await sim.inject(kind, venue) and loop.time() < deadline:
        await asyncio.sleep(0.25)


async def _inject_schedule(sim: SimExchange, schedule: Sequence[tuple[float, str, str]]) -> None:
    late: set[asyncio.Task[None]] = set()
    try:
        await _run_schedule(sim, schedule, late)
        if late:
            await asyncio.gather(*late)
    finally:
        for task in late:
            task.cancel()


async def _run_schedule(sim: SimExchange, schedule: Sequence[tuple[float, str, str]],
                        late: set[asyncio.Task[None]]) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    aborts = 0
    for at_s, kind, venue in schedule:
        delay = t0 + at_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if kind == "conn_limit":
            await sim.inject("conn_limit", venue, max=0)  # refuse every new connection briefly
            await sim.inject("abort", venue)
            await asyncio.sleep(1.5)
            await sim.inject("conn_limit", venue, max=None)
        elif kind in _ON_CONNECT:
            await sim.inject(kind, venue, retry_after_s=1)
            await asyncio.sleep(0.2)
            await sim.inject("abort", venue)
        elif kind == "abort" and aborts % 2 == 0 and not sim.paused:
            # Every other abort hits a quiet market (the engine pauses for a second, as real
            # books do between bursts): nothing is missed, so the client must resume without
            # any snapshot.
            aborts += 1
            sim.pause()
            try:
                if await sim.inject(kind, venue):
                    # resume the market once the client is back (it cannot have missed anything)
                    for _ in range(100):
                        await asyncio.sleep(0.05)
                        if sim.connections(venue) >= 1:
                            break
                    await asyncio.sleep(0.1)  # its subscribe is in flight
            finally:
                sim.resume()
        elif kind in ("private_abort", "auth_expiry"):
            # a private blackout (refused upgrades) can outlast a few retries: keep trying
            # beside the schedule until the private side is back, without holding it up
            late.add(asyncio.create_task(_inject_when_connected(sim, kind, venue, patience_s=_PRIVATE_PATIENCE_S)))
        elif kind in ("abort", "stall", "close_1000", "close_1001"):
            aborts += kind == "abort"
            # acts on live connections: if the client is between connections, try again shortly
            for _ in range(6):
                if await sim.inject(kind, venue):
                    break
                await asyncio.sleep(0.5)
        else:
            await sim.inject(kind, venue)


def _driver_config(cfg: ChaosConfig, venue: str) -> DriverConfig:
    # Demo timing: the simulator pushes every 50 ms, so a stall is visible within seconds.
    # Production defaults (15 s ping / 10 s pong / 30-60 s idle) come from keepalive_for().
    keepalive = KeepalivePolicy(ping_interval_s=2.0, pong_timeout_s=2.0, idle_timeout_s=3.0)
    # chaos kills connections on purpose every few seconds: only a real outage should trip it
    breaker = BreakerPolicy(max_failures=20, window_s=60.0, cooldown_s=5.0)
    backoff = cfg.backoff
    if cfg.outage:
        # Fewer attempts per episode so the breaker opens inside a short outage window.
        backoff = BackoffPolicy(base_s=backoff.base_s, cap_s=backoff.cap_s, max_attempts=3,
                                first_delay_s=backoff.first_delay_s, jitter=backoff.jitter)
        breaker = BreakerPolicy(max_failures=3, window_s=60.0, cooldown_s=4.0)
    return DriverConfig(backoff=backoff, breaker=breaker, keepalive=keepalive, startup_jitter_s=0.2,
                        resync_timeout_s=0.3,
                        depth=_depth(venue), bot_instance_id=f"chaos-{venue}")


ViewFn = Callable[[dict[str, Any]], None]


async def run_chaos(cfg: ChaosConfig, *, view: ViewFn | None = None, view_interval_s: float = 0.5,
                    stop: asyncio.Event | None = None) -> dict[str, Any]:
    """Run one chaos/demo session and return its report (the ``--json`` object).

    Args:
        cfg: what to run.
        view: called about every ``view_interval_s`` with a live status dict (terminal view).
        stop: set it to end a run without a duration (Ctrl-C in the demo).
    """
    for v in cfg.venues:
        if v not in SUPPORTED_VENUES:
            raise ValueError(f"the simulator speaks {', '.join(SUPPORTED_VENUES)}, not {v!r}")
    known = ALL_FAULTS + (PRIVATE_FAULTS if cfg.account else ())
    unknown = [f for f in cfg.faults if f not in known]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(known)}")
    if cfg.account and (len(cfg.venues) != 1 or cfg.venues[0] not in ACCOUNT_SIM_VENUES):
        raise ValueError(f"an account run takes one venue of {', '.join(ACCOUNT_SIM_VENUES)}, not {cfg.venues}")
    if cfg.kill_restart and not cfg.account:
        raise ValueError("kill_restart needs account=True")
    duration = cfg.duration_s
    horizon = duration if duration is not None else 24 * 3600.0
    window_s = max(horizon * 0.7 - 1.0, 0.5)
    schedule = build_schedule(cfg.seed, cfg.faults, cfg.venues, window_s=window_s,
                              rate_per_s=cfg.fault_rate_per_s, start_s=1.0)
    sim_cfg = SimConfig(push_interval_s=0.05, okx_checksum="corrupt_checksum" in cfg.faults,
                        binance_ping_interval_s=5.0)
    account_cfg: AccountChaosConfig | None = None
    if cfg.account:
        account_cfg = AccountChaosConfig(venue=cfg.venues[0], seed=cfg.seed, kill_restart=cfg.kill_restart,
                                         workdir=cfg.account_workdir)
        sim_cfg = replace(sim_cfg, account_fill_rate_per_s=3.0,
                          account_history_retention_s=account_cfg.history_window_s)
    records: list[dict[str, Any]] = []
    writer = RecordWriter(cfg.records_path, sink=records)
    tracker = _Tracker()
    attempts = _AttemptLog()
    started = time.monotonic()
    metrics = cfg.metrics if cfg.metrics is not None else FeedMetrics()
    accounts = cfg.venues if cfg.account else ()
    async with SimExchange(venues=cfg.venues, seed=cfg.seed, config=sim_cfg, accounts=accounts) as sim:
        account_run = AccountRun(sim, account_cfg, window_s=window_s) if account_cfg is not None else None
        account_result: dict[str, Any] = {}
        checker = ConsistencyChecker(sim, min_interval_s=cfg.check_interval_s)
        feeds: dict[str, Feed] = {}
        for i, venue in enumerate(cfg.venues):
            symbols = list(sim.servers[venue].specs)
            feed_ref: dict[str, Feed] = {}

            def on_update(u: BookUpdate, venue: str = venue, ref: dict[str, Feed] = feed_ref) -> None:
                checker.check(ref["feed"], venue, u)

            feed = Feed(venue, symbols, ws_url=sim.urls(venue)["ws_root"], rest_config=sim.ccxt_config(venue),
                        config=_driver_config(cfg, venue), records=writer, metrics=metrics, seed=cfg.seed * 31 + i,
                        on_update=on_update, on_state=lambda c, venue=venue: tracker.on_state(venue, c),
                        transport_factory=attempts.factory())
            feed_ref["feed"] = feed
            feeds[venue] = feed
            tracker.feeds[venue] = feed

        async def outage() -> None:
            assert duration is not None
            await asyncio.sleep(duration * 0.3)
            await sim.outage()
            await asyncio.sleep(duration * 0.3)
            await sim.end_outage()

        async def refresh_view() -> None:
            while view is not None:
                view(_status(cfg, sim, feeds, checker, records, started))
                await asyncio.sleep(view_interval_s)

        async def blackout() -> None:
            assert account_run is not None and duration is not None
            await asyncio.sleep(max(window_s * 0.35, 1.0))
            await account_run.blackout()

        tasks: list[asyncio.Task[Any]] = []
        try:
            for f in feeds.values():
                await f.start()
            if account_run is not None:
                await account_run.start()
            tasks.append(asyncio.create_task(refresh_view()))
            tasks.append(asyncio.create_task(_inject_schedule(sim, schedule)))
            if cfg.outage and duration is not None:
                tasks.append(asyncio.create_task(outage()))
            if account_run is not None and duration is not None:
                tasks.append(asyncio.create_task(blackout()))
            if duration is not None:
                if stop is None:
                    await asyncio.sleep(duration)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), duration)
                    except TimeoutError:
                        pass
            else:
                await (stop or asyncio.Event()).wait()
            # Quiesce: no more faults, no more market moves; every book must converge.
            for t in tasks[1:]:
                t.cancel()
            if cfg.outage:
                await sim.end_outage()
            if account_run is not None:
                sim.account(cfg.venues[0]).pause_trading()
                await account_run.stop_faults()
            await _settle(sim, feeds, checker, cfg.settle_timeout_s)
            final = _all_consistent(sim, feeds, checker)
            if account_run is not None:
                account_result = await account_run.settle(cfg.settle_timeout_s + 10.0)
            final_books = {f"{v}:{sym}": {"state": str(s.state), "last_seq": s.last_seq}
                           for v, f in feeds.items() for sym, s in f.driver.sessions.items()}
        finally:
            for t in tasks:
                t.cancel()
            driver_failures: dict[str, str] = {}
            for venue, f in feeds.items():
                try:
                    await f.close()
                except InvalidState as exc:  # the driver task died: a failure of the run, reported
                    driver_failures[venue] = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
            if account_run is not None:
                await account_run.close()
            # the breaker counts its openings, so one look at the end sees every one
            breaker_opened = any(f.driver.breaker.opens for f in feeds.values())
        report = _report(cfg, sim, feeds, checker, records, tracker, attempts, breaker_opened, final, started)
        report["books"] = final_books
        report["driver_failures"] = driver_failures
        if account_run is not None:
            report.update(account_report(account_run, account_result, sim.faults_injected))
            text = json.dumps(report, default=str)
            if cfg.records_path is not None:
                text += Path(cfg.records_path).read_text(encoding="utf-8", errors="replace")
            leaks = account_run.secrets_leaked(text)
            report["secrets_leaked"] = leaks["count"]
            report["secrets_leak_sites"] = leaks["where"]
            report["secrets_files_scanned"] = leaks["files_scanned"]
            if cfg.account_workdir is None:
                account_run.cleanup()
    return report


def run_failed(report: dict[str, Any]) -> bool:
    """Whether a chaos/demo report is a failure: a mismatch, a book not consistent at the
    end, a synced book whose sequence id went backwards, or a feed whose driver died."""
    return bool(report["mismatches"] or not report["final_consistent"] or report.get("seq_rewinds")
                or report.get("driver_failures") or account_failed(report))


async def _settle(sim: SimExchange, feeds: dict[str, Feed], checker: ConsistencyChecker, timeout_s: float) -> None:
    """Stop the market, let every feed catch up; returns when consistent or on timeout."""
    deadline = time.monotonic() + timeout_s
    sim.pause()
    while time.monotonic() < deadline:
        if _all_consistent(sim, feeds, checker, count=False):
            return
        if any(f.failure is not None for f in feeds.values()):
            return  # a dead feed never converges: no point waiting out the timeout
        sim.push(updates=1)  # keep deltas flowing: a book waiting for a bridge needs one
        await asyncio.sleep(0.25)


def _all_consistent(sim: SimExchange, feeds: dict[str, Feed], checker: ConsistencyChecker, *, count: bool = True) -> bool:
    ok = True
    for venue, feed in feeds.items():
        for sym in feed.symbols:
            if feed.state(sym) is not SyncState.SYNCED or feed.failure is not None:
                ok = False
                continue
            if count:
                checker.check_seq(venue, sym, checker.stream_seq(feed, venue, sym, feed.last_seq(sym)))
            depth = _depth(venue)
            bids, asks = sim.engine.book(sym, depth=depth)
            equal = feed.book(sym).equals(bids, asks)
            if count:
                checker.checks += 1
                if not equal:
                    checker.mismatches += 1
                    checker.mismatch_samples.append(f"final: {venue} {sym} differs from the truth")
            ok = ok and equal
    return ok


def _sessions(feeds: dict[str, Feed]) -> list[Any]:
    return [s for f in feeds.values() for s in f.driver.sessions.values()]


def _status(cfg: ChaosConfig, sim: SimExchange, feeds: dict[str, Feed], checker: ConsistencyChecker,
            records: list[dict[str, Any]], started: float) -> dict[str, Any]:
    books = []
    for venue, feed in feeds.items():
        for sym, s in feed.driver.sessions.items():
            bb = ba = None
            if s.is_synced:
                bb, ba = s.book.best_bid(), s.book.best_ask()
            books.append({"venue": venue, "symbol": sym, "state": str(s.state), "last_seq": s.last_seq,
                          "best_bid": bb, "best_ask": ba, "resumes": s.stats.resumes,
                          "ws_snapshots": s.stats.resubscribes, "rest_snapshots": s.stats.rest_snapshots,
                          "gaps": s.stats.gaps, "checksum_mismatches": s.stats.checksum_mismatches,
                          "breaker": str(feed.breaker_state)})
    return {"elapsed_s": time.monotonic() - started, "books": books, "checks": checker.checks,
            "mismatches": checker.mismatches, "faults_injected": {k: v for k, v in sim.faults_injected.items() if v},
            "disconnects": len(records), "last_records": records[-4:]}


def _report(cfg: ChaosConfig, sim: SimExchange, feeds: dict[str, Feed], checker: ConsistencyChecker,
            records: list[dict[str, Any]], tracker: _Tracker, attempts: _AttemptLog, breaker_opened: bool,
            final: bool, started: float) -> dict[str, Any]:
    sessions = _sessions(feeds)
    stats: Counter[str] = Counter()
    for s in sessions:
        stats.update(s.stats.as_dict())
    requested = set(cfg.faults)
    faults = {k: v for k, v in sim.faults_injected.items() if v or k in requested}
    # an abort that only serves to walk the client into a connect-time fault is not a fault kind
    # the user asked for; it still shows in "abort" (it really happened).
    if cfg.outage:
        faults.setdefault("refuse", sim.faults_injected.get("refuse", 0))
    causes: Counter[str] = Counter(r["close_cause"] for r in records)
    established = [r for r in records if r["close_cause"] != "local_shutdown"
                   and (r.get("uptime_seconds", 0) > 0 or r.get("last_message_ago_ms") is not None)]
    ttc = tracker.durations_ms
    out: dict[str, Any] = {
        **({"venues": list(cfg.venues)} if len(cfg.venues) > 1 or cfg.venues_as_list else {"venue": cfg.venues[0]}),
        "seed": cfg.seed,
        "duration_s": round(time.monotonic() - started, 3),
        "faults_injected": faults,
        "disconnects": len(established),
        "reconnects": sum(max(f.driver.connections - 1, 0) for f in feeds.values()),
        "recoveries": {
            "resume": stats["resumes"],
            "ws_snapshot": stats["resubscribes"],
            "rest_snapshot": stats["rest_snapshots"],
            "halt": stats["halts"],
        },
        "checks": checker.checks,
        "mismatches": checker.mismatches,
        # a SYNCED book whose sequence id went backwards (a failure, like a mismatch)
        "seq_rewinds": checker.seq_rewinds,
        "final_consistent": final,
        "time_to_consistent_ms": _summary(ttc),
        # time_to_consistent = waiting for a connection (backoff, Retry-After, outage) + work
        # after the connection is up; the second part is what the ingest itself costs
        "connection_wait_ms": _summary(tracker.waiting_ms),
        "consistent_after_connect_ms": _summary(tracker.after_connect_ms),
        "reconnect_attempts_max_per_min": attempts.max_per_minute(),
        "breaker_opened": breaker_opened,
        "disconnect_records": len(records),
        # extra detail (not part of the minimal contract)
        "connection_attempts": len(attempts.times),
        "connection_attempt_times_s": [round(t - started, 3) for t in attempts.times],
        "close_causes": dict(causes),
        "gaps": stats["gaps"],
        "checksum_mismatches": stats["checksum_mismatches"],
        "stale_snapshots": stats["stale_snapshots"],
        "recoveries_measured": len(ttc),
        "slowest_recoveries": [{"ms": ms, "book": key, "reason": why} for ms, key, why in tracker.slowest],
        "not_applicable": sorted(k for k in requested if not set(cfg.venues) & APPLICABLE.get(k, set(cfg.venues))),
        "backoff": {"base_s": cfg.backoff.base_s, "cap_s": cfg.backoff.cap_s, "jitter": cfg.backoff.jitter},
        "mismatch_samples": checker.mismatch_samples,
        "seq_rewind_samples": checker.rewind_samples,
        # venue -> what killed its feed's driver task ({}: none died)
        "driver_failures": {},
        "books": {f"{v}:{sym}": {"state": str(s.state), "last_seq": s.last_seq}
                  for v, f in feeds.items() for sym, s in f.driver.sessions.items()},
    }
    return out

