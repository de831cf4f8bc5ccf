"""AccountFeed against the simulator's Coinbase account: real sockets, real ccxt (JWT-signed
REST), a real SQLite store. The user channel carries orders only, so every fill reaches the
ledger over REST; a user frame lost on the wire shows as a ``sequence_num`` jump and is replayed
(``STREAM_GAP``). Each test ends comparing the ledger with the truth exactly (fills by id and
content, nothing duplicated, balances)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bookkeeper.account_session import AccountPolicy
from bookkeeper.actions import AccountState
from bookkeeper.apps.account_chaos import FAILURE_KEYS, compare_to_truth, matches_truth
from bookkeeper.io.account import AccountFeed
from bookkeeper.policy import BackoffPolicy, BreakerPolicy
from bookkeeper.sim import FaultKind, SimConfig, SimExchange

pytestmark = pytest.mark.realtime
TIMEOUT = 15.0
VENUE = "coinbase"


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    cfg = SimConfig(account_fill_rate_per_s=0.0, account_history_retention_s=60.0)
    async with SimExchange(venues=(VENUE,), accounts=(VENUE,), seed=5, config=cfg, paused=True) as s:
        yield s


@pytest.fixture
async def feed(sim: SimExchange, tmp_path: Path) -> AsyncIterator[AccountFeed]:
    acct = sim.account(VENUE)
    f = AccountFeed(VENUE, list(acct.instruments), credentials=acct.credentials, store=tmp_path / "acct.sqlite3",
                    ws_root=sim.urls(VENUE)["ws_root"], rest_config=sim.ccxt_config(VENUE),
                    policy=AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5),
                    backoff=BackoffPolicy(base_s=0.1, cap_s=0.5, max_attempts=6, first_delay_s=0.05),
                    breaker=BreakerPolicy(max_failures=20, window_s=60, cooldown_s=0.5),
                    records_path=tmp_path / "records.jsonl")
    async with f:
        await f.wait_synced(timeout=TIMEOUT)
        yield f


def _result(feed: AccountFeed, sim: SimExchange) -> dict:
    return compare_to_truth(feed.durable.ledger, feed.account, sim.account(VENUE))


async def _converge(feed: AccountFeed, sim: SimExchange, extra=lambda f: True) -> None:  # noqa: ANN001
    try:
        await feed.wait_until(lambda f: f.state is AccountState.SYNCED and matches_truth(_result(f, sim)) and extra(f),
                              timeout=TIMEOUT)
    except TimeoutError:
        r = _result(feed, sim)
        pytest.fail(f"not converged: {[k for k in FAILURE_KEYS if r[k]]} {r['samples']} stats={feed.session.stats}")


async def test_fills_arrive_over_rest_from_order_reports_once_each(feed: AccountFeed, sim: SimExchange) -> None:
    acct = sim.account(VENUE)
    order = acct.place_order("BTC-USD", "buy", "0.0300", "60000.00")
    for qty in ("0.0100", "0.0100", None):
        acct.fill_order(order.order_id, qty)
    acct.trade("ETH-USD", "sell")
    await _converge(feed, sim, lambda f: len(f.fills()) == 4)
    assert sorted(f.fill_id for f in feed.fills()) == sorted(f.trade_id for f in acct.fills())
    result = _result(feed, sim)
    assert (result["fills_missing"], result["fills_duplicated"], result["fills_mismatched"]) == (0, 0, 0)
    assert feed.session.stats.order_gaps >= 2 and feed.session.stats.stream_gaps == 0
    assert feed.balances() == acct.balances()


async def test_a_lost_user_frame_is_a_stream_gap_replayed_from_rest(feed: AccountFeed, sim: SimExchange) -> None:
    acct = sim.account(VENUE)
    order = acct.place_order("ETH-USD", "sell", "0.5000", "3100.00")
    await feed.wait_until(lambda f: any(o.order_id == order.order_id for o in f.open_orders()), timeout=TIMEOUT)
    await sim.inject(FaultKind.PRIVATE_DROP.value, VENUE)
    fill = acct.fill_order(order.order_id)  # the only report of this fill is lost on the wire
    await sim.wait_private_sent(VENUE)
    assert sim.faults_injected["private_drop"] == 1
    # the next heartbeat's number shows the hole; the replay fetches the fill
    await _converge(feed, sim, lambda f: f.session.stats.stream_gaps == 1)
    assert [f.fill_id for f in feed.fills("ETH-USD")] == [fill.trade_id]
    assert any("stream_gap" in p.reason for p in feed.session.plans)
    assert feed.session.stats.order_gaps == 0  # nothing else reported it: only the stream gap found it
    result = _result(feed, sim)
    assert (result["fills_duplicated"], result["balance_mismatches"]) == (0, 0)


async def test_a_lost_cancel_report_leaves_the_open_orders_at_the_next_reconciliation(
        sim: SimExchange, tmp_path: Path) -> None:
    acct = sim.account(VENUE)
    async with AccountFeed(VENUE, list(acct.instruments), credentials=acct.credentials,
                           store=tmp_path / "acct.sqlite3", ws_root=sim.urls(VENUE)["ws_root"],
                           rest_config=sim.ccxt_config(VENUE),
                           policy=AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5, open_order_grace_s=0.5),
                           backoff=BackoffPolicy(base_s=0.1, cap_s=0.5, max_attempts=6, first_delay_s=0.05),
                           breaker=BreakerPolicy(max_failures=20, window_s=60, cooldown_s=0.5)) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        symbol = next(iter(acct.instruments))
        order = acct.place_order(symbol, "buy", acct.instruments[symbol].typical_qty, acct.mark_price(symbol))
        await feed.wait_until(lambda f: any(o.order_id == order.order_id for o in f.open_orders()), timeout=TIMEOUT)
        await sim.inject("private_drop", VENUE)
        acct.cancel_order(order.order_id)  # its report is lost; the replay of the gap finds no fill
        await sim.wait_private_sent(VENUE)
        assert sim.faults_injected[FaultKind.PRIVATE_DROP] == 1
        await feed.wait_until(lambda f: not f.open_orders() and f.state is AccountState.SYNCED, timeout=TIMEOUT)
        assert any(f"open:{symbol}:{order.order_id}" in a.evidence for a in feed.alerts), list(feed.alerts)
        await _converge(feed, sim)
