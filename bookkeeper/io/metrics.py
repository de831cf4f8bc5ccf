"""Prometheus metrics of one feed (or of several feeds sharing it), on its own (non-global)
``CollectorRegistry``, optionally served over HTTP.

A per-feed registry keeps tests and several feeds in one process independent. Serve it with
:meth:`FeedMetrics.serve` (``prometheus_client.start_http_server`` on 127.0.0.1 by default),
or mount ``metrics.registry`` in your own exporter.

Metrics (names and labels are a public contract; every counter ends in ``_total``, units are
in the names, labels are low-cardinality: venue, channel, cause, rung, symbol of the feed):

============================================  =====================  ===================================
name                                          labels                 meaning
============================================  =====================  ===================================
``bookkeeper_disconnects_total``              exchange, channel,     connections that ended or failed to
                                              cause                  open, by close cause (``CloseReason``)
``bookkeeper_reconnect_attempts_total``       exchange               connection attempts after a drop
``bookkeeper_reconnect_successes_total``      exchange               reconnects that opened
``bookkeeper_reconnect_latency_seconds``      exchange               histogram: disconnect -> connection
                                                                     open again
``bookkeeper_recoveries_total``               exchange, rung         recovery plans started, by rung
                                                                     (``PlanKind``: resume ... halt)
``bookkeeper_snapshots_total``                exchange, kind         snapshots taken (``rest``, ``ws``,
                                                                     ``shared``: a fleet peer's REST one)
``bookkeeper_snapshots_avoided_total``        exchange, kind         recoveries without a snapshot
                                                                     (``resume``, ``replay``)
``bookkeeper_message_gaps_total``             exchange, symbol       sequence gaps detected
``bookkeeper_missed_messages_total``          exchange, symbol       sequence ids proven missed
``bookkeeper_time_to_consistent_seconds``     exchange               histogram: a book leaving SYNCED ->
                                                                     SYNCED again
``bookkeeper_book_state``                     exchange, symbol       0 unsynced, 1 awaiting_snapshot,
                                                                     2 synced, 3 recovering, 4 halted
``bookkeeper_last_message_age_seconds``       exchange, symbol       seconds since the book's last data
                                                                     message (computed at scrape time)
``bookkeeper_breaker_open``                   exchange               1 while the breaker is open
``bookkeeper_breaker_state``                  exchange, state        1 for the breaker's current state
                                                                     (closed, open, half_open)
``bookkeeper_driver_errors_total``            exchange, where        failures the driver contained
``bookkeeper_coordinator_degraded``           exchange, component    1 while the fleet coordinator
                                                                     (``coordinator``) or the delta
                                                                     journal (``journal``) is degraded
                                                                     to in-process behaviour
``bookkeeper_coordinator_degradations_total`` exchange, component    degradation episodes so far
``bookkeeper_shared_snapshots_total``         exchange, role         coordinated REST snapshots:
                                                                     ``fetched`` (and published),
                                                                     ``shared`` (a peer's), ``fallback``
``bookkeeper_budget_waits_total``             exchange, budget       waits for the shared ``connect`` /
                                                                     ``rest_weight`` budget
``bookkeeper_budget_wait_seconds_total``      exchange, budget       seconds spent waiting for it
``bookkeeper_journal_appends_total``          exchange, outcome      journal appends: ``written``,
                                                                     ``duplicate``, ``dropped``, ``failed``
``bookkeeper_journal_replays_total``          exchange, outcome      journal fetches: ``served``,
                                                                     ``refused``
============================================  =====================  ===================================

The counters the driver updates as things happen are plain ``prometheus_client`` metrics
(attributes of :class:`FeedMetrics`); what is already counted elsewhere (the sessions'
recovery rungs, the last message per symbol, the breaker's state) is read at scrape time from
the feeds registered with :meth:`FeedMetrics.watch`, so it cannot drift from its source.

>>> m = FeedMetrics()
>>> m.disconnects.labels(exchange="binance", cause="abnormal_closure").inc()
>>> m.value("bookkeeper_disconnects_total", exchange="binance", cause="abnormal_closure")
1.0
>>> m.value("bookkeeper_disconnects_total", exchange="binance", channel="public")
1.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bookkeeper.actions import PlanKind, SyncState
from bookkeeper.policy import BreakerState

__all__ = ["STATE_VALUES", "FeedMetrics", "LabelDefaults", "MetricsServer", "WatchedSession"]

#: The ``bookkeeper_book_state`` gauge's numeric encoding of :class:`SyncState`.
STATE_VALUES: dict[SyncState, int] = {
    SyncState.UNSYNCED: 0,
    SyncState.AWAITING_SNAPSHOT: 1,
    SyncState.SYNCED: 2,
    SyncState.RECOVERING: 3,
    SyncState.HALTED: 4,
}

#: Seconds; a reconnect is tens of ms on a healthy line, seconds under backoff, a minute or
#: more behind an open breaker or a Retry-After.
LATENCY_BUCKETS_S: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

#: ``bookkeeper_recoveries_total``'s rung label -> the :class:`~bookkeeper.session.SessionStats`
#: counter of that rung (the same counts the chaos/demo report shows under ``recoveries``)
_RUNG_STATS: dict[PlanKind, str] = {
    PlanKind.RESUME: "resumes",
    PlanKind.REPLAY_DELTAS: "replays",
    PlanKind.RESUBSCRIBE: "resubscribes",
    PlanKind.SNAPSHOT_REBUILD: "rest_snapshots",
    PlanKind.HALT: "halts",
}

#: the ``channel`` label when the caller names none (every channel is public so far)
DEFAULT_CHANNEL = "public"

M = TypeVar("M", Counter, Gauge, Histogram)


class LabelDefaults(Generic[M]):
    """A labelled metric whose :meth:`labels` fills in default values, so that a label added
    later (``channel`` on ``bookkeeper_disconnects_total``) keeps older callers working.

    Args:
        metric: the labelled ``prometheus_client`` metric.
        defaults: label values used when the caller names none.
    """

    __slots__ = ("_defaults", "metric")

    def __init__(self, metric: M, **defaults: str) -> None:
        self.metric: M = metric
        self._defaults = defaults

    def labels(self, **labels: str) -> M:
        """The child for ``labels`` (defaults filled in), as ``metric.labels(...)``."""
        return self.metric.labels(**{**self._defaults, **labels})


class WatchedSession(Protocol):
    """What :meth:`FeedMetrics.watch` reads of a book session: its
    :class:`~bookkeeper.session.SessionStats` (``resumes``, ``replays``, ``resubscribes``,
    ``rest_snapshots``, ``halts``)."""

    @property
    def stats(self) -> object: ...


@dataclass(slots=True, frozen=True)
class _FleetWatch:
    coordinator: Callable[[], object] | None
    link: Callable[[], object] | None
    journal: Callable[[], object] | None


class _FleetCollector(Collector):
    """Scrape-time fleet metrics of the watched feeds (one per exchange)."""

    def __init__(self) -> None:
        self.watches: dict[str, _FleetWatch] = {}

    def collect(self) -> Iterator[Metric]:
        deg = GaugeMetricFamily("bookkeeper_coordinator_degraded",
                                "1 while fleet coordination (coordinator, journal) runs degraded in-process",
                                labels=["exchange", "component"])
        degs = CounterMetricFamily("bookkeeper_coordinator_degradations",
                                   "Episodes of fleet coordination degraded to in-process behaviour",
                                   labels=["exchange", "component"])
        shared = CounterMetricFamily("bookkeeper_shared_snapshots", "Coordinated REST snapshots, by role",
                                     labels=["exchange", "role"])
        waits = CounterMetricFamily("bookkeeper_budget_waits", "Waits for a shared budget",
                                    labels=["exchange", "budget"])
        wait_s = CounterMetricFamily("bookkeeper_budget_wait_seconds", "Seconds spent waiting for a shared budget",
                                     labels=["exchange", "budget"])
        appends = CounterMetricFamily("bookkeeper_journal_appends", "Delta journal appends, by outcome",
                                      labels=["exchange", "outcome"])
        replays = CounterMetricFamily("bookkeeper_journal_replays", "Delta journal fetches, by outcome",
                                      labels=["exchange", "outcome"])
        for exchange, w in list(self.watches.items()):
            if w.coordinator is not None:
                st: Any = w.coordinator()
                deg.add_metric([exchange, "coordinator"], 1.0 if st.degraded else 0.0)
                degs.add_metric([exchange, "coordinator"], st.degradations)
            if w.link is not None:
                ls: Any = w.link()
                for role in ("fetched", "shared", "fallback"):
                    shared.add_metric([exchange, role], ls.snapshots.get(role, 0))
                for budget in ("connect", "rest_weight"):
                    waits.add_metric([exchange, budget], ls.budget_waits.get(budget, 0))
                    wait_s.add_metric([exchange, budget], ls.budget_wait_s.get(budget, 0.0))
            if w.journal is not None:
                js: Any = w.journal()
                deg.add_metric([exchange, "journal"], 1.0 if js.degraded else 0.0)
                degs.add_metric([exchange, "journal"], js.degradations)
                for outcome, n in (("written", js.written), ("duplicate", js.duplicates), ("dropped", js.dropped),
                                   ("failed", js.failed)):
                    appends.add_metric([exchange, outcome], n)
                for outcome, n in (("served", js.served), ("refused", js.refused)):
                    replays.add_metric([exchange, outcome], n)
        yield from (deg, degs, shared, waits, wait_s, appends, replays)


@dataclass(slots=True, frozen=True)
class _Watch:
    sessions: Mapping[str, WatchedSession]
    last_data_ns: Callable[[str], int | None] | None
    now_ns: Callable[[], int]
    breaker: Callable[[], BreakerState] | None


class _WatchCollector(Collector):
    """Scrape-time metrics of the watched feeds (one per exchange)."""

    def __init__(self) -> None:
        self.watches: dict[str, _Watch] = {}

    def collect(self) -> Iterator[Metric]:
        rec = CounterMetricFamily("bookkeeper_recoveries", "Recovery plans started, by rung (a first sync "
                                  "from a REST snapshot counts as rest_snapshot)", labels=["exchange", "rung"])
        age = GaugeMetricFamily("bookkeeper_last_message_age_seconds",
                                "Seconds since the book's last data message", labels=["exchange", "symbol"])
        brk = GaugeMetricFamily("bookkeeper_breaker_state", "1 for the circuit breaker's current state",
                                labels=["exchange", "state"])
        for exchange, w in list(self.watches.items()):  # a copy: a feed may be watched meanwhile
            sessions = list(w.sessions.items())
            for rung, stat in _RUNG_STATS.items():
                rec.add_metric([exchange, rung.value], sum(getattr(s.stats, stat) for _, s in sessions))
            if w.last_data_ns is not None:
                now = w.now_ns()
                for symbol, _ in sessions:
                    last = w.last_data_ns(symbol)
                    if last is not None:
                        age.add_metric([exchange, symbol], max(now - last, 0) / 1e9)
            if w.breaker is not None:
                current = w.breaker()
                for state in BreakerState:
                    brk.add_metric([exchange, state.value], 1.0 if state is current else 0.0)
        yield rec
        yield age
        yield brk


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint (a daemon thread); close it when done.

    Attributes:
        host: the address it listens on.
        port: the bound port (the real one when 0 was asked for).
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class FeedMetrics:
    """The metrics a feed updates (see the module docstring for the list).

    Args:
        registry: where to register; a fresh one by default.
        clock: monotonic ns (times a book's way back to SYNCED); the feed passes its own.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        r = self.registry
        self.disconnects: LabelDefaults[Counter] = LabelDefaults(
            Counter("bookkeeper_disconnects", "Connections that ended or failed to open, by close cause",
                    ["exchange", "channel", "cause"], registry=r), channel=DEFAULT_CHANNEL)
        self.reconnect_attempts = Counter("bookkeeper_reconnect_attempts", "Connection attempts after a drop",
                                          ["exchange"], registry=r)
        self.reconnect_successes = Counter("bookkeeper_reconnect_successes", "Reconnects that opened",
                                           ["exchange"], registry=r)
        self.reconnect_latency = Histogram("bookkeeper_reconnect_latency_seconds",
                                           "Time from a disconnect to the connection being open again",
                                           ["exchange"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.gaps = Counter("bookkeeper_message_gaps", "Sequence gaps detected", ["exchange", "symbol"],
                            registry=r)
        self.missed_messages = Counter("bookkeeper_missed_messages", "Sequence ids proven missed",
                                       ["exchange", "symbol"], registry=r)
        self.snapshots = Counter("bookkeeper_snapshots", "Snapshots taken (rest, ws)",
                                 ["exchange", "kind"], registry=r)
        self.snapshots_avoided = Counter("bookkeeper_snapshots_avoided",
                                         "Recoveries that needed no snapshot (resume, replay)",
                                         ["exchange", "kind"], registry=r)
        self.time_to_consistent = Histogram("bookkeeper_time_to_consistent_seconds",
                                            "Time from a book leaving SYNCED to it being SYNCED again",
                                            ["exchange"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.book_state = Gauge("bookkeeper_book_state",
                                "Sync state: 0 unsynced, 1 awaiting_snapshot, 2 synced, 3 recovering, 4 halted",
                                ["exchange", "symbol"], registry=r)
        self.breaker_open = Gauge("bookkeeper_breaker_open", "1 while the connection's circuit breaker is open",
                                  ["exchange"], registry=r)
        self.driver_errors = Counter("bookkeeper_driver_errors",
                                     "Failures the driver contained (bad frames, raising callbacks, unwritable "
                                     "records, REST client bugs ...) by where they happened",
                                     ["exchange", "where"], registry=r)
        self._watched = _WatchCollector()
        r.register(self._watched)
        self._fleet = _FleetCollector()
        r.register(self._fleet)
        #: per (exchange, symbol), bounded by the books: the last state, and the monotonic ns
        #: when the book left SYNCED (until it is SYNCED again)
        self._states: dict[tuple[str, str], SyncState] = {}
        self._left_synced: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ updates
    def set_state(self, exchange: str, symbol: str, state: SyncState) -> None:
        """A book's sync state changed: set ``bookkeeper_book_state``; a book coming back to
        SYNCED observes ``bookkeeper_time_to_consistent_seconds`` (its first sync does not)."""
        self.book_state.labels(exchange=exchange, symbol=symbol).set(STATE_VALUES[state])
        key = (exchange, symbol)
        was = self._states.get(key)
        self._states[key] = state
        if state is SyncState.SYNCED:
            left = self._left_synced.pop(key, None)
            if left is not None:
                self.time_to_consistent.labels(exchange=exchange).observe(max(self._clock() - left, 0) / 1e9)
        elif was is SyncState.SYNCED:
            self._left_synced[key] = self._clock()

    def reconnected(self, exchange: str, latency_s: float) -> None:
        """A reconnect opened ``latency_s`` after its disconnect (successes and latency)."""
        self.reconnect_successes.labels(exchange=exchange).inc()
        self.reconnect_latency.labels(exchange=exchange).observe(latency_s)

    # ------------------------------------------------------------------ scrape-time sources
    def watch(self, exchange: str, sessions: Mapping[str, WatchedSession], *,
              last_data_ns: Callable[[str], int | None] | None = None, now_ns: Callable[[], int] | None = None,
              breaker: Callable[[], BreakerState] | None = None) -> None:
        """Read ``exchange``'s recovery rungs, last-message ages and breaker state at scrape
        time (watching the same exchange again replaces the earlier sources).

        Args:
            exchange: the venue (the ``exchange`` label).
            sessions: its book sessions by symbol (``StreamDriver.sessions``); their
                :class:`~bookkeeper.session.SessionStats` count the rungs.
            last_data_ns: monotonic ns of a symbol's last data message (``None``: none yet).
            now_ns: the same monotonic clock (this metrics object's clock by default).
            breaker: the connection's breaker state.
        """
        self._watched.watches[exchange] = _Watch(sessions=sessions, last_data_ns=last_data_ns,
                                                 now_ns=now_ns or self._clock, breaker=breaker)

    def watch_fleet(self, exchange: str, *, coordinator: Callable[[], object] | None = None,
                    link: Callable[[], object] | None = None, journal: Callable[[], object] | None = None) -> None:
        """Read ``exchange``'s fleet coordination at scrape time (watching again replaces).

        Args:
            exchange: the venue (the ``exchange`` label).
            coordinator: returns the coordinator's status
                (:class:`~bookkeeper.io.coord.CoordinatorStatus`: ``degraded``, ``degradations``).
            link: returns the driver's :class:`~bookkeeper.io.coord.FleetStats`.
            journal: returns the journal's :class:`~bookkeeper.io.journal.JournalStats`.
        """
        self._fleet.watches[exchange] = _FleetWatch(coordinator=coordinator, link=link, journal=journal)

    # ------------------------------------------------------------------ reading, serving
    def value(self, name: str, **labels: str) -> float | None:
        """The sum of the samples called ``name`` whose labels include ``labels`` (for tests
        and the CLI); ``None`` when there is none.

        Args:
            name: a sample name (``bookkeeper_disconnects_total``, ``..._seconds_count``).
            labels: label values the samples must have (others are summed over).

        Returns:
            The sum, or ``None`` when no sample matches.
        """
        total: float | None = None
        for family in self.registry.collect():
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total = (total or 0.0) + s.value
        return total

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> MetricsServer:
        """Serve this registry as Prometheus text on ``http://host:port/metrics`` (a daemon
        thread; close the returned server when done).

        Args:
            port: the TCP port; 0 picks a free one (read :attr:`MetricsServer.port`).
            host: the address to listen on; loopback by default (bind 0.0.0.0 on purpose).

        Returns:
            The running server.

        Raises:
            OSError: the port cannot be bound (in use, no permission).
        """
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread, host)
