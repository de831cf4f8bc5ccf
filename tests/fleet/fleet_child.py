"""One fleet instance in its own OS process, for tests/fleet (``python fleet_child.py MODE URL ...``).

Modes (each prints one JSON line per milestone on stdout, which the parent awaits):

- ``lock URL ROUNDS``: take the ``snapshot:X`` lease ROUNDS times; inside, INCR a shared
  ``inside`` counter (must read 1: nobody else is inside), log the fence, DECR, release.
- ``hold URL TTL_S``: take the lease, print ``held``, then wait forever (the parent kills it).
- ``budget URL N COUNT WINDOW_S``: take N connect tokens through a FleetLink (waiting while the
  shared bucket is empty), RPUSH each grant's Redis TIME.
- ``journal URL FIRST LAST``: append deltas FIRST..LAST to the journal, flush, print stats.
- ``feed URL WS_ROOT REST_JSON SYMBOL``: a Feed with the Redis coordinator and journal against
  the simulator; prints ``synced`` once, then its journal stats on every stdin line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import redis.asyncio as aioredis

from bookkeeper.adapters import get_adapter
from bookkeeper.capabilities import RateLimit
from bookkeeper.events import BookDelta
from bookkeeper.io.coord import FleetConfig, FleetLink, RedisCoordinator
from bookkeeper.io.journal import RedisJournal


def say(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


async def lock(url: str, rounds: int) -> None:
    co = RedisCoordinator(url, op_timeout_s=2.0)
    r = aioredis.Redis.from_url(url)
    done = 0
    while done < rounds:
        lease = await co.acquire("binance", "snapshot:X", ttl_s=5.0)
        if lease is None:
            await asyncio.sleep(0.001)  # contention: try again (the behaviour under test)
            continue
        inside = await r.incr("test:inside")
        await r.rpush("test:fences", f"{lease.fence}:{inside}")
        await r.decr("test:inside")
        assert await co.release("binance", lease)
        done += 1
    say(done=done, degraded=co.status().degraded)
    await co.close()
    await r.aclose()


async def hold(url: str, ttl_s: float) -> None:
    co = RedisCoordinator(url, op_timeout_s=2.0)
    lease = await co.acquire("binance", "snapshot:X", ttl_s=ttl_s)
    say(held=lease is not None, fence=lease.fence if lease else None)
    await asyncio.Event().wait()


async def budget(url: str, n: int, count: int, window_s: float) -> None:
    co = RedisCoordinator(url, op_timeout_s=2.0)
    caps = get_adapter("binance").capabilities
    link = FleetLink(co, caps=caps, config=FleetConfig(source_ip="test"))
    r = aioredis.Redis.from_url(url)
    limit = RateLimit(count=count, window_s=window_s)
    say(ready=True)
    await r.blpop(["test:go"], timeout=30)  # all children start together
    for _ in range(n):
        await link.spend("connect", 1, limit)
        sec, usec = await r.time()
        await r.rpush("test:grants", f"{sec}.{usec:06d}")
    say(done=n, degraded=co.status().degraded)
    await co.close()
    await r.aclose()


async def journal(url: str, first: int, last: int) -> None:
    j = RedisJournal(url, approximate_trim=False, op_timeout_s=2.0)
    j.attach(get_adapter("binance"))
    for seq in range(first, last + 1):
        j.append(BookDelta(symbol="BTCUSDT", bids=[(100.0, float(seq))], asks=[], first_seq=seq, last_seq=seq))
    await j.flush()
    st = j.stats
    say(written=st.written, duplicates=st.duplicates, failed=st.failed)
    await j.close()


async def feed(url: str, ws_root: str, rest_json: str, symbol: str) -> None:
    from bookkeeper.io.feed import Feed
    from bookkeeper.io.stream import DriverConfig
    from bookkeeper.policy import BackoffPolicy

    co = RedisCoordinator(url, op_timeout_s=1.0)
    j = RedisJournal(url, approximate_trim=False, op_timeout_s=1.0)
    cfg = DriverConfig(startup_jitter_s=0.0, resync_timeout_s=None,
                       backoff=BackoffPolicy(base_s=0.05, cap_s=0.2, jitter=0.0, max_attempts=5, first_delay_s=0.0))
    async with Feed("binance", [symbol], ws_url=ws_root, rest_config=json.loads(rest_json), config=cfg,
                    coordinator=co, journal=j, seed=3) as f:
        await f.wait_synced(symbol, timeout=20)
        say(synced=True, seq=f.last_seq(symbol))
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            await j.flush()
            st = j.stats
            stats = f.driver.sessions[symbol].stats
            say(written=st.written, duplicates=st.duplicates, seq=f.last_seq(symbol),
                rest_snapshots=stats.rest_snapshots, replays=stats.replays, line=line.decode().strip())
    await j.close()
    await co.close()


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "lock":
        asyncio.run(lock(args[0], int(args[1])))
    elif mode == "hold":
        asyncio.run(hold(args[0], float(args[1])))
    elif mode == "budget":
        asyncio.run(budget(args[0], int(args[1]), int(args[2]), float(args[3])))
    elif mode == "journal":
        asyncio.run(journal(args[0], int(args[1]), int(args[2])))
    elif mode == "feed":
        asyncio.run(feed(*args))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
