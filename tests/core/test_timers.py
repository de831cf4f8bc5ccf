"""SymbolTimers: pure per-symbol deadlines, driven by Tick events (no asyncio, no clock)."""

from __future__ import annotations

import pytest

from bookkeeper.actions import SyncState
from bookkeeper.events import Tick
from bookkeeper.timers import SymbolTimers, TimersDue

S = 1_000_000_000
SYNCED, UNSYNCED, HALTED = SyncState.SYNCED, SyncState.UNSYNCED, SyncState.HALTED


def tick(t: SymbolTimers, at_s: float, states: dict[str, SyncState], busy: tuple[str, ...] = ()) -> TimersDue:
    return t.on_tick(Tick(now_ns=round(at_s * S)), states, busy)


def test_unsynced_book_without_progress_is_stalled_once_per_period() -> None:
    t = SymbolTimers(resync_timeout_s=10.0, idle_timeout_s=None)
    t.start(["A"], now_ns=0)
    assert tick(t, 9.999, {"A": UNSYNCED}) == TimersDue(next_deadline_ns=10 * S)
    assert tick(t, 10, {"A": UNSYNCED}) == TimersDue(stalled=("A",), next_deadline_ns=20 * S)
    assert tick(t, 10, {"A": UNSYNCED}) == TimersDue(next_deadline_ns=20 * S), "restarted at the tick"


def test_progress_restarts_the_no_progress_timer() -> None:
    t = SymbolTimers(resync_timeout_s=10.0, idle_timeout_s=None)
    t.start(["A"], now_ns=0)
    t.on_progress("A", 7 * S)
    assert tick(t, 10, {"A": UNSYNCED}) == TimersDue(next_deadline_ns=17 * S)
    assert tick(t, 17, {"A": UNSYNCED}).stalled == ("A",)


def test_synced_book_idles_only_with_an_idle_timeout_and_data_restarts_it() -> None:
    off = SymbolTimers(resync_timeout_s=10.0, idle_timeout_s=None)
    off.start(["A"], now_ns=0)
    assert tick(off, 1000, {"A": SYNCED}) == TimersDue(), "quiet markets are normal: no deadline"
    t = SymbolTimers(resync_timeout_s=None, idle_timeout_s=5.0)
    t.start(["A", "B"], now_ns=0)
    t.on_data("A", 3 * S)
    assert tick(t, 5, {"A": SYNCED, "B": SYNCED}) == TimersDue(idle=("B",), next_deadline_ns=8 * S)
    assert tick(t, 8, {"A": SYNCED, "B": SYNCED}) == TimersDue(idle=("A",), next_deadline_ns=10 * S)


def test_halted_and_busy_books_have_no_deadline() -> None:
    t = SymbolTimers(resync_timeout_s=1.0, idle_timeout_s=1.0)
    t.start(["A", "B", "C"], now_ns=0)
    due = tick(t, 50, {"A": HALTED, "B": UNSYNCED, "C": SYNCED}, busy=("B",))
    assert due == TimersDue(idle=("C",), next_deadline_ns=51 * S)
    assert tick(t, 60, {"A": HALTED}, busy=()) == TimersDue()


def test_each_state_uses_its_own_timer() -> None:
    t = SymbolTimers(resync_timeout_s=2.0, idle_timeout_s=100.0)
    t.start(["A"], now_ns=0)
    t.on_data("A", 1 * S)  # data does not count as progress for an unsynced book
    assert tick(t, 2, {"A": UNSYNCED}).stalled == ("A",)
    assert tick(t, 2, {"A": SYNCED}) == TimersDue(next_deadline_ns=101 * S)


def test_a_symbol_never_started_counts_from_its_first_tick() -> None:
    t = SymbolTimers(resync_timeout_s=3.0, idle_timeout_s=None)
    assert not SymbolTimers(resync_timeout_s=None, idle_timeout_s=None).enabled and t.enabled
    assert tick(t, 4, {"X": UNSYNCED}) == TimersDue(next_deadline_ns=7 * S)
    assert tick(t, 7, {"X": UNSYNCED}).stalled == ("X",)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_timeouts_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        SymbolTimers(resync_timeout_s=bad, idle_timeout_s=None)
