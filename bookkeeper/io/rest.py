"""CcxtRestClient: REST depth snapshots over ``ccxt.async_support``.

Theory of operation
-------------------
``fetch_order_book`` drops the raw body, and with it the venue's sequence id on most venues
(exchange-protocols.md §2.6), so this client calls ccxt's *implicit endpoint* methods
(``public_get_depth`` ...) and hands the raw dict to the adapter's ``parse_rest_snapshot``.
Which class, method and parameters is the adapter's knowledge
(:meth:`~bookkeeper.ports.LiveSpec.rest_snapshot_call`); this module names no venue. The ccxt
exchange object is made on the first call (a venue that never needs a REST snapshot never
makes one).

ccxt is pointed at the simulator by overriding its URLs through the constructor config
(``rest_config``, from :func:`rest_config_for`); production uses ccxt's defaults. Same code
path either way.

Every ccxt exception is mapped into ours at one boundary, :func:`map_ccxt_errors` (the httpx
``map_httpcore_exceptions`` pattern). This client never retries: the driver does, through
tenacity, with the policy in :mod:`bookkeeper.policy`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import ccxt
import ccxt.async_support as ccxt_async

from bookkeeper.errors import (
    ConnectionLost,
    ExchangeRejected,
    RateLimited,
    RequestTimeout,
    UsageError,
)
from bookkeeper.events import BookSnapshot
from bookkeeper.policy import parse_retry_after
from bookkeeper.ports import Adapter, LiveSpec, RestCall

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["CcxtRestClient", "NoRestClient", "RestClient", "map_ccxt_errors", "rest_config_for"]


class RestClient(Protocol):
    """What the driver needs from REST (the simulator and test fakes implement it too)."""

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        """A REST snapshot with the venue's sequence id.

        Raises:
            RateLimited | RequestTimeout | ConnectionLost: retryable.
            ExchangeRejected | AdapterError: not retryable.

        Anything else is a bug of the client; the driver still treats it as a failed
        snapshot (logged with its traceback, counted, next recovery rung), never retried.
        """
        ...

    async def close(self) -> None: ...


def _live_spec(adapter: Adapter) -> LiveSpec:
    if not isinstance(adapter, LiveSpec):
        raise UsageError(f"adapter {adapter.name!r} has no live dialogue (LiveSpec)", venue=adapter.name)
    return adapter


def rest_config_for(venue: Adapter | str, base_url: str) -> dict[str, Any]:
    """A ccxt constructor config that sends the venue's REST calls to ``base_url`` (the
    simulator). Only the URLs change; everything else is ccxt's own code path. The URL rule is
    the adapter's (:meth:`~bookkeeper.ports.LiveSpec.ccxt_config_for`).

    Args:
        venue: the adapter, or its registry name.
        base_url: scheme, host and port of the server.

    >>> rest_config_for("binance", "http://127.0.0.1:8080")
    {'urls': {'api': {'public': 'http://127.0.0.1:8080/api/v3'}}}

    Raises:
        UsageError: unknown venue, or one that makes no REST call (nothing to point).
    """
    adapter: Adapter
    if isinstance(venue, str):
        # adapters are looked up, never imported by name
        from bookkeeper.adapters import get_adapter

        adapter = get_adapter(venue)
    else:
        adapter = venue
    return _live_spec(adapter).ccxt_config_for(base_url)


class NoRestClient:
    """The :class:`RestClient` of a venue whose REST book cannot be spliced (its capabilities
    never ask for one): no HTTP client is made, and a request is refused.

    Args:
        venue: named in the error.
    """

    def __init__(self, venue: str) -> None:
        self._venue = venue

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        """Never answers.

        Raises:
            ExchangeRejected: always (not retryable: the venue has no REST snapshot path).
        """
        raise ExchangeRejected(f"{self._venue} has no spliceable REST snapshot; resubscribe instead",
                               exchange=self._venue, symbol=symbol, ccxt_class=None)

    async def close(self) -> None:
        """Nothing to close."""


def _retry_after(exchange: Any, now_s: float) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = None
    if isinstance(headers, Mapping):
        for key, v in headers.items():
            if str(key).lower() == "retry-after":
                value = str(v)
                break
    return parse_retry_after(value, now_s=now_s)


@contextlib.contextmanager
def map_ccxt_errors(exchange: Any = None, *, venue: str = "", symbol: str | None = None,
                    now_s: float = 0.0) -> Iterator[None]:
    """Translate ccxt exceptions into bookkeeper's, ``from`` the original. The one boundary.

    ``RateLimitExceeded``/``DDoSProtection`` -> :class:`RateLimited` (``Retry-After`` read
    from ``exchange.last_response_headers``); ``RequestTimeout`` -> :class:`RequestTimeout`;
    other ``NetworkError`` -> :class:`ConnectionLost`; ``AuthenticationError``, ``BadSymbol``
    and every other ``ExchangeError`` -> :class:`ExchangeRejected` (not retryable).

    >>> try:
    ...     with map_ccxt_errors(venue="binance"):
    ...         raise ccxt.DDoSProtection("418")
    ... except RateLimited as exc:
    ...     type(exc.__cause__).__name__
    'DDoSProtection'
    """
    ctx = {"exchange": venue, "symbol": symbol}
    try:
        yield
    except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
        raise RateLimited(str(exc)[:200], retry_after_s=_retry_after(exchange, now_s), **ctx) from exc
    except ccxt.RequestTimeout as exc:
        raise RequestTimeout(str(exc)[:200], **ctx) from exc
    except ccxt.NetworkError as exc:
        raise ConnectionLost(str(exc)[:200], **ctx) from exc
    except ccxt.BaseError as exc:
        raise ExchangeRejected(str(exc)[:200], ccxt_class=type(exc).__name__, **ctx) from exc


class CcxtRestClient:
    """:class:`RestClient` over ccxt's async implicit endpoints.

    Args:
        adapter: the venue: says which call fetches a book
            (:meth:`~bookkeeper.ports.LiveSpec.rest_snapshot_call`) and parses the raw body
            (keeping the venue's sequence id).
        config: merged into the ccxt constructor config (``urls`` overrides for the
            simulator, ``timeout`` ...); ``None`` uses the real exchange.
        clock: stamps ``ts_recv_ns``.

    Example (pointing ccxt at a local simulator)::

        adapter = get_adapter("binance")
        rest = CcxtRestClient(adapter, config=rest_config_for(adapter, sim.http_url))
        snap = await rest.fetch_snapshot("BTCUSDT", depth=100)
        await rest.close()

    Raises:
        UsageError: the adapter has no live dialogue.
    """

    def __init__(
        self,
        adapter: Adapter,
        *,
        config: Mapping[str, Any] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        spec = _live_spec(adapter)
        self._adapter = adapter
        self._spec = spec
        self._config = dict(config or {})
        self._clock = clock
        self._exchanges: dict[str, Any] = {}  # ccxt id -> exchange, made on first use
        self.calls = 0  #: REST requests made (for tests and telemetry)

    def _exchange_for(self, ccxt_id: str) -> Any:
        exchange = self._exchanges.get(ccxt_id)
        if exchange is None:
            exchange = self._exchanges[ccxt_id] = getattr(ccxt_async, ccxt_id)(dict(self._config))
        return exchange

    async def call(self, call: RestCall, *, symbol: str | None = None) -> Any:
        """Make one declared ccxt call and return its raw answer.

        Raises:
            RateLimited | RequestTimeout | ConnectionLost | ExchangeRejected: mapped from ccxt.
        """
        exchange = self._exchange_for(call.ccxt_id)
        self.calls += 1
        with map_ccxt_errors(exchange, venue=self._adapter.name, symbol=symbol, now_s=self._clock.time_ns() / 1e9):
            return await getattr(exchange, call.method)(dict(call.params))

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        """Fetch and parse one depth snapshot (see :class:`RestClient`).

        Raises:
            ExchangeRejected: the venue's REST book cannot be spliced (no call declared).
        """
        call = self._spec.rest_snapshot_call(symbol, depth)
        if call is None:
            return await NoRestClient(self._adapter.name).fetch_snapshot(symbol, depth=depth)
        body = await self.call(call, symbol=symbol)
        return self._adapter.parse_rest_snapshot(body, symbol=symbol, ts_recv_ns=self._clock.time_ns())

    async def close(self) -> None:
        """Close ccxt's HTTP sessions."""
        for exchange in self._exchanges.values():
            await exchange.close()
