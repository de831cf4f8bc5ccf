"""The shipped pytest fixture and the standalone ``serve`` entry point."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from bookkeeper.sim import SimExchange, serve
from sim_support import http_get, recv_text


async def test_sim_exchange_fixture_gives_started_simulators(sim_exchange) -> None:
    sim = await sim_exchange(venues=("okx",), seed=2, paused=True)
    assert isinstance(sim, SimExchange)
    async with connect(sim.urls("okx")["ws"]) as ws:
        await ws.send("ping")
        assert await recv_text(ws) == "pong"
    await sim.wait_for(lambda: sim.connections("okx") == 0)
    assert await sim.inject("abort", "okx") == 0  # fault controls available; nobody connected


async def test_serve_prints_urls_and_runs_until_cancelled() -> None:
    printed: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(serve(["kraken", "binance"], seed=3, print_urls=printed.put_nowait))
    try:
        async with asyncio.timeout(5):
            urls = json.loads(await printed.get())
        assert sorted(urls) == ["binance", "kraken"]
        assert urls["kraken"]["ws"].endswith("/v2") and urls["kraken"]["ws"].startswith("ws://127.0.0.1:")
        status, _, body = await http_get(urls["binance"]["rest"] + "/api/v3/exchangeInfo")
        assert status == 200 and [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
