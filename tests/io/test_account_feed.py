"""AccountFeed against the simulator's ground-truth account: real sockets, real ccxt (signed
REST), a real SQLite store. Every test ends by comparing the ledger with the simulator's truth
exactly (fills by id, balances, positions). Fills are made explicitly (``trade``): automatic
trading is off, so each test knows every fill that exists."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bookkeeper.account_session import AccountPolicy
from bookkeeper.apps.account_chaos import FAILURE_KEYS, compare_to_truth
from bookkeeper.apps.account_chaos import matches_truth as matches_truth_result
from bookkeeper.actions import AccountAlertKind, AccountPlanKind, AccountState
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import InvalidState
from bookkeeper.io.account import AccountFeed
from bookkeeper.io.store import SqliteFillStore
from bookkeeper.ledger import AccountKey
from bookkeeper.policy import BackoffPolicy, BreakerPolicy
from bookkeeper.sim import SimConfig, SimExchange

pytestmark = pytest.mark.realtime
TIMEOUT = 15.0
FAST = BackoffPolicy(base_s=0.1, cap_s=0.5, max_attempts=6, first_delay_s=0.05)


@pytest.fixture(params=["binance", "okx", "bybit"])
def venue(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sim(venue: str) -> AsyncIterator[SimExchange]:
    cfg = SimConfig(account_fill_rate_per_s=0.0, account_history_retention_s=3.0)
    async with SimExchange(venues=(venue,), accounts=(venue,), seed=3, config=cfg) as s:
        yield s


def make_feed(sim: SimExchange, venue: str, store: Path, **kw: Any) -> AccountFeed:
    acct = sim.account(venue)
    kw.setdefault("policy", AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5))
    kw.setdefault("rest_config", sim.ccxt_config(venue))
    return AccountFeed(venue, list(acct.instruments), credentials=kw.pop("credentials", acct.credentials),
                       store=store, ws_root=sim.urls(venue)["ws_root"],
                       backoff=FAST, breaker=BreakerPolicy(max_failures=20, window_s=60, cooldown_s=0.5), **kw)


def trade_all(sim: SimExchange, venue: str, n: int = 1) -> None:
    acct = sim.account(venue)
    for i in range(n):
        for symbol in acct.instruments:
            acct.trade(symbol, "buy" if i % 2 == 0 else "sell")


def matches_truth(feed: AccountFeed, sim: SimExchange, venue: str) -> bool:
    """The ledger equals the truth: every fill after its baseline by id and content, nothing
    unknown or duplicated, balances, positions (the chaos report's comparison)."""
    return not differences(feed, sim, venue)


def differences(feed: AccountFeed, sim: SimExchange, venue: str) -> list[str]:
    result = compare_to_truth(feed.durable.ledger, feed.account, sim.account(venue))
    if matches_truth_result(result):
        return []
    return [f"{k}={result[k]}" for k in FAILURE_KEYS if result[k]] + [str(result["samples"])]


async def converge(feed: AccountFeed, sim: SimExchange, venue: str) -> None:
    try:
        await feed.wait_until(lambda f: f.state is AccountState.SYNCED and matches_truth(f, sim, venue),
                              timeout=TIMEOUT)
    except TimeoutError:
        pytest.fail(f"{venue}: not converged: {differences(feed, sim, venue)[:5]} state={feed.state} "
                    f"plans={[p.reason for p in feed.session.plans]}")


def kinds(feed: AccountFeed) -> list[AccountPlanKind]:
    return [p.kind for p in feed.session.plans]


async def test_first_sync_is_a_full_sync_then_stream_fills_apply(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    trade_all(sim, venue)  # before the ingest starts: covered by the full sync's baseline
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC]
        trade_all(sim, venue, 3)
        await converge(feed, sim, venue)
        # the stream delivered them: no REST history read at all
        assert not any("mytrades" in m or "fills" in m for m in feed.rest_calls), feed.rest_calls
        assert len(feed.fills()) == 3 * len(sim.account(venue).instruments)


class _ChangesWhileRead:
    """The venue's account adapter, except that the first balances answer parsed makes a fill
    on the simulator: the account changes between the consistency-mark reads."""

    def __init__(self, inner: Any, sim: SimExchange, venue: str) -> None:
        self._inner, self._sim, self._venue, self.fired = inner, sim, venue, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def parse_balances(self, body: Any, *, ts_recv_ns: int = 0) -> Any:
        report = self._inner.parse_balances(body, ts_recv_ns=ts_recv_ns)
        if not self.fired:
            self.fired += 1
            acct = self._sim.account(self._venue)
            acct.trade(next(iter(acct.instruments)), "buy")
        return report


async def test_a_change_between_the_mark_reads_makes_the_full_sync_read_again(
        sim: SimExchange, venue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mark -> balances -> positions -> open orders -> mark (Bybit: the transaction log's
    newest row; Binance/OKX: the balances' own last-change time, read first and last): a fill
    between them moves the mark, so the first picture is thrown away and the baseline is the
    second, taken at the account's last change."""
    import bookkeeper.adapters as registry

    wrapped = _ChangesWhileRead(registry.get_account_adapter(venue), sim, venue)
    monkeypatch.setattr(registry, "get_account_adapter", lambda name: wrapped)
    trade_all(sim, venue)
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        assert wrapped.fired == 1 and kinds(feed) == [AccountPlanKind.FULL_SYNC]
        acct = sim.account(venue)
        base = feed.durable.ledger.baseline(feed.account)
        assert base is not None and base.as_of_ns == acct.fills()[-1].ts_ms * 1_000_000
        mark = wrapped.account_mark_call()
        if mark is not None:  # two rounds of two mark reads, balances read once per round
            assert feed.rest_calls[mark.method] >= 4, feed.rest_calls
        else:
            assert feed.rest_calls[wrapped.balances_call().method] >= 4, feed.rest_calls
        await converge(feed, sim, venue)


async def test_reconciliation_compares_at_the_mark_and_finds_no_drift(sim: SimExchange, venue: str,
                                                                     tmp_path: Path) -> None:
    from bookkeeper.adapters import get_account_adapter

    trade_all(sim, venue)
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        trade_all(sim, venue, 2)
        await converge(feed, sim, venue)
        done = feed.session.stats.reconciles
        # an agreeing reconciliation changes nothing wait_until is woken by: poll the counter
        # (a condition with a deadline, not a sleep standing in for one)
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while feed.session.stats.reconciles < done + 2:
            assert asyncio.get_running_loop().time() < deadline, (feed.session.stats, feed.rest_calls)
            await asyncio.sleep(0.05)
        assert feed.session.stats.reconcile_skipped == 0, feed.session.stats
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC]  # compared, agreed: nothing to recover
        assert matches_truth(feed, sim, venue)
        mark = get_account_adapter(venue).account_mark_call()
        if mark is not None:
            assert feed.rest_calls[mark.method] >= 2 * (done + 2) + 2, feed.rest_calls


async def test_private_1006_is_recovered_by_replay_with_a_record(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from bookkeeper.io.account_metrics import AccountMetrics

    records = tmp_path / "records.jsonl"
    metrics = AccountMetrics(CollectorRegistry())
    async with make_feed(sim, venue, tmp_path / "s.sqlite3", records_path=records, metrics=metrics) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        trade_all(sim, venue)
        await converge(feed, sim, venue)
        connections = feed.connections
        # the connection dies; fills happen while it is down (the stream cannot deliver them)
        with sim.private_refused(venue):
            assert await sim.inject("private_abort", venue) == 1
            await feed.wait_until(lambda f: f.state is not AccountState.SYNCED, timeout=TIMEOUT)
            trade_all(sim, venue, 2)
        await converge(feed, sim, venue)
        assert feed.connections == connections + 1
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC, AccountPlanKind.REPLAY]
        (rec,) = feed.records
        assert (rec.channel, rec.close_cause, rec.close_code, rec.reconnect_success) == (
            "private", "abnormal_closure", 1006, True)
        assert rec.plan == ["replay"] and rec.missed_messages_count == 2 * len(sim.account(venue).instruments)
        assert rec.account_plans and "disconnect" in rec.account_plans[0]["reason"]
        labels = {"exchange": venue, "account": "main"}
        assert metrics.value("bookkeeper_account_recoveries_total", kind="replay", **labels) == 1
        assert metrics.value("bookkeeper_account_recoveries_total", kind="full_sync", **labels) == 1
        assert metrics.value("bookkeeper_account_disconnects_total", cause="abnormal_closure", **labels) == 1
        assert metrics.value("bookkeeper_account_state", state="synced", **labels) == 1
        assert metrics.value("bookkeeper_account_fills", **labels) == len(feed.fills())
    line = records.read_text().splitlines()[0]
    assert '"channel":"private"' in line and '"account_plans"' in line


async def test_auth_expiry_logs_in_once_on_the_same_connection(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        connections, attempts = feed.connections, feed.attempts
        assert await sim.inject("auth_expiry", venue) == 1
        if venue == "bybit":
            # ⚠ Bybit has no "session ended" message: the server closes the connection (the
            # simulator's closest documented behaviour), so it is a reconnect and a replay
            await feed.wait_until(lambda f: f.connections == connections + 1, timeout=TIMEOUT)
            trade_all(sim, venue)
            await converge(feed, sim, venue)
            assert feed.session.stats.session_expiries == 0
            assert kinds(feed)[-1] is AccountPlanKind.REPLAY, feed.session.plans[-1].reason
            assert feed.disconnect_causes["server_close"] == 1, feed.disconnect_causes
            return
        await feed.wait_until(lambda f: f.session.stats.session_expiries == 1, timeout=TIMEOUT)
        trade_all(sim, venue)
        await converge(feed, sim, venue)
        stats = feed.session.stats
        assert (stats.relogins, stats.rotations) == (1, 0)
        assert (feed.connections, feed.attempts) == (connections, attempts)  # no reconnect, no storm
        assert kinds(feed)[-1] is AccountPlanKind.REPLAY, feed.session.plans[-1].reason


async def place_open_order(feed: AccountFeed, sim: SimExchange, venue: str) -> tuple[str, Any]:
    """A limit order on the venue's first instrument, once the feed lists it as open."""
    acct = sim.account(venue)
    symbol = next(iter(acct.instruments))
    order = acct.place_order(symbol, "buy", acct.instruments[symbol].typical_qty, acct.mark_price(symbol))
    await feed.wait_until(lambda f: any(o.order_id == order.order_id for o in f.open_orders()), timeout=TIMEOUT)
    return symbol, order


async def test_fill_dropped_from_the_stream_is_found_by_reconciliation(sim: SimExchange, venue: str,
                                                                      tmp_path: Path) -> None:
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        acct = sim.account(venue)
        symbol, order = await place_open_order(feed, sim, venue)
        # the one frame that carries the fill never arrives; nothing else tells the client
        await sim.inject("private_drop", venue)
        acct.fill_order(order.order_id)
        await converge(feed, sim, venue)
        assert sim.faults_injected["private_drop"] == 1
        assert AccountPlanKind.REPLAY in kinds(feed)[1:]
        assert any("reconcile" in p.reason or "order_gap" in p.reason for p in feed.session.plans[1:])


async def test_a_lost_cancel_report_is_found_by_reconciliation_and_the_order_leaves_the_open_list(
        sim: SimExchange, venue: str, tmp_path: Path) -> None:
    policy = AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5, open_order_grace_s=0.5)
    async with make_feed(sim, venue, tmp_path / "s.sqlite3", policy=policy) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        acct = sim.account(venue)
        symbol, order = await place_open_order(feed, sim, venue)
        # the cancel's report never arrives, and a cancel moves no balance
        await sim.inject("private_drop", venue)
        acct.cancel_order(order.order_id)
        await sim.wait_private_sent(venue)
        assert sim.faults_injected["private_drop"] == 1
        await feed.wait_until(lambda f: all(o.order_id != order.order_id for o in f.open_orders()), timeout=TIMEOUT)
        await feed.wait_synced(timeout=TIMEOUT)
        drift = [a for a in feed.alerts if "open orders differ" in a.reason]
        assert drift and f"open:{symbol}:{order.order_id}" in drift[0].evidence, list(feed.alerts)
        assert {o.order_id for o in feed.open_orders()} == {o.order_id for o in acct.open_orders()}
        assert matches_truth(feed, sim, venue), differences(feed, sim, venue)


async def test_rest_429_during_replay_is_retried_after_retry_after(sim: SimExchange, venue: str,
                                                                   tmp_path: Path) -> None:
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        with sim.private_refused(venue):
            await sim.inject("private_abort", venue)
            await feed.wait_until(lambda f: f.state is not AccountState.SYNCED, timeout=TIMEOUT)
            trade_all(sim, venue)
            await sim.inject("private_http_429", venue, retry_after_s=0.3)
        await converge(feed, sim, venue)
        assert sim.faults_injected["private_http_429"] == 1
        assert kinds(feed)[-1] is AccountPlanKind.REPLAY


async def test_tls_verification_cannot_be_turned_off(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    from bookkeeper.errors import UsageError

    with pytest.raises(UsageError, match="TLS verification"):
        make_feed(sim, venue, tmp_path / "s.sqlite3", rest_config={**sim.ccxt_config(venue), "verify": False})
    async with make_feed(sim, venue, tmp_path / "s.sqlite3") as feed:
        assert feed._exchange.verify is True  # ccxt's default, never changed


async def test_refused_credentials_halt_without_retrying(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    real = sim.account(venue).credentials
    bad = ApiCredentials(real.api_key, "not-the-secret-" + "x" * 20, real.passphrase)
    feed = make_feed(sim, venue, tmp_path / "s.sqlite3", credentials=bad)
    # REST is signed with the same bad secret: loading markets is public, the login is refused
    await feed.start()
    try:
        with pytest.raises(InvalidState, match="halted"):
            await feed.wait_synced(timeout=TIMEOUT)
        assert feed.state is AccountState.HALTED
        assert [a.kind for a in feed.alerts] == [AccountAlertKind.AUTH_REJECTED]
        assert feed.attempts == 1 and feed.session.stats.logins == 1
    finally:
        await feed.close()


async def test_restart_from_the_store_replays_what_happened_while_down(sim: SimExchange, venue: str,
                                                                      tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite3"
    async with make_feed(sim, venue, store) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        trade_all(sim, venue)
        await converge(feed, sim, venue)
    trade_all(sim, venue, 2)  # nobody listening
    async with make_feed(sim, venue, store) as feed:
        await converge(feed, sim, venue)
        assert kinds(feed) == [AccountPlanKind.REPLAY]
        assert "start" in feed.session.plans[0].reason
    # the store alone (a new process) holds the same state
    with SqliteFillStore(store) as s:
        ledger = s.load()
    key = AccountKey(venue=venue, account="main")
    assert ledger.balances(key) == sim.account(venue).balances() or all(
        ledger.balances(key).get(c, Decimal(0)) == v for c, v in sim.account(venue).balances().items())


async def test_gap_beyond_the_history_window_full_syncs(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    # the client is told a 1.5 s window (the simulator keeps 3 s: the client never asks for
    # more than it was told exists)
    adapter_window = AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5,
                                   history_override=_scaled_history(venue, 1.5))
    store = tmp_path / "s.sqlite3"
    async with make_feed(sim, venue, store, policy=adapter_window) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        trade_all(sim, venue)
        await converge(feed, sim, venue)
    trade_all(sim, venue)
    await asyncio.sleep(2.1)  # the outage itself: longer than the window
    async with make_feed(sim, venue, store, policy=adapter_window) as feed:
        await converge(feed, sim, venue)
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC]
        assert "beyond the venue's" in feed.session.plans[0].reason


def _scaled_history(venue: str, window_s: float) -> Any:
    from dataclasses import replace

    from bookkeeper.adapters import get_account_adapter

    return replace(get_account_adapter(venue).history, retention_ns=int(window_s * 1e9))


async def test_no_secret_in_logs_records_reprs_or_errors(sim: SimExchange, venue: str, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = sim.account(venue).credentials
    secrets = creds.secrets()
    records = tmp_path / "records.jsonl"
    async with make_feed(sim, venue, tmp_path / "s.sqlite3", records_path=records) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        trade_all(sim, venue)
        await sim.inject("private_abort", venue)
        await sim.inject("auth_expiry", venue)
        await converge(feed, sim, venue)
        texts = [repr(feed.session), repr(creds), str(creds), f"{creds}", repr(feed.durable.store),
                 *(repr(a) for a in feed.alerts), *(repr(r) for r in feed.records)]
    texts += [r.getMessage() for r in caplog.records] + [str(r.exc_info) for r in caplog.records if r.exc_info]
    texts.append(records.read_text())
    texts.append((tmp_path / "s.sqlite3").read_bytes().decode("latin-1"))
    for secret in secrets:
        assert all(secret not in t for t in texts)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(creds)


async def test_session_lifetime_is_rotated_before_the_venue_ends_it(tmp_path: Path) -> None:
    # Binance WS API connections live 24 h (§3.6); scaled here to 4 s on both sides
    cfg = SimConfig(account_fill_rate_per_s=0.0, private_session_lifetime_s=4.0)
    async with SimExchange(venues=("binance",), accounts=("binance",), seed=4, config=cfg) as sim:
        policy = AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5, lifetime_override_s=4.0)
        async with make_feed(sim, "binance", tmp_path / "s.sqlite3", policy=policy) as feed:
            await feed.wait_synced(timeout=TIMEOUT)
            await feed.wait_until(lambda f: f.session.stats.rotations >= 1 and f.connections >= 2
                                  and f.state is AccountState.SYNCED, timeout=TIMEOUT)
            trade_all(sim, "binance")
            await converge(feed, sim, "binance")
            # rotated before the venue's end of session: it never had to expire us
            assert feed.session.stats.session_expiries == 0


async def test_replay_beyond_the_page_budget_full_syncs(sim: SimExchange, venue: str, tmp_path: Path) -> None:
    policy = AccountPolicy(reconcile_interval_s=0.5, lookback_s=0.5, page_budget=0)
    async with make_feed(sim, venue, tmp_path / "s.sqlite3", policy=policy) as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        with sim.private_refused(venue):
            await sim.inject("private_abort", venue)
            await feed.wait_until(lambda f: f.state is not AccountState.SYNCED, timeout=TIMEOUT)
            trade_all(sim, venue)
        await converge(feed, sim, venue)
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC, AccountPlanKind.FULL_SYNC]
        assert "budget 0" in feed.session.plans[-1].reason
