"""AccountFeed: one account's positions, balances, orders and fills, kept correct across
private-stream disconnects, auth expiry and crashes.

Theory of operation
-------------------
An :class:`AccountFeed` owns one private WebSocket connection (the venue's authenticated
stream), a ccxt exchange for the private REST calls (ccxt signs them), the account's durable
ledger (:class:`~bookkeeper.io.store.DurableLedger` over SQLite) and the pure
:class:`~bookkeeper.account_session.AccountSession` that decides everything. This module only
executes: it connects (tenacity backoff, circuit breaker, jittered first delay), feeds the
session each frame's decoded events and the clock, runs the actions it returns (login and
subscribe frames, ledger writes, REST replays and full syncs, reconciliations, rotations),
and writes one disconnect record per disconnect (channel ``private``, with the recovery plans
and their reasons).

listenKey venues (``ports.PrivateBootstrap``, Binance USD-M): the private URL comes from a REST
answer, so every connection attempt first makes the adapter's bootstrap call (through ccxt,
one call per attempt: the attempt loop retries it with the same backoff and ``Retry-After``
floor as the connect itself; refused credentials halt the account as a refused login does),
then connects to the URL built from the answer, and keeps the grant alive with the adapter's
keepalive call while connected (a refused keepalive means the grant is gone: a new
connection, with a new bootstrap). Such a URL authenticates (``login_messages`` is ``[]``):
the first login of a connection is answered at once with ``LOGGED_IN``; a later one (the venue
ended the session, ``listenKeyExpired``) rotates the connection, so the next bootstrap gets a
live key, and the recovery plan made once it is back closes the gap.

Durability: every ledger input is committed before the next frame is read (a fill and its
cursor in one transaction; a replayed symbol's pages in one transaction, because venues that
page newest-first would otherwise move the cursor past fills not yet stored), so a
``kill -9`` at any moment loses no fill and counts none twice: the next start loads the
store and replays from the cursors.

Secrets: the credentials object never prints its secret; nothing here logs a request, a
signed frame or a ccxt configuration. TLS verification is ccxt's and websockets' default
(on) for real endpoints.

Example (against the local simulator; never a real venue in examples)::

    async with SimExchange(venues=("binance",), accounts=("binance",)) as sim:
        creds = ApiCredentials(*sim.account("binance").credentials[:2])
        async with AccountFeed("binance", ["BTCUSDT"], credentials=creds, store="acct.sqlite3",
                               ws_root=sim.urls("binance")["ws_root"],
                               rest_config=sim.ccxt_config("binance")) as account:
            await account.wait_synced(timeout=10)
            print(account.balances(), account.open_orders())
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import ccxt.async_support as ccxt_async
from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt

from bookkeeper.account import AccountRecoveryPlan
from bookkeeper.account_session import AccountPolicy, AccountSession
from bookkeeper.actions import (
    AccountAction,
    AccountAlert,
    AccountPlanKind,
    AccountState,
    AccountStateChanged,
    ApplyAccountEvents,
    FetchFillsSince,
    FullSync,
    HaltAccount,
    Login,
    Reconcile,
    ReconnectPrivate,
    SubscribePrivate,
)
from bookkeeper.credentials import ApiCredentials
from bookkeeper.errors import (
    AdapterError,
    BookkeeperError,
    ExchangeRejected,
    InvalidState,
    TransportError,
    UsageError,
)
from bookkeeper.events import (
    AccountSnapshot,
    BalanceReport,
    BalanceUpdate,
    CloseReason,
    Fill,
    OrderUpdate,
    PositionReport,
    PrivateControl,
    PrivateControlKind,
)
from bookkeeper.ledger import AccountKey, InstrumentKind, InstrumentSpec, Position
from bookkeeper.policy import BackoffPolicy, BreakerPolicy, BreakerState, CircuitBreaker
from bookkeeper.ports import AccountAdapter, PrivateBootstrap, RestCall

from .account_metrics import AccountMetrics
from .clock import SYSTEM_CLOCK, Clock, Sleep, real_sleep
from .records import DisconnectRecord, RecordWriter, iso_utc
from .redact import LIBRARY_LOGGERS, SecretRedactor
from .rest import map_ccxt_errors
from .retry import retrying
from .store import DEFAULT_STORE_PATH, DurableLedger, SqliteFillStore
from .ws import Closure, StreamTransport, TransportFactory, WebsocketsTransport

__all__ = ["AccountFeed", "instrument_from_market"]

log = logging.getLogger("bookkeeper.io.account")

NS = 1_000_000_000
#: REST retries of one call (429s with Retry-After, timeouts) before the recovery fails
_REST_ATTEMPTS = 6
#: a full sync re-reads until the venue's last-change time is the same before and after
_FULL_SYNC_READS = 5
#: how long close() waits to give a bootstrap grant back (listenKey DELETE)
_RELEASE_TIMEOUT_S = 5.0


def _credentials_refused(exc: ExchangeRejected) -> bool:
    """Whether a REST refusal is about the key itself (ccxt's ``AuthenticationError`` family:
    bad key, bad signature, no permission), not about the request."""
    return isinstance(exc.__cause__, ccxt_async.AuthenticationError)


def instrument_from_market(symbol: str, market: Mapping[str, Any]) -> InstrumentSpec:
    """The ledger's view of an instrument, from ccxt's unified market structure (ccxt knows
    every venue's instrument format; its ``*Id`` fields are the wire spellings the venue uses
    in fills and balances).

    Raises:
        UsageError: an instrument kind the ledger does not account (inverse, options).
    """
    base, quote = str(market.get("baseId") or market["base"]), str(market.get("quoteId") or market["quote"])
    if market.get("spot"):
        return InstrumentSpec(symbol=symbol, kind=InstrumentKind.SPOT, base=base, quote=quote)
    if market.get("linear"):
        settle = market.get("settleId") or market.get("settle") or quote
        size = market.get("contractSize") or 1
        # ccxt gives the contract size as a float parsed from the venue's string ("0.01"):
        # repr() of such a float is that string again
        return InstrumentSpec(symbol=symbol, kind=InstrumentKind.LINEAR, base=base, quote=quote, settle=str(settle),
                              contract_size=Decimal(repr(float(size))))
    raise UsageError(f"{symbol}: only spot and linear instruments are accounted (got {market.get('type')})",
                     symbol=symbol)


class _Record:
    """A disconnect whose record waits for the recovery to finish."""

    __slots__ = ("closure", "ts_ns", "mono_ns", "ago_ms", "uptime_s", "attempts", "plans_from", "reconnected_ns",
                 "missed")

    def __init__(self, closure: Closure, ts_ns: int, mono_ns: int, ago_ms: int | None, uptime_s: float,
                 plans_from: int) -> None:
        self.closure = closure
        self.ts_ns = ts_ns
        self.mono_ns = mono_ns
        self.ago_ms = ago_ms
        self.uptime_s = uptime_s
        self.attempts = 0
        self.plans_from = plans_from
        self.reconnected_ns: int | None = None
        self.missed = 0


class AccountFeed:
    """One account's private side (see the module docstring).

    Args:
        venue: a venue with account support (``bookkeeper.adapters.ACCOUNT_VENUES``).
        symbols: the instruments the account trades (wire spelling: ``BTCUSDT``,
            ``BTC-USDT-SWAP``); each is replayed and reconciled.
        credentials: the API key; ``None`` reads ``BOOKKEEPER_<VENUE>_API_KEY`` /
            ``_API_SECRET`` / ``_API_PASSPHRASE`` from the environment.
        account: the operator's label for the account (logged and stored; never secret).
        store: the SQLite file (or an open :class:`SqliteFillStore`); a restart resumes
            from it.
        ws_root: the private stream's server root (``None``: the venue's production root).
        rest_config: merged into the ccxt constructor (URL overrides for a simulator);
            credentials are added here, never taken from it.
        policy: recovery budgets and intervals (:class:`AccountPolicy`).
        backoff: reconnect delays and attempts per episode (1-2 s base, 30-60 s cap in
            production).
        breaker: the connection's circuit breaker.
        records_path: append disconnect records (JSON lines) to this file.
        bot_instance_id: the records' ``bot_instance_id`` (default: a random id).
        on_state: called with every :class:`AccountStateChanged` (errors are logged).
        on_plan: called with every recovery plan the session makes (replay or full sync,
            with its reason), as it is made.
        clock, sleep, rng: time, waiting and jitter (injected; tests pass fakes/seeds).
        transport_factory: one transport per connection attempt.
        tick_interval_s: how often the session is given the clock.
        startup_jitter_s: a random delay up to this before the first connection (many bot
            instances restarting at once do not arrive together).
        environ: where ``credentials=None`` reads them (default ``os.environ``).
        metrics: report this feed's state, recoveries, re-authentications, alerts and
            disconnects there (read at scrape time).

    Raises:
        UsageError: unknown venue, no symbols, missing credentials, unwritable records path.
    """

    def __init__(
        self,
        venue: str,
        symbols: Sequence[str],
        *,
        credentials: ApiCredentials | None = None,
        account: str = "main",
        store: str | os.PathLike[str] | SqliteFillStore = DEFAULT_STORE_PATH,
        ws_root: str | None = None,
        rest_config: Mapping[str, Any] | None = None,
        policy: AccountPolicy | None = None,
        backoff: BackoffPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        records_path: str | Path | None = None,
        bot_instance_id: str | None = None,
        on_state: Callable[[AccountStateChanged], None] | None = None,
        on_plan: Callable[[AccountRecoveryPlan], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = real_sleep,
        rng: random.Random | None = None,
        transport_factory: TransportFactory | None = None,
        tick_interval_s: float = 0.25,
        startup_jitter_s: float = 0.0,
        environ: Mapping[str, str] | None = None,
        metrics: AccountMetrics | None = None,
    ) -> None:
        from bookkeeper.adapters import get_account_adapter  # looked up, never imported by name

        self._adapter: AccountAdapter = get_account_adapter(venue)
        #: the adapter's bootstrap side when its private URL comes from a REST answer
        self._bootstrap: PrivateBootstrap | None = (
            self._adapter if isinstance(self._adapter, PrivateBootstrap) else None)
        self._grant: Any = None  # the latest bootstrap answer (what the keepalive keeps)
        self._url_logged_in = False  # this connection's URL already stood for its login
        if not symbols:
            raise UsageError("an account feed needs at least one symbol", venue=venue)
        self._venue = venue
        self._symbols = list(dict.fromkeys(symbols))
        self._creds = credentials if credentials is not None else ApiCredentials.from_env(
            venue, os.environ if environ is None else environ)
        self._key = AccountKey(venue=venue, account=account)
        self._store_arg = store
        self._ws_root = ws_root or self._adapter.default_private_ws_root()
        self._rest_config = {k: v for k, v in (rest_config or {}).items()
                             if k not in ("apiKey", "secret", "password", "uid", "privateKey")}
        if self._rest_config.get("verify", True) is False:
            # signed requests carry the key and a signature: never over unverified TLS
            raise UsageError("rest_config verify=False: TLS verification stays on for signed requests", venue=venue)
        self._policy = policy or AccountPolicy()
        self._backoff = backoff or BackoffPolicy()
        self._breaker = CircuitBreaker(breaker or BreakerPolicy())
        self._records = RecordWriter(records_path) if records_path is not None else RecordWriter()
        self._instance = bot_instance_id or f"bot-{uuid.uuid4().hex[:8]}"
        self._on_state = on_state
        self._on_plan = on_plan
        self._plans_seen = 0
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        ka = None if self._adapter.ping_interval_s is not None else 20.0
        self._factory = transport_factory or (lambda: WebsocketsTransport(clock=clock, protocol_keepalive_s=ka))
        self._tick_s = tick_interval_s
        self._startup_jitter_s = startup_jitter_s
        self._durable: DurableLedger | None = None
        # ccxt (request headers) and websockets (frame text) log at DEBUG: scrub our secrets
        self._redactor = SecretRedactor(self._creds.secrets())
        self._session: AccountSession | None = None
        self._exchange: Any = None
        self._transport: StreamTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self._replays: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self._halt_reason: str | None = None
        self._reconnect_reason: str | None = None
        self._pending_record: _Record | None = None
        self._connected_ns: int | None = None
        self._last_rx_ns: int | None = None
        self._request_id = 0
        self._state_queues: list[asyncio.Queue[AccountStateChanged | None]] = []
        #: recent alerts (drift, conflicts, refused credentials), newest last
        self.alerts: deque[AccountAlert] = deque(maxlen=1000)
        #: REST requests made, by implicit method name
        self.rest_calls: Counter[str] = Counter()
        #: connections opened / connection attempts made / bad frames skipped / unknown-symbol events
        self.connections = 0
        self.attempts = 0
        #: bootstrap answers received (listenKeys obtained) / grant keepalives made (PrivateBootstrap)
        self.bootstraps = 0
        self.keepalives = 0
        self.ignored_events = 0
        self.errors = 0
        #: alerts by kind and disconnects by close cause, since start
        self.alert_counts: Counter[str] = Counter()
        self.disconnect_causes: Counter[str] = Counter()
        self._metrics = metrics
        if metrics is not None:
            metrics.watch(self)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the store, load markets, start the connection task.

        Raises:
            UsageError: a symbol the venue does not list, or an unsupported instrument kind.
            ExchangeRejected | TransportError: the markets could not be loaded.
        """
        if self._task is not None:
            return
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)
        store = self._store_arg if isinstance(self._store_arg, SqliteFillStore) else SqliteFillStore(self._store_arg)
        ledger = store.load()
        self._durable = DurableLedger(store, ledger)
        config = {**self._rest_config, **self._creds.ccxt_config()}
        self._exchange = getattr(ccxt_async, self._adapter.ccxt_id)(config)
        try:
            # retried like any REST call (a 429 at start; Coinbase's load_markets makes a signed call)
            async for attempt in retrying(self._backoff, rng=self._rng, sleep=self._sleep, max_attempts=_REST_ATTEMPTS):
                with attempt, map_ccxt_errors(self._exchange, venue=self._venue, now_s=self._clock.time_ns() / 1e9):
                    await self._exchange.load_markets()
            for symbol in self._symbols:
                listed = self._exchange.markets_by_id.get(symbol) or []
                by_type = {m.get("type"): m for m in listed}
                market = next((by_type[t] for t in self._adapter.market_types if t in by_type), None)
                if market is None:
                    raise UsageError(f"{self._venue} lists no {'/'.join(self._adapter.market_types)} instrument "
                                     f"{symbol!r}", venue=self._venue, symbol=symbol)
                self._durable.add_instrument(self._venue, instrument_from_market(symbol, market))
        except BaseException:
            await self._exchange.close()
            store.close()
            for name in LIBRARY_LOGGERS:
                logging.getLogger(name).removeFilter(self._redactor)
            raise
        now = self._clock.time_ns()
        self._session = AccountSession(
            self._key, self._symbols, history=self._adapter.history, ledger=ledger,
            session_lifetime_s=self._adapter.session_lifetime_s, channels=self._adapter.subscribe_channels(),
            policy=self._policy, now_ns=now)
        self._task = asyncio.create_task(self._run(), name=f"account-{self._venue}-{self._key.account}")
        self._task.add_done_callback(self._run_done)

    async def close(self) -> None:
        """Stop the connection and the REST work, close ccxt and the store. Idempotent.

        Raises:
            InvalidState: the driver task had died (its exception is the ``__cause__``).
        """
        self._closing = True
        for task in list(self._work):
            task.cancel()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        for task in list(self._work):
            with contextlib.suppress(BaseException):
                await task
        if self._pending_record is not None:
            self._write_record(success=False)
        await self._release_grant()
        if self._exchange is not None:
            with contextlib.suppress(Exception):
                await self._exchange.close()
            self._exchange = None
        if self._durable is not None:
            self._durable.store.close()
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self._redactor)
        for q in self._state_queues:
            q.put_nowait(None)
        self._changed.set()
        if self._failure is not None:
            raise InvalidState(f"the account driver died: {self._failure!r}") from self._failure

    async def __aenter__(self) -> AccountFeed:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failure = exc
            log.error("%s: account driver died", self._key, exc_info=exc)
        self._changed.set()

    # ------------------------------------------------------------------ public reads
    @property
    def state(self) -> AccountState:
        """The account's sync state (numbers are current only when ``SYNCED``)."""
        return self._session.state if self._session is not None else AccountState.DISCONNECTED

    @property
    def session(self) -> AccountSession:
        """The pure session (its ``stats`` and ``plans`` are what reports read).

        Raises:
            InvalidState: before :meth:`start`.
        """
        if self._session is None:
            raise InvalidState("the account feed is not started")
        return self._session

    @property
    def account(self) -> AccountKey:
        return self._key

    @property
    def durable(self) -> DurableLedger:
        """The durable ledger (read it; writing is the feed's job).

        Raises:
            InvalidState: before :meth:`start`.
        """
        if self._durable is None:
            raise InvalidState("the account feed is not started")
        return self._durable

    @property
    def records(self) -> list[DisconnectRecord]:
        """The disconnect records written so far (bounded)."""
        return list(self._records.records)

    @property
    def failure(self) -> BaseException | None:
        """Why the driver task died, if it did."""
        return self._failure

    def balances(self) -> dict[str, Decimal]:
        """Total balance per currency, as the ledger derives it."""
        return self.durable.ledger.balances(self._key)

    def positions(self) -> dict[str, Position]:
        """Linear derivative positions, as the ledger derives them."""
        return self.durable.ledger.positions(self._key)

    def open_orders(self) -> list[OrderUpdate]:
        """Open orders (latest report each)."""
        return self.durable.ledger.open_orders(self._key)

    def fills(self, symbol: str | None = None) -> list[Fill]:
        """Recorded fills in execution order."""
        return self.durable.ledger.fills(self._key, symbol)

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Wait until the account is SYNCED.

        Raises:
            TimeoutError: not synced within ``timeout``.
            InvalidState: the account is HALTED (credentials refused) or the driver died.
        """
        async with asyncio.timeout(timeout):
            while True:
                self._raise_if_dead()
                if self.state is AccountState.SYNCED:
                    return
                self._changed.clear()
                await self._changed.wait()

    async def wait_until(self, predicate: Callable[[AccountFeed], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate(feed)`` holds; it is checked now and after every change
        (an event applied, a recovery step, a state change).

        Raises:
            TimeoutError: it did not hold within ``timeout``.
            InvalidState: the account is HALTED or the driver died.
        """
        async with asyncio.timeout(timeout):
            while True:
                self._raise_if_dead()
                if predicate(self):
                    return
                self._changed.clear()
                await self._changed.wait()

    async def states(self) -> AsyncIterator[AccountStateChanged]:
        """Every state change from now on (the bot is told when it is recovering); ends when
        the feed closes."""
        q: asyncio.Queue[AccountStateChanged | None] = asyncio.Queue(maxsize=10_000)
        self._state_queues.append(q)
        try:
            while (item := await q.get()) is not None:
                yield item
        finally:
            self._state_queues.remove(q)

    def _raise_if_dead(self) -> None:
        if self._failure is not None:
            raise InvalidState(f"the account driver died: {self._failure!r}") from self._failure
        if self._halt_reason is not None:
            raise InvalidState(f"{self._key} is halted: {self._halt_reason}", state=AccountState.HALTED)

    # ------------------------------------------------------------------ connection loop
    async def _run(self) -> None:
        assert self._session is not None
        if self._startup_jitter_s > 0:
            await self._sleep(self._rng.uniform(0, self._startup_jitter_s))
        ticker = asyncio.create_task(self._ticker())
        initial = True
        try:
            while not self._closing and self._halt_reason is None:
                transport = await self._connect(initial=initial)
                initial = False
                if transport is None:
                    await self._cool_down()
                    continue
                closure = await self._serve(transport)
                self._disconnected(closure)
        finally:
            ticker.cancel()
            with contextlib.suppress(BaseException):
                await ticker

    async def _connect(self, *, initial: bool) -> StreamTransport | None:
        now = self._clock.monotonic_ns()
        probe = self._breaker.state_at(now) is BreakerState.HALF_OPEN
        if not initial and not probe:
            delay = self._backoff.initial_delay_s(rand=self._rng.random())
            if delay > 0:
                await self._sleep(delay)
        url = None if self._bootstrap is not None else self._adapter.private_ws_url(self._ws_root)
        episode = 0
        transport: StreamTransport | None = None
        try:
            async for attempt in retrying(self._backoff, rng=self._rng, sleep=self._sleep,
                                          max_attempts=1 if probe else self._backoff.max_attempts):
                with attempt:
                    episode += 1
                    self.attempts += 1
                    if self._pending_record is not None:
                        self._pending_record.attempts += 1
                    candidate = self._factory()
                    try:
                        await candidate.connect(url if url is not None else await self._bootstrap_url())
                    except (TransportError, ExchangeRejected):
                        self._breaker.record_failure(self._clock.monotonic_ns())
                        raise
                    transport = candidate
        except (TransportError, ExchangeRejected) as exc:
            if not self._halt_if_refused(exc):  # a refused bootstrap call halts as a refused login
                self._connect_failed(episode, exc)
            return None
        self.connections += 1
        return transport

    async def _bootstrap_url(self) -> str:
        """The bootstrap call of a :class:`~bookkeeper.ports.PrivateBootstrap` venue (one
        request: the attempt loop retries it) and the URL from its answer.

        Raises:
            TransportError: the request failed (retryable).
            ExchangeRejected: the venue refused it, or its answer is unreadable.
        """
        bootstrap = self._bootstrap
        assert bootstrap is not None
        body = await self._request(bootstrap.private_bootstrap_call())
        try:
            url = bootstrap.private_url_from_bootstrap(self._ws_root, body)
        except AdapterError as exc:
            raise ExchangeRejected(f"unreadable bootstrap answer: {exc}", exchange=self._venue) from exc
        self.bootstraps += 1
        self._grant = body
        return url

    async def _release_grant(self) -> None:
        """Give a bootstrap grant back on close (listenKey ``DELETE``): one try, bounded, errors
        logged (the grant expires by itself anyway)."""
        bootstrap, grant = self._bootstrap, self._grant
        if bootstrap is None or grant is None or self._exchange is None or self._halt_reason is not None:
            return
        self._grant = None
        call = bootstrap.private_release_call(grant)
        if call is None:
            return
        try:
            await asyncio.wait_for(self._request(call), timeout=_RELEASE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - closing: report and go on
            log.info("%s: could not give the private stream's grant back on close: %s", self._key, exc)

    def _connect_failed(self, episode: int, exc: BaseException) -> None:
        """An attempt episode ended without a connection: the breaker opens (its cool-down
        paces the next episode)."""
        if self._breaker.state_at(self._clock.monotonic_ns()) is not BreakerState.OPEN:
            self._breaker.trip(self._clock.monotonic_ns())
        log.warning("%s: private reconnect failed after %d attempts (%s); circuit breaker open",
                    self._key, episode, exc)

    async def _cool_down(self) -> None:
        delay = self._breaker.cooldown_remaining_s(self._clock.monotonic_ns())
        if delay > 0:
            await self._sleep(delay)

    async def _serve(self, transport: StreamTransport) -> Closure:
        session = self._session
        assert session is not None
        self._transport = transport
        self._reconnect_reason = None
        now = self._clock.time_ns()
        self._connected_ns = self._clock.monotonic_ns()
        self._last_rx_ns = self._connected_ns
        if self._pending_record is not None:
            self._pending_record.reconnected_ns = self._clock.monotonic_ns()
        decoder = self._adapter.new_private_decoder()
        self._url_logged_in = False
        self._execute(session.opened(now))
        keepalive = asyncio.create_task(self._keepalive(transport)) if self._adapter.ping_interval_s else None
        bootstrap = self._bootstrap
        grant = (asyncio.create_task(self._keep_grant(transport))
                 if bootstrap is not None and bootstrap.keepalive_interval_s else None)
        try:
            while True:
                if self._reconnect_reason is not None:
                    transport.abort(CloseReason.LOCAL_SHUTDOWN)
                    return Closure(reason=CloseReason.LOCAL_SHUTDOWN, code=None, detail=self._reconnect_reason)
                try:
                    frame = await transport.recv()
                except TransportError as exc:
                    closure = getattr(exc, "closure", None) or transport.closure
                    return closure if isinstance(closure, Closure) else Closure(
                        reason=CloseReason.TCP_ERROR, code=None, detail=str(exc))
                self._last_rx_ns = frame.mono_ns
                self._breaker.record_success(frame.mono_ns)  # the connection delivers: healthy
                try:
                    events = decoder.decode(frame.data, frame.ts_recv_ns)
                except AdapterError as exc:
                    self._execute(session.bad_input(self._clock.time_ns(), str(exc)[:200]))
                    continue
                if events:
                    self._execute(session.handle(events, self._clock.time_ns()))
                if self._halt_reason is not None:
                    with contextlib.suppress(Exception):
                        await transport.close()
                    return Closure(reason=CloseReason.AUTH_FAILED, code=None, detail=self._halt_reason)
        finally:
            for task in (keepalive, grant):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            self._transport = None

    async def _keepalive(self, transport: StreamTransport) -> None:
        """App-level pings (OKX text ``ping`` after N s without traffic) and the pong timeout."""
        interval = self._adapter.ping_interval_s or 15.0
        timeout = self._adapter.pong_timeout_s or 10.0
        ping = self._adapter.ping_message()
        while True:
            last = self._last_rx_ns or 0
            idle_s = (self._clock.monotonic_ns() - last) / NS
            if idle_s < interval:
                await self._sleep(interval - idle_s)
                continue
            if ping is not None:
                with contextlib.suppress(TransportError):
                    await transport.send(ping)
            await self._sleep(timeout)
            if (self._last_rx_ns or 0) <= last:
                log.warning("%s: no pong within %.1fs; dropping the private connection", self._key, timeout)
                transport.abort(CloseReason.PING_TIMEOUT)
                return

    async def _keep_grant(self, transport: StreamTransport) -> None:
        """The bootstrap grant's keepalive (a listenKey ``PUT`` every 20 min) while connected.
        A refused keepalive means the grant is gone: rotate the connection (the next one
        bootstraps anew); a failed one is tried again at the next interval (the grant outlives
        a missed keepalive: a listenKey lives 60 min)."""
        bootstrap = self._bootstrap
        assert bootstrap is not None and bootstrap.keepalive_interval_s
        while True:
            await self._sleep(bootstrap.keepalive_interval_s)
            call = bootstrap.private_keepalive_call(self._grant)
            if call is None:
                return
            try:
                await self._call(call)
            except ExchangeRejected as exc:
                log.warning("%s: the private stream's grant was refused a keepalive (%s); reconnecting",
                            self._key, exc)
                transport.abort(CloseReason.AUTH_FAILED)
                return
            except TransportError as exc:
                log.warning("%s: grant keepalive failed (%s); trying again in %.0fs", self._key, exc,
                            bootstrap.keepalive_interval_s)
                continue
            except Exception:  # a bug here must not end the keepalive silently (the key would lapse)
                log.exception("%s: grant keepalive crashed; reconnecting", self._key)
                transport.abort(CloseReason.LOCAL_SHUTDOWN)
                return
            self.keepalives += 1
            self._changed.set()

    async def _ticker(self) -> None:
        while True:
            await self._sleep(self._tick_s)
            if self._session is not None:
                self._execute(self._session.tick(self._clock.time_ns()))

    def _disconnected(self, closure: Closure) -> None:
        session = self._session
        assert session is not None
        now_mono = self._clock.monotonic_ns()
        if self._pending_record is not None:  # it never recovered before dropping again
            self._write_record(success=False)
        local = closure.reason is CloseReason.LOCAL_SHUTDOWN
        self.disconnect_causes[str(closure.reason)] += 1
        if not local:
            self._breaker.record_failure(now_mono)
        for task in list(self._work):
            task.cancel()
        ago = None if self._last_rx_ns is None else (now_mono - self._last_rx_ns) // 1_000_000
        uptime = 0.0 if self._connected_ns is None else (now_mono - self._connected_ns) / NS
        if not self._closing:
            self._pending_record = _Record(closure, self._clock.time_ns(), now_mono, ago, uptime, len(session.plans))
        self._execute(session.closed(self._clock.time_ns(), closure.reason))

    # ------------------------------------------------------------------ actions
    def _execute(self, actions: Sequence[AccountAction]) -> None:
        self._announce_plans()
        for action in actions:
            try:
                self._one(action)
            except BookkeeperError as exc:  # a ledger refusal, a store failure: visible, counted
                self.errors += 1
                log.error("%s: action %s failed: %s", self._key, type(action).__name__, exc, exc_info=True)

    def _announce_plans(self) -> None:
        session = self._session
        if session is None:
            return
        plans = session.plans  # append-only
        while self._plans_seen < len(plans):
            plan = plans[self._plans_seen]
            self._plans_seen += 1
            log.info("%s: recovery plan %s: %s", self._key, plan.kind, plan.reason)
            if self._on_plan is not None:
                try:
                    self._on_plan(plan)
                except Exception:
                    self.errors += 1
                    log.exception("%s: on_plan callback raised", self._key)

    def _one(self, action: AccountAction) -> None:
        session = self._session
        assert session is not None and self._durable is not None
        if isinstance(action, ApplyAccountEvents):
            self._apply(action.events)
        elif isinstance(action, Login):
            self._request_id += 1
            frames = self._adapter.login_messages(self._creds, now_ms=self._clock.time_ns() // 1_000_000,
                                                  request_id=str(self._request_id))
            if frames:
                self._send(frames)
                log.info("%s: logging in (%s) with key %s", self._key, action.reason, self._creds.fingerprint)
            else:
                self._url_login(action)
        elif isinstance(action, SubscribePrivate):
            self._request_id += 1
            self._send(self._adapter.subscribe_messages(request_id=str(self._request_id)))
        elif isinstance(action, FetchFillsSince):
            self._replays.add(self._spawn(self._replay(action)))
        elif isinstance(action, FullSync):
            # a replay escalated (or replaced): its other symbols' fetches must not answer the
            # plans that follow
            for task in list(self._replays):
                task.cancel()
            self._replays.clear()
            self._spawn(self._full_sync(action))
        elif isinstance(action, Reconcile):
            self._spawn(self._reconcile())
        elif isinstance(action, ReconnectPrivate):
            log.info("%s: reconnecting the private stream: %s", self._key, action.reason)
            self._reconnect_reason = action.reason
            if self._transport is not None:
                self._transport.abort(CloseReason.LOCAL_SHUTDOWN)
        elif isinstance(action, HaltAccount):
            self._halt_reason = action.reason
            log.error("%s: account halted: %s", self._key, action.reason)
            self._changed.set()
        elif isinstance(action, AccountStateChanged):
            self._state_changed(action)
        elif isinstance(action, AccountAlert):
            self.alerts.append(action)
            self.alert_counts[str(action.kind)] += 1
            log.warning("%s: %s: %s %s", self._key, action.kind, action.reason, action.evidence or "")

    def _url_login(self, action: Login) -> None:
        """A login where the URL authenticates (``login_messages`` is ``[]``): the connection's
        first is granted at once; a later one means the venue ended the session the URL
        carried, which only a new connection (with a new grant) can log in again."""
        session = self._session
        assert session is not None
        if self._transport is None:
            return
        if not self._url_logged_in:
            self._url_logged_in = True
            log.info("%s: logged in by the URL (%s) with key %s", self._key, action.reason, self._creds.fingerprint)
            now = self._clock.time_ns()
            self._execute(session.handle([PrivateControl(kind=PrivateControlKind.LOGGED_IN,
                                                         message="the URL authenticates", ts_recv_ns=now)], now))
            return
        # recorded as an auth failure (triage's "private-channel auth expiry"), not a local close
        log.info("%s: %s: the URL's grant ended; reconnecting with a new one", self._key, action.reason)
        self._transport.abort(CloseReason.AUTH_FAILED)

    def _send(self, frames: Sequence[str]) -> None:
        transport = self._transport
        if transport is None or not frames:
            return

        async def send_all() -> None:
            for text in frames:
                await transport.send(text)

        self._spawn(send_all())

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._work.add(task)
        task.add_done_callback(self._work_done)
        return task

    def _work_done(self, task: asyncio.Task[None]) -> None:
        self._work.discard(task)
        self._replays.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, TransportError):
            return  # the connection is going down; its closure is handled by the loop
        if exc is not None:
            self.errors += 1
            log.error("%s: account work failed", self._key, exc_info=exc)

    def _apply(self, events: Sequence[object]) -> None:
        durable, key = self._durable, self._key
        assert durable is not None
        fills: list[Fill] = []
        for event in events:
            symbol = getattr(event, "symbol", None)
            if symbol is not None and symbol not in self._symbols:
                self.ignored_events += 1
                continue
            if isinstance(event, Fill):
                fills.append(event)
                continue
            if fills:
                durable.apply_fills(key, fills)
                fills = []
            if isinstance(event, OrderUpdate):
                durable.apply_order_update(key, event)
            elif isinstance(event, BalanceUpdate):
                durable.apply_balance_update(key, event)
        if fills:
            durable.apply_fills(key, fills)
        self._changed.set()

    def _state_changed(self, change: AccountStateChanged) -> None:
        log.info("%s: %s -> %s (%s)", self._key, change.old, change.new, change.reason)
        if change.new is AccountState.SYNCED and self._pending_record is not None:
            self._write_record(success=True)
        for q in self._state_queues:
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(change)
        if self._on_state is not None:
            try:
                self._on_state(change)
            except Exception:  # a bot's callback must not stop the account
                self.errors += 1
                log.exception("%s: on_state callback raised", self._key)
        self._changed.set()

    def _write_record(self, *, success: bool) -> None:
        pending, self._pending_record = self._pending_record, None
        if pending is None or self._session is None:
            return
        plans = self._session.plans[pending.plans_from:]
        latency = None
        if success and pending.reconnected_ns is not None:
            latency = max(0, (pending.reconnected_ns - pending.mono_ns) // 1_000_000)
        closure = pending.closure
        record = DisconnectRecord(
            ts=iso_utc(pending.ts_ns), bot_instance_id=self._instance, exchange=self._venue, channel="private",
            close_code=closure.code, close_cause=str(closure.reason), last_message_ago_ms=pending.ago_ms,
            uptime_seconds=round(pending.uptime_s, 3), reconnect_attempt=pending.attempts, reconnect_success=success,
            reconnect_latency_ms=latency, missed_messages_count=pending.missed,
            plan=list(dict.fromkeys(str(p.kind) for p in plans)), account_plans=[p.as_record() for p in plans])
        self._records.write(record)

    # ------------------------------------------------------------------ REST work
    async def _call(self, call: RestCall) -> Any:
        """One signed REST call through ccxt, retried on 429/timeouts (Retry-After honoured)."""
        async for attempt in retrying(self._backoff, rng=self._rng, sleep=self._sleep, max_attempts=_REST_ATTEMPTS):
            with attempt:
                return await self._request(call)
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    async def _request(self, call: RestCall) -> Any:
        """One request through ccxt, no retry (ccxt's exceptions mapped at the one boundary)."""
        self.rest_calls[call.method] += 1
        with map_ccxt_errors(self._exchange, venue=self._venue, now_s=self._clock.time_ns() / 1e9):
            return await getattr(self._exchange, call.method)(dict(call.params))

    async def _replay(self, action: FetchFillsSince) -> None:
        session, durable = self._session, self._durable
        assert session is not None and durable is not None
        adapter = self._adapter
        call: RestCall | None = adapter.fills_call(action.symbol, cursor=action.cursor,
                                                   since_ms=action.since_ns // 1_000_000,
                                                   until_ms=action.until_ns // 1_000_000 + 1)
        fills: list[Fill] = []
        pages = 0
        try:
            while call is not None and pages < action.max_pages:
                body = await self._call(call)
                pages += 1
                page = adapter.parse_fills_page(body, call=call, symbol=action.symbol, ts_recv_ns=self._clock.time_ns())
                fills.extend(page.fills)
                call = page.next_call
        except (TransportError, ExchangeRejected, AdapterError) as exc:
            if not self._halt_if_refused(exc):
                self._execute(session.recovery_failed(self._clock.time_ns(), f"{action.symbol} fills: {exc}"))
            return
        before = {f.fill_id for f in durable.ledger.fills(self._key, action.symbol)}
        # one transaction for the whole replay: pages may come newest first (module docstring)
        durable.apply_fills(self._key, [f for f in fills if f.symbol == action.symbol])
        self._changed.set()
        new = sum(1 for f in fills if f.fill_id not in before)
        if self._pending_record is not None:
            self._pending_record.missed += new
        if new:
            log.info("%s: replay of %s found %d fill(s) the stream missed (%d page(s))", self._key, action.symbol,
                     new, pages)
        newest = max((f.ts_exchange_ns for f in fills), default=None)
        self._execute(session.replayed(action.symbol, exhausted=call is None, pages=pages, newest_ns=newest,
                                       now_ns=self._clock.time_ns()))

    def _halt_if_refused(self, exc: BaseException) -> bool:
        """A REST call refused for the key itself (ccxt's ``AuthenticationError`` family: a bad
        key or signature, a missing permission) halts the account as a refused login does: the
        same key would be refused again. Returns whether it did."""
        if not (isinstance(exc, ExchangeRejected) and _credentials_refused(exc)):
            return False
        now = self._clock.time_ns()
        self._execute(self.session.handle([PrivateControl(kind=PrivateControlKind.AUTH_REJECTED,
                                                          message=str(exc)[:200], ts_recv_ns=now)], now))
        if self._transport is not None:
            self._transport.abort(CloseReason.AUTH_FAILED)
        return True

    async def _read_balances(self) -> BalanceReport:
        body = await self._call(self._adapter.balances_call())
        return self._adapter.parse_balances(body, ts_recv_ns=self._clock.time_ns())

    async def _read_positions(self) -> list[PositionReport] | None:
        call = self._adapter.positions_call()
        if call is None:
            return None
        body = await self._call(call)
        reports = self._adapter.parse_positions(body, ts_recv_ns=self._clock.time_ns())
        return [r for r in reports if r.symbol in self._symbols]

    async def _read_open_orders(self) -> list[OrderUpdate]:
        body = await self._call(self._adapter.open_orders_call())
        orders = self._adapter.parse_open_orders(body, ts_recv_ns=self._clock.time_ns())
        return [o for o in orders if o.symbol in self._symbols]

    async def _read_mark(self) -> int | None:
        """The adapter's consistency mark (venue ns of the account's last change), ``None``
        when it has no mark call (the balances answer's ``ts_exchange_ns`` is the mark)."""
        call = self._adapter.account_mark_call()
        if call is None:
            return None
        body = await self._call(call)
        return self._adapter.parse_account_mark(body, ts_recv_ns=self._clock.time_ns())

    async def _consistent_read(self) -> tuple[int, BalanceReport, list[PositionReport] | None,
                                              list[OrderUpdate], int] | None:
        """mark -> balances -> positions -> open orders -> mark: one consistent picture when the
        account's last-change mark did not move (no mark call: the balances' own last-change
        time, read first and last). ``None`` when it moved (the caller reads again)."""
        mark = await self._read_mark()
        first = await self._read_balances()
        positions = await self._read_positions()
        listed_at = self._clock.time_ns()  # an order reported after this may be missing from the list
        orders = await self._read_open_orders()
        if mark is not None:
            as_of, after = mark, await self._read_mark()
        else:
            as_of, after = first.ts_exchange_ns, (await self._read_balances()).ts_exchange_ns
        return (as_of, first, positions, orders, listed_at) if after == as_of else None

    async def _full_sync(self, action: FullSync) -> None:
        session, durable = self._session, self._durable
        assert session is not None and durable is not None
        # a busy account may change between the reads: read again at once, a bounded number of
        # times (tenacity: retried on an inconsistent picture, never on errors, which _call
        # already retried)
        reads = AsyncRetrying(stop=stop_after_attempt(_FULL_SYNC_READS), retry=retry_if_result(lambda r: r is None),
                              sleep=self._sleep, retry_error_callback=lambda state: None)
        try:
            picture = await reads(self._consistent_read)
            if picture is None:
                raise TransportError(f"account kept changing during {_FULL_SYNC_READS} full-sync reads",
                                     exchange=self._venue)
        except (TransportError, ExchangeRejected, AdapterError) as exc:
            if not self._halt_if_refused(exc):
                self._execute(session.recovery_failed(self._clock.time_ns(), f"full sync: {exc}"))
            return
        as_of, first, positions, orders, listed_at = picture
        snapshot = AccountSnapshot(as_of_ns=as_of, balances=dict(first.balances),
                                   positions=list(positions or ()), open_orders=orders,
                                   ts_recv_ns=self._clock.time_ns(), orders_as_of_ns=listed_at)
        durable.apply_snapshot(self._key, snapshot)
        self._changed.set()
        log.info("%s: full sync at %s (%s)", self._key, iso_utc(snapshot.as_of_ns), action.reason)
        self._execute(session.synced_full(snapshot.as_of_ns, self._clock.time_ns()))

    async def _reconcile(self) -> None:
        session = self._session
        assert session is not None
        try:
            mark = await self._read_mark()
            balances = await self._read_balances()
            positions = await self._read_positions()
            open_orders = await self._read_open_orders()
            if mark is not None:
                after = await self._read_mark()
                if after != mark:
                    # the account changed while we read: not one picture, try at the next interval
                    log.info("%s: reconciliation skipped: the account changed during the reads", self._key)
                    self._execute(session.reconcile_failed(self._clock.time_ns()))
                    return
                balances = BalanceReport(balances=balances.balances, ts_exchange_ns=mark,
                                         ts_recv_ns=balances.ts_recv_ns)
        except (TransportError, ExchangeRejected, AdapterError) as exc:
            if not self._halt_if_refused(exc):
                log.warning("%s: reconciliation skipped: %s", self._key, exc)
                self._execute(session.reconcile_failed(self._clock.time_ns()))
            return
        self._execute(session.reconciled(self._clock.time_ns(), balances=balances, positions=positions,
                                         open_orders=open_orders))

    def recoveries(self) -> dict[str, int]:
        """Recovery plans run so far, by kind (``replay``, ``full_sync``)."""
        counts = {str(kind): 0 for kind in AccountPlanKind}
        for plan in self.session.plans:
            counts[str(plan.kind)] += 1
        return counts
