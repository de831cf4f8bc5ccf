"""pytest plugin registered by bookkeeper (entry point ``pytest11``).

Fixtures for users' test suites (see :mod:`bookkeeper.sim`):

- ``sim_exchange``: an async factory; ``sim = await sim_exchange(venues=("binance",), seed=3)``
  returns a started :class:`~bookkeeper.sim.SimExchange` (all its fault controls
  available) and stops it at teardown.

Importing this module must never break pytest startup for suites that do not use it: the
simulator (websockets, ccxt-facing servers) is imported lazily inside the fixture, and the
fixture is only defined when ``pytest-asyncio`` is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bookkeeper.sim import SimExchange

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixture needs pytest-asyncio
    pytest_asyncio = None  # type: ignore[assignment]


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def sim_exchange() -> AsyncIterator[Callable[..., Awaitable[SimExchange]]]:
        """Factory of started simulators: ``await sim_exchange(**SimExchange kwargs)``."""
        from bookkeeper.sim import SimExchange

        started: list[SimExchange] = []

        async def factory(**kwargs: Any) -> SimExchange:
            sim = SimExchange(**kwargs)
            await sim.start()
            started.append(sim)
            return sim

        try:
            yield factory
        finally:
            for sim in reversed(started):
                await sim.stop()
