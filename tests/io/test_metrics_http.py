"""Prometheus metrics over real HTTP: names and labels, the scrape-time metrics, the feed's
``serve()`` and ``bookkeeper demo --metrics-port``."""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bookkeeper.actions import SyncState
from bookkeeper.io.metrics import FeedMetrics
from bookkeeper.policy import BreakerState

pytestmark = [pytest.mark.timeout(90), pytest.mark.realtime]

#: every family the issue lists, by its exposed name (counters end in _total)
FAMILIES = {
    "bookkeeper_disconnects": "counter",
    "bookkeeper_reconnect_attempts": "counter",
    "bookkeeper_reconnect_successes": "counter",
    "bookkeeper_reconnect_latency_seconds": "histogram",
    "bookkeeper_recoveries": "counter",
    "bookkeeper_snapshots": "counter",
    "bookkeeper_snapshots_avoided": "counter",
    "bookkeeper_message_gaps": "counter",
    "bookkeeper_missed_messages": "counter",
    "bookkeeper_time_to_consistent_seconds": "histogram",
    "bookkeeper_book_state": "gauge",
    "bookkeeper_last_message_age_seconds": "gauge",
    "bookkeeper_breaker_open": "gauge",
    "bookkeeper_breaker_state": "gauge",
    "bookkeeper_driver_errors": "counter",
    # fleet coordination ([fleet]; read at scrape time from the coordinator, link and journal)
    "bookkeeper_coordinator_degraded": "gauge",
    "bookkeeper_coordinator_degradations": "counter",
    "bookkeeper_shared_snapshots": "counter",
    "bookkeeper_budget_waits": "counter",
    "bookkeeper_budget_wait_seconds": "counter",
    "bookkeeper_journal_appends": "counter",
    "bookkeeper_journal_replays": "counter",
}


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape_typed(url: str) -> tuple[Samples, dict[str, str]]:
    """GET the endpoint and parse it: (sample name -> sorted labels -> value, family -> type)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples, types


def scrape(url: str) -> Samples:
    """The samples of one scrape."""
    return scrape_typed(url)[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@dataclass
class Stats:
    resumes: int = 0
    replays: int = 0
    resubscribes: int = 0
    rest_snapshots: int = 0
    halts: int = 0


@dataclass
class Session:
    stats: Stats = field(default_factory=Stats)


def test_every_listed_family_is_served_with_its_type() -> None:
    m = FeedMetrics()
    with m.serve(0) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics" and server.port > 0
        _, types = scrape_typed(server.url)
    assert types == FAMILIES


def test_counters_gauges_and_histograms_over_http() -> None:
    clock = FakeClock()
    m = FeedMetrics(clock=clock)
    # the driver's own calls (the attribute names it uses)
    m.disconnects.labels(exchange="binance", cause="abnormal_closure").inc()
    m.disconnects.labels(exchange="binance", channel="private", cause="auth_failed").inc(2)
    m.reconnect_attempts.labels(exchange="binance").inc(3)
    m.reconnected("binance", 0.25)
    m.gaps.labels(exchange="binance", symbol="BTCUSDT").inc()
    m.missed_messages.labels(exchange="binance", symbol="BTCUSDT").inc(7)
    m.snapshots.labels(exchange="binance", kind="rest").inc()
    m.snapshots_avoided.labels(exchange="binance", kind="resume").inc()
    m.breaker_open.labels(exchange="binance").set(1)
    m.driver_errors.labels(exchange="binance", where="decode").inc()
    m.set_state("binance", "BTCUSDT", SyncState.AWAITING_SNAPSHOT)
    clock.now = 1_000_000_000
    m.set_state("binance", "BTCUSDT", SyncState.SYNCED)  # first sync: not a recovery
    clock.now = 2_000_000_000
    m.set_state("binance", "BTCUSDT", SyncState.RECOVERING)
    clock.now = 3_500_000_000
    m.set_state("binance", "BTCUSDT", SyncState.SYNCED)  # back after 1.5 s
    with m.serve(0) as server:
        got = scrape(server.url)
    b = (("exchange", "binance"),)
    assert got["bookkeeper_disconnects_total"] == {
        (("cause", "abnormal_closure"), ("channel", "public"), ("exchange", "binance")): 1.0,
        (("cause", "auth_failed"), ("channel", "private"), ("exchange", "binance")): 2.0,
    }
    assert got["bookkeeper_reconnect_attempts_total"] == {b: 3.0}
    assert got["bookkeeper_reconnect_successes_total"] == {b: 1.0}
    assert got["bookkeeper_reconnect_latency_seconds_count"] == {b: 1.0}
    assert got["bookkeeper_reconnect_latency_seconds_sum"] == {b: 0.25}
    assert got["bookkeeper_reconnect_latency_seconds_bucket"][(*b, ("le", "0.25"))] == 1.0
    assert got["bookkeeper_reconnect_latency_seconds_bucket"][(*b, ("le", "0.1"))] == 0.0
    assert got["bookkeeper_message_gaps_total"] == {(*b, ("symbol", "BTCUSDT")): 1.0}
    assert got["bookkeeper_missed_messages_total"] == {(*b, ("symbol", "BTCUSDT")): 7.0}
    assert got["bookkeeper_snapshots_total"] == {(*b, ("kind", "rest")): 1.0}
    assert got["bookkeeper_snapshots_avoided_total"] == {(*b, ("kind", "resume")): 1.0}
    assert got["bookkeeper_breaker_open"] == {b: 1.0}
    assert got["bookkeeper_driver_errors_total"] == {(*b, ("where", "decode")): 1.0}
    assert got["bookkeeper_book_state"] == {(*b, ("symbol", "BTCUSDT")): 2.0}
    assert got["bookkeeper_time_to_consistent_seconds_count"] == {b: 1.0}
    assert got["bookkeeper_time_to_consistent_seconds_sum"] == {b: 1.5}
    # value() keeps the old two-label reads working (summing over channel)
    assert m.value("bookkeeper_disconnects_total", exchange="binance") == 3.0
    assert m.value("bookkeeper_disconnects_total", exchange="binance", cause="abnormal_closure") == 1.0
    assert m.value("bookkeeper_disconnects_total", exchange="okx") is None


def test_scrape_time_metrics_read_the_watched_feed() -> None:
    clock = FakeClock()
    m = FeedMetrics(clock=clock)
    sessions = {"BTCUSDT": Session(), "ETHUSDT": Session()}
    last = {"BTCUSDT": 1_000_000_000}
    breaker = [BreakerState.CLOSED]
    m.watch("okx", sessions, last_data_ns=last.get, breaker=lambda: breaker[0])
    sessions["BTCUSDT"].stats.resumes = 2
    sessions["ETHUSDT"].stats.resumes = 1
    sessions["ETHUSDT"].stats.rest_snapshots = 4
    clock.now = 3_500_000_000
    breaker[0] = BreakerState.HALF_OPEN
    with m.serve(0) as server:
        got = scrape(server.url)
    o = ("exchange", "okx")
    assert got["bookkeeper_recoveries_total"] == {
        (o, ("rung", "resume")): 3.0, (o, ("rung", "replay_deltas")): 0.0, (o, ("rung", "ws_snapshot")): 0.0,
        (o, ("rung", "rest_snapshot")): 4.0, (o, ("rung", "halt")): 0.0}
    # ETHUSDT never got data: no age rather than a made-up one
    assert got["bookkeeper_last_message_age_seconds"] == {(o, ("symbol", "BTCUSDT")): 2.5}
    assert got["bookkeeper_breaker_state"] == {
        (o, ("state", "closed")): 0.0, (o, ("state", "open")): 0.0, (o, ("state", "half_open")): 1.0}


def test_serve_binds_loopback_and_close_releases_the_port() -> None:
    m = FeedMetrics()
    server = m.serve(0)
    port = server.port
    server.close()
    server.close()  # idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


def test_serve_on_a_busy_port_raises_oserror() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            FeedMetrics().serve(s.getsockname()[1])


def test_metrics_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        out = subprocess.run([sys.executable, "-m", "bookkeeper.cli", "chaos", "--venue", "binance", "--seed", "1",
                              "--duration", "1", "--metrics-port", str(s.getsockname()[1])],
                             check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "argument --metrics-port: cannot listen on 127.0.0.1:" in out.stderr
    assert "Traceback" not in out.stderr


def _stderr_line(proc: subprocess.Popen[str], needle: str, timeout_s: float = 30.0) -> str:
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    while sel.select(timeout_s):
        line = proc.stderr.readline()
        if not line:
            break
        if needle in line:
            return line
    raise AssertionError(f"no {needle!r} on stderr")


def test_demo_metrics_port_zero_prints_the_port_and_serves_while_running() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bookkeeper.cli", "demo", "--duration", "4", "--seed", "2",
                             "--json", "--metrics-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = _stderr_line(proc, "metrics on http://127.0.0.1:")
        url = line.split("metrics on ", 1)[1].strip()
        _, types = scrape_typed(url)  # the server is up before the line is printed
        assert types == FAMILIES
        stdout, stderr = proc.communicate(timeout=80)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = json.loads(stdout)
    assert proc.returncode == 0, stderr[-2000:]
    assert report["venues"] == ["binance", "okx", "kraken"]
    with pytest.raises(OSError):  # closed with the run
        urllib.request.urlopen(url, timeout=5)
