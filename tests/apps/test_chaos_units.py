"""Units of the chaos harness: the schedule, and a checker that can fail."""

from __future__ import annotations

import pytest

from bookkeeper.actions import SyncState
from bookkeeper.apps.chaos import ALL_FAULTS, ConsistencyChecker, build_schedule
from bookkeeper.io.stream import BookUpdate
from bookkeeper.sim import SimExchange


def test_schedule_is_seeded_and_covers_every_applicable_kind() -> None:
    a = build_schedule(9, ALL_FAULTS, ["binance"], window_s=20.0, rate_per_s=0.3)
    b = build_schedule(9, ALL_FAULTS, ["binance"], window_s=20.0, rate_per_s=0.3)
    assert a == b
    assert a != build_schedule(10, ALL_FAULTS, ["binance"], window_s=20.0, rate_per_s=0.3)
    kinds = {k for _, k, _ in a}
    # Binance sends no checksum, and its ids never restart nor its snapshots come unasked
    assert kinds == set(ALL_FAULTS) - {"corrupt_checksum", "service_restart", "resent_snapshot"}
    bybit = {k for _, k, _ in build_schedule(9, ALL_FAULTS, ["bybit"], window_s=20.0, rate_per_s=0.3)}
    assert {"resent_snapshot", "service_restart"} <= bybit  # the checker maps restarted ids back (truth_seq)
    times = [t for t, _, _ in a]
    assert times == sorted(times) and times[0] >= 1.0 and times[-1] <= 21.0


class _FakeFeed:
    def __init__(self, book: object) -> None:
        self._book = book

    def state(self, symbol: str) -> SyncState:
        return SyncState.SYNCED

    def book(self, symbol: str) -> object:
        return self._book


@pytest.mark.parametrize("corrupt", [False, True])
async def test_checker_compares_full_book_with_truth_and_can_fail(corrupt: bool) -> None:
    from bookkeeper.book import L2Book

    async with SimExchange(venues=("binance",), seed=4, paused=True) as sim:
        sim.push(updates=5)
        seq = sim.engine.seq("BTCUSDT")
        bids, asks = sim.engine.book_at("BTCUSDT", seq)
        book = L2Book()
        book.apply_snapshot(bids, asks)
        if corrupt:  # one deep level off by one lot: a top-of-book check would miss it
            p, q = bids[-1]
            book.apply_delta([(p, q + 1.0)], [])
        checker = ConsistencyChecker(sim, min_interval_s=0.0)
        ok = checker.check(_FakeFeed(book), "binance", BookUpdate(symbol="BTCUSDT", seq=seq, ts_recv_ns=0))  # type: ignore[arg-type]
        assert checker.checks == 1
        assert ok is (not corrupt)
        assert checker.mismatches == (1 if corrupt else 0)
