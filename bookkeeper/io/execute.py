"""Action execution of one connection: what the sessions ask for, done.

- ``FetchSnapshot`` runs the REST client through tenacity (:func:`bookkeeper.io.retry.retrying`:
  bounded, :func:`~bookkeeper.io.retry.is_retryable` decides), epoch-tagged: the session
  ignores a stale answer. With a fleet link (:class:`~bookkeeper.io.coord.FleetLink`) every
  attempt first spends its REST weight from the shared budget, and a venue whose snapshots
  carry ids takes them once for the fleet (singleflight + shared snapshot: this instance
  fetches and publishes, or bridges its own buffered deltas onto a peer's, or rolls a peer's
  published one forward with the journal). A newer request cancels the one in flight; so does a WS snapshot
  that synced the book (:meth:`Executor.cancel_fetch`).
- ``Resubscribe`` sends that one symbol's unsubscribe (at the subscribed depth) and subscribe.
- ``ReplayDeltas`` asks the journal (same retry rule), or answers ``None`` at once without one.
- ``Halt`` / ``Alert`` / ``StateChanged`` are logged, counted and recorded by the
  :class:`~bookkeeper.io.telemetry.Telemetry`; ``StateChanged`` also goes to the consumer's
  ``on_state`` callback, and synced books' changes to ``on_update`` (both isolated: a callback
  that raises is logged and counted, and ingest goes on).

Containment: a session method that raises outside the frame path is bad input for that book
(:meth:`bookkeeper.connection.BookConnection.refuse`: next rung, else halt, else the
connection is dropped); a REST client or journal raising anything is a failed request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from bookkeeper.actions import (
    Action,
    FetchSnapshot,
    ReplayDeltas,
    Resubscribe,
    StateChanged,
)
from bookkeeper.connection import BookConnection, BookUpdate
from bookkeeper.errors import TransportError
from bookkeeper.events import BookDelta, BookSnapshot
from bookkeeper.policy import BackoffPolicy
from bookkeeper.ports import LiveSpec
from bookkeeper.session import BookSession
from bookkeeper.timers import SymbolTimers

from .clock import Clock, Sleep
from .coord import FleetLink, SnapshotOrigin
from .rest import RestClient
from .retry import EXPECTED_FAILURES, retrying
from .telemetry import FailureSite, Telemetry
from .ws import StreamTransport

__all__ = ["Executor", "Journal"]

log = logging.getLogger("bookkeeper.io.stream")


class Journal(Protocol):
    """A source of missed deltas (redundant line or the shared Redis journal)."""

    async def fetch(self, symbol: str, from_seq: int, to_seq: int | None) -> list[BookDelta] | None:
        """Deltas covering ``from_seq..to_seq``, or ``None`` when it cannot serve them."""
        ...


class Executor:
    """Runs the actions of one connection's sessions (see the module docstring).

    Args:
        connection: the connection's core (its sessions and its bad-input rule).
        spec: the venue's wire dialogue (resubscribe messages).
        depth: the subscribed depth (resubscribes unsubscribe and subscribe at it).
        rest: REST snapshots.
        journal: serves ``ReplayDeltas``; ``None`` answers every replay with "cannot".
        retry_policy: REST snapshot and journal read retries.
        rng, sleep, clock: jitter, waiting and time (injected).
        telemetry: records, metrics and contained failures.
        timers: per-symbol timers (a request or state change is progress).
        transport: the current transport, or ``None`` between connections.
        stopped: true once the driver is closing or dead (nothing is recovered any more).
        drop: stop trusting the current connection (with a reason).
        wake: the per-symbol timers must look again.
        on_update, on_state: the consumer's callbacks.
        fleet: shared budgets and snapshots (``None``: this process alone, as before).
    """

    def __init__(
        self,
        connection: BookConnection,
        *,
        spec: LiveSpec,
        depth: int | None,
        rest: RestClient,
        journal: Journal | None,
        retry_policy: BackoffPolicy,
        rng: random.Random,
        sleep: Sleep,
        clock: Clock,
        telemetry: Telemetry,
        timers: SymbolTimers,
        transport: Callable[[], StreamTransport | None],
        stopped: Callable[[], bool],
        drop: Callable[[str], None],
        wake: Callable[[], None],
        on_update: Callable[[BookUpdate], None] | None,
        on_state: Callable[[StateChanged], None] | None,
        fleet: FleetLink | None = None,
    ) -> None:
        self._conn = connection
        self._fleet = fleet
        self._sessions: Mapping[str, BookSession] = connection.sessions
        self._spec = spec
        self._depth = depth
        self._rest = rest
        self._journal = journal
        self._retry_policy = retry_policy
        self._rng = rng
        self._sleep = sleep
        self._clock = clock
        self._tm = telemetry
        self._timers = timers
        self._transport = transport
        self._stopped = stopped
        self._drop = drop
        self._wake = wake
        self.on_update = on_update
        self._on_state = on_state
        #: the REST snapshot task of each symbol (at most one in flight)
        self.fetches: dict[str, asyncio.Task[None]] = {}
        #: other helper tasks (resubscribes, replays, sends)
        self.aux: set[asyncio.Task[None]] = set()

    @property
    def exchange(self) -> str:
        return self._tm.exchange

    # ------------------------------------------------------------------ running actions
    def run(self, session: BookSession, actions: Iterable[Action]) -> None:
        """Execute what ``session`` asked for. Never raises into the read loop."""
        symbol = session.symbol
        tm = self._tm
        for a in actions:
            t = type(a)
            if t is StateChanged or t is FetchSnapshot or t is Resubscribe or t is ReplayDeltas:
                self._timers.on_progress(symbol, self._clock.monotonic_ns())
                self._wake()
            tm.note(symbol, (a,))
            if t is FetchSnapshot:
                self._spawn_snapshot(session, a)  # type: ignore[arg-type]
            elif t is Resubscribe:
                self.spawn(self._resubscribe(symbol))
            elif t is ReplayDeltas:
                if self._journal is None:
                    self.run(session, session.on_replay(None))
                else:
                    self.spawn(self._replay(session, a))  # type: ignore[arg-type]
            elif t is StateChanged and self._on_state is not None:
                self._emit_state(a)  # type: ignore[arg-type]
        tm.finish_recovery()

    def safely(self, session: BookSession, step: Callable[..., Iterable[Action]], *args: Any) -> None:
        """``step(*args)`` (a method of ``session``) outside the frame path, and run its
        actions, containing whatever the session raises."""
        try:
            self.run(session, step(*args))
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self.contain(session, FailureSite.SESSION, exc)

    def contain(self, session: BookSession, site: FailureSite, exc: Exception, *, epoch: int | None = None) -> None:
        """One failure while handling an input for ``session``, contained: invalid input for
        that book (with ``epoch``, a book waiting for that snapshot takes its next rung); if
        the session cannot even do that, it is halted; if not even that, the connection is
        dropped."""
        self._tm.report(site, exc, f"{session.symbol}: {site} failed")
        reason = f"{site} raised {type(exc).__name__}: {exc}"
        actions, errors, trusted = self._conn.refuse(session.symbol, reason, epoch=epoch)
        self.settle(session.symbol, actions, errors, trusted, reason)

    def settle(self, symbol: str | None, actions: list[Action], errors: tuple[Exception, ...], trusted: bool,
               reason: str) -> None:
        """Finish a refusal (:meth:`BookConnection.refuse`): report what the session raised on
        the way, run its answer, and drop the connection when it is no longer trusted."""
        what = ("could not recover; halting it", "could not halt")
        for exc, text in zip(errors, what):
            self._tm.report(FailureSite.SESSION, exc, f"{symbol}: {text}")
        session = self._sessions.get(symbol) if symbol is not None else None
        if session is not None and actions:
            self.run(session, actions)
        if not trusted:
            self._drop(reason)

    def emit_update(self, update: BookUpdate) -> None:
        """The consumer's ``on_update``, isolated."""
        try:
            self.on_update(update)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the user's code: isolated, ingest goes on
            self._tm.report(FailureSite.ON_UPDATE, exc, f"{update.symbol}: on_update callback raised")

    def _emit_state(self, change: StateChanged) -> None:
        try:
            self._on_state(change)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the user's code: isolated, ingest goes on
            self._tm.report(FailureSite.ON_STATE, exc, f"{change.symbol}: on_state callback raised")

    # ------------------------------------------------------------------ tasks
    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a helper task (unless closing or dead)."""
        if self._stopped():
            coro.close()  # closing or dead: nothing is being recovered any more
            return
        task = asyncio.get_running_loop().create_task(coro)
        self.aux.add(task)
        task.add_done_callback(self.aux.discard)
        task.add_done_callback(self.task_done)

    def send(self, text: str) -> None:
        """Send ``text`` on the current connection (a helper task; none between connections)."""
        transport = self._transport()
        if transport is not None:
            self.spawn(transport.send(text))

    def fetching(self, symbol: str) -> bool:
        """Whether a REST snapshot of ``symbol`` is in flight."""
        task = self.fetches.get(symbol)
        return task is not None and not task.done()

    def cancel_fetch(self, symbol: str) -> None:
        """A WS snapshot synced ``symbol``: a REST snapshot still in flight for it can only be
        as old or older (the session retires its epoch); stop spending REST weight on it."""
        if self.fetching(symbol):
            log.info("%s %s: synced from the WS snapshot; cancelling the REST snapshot in flight",
                     self.exchange, symbol)
            self.fetches[symbol].cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        """Every helper task (snapshots included)."""
        return [*self.fetches.values(), *self.aux]

    def task_done(self, task: asyncio.Task[None]) -> None:
        """Helper tasks contain their own failures; anything left is a bug: logged with
        traceback and counted, never silent."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self._tm.report(FailureSite.TASK, exc, "helper task died")

    def _spawn_snapshot(self, session: BookSession, action: FetchSnapshot) -> None:
        if self._stopped():
            return  # closing or dead: nothing is being recovered any more
        # A newer request supersedes an older one (its answer would be rejected by epoch anyway).
        old = self.fetches.get(session.symbol)
        if old is not None and not old.done():
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._fetch_snapshot(session, action))
        task.add_done_callback(self.task_done)
        self.fetches[session.symbol] = task

    # ------------------------------------------------------------------ the actions' I/O
    async def _rest_snapshot(self, action: FetchSnapshot) -> BookSnapshot:
        """One REST snapshot, with its retries (and each attempt's REST weight, in a fleet)."""
        fleet = self._fleet
        async for attempt in retrying(self._retry_policy, rng=self._rng, sleep=self._sleep):
            with attempt:
                if fleet is not None:
                    await fleet.spend_rest(action.depth)
                return await self._rest.fetch_snapshot(action.symbol, depth=action.depth)
        raise AssertionError("unreachable: retrying() re-raises the last failure")  # pragma: no cover

    async def _fetch_snapshot(self, session: BookSession, action: FetchSnapshot) -> None:
        snap: BookSnapshot | None = None
        failure: str | None = None
        origin = SnapshotOrigin.FETCHED
        fleet = self._fleet
        try:
            if fleet is not None and fleet.shares_snapshots():
                snap, origin = await fleet.snapshot(action.symbol, lambda: self._rest_snapshot(action))
            else:
                snap = await self._rest_snapshot(action)
        except EXPECTED_FAILURES as exc:
            log.warning("%s %s: snapshot failed: %s", self.exchange, action.symbol, exc)
            failure = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a REST client bug is a failed snapshot too, never a silent task death
            self._tm.report(FailureSite.REST, exc, f"{action.symbol}: REST snapshot raised")
            failure = f"{type(exc).__name__}: {exc}"
        try:
            if failure is not None:
                self.run(session, session.on_snapshot_failed(action.epoch, failure))
                return
            assert snap is not None
            if origin == SnapshotOrigin.SHARED or origin == SnapshotOrigin.JOURNAL:  # no REST request of ours
                self._tm.shared_snapshot()
            else:
                self._tm.rest_snapshot()
            self.run(session, session.on_snapshot(snap, epoch=action.epoch))
            if session.is_synced and self.on_update is not None:
                self.emit_update(BookUpdate(symbol=session.symbol, seq=session.last_seq, ts_recv_ns=snap.ts_recv_ns))
        except Exception as exc:  # noqa: BLE001 - a containment boundary
            self.contain(session, FailureSite.SESSION, exc, epoch=action.epoch)

    async def _resubscribe(self, symbol: str) -> None:
        transport = self._transport()
        if transport is None:
            return  # the reconnect subscribes every symbol anyway
        depth = self._depth
        try:
            # unsubscribe at the depth we subscribed with: a venue whose unsubscribe names a
            # depth (Kraken v2) keeps a subscription at any other depth alive
            if depth is None:
                unsubscribe = self._spec.unsubscribe_messages([symbol])
            else:
                unsubscribe = self._spec.unsubscribe_messages([symbol], depth=depth)
            for msg in unsubscribe:
                await transport.send(msg)
            for msg in self._spec.subscribe_messages([symbol], depth):
                await transport.send(msg)
        except TransportError as exc:
            log.info("%s %s: resubscribe not sent (%s); the reconnect will subscribe", self.exchange, symbol, exc)

    async def _replay(self, session: BookSession, action: ReplayDeltas) -> None:
        assert self._journal is not None
        deltas: list[BookDelta] | None = None
        try:
            async for attempt in retrying(self._retry_policy, rng=self._rng, sleep=self._sleep):
                with attempt:
                    deltas = await self._journal.fetch(action.symbol, action.from_seq, action.to_seq)
        except EXPECTED_FAILURES as exc:
            log.warning("%s %s: journal failed: %s", self.exchange, action.symbol, exc)
            deltas = None
        except Exception as exc:  # noqa: BLE001 - a journal bug: it could not serve them
            self._tm.report(FailureSite.JOURNAL, exc, f"{action.symbol}: journal raised")
            deltas = None
        self.safely(session, session.on_replay, deltas)
