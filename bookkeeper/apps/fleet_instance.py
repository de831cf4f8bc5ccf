"""One ingest instance of a fleet chaos run, in its own OS process.

``python -m bookkeeper.apps.fleet_instance '<json config>'`` (spawned by
:mod:`bookkeeper.apps.fleet_chaos`, never by hand): a :class:`~bookkeeper.io.feed.Feed` (or an
:class:`~bookkeeper.io.abfeed.ABFeed` with ``ab``) with a
:class:`~bookkeeper.io.coord.RedisCoordinator` and a :class:`~bookkeeper.io.journal.RedisJournal`
against the parent's simulator. It talks JSON lines:

- stdout: ``{"ev": "synced"}`` once every book is; ``{"ev": "sample", "sym", "seq", "digest"}``
  for a throttled share of the served books' updates (the parent compares each with the
  simulator's truth at that id); ``{"ev": "rest", "sym", "t"}`` for every REST snapshot request
  (``t``: ``time.monotonic()``, one clock for every process of the host); answers to commands.
- stdin: ``digest`` (every book's state, id and digest now), ``stop`` (close, answer the
  final ``stats``, exit).

Each WebSocket URL carries ``bookkeeper_instance=<i>`` and ``bookkeeper_line=<a|b>`` in its
query so that the parent can cut chosen connections at the simulator (a simulator ignores
query keys it does not know).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bookkeeper.actions import StateChanged, SyncState
from bookkeeper.events import BookSnapshot
from bookkeeper.io.coord import FleetConfig, RedisCoordinator
from bookkeeper.io.journal import RedisJournal
from bookkeeper.io.records import RecordWriter
from bookkeeper.io.rest import CcxtRestClient
from bookkeeper.io.stream import BookUpdate, DriverConfig
from bookkeeper.io.ws import WebsocketsTransport
from bookkeeper.policy import BackoffPolicy, BreakerPolicy, KeepalivePolicy

__all__ = ["book_digest", "tag_url"]


def book_digest(bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]]) -> str:
    """A digest of a whole book (order-insensitive; equal floats give equal digests), so an
    instance's book is compared with the truth without shipping its levels.

    >>> book_digest([(1.0, 2.0), (0.5, 1.0)], [(2.0, 1.0)]) == book_digest([(0.5, 1.0), (1.0, 2.0)], [(2.0, 1.0)])
    True
    """
    text = repr((sorted((p, s) for p, s in bids if s != 0), sorted((p, s) for p, s in asks if s != 0)))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def tag_url(url: str, instance: int, line: str) -> str:
    """``url`` with the instance and line in its query (see the module docstring).

    >>> tag_url("ws://h/stream?streams=x", 3, "b")
    'ws://h/stream?streams=x&bookkeeper_instance=3&bookkeeper_line=b'
    """
    return url + ("&" if "?" in url else "?") + f"bookkeeper_instance={instance}&bookkeeper_line={line}"


def _say(**kw: Any) -> None:
    sys.stdout.write(json.dumps(kw, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _CountingRest:
    """The instance's REST client, reporting every snapshot request to the parent."""

    def __init__(self, inner: CcxtRestClient) -> None:
        self._inner = inner
        self.requests = 0

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        self.requests += 1
        _say(ev="rest", sym=symbol, t=time.monotonic())
        return await self._inner.fetch_snapshot(symbol, depth=depth)

    async def call(self, call: Any) -> Any:
        return await self._inner.call(call)

    async def close(self) -> None:
        await self._inner.close()


def driver_config(index: int, *, outage: bool) -> DriverConfig:
    """Chaos timing (the simulator pushes every 50 ms): fast keepalive, quick reconnects, and a
    breaker that only a real outage trips (scenarios cut connections on purpose)."""
    backoff = BackoffPolicy(base_s=0.2, cap_s=2.0, max_attempts=6, first_delay_s=0.1)
    breaker = BreakerPolicy(max_failures=20, window_s=60.0, cooldown_s=5.0)
    if outage:
        backoff = BackoffPolicy(base_s=0.3, cap_s=2.0, max_attempts=3, first_delay_s=0.1)
        breaker = BreakerPolicy(max_failures=3, window_s=60.0, cooldown_s=2.0)
    return DriverConfig(backoff=backoff, breaker=breaker, startup_jitter_s=0.2, resync_timeout_s=2.0,
                        keepalive=KeepalivePolicy(ping_interval_s=2.0, pong_timeout_s=2.0, idle_timeout_s=3.0),
                        bot_instance_id=f"fleet-{index}")


async def run(cfg: dict[str, Any]) -> None:
    from bookkeeper.adapters import get_adapter
    from bookkeeper.io.abfeed import ABFeed
    from bookkeeper.io.feed import Feed

    index, venue, symbols = int(cfg["index"]), cfg["venue"], list(cfg["symbols"])
    adapter = get_adapter(venue)
    co = RedisCoordinator(cfg["redis"], op_timeout_s=0.5, retry_s=2.0)
    journal = RedisJournal(cfg["redis"], stream_tag=cfg["tag"], op_timeout_s=0.5, retry_s=2.0, window=50_000)
    rest = _CountingRest(CcxtRestClient(adapter, config=cfg["rest_config"]))
    records: list[dict[str, Any]] = []
    attempts: list[float] = []
    left: dict[str, float] = {}
    recoveries_ms: list[float] = []
    interval = float(cfg["sample_interval_s"])
    sampled: dict[str, float] = {}
    ref: dict[str, Any] = {}

    def transport(line: str) -> Any:
        class _Tagged(WebsocketsTransport):
            async def connect(self, url: str) -> None:
                attempts.append(time.monotonic())
                await super().connect(tag_url(url, index, line))

        return _Tagged

    def on_update(u: BookUpdate) -> None:
        now = time.monotonic()
        if now - sampled.get(u.symbol, 0.0) < interval:
            return
        feed = ref["feed"]
        if feed.state(u.symbol) is not SyncState.SYNCED:
            return
        sampled[u.symbol] = now
        view = feed.book(u.symbol)
        _say(ev="sample", sym=u.symbol, seq=view.seq, digest=book_digest(view.bids(), view.asks()))

    def on_state(c: StateChanged) -> None:
        now = time.monotonic()
        if c.old is SyncState.SYNCED and c.new is not SyncState.SYNCED:
            left[c.symbol] = now
        elif c.new is SyncState.SYNCED and c.symbol in left:
            recoveries_ms.append((now - left.pop(c.symbol)) * 1000)

    dcfg = driver_config(index, outage=bool(cfg["outage"]))
    fleet_cfg = FleetConfig(source_ip=cfg["tag"], snapshot_wait_s=3.0)
    dcfg = replace(dcfg, fleet=fleet_cfg)
    writer = RecordWriter(sink=records)
    common: dict[str, Any] = dict(ws_url=cfg["ws_root"], rest_config=cfg["rest_config"], rest=rest, config=dcfg,
                                  records=writer, seed=int(cfg["seed"]) * 101 + index, journal=journal,
                                  coordinator=co, on_update=on_update, on_state=on_state)
    feed: Any
    if cfg["ab"]:
        feed = ABFeed(venue, symbols, transport_factories=[transport("a"), transport("b")], **common)
        drivers = [line.driver for line in feed.lines]
    else:
        feed = Feed(venue, symbols, transport_factory=transport("a"), **common)
        drivers = [feed.driver]
    ref["feed"] = feed
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    failure = ""
    try:
        await feed.start()

        async def synced() -> None:
            for s in symbols:
                await feed.wait_synced(s, timeout=float(cfg["sync_timeout_s"]))
            _say(ev="synced")

        waiter = asyncio.create_task(synced())
        while line := await reader.readline():
            cmd = line.decode().strip()
            if cmd == "digest":
                books = {}
                for s in symbols:
                    st = feed.state(s)
                    if st is SyncState.SYNCED:
                        view = feed.book(s)
                        books[s] = {"state": str(st), "seq": view.seq, "digest": book_digest(view.bids(), view.asks())}
                    else:
                        books[s] = {"state": str(st), "seq": None, "digest": None}
                _say(ev="digest", books=books, failed=feed.failure is not None)
            elif cmd == "stop":
                break
        waiter.cancel()
    finally:
        try:
            await feed.close()
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
            failure = f"{type(exc).__name__}: {exc.__cause__ or exc}"
        await rest.close()
    await journal.flush()
    sessions = [d.sessions[s] for d in drivers for s in symbols]
    stats: dict[str, int] = {}
    for s in sessions:
        for k, v in s.stats.as_dict().items():
            if isinstance(v, int):
                stats[k] = stats.get(k, 0) + v
    link_snaps: dict[str, int] = {}
    for d in drivers:
        if d.fleet is not None:
            for k, v in d.fleet.stats.snapshots.items():
                link_snaps[k] = link_snaps.get(k, 0) + v
    st = co.status()
    _say(ev="stats", index=index, stats=stats, rest_requests=rest.requests, link_snapshots=link_snaps,
         attempts=attempts, connections=sum(d.connections for d in drivers),
         breaker_opens=sum(d.breaker.opens for d in drivers), records=records, recoveries_ms=recoveries_ms,
         journal={k: getattr(journal.stats, k) for k in ("written", "duplicates", "dropped", "failed", "served",
                                                          "refused", "degradations")},
         coordinator={"degraded": st.degraded, "degradations": st.degradations, "failures": st.failures},
         ab={"failovers": feed.failovers, "holds": feed.arbiter.holds, "outages": feed.arbiter.outages}
         if cfg["ab"] else None, failure=failure)
    await journal.close()
    await co.close()


def main() -> None:
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
