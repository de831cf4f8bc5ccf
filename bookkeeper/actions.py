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


# ----------------------------------------------------------------------------- account side
# The ledger (bookkeeper.ledger) and the account recovery planner (bookkeeper.account) speak
# these. They are not members of ``Action`` (the book session's outputs): a book driver never
# receives them. An account driver runs them.


class AccountPlanKind(enum.StrEnum):
    """How a private-channel gap is closed (the values are the keys of the chaos report's
    ``account_recoveries`` object and the spelling in disconnect records)."""

    #: fetch the missed fills from the venue's REST history, from the ledger's cursor
    REPLAY = "replay"
    #: fetch balances, positions and open orders; they become the ledger's new baseline and
    #: every cursor of the account moves to the baseline's time
    FULL_SYNC = "full_sync"


class FillCursor(msgspec.Struct, frozen=True, kw_only=True):
    """A position in one (venue, account, symbol)'s fill history: the greatest applied fill by
    ``(ts_ns, trade_id)``, or a full sync's time with ``trade_id=None`` (then it sorts before
    every fill of the same nanosecond).

    Trade ids made of ASCII digits compare as integers (Binance ``t``, OKX ``tradeId``: ``"9"``
    is before ``"10"``); other ids compare as text, after every numeric id.
    """

    ts_ns: int
    trade_id: str | None = None

    def sort_key(self) -> tuple[int, int, int, str]:
        """The cursor's place in the total order of a symbol's fill history.

        Returns:
            ``(ts_ns, rank, number, text)``: rank 0 for no trade id, 1 for a numeric id,
            2 for a textual one.
        """
        return fill_sort_key(self.ts_ns, self.trade_id)


def fill_sort_key(ts_ns: int, trade_id: str | None) -> tuple[int, int, int, str]:
    """The order of fills in a symbol's history: exchange time, then trade id (numeric ids as
    integers). See :class:`FillCursor`.

    Args:
        ts_ns: exchange time of the fill.
        trade_id: the venue's trade id, ``None`` for a full sync's reset point.

    Returns:
        A tuple that sorts fills in the venue's execution order.
    """
    if trade_id is None:
        return (ts_ns, 0, 0, "")
    if trade_id.isascii() and trade_id.isdigit():
        return (ts_ns, 1, int(trade_id), "")
    return (ts_ns, 2, 0, trade_id)


class FetchFillsSince(msgspec.Struct, frozen=True, kw_only=True):
    """Fetch ``symbol``'s fills from the venue's REST history, oldest first, from ``cursor``
    (the trade id after ``cursor.trade_id`` when the venue pages by id, else exchange time
    ``since_ns``) up to ``until_ns``, at most ``max_pages`` requests. Feed every fill to the
    ledger (duplicates are harmless). Stopping at ``max_pages`` with history left means the
    plan's estimate was short: escalate to a full sync
    (:func:`bookkeeper.account.escalate_to_full_sync`)."""

    venue: str
    account: str
    symbol: str
    cursor: FillCursor
    since_ns: int
    until_ns: int
    max_pages: int
    reason: str


class FullSync(msgspec.Struct, frozen=True, kw_only=True):
    """Fetch the account's balances, positions and open orders and hand them to the ledger as
    an :class:`~bookkeeper.events.AccountSnapshot` (its new baseline; cursors move to the
    snapshot's ``as_of_ns``)."""

    venue: str
    account: str
    reason: str


class AccountAlertKind(enum.StrEnum):
    """What an :class:`AccountAlert` reports (the values are written to logs and records)."""

    #: a fill id seen before came again with different content; the first one was kept
    FILL_CONFLICT = "fill_conflict"
    #: a balance update id seen before came again with different content; the first was kept
    BALANCE_UPDATE_CONFLICT = "balance_update_conflict"
    #: the ledger disagrees with the venue's REST positions/balances at a consistent point
    #: (evidence: each drift); a replay could not explain it
    DRIFT = "drift"
    #: the venue refused our credentials (evidence: its code); the account is halted
    AUTH_REJECTED = "auth_rejected"
    #: the account's recovery failed (REST errors after retries); a reconnect follows
    RECOVERY_FAILED = "recovery_failed"
    #: a private stream frame could not be decoded (it was skipped; a reconcile follows)
    INVALID_INPUT = "invalid_input"


class AccountAlert(msgspec.Struct, frozen=True, kw_only=True):
    """Something about an account the operator must see, with its evidence (field name ->
    ``"kept=<value> received=<value>"``)."""

    kind: AccountAlertKind
    venue: str
    account: str
    reason: str
    symbol: str | None = None
    evidence: dict[str, str] = msgspec.field(default_factory=dict)


class AccountState(enum.StrEnum):
    """An account's sync state (``bookkeeper.account_session``). Only ``SYNCED`` numbers are
    current; in every other state the ledger holds the last known numbers and the bot is told
    it is recovering. The values are written to records and metrics."""

    #: no authenticated private connection (before the first one, or after a disconnect)
    DISCONNECTED = "disconnected"
    #: connected; login sent, its answer awaited
    AUTHENTICATING = "authenticating"
    #: logged in; private channel acks awaited
    SUBSCRIBING = "subscribing"
    #: subscribed; a recovery plan (replay or full sync) is running, stream events are buffered
    RECOVERING = "recovering"
    #: every gap is closed; stream events are applied as they come
    SYNCED = "synced"
    #: the venue refused our credentials: nothing is retried until the operator acts
    HALTED = "halted"


class AccountReason(enum.StrEnum):
    """Why an account recovery was planned (values are logged and written to records)."""

    #: the first sync of an account (no cursor, or a restart from the store)
    START = "start"
    #: the private connection was lost
    DISCONNECT = "disconnect"
    #: the venue ended the authenticated session (auth expiry)
    SESSION_EXPIRED = "session_expired"
    #: the periodic reconciliation saw the venue change after the last event we know of
    RECONCILE = "reconcile"
    #: an order's cumulative filled quantity skipped a fill the stream never delivered
    ORDER_GAP = "order_gap"
    #: the private stream sent what could not be decoded
    BAD_INPUT = "bad_input"
    #: the private stream's own message numbering skipped (``PrivateControlKind.STREAM_GAP``)
    STREAM_GAP = "stream_gap"


class Login(msgspec.Struct, frozen=True, kw_only=True):
    """Send the adapter's login frames (signed with the account's credentials at the driver's
    clock). Sent once per connection, and once more after the venue ended the session."""

    reason: str


class SubscribePrivate(msgspec.Struct, frozen=True, kw_only=True):
    """Send the adapter's private subscribe frames (after ``LOGGED_IN``)."""

    reason: str


class ApplyAccountEvents(msgspec.Struct, frozen=True, kw_only=True):
    """Apply these stream events to the (durable) ledger, in order. Events held while
    recovering come out in the order they arrived, after the recovery's own fills."""

    events: tuple[object, ...]
    reason: str


class Reconcile(msgspec.Struct, frozen=True, kw_only=True):
    """Read the venue's balances, positions and open orders over REST and hand them back with
    ``AccountSession.reconciled`` (the periodic low-rate check)."""

    reason: str


class ReconnectPrivate(msgspec.Struct, frozen=True, kw_only=True):
    """Close the private connection and open a new one (the session's lifetime is nearly
    over, the venue announced a shutdown, or a recovery failed)."""

    reason: str


class HaltAccount(msgspec.Struct, frozen=True, kw_only=True):
    """Stop: the credentials were refused. Nothing is retried."""

    reason: str


class AccountStateChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The account's state changed (the bot is told it is recovering, or synced again)."""

    old: AccountState
    new: AccountState
    reason: str


AccountAction = (FetchFillsSince | FullSync | AccountAlert | Login | SubscribePrivate | ApplyAccountEvents
                 | Reconcile | ReconnectPrivate | HaltAccount | AccountStateChanged)
