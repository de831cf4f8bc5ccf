"""Prometheus metrics of one feed, on its own (non-global) ``CollectorRegistry``.

A per-feed registry keeps tests and several feeds in one process independent; expose it
with ``prometheus_client.generate_latest(metrics.registry)`` or mount it in your exporter.

>>> m = FeedMetrics()
>>> m.disconnects.labels(exchange="binance", cause="abnormal_closure").inc()
>>> m.value("bookkeeper_disconnects_total", exchange="binance", cause="abnormal_closure")
1.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from bookkeeper.actions import SyncState

__all__ = ["FeedMetrics", "STATE_VALUES"]

#: The ``bookkeeper_book_state`` gauge's numeric encoding of :class:`SyncState`.
STATE_VALUES: dict[SyncState, int] = {
    SyncState.UNSYNCED: 0,
    SyncState.AWAITING_SNAPSHOT: 1,
    SyncState.SYNCED: 2,
    SyncState.RECOVERING: 3,
    SyncState.HALTED: 4,
}


class FeedMetrics:
    """The counters and gauges a feed updates.

    Args:
        registry: where to register; a fresh one by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.disconnects = Counter("bookkeeper_disconnects", "Disconnects by cause",
                                   ["exchange", "cause"], registry=r)
        self.reconnect_attempts = Counter("bookkeeper_reconnect_attempts", "Connection attempts after a drop",
                                          ["exchange"], registry=r)
        self.reconnect_successes = Counter("bookkeeper_reconnect_successes", "Reconnects that opened",
                                           ["exchange"], registry=r)
        self.gaps = Counter("bookkeeper_message_gaps", "Sequence gaps detected", ["exchange", "symbol"],
                            registry=r)
        self.missed_messages = Counter("bookkeeper_missed_messages", "Sequence ids proven missed",
                                       ["exchange", "symbol"], registry=r)
        self.snapshots = Counter("bookkeeper_snapshots", "Snapshots taken (rest, ws)",
                                 ["exchange", "kind"], registry=r)
        self.snapshots_avoided = Counter("bookkeeper_snapshots_avoided",
                                         "Recoveries that needed no snapshot (resume, replay)",
                                         ["exchange", "kind"], registry=r)
        self.book_state = Gauge("bookkeeper_book_state",
                                "Sync state: 0 unsynced, 1 awaiting_snapshot, 2 synced, 3 recovering, 4 halted",
                                ["exchange", "symbol"], registry=r)
        self.breaker_open = Gauge("bookkeeper_breaker_open", "1 while the connection's circuit breaker is open",
                                  ["exchange"], registry=r)
        self.driver_errors = Counter("bookkeeper_driver_errors",
                                     "Failures the driver contained (bad frames, raising callbacks, unwritable "
                                     "records, REST client bugs ...) by where they happened",
                                     ["exchange", "where"], registry=r)

    def set_state(self, exchange: str, symbol: str, state: SyncState) -> None:
        self.book_state.labels(exchange=exchange, symbol=symbol).set(STATE_VALUES[state])

    def value(self, name: str, **labels: str) -> float | None:
        """Read one sample (for tests and the CLI); ``None`` when absent."""
        return self.registry.get_sample_value(name, labels)
