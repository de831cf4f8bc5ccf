"""Pure Binance parsers: wire frames and REST bodies -> normalized events.

``U``/``u``/``pu`` become ``first_seq``/``last_seq``/``prev_seq`` here and nowhere later.
The depth path is the hot path of the whole library: one typed msgspec decode (C), one
``BookDelta`` construction, no per-level Python. With the optional C decoder beside this file
(``_fastdepth.c``, built as ``bookkeeper.adapters.binance._fastdepth`` and loaded through
``bookkeeper._accel``, so ``BOOKKEEPER_PURE_PYTHON=1`` turns it off) a strict-subset decoder handles the
frames Binance actually sends (bytes, no escapes, plain decimal strings) and builds the same
``BookDelta`` directly (~2x faster than msgspec + ``BookDelta``); it answers ``None`` for
anything else and the msgspec path below decides, errors included
(``tests/speedups/test_speedups_binance.py`` checks both against each other).
``fused_depth`` is its fused decode + apply of the synced steady state, for
``BookSession.apply_frame_fast`` (``tests/speedups/test_fastpath.py``); it applies through
``bookkeeper._speedups``' C API, the generic book loop. Without the C decoder ``fused_depth`` is
the pure-Python twin in ``_purefast.py`` (the same contract; it decodes with this module's own
msgspec decoders, which it defines).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from bookkeeper._accel import load
from bookkeeper.errors import AdapterError
from bookkeeper.events import BookDelta, BookSnapshot, BookTicker, MarketEvent, SnapshotSource, Subscribed, Trade
from bookkeeper.types import TradeSide

from .._common import level, loads, ms_to_ns, seq_int
from ._purefast import COMBINED as _combined
from ._purefast import PLAIN as _plain
from ._purefast import fused_depth_py
from .schemas import DepthSnapshot

_snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False)
_snapshot_convert = DepthSnapshot

_fd = load("bookkeeper.adapters.binance._fastdepth")
#: ``binance_depth(frame, ts_recv_ns, BookDelta) -> BookDelta | None`` from the optional C
#: decoder, or None (not built, or ``BOOKKEEPER_PURE_PYTHON=1``; tests may set it to None).
_fast_depth: Any = None if _fd is None else _fd.binance_depth
#: The fused steady-state decode + apply for ``BookSession.apply_frame_fast``: C's
#: ``binance_depth_apply``, or without the C decoder its pure-Python twin (``_purefast.py``:
#: the same contract, and the pure path's main saving on a synced stream).
fused_depth: Any = fused_depth_py if _fd is None else _fd.binance_depth_apply


def parse_depth_update(frame: bytes | str, ts_recv_ns: int, exchange: str) -> BookDelta:
    """Decode one ``depthUpdate`` frame (plain or combined-stream envelope).

    Raises:
        AdapterError: malformed frame or out-of-range values.
    """
    if _fast_depth is not None:
        delta = _fast_depth(frame, ts_recv_ns, BookDelta)
        if delta is not None:
            return delta
    return _parse_depth_update_typed(frame, ts_recv_ns, exchange)


def _parse_depth_update_typed(frame: bytes | str, ts_recv_ns: int, exchange: str) -> BookDelta:
    """The msgspec path: every frame the C decoder does not take, and all errors."""
    try:
        if frame[:9] in (b'{"stream"', '{"stream"'):
            d = _combined.decode(frame).data
        else:
            d = _plain.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise AdapterError(f"bad depthUpdate: {exc}", exchange=exchange, raw=frame) from None
    if d.u < d.U:
        raise AdapterError(f"depthUpdate u {d.u} < U {d.U}", exchange=exchange, raw=frame, symbol=d.s)
    return BookDelta(symbol=d.s, bids=d.b, asks=d.a, first_seq=d.U, last_seq=d.u, prev_seq=d.pu,
                     ts_exchange_ns=d.E * 1_000_000, ts_recv_ns=ts_recv_ns)


def parse_message(obj: Any, frame: bytes | str, ts_recv_ns: int, exchange: str) -> list[MarketEvent]:
    """Non-depth messages: bookTicker, trades, subscription acks; unknown -> ``[]``."""
    if not isinstance(obj, dict):
        raise AdapterError("frame is not a JSON object", exchange=exchange, raw=frame)
    data = obj.get("data", obj) if "stream" in obj else obj
    if not isinstance(data, dict):
        raise AdapterError("data is not an object", exchange=exchange, raw=frame)
    kind = data.get("e")
    if kind == "depthUpdate":
        return [parse_depth_update(frame, ts_recv_ns, exchange)]
    if "lastUpdateId" in data and "bids" in data:
        return [parse_depth_snapshot(data, None, ts_recv_ns, exchange)]
    if kind == "bookTicker" or (kind is None and {"u", "b", "a", "B", "A"} <= data.keys()):
        try:
            bid = level(data["b"], data["B"], exchange, frame)
            ask = level(data["a"], data["A"], exchange, frame)
            return [BookTicker(symbol=str(data["s"]), seq=seq_int(data["u"], "u", exchange, frame), bid_price=bid[0], bid_size=bid[1],
                               ask_price=ask[0], ask_size=ask[1], ts_recv_ns=ts_recv_ns)]
        except (KeyError, TypeError, ValueError) as exc:
            raise AdapterError(f"bad bookTicker: {exc}", exchange=exchange, raw=frame) from None
    if kind in ("trade", "aggTrade"):
        try:
            return [Trade(symbol=str(data["s"]), trade_id=str(data.get("t", data.get("a"))),
                          price=Decimal(str(data["p"])), qty=Decimal(str(data["q"])),
                          side=TradeSide.SELL if data.get("m") else TradeSide.BUY,
                          ts_exchange_ns=ms_to_ns(data.get("T"), exchange, frame), ts_recv_ns=ts_recv_ns)]
        except (KeyError, ArithmeticError, ValueError) as exc:
            raise AdapterError(f"bad trade: {exc}", exchange=exchange, raw=frame) from None
    if "result" in obj and "id" in obj:
        return [Subscribed(symbol=None, channel="depth")]
    if "code" in obj and "msg" in obj:
        raise AdapterError(f"venue error {obj.get('code')}: {obj.get('msg')}", exchange=exchange, raw=frame)
    return []


def symbol_from_url(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("symbol")
    return values[0] if values else None


def parse_depth_snapshot(
    body: bytes | str | Mapping[str, Any], symbol: str | None, ts_recv_ns: int, exchange: str, url: str | None = None
) -> BookSnapshot:
    """REST depth body (raw bytes, or the dict ccxt's ``public_get_depth`` returns).

    Raises:
        AdapterError: malformed body or no symbol.
    """
    try:
        if isinstance(body, (bytes, str)):
            snap = _snapshot.decode(body)
        else:
            snap = msgspec.convert(body, _snapshot_convert, strict=False)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise AdapterError(f"bad depth snapshot: {exc}", exchange=exchange, raw=str(body)) from None
    sym = symbol or symbol_from_url(url) or ""
    return BookSnapshot(symbol=sym, bids=snap.bids, asks=snap.asks, seq=snap.lastUpdateId,
                        source=SnapshotSource.REST, ts_exchange_ns=ms_to_ns(snap.T or snap.E, exchange, str(body)[:200]),
                        ts_recv_ns=ts_recv_ns)


def decode(frame: bytes | str, ts_recv_ns: int, exchange: str) -> list[MarketEvent]:
    """Decode any Binance market-data frame."""
    if (b"depthUpdate" if isinstance(frame, bytes) else "depthUpdate") in frame:
        if _fast_depth is not None:
            delta = _fast_depth(frame, ts_recv_ns, BookDelta)
            if delta is not None:
                return [delta]
        return [_parse_depth_update_typed(frame, ts_recv_ns, exchange)]
    return parse_message(loads(frame, exchange), frame, ts_recv_ns, exchange)
