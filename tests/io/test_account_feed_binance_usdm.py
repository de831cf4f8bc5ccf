"""AccountFeed on a listenKey venue (Binance USD-M, ``ports.PrivateBootstrap``) against the
simulator: one bootstrap per connection, the URL that logs in, the keepalive that keeps the key,
and the reaction to its expiry (a new key, a new connection, a replay of the gap). Every test
ends by comparing the ledger with the simulator's truth exactly (the chaos comparison);
automatic trading is off, so each test knows every fill that exists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bookkeeper.actions import AccountAlertKind, AccountPlanKind, AccountState
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import InvalidState
from bookkeeper.sim import SimConfig, SimExchange
from bookkeeper.sim.venues.binance_usdm_private import BinanceUsdmPrivate

from test_account_feed import TIMEOUT, converge, kinds, make_feed, trade_all

pytestmark = pytest.mark.realtime
VENUE = "binance_usdm"


def _sim(**config: Any) -> SimExchange:
    cfg = SimConfig(account_fill_rate_per_s=0.0, account_history_retention_s=3.0, **config)
    return SimExchange(venues=(VENUE,), accounts=(VENUE,), seed=5, config=cfg)


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    async with _sim() as s:
        yield s


def _dialect(sim: SimExchange) -> BinanceUsdmPrivate:
    private = sim.servers[VENUE].private
    assert isinstance(private, BinanceUsdmPrivate)
    return private


class _Keepalive:
    """The venue's account adapter with another keepalive interval (the real one is 20 min)."""

    def __init__(self, inner: Any, interval_s: float | None) -> None:
        self._inner, self.keepalive_interval_s = inner, interval_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _keepalive_every(monkeypatch: pytest.MonkeyPatch, interval_s: float | None) -> None:
    import bookkeeper.adapters as registry

    wrapped = _Keepalive(registry.get_account_adapter(VENUE), interval_s)
    monkeypatch.setattr(registry, "get_account_adapter", lambda name: wrapped)


async def test_the_bootstrap_url_logs_in_and_a_short_gap_is_replayed(sim: SimExchange, tmp_path: Path) -> None:
    trade_all(sim, VENUE)
    async with make_feed(sim, VENUE, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC]
        assert (feed.bootstraps, feed.connections, feed.session.stats.logins) == (1, 1, 1)
        trade_all(sim, VENUE, 2)
        await converge(feed, sim, VENUE)  # the stream delivered them
        assert feed.rest_calls["fapiprivate_get_usertrades"] == 0
        with sim.private_refused(VENUE):
            assert await sim.inject("private_abort", VENUE) == 1
            await feed.wait_until(lambda f: f.state is not AccountState.SYNCED, timeout=TIMEOUT)
            trade_all(sim, VENUE, 2)  # missed by the stream
        await converge(feed, sim, VENUE)
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC, AccountPlanKind.REPLAY]
        # every connection attempt asked for the key first; the active key came back each time
        assert feed.bootstraps == feed.rest_calls["fapiprivate_post_listenkey"] >= 2
        assert _dialect(sim).keys_issued == 1 and feed.connections == 2
        (rec,) = feed.records
        assert (rec.close_cause, rec.plan, rec.missed_messages_count) == ("abnormal_closure", ["replay"], 4)


async def test_listen_key_expiry_means_one_new_key_a_new_connection_and_a_replay(sim: SimExchange,
                                                                                 tmp_path: Path) -> None:
    async with make_feed(sim, VENUE, tmp_path / "s.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        first_key = _dialect(sim).active_key()
        assert await sim.inject("auth_expiry", VENUE) == 1
        trade_all(sim, VENUE)  # the expired stream pushes nothing: only REST has these
        await feed.wait_until(lambda f: f.connections == 2, timeout=TIMEOUT)
        await converge(feed, sim, VENUE)
        stats = feed.session.stats
        assert (stats.session_expiries, stats.relogins, stats.auth_rejections) == (1, 1, 0)
        assert _dialect(sim).keys_issued == 2 and _dialect(sim).active_key() != first_key
        assert feed.bootstraps == 2
        assert kinds(feed) == [AccountPlanKind.FULL_SYNC, AccountPlanKind.REPLAY]
        assert "session_expired" in feed.session.plans[-1].reason
        (rec,) = feed.records  # triage reads it as the private channel's auth expiring
        assert (rec.channel, rec.close_cause, rec.reconnect_success, rec.missed_messages_count) == (
            "private", "auth_failed", True, 2)


async def test_the_keepalive_outlives_the_keys_lifetime_and_without_it_the_key_expires(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _sim(private_listen_key_lifetime_s=1.5) as sim:
        _keepalive_every(monkeypatch, 0.2)
        async with make_feed(sim, VENUE, tmp_path / "k.sqlite3") as feed:
            await feed.wait_synced(timeout=TIMEOUT)
            # PUT every 0.2 s: far past the 1.5 s lifetime, the first key and connection stand
            await feed.wait_until(lambda f: f.keepalives >= 12, timeout=TIMEOUT)
            assert feed.rest_calls["fapiprivate_put_listenkey"] >= 12
            assert (feed.connections, feed.session.stats.session_expiries, _dialect(sim).keys_issued) == (1, 0, 1)
            trade_all(sim, VENUE)
            await converge(feed, sim, VENUE)
        _keepalive_every(monkeypatch, None)
        async with make_feed(sim, VENUE, tmp_path / "n.sqlite3") as feed:
            await feed.wait_synced(timeout=TIMEOUT)
            await feed.wait_until(lambda f: f.session.stats.session_expiries == 1 and f.connections == 2
                                  and f.state is AccountState.SYNCED, timeout=TIMEOUT)
            # the first feed gave its key back on close: a new key, then it expired: another one
            assert feed.keepalives == 0 and _dialect(sim).keys_issued == 3
            trade_all(sim, VENUE)
            await converge(feed, sim, VENUE)


async def test_a_key_the_venue_refuses_halts_at_the_bootstrap(sim: SimExchange, tmp_path: Path) -> None:
    real = sim.account(VENUE).credentials
    for creds in (ApiCredentials("simnotthekey" + "x" * 20, real.reveal_secret()),  # POST listenKey refuses it
                  ApiCredentials(real.api_key, "not-the-secret-" + "x" * 20)):  # the first signed read refuses it
        feed = make_feed(sim, VENUE, tmp_path / f"{creds.fingerprint}.sqlite3", credentials=creds)
        await feed.start()
        try:
            with pytest.raises(InvalidState, match="halted"):
                await feed.wait_synced(timeout=TIMEOUT)
            assert feed.state is AccountState.HALTED and feed.attempts == 1
            assert [a.kind for a in feed.alerts] == [AccountAlertKind.AUTH_REJECTED]
        finally:
            await feed.close()


async def test_a_refused_keepalive_reconnects_with_a_new_key_and_close_gives_the_key_back(
        sim: SimExchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _keepalive_every(monkeypatch, 0.2)
    async with make_feed(sim, VENUE, tmp_path / "r.sqlite3") as feed:
        await feed.wait_synced(timeout=TIMEOUT)
        await feed.wait_until(lambda f: f.keepalives >= 1, timeout=TIMEOUT)
        assert _dialect(sim).forget_key()  # the venue drops the key silently: the next PUT is refused
        trade_all(sim, VENUE)  # the stream on the forgotten key still delivers nothing new for sure
        await feed.wait_until(lambda f: f.connections == 2 and f.state is AccountState.SYNCED, timeout=TIMEOUT)
        assert feed.bootstraps == 2 and _dialect(sim).keys_issued == 2
        (rec,) = feed.records
        assert (rec.channel, rec.close_cause) == ("private", "auth_failed")
        await converge(feed, sim, VENUE)
        assert _dialect(sim).active_key() is not None
    # closing gave the key back: DELETE once, no key left active at the venue
    assert feed.rest_calls["fapiprivate_delete_listenkey"] == 1
    assert _dialect(sim).active_key() is None
