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
