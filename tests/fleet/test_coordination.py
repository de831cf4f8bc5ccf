"""The fleet's decisions (pure, fake time) and its in-process side; then the Redis side against
a real redis-server (token bucket equal to the pure one, fencing, journal ids, trimming,
provable ranges, degradation when Redis is absent)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import RateLimit, SequenceModel
from bookkeeper.coordination import (
    LockTable,
    TokenBucket,
    check_journal_range,
    journal_entry_id,
    journal_min_seq,
    snapshot_weight,
)
from bookkeeper.errors import InvalidEvent
from bookkeeper.events import BookDelta, BookSnapshot, SnapshotSource
from bookkeeper.io.coord import FleetConfig, FleetLink, InProcessCoordinator, RedisCoordinator, SnapshotOrigin
from bookkeeper.io.journal import MemoryJournal, RedisJournal
from bookkeeper.testing.clock import FakeClock

from conftest import RedisServer

BINANCE = get_adapter("binance")
S = 1_000_000_000


def d(first: int, last: int, prev: int | None = None, sym: str = "BTCUSDT") -> BookDelta:
    return BookDelta(symbol=sym, bids=[(100.0, float(last))], asks=[], first_seq=first, last_seq=last, prev_seq=prev)


# ------------------------------------------------------------------ token bucket (pure)
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.floats(0.1, 10.0), st.floats(0.1, 1.0),
       st.lists(st.integers(0, 3 * S), min_size=1, max_size=300))
def test_bucket_never_grants_more_than_the_limit_in_any_window(count: int, window_s: float, burst: float,
                                                                times: list[int]) -> None:
    limit = RateLimit(count=count, window_s=window_s)
    b = TokenBucket.for_limit(limit, now_ns=0, burst_fraction=burst)
    n = min(1.0, b.capacity)
    grants = [t for t in sorted(times) if b.take(n, now_ns=t) == 0.0]
    w = int(window_s * S)
    for i, start in enumerate(grants):
        assert sum(1 for t in grants[i:] if t < start + w) * n <= count + 1e-9


def test_bucket_refusal_says_how_long_and_takes_nothing() -> None:
    b = TokenBucket.for_limit(RateLimit(count=10, window_s=10.0), now_ns=0)  # capacity 5, 0.5/s
    assert [b.take(1, now_ns=0) for _ in range(5)] == [0.0] * 5
    assert b.take(1, now_ns=0) == pytest.approx(2.0)
    assert b.take(1, now_ns=S) == pytest.approx(1.0)  # half a token came back, none taken
    assert b.take(1, now_ns=2 * S) == 0.0
    with pytest.raises(InvalidEvent):
        b.take(6, now_ns=2 * S)


def test_snapshot_weights_come_from_the_adapter() -> None:
    caps = BINANCE.capabilities
    assert caps.connect_limit == RateLimit(count=300, window_s=300.0)
    assert caps.rest_weight_limit == RateLimit(count=6000, window_s=60.0)
    assert [snapshot_weight(caps, x) for x in (5, 100, 101, 1000, 5000, None)] == [5, 5, 25, 50, 250, 50]


# ------------------------------------------------------------------ leases (pure)
def test_lease_expires_and_fencing_refuses_the_stale_holder() -> None:
    t = LockTable()
    a = t.acquire("k", owner="a", ttl_ns=10, now_ns=0)
    assert a is not None and t.acquire("k", owner="b", ttl_ns=10, now_ns=9) is None
    b = t.acquire("k", owner="b", ttl_ns=10, now_ns=10)
    assert b is not None and b.fence > a.fence
    assert not t.release(a, now_ns=11), "an expired holder cannot release its successor's lease"
    assert t.holder("k", now_ns=11) == b and t.release(b, now_ns=11)
    assert t.acquire("k", owner="c", ttl_ns=10, now_ns=11) is not None


# ------------------------------------------------------------------ journal ids and ranges (pure)
def test_journal_ids_derive_from_last_seq() -> None:
    assert journal_entry_id(d(5, 9)) == "9-0" and journal_entry_id(d(0, 0)) == "0-1"
    with pytest.raises(InvalidEvent):
        journal_entry_id(BookDelta(symbol="X", bids=[], asks=[]))
    assert journal_min_seq(1000, 100) == 901 and journal_min_seq(5, 100) == 0


CR, PP = SequenceModel.CONTIGUOUS_RANGE, SequenceModel.PREV_POINTER


@pytest.mark.parametrize(("entries", "frm", "to", "want"), [
    ([d(5, 6), d(7, 9), d(10, 12)], 7, 11, [9, 12]),  # whole
    ([d(5, 6), d(7, 9), d(7, 9), d(10, 12)], 7, 12, [9, 12]),  # a duplicate is skipped
    ([d(6, 8), d(9, 12)], 7, 12, [8, 12]),  # overlap at the start (first_seq <= from_seq)
    ([d(8, 9), d(10, 12)], 7, 12, None),  # trimmed start: 7 is not held
    ([d(7, 8), d(11, 12)], 7, 12, None),  # a hole 9..10 (a writer was down)
    ([d(7, 8)], 7, 12, None),  # not reached yet
    ([], 7, None, None),  # nothing held
    ([d(7, 8), d(9, 9)], 7, None, [8, 9]),  # open end: whatever chains
])
def test_journal_range_is_served_only_when_provably_whole(entries: list[BookDelta], frm: int, to: int | None,
                                                           want: list[int] | None) -> None:
    got = check_journal_range(entries, model=CR, from_seq=frm, to_seq=to)
    assert (None if got is None else [x.last_seq for x in got]) == want


def test_journal_range_pointer_model_and_venues_without_ids() -> None:
    chain = [d(0, 20, prev=10), d(0, 35, prev=20), d(0, 50, prev=35)]
    assert [x.last_seq for x in check_journal_range(chain, model=PP, from_seq=11, to_seq=35) or []] == [20, 35]
    assert check_journal_range(chain[1:], model=PP, from_seq=11, to_seq=35) is None
    assert check_journal_range(chain, model=SequenceModel.MONOTONIC_ONLY, from_seq=11, to_seq=35) is None


async def test_memory_journal_dedupes_trims_and_serves() -> None:
    j = MemoryJournal(window=10)
    j.attach(BINANCE)
    for seq in range(1, 31):
        j.append(d(seq, seq))
        j.append(d(seq, seq))  # a second writer
    assert j.stats.written == 30 and j.stats.duplicates == 30
    assert j.seqs("BTCUSDT") == list(range(21, 31))
    assert [x.last_seq for x in await j.fetch("BTCUSDT", 25, 28) or []] == [25, 26, 27, 28]
    assert await j.fetch("BTCUSDT", 15, 28) is None  # trimmed away
    assert j.stats.served == 1 and j.stats.refused == 1


# ------------------------------------------------------------------ in-process coordinator
def snap(seq: int) -> BookSnapshot:
    return BookSnapshot(symbol="BTCUSDT", bids=[(99.0, 1.0)], asks=[(101.0, 1.0)], seq=seq, source=SnapshotSource.REST)


async def test_one_fetch_for_two_instances_the_waiter_gets_the_holders_snapshot() -> None:
    co = InProcessCoordinator()
    a, b = (FleetLink(co, caps=BINANCE.capabilities) for _ in range(2))
    release = asyncio.Event()
    calls: list[str] = []

    async def fetch(who: str) -> BookSnapshot:
        calls.append(who)
        await release.wait()
        return snap(42)

    ta = asyncio.ensure_future(a.snapshot("BTCUSDT", lambda: fetch("a")))
    await asyncio.sleep(0)  # let a take the lease (a single loop turn, not a timed wait)
    tb = asyncio.ensure_future(b.snapshot("BTCUSDT", lambda: fetch("b")))
    await asyncio.sleep(0)
    release.set()
    (sa, oa), (sb, ob) = await ta, await tb
    assert calls == ["a"] and (oa, ob) == (SnapshotOrigin.FETCHED, SnapshotOrigin.SHARED)
    assert sa == sb == snap(42)


async def test_a_dead_holder_costs_a_waiter_its_wait_then_it_fetches_its_own() -> None:
    clock = FakeClock()
    co = InProcessCoordinator(clock=clock)
    cfg = FleetConfig(snapshot_wait_s=0.01, lock_ttl_s=1.0)
    dead = await co.acquire("binance", "snapshot:BTCUSDT", ttl_s=1.0)  # a holder that then died
    assert dead is not None
    b = FleetLink(co, caps=BINANCE.capabilities, config=cfg)

    async def fetch() -> BookSnapshot:
        return snap(7)

    got, origin = await b.snapshot("BTCUSDT", fetch)  # waits snapshot_wait_s in vain, never longer
    assert origin == SnapshotOrigin.FALLBACK and got == snap(7)
    assert await co.snapshot_version("binance", "BTCUSDT") == 0, "not the lease holder: nothing published"
    clock.advance(1.0)  # the dead holder's lease expires: the next fetch holds it and publishes
    got, origin = await b.snapshot("BTCUSDT", fetch)
    assert origin == SnapshotOrigin.FETCHED and await co.snapshot_version("binance", "BTCUSDT") == 1


async def test_budget_waits_on_the_injected_sleep_and_never_overspends() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        clock.advance(s)

    link = FleetLink(InProcessCoordinator(clock=clock), caps=BINANCE.capabilities, sleep=sleep)
    limit = RateLimit(count=4, window_s=2.0)  # capacity 2, 1 token/s
    waited = [await link.spend("connect", 1, limit) for _ in range(5)]
    assert waited == [0.0, 0.0, 1.0, 1.0, 1.0] and slept == [1.0, 1.0, 1.0]
    assert link.stats.budget_waits == {"connect": 3}


# ------------------------------------------------------------------ the Redis side
redis = pytest.importorskip("redis")


async def test_redis_bucket_matches_the_pure_arithmetic(redis_server: RedisServer) -> None:
    co = RedisCoordinator(redis_server.url, op_timeout_s=2.0)
    limit = RateLimit(count=10, window_s=1000.0)  # refill is negligible while the test runs
    grants = [await co.take("binance", "t:connect", 1, limit=limit) for _ in range(7)]
    assert grants[:5] == [0.0] * 5
    assert grants[5] == pytest.approx(200.0, rel=0.01) and grants[6] == pytest.approx(200.0, rel=0.01)
    await co.close()


async def test_redis_leases_fence_and_only_the_owner_releases(redis_server: RedisServer) -> None:
    co = RedisCoordinator(redis_server.url, op_timeout_s=2.0)
    a = await co.acquire("binance", "snapshot:X", ttl_s=5.0)
    assert a is not None and await co.acquire("binance", "snapshot:X", ttl_s=5.0) is None
    assert await co.release("binance", a) and not await co.release("binance", a)
    b = await co.acquire("binance", "snapshot:X", ttl_s=5.0)
    assert b is not None and b.fence == a.fence + 1
    assert await co.client.get("bookkeeper:{binance}:lock:snapshot:X") == f"{b.owner}|{b.fence}".encode()
    assert await co.publish_snapshot("binance", "X", b"payload", ttl_s=5.0) == 1
    shared = await co.await_snapshot("binance", "X", after_version=0, timeout_s=0)
    assert shared is not None and shared.payload == b"payload"
    await co.close()


async def test_redis_journal_trims_to_its_window_and_refuses_holes(redis_server: RedisServer) -> None:
    j = RedisJournal(redis_server.url, window=50, approximate_trim=False, fetch_wait_s=0.05, op_timeout_s=2.0)
    j.attach(BINANCE)
    for seq in [*range(1, 101), *range(120, 131)]:  # 101..119 never written (every writer was down)
        j.append(d(seq, seq))
    await j.flush()
    key = j.key("BTCUSDT")
    ids = [i.decode() for i, _ in await j.client.xrange(key)]
    assert ids[0] == "81-0" and ids[-1] == "130-0", "MINID keeps the last `window` ids"
    assert [x.last_seq for x in await j.fetch("BTCUSDT", 90, 95) or []] == [90, 91, 92, 93, 94, 95]
    assert await j.fetch("BTCUSDT", 95, 125) is None  # a hole
    assert await j.fetch("BTCUSDT", 10, 20) is None  # trimmed
    assert await j.fetch("BTCUSDT", 128, 140) is None  # not reached within fetch_wait_s
    assert j.stats.served == 1 and j.stats.refused == 3
    await j.close()


async def test_no_redis_at_start_degrades_without_blocking_or_raising() -> None:
    url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    co = RedisCoordinator(url, op_timeout_s=0.1)
    j = RedisJournal(url, op_timeout_s=0.1)
    j.attach(BINANCE)
    async with asyncio.timeout(2.0):
        lease = await co.acquire("binance", "snapshot:X", ttl_s=1.0)
        assert lease is not None  # the in-process fallback answered
        assert await co.take("binance", "t:connect", 1, limit=RateLimit(count=10, window_s=1.0)) == 0.0
        assert await co.release("binance", lease)
        j.append(d(1, 1))
        await j.flush()
        assert await j.fetch("BTCUSDT", 1, 1) is None
    assert co.status().degraded and co.status().degradations == 1
    assert j.stats.degraded and j.stats.failed == 1
    await j.close()
    await co.close()



# ---------------------------------------------------------------------------------- A/B lines, roll-forward
def test_arbiter_serves_the_line_furthest_ahead_and_never_moves_back() -> None:
    from bookkeeper.coordination import LineArbiter

    a = LineArbiter()
    assert a.choose("X", [(True, 5), (True, 4)]).line == 0
    assert a.choose("X", [(True, 5), (True, 6)]).line == 1  # overtaken: not a failover
    assert a.failovers == 0 and a.switches == 1
    held = a.choose("X", [(True, 5), (False, 6)])  # B dropped, A behind the mark
    assert held.line is None and held.hold
    c = a.choose("X", [(True, 6), (False, 6)])
    assert c.line == 0 and c.failover and a.failovers == 1
    assert a.choose("X", [(False, 6), (False, 6)]).outage and a.outages == 1
    assert a.choose("X", [(False, 6), (True, 9)]).failover


def test_arbiter_follows_the_served_line_through_an_id_restart() -> None:
    from bookkeeper.coordination import LineArbiter

    a = LineArbiter()
    a.choose("X", [(True, 100), (False, None)])
    assert a.choose("X", [(True, 3), (False, None)]).line == 0 and a.mark("X") == 3


def test_roll_forward_equals_applying_every_delta() -> None:
    from bookkeeper.coordination import roll_forward
    from bookkeeper.events import BookSnapshot

    snap = BookSnapshot(symbol="X", bids=[(10.0, 1.0), (9.0, 2.0)], asks=[(11.0, 1.0)], seq=10)
    deltas = [BookDelta(symbol="X", bids=[(10.0, 0.0)], asks=[(12.0, 3.0)], first_seq=11, last_seq=12),
              BookDelta(symbol="X", bids=[(9.5, 1.0)], asks=[(11.0, 0.0)], first_seq=13, last_seq=13)]
    out = roll_forward(snap, deltas)
    assert out.seq == 13 and out.bids == [(9.5, 1.0), (9.0, 2.0)] and out.asks == [(12.0, 3.0)]
    with pytest.raises(InvalidEvent):
        roll_forward(snap, [BookDelta(symbol="X", bids=[], asks=[], first_seq=5, last_seq=9)])


async def test_journal_chain_asks_each_member_in_turn() -> None:
    from bookkeeper.adapters import get_adapter
    from bookkeeper.io.journal import JournalChain, MemoryJournal

    first, second = MemoryJournal(), MemoryJournal()
    chain = JournalChain(first, second)
    chain.attach(get_adapter("binance"))
    for s in range(1, 6):
        second.append(BookDelta(symbol="X", bids=[(1.0, float(s))], asks=[], first_seq=s, last_seq=s))
    chain.append(BookDelta(symbol="X", bids=[], asks=[], first_seq=6, last_seq=6))
    assert first.seqs("X") == [6] and second.seqs("X") == [1, 2, 3, 4, 5, 6]
    got = await chain.fetch("X", 2, 4)
    assert got is not None and [d.last_seq for d in got] == [2, 3, 4]
    assert await chain.fetch("X", 7, 9) is None
