"""Pure KuCoin parsers: wire frames and REST bodies -> normalized events.

``sequenceStart``/``sequenceEnd`` become ``first_seq``/``last_seq`` here and nowhere later;
each change's own sequence goes to ``bid_seqs``/``ask_seqs`` (index-aligned with the levels),
which the session uses to drop changes already inside the snapshot on the bridging message
(exchange-protocols.md §10.2 step 5). Placeholder changes (price ``"0"``) produce no level
but the message keeps its whole id range, so continuity is unaffected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bookkeeper.errors import AdapterError, InvalidEvent
from bookkeeper.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    NoticeKind,
    SnapshotSource,
    Subscribed,
    VenueNotice,
)

from .._common import level, levels, loads
from .._common import ms_to_ns as _ms_to_ns_float
from .schemas import CONTROL_TYPES, L2_SUBJECT, L2_TOPIC_PREFIX, REST_OK

EXCHANGE = "kucoin"
_MAX_SEQ = 1 << 63


def ms_to_ns(ms: Any, raw: Any = b"") -> int:
    """Integer milliseconds convert exactly (``_common.ms_to_ns`` goes through float and is
    off by up to ~100 ns at today's epoch); other forms fall back to it."""
    if isinstance(ms, int) and not isinstance(ms, bool):
        return ms * 1_000_000 if 0 <= ms < _MAX_SEQ // 1_000_000 else 0
    return _ms_to_ns_float(ms, EXCHANGE, raw)  # KuCoin ids are int64


def _seq(value: Any, name: str, raw: Any, symbol: str | None) -> int:
    """A sequence id: an int, or a string of decimal digits (REST ``sequence``, change ids)."""
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str) and value.isdigit() and value.isascii():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < _MAX_SEQ:
        raise AdapterError(f"{name} must be a non-negative int64, got {value!r}", exchange=EXCHANGE, raw=raw,
                           symbol=symbol)
    return value


def _changes(rows: Any, first: int, last: int, raw: Any, symbol: str) -> tuple[list[tuple[float, float]], list[int]]:
    """Validate one side's ``[price, size, sequence]`` rows; skip price-0 placeholders."""
    if not isinstance(rows, list):
        raise AdapterError("changes side must be a list", exchange=EXCHANGE, raw=raw, symbol=symbol)
    out: list[tuple[float, float]] = []
    seqs: list[int] = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 3:
            raise AdapterError(f"bad change {row!r}", exchange=EXCHANGE, raw=raw, symbol=symbol)
        q = _seq(row[2], "change sequence", raw, symbol)
        if q > last:
            raise AdapterError(f"change sequence {q} beyond sequenceEnd {last}", exchange=EXCHANGE, raw=raw,
                               symbol=symbol)
        px = row[0]
        if px == "0" or px == 0:
            continue  # sequence-only placeholder (§10.2 step 6): no level, the range still counts
        try:
            lv = level(px, row[1], EXCHANGE, raw)
        except AdapterError as exc:
            raise AdapterError(str(exc), exchange=EXCHANGE, raw=raw, symbol=symbol) from None
        out.append(lv)
        seqs.append(q)
    return out, seqs


def parse_l2update(obj: Mapping[str, Any], frame: bytes | str, ts_recv_ns: int) -> BookDelta:
    """One ``trade.l2update`` message -> one :class:`BookDelta`.

    Raises:
        AdapterError: missing or mistyped fields, bad numbers, ``sequenceEnd < sequenceStart``.
    """
    data = obj.get("data")
    topic = obj.get("topic")
    symbol: str | None = None
    if isinstance(topic, str) and topic.startswith(L2_TOPIC_PREFIX):
        symbol = topic[len(L2_TOPIC_PREFIX):] or None
    if not isinstance(data, dict):
        raise AdapterError("l2update data is not an object", exchange=EXCHANGE, raw=frame, symbol=symbol)
    sym = data.get("symbol", symbol)
    if not isinstance(sym, str) or not sym:
        raise AdapterError(f"l2update symbol must be a string, got {sym!r}", exchange=EXCHANGE, raw=frame,
                           symbol=symbol)
    first = _seq(data.get("sequenceStart"), "sequenceStart", frame, sym)
    last = _seq(data.get("sequenceEnd"), "sequenceEnd", frame, sym)
    if last < first:
        raise AdapterError(f"sequenceEnd {last} < sequenceStart {first}", exchange=EXCHANGE, raw=frame, symbol=sym)
    changes = data.get("changes")
    if not isinstance(changes, dict):
        raise AdapterError("l2update changes is not an object", exchange=EXCHANGE, raw=frame, symbol=sym)
    bids, bid_seqs = _changes(changes.get("bids", []), first, last, frame, sym)
    asks, ask_seqs = _changes(changes.get("asks", []), first, last, frame, sym)
    try:
        return BookDelta(symbol=sym, bids=bids, asks=asks, first_seq=first, last_seq=last, bid_seqs=bid_seqs,
                         ask_seqs=ask_seqs, ts_exchange_ns=ms_to_ns(data.get("time")), ts_recv_ns=ts_recv_ns)
    except InvalidEvent as exc:  # pragma: no cover - the checks above cover the invariants
        raise AdapterError(str(exc), exchange=EXCHANGE, raw=frame, symbol=sym) from None


def parse_message(obj: Any, frame: bytes | str, ts_recv_ns: int) -> list[MarketEvent]:
    """Any decoded KuCoin frame; unknown topics and control frames yield ``[]``."""
    if not isinstance(obj, dict):
        raise AdapterError("frame is not a JSON object", exchange=EXCHANGE, raw=frame)
    kind = obj.get("type")
    if kind is not None and type(kind) is not str:
        # an unhashable value (``[1]``) would make ``kind in CONTROL_TYPES`` raise TypeError
        raise AdapterError(f"frame has no string type: {type(kind).__name__}", exchange=EXCHANGE, raw=frame)
    if kind == "message":
        if obj.get("subject") == L2_SUBJECT:
            return [parse_l2update(obj, frame, ts_recv_ns)]
        return []  # ticker, match, candles...: not book data
    if kind == "ack":
        return [Subscribed(symbol=None, channel="level2")]
    if kind in CONTROL_TYPES:
        return []
    if kind == "error":
        return [VenueNotice(kind=NoticeKind.ERROR, message=f"{obj.get('code')}: {obj.get('data')}")]
    if not isinstance(kind, str):
        raise AdapterError(f"frame has no string type: {kind!r}", exchange=EXCHANGE, raw=frame)
    return []


def decode(frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
    """Decode any KuCoin public frame."""
    return parse_message(loads(frame, EXCHANGE), frame, ts_recv_ns)


def symbol_from_url(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("symbol")
    return values[0] if values else None


def parse_rest_snapshot(
    body: bytes | str | Mapping[str, Any], symbol: str | None = None, url: str | None = None, ts_recv_ns: int = 0
) -> BookSnapshot:
    """REST level-2 body (raw, or the dict ccxt's implicit endpoint method returns) ->
    ``BookSnapshot(source=REST, seq=int(sequence))``.

    Raises:
        AdapterError: malformed body, an error ``code``, or no symbol.
    """
    obj = loads(body, EXCHANGE) if isinstance(body, (bytes, str)) else body
    sym = symbol or symbol_from_url(url)
    if not isinstance(obj, Mapping):
        raise AdapterError("REST body is not an object", exchange=EXCHANGE, raw=str(body), symbol=sym)
    if "code" in obj and str(obj["code"]) != REST_OK:
        raise AdapterError(f"REST error {obj.get('code')}: {obj.get('msg')}", exchange=EXCHANGE, raw=str(body),
                           symbol=sym)
    data = obj.get("data", obj) if "data" in obj else obj
    if not isinstance(data, Mapping):
        raise AdapterError("REST data is not an object", exchange=EXCHANGE, raw=str(body), symbol=sym)
    if not sym:
        raise AdapterError("REST snapshot names no symbol (pass symbol= or url=)", exchange=EXCHANGE,
                           raw=str(body))
    seq = _seq(data.get("sequence"), "sequence", str(body), sym)
    try:
        bids = levels(data.get("bids"), EXCHANGE, str(body))
        asks = levels(data.get("asks"), EXCHANGE, str(body))
    except AdapterError as exc:
        raise AdapterError(str(exc), exchange=EXCHANGE, raw=str(body), symbol=sym) from None
    return BookSnapshot(symbol=sym, bids=bids, asks=asks, seq=seq, source=SnapshotSource.REST,
                        ts_exchange_ns=ms_to_ns(data.get("time")), ts_recv_ns=ts_recv_ns)
