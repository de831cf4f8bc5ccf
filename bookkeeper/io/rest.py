"""CcxtRestClient: REST depth snapshots over ``ccxt.async_support``.

Theory of operation
-------------------
``fetch_order_book`` drops the raw body, and with it the venue's sequence id on most venues
(exchange-protocols.md §2.6), so this client calls ccxt's *implicit endpoint* methods
(``public_get_depth`` ...) and hands the raw dict to the adapter's ``parse_rest_snapshot``.
The per-venue table :data:`ENDPOINTS` names the method and builds its parameters.

ccxt is pointed at the simulator by overriding its URLs through the constructor config
(``rest_config``); production uses ccxt's defaults. Same code path either way.

Every ccxt exception is mapped into ours at one boundary, :func:`map_ccxt_errors` (the httpx
``map_httpcore_exceptions`` pattern). This client never retries: the driver does, through
tenacity, with the policy in :mod:`bookkeeper.policy`.

>>> rest_config_for("binance", "http://127.0.0.1:8080")
{'urls': {'api': {'public': 'http://127.0.0.1:8080/api/v3'}}}
>>> ENDPOINTS["okx"].params("BTC-USDT", 1000)
{'instId': 'BTC-USDT', 'sz': 400}
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt
import ccxt.async_support as ccxt_async

from bookkeeper.errors import ConnectionLost, ExchangeRejected, RateLimited, RequestTimeout, UsageError
from bookkeeper.events import BookSnapshot
from bookkeeper.policy import parse_retry_after
from bookkeeper.ports import Adapter

from .clock import SYSTEM_CLOCK, Clock

__all__ = ["ENDPOINTS", "CcxtRestClient", "DepthEndpoint", "RestClient", "map_ccxt_errors", "rest_config_for"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthEndpoint:
    """Which ccxt class and implicit method fetch a venue's raw depth, and how to ask."""

    ccxt_id: str
    method: str
    params: Callable[[str, int | None], dict[str, Any]]


#: venue -> raw depth endpoint (exchange-protocols.md §2.6, §3.4, §5.4, §7.4).
ENDPOINTS: dict[str, DepthEndpoint] = {
    # GET /api/v3/depth -> {lastUpdateId, bids, asks}; limit max 5000 (§3.4)
    "binance": DepthEndpoint(ccxt_id="binance", method="public_get_depth",
                             params=lambda s, d: {"symbol": s, "limit": min(d or 1000, 5000)}),
    "binance_usdm": DepthEndpoint(ccxt_id="binanceusdm", method="fapipublic_get_depth",
                                  params=lambda s, d: {"symbol": s, "limit": min(d or 1000, 1000)}),
    "binance_coinm": DepthEndpoint(ccxt_id="binancecoinm", method="dapipublic_get_depth",
                                   params=lambda s, d: {"symbol": s, "limit": min(d or 1000, 1000)}),
    # GET /api/v5/market/books?instId=&sz= ; sz max 400 (§5.4)
    "okx": DepthEndpoint(ccxt_id="okx", method="public_get_market_books",
                         params=lambda s, d: {"instId": s, "sz": min(d or 400, 400)}),
    # GET /0/public/Depth?pair=&count= ; the REST pair has no slash (BTC/USD -> BTCUSD) (§7.4)
    "kraken": DepthEndpoint(ccxt_id="kraken", method="public_get_depth",
                            params=lambda s, d: {"pair": s.replace("/", ""), "count": min(d or 500, 500)}),
}


def rest_config_for(venue: str, base_url: str) -> dict[str, Any]:
    """A ccxt constructor config that sends ``venue``'s public REST calls to ``base_url``
    (the simulator). Only the URLs change; everything else is ccxt's own code path.

    Raises:
        UsageError: no URL rule for ``venue``.
    """
    base = base_url.rstrip("/")
    if venue == "binance":
        return {"urls": {"api": {"public": f"{base}/api/v3"}}}
    if venue == "binance_usdm":
        return {"urls": {"api": {"fapiPublic": f"{base}/fapi/v1"}}}
    if venue == "binance_coinm":
        return {"urls": {"api": {"dapiPublic": f"{base}/dapi/v1"}}}
    if venue == "okx":
        return {"urls": {"api": {"rest": base}}}
    if venue == "kraken":
        return {"urls": {"api": {"public": base, "private": base}}}
    raise UsageError(f"no REST URL rule for venue {venue!r}", venue=venue)


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
        adapter: parses the raw body (keeps the venue's sequence id).
        config: merged into the ccxt constructor config (``urls`` overrides for the
            simulator, ``timeout`` ...); ``None`` uses the real exchange.
        endpoint: override the :data:`ENDPOINTS` entry.
        clock: stamps ``ts_recv_ns``.

    Example (pointing ccxt at a local simulator)::

        rest = CcxtRestClient(get_adapter("binance"), config=rest_config_for("binance", sim.http_url))
        snap = await rest.fetch_snapshot("BTCUSDT", depth=100)
        await rest.close()

    Raises:
        UsageError: no endpoint known for the adapter's venue.
    """

    def __init__(
        self,
        adapter: Adapter,
        *,
        config: Mapping[str, Any] | None = None,
        endpoint: DepthEndpoint | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        ep = endpoint or ENDPOINTS.get(adapter.name)
        if ep is None:
            raise UsageError(f"no REST depth endpoint for venue {adapter.name!r}", venue=adapter.name)
        self._adapter = adapter
        self._endpoint = ep
        self._clock = clock
        cls = getattr(ccxt_async, ep.ccxt_id)
        self._exchange: Any = cls(dict(config or {}))
        self.calls = 0  #: REST requests made (for tests and telemetry)

    @property
    def exchange(self) -> Any:
        """The underlying ccxt exchange (read-only use)."""
        return self._exchange

    async def fetch_snapshot(self, symbol: str, *, depth: int | None = None) -> BookSnapshot:
        """Fetch and parse one depth snapshot (see :class:`RestClient`)."""
        ep = self._endpoint
        self.calls += 1
        with map_ccxt_errors(self._exchange, venue=self._adapter.name, symbol=symbol,
                             now_s=self._clock.time_ns() / 1e9):
            body = await getattr(self._exchange, ep.method)(ep.params(symbol, depth))
        return self._adapter.parse_rest_snapshot(body, symbol=symbol, ts_recv_ns=self._clock.time_ns())

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self._exchange.close()
