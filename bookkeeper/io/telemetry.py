"""Telemetry of one connection: disconnect records, metrics, logs and contained failures.

- **Records.** One :class:`~bookkeeper.io.records.DisconnectRecord` per disconnect (and per
  failed connection attempt), written once its reconnect and recovery are known: the plans
  come from the actions the sessions asked for while the disconnect was being recovered.
- **Metrics.** Every update goes through :meth:`Telemetry.metric`: a metrics backend that
  raises is logged and counted, never fatal.
- **Contained failures.** :meth:`Telemetry.report` logs one failure the driver contained
  (with its traceback, the first few of each :class:`FailureSite`, then every 1000th) and
  counts it (:attr:`Telemetry.errors`, ``bookkeeper_driver_errors_total``).

Everything logs on the ``bookkeeper.io.stream`` logger, as the driver always has.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
from bookkeeper.events import CloseReason

from .clock import Clock
from .metrics import FeedMetrics
from .records import DisconnectRecord, RecordWriter, iso_utc
from .ws import Closure

__all__ = ["FailureSite", "Telemetry"]

log = logging.getLogger("bookkeeper.io.stream")

_PLAN_OF_ACTION: dict[type, str] = {
    FetchSnapshot: PlanKind.SNAPSHOT_REBUILD.value,
    Resubscribe: PlanKind.RESUBSCRIBE.value,
    ReplayDeltas: PlanKind.REPLAY_DELTAS.value,
    Halt: PlanKind.HALT.value,
}
#: disconnects logged at INFO (the others at WARNING)
_QUIET_CLOSES = frozenset({CloseReason.ABNORMAL_CLOSURE, CloseReason.SERVER_CLOSE, CloseReason.LOCAL_SHUTDOWN})
#: contained failures of one kind logged with a traceback before only every 1000th is
#: (a callback raising on every delta must not flood the log, but stays visible and counted)
_LOGGED_PER_SITE = 10


class FailureSite(enum.StrEnum):
    """Where a failure the driver contained happened (the ``where`` label of
    ``bookkeeper_driver_errors_total`` and the keys of ``StreamDriver.errors``)."""

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


class Telemetry:
    """Records, metrics and contained-failure accounting of one connection.

    Args:
        exchange: the venue name (a label of every metric, a field of every record).
        clock: the driver's clock (record timestamps, ages).
        records: where disconnect records go (``None``: nowhere).
        metrics: the feed's metrics (``None``: none kept).
        channel: the ``channel`` field of records.
        bot_instance_id: the ``bot_instance_id`` field of records.
    """

    def __init__(self, exchange: str, *, clock: Clock, records: RecordWriter | None, metrics: FeedMetrics | None,
                 channel: str, bot_instance_id: str) -> None:
        self.exchange = exchange
        self._clock = clock
        self._records = records
        self._metrics = metrics
        self._channel = channel
        self._bot = bot_instance_id
        self._recovery: _Recovery | None = None
        #: monotonic ns of the last data frame (``None`` before the first)
        self.last_data_ns: int | None = None
        #: failures contained, by where they happened
        self.errors: Counter[FailureSite] = Counter()

    # ------------------------------------------------------------------ contained failures
    def report(self, site: FailureSite, exc: BaseException, what: str) -> None:
        """Log (with traceback) and count one failure the driver contained."""
        n = self.count(site)
        if n <= _LOGGED_PER_SITE or n % 1000 == 0:
            log.error("%s: %s [%s #%d]: %s: %s", self.exchange, what, site, n, type(exc).__name__, exc,
                      exc_info=exc)

    def count(self, site: FailureSite) -> int:
        """Count one contained failure (without logging it); returns the count so far."""
        self.errors[site] += 1
        metrics = self._metrics
        if metrics is not None and site is not FailureSite.METRICS:
            try:
                metrics.driver_errors.labels(exchange=self.exchange, where=site.value).inc()
            except Exception as exc:  # noqa: BLE001 - a containment boundary
                self.report(FailureSite.METRICS, exc, "metrics update failed")
        return self.errors[site]

    def metric(self, update: Callable[..., object], *args: Any) -> None:
        """``update(metrics, *args)``; a metrics failure is logged and counted, never fatal."""
        metrics = self._metrics
        if metrics is None:
            return
        try:
            update(metrics, *args)
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self.report(FailureSite.METRICS, exc, "metrics update failed")

    def write_record(self, record: DisconnectRecord) -> None:
        """Write one record; a writer that fails is logged and counted, never fatal."""
        records = self._records
        if records is None:
            return
        try:
            written = records.write(record)
        except Exception as exc:  # noqa: BLE001 - a writer that raises anyway (a custom one, a sink that fails)
            self.report(FailureSite.RECORDS, exc, "disconnect record not written")
            return
        if written is False:
            self.count(FailureSite.RECORDS)  # the writer logged it (once)

    # ------------------------------------------------------------------ connection lifecycle
    def ago_ms(self, now: int) -> int | None:
        """Milliseconds since the last data frame (``None`` before the first)."""
        return None if self.last_data_ns is None else (now - self.last_data_ns) // 1_000_000

    def attempt_started(self) -> None:
        """A connection attempt starts (counted while a disconnect is being recovered)."""
        if self._recovery is not None:
            self.metric(lambda m: m.reconnect_attempts.labels(exchange=self.exchange).inc())

    def attempt_failed(self, closure: Closure, attempt: int) -> None:
        """A connection attempt failed: count it, and record it (its own record)."""
        now = self._clock.monotonic_ns()
        self.metric(lambda m: m.disconnects.labels(exchange=self.exchange, channel=self._channel,
                                                   cause=closure.reason.value).inc())
        if self._records is not None:
            self.write_record(DisconnectRecord(
                ts=iso_utc(self._clock.time_ns()), bot_instance_id=self._bot, exchange=self.exchange,
                channel=self._channel, close_code=closure.code, close_cause=closure.reason.value,
                last_message_ago_ms=self.ago_ms(now), uptime_seconds=0.0, reconnect_attempt=attempt,
                reconnect_success=False,
            ))

    def reconnected(self, now: int, attempts: int) -> None:
        """A connection opened: the pending disconnect (if any) reconnected."""
        rec = self._recovery
        if rec is None:
            return
        rec.reconnected = True
        rec.record.reconnect_attempt = attempts
        rec.record.reconnect_success = True
        rec.record.reconnect_latency_ms = (now - rec.disconnected_ns) // 1_000_000
        self.metric(FeedMetrics.reconnected, self.exchange, (now - rec.disconnected_ns) / 1e9)

    def episode_failed(self, attempts: int) -> None:
        """A reconnect episode ran out of attempts (or met a non-retryable refusal)."""
        rec = self._recovery
        if rec is not None:
            rec.record.reconnect_attempt = attempts
            rec.reconnected = False
            self.finish_recovery()

    def breaker(self, is_open: bool) -> None:
        """The breaker opened (``True``) or closed after a successful probe."""
        self.metric(lambda m: m.breaker_open.labels(exchange=self.exchange).set(1 if is_open else 0))

    def disconnected(self, closure: Closure, *, now: int, connected_ns: int) -> DisconnectRecord:
        """The connection ended: count and log it; returns its record (not written yet:
        :meth:`begin_recovery`, or :meth:`write_record` when nothing is recovered)."""
        self.finish_recovery(force=True)  # an older disconnect still recovering: write what is known
        self.metric(lambda m: m.disconnects.labels(exchange=self.exchange, channel=self._channel,
                                                   cause=closure.reason.value).inc())
        level = logging.INFO if closure.reason in _QUIET_CLOSES else logging.WARNING
        log.log(level, "%s: connection ended: %s (code %s) %s", self.exchange, closure.reason, closure.code,
                closure.detail)
        return DisconnectRecord(
            ts=iso_utc(self._clock.time_ns()), bot_instance_id=self._bot, exchange=self.exchange,
            channel=self._channel, close_code=closure.code, close_cause=closure.reason.value,
            last_message_ago_ms=self.ago_ms(now), uptime_seconds=round((now - connected_ns) / 1e9, 3),
        )

    def begin_recovery(self, record: DisconnectRecord, *, now: int, awaiting: set[str]) -> None:
        """Track the recovery of the books in ``awaiting``; the record is written once the
        reconnect and every one of them is known (synced again, or halted)."""
        self._recovery = _Recovery(record=record, disconnected_ns=now, awaiting=awaiting)

    def finish_recovery(self, *, force: bool = False) -> None:
        """Write the pending disconnect record once reconnect and recovery are known."""
        rec = self._recovery
        if rec is None:
            return
        if not force and (rec.reconnected is None or rec.awaiting):
            return
        self._recovery = None
        rec.record.plan = list(rec.plans)
        self.write_record(rec.record)

    # ------------------------------------------------------------------ actions
    def note(self, symbol: str, actions: Iterable[Action]) -> None:
        """Log, count and record (as recovery plans) what ``symbol``'s session asked for."""
        rec = self._recovery
        venue = self.exchange
        for a in actions:
            t = type(a)
            if rec is not None and symbol in rec.awaiting:
                kind = _PLAN_OF_ACTION.get(t)
                if kind is not None:
                    rec.add_plan(kind)
            if t is Halt:
                log.warning("%s %s: HALTED: %s", venue, a.symbol, a.reason)  # type: ignore[union-attr]
            elif t is Alert:
                assert isinstance(a, Alert)
                reason = a.reason.removeprefix(f"{a.kind}: ")  # reasons often name their kind already
                log.warning("%s %s: %s: %s", venue, a.symbol, a.kind, reason)
                if a.kind is AlertKind.GAP:
                    self.metric(lambda m, sym: m.gaps.labels(exchange=venue, symbol=sym).inc(), a.symbol)
                    if a.missed:
                        self.metric(lambda m, sym, n: m.missed_messages.labels(exchange=venue, symbol=sym).inc(n),
                                    a.symbol, a.missed)
                        if rec is not None:
                            rec.record.missed_messages_count += a.missed
            elif t is StateChanged:
                assert isinstance(a, StateChanged)
                log.info("%s %s: %s -> %s (%s)", venue, a.symbol, a.old, a.new, a.reason)
                self.metric(FeedMetrics.set_state, venue, a.symbol, a.new)
                if a.new is SyncState.SYNCED and a.plan is PlanKind.RESUME:
                    self.metric(lambda m: m.snapshots_avoided.labels(exchange=venue, kind="resume").inc())
                elif a.new is SyncState.SYNCED and a.plan is PlanKind.REPLAY_DELTAS:
                    self.metric(lambda m: m.snapshots_avoided.labels(exchange=venue, kind="replay").inc())
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

    def note_ws_snapshot(self, symbol: str, actions: Iterable[Action]) -> None:
        """``symbol`` was synced from the venue's WS snapshot (the plan of its recovery)."""
        rec = self._recovery
        if rec is None or symbol not in rec.awaiting:
            return
        for a in actions:
            if type(a) is StateChanged and a.new is SyncState.SYNCED and a.plan is not PlanKind.RESUME:
                rec.add_plan(PlanKind.RESUBSCRIBE.value)  # synced from the venue's WS snapshot
                self.metric(lambda m: m.snapshots.labels(exchange=self.exchange, kind="ws").inc())

    def rest_snapshot(self) -> None:
        """A REST snapshot arrived."""
        self.metric(lambda m: m.snapshots.labels(exchange=self.exchange, kind="rest").inc())

    def shared_snapshot(self) -> None:
        """A REST snapshot another instance of the fleet took arrived (no request of ours)."""
        self.metric(lambda m: m.snapshots.labels(exchange=self.exchange, kind="shared").inc())
