"""Binance wire shapes, fields spelled as Binance spells them.

Spot diff depth (binance-spot-api-docs ``web-socket-streams.md`` "Diff. Depth Stream"):
``{"e":"depthUpdate","E":ms,"s":"BNBBTC","U":first id,"u":final id,"b":[[px,qty]],"a":[...]}``.
USD-M / COIN-M add ``"T"`` (transaction time) and ``"pu"`` (the previous event's ``u``).
Prices and quantities are decimal strings; msgspec converts them to float in C
(``strict=False``) and the ``Meta`` bounds reject NaN, inf, negative sizes and absurd values
without a Python-level loop.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from .._common import SEQ_MAX, SeqId

Px = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
Sz = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]


class DepthUpdate(msgspec.Struct):
    e: str
    s: str
    U: SeqId
    u: SeqId
    b: list[tuple[Px, Sz]]
    a: list[tuple[Px, Sz]]
    E: int = 0
    pu: Annotated[int, msgspec.Meta(ge=-1, le=SEQ_MAX)] | None = None  # futures only


class CombinedDepth(msgspec.Struct):
    stream: str
    data: DepthUpdate


class DepthSnapshot(msgspec.Struct):
    """REST ``GET /api/v3/depth`` (spot) / ``/fapi/v1/depth`` / ``/dapi/v1/depth``."""

    lastUpdateId: SeqId
    bids: list[tuple[Px, Sz]]
    asks: list[tuple[Px, Sz]]
    E: int = 0
    T: int = 0
