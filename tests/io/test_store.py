"""SqliteFillStore / DurableLedger: settings, idempotent writes, one transaction per change,
exact rebuild by load(), and a corrupted cursor caught with its evidence."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookkeeper.actions import FillCursor
from bookkeeper.errors import IntegrityError
from bookkeeper.events import (
    AccountSnapshot,
    BalanceUpdate,
    Fill,
    OrderStatus,
    OrderUpdate,
    PositionReport,
)
from bookkeeper.io.store import (
    DEFAULT_STORE_PATH,
    Durability,
    DurableLedger,
    SqliteFillStore,
)
from bookkeeper.ledger import AccountKey, ApplyVerdict, InstrumentKind, InstrumentSpec
from bookkeeper.types import TradeSide

D = Decimal
ACCT = AccountKey(venue="okx", account="main")
OTHER = AccountKey(venue="okx", account="hedge")
SPOT = InstrumentSpec(symbol="BTC-USDT", kind=InstrumentKind.SPOT, base="BTC", quote="USDT")
PERP = InstrumentSpec(symbol="BTC-USDT-SWAP", kind=InstrumentKind.LINEAR, base="BTC", quote="USDT",
                      contract_size=D("0.01"))


def fill(fill_id: str, *, symbol: str = PERP.symbol, side: TradeSide = TradeSide.BUY, qty: str = "1",
         price: str = "100", ts: int = 1, fee: str = "0.01") -> Fill:
    return Fill(symbol=symbol, fill_id=fill_id, order_id="o", side=side, qty=D(qty), price=D(price), fee=D(fee),
                ts_exchange_ns=ts, ts_recv_ns=ts + 7)


def durable(store: SqliteFillStore) -> DurableLedger:
    dl = DurableLedger(store)
    dl.add_instrument(ACCT.venue, SPOT)
    dl.add_instrument(ACCT.venue, PERP)
    return dl


def test_file_store_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    with SqliteFillStore(tmp_path / "ledger.sqlite3") as store:
        assert (store.journal_mode, store.durability) == ("wal", Durability.FULL)
    with SqliteFillStore(tmp_path / "ledger.sqlite3", durability=Durability.NORMAL) as store:
        assert store.durability is Durability.NORMAL
    assert DEFAULT_STORE_PATH == "bookkeeper-ledger.sqlite3"


def test_everything_survives_a_reopen_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with SqliteFillStore(path) as store:
        dl = durable(store)
        dl.apply_fill(ACCT, fill("1", ts=5))
        dl.apply_snapshot(ACCT, AccountSnapshot(
            as_of_ns=10, balances={"USDT": D("1000.50"), "BTC": D("0.1")},
            positions=[PositionReport(symbol=PERP.symbol, qty=D(-2), avg_entry_price=D("101.5"))],
            open_orders=[OrderUpdate(symbol=SPOT.symbol, order_id="a", side=TradeSide.SELL,
                                     status=OrderStatus.NEW, qty=D(1), price=D(200), ts_exchange_ns=9)]))
        dl.apply_fills(ACCT, [fill("3", ts=12, qty="0.5"), fill("2", ts=11, side=TradeSide.SELL, price="99"),
                              fill("2", symbol=SPOT.symbol, ts=11)])
        dl.apply_fill(ACCT, fill("0", ts=8))  # covered by the baseline
        dl.apply_balance_update(ACCT, BalanceUpdate(currency="USDT", delta=D(-5), update_id="w", ts_exchange_ns=13))
        dl.apply_order_update(ACCT, OrderUpdate(symbol=SPOT.symbol, order_id="a", side=TradeSide.SELL,
                                                status=OrderStatus.PARTIALLY_FILLED, qty=D(1), filled_qty=D("0.4"),
                                                price=D(200), ts_exchange_ns=14))
        dl.apply_fill(OTHER, fill("1", ts=5))
        want = dl.ledger.state()
    with SqliteFillStore(path) as store:
        assert store.load().state() == want
        assert store.fill_count() == 6
        assert store.fill_ids(ACCT) == [("BTC-USDT", "2"), ("BTC-USDT-SWAP", "0"), ("BTC-USDT-SWAP", "1"),
                                        ("BTC-USDT-SWAP", "2"), ("BTC-USDT-SWAP", "3")]


def test_a_duplicate_is_not_written_twice() -> None:
    with SqliteFillStore(":memory:") as store:
        dl = durable(store)
        dl.apply_fill(ACCT, fill("1"))
        assert store.record_fills(ACCT, [fill("1")], {PERP.symbol: FillCursor(ts_ns=1, trade_id="1")}) == 0
        assert dl.apply_fill(ACCT, fill("1")).verdict is ApplyVerdict.DUPLICATE
        assert store.fill_count() == 1


def test_fill_and_cursor_are_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteFillStore(":memory:") as store:
        durable(store).apply_fill(ACCT, fill("1"))

        def broken(rows: object) -> None:
            list(rows)  # type: ignore[call-overload]
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store, "_write_cursors", broken)
        with pytest.raises(sqlite3.OperationalError):
            store.record_fills(ACCT, [fill("2", ts=2)], {PERP.symbol: FillCursor(ts_ns=2, trade_id="2")})
        monkeypatch.undo()
        assert store.fill_count() == 1  # the fill rolled back with its cursor
        assert store.load().cursor(ACCT, PERP.symbol) == FillCursor(ts_ns=1, trade_id="1")


def test_load_refuses_a_cursor_the_stored_fills_do_not_give(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with SqliteFillStore(path) as store:
        durable(store).apply_fill(ACCT, fill("1", ts=5))
    with sqlite3.connect(path) as raw:  # a cursor ahead of the fills: a replay would skip fills
        raw.execute("UPDATE cursors SET ts_ns = 9, trade_id = '4'")
    with SqliteFillStore(path) as store, pytest.raises(IntegrityError) as caught:
        store.load()
    assert caught.value.context["stored"] == FillCursor(ts_ns=9, trade_id="4")
    assert caught.value.context["derived"] == FillCursor(ts_ns=5, trade_id="1")
    assert caught.value.context["symbol"] == PERP.symbol


def test_stale_snapshot_is_not_written() -> None:
    with SqliteFillStore(":memory:") as store:
        dl = durable(store)
        dl.apply_snapshot(ACCT, AccountSnapshot(as_of_ns=10, balances={"USDT": D(1)}))
        assert dl.apply_snapshot(ACCT, AccountSnapshot(as_of_ns=9, balances={"USDT": D(2)})).verdict is ApplyVerdict.STALE
        assert store.load().balances(ACCT) == {"USDT": D(1)}


# ----------------------------------------------------------------------------- property
ops = st.lists(st.one_of(
    st.tuples(st.just("fill"), st.sampled_from([SPOT.symbol, PERP.symbol]), st.integers(0, 9), st.integers(0, 20),
              st.sampled_from([TradeSide.BUY, TradeSide.SELL]), st.integers(1, 300)),
    st.tuples(st.just("sync"), st.integers(0, 20), st.integers(-3, 3)),
    st.tuples(st.just("order"), st.integers(0, 3), st.integers(0, 20), st.sampled_from(list(OrderStatus))),
    st.tuples(st.just("balance"), st.integers(0, 5), st.integers(0, 20)),
), max_size=30)


@given(ops)
def test_load_rebuilds_the_ledger_exactly_after_any_sequence(sequence: list[tuple]) -> None:
    with SqliteFillStore(":memory:") as store:
        dl = durable(store)
        for op in sequence:
            if op[0] == "fill":
                _, symbol, fid, ts, side, price = op
                dl.apply_fill(ACCT, fill(str(fid), symbol=symbol, ts=ts, side=side, price=str(price)))
            elif op[0] == "sync":
                _, as_of, qty = op
                dl.apply_snapshot(ACCT, AccountSnapshot(
                    as_of_ns=as_of, balances={"USDT": D(as_of)},
                    positions=[PositionReport(symbol=PERP.symbol, qty=D(qty), avg_entry_price=D(100))]))
            elif op[0] == "order":
                _, oid, ts, status = op
                dl.apply_order_update(ACCT, OrderUpdate(symbol=SPOT.symbol, order_id=str(oid), side=TradeSide.BUY,
                                                        status=status, qty=D(1), ts_exchange_ns=ts))
            else:
                _, uid, ts = op
                dl.apply_balance_update(ACCT, BalanceUpdate(currency="BTC", delta=D(uid), update_id=str(uid),
                                                            ts_exchange_ns=ts))
        assert store.load().state() == dl.ledger.state()


def test_venue_pnl_of_a_fill_survives_a_reopen_and_a_version_1_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    # a store written by schema version 1 (no realized_pnl column), with one fill
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE fills (venue TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL, trade_id TEXT NOT NULL,
            order_id TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL,
            fee_currency TEXT, ts_exchange_ns INTEGER NOT NULL, ts_recv_ns INTEGER NOT NULL,
            PRIMARY KEY (venue, account, symbol, trade_id));
        INSERT INTO meta VALUES ('schema_version', '1');
    """)
    db.commit()
    db.close()
    with SqliteFillStore(path) as store:
        durable = DurableLedger(store, store.load())
        durable.add_instrument("okx", PERP)
        opened = Fill(symbol=PERP.symbol, fill_id="1", order_id="a", side=TradeSide.BUY, price=D("100"), qty=D("3"),
                      ts_exchange_ns=1, realized_pnl=D("0"))
        closed = Fill(symbol=PERP.symbol, fill_id="2", order_id="b", side=TradeSide.SELL, price=D("101"), qty=D("3"),
                      ts_exchange_ns=2, realized_pnl=D("0.0299999"))  # the venue's own figure
        durable.apply_fills(ACCT, [opened, closed])
        assert durable.ledger.position(ACCT, PERP.symbol).realized_pnl == D("0.0299999")
        assert store._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    with SqliteFillStore(path) as store:
        ledger = store.load()
    assert ledger.fills(ACCT, PERP.symbol) == [opened, closed]
    assert ledger.balances(ACCT)["USDT"] == D("0.0299999")
