"""Loading the private-side samples of one venue (``fixtures/private/<venue>/``), shared by the
``test_<venue>_private.py`` modules. The samples are our own (ids and values made up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bookkeeper.ports import AccountAdapter

MS = 1_000_000
DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Samples:
    """``frame(name)`` raw bytes, ``body(name)`` parsed, ``decode(name)`` through a fresh
    private decoder of ``account``."""

    def __init__(self, venue: str, account: AccountAdapter) -> None:
        self.dir = Path(__file__).resolve().parents[2] / "fixtures" / "private" / venue
        self.account = account

    def frame(self, name: str) -> bytes:
        return (self.dir / f"{name}.json").read_bytes()

    def body(self, name: str) -> Any:
        return orjson.loads(self.frame(name))

    def decode(self, name: str, ts_recv_ns: int = 5) -> list[object]:
        return self.account.new_private_decoder().decode(self.frame(name), ts_recv_ns)
