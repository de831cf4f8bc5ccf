"""bookkeeper: keep a trading bot's local order books correct across WebSocket disconnects.

The core is sans-I/O: :class:`BookSession` (per venue/symbol/channel) is fed normalized
events from a venue adapter and returns actions; drivers in :mod:`bookkeeper.io` execute
them. See README.md for the quick start.
"""

from __future__ import annotations

from .actions import (
    Action,
    Alert,
    AlertKind,
    FetchSnapshot,
    Halt,
    PlanKind,
    ReplayDeltas,
    Resubscribe,
    StateChanged,
    SyncState,
)
from .book import L2Book
from .capabilities import ChecksumKind, ExchangeCapabilities, SequenceModel, SpliceRule
from .checksum import kraken_checksum, okx_checksum
from .errors import (
    AdapterError,
    BookkeeperError,
    ConnectionLost,
    CrossedBook,
    ExchangeRejected,
    IntegrityError,
    InvalidEvent,
    InvalidState,
    NegativePosition,
    RateLimited,
    RequestTimeout,
    TransportError,
    UsageError,
)
from .events import (
    BookDelta,
    BookSnapshot,
    BookTicker,
    CloseReason,
    Fill,
    Heartbeat,
    SnapshotSource,
    StreamClosed,
    StreamOpened,
    Subscribed,
    Tick,
    Trade,
    VenueNotice,
)
from .recovery import RecoveryPlan, plan_recovery, splice
from .sequencer import Sequencer, SeqVerdict
from .session import BookSession, SessionStats
from .types import InstrumentKey, Side, TradeSide

__version__ = "0.1.0"

_LAZY = {"Feed": "bookkeeper.io.feed", "DriverConfig": "bookkeeper.io.stream"}


def __getattr__(name: str) -> object:
    """``Feed`` and ``DriverConfig`` live in the I/O layer; importing them lazily keeps
    ``import bookkeeper`` free of asyncio, websockets and ccxt for users of the core."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bookkeeper' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

__all__ = [
    "Action", "AdapterError", "Alert", "AlertKind", "BookDelta", "BookSession", "BookSnapshot", "DriverConfig", "Feed",
    "BookTicker", "BookkeeperError", "ChecksumKind", "CloseReason", "ConnectionLost", "CrossedBook",
    "ExchangeCapabilities", "ExchangeRejected", "FetchSnapshot", "Fill", "Halt", "Heartbeat",
    "InstrumentKey", "IntegrityError", "InvalidEvent", "InvalidState", "L2Book", "NegativePosition",
    "PlanKind", "RateLimited", "RecoveryPlan", "ReplayDeltas", "RequestTimeout", "Resubscribe",
    "SeqVerdict", "SequenceModel", "Sequencer", "SessionStats", "Side", "SnapshotSource",
    "SpliceRule", "StateChanged", "StreamClosed", "StreamOpened", "Subscribed", "SyncState", "Tick",
    "Trade", "TradeSide", "TransportError", "UsageError", "VenueNotice", "__version__",
    "kraken_checksum", "okx_checksum", "plan_recovery", "splice",
]  # fmt: skip
