"""One loopback server per venue: WebSocket streams and REST on the same port.

Theory of operation: a :class:`VenueServer` owns a ``websockets.asyncio.server`` listener on
127.0.0.1. Plain HTTP GETs (what ccxt sends) are answered from ``process_request`` with a
``Response`` (``Connection: close``), so REST and WebSocket share one port. Each accepted
WebSocket gets a :class:`ClientConn` with a bounded outbound queue drained by one writer task;
the writer is where frame faults act (drop / duplicate / reorder / corrupt checksum), so the
order a client sees is exactly the order the writer produced. The venue subclasses only turn
engine change sets into their wire frames and answer their REST routes and control messages.

Fault hooks, in the order a connection meets them: ``connection_made`` (``refuse``: the TCP
connection is reset before any byte is read), ``process_request`` (``http_429``/``http_418``
with ``Retry-After`` on REST and on the upgrade, then ``conn_limit``), the writer (frame
faults, ``stall``), and the immediate faults on live connections (``abort``: the transport is
aborted with no close frame, so the client sees 1006; ``close_1000``/``close_1001``).
Outage mode closes the listening socket itself, so clients get ECONNREFUSED.

REST with other methods than GET (Binance USD-M's ``POST/PUT/DELETE /fapi/v1/listenKey``):
websockets' ``process_request`` parses GET requests only, so a venue whose
:attr:`VenueServer.rest_methods` name another method serves *all* its REST (public and
private) from an aiohttp listener on a port of its own (:attr:`VenueServer.rest_url` points
there), through the same routing (:meth:`VenueServer.answer_rest`) and the same
``http_429``/``http_418``/``private_http_429`` gate; every answer is ``Connection: close``, as on
the WebSocket port, and an outage closes that listener too. (``refuse`` acts on the WebSocket
listener's TCP accepts only.) GET-only venues keep REST on the WebSocket port.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import importlib
import logging
import socket
import struct
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .account import SimAccount
from .config import SimConfig
from .engine import ChangeSet, MarketEngine, SymbolSpec
from .faults import FaultBudget, FaultKind

__all__ = ["Frame", "ClientConn", "PrivateSide", "SimHost", "VenueServer", "RestResult", "json_response"]

logger = logging.getLogger("bookkeeper.sim")

#: Outbound frames a slow client may have queued before it is cut off (bounded buffers).
MAX_QUEUED_FRAMES = 20_000


class PrivateSide(Protocol):
    """What a venue server needs of its private dialect (``bookkeeper.sim.private``)."""

    ws_path: str

    def handles_rest(self, path: str) -> bool: ...
    def request(self, method: str, path: str, raw_query: str, query: Mapping[str, str], headers: Headers,
                body: bytes) -> RestResult: ...
    def check_upgrade(self, query: Mapping[str, str]) -> RestResult | None: ...
    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]: ...
    def on_open(self, conn: ClientConn) -> None: ...
    def on_text(self, conn: ClientConn, text: str) -> None: ...
    def apply_fault(self, kind: FaultKind, params: Mapping[str, Any]) -> int: ...


class SimHost(Protocol):
    """What a venue server uses of the exchange that hosts it (``SimExchange`` implements it).

    A protocol rather than an import of ``exchange``: the exchange imports its dialects, the
    dialects import this module, and nothing imports back.
    """

    config: SimConfig
    engine: MarketEngine

    def notify(self) -> None: ...
    def count_fault(self, kind: FaultKind, n: int = 1) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def stale_seq(self, server: VenueServer, symbol: str) -> int: ...


@dataclass(slots=True)
class Frame:
    """One outbound text frame.

    ``data`` frames (book snapshots/updates) are subject to frame faults; control replies
    (acks, pongs, heartbeats) are not. ``seq`` is the last engine seq the frame covers, used by
    ``SimExchange.wait_sent``. ``corrupt`` builds the same frame with a wrong checksum.
    """

    text: str
    symbol: str | None = None
    seq: int | None = None
    data: bool = False
    corrupt: Callable[[], str] | None = None
    #: a private order/fill event (never ``data``: public frame faults leave it alone; only
    #: ``private_drop`` may lose it). Counted in ``ClientConn.private_done`` once handled.
    private: bool = False
    #: close the connection with this code once the frame is written (Binance's WS API
    #: session lifetime: ``eventStreamTerminated`` then 1000)
    close_code: int | None = None


@dataclass(slots=True)
class RestResult:
    """A REST answer: status, JSON-able body, extra headers."""

    status: int
    body: Any
    headers: Mapping[str, str] | None = None


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A ``Connection: close`` JSON response for ``process_request``."""
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    h = Headers()
    h["Content-Type"] = "application/json;charset=UTF-8"
    h["Content-Length"] = str(len(payload))
    h["Connection"] = "close"
    for k, v in (headers or {}).items():
        h[k] = v
    return Response(status, http.HTTPStatus(status).phrase, h, payload)


class ClientConn:
    """Server-side state of one client WebSocket connection."""

    __slots__ = (
        "ws", "server", "path", "query", "queue", "subs", "stalled", "held", "last_rx", "last_tx",
        "processed", "tasks", "conn_id", "ip", "pongs", "session", "private_queued", "private_done",
    )

    def __init__(self, ws: ServerConnection, server: VenueServer, conn_id: str) -> None:
        self.ws = ws
        self.server = server
        req = ws.request
        split = urlsplit(req.path if req is not None else "/")
        self.path = split.path
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.queue: asyncio.Queue[Frame] = asyncio.Queue()
        #: Venue-specific subscription state, keyed by symbol.
        self.subs: dict[str, Any] = {}
        self.stalled = False
        self.held: Frame | None = None
        self.last_rx = asyncio.get_running_loop().time()
        #: when the server last pushed a frame to this client (OKX's 30 s rule, §5.5)
        self.last_tx = self.last_rx
        #: symbol -> last engine seq the writer has processed (sent or dropped) for it.
        self.processed: dict[str, int] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.conn_id = conn_id
        #: Pongs received for the server's protocol pings (Binance keepalive).
        self.pongs = 0
        #: private-dialect session state (login, subscriptions) on a private connection
        self.session: Any = None
        #: private event frames queued / handled (sent or dropped) by the writer, for
        #: ``SimExchange.wait_private_sent``
        self.private_queued = 0
        self.private_done = 0
        peer = ws.remote_address
        self.ip = peer[0] if peer else "?"

    def send(self, frame: Frame) -> None:
        """Queue a frame for the writer (never blocks; overflow cuts the client off)."""
        if self.queue.qsize() >= MAX_QUEUED_FRAMES:
            # A real venue disconnects a consumer that cannot keep up.
            self.server.sim.spawn(self.ws.close(1008, "slow consumer"))
            return
        if frame.private:
            self.private_queued += 1
        self.queue.put_nowait(frame)

    def send_json(self, obj: Any) -> None:
        self.send(Frame(orjson.dumps(obj).decode()))


class VenueServer:
    """Base class of the per-venue servers (see the module docstring).

    Subclasses set ``venue`` and implement :meth:`rest`, :meth:`ws_path_ok`,
    :meth:`on_open`, :meth:`on_text` and :meth:`publish`.
    """

    venue: ClassVar[str] = ""
    #: ``"module:class"`` of the venue's private side (``bookkeeper.sim.private``), ``None``
    #: where the simulator has no account for the venue
    private_dialect: ClassVar[str | None] = None
    #: the instruments served when the caller names none
    default_symbols: ClassVar[tuple[SymbolSpec, ...]] = ()
    #: other instrument sets, tried in order, served instead of ``default_symbols`` when a venue
    #: listed before this one in the same simulator already serves one of those names (one
    #: engine holds every venue's books, by symbol: Binance spot, USD-M and Bybit all spell
    #: theirs ``BTCUSDT``). Venues that share names offer the same disjoint sets, so any order
    #: of them finds one free set each.
    alternate_symbols: ClassVar[tuple[tuple[SymbolSpec, ...], ...]] = ()
    #: the HTTP methods the venue's REST takes; any but GET moves all of it to an aiohttp
    #: listener of its own (see the module docstring)
    rest_methods: ClassVar[frozenset[str]] = frozenset({"GET"})

    def __init__(self, sim: SimHost, specs: Sequence[SymbolSpec]) -> None:
        self.sim = sim
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self.budget = FaultBudget()
        self.conns: set[ClientConn] = set()
        self.frames_published = 0
        self.conn_limit: int | None = None
        #: the venue's private side (account WebSocket + signed REST), when its account is on
        self.private: PrivateSide | None = None
        #: refuse upgrades of the private stream (503: the venue's private endpoint is down)
        #: while set; the public streams are not affected (``SimExchange.private_refused``)
        self.private_refused = False
        self._servers: list[Server] = []
        self._port = 0
        self._next_conn = 0
        self._outage = False
        #: the aiohttp REST listener of a venue whose REST takes other methods than GET
        self._http_runner: web.AppRunner | None = None
        self._http_site: web.TCPSite | None = None
        self._http_port = 0

    def enable_account(self, seed: int) -> SimAccount:
        """Create this venue's seeded ground-truth account and serve it on the private side.

        Raises:
            ValueError: the venue has no private dialect.
        """
        if self.private_dialect is None:
            raise ValueError(f"the simulator has no private side for {self.venue!r}")
        module, cls = self.private_dialect.split(":")
        dialect = getattr(importlib.import_module(module), cls)
        account = SimAccount(dialect.profile, seed, self.sim.engine)
        self.private = dialect(self, account)
        return account

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_url(self) -> str:
        """The REST root: the WebSocket port, or the aiohttp listener's (:attr:`rest_methods`)."""
        return f"http://127.0.0.1:{self._http_port or self._port}"

    @property
    def ws_root(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        """The public stream endpoint a client connects to (venue-specific path)."""
        return self.ws_root

    @property
    def private_ws_url(self) -> str | None:
        """The private (account) stream endpoint on this port, ``None`` without an account
        (the host root plus the dialect's path: a ``ws_root`` may name a public path)."""
        return None if self.private is None else f"ws://127.0.0.1:{self._port}{self.private.ws_path}"

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1:``port`` (0 = ephemeral); a venue whose REST takes other methods
        than GET also listens for REST on an ephemeral port of its own."""
        await self._listen(port)
        if self.rest_methods - {"GET"}:
            try:
                app = web.Application()
                app.router.add_route("*", "/{tail:.*}", self._http_request)
                self._http_runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await self._http_runner.setup()
                await self._listen_http()
            except BaseException:
                await self.stop()  # never half started: the WebSocket listener closes too
                raise

    async def _listen_http(self) -> None:
        assert self._http_runner is not None
        self._http_site = web.TCPSite(self._http_runner, "127.0.0.1", self._http_port)
        await self._http_site.start()
        if not self._http_port:
            self._http_port = self._http_runner.addresses[-1][1]

    async def _listen(self, port: int) -> None:
        venue_server = self

        class _Conn(ServerConnection):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                if venue_server.budget.take(FaultKind.REFUSE):
                    venue_server.sim.count_fault(FaultKind.REFUSE)
                    _reset(transport)

        server = await serve(
            self._handler,
            "127.0.0.1",
            port,
            process_request=self._process_request,
            create_connection=_Conn,
            ping_interval=None,  # our own pinger, so a stall can silence pings too
            close_timeout=1.0,
            max_size=2**20,
            logger=logger,
        )
        self._servers.append(server)
        self._port = server.sockets[0].getsockname()[1] if port == 0 else port

    async def stop(self) -> None:
        """Close listeners and every connection."""
        for conn in list(self.conns):
            for task in conn.tasks:
                task.cancel()
            if conn.stalled:  # it reads nothing, so a closing handshake could only time out
                conn.ws.transport.abort()
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        if self._http_runner is not None:
            with contextlib.suppress(Exception):
                await self._http_runner.cleanup()
            self._http_runner = self._http_site = None

    async def start_outage(self, *, kill_existing: bool = True) -> None:
        """Stop listening (clients get ECONNREFUSED); optionally abort live connections."""
        self._outage = True
        for server in self._servers:
            server.server.close()  # the asyncio listener only; websockets keeps its conns
        if self._http_site is not None:  # REST answers close their connections: none to kill
            site, self._http_site = self._http_site, None
            await site.stop()
        if kill_existing:
            for conn in list(self.conns):
                _reset(conn.ws.transport)

    async def end_outage(self) -> None:
        """Listen again on the same port."""
        if self._outage:
            self._outage = False
            await self._listen(self._port)
            if self._http_runner is not None:
                await self._listen_http()

    # -- HTTP ---------------------------------------------------------------------------

    def _http_fault(self, *, private_rest: bool) -> RestResult | None:
        """The 429/418 answer a request (or an upgrade) gets from an armed HTTP fault, if any."""
        if private_rest and self.budget.take(FaultKind.PRIVATE_HTTP_429):
            # private REST only (signed endpoints); public requests are not affected
            self.sim.count_fault(FaultKind.PRIVATE_HTTP_429)
            retry = self.budget.params.get(FaultKind.PRIVATE_HTTP_429, {}).get("retry_after_s", 1)
            return RestResult(429, self.rate_limit_body(429), {"Retry-After": str(retry)})
        for kind, status in ((FaultKind.HTTP_429, 429), (FaultKind.HTTP_418, 418)):
            if self.budget.take(kind):
                self.sim.count_fault(kind)
                retry = self.budget.params.get(kind, {}).get("retry_after_s", 1)
                return RestResult(status, self.rate_limit_body(status), {"Retry-After": str(retry)})
        return None

    def answer_rest(self, method: str, path: str, raw_query: str, headers: Headers, body: bytes = b"") -> RestResult:
        """One REST request, whichever listener it came on: the HTTP faults, then the private
        dialect's route (signed endpoints) or the venue's public :meth:`rest` (GET only)."""
        private = self.private
        private_rest = private is not None and private.handles_rest(path)
        fault = self._http_fault(private_rest=private_rest)
        if fault is not None:
            return fault
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        try:
            if private_rest:
                assert private is not None
                return private.request(method, path, raw_query, query, headers, body)
            if method != "GET":
                return RestResult(405, {"code": -1000, "msg": f"{method} not allowed on {path}"})
            return self.rest(path, query)
        except Exception:  # a bug in a route must still answer, as a venue's 500 would
            logger.exception("sim %s REST %s %s failed", self.venue, method, path)
            return RestResult(500, {"error": "internal"})

    async def _http_request(self, request: web.Request) -> web.Response:
        """aiohttp's handler (:attr:`rest_methods`): every method, every path."""
        body = await request.read()
        headers = Headers(request.headers.items())
        result = self.answer_rest(request.method, request.path, request.rel_url.raw_query_string, headers, body)
        payload = result.body if isinstance(result.body, bytes) else orjson.dumps(result.body)
        response = web.Response(status=result.status, body=payload, headers=dict(result.headers or {}),
                                content_type="application/json", charset="UTF-8")
        response.force_close()  # as the WebSocket port's answers: one request per connection
        return response

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        private = self.private
        if not upgrade:
            result = self.answer_rest("GET", split.path, split.query, request.headers)
            return json_response(result.status, result.body, result.headers)
        fault = self._http_fault(private_rest=False)
        if fault is not None:
            return json_response(fault.status, fault.body, fault.headers)
        private_stream = private is not None and split.path == private.ws_path
        if not self.ws_path_ok(split.path) and not private_stream:
            return json_response(404, {"error": f"no stream at {split.path}"})
        if private_stream:
            assert private is not None
            if self.private_refused:
                return json_response(503, {"error": "private endpoint unavailable"})
            refused = private.check_upgrade({k: v[-1] for k, v in parse_qs(split.query).items()})
            if refused is not None:
                return json_response(refused.status, refused.body, refused.headers)
        if self.conn_limit is not None:
            peer = ws.remote_address
            ip = peer[0] if peer else "?"
            live = sum(1 for c in self.conns if c.ip == ip)
            if live >= self.conn_limit:
                self.sim.count_fault(FaultKind.CONN_LIMIT)
                return json_response(429, {"error": "too many connections"}, {"Retry-After": "1"})
        return None

    def rate_limit_body(self, status: int) -> Any:
        """Venue-flavoured body of a 429/418 answer."""
        return {"error": "rate limited", "status": status}

    def rest(self, path: str, query: Mapping[str, str]) -> RestResult:  # pragma: no cover
        """Answer one REST GET (``path`` without query, ``query`` flattened)."""
        raise NotImplementedError

    # -- WebSocket ----------------------------------------------------------------------

    def ws_path_ok(self, path: str) -> bool:  # pragma: no cover
        raise NotImplementedError

    async def _handler(self, ws: ServerConnection) -> None:
        self._next_conn += 1
        conn = ClientConn(ws, self, f"{self.venue}-{self._next_conn}")
        self.conns.add(conn)
        conn.tasks.append(asyncio.create_task(self._writer(conn)))
        private = self.private if self.private is not None and conn.path == self.private.ws_path else None
        conn.tasks.extend(self.extra_tasks(conn))
        if private is not None:
            conn.tasks.extend(private.extra_tasks(conn))
        try:
            if private is not None:
                private.on_open(conn)
            else:
                self.on_open(conn)
            async for message in ws:
                conn.last_rx = asyncio.get_running_loop().time()
                if conn.stalled:
                    continue
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                if private is not None:
                    private.on_text(conn, text)
                else:
                    self.on_text(conn, text)
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            for task in conn.tasks:
                task.cancel()
            self.sim.notify()

    def extra_tasks(self, conn: ClientConn) -> list[asyncio.Task[None]]:
        """Per-connection background tasks (pingers, heartbeats, keepalive watchdogs)."""
        return []

    def on_open(self, conn: ClientConn) -> None:
        """Called once the handshake succeeded (subscribe from the URL, greet, ...)."""

    def on_text(self, conn: ClientConn, text: str) -> None:  # pragma: no cover
        raise NotImplementedError

    async def _writer(self, conn: ClientConn) -> None:
        ws = conn.ws
        try:
            while True:
                frame = await conn.queue.get()
                if frame.close_code is not None and not conn.stalled:
                    if frame.text:
                        await ws.send(frame.text)
                    await ws.close(frame.close_code)
                    return
                if conn.stalled or not frame.text:  # stalled: silence; empty: a seq marker
                    self._processed(conn, frame)
                    continue
                conn.last_tx = asyncio.get_running_loop().time()
                if frame.private:
                    if self.budget.take(FaultKind.PRIVATE_DROP):
                        self.sim.count_fault(FaultKind.PRIVATE_DROP)
                    else:
                        await ws.send(frame.text)
                    self._processed(conn, frame)
                    continue
                if not frame.data:
                    await ws.send(frame.text)
                    continue
                budget = self.budget
                if budget.take(FaultKind.DROP):
                    self.sim.count_fault(FaultKind.DROP)
                    self._processed(conn, frame)
                    continue
                text = frame.text
                if frame.corrupt is not None and budget.take(FaultKind.CORRUPT_CHECKSUM):
                    self.sim.count_fault(FaultKind.CORRUPT_CHECKSUM)
                    text = frame.corrupt()
                if conn.held is None and budget.take(FaultKind.REORDER):
                    self.sim.count_fault(FaultKind.REORDER)
                    conn.held = Frame(text, frame.symbol, frame.seq, True)
                    continue
                await ws.send(text)
                if budget.take(FaultKind.DUPLICATE):
                    self.sim.count_fault(FaultKind.DUPLICATE)
                    await ws.send(text)
                if conn.held is not None:
                    held, conn.held = conn.held, None
                    await ws.send(held.text)
                    self._processed(conn, held)
                self._processed(conn, frame)
        except ConnectionClosed:
            pass

    def _processed(self, conn: ClientConn, frame: Frame) -> None:
        if frame.private:
            conn.private_done += 1
            self.sim.notify()
            return
        if frame.symbol is not None and frame.seq is not None:
            if frame.seq > conn.processed.get(frame.symbol, -1):
                conn.processed[frame.symbol] = frame.seq
            self.sim.notify()

    # -- publishing ---------------------------------------------------------------------

    def publish(self, symbol: str, batch: Sequence[ChangeSet]) -> None:  # pragma: no cover
        """Turn one interval's change sets into frames for the subscribers of ``symbol``."""
        raise NotImplementedError

    def ccxt_config(self) -> dict[str, Any]:
        """Constructor config that points a ccxt (async_support) exchange of this venue at
        this server: URLs overridden (ccxt deep-merges them), markets restricted to what the
        server serves, ccxt's client-side throttle off."""
        raise NotImplementedError(f"{type(self).__name__} has no ccxt configuration")

    def rest_book(self, symbol: str) -> tuple[int, Any, Any]:
        """``(seq, bids, asks)`` a REST depth answer is taken at: the truth now, or ``lag`` ids
        behind it when a ``stale_snapshot`` fault acts (counted). Levels as in
        ``MarketEngine.units_at``."""
        engine = self.sim.engine
        seq = engine.seq(symbol)
        if self.budget.take(FaultKind.STALE_SNAPSHOT):
            self.sim.count_fault(FaultKind.STALE_SNAPSHOT)
            seq = self.sim.stale_seq(self, symbol)
        bids, asks = engine.units_at(symbol, seq)
        return seq, bids, asks

    def subscribers(self, symbol: str) -> list[ClientConn]:
        return [c for c in self.conns if symbol in c.subs]

    def emit(self, conn: ClientConn, frame: Frame) -> None:
        """Queue a data frame and count it towards ``after_frames`` triggers."""
        self.frames_published += 1
        conn.send(frame)

    def pending_for(self, symbol: str, seq: int) -> bool:
        """True while some subscriber's writer has not yet processed ``symbol`` up to ``seq``."""
        for conn in self.conns:
            if symbol in conn.subs and conn.processed.get(symbol, -1) < seq and not conn.stalled:
                return True
        return False

    # -- immediate faults ---------------------------------------------------------------

    def apply_connection_fault(self, kind: FaultKind, params: Mapping[str, Any]) -> int:
        """Apply ``abort``/``stall``/``close_1000``/``close_1001`` to live connections.

        Returns the number of connections affected.
        """
        conns = list(self.conns)
        if "conn_index" in params:
            ordered = sorted(conns, key=lambda c: int(c.conn_id.rsplit("-", 1)[1]))
            conns = [ordered[int(params["conn_index"])]] if ordered else []
        for conn in conns:
            if kind is FaultKind.ABORT:
                # No close frame, no FIN handshake: the client's websockets reports 1006.
                conn.ws.transport.abort()
            elif kind is FaultKind.STALL:
                conn.stalled = True
                # Stop reading too, so the client's pings go unanswered (no pong), while the
                # socket stays open.
                with contextlib.suppress(Exception):
                    conn.ws.transport.pause_reading()
                duration = params.get("duration_s")
                if duration is not None:
                    asyncio.get_running_loop().call_later(float(duration), _unstall, conn)
            else:
                code = 1000 if kind is FaultKind.CLOSE_1000 else 1001
                reason = "" if code == 1000 else "server shutting down"
                self.sim.spawn(conn.ws.close(code, reason))
        return len(conns)


def _unstall(conn: ClientConn) -> None:
    conn.stalled = False
    with contextlib.suppress(Exception):
        conn.ws.transport.resume_reading()


def _reset(transport: asyncio.BaseTransport) -> None:
    """Abort with SO_LINGER=0 so the peer gets a TCP RST (connection refused/reset)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]
