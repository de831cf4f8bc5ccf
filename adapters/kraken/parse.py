"""Pure Kraken spot parsers: WS v1 and v2 frames and REST ``Depth`` bodies -> normalized events.

One :class:`KrakenDecoder` per connection reads both protocol versions (v1 frames are JSON
arrays or ``event`` objects, v2 frames are ``channel``/``method`` objects). It remembers only
what the framing forces it to: v1 channel ids -> (pair, depth), the v2 subscribed depth per
symbol, and the v2 price/qty precision per symbol (from the ``instrument`` channel or the
constructor).

Checksum text (§7.3): v1 levels keep the strings received. v2 sends JSON numbers, so the v2
path parses them with ``parse_float=Decimal`` (the digits survive exactly as sent) and formats
them to the pair's precision, ``f"{x:.{prec}f}"``; when the precision is unknown the number's
own text is kept. Every value is validated before any event is built: a malformed frame raises
:class:`AdapterError` and never changes a book.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from bookkeeper.errors import AdapterError
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Subscribed,
    VenueNotice,
)

from .._common import FrameDecoder, check_string_level, string_row
from .schemas import BOOK_PREFIX, DEFAULT_DEPTH, V2_BOOK, V2_HEARTBEAT, V2_INSTRUMENT

EXCHANGE = "kraken"
_MAX = 1e15
_UINT32 = 1 << 32
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_PRECISION = 18

Levels = list[tuple[float, float]]
RawLevels = list[tuple[str, str]]


def _fail(msg: str, frame: Any, symbol: str | None = None) -> AdapterError:
    return AdapterError(msg, exchange=EXCHANGE, raw=frame, symbol=symbol)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


# ---------------------------------------------------------------------------------- v1
def parse_v1_levels(rows: Any, frame: Any, symbol: str | None) -> tuple[Levels, RawLevels, float]:
    """``[[price, volume, timestamp(, "r")], ...]`` strings -> levels, wire strings and the
    newest level timestamp (seconds; 0.0 when empty)."""
    if type(rows) is not list:
        raise _fail("levels must be a list", frame, symbol)
    out: Levels = []
    raw: RawLevels = []
    newest = 0.0
    for row in rows:
        px, sz = string_row(row, EXCHANGE, frame, symbol)
        try:
            p = float(px)
            s = float(sz)
            t = float(row[2]) if len(row) > 2 and type(row[2]) is str else 0.0
        except ValueError:
            raise _fail(f"bad level {row!r}", frame, symbol) from None
        check_string_level(p, s, px, sz, row, EXCHANGE, frame, symbol)
        if t > newest and t < 1e11:
            newest = t
        out.append((p, s))
        raw.append((px, sz))
    return out, raw, newest


def _v1_checksum(value: Any, frame: Any, symbol: str) -> int:
    if type(value) is not str or not value.isdigit() or len(value) > 10 or int(value) >= _UINT32:
        raise _fail(f"bad checksum {value!r}", frame, symbol)
    return int(value)


def _v1_depth(channel_name: Any, frame: Any, symbol: str) -> int:
    try:
        depth = int(channel_name[len(BOOK_PREFIX):])
    except ValueError:
        raise _fail(f"bad book channel name {channel_name!r}", frame, symbol) from None
    if not 0 < depth <= 100_000:
        raise _fail(f"bad book depth {channel_name!r}", frame, symbol)
    return depth


def parse_v1_book(arr: list[Any], frame: Any, ts_recv_ns: int) -> list[MarketEvent]:
    """A v1 book frame ``[channelID, dict(, dict), "book-N", pair]``."""
    if len(arr) < 4 or type(arr[-1]) is not str:
        raise _fail("bad v1 book frame", frame)
    symbol = arr[-1]
    depth = _v1_depth(arr[-2], frame, symbol)
    parts = arr[1:-2]
    if not parts or any(type(p) is not dict for p in parts):
        raise _fail("v1 book frame without level objects", frame, symbol)
    if "as" in parts[0] or "bs" in parts[0]:
        if len(parts) != 1:
            raise _fail("v1 snapshot with several objects", frame, symbol)
        bids, bids_raw, tb = parse_v1_levels(parts[0].get("bs", []), frame, symbol)
        asks, asks_raw, ta = parse_v1_levels(parts[0].get("as", []), frame, symbol)
        return [BookSnapshot(symbol=symbol, bids=bids, asks=asks, bids_raw=bids_raw, asks_raw=asks_raw,
                             depth=depth, source=SnapshotSource.WS, ts_exchange_ns=int(max(tb, ta) * 1e9),
                             ts_recv_ns=ts_recv_ns)]
    bids: Levels = []
    bids_raw: RawLevels = []
    asks: Levels = []
    asks_raw: RawLevels = []
    checksum: int | None = None
    newest = 0.0
    for part in parts:
        if "a" in part:
            lv, raw, t = parse_v1_levels(part["a"], frame, symbol)
            asks += lv
            asks_raw += raw
            newest = max(newest, t)
        if "b" in part:
            lv, raw, t = parse_v1_levels(part["b"], frame, symbol)
            bids += lv
            bids_raw += raw
            newest = max(newest, t)
        if "c" in part:
            checksum = _v1_checksum(part["c"], frame, symbol)
    if not bids and not asks and checksum is None:
        raise _fail("v1 book update without levels", frame, symbol)
    return [BookDelta(symbol=symbol, bids=bids, asks=asks, checksum=checksum, bids_raw=bids_raw,
                      asks_raw=asks_raw, ts_exchange_ns=int(newest * 1e9), ts_recv_ns=ts_recv_ns)]


# ---------------------------------------------------------------------------------- v2
def _fmt(value: Decimal, prec: int | None) -> str:
    if prec is None:
        return format(value, "f")
    return f"{value:.{prec}f}"


def parse_v2_levels(
    rows: Any, frame: Any, symbol: str, precision: tuple[int, int] | None
) -> tuple[Levels, RawLevels]:
    """``[{"price": n, "qty": n}, ...]`` (Decimal/int after parsing) -> levels and checksum text."""
    if type(rows) is not list:
        raise _fail("levels must be a list", frame, symbol)
    pp, qp = precision if precision is not None else (None, None)
    out: Levels = []
    raw: RawLevels = []
    for row in rows:
        if type(row) is not dict:
            raise _fail(f"bad level {row!r}", frame, symbol)
        px = row.get("price")
        qty = row.get("qty")
        if type(px) is int:
            px = Decimal(px)
        if type(qty) is int:
            qty = Decimal(qty)
        if type(px) is not Decimal or type(qty) is not Decimal:
            raise _fail(f"price and qty must be numbers: {row!r}", frame, symbol)
        p = float(px)
        s = float(qty)
        if not (0.0 < p < _MAX) or not (0.0 <= s < _MAX):
            raise _fail(f"level out of range {row!r}", frame, symbol)
        out.append((p, s))
        raw.append((_fmt(px, pp), _fmt(qty, qp)))
    return out, raw


def _rfc3339_ns(value: Any, frame: Any, symbol: str | None) -> int:
    if value is None:
        return 0
    if type(value) is not str:
        raise _fail(f"bad timestamp {value!r}", frame, symbol)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"bad timestamp {value!r}", frame, symbol) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _precision(value: Any) -> int | None:
    if type(value) is int and 0 <= value <= _MAX_PRECISION:
        return value
    return None


class KrakenState:
    """What one Kraken spot connection (v1 or v2) remembers, and its frame parser.

    Args:
        precisions: ``{symbol: (price_decimals, qty_decimals)}`` for the v2 checksum text
            (e.g. from ccxt ``market["precision"]``); the v2 ``instrument`` channel adds to it.
        depth: the v2 book depth subscribed, when the subscribe ack is not seen (default 10,
            Kraken's own default).
    """

    __slots__ = ("_channels", "_default_depth", "_depths", "_precisions")

    def __init__(self, precisions: Mapping[str, tuple[int, int]] | None = None, depth: int | None = None) -> None:
        self._precisions: dict[str, tuple[int, int]] = dict(precisions or {})
        self._depths: dict[str, int] = {}
        self._default_depth = depth or DEFAULT_DEPTH
        self._channels: dict[int, tuple[str, str]] = {}  # v1 channelID -> (pair, channelName)

    @property
    def precisions(self) -> dict[str, tuple[int, int]]:
        """The v2 precisions known so far (a copy)."""
        return dict(self._precisions)

    def parse(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        """Translate one frame.

        Raises:
            AdapterError: malformed JSON, wrong types, NaN/inf/negative/huge numbers.
        """
        try:
            obj = orjson.loads(frame)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise _fail(f"invalid JSON: {exc}", frame) from None
        if type(obj) is list:
            if len(obj) >= 4 and type(obj[-2]) is str and obj[-2].startswith(BOOK_PREFIX):
                return parse_v1_book(obj, frame, ts_recv_ns)
            return []  # v1 trade, spread, ticker, ohlc ...
        if type(obj) is not dict:
            raise _fail("frame is neither an array nor an object", frame)
        if "event" in obj:
            return self._v1_event(obj, frame)
        channel = obj.get("channel")
        if channel == V2_BOOK:
            return self._v2_book(frame)
        if channel == V2_HEARTBEAT:
            return [Heartbeat()]
        if channel == V2_INSTRUMENT:
            self._v2_instrument(obj, frame)
            return []
        if "method" in obj:
            return self._v2_method(obj)
        return []  # status, ticker, trade, ohlc ...

    # v1 control -------------------------------------------------------------------
    def _v1_event(self, obj: dict[str, Any], frame: Any) -> list[MarketEvent]:
        event = obj.get("event")
        if event == "heartbeat":
            return [Heartbeat()]
        if event == "subscriptionStatus":
            pair = obj.get("pair") if type(obj.get("pair")) is str else None
            if obj.get("status") == "error":
                return [VenueNotice(kind=NoticeKind.ERROR, message=str(obj.get("errorMessage", "")), symbol=pair)]
            name = obj.get("channelName")
            if obj.get("status") == "subscribed" and type(name) is str:
                cid = obj.get("channelID")
                if type(cid) is int and pair is not None:
                    self._channels[cid] = (pair, name)
                depth = None
                if name.startswith(BOOK_PREFIX):
                    depth = _v1_depth(name, frame, pair or "")
                return [Subscribed(symbol=pair, channel=name, depth=depth)]
            return []
        if event == "error":
            return [VenueNotice(kind=NoticeKind.ERROR, message=str(obj.get("errorMessage", "")))]
        return []  # systemStatus, pong

    # v2 ---------------------------------------------------------------------------
    def _v2_method(self, obj: dict[str, Any]) -> list[MarketEvent]:
        method = obj.get("method")
        if method not in ("subscribe", "unsubscribe"):
            return []  # pong
        result = obj.get("result") if type(obj.get("result")) is dict else {}
        sym = result.get("symbol") if type(result.get("symbol")) is str else None
        if obj.get("success") is False:
            return [VenueNotice(kind=NoticeKind.ERROR, message=str(obj.get("error", "")), symbol=sym)]
        if method == "unsubscribe":
            return []
        channel = str(result.get("channel", ""))
        depth = result.get("depth") if type(result.get("depth")) is int else None
        if channel == V2_BOOK and sym is not None and depth is not None and depth > 0:
            self._depths[sym] = depth
        return [Subscribed(symbol=sym, channel=channel, depth=depth)]

    def _v2_instrument(self, obj: dict[str, Any], frame: Any) -> None:
        data = obj.get("data")
        if type(data) is not dict:
            raise _fail("instrument data must be an object", frame)
        pairs = data.get("pairs", [])
        if type(pairs) is not list:
            raise _fail("instrument pairs must be a list", frame)
        for pair in pairs:
            if type(pair) is not dict or type(pair.get("symbol")) is not str:
                raise _fail(f"bad instrument pair {pair!r}", frame)
            pp = _precision(pair.get("price_precision"))
            qp = _precision(pair.get("qty_precision"))
            if pp is not None and qp is not None:
                self._precisions[pair["symbol"]] = (pp, qp)

    def _v2_book(self, frame: bytes | str) -> list[MarketEvent]:
        try:
            obj = json.loads(frame, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, TypeError, RecursionError) as exc:
            # RecursionError: orjson accepts nesting up to 1024 levels, the stdlib parser
            # gives up earlier (~990), so a frame nested in between reaches this line.
            raise _fail(f"invalid JSON: {type(exc).__name__}: {exc}", frame) from None
        kind = obj.get("type")
        data = obj.get("data")
        if kind not in ("snapshot", "update") or type(data) is not list:
            raise _fail("book message needs type snapshot|update and a data list", frame)
        out: list[MarketEvent] = []
        for entry in data:
            if type(entry) is not dict or type(entry.get("symbol")) is not str:
                raise _fail("book entry without symbol", frame)
            sym = entry["symbol"]
            prec = self._precisions.get(sym)
            bids, bids_raw = parse_v2_levels(entry.get("bids", []), frame, sym, prec)
            asks, asks_raw = parse_v2_levels(entry.get("asks", []), frame, sym, prec)
            checksum = entry.get("checksum")
            if checksum is not None and (type(checksum) is not int or not 0 <= checksum < _UINT32):
                raise _fail(f"bad checksum {checksum!r}", frame, sym)
            ts = _rfc3339_ns(entry.get("timestamp"), frame, sym)
            if kind == "snapshot":
                out.append(BookSnapshot(symbol=sym, bids=bids, asks=asks, checksum=checksum, bids_raw=bids_raw,
                                        asks_raw=asks_raw, depth=self._depths.get(sym, self._default_depth),
                                        source=SnapshotSource.WS, ts_exchange_ns=ts))
            else:
                out.append(BookDelta(symbol=sym, bids=bids, asks=asks, checksum=checksum, bids_raw=bids_raw,
                                     asks_raw=asks_raw, ts_exchange_ns=ts))
        return out


def _parse(frame: bytes | str, ts_recv_ns: int, state: KrakenState) -> list[MarketEvent]:
    return state.parse(frame, ts_recv_ns)


class KrakenDecoder(FrameDecoder):
    """Decoder for one Kraken spot connection (v1 or v2), or one recorded session: a
    :class:`FrameDecoder` (so any stray exception becomes :class:`AdapterError`) over one
    :class:`KrakenState`.

    Args:
        precisions: ``{symbol: (price_decimals, qty_decimals)}`` for the v2 checksum text.
        depth: the v2 book depth subscribed, when the subscribe ack is not seen.
    """

    __slots__ = ()

    def __init__(self, precisions: Mapping[str, tuple[int, int]] | None = None, depth: int | None = None) -> None:
        super().__init__(_parse, KrakenState(precisions, depth), exchange=EXCHANGE)

    @property
    def precisions(self) -> dict[str, tuple[int, int]]:
        """The v2 precisions known so far (a copy)."""
        return self._args[0].precisions


# ---------------------------------------------------------------------------------- REST
def parse_rest_depth(
    body: bytes | str | Mapping[str, Any], symbol: str | None = None, url: str | None = None, ts_recv_ns: int = 0
) -> BookSnapshot:
    """REST ``/0/public/Depth`` body (raw, or the dict ccxt's ``public_get_depth`` returns)
    -> ``BookSnapshot(source=REST, seq=None)`` (Kraken's REST book has no id, §7.4).

    The symbol is ``symbol``, else the single key of ``result`` (Kraken's own spelling, e.g.
    ``XXBTZUSD``); ``url``'s ``pair=`` selects among several keys.

    Raises:
        AdapterError: malformed body, a non-empty ``error`` list, or an ambiguous symbol.
    """
    if isinstance(body, (bytes, str)):
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _fail(f"invalid JSON: {exc}", body, symbol) from None
    else:
        obj = body
    excerpt = str(body)[:200]
    if not isinstance(obj, Mapping):
        raise _fail("REST body is not an object", excerpt, symbol)
    if obj.get("error"):
        raise _fail(f"REST error {obj.get('error')!r}", excerpt, symbol)
    result = obj.get("result")
    if not isinstance(result, Mapping) or not result:
        raise _fail("REST body has no result", excerpt, symbol)
    key: str | None = None
    if symbol is not None and symbol in result:
        key = symbol
    elif len(result) == 1:
        key = next(iter(result))
    elif url:
        pair = (parse_qs(urlsplit(url).query).get("pair") or [None])[0]
        key = pair if pair in result else None
    if key is None:
        raise _fail("cannot tell which pair of the REST body to use", excerpt, symbol)
    book = result[key]
    if not isinstance(book, Mapping):
        raise _fail("REST pair entry is not an object", excerpt, symbol)
    bids, bids_raw, _ = parse_v1_levels(book.get("bids", []), excerpt, symbol or key)
    asks, asks_raw, _ = parse_v1_levels(book.get("asks", []), excerpt, symbol or key)
    return BookSnapshot(symbol=symbol or key, bids=bids, asks=asks, bids_raw=bids_raw, asks_raw=asks_raw,
                        source=SnapshotSource.REST, ts_recv_ns=ts_recv_ns)
