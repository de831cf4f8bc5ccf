"""Outputs of the core: what the driver must do, and what it must report.

Every action carries a ``reason`` (a short text for logs and disconnect records).
"""

from __future__ import annotations

import enum

import msgspec


class SyncState(enum.StrEnum):
    """A book stream's sync state. Only ``SYNCED`` books are valid to quote from."""

    UNSYNCED = "unsynced"
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    SYNCED = "synced"
    RECOVERING = "recovering"
    HALTED = "halted"


class PlanKind(enum.StrEnum):
    """Rungs of the recovery ladder (architecture.md §2), cheapest first. The values are the
    public spelling used in disconnect records and reports."""

    RESUME = "resume"
    REPLAY_DELTAS = "replay_deltas"
    RESUBSCRIBE = "ws_snapshot"
    SNAPSHOT_REBUILD = "rest_snapshot"
    HALT = "halt"


class AlertKind(enum.StrEnum):
    """What an :class:`Alert` reports (the values are written to logs and records)."""

    GAP = "gap"
    #: the venue's checksum, or its own snapshot at the book's id, disagrees with the book
    CHECKSUM_MISMATCH = "checksum_mismatch"
    CROSSED = "crossed"
    INVALID_INPUT = "invalid_input"
    #: a snapshot older than what it must replace (buffered deltas, or a synced book): not applied
    STALE_SNAPSHOT = "stale_snapshot"
    BUFFER_FULL = "buffer_full"
    TICKER_MISMATCH = "ticker_mismatch"
    STALE_STREAM = "stale_stream"
    #: a snapshot without a sequence id on a stream whose splice needs one: refused
    UNBRIDGEABLE_SNAPSHOT = "unbridgeable_snapshot"
    #: a synced book's last id is ahead of the venue (a run of newer deltas all judged stale)
    LOCAL_AHEAD = "local_ahead"
    #: a monotonic-id venue's own snapshot went back in ids (a venue restart): applied
    SEQ_RESTART = "seq_restart"


class FetchSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Fetch a REST snapshot for ``symbol``. ``epoch`` tags the request: a snapshot answered
    for an older epoch is ignored."""

    symbol: str
    epoch: int
    reason: str
    depth: int | None = None


class Resubscribe(msgspec.Struct, frozen=True, kw_only=True):
    """Unsubscribe and subscribe ``symbol`` again to get a fresh WS snapshot."""

    symbol: str
    reason: str


class ReplayDeltas(msgspec.Struct, frozen=True, kw_only=True):
    """Ask a redundant line or the shared journal for ids ``from_seq..to_seq``."""

    symbol: str
    from_seq: int
    to_seq: int | None
    reason: str


class Halt(msgspec.Struct, frozen=True, kw_only=True):
    """Stop serving ``symbol``'s book; an operator must look."""

    symbol: str
    reason: str


class StateChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The sync state of ``symbol`` changed (for notifications and telemetry)."""

    symbol: str
    old: SyncState
    new: SyncState
    reason: str
    plan: PlanKind | None = None


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """Something the operator must see: a gap, a checksum mismatch, a crossed book..."""

    kind: AlertKind
    symbol: str
    reason: str
    seq: int | None = None
    missed: int | None = None


Action = FetchSnapshot | Resubscribe | ReplayDeltas | Halt | StateChanged | Alert
