"""Helpers for the driver tests: a tiny Binance-format WebSocket server on 127.0.0.1, a fake
REST client that answers from the server's truth, an in-memory scripted transport, a gated fake
sleep, and a probe that lets tests await conditions (never sleep) on what the feed did."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from bookkeeper.errors import RateLimited, TransportError
from bookkeeper.events import BookSnapshot, CloseReason, SnapshotSource
from bookkeeper.io.ws import Closure, Frame
from bookkeeper.testing.clock import FakeClock

SAFETY_TIMEOUT_S = 10.0  # a hung test fails instead of hanging; never used to wait for things


class Probe:
    """Everything the tests observe calls :meth:`notify`; tests ``await probe.until(pred)``."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self.states: list[Any] = []
        self.updates: list[Any] = []

    def notify(self) -> None:
        async def _n() -> None:
            async with self._cond:
                self._cond.notify_all()

        asyncio.get_running_loop().create_task(_n())

    def on_state(self, change: Any) -> None:
        self.states.append(change)
        self.notify()

    def on_update(self, update: Any) -> None:
        self.updates.append(update)
        self.notify()

    async def until(self, pred: Callable[[], bool], what: str = "") -> None:
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            async with self._cond:
                try:
                    await self._cond.wait_for(pred)
                except TimeoutError:  # pragma: no cover - diagnostic only
                    raise AssertionError(f"condition never became true: {what}") from None


class NotifyingList(list):  # type: ignore[type-arg]
    """A list (record sink) that wakes the probe on append."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self._probe = probe

    def append(self, item: Any) -> None:
        super().append(item)
        self._probe.notify()


class ManualSleep:
    """A fake ``sleep`` whose sleepers wake only when the test advances the fake clock
    (trio ``MockClock`` without autojump). Delays are recorded in call order."""

    def __init__(self, clock: FakeClock, probe: Probe) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self._probe = probe
        self._sleepers: list[tuple[int, asyncio.Future[None]]] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.clock.monotonic_ns() + round(delay_s * 1e9), fut))
        self._probe.notify()
        try:
            await fut
        finally:
            self._sleepers = [(d, f) for d, f in self._sleepers if f is not fut]

    @property
    def sleeping(self) -> int:
        return sum(1 for _, f in self._sleepers if not f.done())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.clock.monotonic_ns()
        for deadline, fut in self._sleepers:
            if deadline <= now and not fut.done():
                fut.set_result(None)


class AutoSleep:
    """Records each delay, advances the fake clock and yields once (no real waiting)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        self.clock.advance(delay_s)
        await asyncio.sleep(0)


class FakeBinance:
    """A Binance-format diff-depth server (combined-stream frames) with a ground truth.

    Each pushed delta for ``sym`` has ids ``U = seq+1+skip``, ``u = U`` and changes one bid
    (price ``99 - u % 3``) and one ask (``101 + u % 3``) to size ``u``: the book never crosses.
    """

    def __init__(self, probe: Probe, symbols: Sequence[str] = ("BTCUSDT",), start_seq: int = 100) -> None:
        self.probe = probe
        self.seq = {s: start_seq for s in symbols}
        self.bids = {s: {98.0: 1.0} for s in symbols}
        self.asks = {s: {102.0: 1.0} for s in symbols}
        self.conns: list[ServerConnection] = []
        self.received: list[str] = []
        self.handshakes = 0  # upgrade requests seen (accepted or not)
        self.reject: deque[tuple[int, dict[str, str]]] = deque()
        self.reject_all: tuple[int, dict[str, str]] | None = None
        self._server: Server | None = None

    async def __aenter__(self) -> FakeBinance:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                                   ping_interval=None, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = list(self._server.sockets)[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        self.probe.notify()
        rule = self.reject.popleft() if self.reject else self.reject_all
        if rule is None:
            return None
        status, headers = rule
        response = connection.respond(status, "refused\n")
        for k, v in headers.items():
            response.headers[k] = v
        return response

    async def _handler(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        self.probe.notify()
        try:
            async for msg in ws:
                assert isinstance(msg, str)
                self.received.append(msg)
                self.probe.notify()
                if msg.startswith("{"):
                    obj = orjson.loads(msg)
                    if "method" in obj and "id" in obj:
                        await ws.send(orjson.dumps({"result": None, "id": obj["id"]}).decode())
        except Exception:  # the client aborted: that is what these tests do
            pass

    @property
    def current(self) -> ServerConnection:
        return self.conns[-1]

    def open_connections(self) -> int:
        from websockets.protocol import State

        return sum(1 for c in self.conns if c.state is State.OPEN)

    def make_delta(self, sym: str, skip: int = 0) -> bytes:
        """Advance the truth by one message (after ``skip`` ids nobody sees)."""
        first = self.seq[sym] + 1 + skip
        u = first
        self.seq[sym] = u
        bid, ask = 99.0 - u % 3, 101.0 + u % 3
        self.bids[sym][bid] = float(u)
        self.asks[sym][ask] = float(u)
        data = {"e": "depthUpdate", "E": 1_700_000_000_000 + u, "s": sym, "U": first, "u": u,
                "b": [[f"{bid}", f"{float(u)}"]], "a": [[f"{ask}", f"{float(u)}"]]}
        return orjson.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": data})

    async def push(self, sym: str = "BTCUSDT", n: int = 1, skip: int = 0) -> None:
        for i in range(n):
            await self.current.send(self.make_delta(sym, skip if i == 0 else 0).decode())

    def snapshot(self, sym: str) -> BookSnapshot:
        return BookSnapshot(symbol=sym, bids=sorted(self.bids[sym].items()), asks=sorted(self.asks[sym].items()),
                            seq=self.seq[sym], source=SnapshotSource.REST)

    def abort(self) -> None:
        """TCP dies without a close frame: the client sees 1006."""
        self.current.transport.abort()


class FakeRest:
    """RestClient answering from the server's truth; ``fail`` queues exceptions to raise."""

    def __init__(self, server: FakeBinance, probe: Probe) -> None:
        self.server = server
        self.probe = probe
        self.calls: list[str] = []
        self.fail: deque[Exception] = deque()

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        self.calls.append(symbol)
        self.probe.notify()
        if self.fail:
            raise self.fail.popleft()
        return self.server.snapshot(symbol)

    async def close(self) -> None:
        return None


def rate_limited(retry_after_s: float) -> RateLimited:
    return RateLimited("429", retry_after_s=retry_after_s)


class ScriptedTransport:
    """An in-memory StreamTransport: the test queues frames; ``sent`` keeps what went out."""

    def __init__(self, clock: FakeClock, probe: Probe) -> None:
        self._clock = clock
        self._probe = probe
        self._frames: asyncio.Queue[str | None] = asyncio.Queue()
        self._closure: Closure | None = None
        self.sent: list[str] = []

    @property
    def closure(self) -> Closure | None:
        return self._closure

    async def connect(self, url: str) -> None:
        return None

    def push(self, frame: dict[str, Any] | str) -> None:
        self._frames.put_nowait(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def recv(self) -> Frame:
        data = await self._frames.get()
        if data is None:
            assert self._closure is not None
            raise TransportError("closed", closure=self._closure)
        self._probe.notify()
        return Frame(data, self._clock.time_ns(), self._clock.monotonic_ns())

    async def send(self, text: str) -> None:
        self.sent.append(text)
        self._probe.notify()

    async def ping(self, message: str | None, on_pong: Callable[[], None]) -> None:
        return None

    def abort(self, reason: CloseReason) -> None:
        self._end(Closure(reason=reason, code=1006))

    async def close(self) -> None:
        self._end(Closure(reason=CloseReason.LOCAL_SHUTDOWN, code=1000))

    def _end(self, closure: Closure) -> None:
        if self._closure is None:
            self._closure = closure
            self._frames.put_nowait(None)


class ScriptedLink:
    """A transport factory of :class:`ScriptedTransport` s (one per connection attempt)."""

    def __init__(self, clock: FakeClock, probe: Probe) -> None:
        self.clock = clock
        self.probe = probe
        self.transports: list[ScriptedTransport] = []

    def __call__(self) -> ScriptedTransport:
        t = ScriptedTransport(self.clock, self.probe)
        self.transports.append(t)
        return t

    @property
    def current(self) -> ScriptedTransport:
        return self.transports[-1]


def okx_books(action: str, seq: int, prev: int, bids: list[list[str]], asks: list[list[str]],
              inst: str = "BTC-USDT") -> dict[str, Any]:
    """An OKX ``books`` frame (``action``: ``snapshot`` or ``update``)."""
    return {"arg": {"channel": "books", "instId": inst}, "action": action,
            "data": [{"asks": asks, "bids": bids, "ts": "1700000000000", "checksum": 0,
                      "prevSeqId": prev, "seqId": seq}]}
