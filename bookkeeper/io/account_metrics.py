"""Prometheus metrics of account feeds, read at scrape time (nothing on the ingest path).

Conventions as in :mod:`bookkeeper.io.metrics`: ``_total`` counters, base units in names,
``exchange`` and ``account`` labels (the operator's account label, never a key).

| metric | labels |
|---|---|
| ``bookkeeper_account_state`` (1 for the current state) | exchange, account, state |
| ``bookkeeper_account_recoveries_total`` | exchange, account, kind (``replay``, ``full_sync``) |
| ``bookkeeper_account_reauthentications_total`` (a login after the venue ended the session) | exchange, account |
| ``bookkeeper_account_rotations_total`` (connection rotated: lifetime, shutdown notice) | exchange, account |
| ``bookkeeper_account_reconciliations_total`` / ``..._drifts_total`` | exchange, account |
| ``bookkeeper_account_alerts_total`` | exchange, account, kind |
| ``bookkeeper_account_fills`` (fills in the ledger) | exchange, account |
| ``bookkeeper_account_disconnects_total`` | exchange, account, cause |

>>> from prometheus_client import CollectorRegistry
>>> metrics = AccountMetrics(CollectorRegistry())
>>> metrics.value("bookkeeper_account_recoveries_total", exchange="okx", account="main", kind="replay") is None
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bookkeeper.actions import AccountPlanKind, AccountState

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .account import AccountFeed

__all__ = ["AccountMetrics"]


class _AccountCollector(Collector):
    def __init__(self) -> None:
        self.feeds: list[AccountFeed] = []

    def collect(self) -> Iterator[Metric]:
        labels = ["exchange", "account"]
        state = GaugeMetricFamily("bookkeeper_account_state", "1 for the account's current sync state",
                                  labels=[*labels, "state"])
        rec = CounterMetricFamily("bookkeeper_account_recoveries", "Account recovery plans made, by kind",
                                  labels=[*labels, "kind"])
        reauth = CounterMetricFamily("bookkeeper_account_reauthentications",
                                     "Logins after the venue ended the authenticated session", labels=labels)
        rot = CounterMetricFamily("bookkeeper_account_rotations",
                                  "Private connections rotated on purpose (session lifetime, shutdown notice)",
                                  labels=labels)
        checks = CounterMetricFamily("bookkeeper_account_reconciliations", "Reconciliations with REST done",
                                     labels=labels)
        drifts = CounterMetricFamily("bookkeeper_account_drifts", "Drift a replay could not explain",
                                     labels=labels)
        alerts = CounterMetricFamily("bookkeeper_account_alerts", "Account alerts, by kind", labels=[*labels, "kind"])
        fills = GaugeMetricFamily("bookkeeper_account_fills", "Fills held by the account's ledger", labels=labels)
        disc = CounterMetricFamily("bookkeeper_account_disconnects", "Private-channel disconnects, by cause",
                                   labels=[*labels, "cause"])
        for feed in list(self.feeds):
            if feed._session is None:  # not started
                continue
            key = [feed.account.venue, feed.account.account]
            session = feed.session
            for s in AccountState:
                state.add_metric([*key, s.value], 1.0 if feed.state is s else 0.0)
            kinds = Counter(str(p.kind) for p in session.plans)
            for kind in AccountPlanKind:
                rec.add_metric([*key, kind.value], kinds[kind.value])
            reauth.add_metric(key, session.stats.relogins)
            rot.add_metric(key, session.stats.rotations)
            checks.add_metric(key, session.stats.reconciles)
            drifts.add_metric(key, session.stats.drifts)
            for kind, n in sorted(feed.alert_counts.items()):
                alerts.add_metric([*key, kind], n)
            fills.add_metric(key, len(feed.fills()))
            for cause, n in sorted(feed.disconnect_causes.items()):
                disc.add_metric([*key, cause], n)
        yield from (state, rec, reauth, rot, checks, drifts, alerts, fills, disc)


class AccountMetrics:
    """The metrics of the account feeds it watches (``AccountFeed(metrics=...)``).

    Args:
        registry: where to register (default: prometheus_client's global registry; give each
            test its own ``CollectorRegistry``). Serve it with ``prometheus_client``'s
            ``start_http_server`` or alongside a ``FeedMetrics`` registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        self._collector = _AccountCollector()
        self.registry.register(self._collector)

    def watch(self, feed: AccountFeed) -> None:
        """Report ``feed`` from now on."""
        if feed not in self._collector.feeds:
            self._collector.feeds.append(feed)

    def unwatch(self, feed: AccountFeed) -> None:
        """Stop reporting ``feed``."""
        if feed in self._collector.feeds:
            self._collector.feeds.remove(feed)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (``None`` when absent), for tests and reports."""
        return self.registry.get_sample_value(name, labels)
