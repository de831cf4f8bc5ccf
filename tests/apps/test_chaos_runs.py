"""End-to-end: `bookkeeper demo` and `bookkeeper chaos` against the embedded simulator.

These run the real ingest over real sockets (127.0.0.1) with real ccxt, so they take real
time (15-30 s each): each command starts in the background when the suite starts
(``@pytest.mark.background``, tests/_background.py) and its test asserts on the result.
Every assertion is on what the simulator knows to be true: each synced book is compared, in
full, with the engine's truth at the same sequence id.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _background import BackgroundResult, cli

pytestmark = [pytest.mark.timeout(180), pytest.mark.realtime]

REQUIRED_KEYS = {
    "seed", "duration_s", "faults_injected", "disconnects", "reconnects", "recoveries", "checks",
    "mismatches", "final_consistent", "time_to_consistent_ms", "reconnect_attempts_max_per_min",
    "breaker_opened", "disconnect_records",
}  # fmt: skip


@pytest.mark.background(cli("demo", "--duration", "20", "--json"))
def test_demo_20s_json_is_consistent_with_several_fault_kinds(background: BackgroundResult) -> None:
    rc, report, err = background.returncode, background.json_line(), background.stderr
    assert REQUIRED_KEYS <= report.keys()
    assert report["venues"] == ["binance", "okx", "kraken"]
    acted = {k for k, v in report["faults_injected"].items() if v > 0}
    assert len(acted) >= 5, report["faults_injected"]
    assert report["mismatches"] == 0, report["mismatch_samples"]
    assert report["final_consistent"] is True
    assert report["checks"] >= 300
    assert set(report["recoveries"]) == {"resume", "ws_snapshot", "rest_snapshot", "halt"}
    assert report["recoveries"]["resume"] >= 1, "a disconnect in a quiet market must resume without a snapshot"
    assert report["disconnect_records"] >= report["disconnects"] > 0
    assert rc == 0, err[-2000:]


@pytest.mark.background(lambda _, venue, seed: cli("chaos", "--venue", venue, "--seed", seed, "--duration", 22,
                                                  "--json"))
@pytest.mark.parametrize(("venue", "seed"), [("binance", 3), ("okx", 5), ("kraken", 8)])
def test_chaos_every_fault_kind_stays_consistent(venue: str, seed: int, background: BackgroundResult) -> None:
    rc, report, err = background.returncode, background.json_line(), background.stderr
    assert report["venue"] == venue and report["seed"] == seed
    assert report["mismatches"] == 0, (seed, report["mismatch_samples"])
    assert report["final_consistent"] is True, (seed, report["books"])
    assert report["checks"] >= 100, (seed, report["checks"])
    applicable = set(report["faults_injected"]) - set(report["not_applicable"])
    missing = sorted(k for k in applicable if report["faults_injected"][k] == 0 and k != "close_1000")
    assert len(missing) <= 2, f"seed {seed}: fault kinds that never acted: {missing}"
    # the ingest's own work after a connection is up stays far below the 500 ms budget
    assert report["consistent_after_connect_ms"]["p99"] <= 500, (seed, report["slowest_recoveries"])
    assert report["breaker_opened"] is False
    assert rc == 0, err[-2000:]


@pytest.mark.background(cli("chaos", "--venue", "binance", "--seed", 2, "--duration", 30, "--faults", "drop",
                            "--outage", "--json"))
def test_chaos_outage_opens_breaker_with_bounded_spaced_attempts(background: BackgroundResult) -> None:
    rc, report, err = background.returncode, background.json_line(), background.stderr
    assert report["breaker_opened"] is True
    assert report["recoveries"]["halt"] >= 1
    assert report["reconnect_attempts_max_per_min"] <= 12
    times = report["connection_attempt_times_s"]
    outage = [t for t in times if 30 * 0.3 <= t <= 30 * 0.6 + 1]
    assert outage, times
    gaps = [b - a for a, b in zip(outage, outage[1:])]
    assert all(g >= 0.4 for g in gaps), f"attempts during the outage not spaced by the backoff: {gaps}"
    assert report["mismatches"] == 0 and report["final_consistent"] is True, report["books"]
    assert rc == 0, err[-2000:]


def test_chaos_usage_errors_exit_2() -> None:
    for args in (["chaos", "--venue", "nowhere", "--seed", "1"], ["chaos", "--venue", "okx", "--seed", "1",
                                                                 "--faults", "abort,meteor"],
                 ["demo", "--duration", "-3"]):
        out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", *args], capture_output=True, text=True)
        assert out.returncode == 2, args
        assert "Traceback" not in out.stderr
