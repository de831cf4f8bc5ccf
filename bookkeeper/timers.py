"""SymbolTimers: per-symbol deadlines of one connection, driven by ``Tick`` events (pure).

Theory of operation
-------------------
The connection's keepalive cannot see one symbol go quiet, or one WS snapshot go missing,
while the others flow. Two timers per symbol cover that:

- **idle** (``idle_timeout_s``): a SYNCED book that got no data for this long. Quiet markets
  are normal, so it is off by default; the connection-level staleness timer still applies.
- **no progress** (``resync_timeout_s``): a book that is not SYNCED and saw no state change
  or recovery request for this long (a lost WS snapshot must not leave it waiting forever).

The driver reports what happens (:meth:`SymbolTimers.start` when a connection opens,
:meth:`~SymbolTimers.on_data`, :meth:`~SymbolTimers.on_progress`) and feeds
:class:`~bookkeeper.events.Tick` events on its injected clock; :meth:`~SymbolTimers.on_tick`
answers which symbols are due and the next deadline, and the driver sleeps (injected sleep)
until then or until something wakes it. A due timer restarts from the tick (it fires once per
period, not on every tick). HALTED books, and books with a REST snapshot in flight (it has
its own bounded retries), have no deadline. No clock is read here.

>>> from bookkeeper.actions import SyncState
>>> t = SymbolTimers(resync_timeout_s=10.0, idle_timeout_s=None)
>>> t.start(["BTCUSDT"], now_ns=0)
>>> t.on_tick(Tick(now_ns=9_000_000_000), {"BTCUSDT": SyncState.UNSYNCED})
TimersDue(idle=(), stalled=(), next_deadline_ns=10000000000)
>>> t.on_tick(Tick(now_ns=10_000_000_000), {"BTCUSDT": SyncState.UNSYNCED})
TimersDue(idle=(), stalled=('BTCUSDT',), next_deadline_ns=20000000000)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from .actions import SyncState
from .events import Tick

__all__ = ["SymbolTimers", "TimersDue"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimersDue:
    """What one tick found."""

    #: synced books with no data for ``idle_timeout_s`` (the driver calls ``on_stale``)
    idle: tuple[str, ...] = ()
    #: unsynced books with no progress for ``resync_timeout_s`` (the driver calls ``on_stale``)
    stalled: tuple[str, ...] = ()
    #: the earliest deadline still pending (monotonic ns), or ``None``: wait to be woken
    next_deadline_ns: int | None = None


class SymbolTimers:
    """Per-symbol idle / no-progress deadlines (see the module docstring).

    Args:
        resync_timeout_s: an unsynced book with no progress this long is due (``None``: never).
        idle_timeout_s: a synced book with no data this long is due (``None``: never).

    Raises:
        ValueError: a timeout that is not positive.
    """

    __slots__ = ("_data_ns", "_idle_ns", "_progress_ns", "_resync_ns")

    def __init__(self, *, resync_timeout_s: float | None, idle_timeout_s: float | None) -> None:
        for name, value in (("resync_timeout_s", resync_timeout_s), ("idle_timeout_s", idle_timeout_s)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, not {value!r}")
        self._resync_ns = round(resync_timeout_s * 1e9) if resync_timeout_s is not None else None
        self._idle_ns = round(idle_timeout_s * 1e9) if idle_timeout_s is not None else None
        #: per symbol: monotonic ns of the last data event / of the last state change or request
        self._data_ns: dict[str, int] = {}
        self._progress_ns: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        """Whether any timer is configured (else the driver needs no watchdog at all)."""
        return self._resync_ns is not None or self._idle_ns is not None

    def start(self, symbols: Iterable[str], *, now_ns: int) -> None:
        """A connection opened: every symbol's timers restart at ``now_ns``.

        Args:
            symbols: the symbols on the connection.
            now_ns: the driver's monotonic clock.
        """
        for symbol in symbols:
            self._data_ns[symbol] = now_ns
            self._progress_ns[symbol] = now_ns

    def on_data(self, symbol: str, now_ns: int) -> None:
        """``symbol`` got data (a book event, trade or fill): its idle timer restarts."""
        self._data_ns[symbol] = now_ns

    def on_progress(self, symbol: str, now_ns: int) -> None:
        """``symbol`` changed state or asked for recovery: its no-progress timer restarts."""
        self._progress_ns[symbol] = now_ns

    def on_tick(self, tick: Tick, states: Mapping[str, SyncState], busy: Collection[str] = ()) -> TimersDue:
        """Which symbols are due at ``tick``, and when to look again.

        Args:
            tick: the driver's monotonic clock now.
            states: every symbol's sync state.
            busy: symbols with a REST snapshot in flight (no deadline while it runs).

        Returns:
            The due symbols (their timers restart at ``tick``) and the next deadline.
        """
        now = tick.now_ns
        idle: list[str] = []
        stalled: list[str] = []
        nxt: int | None = None
        for symbol, state in states.items():
            if state is SyncState.HALTED or symbol in busy:
                continue
            if state is SyncState.SYNCED:
                limit, since, due = self._idle_ns, self._data_ns, idle
            else:
                limit, since, due = self._resync_ns, self._progress_ns, stalled
            if limit is None:
                continue
            deadline = since.setdefault(symbol, now) + limit
            if deadline <= now:
                since[symbol] = now
                due.append(symbol)
                deadline = now + limit
            nxt = deadline if nxt is None else min(nxt, deadline)
        return TimersDue(idle=tuple(idle), stalled=tuple(stalled), next_deadline_ns=nxt)
