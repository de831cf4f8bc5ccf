"""Helpers for the simulator tests: a naive reference book and small raw-client utilities."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection

RECV_TIMEOUT_S = 5.0


class RefBook:
    """A dict-based reference book (floats, best first on read)."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def reset(self, bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]]) -> None:
        self.bids = {p: q for p, q in bids}
        self.asks = {p: q for p, q in asks}

    def apply(self, side: str, levels: Iterable[tuple[float, float]]) -> None:
        book = self.bids if side == "bid" else self.asks
        for p, q in levels:
            if q == 0:
                book.pop(p, None)
            else:
                book[p] = q

    def truncate(self, depth: int) -> None:
        self.bids = dict(self.top("bid", depth))
        self.asks = dict(self.top("ask", depth))

    def top(self, side: str, n: int | None = None) -> list[tuple[float, float]]:
        if side == "bid":
            items = sorted(self.bids.items(), key=lambda kv: -kv[0])
        else:
            items = sorted(self.asks.items())
        return items if n is None else items[:n]

    def both(self, n: int | None = None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return self.top("bid", n), self.top("ask", n)


async def recv_json(ws: ClientConnection, timeout_s: float = RECV_TIMEOUT_S) -> Any:
    async with asyncio.timeout(timeout_s):
        text = await ws.recv()
    return json.loads(text)


async def recv_text(ws: ClientConnection, timeout_s: float = RECV_TIMEOUT_S) -> str:
    async with asyncio.timeout(timeout_s):
        text = await ws.recv()
    assert isinstance(text, str)
    return text


async def drain_until(
    ws: ClientConnection, predicate: Any, timeout_s: float = RECV_TIMEOUT_S, parse_float: Any = None
) -> list[Any]:
    """Receive JSON frames until ``predicate(frame)`` is true; return all frames received."""
    out: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while True:
            frame = json.loads(await ws.recv(), parse_float=parse_float)
            out.append(frame)
            if predicate(frame):
                return out


async def http_get(url: str) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            body = await resp.read()
            return resp.status, dict(resp.headers), json.loads(body)


def kraken_levels(levels: list[dict[str, Decimal]]) -> list[tuple[str, str]]:
    """Kraken v2 numbers parsed as Decimal -> the exact digit strings (§7.3 advice)."""
    return [(str(lv["price"]), str(lv["qty"])) for lv in levels]


#: a hung test fails instead of hanging; never used to wait for things
FEED_SAFETY_TIMEOUT_S = 10.0


class FeedProbe:
    """Wakes waiters on every feed callback (tests await conditions, never sleep)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()

    def notify(self, *_: Any) -> None:
        async def _n() -> None:
            async with self._cond:
                self._cond.notify_all()

        asyncio.get_running_loop().create_task(_n())

    async def until(self, pred: Any, what: str) -> None:
        async with asyncio.timeout(FEED_SAFETY_TIMEOUT_S), self._cond:
            try:
                await self._cond.wait_for(pred)
            except TimeoutError:  # pragma: no cover - diagnostic only
                raise AssertionError(f"condition never became true: {what}") from None


def dialect_feed_config(bot_instance_id: str) -> Any:
    """Fast reconnects, no jitter, no resync timer: a feed against one dialect in a test."""
    from bookkeeper.io.stream import DriverConfig
    from bookkeeper.policy import BackoffPolicy, KeepalivePolicy

    return DriverConfig(backoff=BackoffPolicy(base_s=0.05, cap_s=0.1, jitter=0.0, max_attempts=5, first_delay_s=0.0),
                        keepalive=KeepalivePolicy(ping_interval_s=5.0, pong_timeout_s=5.0, idle_timeout_s=30.0),
                        startup_jitter_s=0.0, resync_timeout_s=None, bot_instance_id=bot_instance_id)


def all_subscribed(server: Any, symbols: Iterable[str]) -> bool:
    """Every symbol has a subscriber on the dialect's server."""
    return all(len(server.subscribers(s)) >= 1 for s in symbols)


def books_equal_truth(feed: Any, sim: Any, symbols: Iterable[str]) -> bool:
    """Every book is SYNCED and equals the simulator's truth, level for level."""
    from bookkeeper.actions import SyncState

    return all(feed.state(s) is SyncState.SYNCED and feed.book(s).equals(*sim.engine.book(s)) for s in symbols)


def probed_feed(sim: Any, venue: str, probe: FeedProbe, config: Any, **kw: Any) -> Any:
    """A ``Feed`` of every symbol the dialect serves, pointed at the simulator, waking ``probe``
    on every state change and update (the setup of the dialects' feed tests)."""
    from bookkeeper.io.feed import Feed

    return Feed(venue, list(sim.servers[venue].specs), ws_url=sim.urls(venue)["ws_root"],
                rest_config=sim.ccxt_config(venue), config=config, seed=1, on_state=probe.notify,
                on_update=probe.notify, **kw)


def check_chaos_report(background: Any, venue: str, seed: int, not_applicable: list[str]) -> dict[str, Any]:
    """The bar of a dialect's seeded chaos run (``@pytest.mark.background(chaos_child(...))``):
    exit 0, exactly ``not_applicable`` kinds left out, every applicable kind acted, no mismatch,
    no rewind, no driver failure, every book consistent at the end, at least 100 checks.

    Returns:
        The report, for the venue's own assertions.
    """
    from bookkeeper.apps.chaos import ALL_FAULTS, APPLICABLE

    assert background.returncode == 0, background.stderr[-3000:]
    report: dict[str, Any] = background.json_line()
    assert report["not_applicable"] == not_applicable, (seed, report["not_applicable"])
    applicable = [k for k in ALL_FAULTS if venue in APPLICABLE.get(k, {venue})]
    never = [k for k in applicable if report["faults_injected"][k] == 0]
    assert never == [], f"seed {seed}: fault kinds that never acted: {never} ({report['faults_injected']})"
    verdict = {k: report[k] for k in ("mismatches", "seq_rewinds", "final_consistent", "driver_failures")}
    assert verdict == {"mismatches": 0, "seq_rewinds": 0, "final_consistent": True, "driver_failures": {}}, (
        seed, verdict, report["mismatch_samples"], report["seq_rewind_samples"], report["books"])
    assert report["checks"] >= 100, (seed, report["checks"])
    return report
