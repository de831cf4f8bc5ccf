"""Pure policy tests: no clock, no sleeps, no I/O. Seeds are in assertion messages."""

from __future__ import annotations

import random

import pytest

from bookkeeper.policy import (
    BackoffPolicy,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Keepalive,
    KeepaliveDecision,
    KeepalivePolicy,
    parse_retry_after,
)

S = 1_000_000_000


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    p = BackoffPolicy(base_s=1.5, cap_s=30.0, jitter=0.0)
    assert [p.delay_s(n, rand=0.123) for n in range(1, 8)] == [1.5, 3.0, 6.0, 12.0, 24.0, 30.0, 30.0]


@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_backoff_equal_jitter_stays_within_half_and_full_delay(seed: int) -> None:
    rng = random.Random(seed)
    p = BackoffPolicy(base_s=1.0, cap_s=60.0, jitter=0.5)
    for n in range(1, 12):
        exp = min(60.0, 2.0 ** (n - 1))
        d = p.delay_s(n, rand=rng.random())
        assert exp / 2 <= d <= exp, f"seed={seed} attempt={n} delay={d}"


def test_backoff_jitter_bounds_are_exact_at_the_extremes() -> None:
    p = BackoffPolicy(base_s=2.0, cap_s=40.0, jitter=0.5)
    assert p.delay_s(3, rand=0.0) == 4.0
    assert p.delay_s(3, rand=1.0) == 8.0
    assert p.delay_s(30, rand=1.0) == 40.0  # the cap holds for huge attempt numbers
    assert p.delay_s(10_000, rand=0.0) == 20.0


def test_retry_after_is_a_floor_and_is_not_capped() -> None:
    p = BackoffPolicy(base_s=1.0, cap_s=30.0, jitter=0.0)
    assert p.delay_s(1, rand=0.0, retry_after_s=7.0) == 7.0
    assert p.delay_s(5, rand=0.0, retry_after_s=7.0) == 16.0  # already longer
    assert p.delay_s(1, rand=0.0, retry_after_s=120.0) == 120.0  # the venue's word beats the cap


def test_initial_delay_is_bounded_by_first_delay() -> None:
    p = BackoffPolicy(first_delay_s=0.5)
    assert p.initial_delay_s(rand=0.0) == 0.0
    assert p.initial_delay_s(rand=0.5) == 0.25


@pytest.mark.parametrize("kw", [dict(base_s=0.0), dict(base_s=5.0, cap_s=1.0), dict(jitter=1.5),
                                dict(max_attempts=0), dict(multiplier=0.5)])
def test_backoff_rejects_nonsense(kw: dict) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kw)


@pytest.mark.parametrize(("text", "now_s", "expected"), [
    ("7", 0.0, 7.0),
    (" 2.5 ", 0.0, 2.5),
    ("-3", 0.0, 0.0),
    ("Thu, 01 Jan 1970 00:01:00 GMT", 15.0, 45.0),
    ("Thu, 01 Jan 1970 00:00:10 GMT", 15.0, 0.0),  # in the past
    ("later", 0.0, None),
    (None, 0.0, None),
])
def test_parse_retry_after(text: str | None, now_s: float, expected: float | None) -> None:
    assert parse_retry_after(text, now_s=now_s) == expected


def test_breaker_opens_on_n_failures_within_window_only() -> None:
    b = CircuitBreaker(BreakerPolicy(max_failures=3, window_s=60.0, cooldown_s=10.0))
    assert b.record_failure(0) is BreakerState.CLOSED
    assert b.record_failure(30 * S) is BreakerState.CLOSED
    assert b.record_failure(61 * S) is BreakerState.CLOSED  # the first one fell out of the window
    assert b.record_failure(62 * S) is BreakerState.OPEN
    assert b.opens == 1
    assert not b.allow_attempt(62 * S)
    assert b.cooldown_remaining_s(65 * S) == 7.0


def test_breaker_half_open_probe_success_closes_and_forgets() -> None:
    b = CircuitBreaker(BreakerPolicy(max_failures=2, window_s=60.0, cooldown_s=10.0))
    b.record_failure(0)
    b.record_failure(1 * S)
    assert b.state_at(10 * S) is BreakerState.OPEN
    assert b.state_at(11 * S) is BreakerState.HALF_OPEN
    assert b.allow_attempt(11 * S)
    assert b.record_success(12 * S) is BreakerState.CLOSED
    assert b.record_failure(13 * S) is BreakerState.CLOSED  # old failures were forgotten


def test_breaker_failed_probe_reopens_for_a_full_cooldown() -> None:
    b = CircuitBreaker(BreakerPolicy(max_failures=1, window_s=60.0, cooldown_s=10.0))
    assert b.record_failure(0) is BreakerState.OPEN
    assert b.record_failure(5 * S) is BreakerState.OPEN  # while open, failures change nothing
    assert b.state_at(10 * S) is BreakerState.HALF_OPEN
    assert b.record_failure(10 * S) is BreakerState.OPEN
    assert b.cooldown_remaining_s(10 * S) == 10.0
    assert b.opens == 2


def test_breaker_success_while_closed_keeps_the_window() -> None:
    b = CircuitBreaker(BreakerPolicy(max_failures=2, window_s=60.0, cooldown_s=10.0))
    b.record_failure(0)
    b.record_success(1 * S)  # a flapping connection that delivers data between drops
    assert b.record_failure(2 * S) is BreakerState.OPEN


def test_breaker_trip_opens_from_closed_and_half_open() -> None:
    b = CircuitBreaker(BreakerPolicy(max_failures=5, window_s=60.0, cooldown_s=10.0))
    assert b.trip(0) is BreakerState.OPEN
    assert b.trip(1 * S) is BreakerState.OPEN and b.opens == 1
    assert b.state_at(10 * S) is BreakerState.HALF_OPEN
    assert b.trip(10 * S) is BreakerState.OPEN and b.opens == 2


def test_keepalive_pings_when_nothing_arrived_then_times_out() -> None:
    k = Keepalive(KeepalivePolicy(ping_interval_s=10.0, pong_timeout_s=5.0, idle_timeout_s=None), now_ns=0)
    assert k.next_check_ns(0) == 10 * S
    k.on_frame(4 * S)  # any frame resets the ping timer (OKX: "reset a timer on every message")
    assert k.check(13 * S) is KeepaliveDecision.NOTHING
    assert k.check(14 * S) is KeepaliveDecision.SEND_PING
    k.on_ping_sent(14 * S)
    assert k.awaiting_pong and k.next_check_ns(14 * S) == 19 * S
    assert k.check(18 * S) is KeepaliveDecision.NOTHING  # no second ping while one is pending
    assert k.check(19 * S) is KeepaliveDecision.PING_TIMEOUT


def test_keepalive_pong_clears_the_pending_ping() -> None:
    k = Keepalive(KeepalivePolicy(ping_interval_s=10.0, pong_timeout_s=5.0, idle_timeout_s=None), now_ns=0)
    k.on_ping_sent(10 * S)
    k.on_frame(12 * S)  # the pong
    assert not k.awaiting_pong
    assert k.check(16 * S) is KeepaliveDecision.NOTHING
    assert k.next_check_ns(16 * S) == 22 * S


def test_keepalive_pings_and_heartbeats_are_not_data() -> None:
    k = Keepalive(KeepalivePolicy(ping_interval_s=5.0, pong_timeout_s=5.0, idle_timeout_s=30.0), now_ns=0)
    k.on_data(1 * S)
    for t in range(5, 31, 5):
        k.on_frame(t * S)  # heartbeats and pongs keep arriving
    assert k.check(30 * S) is KeepaliveDecision.NOTHING
    assert k.check(31 * S) is KeepaliveDecision.IDLE_TIMEOUT
    assert k.last_data_ns == 1 * S


def test_keepalive_disabled_never_fires() -> None:
    k = Keepalive(KeepalivePolicy(ping_interval_s=None, pong_timeout_s=None, idle_timeout_s=None), now_ns=0)
    assert k.next_check_ns(0) is None
    assert k.check(10**6 * S) is KeepaliveDecision.NOTHING
