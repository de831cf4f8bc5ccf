"""[harden] The chaos/demo harness: a SYNCED book whose sequence id goes backwards is a failure
(``seq_rewinds``), a dead driver is a failure (``driver_failures``), and an unwritable
``--records`` path is a one-line usage error (exit 2) before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bookkeeper.actions import SyncState
from bookkeeper.apps.chaos import ConsistencyChecker, run_failed
from bookkeeper.io.stream import BookUpdate


class _Engine:
    """Truth that never has the requested id, so only the sequence check runs."""

    def oldest_seq(self, symbol: str) -> int:
        return 10**9

    def seq(self, symbol: str) -> int:
        return 10**9


class _Sim:
    engine = _Engine()


class _Feed:
    def __init__(self) -> None:
        self.states: dict[str, SyncState] = {}

    def state(self, symbol: str) -> SyncState:
        return self.states.get(symbol, SyncState.SYNCED)


def _update(seq: int | None, symbol: str = "BTCUSDT") -> BookUpdate:
    return BookUpdate(symbol=symbol, seq=seq, ts_recv_ns=0)


def test_seq_going_backwards_on_a_synced_book_is_counted_within_and_across_synced_periods() -> None:
    checker = ConsistencyChecker(_Sim(), min_interval_s=0.0)  # type: ignore[arg-type]
    feed = _Feed()
    for seq in (100, 101, 101, 105):  # forward or equal: fine
        checker.check(feed, "okx", _update(seq))  # type: ignore[arg-type]
    assert checker.seq_rewinds == 0
    checker.check(feed, "okx", _update(103))  # type: ignore[arg-type]  # within one synced period
    assert checker.seq_rewinds == 1
    feed.states["BTCUSDT"] = SyncState.RECOVERING
    checker.check(feed, "okx", _update(50))  # type: ignore[arg-type]  # not synced: not compared
    assert checker.seq_rewinds == 1
    feed.states["BTCUSDT"] = SyncState.SYNCED
    checker.check(feed, "okx", _update(104))  # type: ignore[arg-type]  # a resync landed below 105
    assert checker.seq_rewinds == 2
    checker.check(feed, "okx", _update(120))  # type: ignore[arg-type]
    checker.check(feed, "okx", _update(7, symbol="ETHUSDT"))  # type: ignore[arg-type]  # per symbol
    checker.check(feed, "binance", _update(7))  # type: ignore[arg-type]  # per venue
    assert checker.seq_rewinds == 2
    assert checker.rewind_samples == ["okx:BTCUSDT: synced at seq 103 after having been synced at 105",
                                      "okx:BTCUSDT: synced at seq 104 after having been synced at 105"]


def test_venues_without_ids_are_not_seq_checked() -> None:
    checker = ConsistencyChecker(_Sim(), min_interval_s=0.0)  # type: ignore[arg-type]
    for _ in range(3):
        checker.check(_Feed(), "kraken", _update(None))  # type: ignore[arg-type]
    assert checker.check_seq("kraken", "BTC/USD", None) is True
    assert checker.seq_rewinds == 0


def test_seq_check_runs_even_when_the_comparison_is_throttled() -> None:
    checker = ConsistencyChecker(_Sim(), min_interval_s=3600.0)  # type: ignore[arg-type]
    for seq in (10, 9):
        checker.check(_Feed(), "binance", _update(seq))  # type: ignore[arg-type]
    assert checker.seq_rewinds == 1


def _report(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"mismatches": 0, "final_consistent": True, "seq_rewinds": 0, "driver_failures": {}}
    base.update(kw)
    return base


@pytest.mark.parametrize(("report", "failed"), [
    (_report(), False),
    (_report(seq_rewinds=1), True),
    (_report(driver_failures={"okx": "RuntimeError: boom"}), True),
    (_report(mismatches=2), True),
    (_report(final_consistent=False), True),
])
def test_run_failed_covers_rewinds_and_dead_drivers(report: dict[str, Any], failed: bool) -> None:
    assert run_failed(report) is failed


@pytest.mark.parametrize("args", [
    ["demo", "--records", "/nonexistent/x.jsonl", "--duration", "5"],
    ["chaos", "--venue", "okx", "--seed", "1", "--records", "{tmp}", "--duration", "5"],
])
def test_unwritable_records_path_exits_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", *argv], capture_output=True, text=True, check=False,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "records path" in lines[0], out.stderr
    assert out.stdout == ""
