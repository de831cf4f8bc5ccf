"""``SimExchange``: the market engine, the venue servers, the push loop and fault injection.

Theory of operation: one asyncio task (the push loop) wakes every ``push_interval_s``; unless
paused, it asks the engine for one interval of updates per symbol and hands each batch to the
symbol's venue server, which turns it into that venue's frames and queues them on every
subscribed connection (see ``server.py``). Generation and queueing are one synchronous step, so
a snapshot taken between two ticks is always at a batch boundary. Tests never sleep: they
``pause()``, ``push()`` exact batches, and ``await wait_sent()``/``wait_subscribed()``, which
wake on the simulator's own change notifications.

Accounts (``accounts=("binance", "okx")``, off by default) add each venue's private side: a
:class:`~bookkeeper.sim.account.SimAccount` (ground-truth orders, fills, balances, positions)
served by the venue's private dialect (account WebSocket + signed REST, ``private.py``). The
push loop trades on each account at ``account_fill_rate_per_s`` after publishing the books;
the accounts have their own RNGs, so the books and the engine are the same with accounts on
or off. ``wait_private_sent()`` waits until every private frame queued so far was handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import replace
from typing import Any

from .account import SimAccount
from .config import SimConfig
from .engine import MarketEngine, SymbolSpec
from .faults import FAULTS, FaultKind, FaultPlan, FaultScope, FaultSpec
from .server import VenueServer
from .venues import DEFAULT_SYMBOLS, DIALECTS, get_dialect

__all__ = ["ACCOUNT_VENUES", "SimConfig", "SimExchange", "serve", "VENUES"]

logger = logging.getLogger("bookkeeper.sim")

#: The venues the simulator speaks, from the one dialect registry (``bookkeeper.sim.venues``).
VENUES: tuple[str, ...] = tuple(DIALECTS)
#: The venues whose private side (account) the simulator can serve.
ACCOUNT_VENUES: tuple[str, ...] = tuple(v for v in VENUES if get_dialect(v).private_dialect is not None)


def _free_defaults(venue: str, taken: set[str]) -> tuple[SymbolSpec, ...]:
    """The venue's default instruments, or its alternates where a venue before it in the same
    simulator already serves one of those names (``demo --venues binance,binance_usdm,bybit``)."""
    dialect = get_dialect(venue)
    for choice in (dialect.default_symbols, *dialect.alternate_symbols):
        if choice and not taken & {s.symbol for s in choice}:
            return choice
    raise ValueError(f"{venue}: its default symbols are all served by venues before it in this simulator; "
                     "name its symbols (symbols={venue: [...]})")


def _default_spec(venue: str, symbol: str) -> SymbolSpec:
    for spec in (*DEFAULT_SYMBOLS.get(venue, ()), *(s for c in get_dialect(venue).alternate_symbols for s in c)):
        if spec.symbol == symbol:
            return spec
    return SymbolSpec(symbol=symbol, price_decimals=2, qty_decimals=4, mid_price="100.00", typical_qty="1")


class SimExchange:
    """A local multi-venue exchange on 127.0.0.1 with real sockets and fault injection.

    Use as ``async with SimExchange(venues=("binance",), seed=1) as sim: ...``.

    Args:
        venues: any of ``"binance"``, ``"okx"``, ``"kraken"``.
        symbols: per venue, wire symbols or :class:`SymbolSpec`; ``None`` = two defaults each
            (``BTCUSDT``/``ETHUSDT``, ``BTC-USDT``/``ETH-USDT``, ``BTC/USD``/``ETH/USD``); a
            venue whose default names a venue before it already serves takes its alternates
            (``binance_usdm`` beside ``binance``: ``BNBUSDT``/``XRPUSDT``), since one engine
            holds every book by symbol.
        seed: seeds the engine (every symbol's stream) and nothing else.
        fault_plan: scheduled faults, started with the simulator.
        push_interval_s: shortcut for ``config.push_interval_s``.
        config: other knobs, see :class:`SimConfig`.
        ports: fixed port per venue (default ephemeral).
        paused: start with the engine paused (use :meth:`push` / :meth:`resume`).
        accounts: venues (of ``venues``, each in :data:`ACCOUNT_VENUES`) whose private side
            is served: a seeded :class:`SimAccount` (see :meth:`account`), the account
            WebSocket and the signed REST endpoints. Default none: the public simulator only.
    """

    def __init__(
        self,
        venues: Iterable[str] = tuple(DIALECTS),
        symbols: Mapping[str, Sequence[str | SymbolSpec]] | None = None,
        *,
        seed: int = 0,
        fault_plan: FaultPlan | None = None,
        push_interval_s: float | None = None,
        config: SimConfig | None = None,
        ports: Mapping[str, int] | None = None,
        paused: bool = False,
        accounts: Iterable[str] = (),
    ) -> None:
        cfg = config or SimConfig()
        if push_interval_s is not None:
            cfg = replace(cfg, push_interval_s=push_interval_s)
        self.config = cfg
        self.seed = seed
        self.fault_plan = fault_plan or FaultPlan()
        self._ports = dict(ports or {})
        self._paused = paused
        venue_list = list(venues)
        for v in venue_list:
            if v not in VENUES:
                raise ValueError(f"unknown venue {v!r}; known: {sorted(VENUES)}")
        specs: dict[str, list[SymbolSpec]] = {}
        taken: set[str] = set()
        for v in venue_list:
            chosen = (symbols or {}).get(v) if symbols is not None else None
            if chosen is None:
                chosen = _free_defaults(v, taken)
            specs[v] = [s if isinstance(s, SymbolSpec) else _default_spec(v, s) for s in chosen]
            taken.update(s.symbol for s in specs[v])
        self.engine = MarketEngine(seed, [s for v in venue_list for s in specs[v]], history=cfg.history)
        self.servers: dict[str, VenueServer] = {v: get_dialect(v)(self, specs[v]) for v in venue_list}
        self.accounts: dict[str, SimAccount] = {}
        for v in accounts:
            if v not in self.servers:
                raise ValueError(f"account venue {v!r} is not among the simulated venues {venue_list}")
            if v not in ACCOUNT_VENUES:
                raise ValueError(f"the simulator has no account for {v!r}; it has {', '.join(ACCOUNT_VENUES)}")
            account = self.servers[v].enable_account(seed)
            account.subscribe(self._account_changed)
            self.accounts[v] = account
        #: How many times each fault kind acted (see ``faults.py``).
        self.faults_injected: dict[str, int] = {k.value: 0 for k in FaultKind}
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._frame_triggers: list[FaultSpec] = []
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every venue and start the push loop and the fault plan."""
        for venue, server in self.servers.items():
            await server.start(self._ports.get(venue, 0))
        self._started = True
        self.spawn(self._push_loop())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for spec in self.fault_plan.faults:
            if spec.after_frames is not None:
                self._frame_triggers.append(spec)
            else:
                self.spawn(self._scheduled(spec, t0 + (spec.at_s or 0.0)))

    async def stop(self) -> None:
        """Stop the push loop, the faults and the servers (idempotent)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for server in self.servers.values():
            await server.stop()
        self._started = False

    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- addresses ----------------------------------------------------------------------

    def urls(self, venue: str) -> dict[str, str]:
        """``{"ws": public stream endpoint, "ws_root": ws://host:port, "rest": http://host:port}``.

        For Binance ``ws`` is the host root (append ``/stream?streams=..`` or ``/ws/<stream>``,
        as with ``wss://stream.binance.com:9443``); for OKX it ends in ``/ws/v5/public``, for
        Kraken in ``/v2``. With the venue's account on, ``ws_private`` is its private stream.
        """
        server = self.servers[venue]
        out = {"ws": server.ws_url, "ws_root": server.ws_root, "rest": server.rest_url}
        if server.private_ws_url is not None:  # the account's stream (Binance /ws-api/v3, OKX /ws/v5/private)
            out["ws_private"] = server.private_ws_url
        return out

    def ccxt_config(self, venue: str) -> dict[str, Any]:
        """Constructor config that points a ccxt (async_support) exchange at the simulator.

        URLs are overridden (ccxt deep-merges them), markets are restricted to spot so
        ``load_markets`` only calls endpoints the simulator serves, and ccxt's client-side
        throttle is off (override ``enableRateLimit`` to test your own pacing).
        """
        return self.servers[venue].ccxt_config()

    def venue_of(self, symbol: str) -> str:
        """The venue simulating ``symbol``."""
        for venue, server in self.servers.items():
            if symbol in server.specs:
                return venue
        raise KeyError(symbol)

    def account(self, venue: str) -> SimAccount:
        """The ground-truth account of ``venue`` (enabled with ``accounts=``).

        Raises:
            KeyError: the venue's account is not enabled.
        """
        return self.accounts[venue]

    def _account_changed(self, _changes: object) -> None:
        self.notify()

    # -- engine control -----------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop generating updates (connections, pings and heartbeats continue)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def push(self, updates: int | None = None, symbols: Iterable[str] | None = None) -> dict[str, int]:
        """Generate and publish one batch now, paused or not.

        Args:
            updates: exactly this many engine ids per symbol (``None``: one regime-driven
                interval, possibly empty).
            symbols: restrict to these symbols (default all).

        Returns:
            symbol -> engine seq after the batch.
        """
        chosen = set(symbols) if symbols is not None else None
        out: dict[str, int] = {}
        for server in self.servers.values():
            for symbol in server.specs:
                if chosen is not None and symbol not in chosen:
                    continue
                if updates is None:
                    batch = self.engine.advance(symbol)
                else:
                    batch = [self.engine.step(symbol) for _ in range(updates)]
                server.publish(symbol, batch)
                out[symbol] = self.engine.seq(symbol)
        self._check_frame_triggers()
        self.notify()
        return out

    async def _push_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.push_interval_s
        next_t = loop.time()
        while True:
            next_t += interval
            await asyncio.sleep(max(0.0, next_t - loop.time()))
            if not self._paused:
                self.push()
                for account in self.accounts.values():
                    account.auto_trade(self.config.account_fill_rate_per_s, interval)

    # -- waiting (no sleeps) ------------------------------------------------------------

    def notify(self) -> None:
        """Wake every ``wait_for`` (the simulator's state changed)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checked on every simulator change.

        Raises:
            TimeoutError: it did not hold within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await self._changed.wait()

    async def wait_sent(
        self, venue: str | None = None, symbol: str | None = None, seq: int | None = None, timeout_s: float = 10.0
    ) -> None:
        """Wait until every subscribed connection's writer has handled frames up to ``seq``.

        "Handled" means written to the socket, or deliberately dropped by a fault. ``seq``
        defaults to each symbol's current engine seq at call time.
        """
        targets: list[tuple[VenueServer, str, int]] = []
        for v, server in self.servers.items():
            if venue is not None and v != venue:
                continue
            for sym in server.specs:
                if symbol is None or sym == symbol:
                    targets.append((server, sym, self.engine.seq(sym) if seq is None else seq))
        await self.wait_for(
            lambda: all(self.engine.seq(s) >= q and not srv.pending_for(s, q) for srv, s, q in targets),
            timeout_s,
        )

    async def wait_subscribed(self, venue: str, symbol: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Wait until at least ``count`` connections of ``venue`` subscribe to ``symbol``."""
        server = self.servers[venue]
        await self.wait_for(lambda: len(server.subscribers(symbol)) >= count, timeout_s)

    async def wait_private_sent(self, venue: str | None = None, timeout_s: float = 10.0) -> None:
        """Wait until every private connection's writer has handled (sent, or dropped by
        ``private_drop``) every private event frame queued on it so far."""
        targets = [(conn, conn.private_queued) for v, server in self.servers.items()
                   if venue is None or v == venue for conn in server.conns if conn.private_queued]
        await self.wait_for(
            lambda: all(conn.private_done >= q or conn.stalled or conn not in conn.server.conns for conn, q in targets),
            timeout_s,
        )

    def connections(self, venue: str) -> int:
        """Live WebSocket connections of ``venue``."""
        return len(self.servers[venue].conns)

    # -- faults -------------------------------------------------------------------------

    def count_fault(self, kind: FaultKind, n: int = 1) -> None:
        """A fault of ``kind`` acted ``n`` times (``faults_injected``)."""
        self.faults_injected[kind.value] = self.faults_injected.get(kind.value, 0) + n
        self.notify()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the simulator cancels when it stops."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _targets(self, venue: str | None) -> list[VenueServer]:
        if venue is None:
            return list(self.servers.values())
        return [self.servers[venue]]

    async def inject(self, kind: FaultKind | str, venue: str | None = None, **params: Any) -> int:
        """Inject one fault now.

        ``abort``, ``stall`` (``duration_s``), ``close_1000`` and ``close_1001`` act on the
        live connections at once (``conn_index`` picks one, oldest first). ``conn_limit``
        sets a per-IP cap (``max``, default 1; ``max=None`` lifts it). ``refuse`` with
        ``outage=True`` stops listening (``duration_s`` to reopen). ``private_abort`` and
        ``auth_expiry`` act at once on the venue's private connections. Every other kind is armed
        for the next ``count`` (default 1) matching frames/requests/connections.

        Returns:
            connections affected, or occurrences armed.
        """
        k = FaultKind(kind)
        affected = 0
        for server in self._targets(venue):
            scope = FAULTS[k].scope
            if scope is FaultScope.CONNECTION:
                n = server.apply_connection_fault(k, params)
                if n:
                    self.count_fault(k, n)
                affected += n
            elif scope is FaultScope.PRIVATE:
                n = server.private.apply_fault(k, params) if server.private is not None else 0
                if n:
                    self.count_fault(k, n)
                affected += n
            elif scope is FaultScope.LIMIT:
                server.conn_limit = params.get("max", 1)
            elif scope is FaultScope.ACCEPT and params.get("outage"):
                await server.start_outage(kill_existing=params.get("kill_existing", True))
                self.count_fault(k)
                affected += 1
                if params.get("duration_s") is not None:
                    self.spawn(self._end_outage_later(server, float(params["duration_s"])))
            else:
                count = params.get("count", 1)
                server.budget.arm(k, count, params)
                affected += count or 0
        return affected

    async def _end_outage_later(self, server: VenueServer, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await server.end_outage()

    async def outage(self, venue: str | None = None, *, kill_existing: bool = True) -> None:
        """Refuse every connection from now on (listener closed: ECONNREFUSED)."""
        await self.inject(FaultKind.REFUSE, venue, outage=True, kill_existing=kill_existing)

    async def end_outage(self, venue: str | None = None) -> None:
        """Listen again on the same ports."""
        for server in self._targets(venue):
            await server.end_outage()

    @contextlib.contextmanager
    def private_refused(self, venue: str | None = None) -> Iterator[None]:
        """While the block runs, refuse new private-stream connections of ``venue`` (HTTP 503 on
        the upgrade, as a venue whose account endpoint is down answers); live ones are left
        alone (add ``private_abort`` to cut them). Public streams and REST are not affected.

        >>> with sim.private_refused("binance"):          # doctest: +SKIP
        ...     await sim.inject("private_abort", "binance")  # the account side is cut off
        """
        servers = self._targets(venue)
        for server in servers:
            server.private_refused = True
        try:
            yield
        finally:
            for server in servers:
                server.private_refused = False

    @contextlib.contextmanager
    def _scoped(self, kind: FaultKind, n: int | None, venue: str | None, params: Mapping[str, Any] | None = None) -> Iterator[None]:
        armed = [(server, server.budget.arm(kind, n, params)) for server in self._targets(venue)]
        try:
            yield
        finally:
            for server, cell in armed:
                server.budget.disarm(kind, cell)

    def drop_frames(self, n: int | None = None, venue: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the scope, drop the next ``n`` data frames (``None``: all of them)."""
        return self._scoped(FaultKind.DROP, n, venue)

    def duplicate_frames(self, n: int | None = None, venue: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the scope, send the next ``n`` data frames twice."""
        return self._scoped(FaultKind.DUPLICATE, n, venue)

    def reorder_frames(self, n: int | None = None, venue: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the scope, swap the next ``n`` data frames with their successor."""
        return self._scoped(FaultKind.REORDER, n, venue)

    def corrupt_checksums(self, n: int | None = None, venue: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the scope, send wrong checksums on the next ``n`` checksum-bearing frames."""
        return self._scoped(FaultKind.CORRUPT_CHECKSUM, n, venue)

    def rate_limited(self, n: int | None = 1, status: int = 429, retry_after_s: int = 1,
                     venue: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the scope, answer the next ``n`` requests/upgrades with ``status`` (429/418)."""
        kind = FaultKind.HTTP_418 if status == 418 else FaultKind.HTTP_429
        return self._scoped(kind, n, venue, {"retry_after_s": retry_after_s})

    def stale_seq(self, server: VenueServer, symbol: str) -> int:
        """The id a ``stale_snapshot`` answer is taken at (``lag`` ids behind the truth)."""
        lag = int(server.budget.params.get(FaultKind.STALE_SNAPSHOT, {}).get("lag", self.config.stale_lag))
        return max(self.engine.oldest_seq(symbol), self.engine.seq(symbol) - lag)

    async def _scheduled(self, spec: FaultSpec, at: float) -> None:
        await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
        await self._apply_spec(spec)

    async def _apply_spec(self, spec: FaultSpec) -> None:
        try:
            await self.inject(spec.kind, spec.venue, **dict(spec.params))
        except Exception:  # a bad plan entry must not kill the simulator
            logger.exception("fault %s failed", spec)

    def _check_frame_triggers(self) -> None:
        if not self._frame_triggers:
            return
        due = []
        for spec in self._frame_triggers:
            servers = self._targets(spec.venue)
            if sum(s.frames_published for s in servers) >= (spec.after_frames or 0):
                due.append(spec)
        for spec in due:
            self._frame_triggers.remove(spec)
            self.spawn(self._apply_spec(spec))


async def serve(
    venues: Iterable[str] = tuple(DIALECTS),
    port: int = 0,
    seed: int = 0,
    faults: FaultPlan | None = None,
    print_urls: Callable[[str], Any] = print,
    config: SimConfig | None = None,
    ready: Callable[[SimExchange], Awaitable[None] | None] | None = None,
) -> None:
    """Run a simulator until cancelled (``bookkeeper sim``).

    Prints one JSON line ``{"venue": {"ws":..,"ws_root":..,"rest":..}, ...}`` once listening.
    With ``port != 0`` venues listen on ``port``, ``port + 1``, ... in the given order.
    """
    venue_list = list(venues)
    ports = {v: port + i for i, v in enumerate(venue_list)} if port else None
    async with SimExchange(venue_list, seed=seed, fault_plan=faults, config=config, ports=ports) as sim:
        print_urls(json.dumps({v: sim.urls(v) for v in venue_list}))
        if ready is not None:
            result = ready(sim)
            if result is not None:
                await result
        await asyncio.Event().wait()
