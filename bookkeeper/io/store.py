"""The ledger's durable record: SQLite (stdlib ``sqlite3``), one file, no server.

Theory of operation
-------------------
:class:`SqliteFillStore` keeps what :class:`~bookkeeper.ledger.PositionLedger` derives its
state from (see its module docstring: the state is a function of the latest baseline per
account and the *set* of fills and balance updates), plus the cursors and orders:

- ``fills``: one row per ``(venue, account, symbol, trade_id)`` (``INSERT OR IGNORE``: a fill
  seen again is not written twice), with its content as the venue gave it (Decimals as text);
- ``cursors``: one row per ``(venue, account, symbol)``;
- ``balance_updates`` (by ``update_id``), ``baselines`` (the latest full sync per account),
  ``orders`` (the latest report per order), ``instruments``.

A change and the cursor it moves are written in **one transaction** (a fill and its symbol's
cursor; a replayed page and its cursors; a full sync, the account's orders and every cursor
it reset), so a ``kill -9`` at any moment leaves either both or neither: a restart resumes
from a cursor that never runs ahead of the fills stored. :meth:`SqliteFillStore.load` rebuilds
the ledger and checks that every stored cursor equals the one the ledger derives from the
stored fills (an ``IntegrityError`` with the evidence otherwise).

Durability settings: ``journal_mode=WAL`` (a commit appends to the ``-wal`` file; readers,
such as a report, do not block the writer) and ``synchronous=FULL`` by default. Under WAL,
``NORMAL`` already survives a process crash (a commit is in the OS before ``commit()``
returns) but may lose the last commits on power loss; ``FULL`` fsyncs the WAL on every commit,
so a fill the bot may already have acted on is never forgotten. Fills are rare next to book
deltas, and a replay commits a page at a time, so the fsync per commit is affordable.
:attr:`Durability.NORMAL` is there for hosts where it is not.

:class:`DurableLedger` pairs a ledger with a store: each input is applied to the ledger, then
committed, before the call returns. Use one store from one thread at a time.
"""

from __future__ import annotations

import enum
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Self

import msgspec

from ..actions import FillCursor
from ..errors import IntegrityError
from ..events import AccountSnapshot, BalanceUpdate, Fill, OrderUpdate
from ..ledger import (
    AccountKey,
    ApplyVerdict,
    InstrumentKind,
    InstrumentSpec,
    LedgerResult,
    PositionLedger,
)
from ..types import TradeSide

__all__ = ["DEFAULT_STORE_PATH", "Durability", "DurableLedger", "SqliteFillStore"]

#: Where the embedded store lives when no path is given (relative to the working directory).
DEFAULT_STORE_PATH = "bookkeeper-ledger.sqlite3"
#: 2 added ``fills.realized_pnl`` (the venue's PnL of a derivative fill); a version-1 file is
#: migrated when opened (the column is added, NULL for the fills it holds)
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instruments (
    venue TEXT NOT NULL, symbol TEXT NOT NULL, kind TEXT NOT NULL, base TEXT NOT NULL, quote TEXT NOT NULL,
    settle TEXT, contract_size TEXT NOT NULL, PRIMARY KEY (venue, symbol));
CREATE TABLE IF NOT EXISTS fills (
    venue TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL, trade_id TEXT NOT NULL,
    order_id TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL,
    fee_currency TEXT, ts_exchange_ns INTEGER NOT NULL, ts_recv_ns INTEGER NOT NULL, realized_pnl TEXT,
    PRIMARY KEY (venue, account, symbol, trade_id));
CREATE TABLE IF NOT EXISTS cursors (
    venue TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL, ts_ns INTEGER NOT NULL, trade_id TEXT,
    PRIMARY KEY (venue, account, symbol));
CREATE TABLE IF NOT EXISTS balance_updates (
    venue TEXT NOT NULL, account TEXT NOT NULL, update_id TEXT NOT NULL, currency TEXT NOT NULL,
    delta TEXT NOT NULL, ts_exchange_ns INTEGER NOT NULL, ts_recv_ns INTEGER NOT NULL,
    PRIMARY KEY (venue, account, update_id));
CREATE TABLE IF NOT EXISTS baselines (
    venue TEXT NOT NULL, account TEXT NOT NULL, as_of_ns INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (venue, account));
CREATE TABLE IF NOT EXISTS orders (
    venue TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL, order_id TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (venue, account, symbol, order_id));
"""

_CursorRows = Iterable[tuple[AccountKey, str, FillCursor | None]]


class Durability(enum.StrEnum):
    """SQLite ``synchronous`` setting (module docstring)."""

    #: fsync the WAL on every commit: survives a crash of the process and of the machine
    FULL = "FULL"
    #: survives a crash of the process; the last commits may be lost on power loss
    NORMAL = "NORMAL"


class SqliteFillStore:
    """Fills, cursors, balance updates, baselines and orders in one SQLite file.

    Args:
        path: the database file (created when missing), or ``":memory:"`` for tests.
        durability: see :class:`Durability`.
        timeout_s: how long to wait for another connection's write lock.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_STORE_PATH, *,
                 durability: Durability = Durability.FULL, timeout_s: float = 5.0) -> None:
        self._path = str(path)
        # autocommit mode (isolation_level=None): transactions are the explicit BEGIN
        # IMMEDIATE ... COMMIT blocks of _transaction, nothing is left open between calls.
        # check_same_thread=False: a driver may call from asyncio.to_thread workers (one at
        # a time).
        self._db = sqlite3.connect(self._path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={durability.value}")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(fills)")}
        if "realized_pnl" not in columns:  # a version-1 store
            self._db.execute("ALTER TABLE fills ADD COLUMN realized_pnl TEXT")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @property
    def durability(self) -> Durability:
        """The ``synchronous`` setting in force (read back from SQLite)."""
        level = int(self._db.execute("PRAGMA synchronous").fetchone()[0])
        return Durability.FULL if level >= 2 else Durability.NORMAL

    @property
    def journal_mode(self) -> str:
        """The journal mode in force (``wal``; ``memory`` for an in-memory store)."""
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    @property
    def path(self) -> str:
        """The database file (``":memory:"`` for an in-memory store)."""
        return self._path

    def close(self) -> None:
        """Close the database (committed work is already durable)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteFillStore({self._path!r})"

    # ------------------------------------------------------------------ writes
    def record_instrument(self, venue: str, spec: InstrumentSpec, cursors: _CursorRows = ()) -> None:
        """Store an instrument (and the cursors registering it created) in one transaction.

        Args:
            venue: the venue.
            spec: the instrument.
            cursors: ``(account, symbol, cursor)`` rows to write with it.
        """
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO instruments VALUES (?, ?, ?, ?, ?, ?, ?)", (
                venue, spec.symbol, spec.kind.value, spec.base, spec.quote, spec.settle, str(spec.contract_size)))
            self._write_cursors(cursors)

    def record_fills(self, account: AccountKey, fills: Sequence[Fill], cursors: Mapping[str, FillCursor | None]) -> int:
        """Store fills and their symbols' cursors in one transaction (a stream fill, or a
        replayed page).

        Args:
            account: the account.
            fills: the fills (ones stored before are ignored).
            cursors: the ledger's cursor of each symbol after applying them.

        Returns:
            How many fills were new.
        """
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (account.venue, account.account, f.symbol, f.fill_id, f.order_id, f.side.value, str(f.price),
                 str(f.qty), str(f.fee), f.fee_currency, f.ts_exchange_ns, f.ts_recv_ns,
                 None if f.realized_pnl is None else str(f.realized_pnl)) for f in fills])
            new = self._db.total_changes - before
            self._write_cursors((account, symbol, cursor) for symbol, cursor in cursors.items())
        return new

    def record_balance_update(self, account: AccountKey, update: BalanceUpdate) -> bool:
        """Store a balance update once.

        Args:
            account: the account.
            update: the update.

        Returns:
            Whether it was new.
        """
        with self._transaction():
            cur = self._db.execute("INSERT OR IGNORE INTO balance_updates VALUES (?, ?, ?, ?, ?, ?, ?)", (
                account.venue, account.account, update.update_id, update.currency, str(update.delta),
                update.ts_exchange_ns, update.ts_recv_ns))
        return cur.rowcount == 1

    def record_order(self, account: AccountKey, order: OrderUpdate) -> None:
        """Store an order's latest report (replacing the previous one).

        Args:
            account: the account.
            order: the report the ledger now holds.
        """
        with self._transaction():
            self._write_order(account, order)

    def record_snapshot(self, account: AccountKey, snapshot: AccountSnapshot, *, orders: Sequence[OrderUpdate],
                        cursors: Mapping[str, FillCursor | None]) -> None:
        """Store a full sync in one transaction: the new baseline, the account's orders as the
        ledger now holds them (replacing all stored ones) and its cursors.

        Args:
            account: the account.
            snapshot: the applied snapshot.
            orders: ``ledger.orders(account)`` after applying it.
            cursors: ``ledger.cursors(account)`` after applying it.
        """
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO baselines VALUES (?, ?, ?, ?)", (
                account.venue, account.account, snapshot.as_of_ns, msgspec.json.encode(snapshot)))
            self._db.execute("DELETE FROM orders WHERE venue = ? AND account = ?", (account.venue, account.account))
            for order in orders:
                self._write_order(account, order)
            self._write_cursors((account, symbol, cursor) for symbol, cursor in cursors.items())

    # ------------------------------------------------------------------ reads
    def fill_count(self) -> int:
        """Fills stored, over all accounts."""
        return int(self._db.execute("SELECT count(*) FROM fills").fetchone()[0])

    def fill_ids(self, account: AccountKey) -> list[tuple[str, str]]:
        """``(symbol, trade_id)`` of every stored fill of the account, sorted."""
        rows = self._db.execute("SELECT symbol, trade_id FROM fills WHERE venue = ? AND account = ? ORDER BY 1, 2",
                                (account.venue, account.account))
        return [(str(s), str(t)) for s, t in rows]

    def load(self) -> PositionLedger:
        """Rebuild the ledger from what is stored.

        Returns:
            A ledger whose :meth:`~bookkeeper.ledger.PositionLedger.state` equals the one the
            records were written from.

        Raises:
            IntegrityError: a stored cursor differs from the one the stored fills and
                baseline give (the store was written by something other than this class, or
                corrupted); ``reason`` and the ``account``/``symbol``/``stored``/``derived``
                attributes carry the evidence.
        """
        # one read transaction: another process (a report, a supervisor) may load while the
        # writer commits; WAL gives this connection one snapshot of every table until COMMIT
        self._db.execute("BEGIN")
        try:
            return self._load()
        finally:
            self._db.execute("COMMIT")

    def _load(self) -> PositionLedger:
        ledger = PositionLedger()
        db = self._db
        for venue, symbol, kind, base, quote, settle, size in db.execute("SELECT * FROM instruments ORDER BY rowid"):
            ledger.add_instrument(venue, InstrumentSpec(symbol=symbol, kind=InstrumentKind(kind), base=base,
                                                        quote=quote, settle=settle, contract_size=Decimal(size)))
        for venue, account, _, body in db.execute("SELECT * FROM baselines ORDER BY rowid"):
            ledger.apply_snapshot(AccountKey(venue=venue, account=account),
                                  msgspec.json.decode(body, type=AccountSnapshot))
        for row in db.execute("SELECT venue, account, symbol, trade_id, order_id, side, price, qty, fee, fee_currency, "
                              "ts_exchange_ns, ts_recv_ns, realized_pnl FROM fills ORDER BY rowid"):
            venue, account, symbol, trade_id, order_id, side, price, qty, fee, fee_ccy, ts_ex, ts_recv, pnl = row
            ledger.apply_fill(AccountKey(venue=venue, account=account), Fill(
                symbol=symbol, fill_id=trade_id, order_id=order_id, side=TradeSide(side), price=Decimal(price),
                qty=Decimal(qty), fee=Decimal(fee), fee_currency=fee_ccy, ts_exchange_ns=ts_ex, ts_recv_ns=ts_recv,
                realized_pnl=None if pnl is None else Decimal(pnl)))
        for venue, account, update_id, currency, delta, ts_ex, ts_recv in db.execute(
                "SELECT * FROM balance_updates ORDER BY rowid"):
            ledger.apply_balance_update(AccountKey(venue=venue, account=account), BalanceUpdate(
                currency=currency, delta=Decimal(delta), update_id=update_id, ts_exchange_ns=ts_ex,
                ts_recv_ns=ts_recv))
        self._load_orders(ledger)
        self._check_cursors(ledger)
        return ledger

    # ------------------------------------------------------------------ internals
    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _write_order(self, account: AccountKey, order: OrderUpdate) -> None:
        self._db.execute("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)", (
            account.venue, account.account, order.symbol, order.order_id, msgspec.json.encode(order)))

    def _write_cursors(self, rows: _CursorRows) -> None:
        self._db.executemany(
            "INSERT INTO cursors VALUES (?, ?, ?, ?, ?) ON CONFLICT (venue, account, symbol) "
            "DO UPDATE SET ts_ns = excluded.ts_ns, trade_id = excluded.trade_id",
            [(a.venue, a.account, symbol, c.ts_ns, c.trade_id) for a, symbol, c in rows if c is not None])

    def _load_orders(self, ledger: PositionLedger) -> None:
        stored: dict[AccountKey, list[OrderUpdate]] = {}
        for venue, account, _, _, body in self._db.execute("SELECT * FROM orders ORDER BY rowid"):
            stored.setdefault(AccountKey(venue=venue, account=account), []).append(
                msgspec.json.decode(body, type=OrderUpdate))
        for key in set(ledger.accounts) | set(stored):
            for order in ledger.orders(key):  # a baseline's open orders: the table says what stands
                ledger.forget_order(key, order.symbol, order.order_id)
            for order in stored.get(key, ()):
                ledger.restore_order(key, order)

    def _check_cursors(self, ledger: PositionLedger) -> None:
        stored: dict[tuple[AccountKey, str], FillCursor] = {
            (AccountKey(venue=v, account=a), s): FillCursor(ts_ns=ts, trade_id=t)
            for v, a, s, ts, t in self._db.execute("SELECT * FROM cursors")}
        derived = {(key, symbol): cursor for key in ledger.accounts
                   for symbol, cursor in ledger.cursors(key).items() if cursor is not None}
        for where in sorted(set(stored) | set(derived)):
            if stored.get(where) != derived.get(where):
                account, symbol = where
                raise IntegrityError(
                    f"stored cursor of {account} {symbol} is {stored.get(where)}, the stored fills give "
                    f"{derived.get(where)}", reason="cursor does not match the stored fills", account=str(account),
                    symbol=symbol, stored=stored.get(where), derived=derived.get(where))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock now: a second writer waits (timeout_s) at BEGIN,
        # never half-way through the transaction.
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class DurableLedger:
    """A :class:`PositionLedger` whose every change is committed to a store before the call
    returns (the ledger first, then the store: if the store raises, the process must stop,
    since memory is then ahead of disk; a restart replays from the stored cursor).

    Args:
        store: where to persist.
        ledger: the ledger to persist into ``store`` from now on (default: ``store.load()``).
    """

    __slots__ = ("_ledger", "_store")

    def __init__(self, store: SqliteFillStore, ledger: PositionLedger | None = None) -> None:
        self._store = store
        self._ledger = store.load() if ledger is None else ledger

    @property
    def ledger(self) -> PositionLedger:
        """The ledger (read it; feed it only through this object)."""
        return self._ledger

    @property
    def store(self) -> SqliteFillStore:
        """The store."""
        return self._store

    def add_instrument(self, venue: str, spec: InstrumentSpec) -> bool:
        """Register and store an instrument (see ``PositionLedger.add_instrument``).

        Args:
            venue: the venue.
            spec: the instrument.

        Returns:
            Whether it was new.
        """
        new = self._ledger.add_instrument(venue, spec)
        if new:
            rows = [(key, spec.symbol, self._ledger.cursor(key, spec.symbol))
                    for key in self._ledger.accounts if key.venue == venue]
            self._store.record_instrument(venue, spec, rows)
        return new

    def apply_fill(self, account: AccountKey, fill: Fill) -> LedgerResult:
        """Apply one fill and commit it with its cursor (see ``PositionLedger.apply_fill``).

        Args:
            account: the account.
            fill: the fill.

        Returns:
            The ledger's result.
        """
        return self.apply_fills(account, [fill])[0]

    def apply_fills(self, account: AccountKey, fills: Sequence[Fill]) -> list[LedgerResult]:
        """Apply fills (a replayed page, in any order) and commit them with their cursors in
        one transaction.

        Args:
            account: the account.
            fills: the fills.

        Returns:
            One ledger result per fill.
        """
        results = [self._ledger.apply_fill(account, fill) for fill in fills]
        kept = [fill for fill, r in zip(fills, results, strict=True) if r.verdict is not ApplyVerdict.DUPLICATE]
        if kept:
            symbols = {fill.symbol for fill in kept}
            self._store.record_fills(account, kept, {s: self._ledger.cursor(account, s) for s in symbols})
        return results

    def apply_balance_update(self, account: AccountKey, update: BalanceUpdate) -> LedgerResult:
        """Apply and commit a balance update (see ``PositionLedger.apply_balance_update``).

        Args:
            account: the account.
            update: the update.

        Returns:
            The ledger's result.
        """
        result = self._ledger.apply_balance_update(account, update)
        if result.verdict is not ApplyVerdict.DUPLICATE:
            self._store.record_balance_update(account, update)
        return result

    def apply_order_update(self, account: AccountKey, update: OrderUpdate) -> LedgerResult:
        """Apply and commit an order report (see ``PositionLedger.apply_order_update``).

        Args:
            account: the account.
            update: the report.

        Returns:
            The ledger's result.
        """
        result = self._ledger.apply_order_update(account, update)
        if result.verdict is ApplyVerdict.APPLIED:
            self._store.record_order(account, update)
        return result

    def apply_snapshot(self, account: AccountKey, snapshot: AccountSnapshot) -> LedgerResult:
        """Apply and commit a full sync (see ``PositionLedger.apply_snapshot``).

        Args:
            account: the account.
            snapshot: the full sync's answer.

        Returns:
            The ledger's result.
        """
        result = self._ledger.apply_snapshot(account, snapshot)
        if result.verdict is ApplyVerdict.APPLIED:
            self._store.record_snapshot(account, snapshot, orders=self._ledger.orders(account),
                                        cursors=self._ledger.cursors(account))
        return result

