"""Pure Gate parsers: wire frames and REST bodies -> normalized events.

``U``/``u`` become ``first_seq``/``last_seq`` here and nowhere later. Levels come as
``[px, sz]`` rows (spot) or ``{"p": px, "s": size}`` objects (futures); both shapes are
accepted everywhere, so one decoder serves both markets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Subscribed,
    VenueNotice,
)

from .._common import level, loads
from .._common import ms_to_ns as _ms_to_ns_float
from .schemas import SPOT_OBU, TICKER_CHANNELS, UPDATE_CHANNELS

_MAX_SEQ = 1 << 63


def ms_to_ns(ms: Any, exchange: str = "gateio", raw: Any = b"") -> int:
    """Integer milliseconds convert exactly (``_common.ms_to_ns`` goes through float and is
    off by up to ~100 ns at today's epoch); other forms fall back to it."""
    if isinstance(ms, int) and not isinstance(ms, bool):
        return ms * 1_000_000 if 0 <= ms < _MAX_SEQ // 1_000_000 else 0
    return _ms_to_ns_float(ms, exchange, raw)


def _err(msg: str, exchange: str, raw: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(msg, exchange=exchange, raw=raw, symbol=symbol)


def _seq(value: Any, name: str, exchange: str, raw: Any, symbol: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_SEQ:
        raise _err(f"{name} must be a non-negative int64, got {value!r}", exchange, raw, symbol)
    return value


def _levels(rows: Any, exchange: str, raw: Any, symbol: str | None) -> list[tuple[float, float]]:
    """``[[px, sz], ...]`` or ``[{"p": px, "s": sz}, ...]`` -> validated ``(price, size)``."""
    if not isinstance(rows, list):
        raise _err("levels must be a list", exchange, raw, symbol)
    out = []
    for row in rows:
        if isinstance(row, list) and len(row) >= 2:
            px, sz = row[0], row[1]
        elif isinstance(row, dict) and "p" in row and "s" in row:
            px, sz = row["p"], row["s"]
        else:
            raise _err(f"bad level {row!r}", exchange, raw, symbol)
        try:
            out.append(level(px, sz, exchange, raw))
        except AdapterError as exc:
            raise _err(str(exc), exchange, raw, symbol) from None
    return out


def _result_symbol(res: Mapping[str, Any]) -> str | None:
    sym = res.get("s", res.get("c"))
    return sym if isinstance(sym, str) and sym else None


def parse_update(res: Mapping[str, Any], frame: bytes | str, ts_recv_ns: int, exchange: str) -> BookDelta:
    """``spot.order_book_update`` / ``futures.order_book_update`` result -> :class:`BookDelta`.

    Raises:
        AdapterError: missing or mistyped fields, bad numbers, ``u < U``.
    """
    sym = _result_symbol(res)
    if sym is None:
        raise _err(f"order book update names no pair: {res.get('s', res.get('c'))!r}", exchange, frame)
    first = _seq(res.get("U"), "U", exchange, frame, sym)
    last = _seq(res.get("u"), "u", exchange, frame, sym)
    if last < first:
        raise _err(f"u {last} < U {first}", exchange, frame, sym)
    bids = _levels(res.get("b", []), exchange, frame, sym)
    asks = _levels(res.get("a", []), exchange, frame, sym)
    return BookDelta(symbol=sym, bids=bids, asks=asks, first_seq=first, last_seq=last,
                     ts_exchange_ns=ms_to_ns(res.get("t"), exchange, frame), ts_recv_ns=ts_recv_ns)


def parse_obu(res: Mapping[str, Any], frame: bytes | str, ts_recv_ns: int, exchange: str) -> BookDelta | BookSnapshot:
    """``spot.obu`` result (``s = "ob.{pair}.{depth}"``): ``full: true`` -> WS snapshot at
    ``u``; otherwise an increment ``U..u`` (§11.2: apply when ``U == local + 1``).

    Raises:
        AdapterError: malformed stream name, fields or numbers.
    """
    stream = res.get("s")
    parts = stream.split(".") if isinstance(stream, str) else []
    if len(parts) != 3 or parts[0] != "ob" or not parts[1] or not parts[2].isdigit():
        raise _err(f"bad obu stream name {stream!r}", exchange, frame)
    sym = parts[1]
    last = _seq(res.get("u"), "u", exchange, frame, sym)
    bids = _levels(res.get("b", []), exchange, frame, sym)
    asks = _levels(res.get("a", []), exchange, frame, sym)
    ts = ms_to_ns(res.get("t"), exchange, frame)
    full = res.get("full", False)
    if full is True:
        return BookSnapshot(symbol=sym, bids=bids, asks=asks, seq=last, source=SnapshotSource.WS,
                            ts_exchange_ns=ts, ts_recv_ns=ts_recv_ns)
    if full is not False:
        raise _err(f"obu full must be a bool, got {full!r}", exchange, frame, sym)
    first = _seq(res.get("U"), "U", exchange, frame, sym)
    if last < first:
        raise _err(f"u {last} < U {first}", exchange, frame, sym)
    return BookDelta(symbol=sym, bids=bids, asks=asks, first_seq=first, last_seq=last, ts_exchange_ns=ts,
                     ts_recv_ns=ts_recv_ns)


def parse_book_ticker(res: Mapping[str, Any], frame: bytes | str, ts_recv_ns: int,
                      exchange: str) -> list[MarketEvent]:
    """``*.book_ticker`` result ``{t, u, s, b, B, a, A}`` -> :class:`BookTicker` at id ``u``
    (the same counter as the book's ``U``/``u``), for the session's top-of-book cross-check.
    A side that is empty (``""``) gives nothing to compare: ``[]``.

    Raises:
        AdapterError: mistyped fields or bad numbers.
    """
    sym = _result_symbol(res)
    if sym is None:
        raise _err("book_ticker names no pair", exchange, frame)
    seq = _seq(res.get("u"), "u", exchange, frame, sym)
    if res.get("b") in ("", None) or res.get("a") in ("", None):
        return []
    try:
        bp, bs = level(res.get("b"), res.get("B"), exchange, frame)
        ap, as_ = level(res.get("a"), res.get("A"), exchange, frame)
    except AdapterError as exc:
        raise _err(str(exc), exchange, frame, sym) from None
    return [BookTicker(symbol=sym, seq=seq, bid_price=bp, bid_size=bs, ask_price=ap, ask_size=as_,
                       ts_recv_ns=ts_recv_ns)]


def parse_message(obj: Any, frame: bytes | str, ts_recv_ns: int, exchange: str) -> list[MarketEvent]:
    """Any decoded Gate v4 frame; other channels and control frames yield ``[]``."""
    if not isinstance(obj, dict):
        raise _err("frame is not a JSON object", exchange, frame)
    channel = obj.get("channel")
    if channel is not None and type(channel) is not str:
        # an unhashable value (``[...]``) would make the set lookups below raise TypeError
        raise _err(f"channel must be a string, got {type(channel).__name__}", exchange, frame)
    event = obj.get("event")
    error = obj.get("error")
    if error:
        msg = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        return [VenueNotice(kind=NoticeKind.ERROR, message=f"{channel} {event}: {code}: {msg}")]
    if channel in UPDATE_CHANNELS or channel == SPOT_OBU:
        if event == "update":
            res = obj.get("result")
            if not isinstance(res, dict):
                raise _err("result is not an object", exchange, frame)
            if channel == SPOT_OBU:
                return [parse_obu(res, frame, ts_recv_ns, exchange)]
            return [parse_update(res, frame, ts_recv_ns, exchange)]
        if event == "subscribe":
            return [Subscribed(symbol=None, channel=str(channel))]
        return []
    if channel in TICKER_CHANNELS and event == "update":
        res = obj.get("result")
        if not isinstance(res, dict):
            raise _err("result is not an object", exchange, frame)
        return parse_book_ticker(res, frame, ts_recv_ns, exchange)
    if not isinstance(channel, str) and "result" in obj:
        raise _err(f"frame has no string channel: {channel!r}", exchange, frame)
    return []


def decode(frame: bytes | str, ts_recv_ns: int, exchange: str) -> list[MarketEvent]:
    """Decode any Gate v4 public frame."""
    return parse_message(loads(frame, exchange), frame, ts_recv_ns, exchange)


def symbol_from_url(url: str | None) -> str | None:
    if not url:
        return None
    q = parse_qs(urlsplit(url).query)
    values = q.get("currency_pair") or q.get("contract")
    return values[0] if values else None


def parse_rest_snapshot(
    body: bytes | str | Mapping[str, Any], symbol: str | None, url: str | None, ts_recv_ns: int, exchange: str,
    *, seconds_clock: bool = False,
) -> BookSnapshot:
    """REST order book taken with ``with_id=true`` -> ``BookSnapshot(source=REST, seq=id)``.

    ``seconds_clock``: futures give ``current``/``update`` in float seconds, spot in ms.

    Raises:
        AdapterError: malformed body, no ``id`` (a book without it cannot be bridged), an
            error ``label``, or no symbol.
    """
    obj = loads(body, exchange) if isinstance(body, (bytes, str)) else body
    sym = symbol or symbol_from_url(url)
    if not isinstance(obj, Mapping):
        raise _err("REST body is not an object", exchange, str(body), sym)
    if "label" in obj and "bids" not in obj:
        raise _err(f"REST error {obj.get('label')}: {obj.get('message')}", exchange, str(body), sym)
    if not sym:
        raise _err("REST snapshot names no pair (pass symbol= or url=)", exchange, str(body))
    if "id" not in obj:
        raise _err("REST order book has no id: request it with with_id=true", exchange, str(body), sym)
    seq = _seq(obj.get("id"), "id", exchange, str(body), sym)
    bids = _levels(obj.get("bids"), exchange, str(body), sym)
    asks = _levels(obj.get("asks"), exchange, str(body), sym)
    cur = obj.get("current")
    if seconds_clock:
        ts = ms_to_ns(cur * 1000, exchange, body) if isinstance(cur, (int, float)) and not isinstance(cur, bool) else 0
    else:
        ts = ms_to_ns(cur, exchange, body)
    return BookSnapshot(symbol=sym, bids=bids, asks=asks, seq=seq, source=SnapshotSource.REST, ts_exchange_ns=ts,
                        ts_recv_ns=ts_recv_ns)
