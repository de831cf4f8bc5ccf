"""Recording a live session in bookkeeper's own recording format (``bookkeeper record``).

Theory of operation
-------------------
Nothing in the driver knows it is being recorded: a :class:`Recorder` builds an ordinary
:class:`~bookkeeper.io.feed.Feed` and hands it two decorators through the feed's injection
points (the httpx ``transport=`` pattern, style guide §1.4):

- :class:`RecordingTransport` wraps each WebSocket transport (``transport_factory=``): every
  frame received (``in``), every frame sent (``out``: subscribes, app-level pings and pongs,
  scrubbed of credentials by :func:`scrub_frame`), each connection ``open`` (with its URL) and
  its ``close``;
- :class:`RecordingRestClient` wraps the REST client (``rest=``): each snapshot the adapter
  parsed is written as a ``rest`` record holding the raw body and its URL. ccxt hands the raw
  text to the ``on_rest_response`` hook of the exchange object (see :func:`rest_capture_config`);
  a context variable ties each answer to the request of the task that made it, so concurrent
  snapshots never swap bodies. Request headers are never looked at, so no key can leak.

Records are written in the order the driver sees them (a frame when ``recv`` hands it over, a
snapshot when the fetch returns it), which is the order ``bookkeeper replay`` feeds them.
"""

from __future__ import annotations

import contextvars
import os
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Self

import orjson

from bookkeeper.actions import StateChanged
from bookkeeper.errors import ConnectionLost
from bookkeeper.events import BookSnapshot, CloseReason

from .clock import SYSTEM_CLOCK, Clock
from .feed import Feed
from .recording import RecordingWriter, RecordKind
from .rest import CcxtRestClient, RestClient
from .stream import BookUpdate, DriverConfig
from .ws import Closure, Frame, StreamTransport, TransportFactory, WebsocketsTransport

__all__ = [
    "REDACTED",
    "Recorder",
    "RecordingRestClient",
    "RecordingSink",
    "RecordingTransport",
    "rest_capture_config",
    "scrub_frame",
    "scrub_url",
]

#: what replaces a credential in a recorded frame or URL
REDACTED = "<redacted>"

#: field names (lower case, without ``-``/``_``) whose values are credentials
_SECRET_NAMES = frozenset({
    "apikey", "xmbxapikey", "secret", "apisecret", "secretkey", "signature", "sign", "passphrase",
    "password", "jwt", "token", "listenkey", "privatekey", "accesskey",
})
#: messages whose positional ``args`` are credentials (Bybit ``{"op":"auth","args":[key, expires, sig]}``)
_AUTH_OPS = frozenset({"auth", "login", "authenticate"})
#: ``"name": "value"`` or ``name=value`` in a frame that is not JSON
_TEXT_SECRET = re.compile(
    r"""(?ix)(["']?(?P<name>[a-z][a-z0-9_-]*)["']?\s*[:=]\s*)(?P<q>["']?)(?P<value>[^"'&,}\s]+)(?P=q)""")


def _is_secret(name: str) -> bool:
    norm = name.lower().replace("-", "").replace("_", "")
    return norm in _SECRET_NAMES or norm.endswith(("secret", "signature", "apikey"))


def _scrub(value: Any) -> tuple[Any, bool]:
    """(``value`` with every credential replaced, whether anything was)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        changed = False
        auth = any(isinstance(value.get(k), str) and value[k].lower() in _AUTH_OPS
                   for k in ("op", "method", "event", "type"))
        for k, v in value.items():
            if _is_secret(str(k)) and v not in (None, ""):
                out[k], changed = REDACTED, True
            elif auth and k == "args" and isinstance(v, list):
                out[k] = [REDACTED if isinstance(a, (str, int, float)) else _scrub(a)[0] for a in v]
                changed = True
            else:
                out[k], c = _scrub(v)
                changed = changed or c
        return out, changed
    if isinstance(value, list):
        items = [_scrub(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    return value, False


def scrub_frame(text: str | bytes) -> str | bytes:
    """``text`` with every credential-looking field replaced by :data:`REDACTED`.

    JSON frames are scrubbed field by field (``apiKey``, ``secret``, ``signature``/``sign``,
    ``passphrase``, ``X-MBX-APIKEY``, ``jwt``, ``listenKey`` ... at any depth, and the
    positional ``args`` of an ``auth``/``login`` op); other text by ``name=value`` /
    ``"name": value`` patterns. A frame without credentials is returned unchanged (same
    object), so the common case costs one parse.

    >>> scrub_frame('{"op":"login","args":[{"apiKey":"k1","sign":"s1","timestamp":"1"}]}')
    '{"op":"login","args":[{"apiKey":"<redacted>","sign":"<redacted>","timestamp":"1"}]}'
    >>> scrub_frame('{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}')
    '{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}'
    """
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        raw = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text

        def repl(m: re.Match[str]) -> str:
            if not _is_secret(m["name"]):
                return m.group(0)
            return f"{m.group(1)}{m['q']}{REDACTED}{m['q']}"

        scrubbed = _TEXT_SECRET.sub(repl, raw)
        return text if scrubbed == raw else scrubbed
    clean, changed = _scrub(obj)
    if not changed:
        return text
    return orjson.dumps(clean).decode()


def scrub_url(url: str | None) -> str | None:
    """``url`` with credential-looking query parameters (``signature``, ``apiKey``,
    ``listenKey``, ``token`` ...) replaced by :data:`REDACTED`.

    >>> scrub_url("https://x/api/v3/depth?symbol=BTCUSDT&signature=abc")
    'https://x/api/v3/depth?symbol=BTCUSDT&signature=%3Credacted%3E'
    """
    if not url or "?" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(_is_secret(k) for k, _ in query):
        return url
    clean = [(k, REDACTED if _is_secret(k) else v) for k, v in query]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(clean)))


class RecordingSink:
    """Writes records (scrubbed) to a :class:`~bookkeeper.io.recording.RecordingWriter` and
    counts them by kind.

    Args:
        writer: the recording file.
        clock: stamps records that have no receive time of their own (``out``, ``open`` ...).
    """

    def __init__(self, writer: RecordingWriter, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._writer = writer
        self._clock = clock
        #: records written, by kind
        self.counts: Counter[RecordKind] = Counter()

    def write(self, kind: RecordKind, data: str | bytes, *, url: str | None = None, ts_ns: int | None = None) -> None:
        """Write one record (an ``out`` frame and every URL scrubbed first)."""
        if kind is RecordKind.SENT:
            data = scrub_frame(data)
        self._writer.write(kind, self._clock.time_ns() if ts_ns is None else ts_ns, data, scrub_url(url))
        self.counts[kind] += 1

    @property
    def frames(self) -> int:
        """WebSocket frames recorded so far (both directions)."""
        return self.counts[RecordKind.RECV] + self.counts[RecordKind.SENT]


class RecordingTransport:
    """A :class:`~bookkeeper.io.ws.StreamTransport` that records what passes through ``inner``.

    Args:
        inner: the real transport.
        sink: where records go.
    """

    def __init__(self, inner: StreamTransport, sink: RecordingSink) -> None:
        self._inner = inner
        self._sink = sink
        self._url: str | None = None
        self._open = False

    @property
    def closure(self) -> Closure | None:
        return self._inner.closure

    def _closed(self, reason: str) -> None:
        """Write the ``close`` record once per connection."""
        if not self._open:
            return
        self._open = False
        closure = self._inner.closure
        detail = {"reason": str(closure.reason), "code": closure.code} if closure is not None else {"reason": reason}
        self._sink.write(RecordKind.CLOSE, orjson.dumps(detail).decode(), url=self._url)

    async def connect(self, url: str) -> None:
        await self._inner.connect(url)
        self._url = url
        self._open = True
        self._sink.write(RecordKind.OPEN, "", url=url)

    async def recv(self) -> Frame:
        try:
            frame = await self._inner.recv()
        except ConnectionLost as exc:
            self._closed(str(exc))
            raise
        self._sink.write(RecordKind.RECV, frame.data, url=None, ts_ns=frame.ts_recv_ns)
        return frame

    async def send(self, text: str) -> None:
        self._sink.write(RecordKind.SENT, text, url=self._url)
        await self._inner.send(text)

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        if message is not None:  # an app-level ping is a frame; a protocol ping has no text
            self._sink.write(RecordKind.SENT, message, url=self._url)
        await self._inner.ping(message, on_pong)

    def abort(self, reason: CloseReason) -> None:
        self._inner.abort(reason)
        self._closed(str(reason))

    async def close(self) -> None:
        try:
            await self._inner.close()
        finally:
            self._closed(str(CloseReason.LOCAL_SHUTDOWN))


#: (url, raw body) of every REST answer ccxt received in the current task, while a
#: :class:`RecordingRestClient` fetch is collecting them (``None`` otherwise)
_CAPTURED: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "bookkeeper_rest_capture", default=None)


def _on_rest_response(code: int, reason: str, url: str, method: str, response_headers: Any,
                      response_body: str, request_headers: Any, request_body: Any) -> str:
    """ccxt's ``on_rest_response`` hook: note the raw body for the fetch in progress. Headers
    (where a key would be) are ignored."""
    captured = _CAPTURED.get()
    body = response_body.strip()  # what ccxt's own hook returns
    if captured is not None:
        captured.append((url, body))
    return body


def rest_capture_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config`` (a ccxt constructor config) plus the hook through which a
    :class:`RecordingRestClient` sees the raw REST bodies.

    Args:
        config: the ccxt config to extend (URL overrides for the simulator); ``None``: ccxt's
            defaults (the real exchange).

    Returns:
        A new dict; ``config`` is not modified.
    """
    return {**(config or {}), "on_rest_response": _on_rest_response}


class RecordingRestClient:
    """A :class:`~bookkeeper.io.rest.RestClient` that records each snapshot ``inner`` fetched:
    the raw body it parsed and its URL (a ``rest`` record).

    ``inner`` must be a ccxt client built with :func:`rest_capture_config` for the bodies to
    be seen; a snapshot whose body was not seen is counted in :attr:`unseen`, not recorded.

    Args:
        inner: the REST client (closed by :meth:`close`).
        sink: where records go.
    """

    def __init__(self, inner: RestClient, sink: RecordingSink) -> None:
        self._inner = inner
        self._sink = sink
        #: snapshots fetched whose raw body could not be recorded
        self.unseen = 0

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        """See :meth:`~bookkeeper.io.rest.RestClient.fetch_snapshot`; records the answer.

        Raises:
            RateLimited | RequestTimeout | ConnectionLost | ExchangeRejected | AdapterError:
                as ``inner`` (nothing is recorded for a failed fetch).
        """
        captured: list[tuple[str, str]] = []
        token = _CAPTURED.set(captured)
        try:
            snap = await self._inner.fetch_snapshot(symbol, depth=depth)
        finally:
            _CAPTURED.reset(token)
        if captured:
            url, body = captured[-1]  # the answer that was parsed (earlier ones were retries)
            self._sink.write(RecordKind.REST, body, url=url, ts_ns=snap.ts_recv_ns or None)
        else:
            self.unseen += 1
        return snap

    async def close(self) -> None:
        await self._inner.close()


class Recorder:
    """A live :class:`~bookkeeper.io.feed.Feed` whose WebSocket and REST traffic is written to a
    bookkeeper recording (``bookkeeper replay`` reads it).

    Args:
        venue: registry name.
        symbols: the venue's spelling.
        out: the recording file (created or truncated), or an open binary stream.
        ws_url: WebSocket root; ``None``: the venue's production root.
        rest_config: ccxt constructor config (URL overrides); ``None``: the real exchange.
        config: driver tunables.
        clock: stamps records and frames.
        seed: jitter seed.
        transport_factory: the inner transport per connection (default websockets).
        on_update, on_state: as :class:`~bookkeeper.io.feed.Feed`'s.

    Example (against a local simulator)::

        async with Recorder("binance", ["BTCUSDT"], "s.bkrec.jsonl", ws_url=sim.urls("binance")["ws_root"],
                            rest_config=sim.ccxt_config("binance")) as rec:
            await rec.feed.wait_synced("BTCUSDT", timeout=10)

    Raises:
        UsageError: as :class:`~bookkeeper.io.feed.Feed`.
        OSError: ``out`` cannot be created.
    """

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str],
        out: str | os.PathLike[str] | IO[bytes],
        *,
        ws_url: str | None = None,
        rest_config: Mapping[str, Any] | None = None,
        config: DriverConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        seed: int | None = None,
        transport_factory: TransportFactory | None = None,
        on_update: Callable[[BookUpdate], None] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
    ) -> None:
        # adapters are looked up, never imported by name
        from bookkeeper.adapters import get_adapter

        adapter = get_adapter(venue)  # UsageError before the file is created
        self._writer = RecordingWriter(out, venue=venue)
        self.sink = RecordingSink(self._writer, clock=clock)
        inner_factory = transport_factory or (lambda: WebsocketsTransport(clock=clock))
        sink = self.sink

        def recording() -> StreamTransport:
            return RecordingTransport(inner_factory(), sink)

        self.rest = RecordingRestClient(CcxtRestClient(adapter, config=rest_capture_config(rest_config), clock=clock),
                                        sink)
        try:
            self.feed = Feed(venue, symbols, ws_url=ws_url, rest=self.rest, config=config, clock=clock, seed=seed,
                             transport_factory=recording, on_update=on_update, on_state=on_state)
        except BaseException:
            self._writer.close()
            raise

    async def start(self) -> None:
        """Start the feed (returns at once)."""
        await self.feed.start()

    async def close(self) -> None:
        """Close the feed (its ``close`` record is written), the REST client and the file.

        Raises:
            InvalidState: the feed's driver had died (everything is closed all the same).
        """
        try:
            await self.feed.close()
        finally:
            try:
                await self.rest.close()
            finally:
                self._writer.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
