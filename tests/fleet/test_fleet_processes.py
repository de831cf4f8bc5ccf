"""Several real OS processes sharing one real redis-server (tests/fleet/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from bookkeeper.io.coord import RedisCoordinator  # noqa: E402

from conftest import RedisServer  # noqa: E402

CHILD = str(Path(__file__).with_name("fleet_child.py"))
SAFETY_S = 60.0  # a hung child fails the test instead of hanging it; never used to wait


class Child:
    """One ``fleet_child.py`` process; its JSON lines are awaited, never polled."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str) -> Child:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(sys.executable, CHILD, *args, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, env=env)
        return cls(proc)

    async def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(SAFETY_S):
            raw = await self.proc.stdout.readline()
        assert raw, f"child exited ({await self.proc.wait()}) without saying anything"
        return json.loads(raw)

    async def ask(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.line()

    async def wait(self) -> int:
        async with asyncio.timeout(SAFETY_S):
            return await self.proc.wait()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def test_only_one_holder_at_a_time_across_processes(redis_server: RedisServer) -> None:
    children = [await Child.start("lock", redis_server.url, "40") for _ in range(4)]
    try:
        results = [await c.line() for c in children]
        assert [await c.wait() for c in children] == [0, 0, 0, 0]
    finally:
        for c in children:
            c.kill()
    assert all(r == {"done": 40, "degraded": False} for r in results)
    r = redis.Redis.from_url(redis_server.url)
    rows = [x.decode().split(":") for x in r.lrange("test:fences", 0, -1)]
    assert len(rows) == 160
    assert all(inside == "1" for _, inside in rows), "two holders were inside at once"
    fences = [int(f) for f, _ in rows]
    assert fences == sorted(fences) and len(set(fences)) == 160, "fencing tokens must grow with every grant"
    r.close()


async def test_a_killed_holders_lease_expires(redis_server: RedisServer) -> None:
    child = await Child.start("hold", redis_server.url, "1.0")
    try:
        assert (await child.line())["held"] is True
        child.kill()  # SIGKILL: it never releases
        await child.wait()
        co = RedisCoordinator(redis_server.url, op_timeout_s=2.0)
        assert await co.acquire("binance", "snapshot:X", ttl_s=5.0) is None  # still held by the dead
        ttl_ms = await co.client.pttl("bookkeeper:{binance}:lock:snapshot:X")
        assert 0 < ttl_ms <= 1000
        await asyncio.sleep(ttl_ms / 1000)  # the lease's own expiry is what is under test
        lease = None
        async with asyncio.timeout(SAFETY_S):
            while lease is None:  # Redis expires keys within ms of their deadline
                lease = await co.acquire("binance", "snapshot:X", ttl_s=5.0)
                await asyncio.sleep(0.005) if lease is None else None
        assert lease.fence == 2, "the new holder is fenced above the dead one"
        await co.close()
    finally:
        child.kill()


async def test_budgets_are_never_exceeded_fleet_wide(redis_server: RedisServer) -> None:
    count, window_s, per_child, n_children = 20, 1.0, 12, 4
    children = [await Child.start("budget", redis_server.url, str(per_child), str(count), str(window_s))
                for _ in range(n_children)]
    try:
        for c in children:
            assert (await c.line())["ready"]
        r = redis.Redis.from_url(redis_server.url)
        r.rpush("test:go", *["go"] * n_children)
        results = [await c.line() for c in children]
        assert [await c.wait() for c in children] == [0] * n_children
    finally:
        for c in children:
            c.kill()
    assert all(x["done"] == per_child and not x["degraded"] for x in results)
    grants = sorted(float(x) for x in r.lrange("test:grants", 0, -1))
    assert len(grants) == per_child * n_children
    # no sliding window of window_s holds more than `count` grants (the times are read just
    # after each grant, so a window is shrunk by a few ms of that read's latency)
    worst = max(sum(1 for t in grants[i:] if t < start + window_s - 0.02) for i, start in enumerate(grants))
    assert worst <= count, f"{worst} grants within {window_s}s (limit {count})"
    # and the fleet really was throttled: 48 grants at burst 10 + 10/s take > 3.5 s
    assert grants[-1] - grants[0] > (per_child * n_children - count / 2) / (count / 2 / window_s) - 0.2
    r.close()


async def test_journal_appends_from_several_writers_dedupe(redis_server: RedisServer) -> None:
    children = [await Child.start("journal", redis_server.url, "1", "200") for _ in range(3)]
    try:
        results = [await c.line() for c in children]
        assert [await c.wait() for c in children] == [0, 0, 0]
    finally:
        for c in children:
            c.kill()
    assert sum(x["written"] for x in results) == 200
    assert sum(x["duplicates"] for x in results) == 400
    assert all(x["failed"] == 0 for x in results)
    r = redis.Redis.from_url(redis_server.url)
    key = "bookkeeper:{binance}:journal:BTCUSDT"
    assert r.xlen(key) == 200
    ids = [i.decode() for i, _ in r.xrange(key)]
    assert ids == [f"{s}-0" for s in range(1, 201)]
    r.close()
