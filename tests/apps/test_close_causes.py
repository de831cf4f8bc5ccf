"""Each injected fault yields the disconnect record whose close_cause names it.

Real sockets on 127.0.0.1: the simulator injects the fault, the real Feed (real ccxt for REST)
notices it, and the record it writes is compared with what was injected.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bookkeeper.io.feed import Feed
from bookkeeper.io.records import RecordWriter
from bookkeeper.io.stream import DriverConfig
from bookkeeper.policy import BackoffPolicy, BreakerPolicy, KeepalivePolicy
from bookkeeper.sim import SimExchange

pytestmark = [pytest.mark.timeout(60), pytest.mark.realtime]


class _Records(list):  # type: ignore[type-arg]
    """A record sink that wakes waiters on every append."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.changed.set()

    async def first(self, pred: Any, timeout: float = 20.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                for r in self:
                    if pred(r):
                        return r
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)


def _config() -> DriverConfig:
    return DriverConfig(
        backoff=BackoffPolicy(base_s=0.2, cap_s=1.0, max_attempts=8, first_delay_s=0.05),
        breaker=BreakerPolicy(max_failures=50, window_s=60.0, cooldown_s=1.0),
        keepalive=KeepalivePolicy(ping_interval_s=0.5, pong_timeout_s=0.5, idle_timeout_s=5.0),
        startup_jitter_s=0.0,
        bot_instance_id="close-cause-test",
    )


CASES = [
    # (venue, fault, how to inject, expected close_cause, expected close_code or None to skip)
    ("binance", "abort", "live", "abnormal_closure", 1006),
    ("okx", "abort", "live", "abnormal_closure", 1006),
    ("kraken", "abort", "live", "abnormal_closure", 1006),
    ("binance", "close_1001", "live", "server_close", 1001),
    ("okx", "close_1000", "live", "server_close", 1000),
    ("binance", "stall", "live", {"ping_timeout", "idle_timeout"}, None),
    ("okx", "stall", "live", {"ping_timeout", "idle_timeout"}, None),
    ("binance", "http_429", "connect", "rate_limited", 429),
    ("kraken", "http_418", "connect", "rate_limited", 418),
    ("okx", "conn_limit", "connect", "rate_limited", 429),
    ("binance", "refuse", "connect", "tcp_error", None),
]


@pytest.mark.parametrize(("venue", "fault", "how", "cause", "code"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
async def test_record_names_the_injected_fault(venue: str, fault: str, how: str, cause: Any, code: int | None) -> None:
    records = _Records()
    async with SimExchange(venues=(venue,), seed=21, push_interval_s=0.05) as sim:
        symbols = list(sim.servers[venue].specs)
        feed = Feed(venue, symbols, ws_url=sim.urls(venue)["ws_root"], rest_config=sim.ccxt_config(venue),
                    config=_config(), records=RecordWriter(sink=records), seed=3)
        async with feed:
            for s in symbols:
                await feed.wait_synced(s, timeout=15)
            if how == "live":
                assert await sim.inject(fault, venue) >= 1
            elif fault == "conn_limit":
                await sim.inject("conn_limit", venue, max=0)
                await sim.inject("abort", venue)
            else:
                await sim.inject(fault, venue, retry_after_s=1)
                await sim.inject("abort", venue)
            causes = {cause} if isinstance(cause, str) else cause
            record = await records.first(lambda r: r["close_cause"] in causes)
            if code is not None:
                assert record["close_code"] == code, record
            assert record["exchange"] == venue and record["channel"] == "public"
            assert sim.faults_injected[fault] >= 1
            if fault == "conn_limit":
                await sim.inject("conn_limit", venue, max=None)
            if how == "connect" and fault in ("http_429", "http_418"):
                # Retry-After is honoured: the next attempt comes no sooner than it allows
                ok = await records.first(lambda r: r["reconnect_success"] is True and r["close_cause"] == "abnormal_closure")
                assert ok["reconnect_latency_ms"] >= 1000, ok
            for s in symbols:  # and the books come back
                await feed.wait_synced(s, timeout=15)
