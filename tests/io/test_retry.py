"""One retry decision (``is_retryable``) for reconnects, REST snapshots and journal reads."""

from __future__ import annotations

import pytest
from io_support import FakeBinance, ManualSleep, Probe
from test_driver import BTC, TS0, Rig, record

from bookkeeper.actions import SyncState
from bookkeeper.errors import (
    AdapterError,
    ConnectionLost,
    ExchangeRejected,
    InvalidState,
    RateLimited,
    RequestTimeout,
)
from bookkeeper.io.retry import is_retryable
from bookkeeper.policy import BreakerState


@pytest.mark.parametrize(("exc", "retryable"), [
    (ConnectionLost("1006"), True),
    (RequestTimeout("slow"), True),
    (RateLimited("429", retry_after_s=2.0), True),
    (ExchangeRejected("bad key", ccxt_class="AuthenticationError"), False),
    (AdapterError("bad body", exchange="binance"), False),
    (KeyError("lastUpdateId"), False),
    (RuntimeError("bug"), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_only_transport_errors_are_retried(exc: Exception, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


@pytest.fixture
def probe() -> Probe:
    return Probe()


async def test_refused_handshake_is_not_retried_the_breaker_cools_down_then_probes(probe: Probe) -> None:
    # The rule changed on purpose: a 401 on the upgrade (ExchangeRejected) used to be retried
    # like a network failure (delays 1 s, 2 s, then the breaker); now the episode stops at once
    # and the breaker's cool-down is the only wait before one probe.
    async with FakeBinance(probe) as server:
        rig = Rig(server, probe, manual=True)
        sleep: ManualSleep = rig.sleep
        await rig.sync(BTC)
        server.reject_all = (401, {})
        server.abort()
        await probe.until(lambda: sleep.sleeping == 1, "breaker cool-down")
        assert sleep.delays == [30.0]
        assert server.handshakes == 2, "one refused attempt, no retry"
        assert rig.feed.breaker_state is BreakerState.OPEN
        assert rig.feed.state(BTC) is SyncState.HALTED
        with pytest.raises(InvalidState):
            rig.feed.book(BTC)
        assert rig.records == [
            record(ts=TS0, close_code=401, close_cause="auth_failed", reconnect_attempt=1, reconnect_success=False,
                   reconnect_latency_ms=None, plan=[]),
            record(reconnect_attempt=1, reconnect_success=False, reconnect_latency_ms=None, plan=["halt"]),
        ]
        server.reject_all = None  # the key was fixed: the probe connects
        sleep.advance(30.0)
        await rig.reconnected(2)
        await server.push(BTC)
        await rig.caught_up()
        assert rig.feed.breaker_state is BreakerState.CLOSED
        rig.assert_book_is_truth()
        await rig.feed.close()
