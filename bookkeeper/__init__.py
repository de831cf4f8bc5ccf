"""bookkeeper: keep a trading bot's local order books correct across WebSocket disconnects.

The public API, in three groups (everything else lives in its submodule and is importable
from there, e.g. ``bookkeeper.events.Trade`` or ``bookkeeper.recovery.splice``):

- **Run live books**: :class:`Feed` (one venue, many symbols; defaults to the real venue,
  point it at :mod:`bookkeeper.sim` in tests), :class:`ABFeed` (two lines per stream, the
  book served from the one furthest ahead), :class:`DriverConfig` (backoff, breaker,
  keepalive), :class:`BookView` (what ``feed.book()`` returns: read-only, refuses reads unless
  SYNCED), :class:`BookUpdate`, :class:`SyncState`, :class:`StateChanged`, :class:`Alert` /
  :class:`AlertKind`, :class:`PlanKind`, :class:`CloseReason`.
- **Keep an account correct** (positions, balances, open orders, fills): :class:`AccountFeed`
  (one account of one venue, durable in SQLite; replays missed fills or full-syncs after any
  private-channel gap), :class:`ApiCredentials` (never prints its secret), :class:`AccountPolicy`,
  :class:`AccountState`, :class:`AccountStateChanged`, :class:`AccountPlanKind`.
- **Build on the sans-I/O core** (adapters, replays, your own driver): :class:`BookSession`,
  :class:`L2Book`, :class:`ExchangeCapabilities` with :class:`SequenceModel`,
  :class:`SpliceRule`, :class:`ChecksumKind`, and the events :class:`BookDelta`,
  :class:`BookSnapshot`, :class:`BookTicker`, :class:`SnapshotSource`; :func:`get_adapter`.
- **Errors**: one root, :class:`BookkeeperError` (the tree is drawn in :mod:`bookkeeper.errors`).

``Feed``, ``AccountFeed``, ``DriverConfig``, ``BookUpdate`` and ``get_adapter`` are imported lazily, so
``import bookkeeper`` stays free of asyncio, websockets and ccxt for users of the core.
See README.md for the quick start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .account_session import AccountPolicy
from .actions import (
    AccountPlanKind,
    AccountState,
    AccountStateChanged,
    Alert,
    AlertKind,
    PlanKind,
    StateChanged,
    SyncState,
)
from .book import L2Book
from .capabilities import ChecksumKind, ExchangeCapabilities, SequenceModel, SpliceRule
from .credentials import ApiCredentials
from .errors import (
    AdapterError,
    BookkeeperError,
    ConnectionLost,
    ExchangeRejected,
    IntegrityError,
    InvalidEvent,
    InvalidState,
    RateLimited,
    RequestTimeout,
    TransportError,
    UsageError,
)
from .events import BookDelta, BookSnapshot, BookTicker, CloseReason, SnapshotSource
from .session import BookSession
from .view import BookView

if TYPE_CHECKING:  # the lazy names, for type checkers and IDEs
    from .adapters import get_adapter
    from .io.abfeed import ABFeed
    from .io.account import AccountFeed
    from .io.feed import Feed
    from .io.stream import BookUpdate, DriverConfig

__version__ = "0.1.0"

_LAZY = {
    "Feed": "bookkeeper.io.feed",
    "AccountFeed": "bookkeeper.io.account",
    "ABFeed": "bookkeeper.io.abfeed",
    "DriverConfig": "bookkeeper.io.stream",
    "BookUpdate": "bookkeeper.io.stream",
    "get_adapter": "bookkeeper.adapters",
}


def __getattr__(name: str) -> object:
    """The lazy names live in the I/O layer and the adapter registry; importing them on first
    use keeps ``import bookkeeper`` free of asyncio, websockets and ccxt."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bookkeeper' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # live books
    "Feed", "ABFeed", "DriverConfig", "BookView", "BookUpdate", "SyncState", "StateChanged", "Alert", "AlertKind",
    "PlanKind", "CloseReason",
    # accounts
    "AccountFeed", "ApiCredentials", "AccountPolicy", "AccountState", "AccountStateChanged", "AccountPlanKind",
    # the sans-I/O core
    "BookSession", "L2Book", "ExchangeCapabilities", "SequenceModel", "SpliceRule", "ChecksumKind",
    "BookDelta", "BookSnapshot", "BookTicker", "SnapshotSource", "get_adapter",
    # errors
    "BookkeeperError", "InvalidEvent", "InvalidState", "IntegrityError", "AdapterError", "TransportError",
    "ConnectionLost", "RequestTimeout", "RateLimited", "ExchangeRejected", "UsageError",
    "__version__",
]  # fmt: skip
