"""WebsocketsTransport: one WebSocket connection over ``websockets.asyncio.client``.

Theory of operation
-------------------
The transport moves frames and knows *why a connection ended*; it never knows what a book
is. Every way a connection can end is mapped to a :class:`~bookkeeper.events.CloseReason`
and a close code at ONE boundary, :func:`classify_close` (as httpx maps httpcore errors in
``map_httpcore_exceptions``):

=====================================================  ====================  ============
what happened                                          reason                code
=====================================================  ====================  ============
TCP died without a close frame                         ``abnormal_closure``  1006
the server sent a close frame                          ``server_close``      its code
our ping got no pong (we aborted the socket)           ``ping_timeout``      1006
no data for longer than the staleness limit            ``idle_timeout``      1006
refused / reset / DNS / OS error / handshake timeout   ``tcp_error``         ``None``
HTTP 429 / 418 on the upgrade (``Retry-After`` read)   ``rate_limited``      HTTP status
HTTP 401 / 403 on the upgrade                          ``auth_failed``       HTTP status
we closed it                                           ``local_shutdown``    1000
=====================================================  ====================  ============

A 1006 is a reconnect signal, not an error (exchange-protocols.md §2.1). When we decide a
peer is dead (ping or idle timeout) we *abort* the socket rather than run a close handshake
with a peer that will not answer; the library then reports 1006, and the reason we
recorded before aborting says why.

websockets' own keepalive is off when the driver runs the venue's app-level ping (OKX text
``ping``, Kraken ``{"method":"ping"}``); protocol pings from the server (Binance) are
answered by websockets automatically either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from bookkeeper.errors import BookkeeperError, ConnectionLost, ExchangeRejected, RateLimited
from bookkeeper.events import CloseReason
from bookkeeper.policy import parse_retry_after

from .clock import SYSTEM_CLOCK, Clock

__all__ = [
    "Closure",
    "Frame",
    "StreamTransport",
    "TransportFactory",
    "WebsocketsTransport",
    "classify_close",
    "closure_error",
]

log = logging.getLogger("bookkeeper.io.ws")

_RATE_LIMIT_STATUS = frozenset({418, 429})
_AUTH_STATUS = frozenset({401, 403})


@dataclass(frozen=True, slots=True, kw_only=True)
class Closure:
    """How a connection (or a connection attempt) ended.

    Attributes:
        reason: the cause, named after it.
        code: the WebSocket close code (1006 when no close frame was received), the HTTP
            status of a rejected upgrade, or ``None`` when the TCP connection never opened.
        retry_after_s: the venue's ``Retry-After`` (rate limits only).
        detail: a short text for logs.
    """

    reason: CloseReason
    code: int | None
    retry_after_s: float | None = None
    detail: str = ""


class Frame(NamedTuple):
    """One received frame, stamped on arrival."""

    data: str | bytes
    ts_recv_ns: int  # wall clock, comparable with the exchange's timestamps
    mono_ns: int  # monotonic, for staleness and latency arithmetic


def classify_close(
    exc: BaseException | None, *, local_reason: CloseReason | None = None, now_s: float = 0.0
) -> Closure:
    """Map how a connection ended to a :class:`Closure`. The one boundary for this.

    Args:
        exc: what websockets / asyncio / the OS raised (``None``: nothing was raised).
        local_reason: the reason *we* recorded before closing or aborting, if we did.
        now_s: wall-clock seconds, to read an HTTP-date ``Retry-After``.

    Returns:
        The closure. Never raises.

    >>> classify_close(ConnectionRefusedError(111, "refused")).reason
    <CloseReason.TCP_ERROR: 'tcp_error'>
    >>> from websockets.frames import Close
    >>> classify_close(ConnectionClosed(Close(1001, "going away"), None)).code
    1001
    >>> classify_close(ConnectionClosed(None, None))
    Closure(reason=<CloseReason.ABNORMAL_CLOSURE: 'abnormal_closure'>, code=1006, retry_after_s=None, detail='no close frame received')
    """
    if isinstance(exc, ConnectionClosed):
        rcvd, sent = exc.rcvd, exc.sent
        if local_reason is not None:
            code = sent.code if sent is not None else (rcvd.code if rcvd is not None else 1006)
            return Closure(reason=local_reason, code=code, detail=f"closed locally ({local_reason})")
        if rcvd is not None:
            return Closure(reason=CloseReason.SERVER_CLOSE, code=rcvd.code,
                           detail=f"server close {rcvd.code} {rcvd.reason!r}".rstrip())
        if sent is not None and sent.code == 1011 and "keepalive" in sent.reason:
            # websockets' own keepalive (protocol ping) timed out.
            return Closure(reason=CloseReason.PING_TIMEOUT, code=1006, detail=sent.reason)
        detail = "no close frame received" if sent is None else f"library closed {sent.code} {sent.reason!r}"
        return Closure(reason=CloseReason.ABNORMAL_CLOSURE, code=1006, detail=detail)
    if local_reason is not None:
        code = 1000 if local_reason is CloseReason.LOCAL_SHUTDOWN else 1006
        return Closure(reason=local_reason, code=code, detail=f"closed locally ({local_reason})")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in _RATE_LIMIT_STATUS:
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"), now_s=now_s)
            return Closure(reason=CloseReason.RATE_LIMITED, code=status, retry_after_s=retry_after,
                           detail=f"HTTP {status} on upgrade")
        if status in _AUTH_STATUS:
            return Closure(reason=CloseReason.AUTH_FAILED, code=status, detail=f"HTTP {status} on upgrade")
        return Closure(reason=CloseReason.TCP_ERROR, code=status, detail=f"HTTP {status} on upgrade")
    if isinstance(exc, (OSError, TimeoutError, InvalidHandshake, InvalidURI, EOFError)):
        # OSError covers refused, reset, unreachable and DNS (socket.gaierror).
        return Closure(reason=CloseReason.TCP_ERROR, code=None, detail=f"{type(exc).__name__}: {exc}")
    if exc is None:
        return Closure(reason=CloseReason.ABNORMAL_CLOSURE, code=1006, detail="connection ended")
    return Closure(reason=CloseReason.TCP_ERROR, code=None, detail=f"{type(exc).__name__}: {exc}")


def closure_error(closure: Closure) -> BookkeeperError:
    """The exception a failed connection attempt raises, carrying ``closure``.

    >>> type(closure_error(Closure(reason=CloseReason.RATE_LIMITED, code=429, retry_after_s=3.0))).__name__
    'RateLimited'
    """
    if closure.reason is CloseReason.RATE_LIMITED:
        return RateLimited(closure.detail or "rate limited", retry_after_s=closure.retry_after_s, closure=closure)
    if closure.reason is CloseReason.AUTH_FAILED:
        return ExchangeRejected(closure.detail or "auth failed", closure=closure, ccxt_class=None)
    return ConnectionLost(closure.detail or str(closure.reason), closure=closure)


class StreamTransport(Protocol):
    """What the driver needs from a connection (the simulator may implement it too)."""

    @property
    def closure(self) -> Closure | None:
        """How the connection ended, once it has."""
        ...

    async def connect(self, url: str) -> None:
        """Open the connection.

        Raises:
            ConnectionLost | RateLimited | ExchangeRejected: with ``.closure`` set.
        """
        ...

    async def recv(self) -> Frame:
        """The next frame.

        Raises:
            ConnectionLost: the connection ended; ``.closure`` says why.
        """
        ...

    async def send(self, text: str) -> None: ...

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        """Send the venue's app-level ping text, or a protocol ping when ``None``
        (``on_pong`` is called when the protocol pong arrives)."""
        ...

    def abort(self, reason: CloseReason) -> None:
        """Kill the connection now, recording ``reason`` (no close handshake)."""
        ...

    async def close(self) -> None:
        """Close cleanly (1000), recording ``LOCAL_SHUTDOWN``."""
        ...


#: Builds a fresh transport for each connection attempt.
TransportFactory = Callable[[], StreamTransport]


class WebsocketsTransport:
    """:class:`StreamTransport` over the websockets asyncio client.

    Args:
        clock: stamps ``ts_recv_ns`` (wall) and ``mono_ns`` on each frame.
        open_timeout_s: TCP + TLS + upgrade budget.
        close_timeout_s: how long a clean close waits for the peer's close frame.
        protocol_keepalive_s: websockets' own ping interval; ``None`` (the default) turns it
            off because the driver runs the keepalive (app-level or protocol pings).
        headers: extra HTTP headers for the upgrade.
        max_size: largest accepted message (deep REST-like snapshots over WS can be big).

    Example (against a local server; no real exchange is ever contacted in examples)::

        t = WebsocketsTransport()
        await t.connect("ws://127.0.0.1:8765/stream?streams=btcusdt@depth@100ms")
        frame = await t.recv()
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        protocol_keepalive_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = 16 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._keepalive_s = protocol_keepalive_s
        self._headers = dict(headers or {})
        self._max_size = max_size
        self._ws: ClientConnection | None = None
        self._local_reason: CloseReason | None = None
        self._closure: Closure | None = None
        self._pong_tasks: set[asyncio.Task[None]] = set()

    @property
    def closure(self) -> Closure | None:
        return self._closure

    def _now_s(self) -> float:
        return self._clock.time_ns() / 1e9

    async def connect(self, url: str) -> None:
        try:
            self._ws = await connect(
                url,
                open_timeout=self._open_timeout_s,
                close_timeout=self._close_timeout_s,
                ping_interval=self._keepalive_s,
                ping_timeout=self._keepalive_s,
                max_size=self._max_size,
                additional_headers=self._headers or None,
                proxy=None,  # never pick up HTTPS_PROXY from the environment implicitly
                compression=None,  # market data is small and latency-bound
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the one boundary: every failure becomes a Closure
            self._closure = classify_close(exc, now_s=self._now_s())
            raise closure_error(self._closure) from exc

    def _ended(self, exc: BaseException | None) -> ConnectionLost:
        if self._closure is None:
            self._closure = classify_close(exc, local_reason=self._local_reason, now_s=self._now_s())
        err = ConnectionLost(self._closure.detail or str(self._closure.reason), closure=self._closure)
        return err

    async def recv(self) -> Frame:
        ws = self._ws
        if ws is None:
            raise self._ended(None)
        try:
            data = await ws.recv()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._ended(exc) from exc
        return Frame(data, self._clock.time_ns(), self._clock.monotonic_ns())

    async def send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            raise self._ended(None)
        try:
            await ws.send(text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._ended(exc) from exc

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        if message is not None:
            await self.send(message)
            return
        ws = self._ws
        if ws is None:
            raise self._ended(None)
        try:
            waiter = await ws.ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._ended(exc) from exc

        async def _wait() -> None:
            try:
                await waiter
            except ConnectionClosed:
                return
            on_pong()

        task = asyncio.create_task(_wait())
        self._pong_tasks.add(task)
        task.add_done_callback(self._pong_tasks.discard)

    def abort(self, reason: CloseReason) -> None:
        if self._local_reason is None:
            self._local_reason = reason
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def close(self) -> None:
        if self._local_reason is None:
            self._local_reason = CloseReason.LOCAL_SHUTDOWN
        for task in list(self._pong_tasks):
            task.cancel()
        ws = self._ws
        if ws is not None:
            await ws.close(1000)
            if self._closure is None:
                self._closure = classify_close(None, local_reason=self._local_reason)
