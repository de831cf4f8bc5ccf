"""Helpers shared by the venue adapters (pure, no I/O)."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Protocol

import msgspec
import orjson

from bookkeeper.capabilities import ExchangeCapabilities
from bookkeeper.errors import AdapterError, UsageError
from bookkeeper.events import BookSnapshot, MarketEvent, VenueNotice
from bookkeeper.ports import Decoder, RestCall

_MAX = 1e15  # no real price or size is this large; anything above is a corrupt frame
#: Sequence ids are signed 64-bit on every venue (Binance, OKX, Gate, KuCoin, Bybit... all
#: document int64/long): anything above is a corrupt frame, and must never reach a book, where
#: one huge id would make every later real delta look stale.
SEQ_MAX = (1 << 63) - 1
#: A msgspec field type for sequence ids (the same bound, checked in C while decoding).
SeqId = Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]
#: Millisecond timestamps above this (year ~2286 in ms) are corrupt; the ns value stays int64.
_MS_MAX = 10**13


def _r(value: Any) -> str:
    """A bounded ``repr`` for error messages: a value from a hostile frame may be nested a
    thousand deep (plain ``repr`` would raise ``RecursionError``) or megabytes long."""
    return reprlib.repr(value)


def loads(frame: bytes | str, exchange: str) -> Any:
    """Parse JSON or raise :class:`AdapterError` with an excerpt."""
    try:
        return orjson.loads(frame)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise AdapterError(f"invalid JSON: {exc}", exchange=exchange, raw=frame) from None


def level(px: Any, sz: Any, exchange: str, raw: Any = b"") -> tuple[float, float]:
    """Validate and convert one ``(price, size)`` pair from strings or numbers.

    Raises:
        AdapterError: not a number, NaN/inf, negative size, non-positive price, or out of range.
    """
    try:
        if isinstance(px, bool) or isinstance(sz, bool):
            raise TypeError("bool")
        p = float(px)
        s = float(sz)
    except (TypeError, ValueError):
        raise AdapterError(f"bad level [{_r(px)}, {_r(sz)}]", exchange=exchange, raw=raw) from None
    if not (0.0 < p < _MAX) or not (0.0 <= s < _MAX):
        raise AdapterError(f"level out of range [{_r(px)}, {_r(sz)}]", exchange=exchange, raw=raw)
    return p, s


def levels(rows: Any, exchange: str, raw: Any = b"") -> list[tuple[float, float]]:
    """Validate a list of ``[price, size, ...]`` rows."""
    if not isinstance(rows, list):
        raise AdapterError("levels must be a list", exchange=exchange, raw=raw)
    out = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) < 2:
            raise AdapterError(f"bad level row {_r(row)}", exchange=exchange, raw=raw)
        out.append(level(row[0], row[1], exchange, raw))
    return out


def raw_levels(rows: list[Any]) -> list[tuple[str, str]]:
    """The exchange's own strings of each row (for checksums)."""
    return [(str(r[0]), str(r[1])) for r in rows]


def decimal_from_wire(text: Any, exchange: str, raw: Any = b"") -> Decimal:
    """Money from the wire string, never via float."""
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        raise AdapterError(f"bad decimal {_r(text)}", exchange=exchange, raw=raw) from None
    if not value.is_finite():
        raise AdapterError(f"non-finite decimal {_r(text)}", exchange=exchange, raw=raw)
    return value


def ms_to_ns(ms: Any, exchange: str = "?", raw: Any = b"") -> int:
    """Milliseconds (int, float or numeric string) to integer nanoseconds; 0 when absent or
    not a number (as before: a missing or odd timestamp is informative only).

    Raises:
        AdapterError: a number that is infinite or beyond year ~2286 (``1e308``: multiplied to
            ns it overflows, or becomes an absurd timestamp).
    """
    if ms is None:
        return 0
    if isinstance(ms, int) and not isinstance(ms, bool):
        if not -_MS_MAX < ms < _MS_MAX:
            raise AdapterError(f"timestamp out of range: {ms!r}", exchange=exchange, raw=raw)
        return ms * 1_000_000  # exact: no float round trip
    try:
        v = float(ms)
    except (TypeError, ValueError, OverflowError):
        return 0
    if math.isnan(v):
        return 0
    if not -_MS_MAX < v < _MS_MAX:  # inf, 1e308: int(v * 1e6) would raise OverflowError
        raise AdapterError(f"timestamp out of range: {ms!r}", exchange=exchange, raw=raw)
    return int(v * 1_000_000)


def seq_int(value: Any, name: str, exchange: str, raw: Any = b"", symbol: str | None = None) -> int:
    """A sequence id: an int (not bool, not float, not a string) in ``0..2**63-1``.

    Raises:
        AdapterError: any other value (a corrupt ``u=2**70`` must never reach a book).
    """
    if type(value) is not int or not 0 <= value <= SEQ_MAX:
        raise AdapterError(f"{name} must be an integer in 0..2**63-1, got {_r(value)}", exchange=exchange, raw=raw,
                           symbol=symbol)
    return value


def untyped_error(exc: Exception, exchange: str, raw: Any, symbol: str | None = None) -> AdapterError:
    """The :class:`AdapterError` that replaces any other exception a parser let out.

    ``RecursionError`` from JSON nested ~1000 deep, ``TypeError`` from an unhashable field
    used as a key, ``OverflowError`` from a huge float...: whatever a malformed frame makes a
    parser raise, the caller sees one typed error naming the original type (and chained to it
    with ``from``), so a driver that catches ``AdapterError`` never dies on a frame.
    """
    text = str(exc)
    if len(text) > 200:
        text = text[:200] + "..."
    return AdapterError(f"malformed frame ({type(exc).__name__}: {text})", exchange=exchange, raw=_excerpt(raw),
                        symbol=symbol)


def _excerpt(raw: Any) -> Any:
    """Bytes/str as they are (``AdapterError`` keeps 200 characters); anything else (a
    mapping handed to a REST parser) via a bounded ``repr``: ``str()`` of a 1000-deep dict
    would itself raise ``RecursionError``."""
    if isinstance(raw, (bytes, bytearray, str)):
        return raw[:400]
    try:
        return reprlib.repr(raw)
    except Exception:  # noqa: BLE001 - an excerpt must never fail; the error is already being raised
        return f"<{type(raw).__name__}>"


def typed_decoder(type_: Any) -> msgspec.json.Decoder:
    """A msgspec JSON decoder that converts numeric strings (``strict=False``)."""
    return msgspec.json.Decoder(type_, strict=False)


# ------------------------------------------------------------------ wire-string levels
def string_row(row: Any, exchange: str, frame: Any, symbol: str | None) -> tuple[str, str]:
    """The ``(price, size)`` strings of one ``[px, sz, ...]`` row (OKX, Bitget, Kraken v1).

    Raises:
        AdapterError: the row is not a list of at least two strings.
    """
    if type(row) is not list or len(row) < 2:
        raise AdapterError(f"bad level row {_r(row)}", exchange=exchange, raw=frame, symbol=symbol)
    px = row[0]
    sz = row[1]
    if type(px) is not str or type(sz) is not str:
        raise AdapterError(f"level fields must be strings: {_r(row)}", exchange=exchange, raw=frame, symbol=symbol)
    return px, sz


def check_string_level(p: float, s: float, px: str, sz: str, row: Any, exchange: str, frame: Any,
                       symbol: str | None) -> None:
    """Range check of a level parsed from wire strings ``px``/``sz`` (``_`` digit separators,
    which ``float`` accepts, are refused: they would break the checksum text).

    Raises:
        AdapterError: NaN/inf, negative size, non-positive price or absurdly large values.
    """
    if not (0.0 < p < _MAX) or not (0.0 <= s < _MAX) or "_" in px or "_" in sz:
        raise AdapterError(f"level out of range {_r(row)}", exchange=exchange, raw=frame, symbol=symbol)


def string_levels(rows: Any, exchange: str, frame: Any,
                  symbol: str | None) -> tuple[list[tuple[float, float]], list[tuple[str, str]]]:
    """Validate ``[[px, sz, ...], ...]`` (strings) into float levels and their wire strings.

    Raises:
        AdapterError: not a list of string rows, NaN/inf, negative size, non-positive price
            or absurdly large values.
    """
    if type(rows) is not list:
        raise AdapterError("levels must be a list", exchange=exchange, raw=frame, symbol=symbol)
    out: list[tuple[float, float]] = []
    raw: list[tuple[str, str]] = []
    for row in rows:
        px, sz = string_row(row, exchange, frame, symbol)
        try:
            p = float(px)
            s = float(sz)
        except ValueError:
            raise AdapterError(f"bad level {_r(row)}", exchange=exchange, raw=frame, symbol=symbol) from None
        check_string_level(p, s, px, sz, row, exchange, frame, symbol)
        out.append((p, s))
        raw.append((px, sz))
    return out, raw


def ms_ts_ns(v: Any, exchange: str, frame: Any, symbol: str | None) -> int:
    """A millisecond timestamp (digit string or int, at most 16 digits) in ns; 0 when absent.

    Raises:
        AdapterError: anything else.
    """
    if v is None:
        return 0
    if type(v) is str and v.isdigit() and len(v) <= 16:
        return int(v) * 1_000_000
    if type(v) is int and 0 <= v < 10**16:
        return v * 1_000_000
    raise AdapterError(f"bad ts {_r(v)}", exchange=exchange, raw=frame, symbol=symbol)


def id_keyed_rows(rows: Any, what: str, exchange: str, frame: Any, symbol: str | None
                  ) -> tuple[dict[tuple[int, str], float], list[tuple[float, float]], list[tuple[float, float]]]:
    """A full book of id-keyed rows (``.id``, ``.side`` "Buy"/"Sell", ``.price``, ``.size``;
    BitMEX ``orderBookL2``, Bybit legacy): the ``(id, side) -> price`` map, bids and asks.

    Raises:
        AdapterError: a row without price or size (``"{what} row {id} without price or size"``).
    """
    prices: dict[tuple[int, str], float] = {}
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    for r in rows:
        if r.price is None or r.size is None:
            raise AdapterError(f"{what} row {r.id} without price or size", exchange=exchange, raw=frame,
                               symbol=symbol)
        prices[(r.id, r.side)] = r.price
        (bids if r.side == "Buy" else asks).append((r.price, r.size))
    return prices, bids, asks


# ------------------------------------------------------------------ the adapter object
class FrameDecoder:
    """A decoder that hands every frame to ``decode(frame, ts_recv_ns, *args)``.

    ``args`` is whatever the venue's ``decode`` needs besides the frame: nothing for stateless
    venues, the registry name, or a per-connection memory (BitMEX ``L2Tables``). Build one
    per connection (``functools.partial(FrameDecoder, decode, ...)`` is a decoder factory).

    This is the ONE place where a parser's stray exception becomes typed: ``decode`` lets
    :class:`AdapterError` through and turns any other ``Exception`` (never ``BaseException``:
    ``CancelledError``/``KeyboardInterrupt`` pass untouched) into an ``AdapterError`` chained
    to it, so one malformed frame can never kill a driver. ``try`` costs nothing in 3.11 until
    something raises. :meth:`VenueAdapter.new_decoder` names the venue (``exchange``).
    """

    __slots__ = ("_args", "_decode", "_exchange")

    def __init__(self, decode: Callable[..., list[MarketEvent]], *args: Any, exchange: str = "?") -> None:
        self._decode = decode
        self._args = args
        self._exchange = exchange

    def decode(self, frame: bytes | str, ts_recv_ns: int = 0) -> list[MarketEvent]:
        """Translate one frame (see :meth:`bookkeeper.ports.Decoder.decode`).

        Raises:
            AdapterError: the frame is malformed, whatever the parser raised.
        """
        try:
            return self._decode(frame, ts_recv_ns, *self._args)
        except AdapterError:
            raise
        except Exception as exc:
            raise untyped_error(exc, self._exchange, frame) from exc


def stateful_decoder(decode: Callable[..., list[MarketEvent]], state: Callable[[], Any]) -> Callable[[], FrameDecoder]:
    """A decoder factory whose every decoder passes its own fresh ``state()`` to
    ``decode(frame, ts_recv_ns, state)`` (the per-connection memory of id-keyed books)."""
    return lambda: FrameDecoder(decode, state())


def okx_style_book_push(obj: dict[str, Any], arg: dict[str, Any], actions: tuple[str, str], exchange: str,
                        frame: Any) -> tuple[str, str, list[Any]]:
    """The instrument, action and ``data`` list of an OKX-style book push (OKX, Bitget:
    ``{"arg": {"channel", "instId"}, "action": "snapshot"|"update", "data": [...]}``).

    Raises:
        AdapterError: no instrument, an action not in ``actions``, or ``data`` not a list.
    """
    symbol = arg.get("instId")
    if type(symbol) is not str or not symbol:
        raise AdapterError("book push without instId", exchange=exchange, raw=frame)
    action = obj.get("action")
    if action not in actions:
        raise AdapterError(f"bad action {_r(action)}", exchange=exchange, raw=frame, symbol=symbol)
    data = obj.get("data")
    if type(data) is not list:
        raise AdapterError("data must be a list", exchange=exchange, raw=frame, symbol=symbol)
    return symbol, action, data


def _call_decode(frame: bytes | str, ts_recv_ns: int, decoder: Decoder) -> list[MarketEvent]:
    """A third-party decoder object behind a :class:`FrameDecoder` (so it gets the guard too)."""
    return decoder.decode(frame, ts_recv_ns)


class RestParser(Protocol):
    def __call__(self, body: bytes | str | Mapping[str, Any], *, symbol: str | None, url: str | None,
                 ts_recv_ns: int) -> BookSnapshot: ...


class Dialogue(Protocol):
    """What ``live`` must offer (a venue's ``spec`` module usually does).

    ``subscribe_messages``/``unsubscribe_messages`` take the same ``depth``; a dialogue whose
    messages carry a timestamp (Gate's ``time``) also takes ``now_ns=`` (the caller's clock:
    adapters never read one) and says so with a true ``CLOCKED`` attribute.
    """

    def ws_url(self, base: str, symbols: Sequence[str]) -> str: ...
    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]: ...
    def unsubscribe_messages(self, symbols: Sequence[str], depth: int | None = None) -> list[str]: ...


#: ``(symbol, depth) -> RestCall``: a venue's REST snapshot request (see ``LiveSpec.rest_snapshot_call``)
RestCallBuilder = Callable[[str, int | None], RestCall]


def capped_depth(depth: int | None, *, default: int, maximum: int, allowed: Sequence[int] = ()) -> int:
    """The depth to ask a venue's REST book for: ``default`` when ``None``, at most
    ``maximum``; with ``allowed`` (a venue that accepts only some values) the smallest
    allowed value covering ``depth``, else the largest.

    >>> capped_depth(None, default=1000, maximum=5000), capped_depth(9000, default=1000, maximum=5000)
    (1000, 5000)
    >>> capped_depth(30, default=100, maximum=100, allowed=(20, 100))
    100
    """
    d = min(default if depth is None else max(depth, 1), maximum)
    if allowed:
        return next((a for a in sorted(allowed) if a >= d), max(allowed))
    return d


class VenueAdapter:
    """One venue's adapter, assembled from its parts (implements ``ports.Adapter``).

    Args:
        name: the registry name (``get_adapter(name)``).
        capabilities: the venue's :class:`ExchangeCapabilities`.
        decoder: a factory of per-connection decoders; ``new_decoder(**options)`` passes its
            keyword options on (Kraken's ``precisions``/``depth``).
        rest: ``rest(body, symbol=, url=, ts_recv_ns=) -> BookSnapshot``; ``None`` when the
            venue's REST books cannot be spliced, and then ``parse_rest_snapshot`` always
            raises :class:`AdapterError` with ``no_rest`` as the message.
        live: the wire dialogue (``ws_url``, ``subscribe_messages``, ``unsubscribe_messages``),
            usually the venue's ``spec`` module. Given, the object also implements
            ``ports.LiveSpec``; ``None`` (a venue whose messages need the caller's clock, like
            Gate), it has none of the ``LiveSpec`` methods, so ``isinstance(a, LiveSpec)`` is
            false and the live driver refuses it.
        ping: the app-level ping frame: a string, a zero-argument function returning one, or
            ``None`` where protocol pings suffice.
        reply: ``reply(notice) -> frame | None``: answers to venue control messages.
        ws_root: the production WebSocket root of this adapter's market (from the spec's
            ``WS_ROOTS``); ``None`` with ``bootstrap`` (a per-connection URL) or ``closed``.
        closed: why the venue cannot be reached live any more ("" while it is open).
        rest_call: ``rest_call(symbol, depth) -> RestCall``: the REST snapshot request;
            ``None`` when the venue's REST book cannot be spliced.
        ccxt_urls: ``ccxt_urls(base_url) -> config``: ccxt URL overrides that point the REST
            calls at a simulator; ``None`` when the venue makes no REST call.
        bootstrap: ``(call, url_from(body, connect_id))``: the REST call that precedes each
            connection and the URL built from its answer (KuCoin's token).
        ws_roots: every production root of the market's stream, when the venue publishes
            several (redundant A/B lines connect to different ones); ``()``: only ``ws_root``.
    """

    def __new__(cls, *args: Any, live: Dialogue | None = None, **kwargs: Any) -> VenueAdapter:
        if cls is VenueAdapter and live is not None:
            cls = _LiveVenueAdapter
        return super().__new__(cls)

    def __init__(
        self,
        name: str,
        capabilities: ExchangeCapabilities,
        *,
        decoder: Callable[..., Decoder],
        rest: RestParser | None = None,
        no_rest: str = "",
        live: Dialogue | None = None,
        ping: str | Callable[[], str] | None = None,
        fused: Callable[..., object] | None = None,
        reply: Callable[[VenueNotice], str | None] | None = None,
        ws_root: str | None = None,
        closed: str = "",
        rest_call: RestCallBuilder | None = None,
        ccxt_urls: Callable[[str], dict[str, Any]] | None = None,
        bootstrap: tuple[RestCall, Callable[[Mapping[str, Any], str], str]] | None = None,
        ws_roots: Sequence[str] = (),
    ) -> None:
        self.name = name
        #: the venue's fused decode + apply of the synced steady state (C accelerator), handed
        #: to ``BookSession.apply_frame_fast`` by drivers; ``None`` when the venue has none
        self.fused = fused
        self.capabilities = capabilities
        self._new_decoder = decoder
        self._rest = rest
        self._no_rest = no_rest or f"{name} REST order books are not supported; resubscribe instead"
        self._live = live
        self._ping = ping
        self._reply = reply
        self._ws_root = ws_root
        self._closed = closed
        self._rest_call = rest_call
        self._ccxt_urls = ccxt_urls
        self._bootstrap = bootstrap
        self._ws_roots = tuple(ws_roots)

    def __repr__(self) -> str:
        return f"<VenueAdapter {self.name!r}>"

    def new_decoder(self, **options: Any) -> Decoder:
        """A fresh decoder for one connection (or one recorded session).

        Its ``decode`` raises only :class:`AdapterError` on a malformed frame (see
        :class:`FrameDecoder`, which every venue's decoder is, or is wrapped in).
        """
        decoder = self._new_decoder(**options)
        if not isinstance(decoder, FrameDecoder):
            decoder = FrameDecoder(_call_decode, decoder)
        decoder._exchange = self.name
        return decoder

    def parse_rest_snapshot(
        self, body: bytes | str | Mapping[str, Any], *, symbol: str | None = None, url: str | None = None,
        ts_recv_ns: int = 0,
    ) -> BookSnapshot:
        """See :meth:`bookkeeper.ports.Adapter.parse_rest_snapshot`."""
        if self._rest is None:
            raise AdapterError(self._no_rest, exchange=self.name, raw=_excerpt(body), symbol=symbol)
        try:
            return self._rest(body, symbol=symbol, url=url, ts_recv_ns=ts_recv_ns)
        except AdapterError:
            raise
        except Exception as exc:
            raise untyped_error(exc, self.name, body, symbol) from exc


class _LiveVenueAdapter(VenueAdapter):
    """A :class:`VenueAdapter` with a live wire dialogue (also implements ``ports.LiveSpec``)."""

    _live: Dialogue

    def ws_url(self, base: str, symbols: Sequence[str]) -> str:
        return self._live.ws_url(base, symbols)

    def default_ws_url(self) -> str | None:
        """See :meth:`bookkeeper.ports.LiveSpec.default_ws_url`."""
        if self._closed:
            raise UsageError(f"{self.name}: {self._closed}", venue=self.name)
        return self._ws_root

    def default_ws_urls(self) -> tuple[str, ...]:
        """Every production WebSocket root of the market (redundant A/B lines use two of them);
        just :meth:`default_ws_url` when the venue publishes one (empty without a fixed URL).

        Raises:
            UsageError: the venue cannot be reached live any more.
        """
        root = self.default_ws_url()
        if self._ws_roots:
            return self._ws_roots
        return (root,) if root is not None else ()

    def _clocked(self, kwargs: dict[str, Any], now_ns: int | None) -> dict[str, Any]:
        if now_ns is not None and getattr(self._live, "CLOCKED", False):
            kwargs["now_ns"] = now_ns
        return kwargs

    def subscribe_messages(self, symbols: Sequence[str], depth: int | None = None, *,
                           now_ns: int | None = None) -> list[str]:
        """See :meth:`bookkeeper.ports.LiveSpec.subscribe_messages` (``now_ns``: the caller's
        wall clock, for venues whose messages carry a timestamp)."""
        return self._live.subscribe_messages(symbols, depth, **self._clocked({}, now_ns))

    def unsubscribe_messages(self, symbols: Sequence[str], depth: int | None = None, *,
                             now_ns: int | None = None) -> list[str]:
        """See :meth:`bookkeeper.ports.LiveSpec.unsubscribe_messages`."""
        return self._live.unsubscribe_messages(symbols, depth, **self._clocked({}, now_ns))

    def ping_message(self) -> str | None:
        return self._ping() if callable(self._ping) else self._ping

    def reply_to(self, notice: VenueNotice) -> str | None:
        """The frame that answers ``notice`` (Deribit's ``test_request``), or ``None``."""
        return self._reply(notice) if self._reply is not None else None

    def rest_snapshot_call(self, symbol: str, depth: int | None = None) -> RestCall | None:
        """See :meth:`bookkeeper.ports.LiveSpec.rest_snapshot_call`."""
        return self._rest_call(symbol, depth) if self._rest_call is not None else None

    def ccxt_config_for(self, base_url: str) -> dict[str, Any]:
        """See :meth:`bookkeeper.ports.LiveSpec.ccxt_config_for`."""
        if self._ccxt_urls is None:
            raise UsageError(f"{self.name} makes no REST call; there is no ccxt URL to point", venue=self.name)
        return self._ccxt_urls(base_url.rstrip("/"))

    def ws_bootstrap_call(self) -> RestCall | None:
        """See :meth:`bookkeeper.ports.LiveSpec.ws_bootstrap_call`."""
        return self._bootstrap[0] if self._bootstrap is not None else None

    def ws_url_from_bootstrap(self, body: Mapping[str, Any], connect_id: str) -> str:
        """See :meth:`bookkeeper.ports.LiveSpec.ws_url_from_bootstrap`."""
        if self._bootstrap is None:
            raise UsageError(f"{self.name} has no connection bootstrap", venue=self.name)
        try:
            return self._bootstrap[1](body, connect_id)
        except AdapterError:
            raise
        except Exception as exc:
            raise untyped_error(exc, self.name, body) from exc
