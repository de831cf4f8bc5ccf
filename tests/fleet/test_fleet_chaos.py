"""``bookkeeper chaos --instances N --redis URL --scenario S [--ab-lines]``: real OS processes
sharing a real redis-server against one simulator that holds the truth (kept short: each run
is a few seconds of scenario after every instance synced)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("redis")

from bookkeeper.apps.fleet_chaos import FleetChaosConfig, run_fleet_chaos  # noqa: E402

from conftest import RedisServer  # noqa: E402

# many ingest processes load both cores: wait until the suite's background runs are done
pytestmark = [pytest.mark.realtime, pytest.mark.timeout(240), pytest.mark.usefixtures("quiet_background")]

FLEET_KEYS = {
    "instances", "rest_snapshots", "rest_snapshots_max_per_symbol_incident", "journal_replays",
    "shared_snapshot_uses", "reconnect_attempts_total", "reconnect_budget", "ab_failovers",
    "seed", "duration_s", "faults_injected", "disconnects", "reconnects", "recoveries", "checks", "mismatches",
    "final_consistent", "time_to_consistent_ms", "reconnect_attempts_max_per_min", "breaker_opened",
    "disconnect_records",
}  # fmt: skip


def _consistent(report: dict, seed: int) -> None:
    assert report["mismatches"] == 0, (seed, report["mismatch_samples"])
    assert report["seq_rewinds"] == 0, seed
    assert report["final_consistent"] is True, (seed, report)
    assert report["driver_failures"] == {}, (seed, report["driver_failures"])
    assert report["checks"] >= 50, (seed, report["checks"])
    assert report["reconnect_attempts_total"] <= report["reconnect_budget"], (seed, report)


def test_mass_disconnect_8_instances_one_snapshot_per_symbol_per_incident(redis_server: RedisServer) -> None:
    seed = 11
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "chaos", "--venue", "binance", "--seed", str(seed),
                          "--duration", "5", "--instances", "8", "--redis", redis_server.url, "--scenario",
                          "mass-disconnect", "--json"], capture_output=True, text=True, timeout=220)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, (out.stdout[:500], out.stderr[-2000:])
    report = json.loads(lines[0])
    assert FLEET_KEYS <= report.keys()
    assert report["instances"] == 8 and report["incidents"] >= 2
    assert report["faults_injected"]["abort"] >= 8 * 2, report["faults_injected"]
    assert report["rest_snapshots_max_per_symbol_incident"] <= 1, (seed, report["rest_snapshots_per_incident"])
    _consistent(report, seed)
    assert out.returncode == 0, out.stderr[-2000:]


async def test_partial_disconnect_recovers_from_the_journal(redis_server: RedisServer) -> None:
    seed = 4
    report = await run_fleet_chaos(FleetChaosConfig(venue="binance", instances=4, redis_url=redis_server.url,
                                                    scenario="partial-disconnect", seed=seed, duration_s=5.0,
                                                    incidents=3))
    assert report["disconnects"] >= 3, (seed, report)
    assert report["journal_replays"] > 0, (seed, report["recoveries"])
    assert report["rest_snapshots_after_first_sync"] == 0, (seed, report["rest_snapshots_per_incident"])
    _consistent(report, seed)


async def test_ab_lines_one_line_killed_repeatedly_no_gap_reaches_the_served_book(redis_server: RedisServer) -> None:
    seed = 7
    report = await run_fleet_chaos(FleetChaosConfig(venue="binance", instances=2, redis_url=redis_server.url,
                                                    scenario="partial-disconnect", ab_lines=True, seed=seed,
                                                    duration_s=5.0, incidents=4))
    assert report["faults_injected"]["abort"] >= 4, report["faults_injected"]
    assert report["gaps"] >= 1, "the killed line missed ids"
    assert report["journal_replays"] >= 1, report["recoveries"]
    assert report["served_gaps"] == 0, (seed, report)
    assert report["rest_snapshots_after_first_sync"] == 0, (seed, report["rest_snapshots_per_incident"])
    _consistent(report, seed)


async def test_redis_killed_mid_run_the_fleet_stays_consistent(redis_server: RedisServer) -> None:
    seed = 9
    report = await run_fleet_chaos(FleetChaosConfig(venue="binance", instances=3, redis_url=redis_server.url,
                                                    scenario="partial-disconnect", seed=seed, duration_s=6.0,
                                                    incidents=4, midrun=redis_server.kill))
    assert report["coordinator_degraded"] >= 1, report
    _consistent(report, seed)


def test_unreachable_redis_is_a_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "chaos", "--venue", "binance", "--seed", "1",
                          "--instances", "2", "--redis", "redis://127.0.0.1:1/0", "--scenario", "outage", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "--redis" in out.stderr, out.stderr
    assert out.stdout == ""
